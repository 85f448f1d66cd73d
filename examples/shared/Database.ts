/**
 * The examples' database: PostgreSQL through `@effect/sql-pg`, with Bulwark's
 * migrations applied. `DATABASE_URL` points it at a server; without it, an
 * embedded PGlite is started in process ({@link EmbeddedPostgres}) and lives
 * as long as the layer.
 *
 * @since 0.1.0
 */
import * as Migrations from "@bulwark/resilience/Migrations"
import * as PgClient from "@effect/sql-pg/PgClient"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as EmbeddedPostgres from "./EmbeddedPostgres.js"

/**
 * Which database the example runs on.
 *
 * @since 0.1.0
 * @category Models
 */
export interface DatabaseInfo {
  /** The URL the pool connects to (the embedded server's, or `DATABASE_URL`). */
  readonly url: Redacted.Redacted<string>
  /** `true` on the embedded PGlite: LISTEN/NOTIFY wake-ups do not arrive there, so poll often. */
  readonly embedded: boolean
  /** The pool size in use. */
  readonly maxConnections: number
}

/**
 * @since 0.1.0
 * @category Tags
 */
export class Database extends Context.Tag("examples/shared/Database")<Database, DatabaseInfo>() {}

/**
 * The database could not be started, reached or migrated.
 *
 * @since 0.1.0
 * @category Errors
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly step: "embedded" | "connect" | "migrate"
  readonly cause: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `Database ${this.step} failed: ${detail}`
  }
}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** A PostgreSQL server. Default: an embedded PGlite on 127.0.0.1. */
  readonly url?: Redacted.Redacted<string> | string | undefined
  /** Pool size on a server. Default 10. The embedded database always uses one connection. */
  readonly maxConnections?: number | undefined
}

/**
 * `PgClient` + `SqlClient` on the database, migrated, plus {@link Database}.
 *
 * @example
 * ```ts
 * import * as SqlClient from "@effect/sql/SqlClient"
 * import { Effect } from "effect"
 * import * as Database from "./Database.js"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   return yield* sql`SELECT count(*) AS jobs FROM bulwark_jobs`
 * }).pipe(Effect.provide(Database.layer()))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (
  options: Options = {}
): Layer.Layer<Database | PgClient.PgClient | SqlClient.SqlClient, DatabaseError> =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const info: DatabaseInfo = options.url === undefined
      ? {
        url: Redacted.make(
          (yield* Effect.mapError(
            EmbeddedPostgres.startEmbeddedPostgres,
            (cause) => new DatabaseError({ step: "embedded", cause })
          )).url
        ),
        embedded: true,
        maxConnections: EmbeddedPostgres.recommendedPoolSize
      }
      : {
        url: Redacted.isRedacted(options.url) ? options.url : Redacted.make(options.url),
        embedded: false,
        maxConnections: options.maxConnections ?? 10
      }
    const client = PgClient.layer({ url: info.url, maxConnections: info.maxConnections }).pipe(
      Layer.mapError((cause) => new DatabaseError({ step: "connect", cause }))
    )
    const migrated = Layer.effectDiscard(
      Effect.mapError(Migrations.run, (cause) => new DatabaseError({ step: "migrate", cause }))
    )
    return migrated.pipe(Layer.provideMerge(client), Layer.merge(Layer.succeed(Database, info)))
  }))

/**
 * {@link layer} configured from the environment: `DATABASE_URL` (optional;
 * unset = embedded) and `DATABASE_POOL_SIZE` (default 10, servers only).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: Layer.Layer<
  Database | PgClient.PgClient | SqlClient.SqlClient,
  DatabaseError | ConfigError.ConfigError
> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = yield* Config.option(Config.redacted("DATABASE_URL"))
    const maxConnections = yield* Config.integer("DATABASE_POOL_SIZE").pipe(
      Config.validate({ message: "DATABASE_POOL_SIZE must be at least 1", validation: (n) => n >= 1 }),
      Config.withDefault(10)
    )
    return layer({ url: Option.getOrUndefined(url), maxConnections })
  })
)
