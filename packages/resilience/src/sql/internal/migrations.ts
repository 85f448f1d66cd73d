import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
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

// -----------------------------------------------------------------------------
// Placeholders
// -----------------------------------------------------------------------------

/**
 * The objects a migration may name after a configurable name are written with placeholders, which are replaced
 * before the text runs (as graphile-worker's `:GRAPHILE_WORKER_SCHEMA`):
 *
 * - `:BULWARK_IDEMPOTENCY_TABLE`: the idempotency table as configured, schema-qualified or not
 *   (`bulwark_idempotency_keys`, `billing.idempotency_keys`). Names the table, and its functions
 *   (`:BULWARK_IDEMPOTENCY_TABLE_claim` lives in the table's schema).
 * - `:BULWARK_IDEMPOTENCY_TABLE_NAME`: the same table without its schema. Names its constraints and indexes, which
 *   live in the table's schema and cannot be schema-qualified.
 *
 * A placeholder is a colon, `BULWARK` and upper-case words joined by underscores; what follows it in lower case
 * (`_claim`) is not part of it. An unknown placeholder is an error, never left in the text.
 */
const PLACEHOLDER = /:BULWARK(?:_[A-Z]+)+/g

/** The idempotency placeholders (see {@link PLACEHOLDER}). */
export const placeholders = {
  idempotencyTable: ":BULWARK_IDEMPOTENCY_TABLE",
  idempotencyTableName: ":BULWARK_IDEMPOTENCY_TABLE_NAME"
} as const

/** The names the placeholders stand for. */
export interface Names {
  /** The idempotency table, optionally schema-qualified: see {@link isTableName}. */
  readonly idempotencyTable: string
}

/** What `Migrations.run` creates: the default names. */
export const defaultNames: Names = { idempotencyTable: "bulwark_idempotency_keys" }

/**
 * Lower-case identifiers, optionally schema-qualified. The table's own name is at most 51 characters, so that
 * every object named after it (`<table>_in_progress`, `<table>_complete_batch`, …) fits PostgreSQL's 63.
 */
const TABLE_NAME = /^(?:[a-z_][a-z0-9_]{0,62}\.)?[a-z_][a-z0-9_]{0,50}$/

/** Whether a name may stand for a table placeholder: a name that needs no quoting and whose objects' names fit. */
export const isTableName = (name: string): boolean => TABLE_NAME.test(name)

/** A migration text could not be rendered: an invalid name, or a placeholder this runner does not know. */
export class RenderError extends Error {}

/** A migration's text with every placeholder replaced by the name it stands for. */
export const render = (text: string, names: Names): Either.Either<string, RenderError> => {
  const tableName = names.idempotencyTable
  if (!isTableName(tableName)) {
    return Either.left(
      new RenderError(
        `${
          JSON.stringify(tableName)
        } is not a valid table name: a lower-case SQL identifier of at most 51 characters, optionally schema-qualified`
      )
    )
  }
  const values = new Map<string, string>([
    [placeholders.idempotencyTable, tableName],
    [placeholders.idempotencyTableName, tableName.slice(tableName.lastIndexOf(".") + 1)]
  ])
  const unknown = [...text.matchAll(PLACEHOLDER)].map(([placeholder]) => placeholder).find((p) => !values.has(p))
  if (unknown !== undefined) return Either.left(new RenderError(`unknown placeholder ${unknown}`))
  return Either.right(text.replace(PLACEHOLDER, (placeholder) => values.get(placeholder) ?? placeholder))
}

/** Whether a migration names objects after the idempotency table (so `SqlIdempotencyStore.createTable` runs it). */
export const namesIdempotencyTable = (text: string): boolean =>
  [...text.matchAll(PLACEHOLDER)].some(([placeholder]) =>
    placeholder === placeholders.idempotencyTable || placeholder === placeholders.idempotencyTableName
  )

// -----------------------------------------------------------------------------
// Files
// -----------------------------------------------------------------------------

/** A migration file as written, placeholders and all. */
export interface File {
  readonly id: number
  readonly name: string
  readonly text: string
}

/** The `NNNN_name.sql` files of a directory, in id order. */
export const readFiles = (path: string): Effect.Effect<ReadonlyArray<File>, Migrator.MigrationError> =>
  Effect.try({
    try: () =>
      readdirSync(path)
        .flatMap((file): ReadonlyArray<File> => {
          const match = fileName.exec(file)
          if (match === null) return []
          const [, id, name] = match
          return [{ id: Number(id), name: name ?? file, text: readFileSync(join(path, file), "utf8") }]
        })
        .sort((a, b) => a.id - b.id),
    catch: (cause) =>
      new Migrator.MigrationError({
        reason: "import-error",
        message: `Could not read Bulwark's migrations from ${path}`,
        cause
      })
  })

export const fromDirectory = (path: string): Migrator.Loader =>
  Effect.flatMap(
    readFiles(path),
    (files) =>
      Effect.forEach(files, (file): Effect.Effect<Migrator.ResolvedMigration, Migrator.MigrationError> =>
        Either.match(render(file.text, defaultNames), {
          onLeft: (cause) =>
            Effect.fail(
              new Migrator.MigrationError({
                reason: "import-error",
                message: `Could not render migration ${file.id}_${file.name}: ${cause.message}`,
                cause
              })
            ),
          onRight: (text) => {
            // Several statements in one text: sent without parameters.
            const run = Effect.flatMap(SqlClient.SqlClient, (sql) =>
              sql.unsafe(text).raw)
            const migration: Migrator.ResolvedMigration = [file.id, file.name, Effect.succeed(run)]
            return Effect.succeed(migration)
          }
        }))
  )

export const loader: Migrator.Loader = Effect.suspend(() => fromDirectory(directory()))

export const run = Migrator.make({})({ loader, table })
