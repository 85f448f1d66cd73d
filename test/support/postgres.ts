/**
 * Real PostgreSQL for tests: every test file gets its own scratch database,
 * created on the server at `BULWARK_TEST_DATABASE_URL` (default
 * `postgres://postgres@127.0.0.1:5432/test`), migrated with Bulwark's
 * migrations, and dropped afterwards. Tests fail, never skip, when PostgreSQL
 * does not answer.
 *
 * Child processes (crash and multi-process tests) connect to the same scratch
 * database through `ScratchDatabase.url`.
 */
import * as Migrations from "@bulwark/resilience/Migrations"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"

/** The server tests run against; its database is only used to create scratch ones. */
export const serverUrl: string = process.env["BULWARK_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"

const withDatabase = (url: string, database: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

const adminClient = PgClient.layer({ url: Redacted.make(serverUrl), maxConnections: 1 })

const failLoudly = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, never, R> =>
  Effect.orDieWith(
    effect,
    (cause) => new Error(`This test needs PostgreSQL at ${serverUrl} and could not use it: ${String(cause)}`)
  )

/** A freshly created, migrated database, dropped when the scope closes. */
export class ScratchDatabase extends Context.Tag("test/ScratchDatabase")<ScratchDatabase, {
  readonly name: string
  readonly url: string
}>() {}

const scratch = Layer.scoped(
  ScratchDatabase,
  Effect.gen(function*() {
    const name = `bulwark_t_${process.pid}_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6).toString(36)}`
    const admin = (statement: string) =>
      PgClient.PgClient.pipe(
        Effect.flatMap((sql) => sql.unsafe(statement)),
        Effect.provide(adminClient),
        failLoudly
      )
    yield* Effect.acquireRelease(
      admin(`CREATE DATABASE ${name}`),
      () => Effect.ignore(admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`))
    )
    return { name, url: withDatabase(serverUrl, name) }
  })
)

/**
 * `PgClient` + `SqlClient` on a scratch database that already holds Bulwark's
 * schema, plus `ScratchDatabase` for its name and URL.
 */
export const layer = (options: { readonly maxConnections?: number } = {}): Layer.Layer<
  PgClient.PgClient | SqlClient.SqlClient | ScratchDatabase
> =>
  Layer.unwrapEffect(
    Effect.map(ScratchDatabase, ({ url }) => {
      const client = Layer.orDie(
        PgClient.layer({ url: Redacted.make(url), maxConnections: options.maxConnections ?? 8 })
      )
      const migrated = Layer.effectDiscard(failLoudly(Migrations.run))
      return Layer.merge(client, Layer.provide(migrated, client))
    })
  ).pipe(Layer.provideMerge(scratch))

/** A freshly created, empty database (no migrations), dropped when the layer's scope closes. */
export const scratchDatabase: Layer.Layer<ScratchDatabase> = scratch
