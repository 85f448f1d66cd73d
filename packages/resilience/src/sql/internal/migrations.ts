import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import { readdirSync, readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"

/** `0001_idempotency.sql`: a four-digit id, a snake_case name. */
const fileName = /^(\d{4})_([a-z0-9_]+)\.sql$/

/** Migration tracking table, kept apart from an application's own migrations. */
export const table = "bulwark_migrations"

// Resolved through the package's own name (self-reference via "exports") rather
// than `import.meta.url`, so the path is right from sources, tests and bundles.
export const directory = (): string =>
  join(dirname(createRequire(import.meta.url).resolve("@bulwark/resilience/package.json")), "sql")

export const fromDirectory = (path: string): Migrator.Loader =>
  Effect.try({
    try: () =>
      readdirSync(path)
        .flatMap((file): ReadonlyArray<Migrator.ResolvedMigration> => {
          const match = fileName.exec(file)
          if (match === null) return []
          const [, id, name] = match
          const text = readFileSync(join(path, file), "utf8")
          const run = Effect.flatMap(SqlClient.SqlClient, (sql) => sql.unsafe(text).raw)
          return [[Number(id), name ?? file, Effect.succeed(run)]]
        })
        .sort(([a], [b]) => a - b),
    catch: (cause) =>
      new Migrator.MigrationError({
        reason: "import-error",
        message: `Could not read Bulwark's migrations from ${path}`,
        cause
      })
  })

export const loader: Migrator.Loader = Effect.suspend(() => fromDirectory(directory()))

export const run = Migrator.make({})({ loader, table })
