/**
 * An embedded PostgreSQL for the examples: PGlite (PostgreSQL compiled to
 * WebAssembly, in this process) served over the PostgreSQL wire protocol by
 * `@electric-sql/pglite-socket` on 127.0.0.1, an ephemeral port. The very
 * same SQL the examples send to a real server runs on it, through the same
 * `@effect/sql-pg` client, so `DATABASE_URL` can switch to a real server with
 * nothing else changed.
 *
 * What PGlite behind pglite-socket is, and what the examples do about it:
 *
 * - **One backend.** PGlite is a single PostgreSQL session. The socket server
 *   lets several connections in, queues their protocol messages and runs them
 *   one at a time; while one connection is inside `BEGIN … COMMIT` the others
 *   wait. Session state (settings, LISTEN registrations) is shared by all.
 * - **Use a pool of one connection** ({@link recommendedPoolSize}). The server
 *   serialises per *message*, not per extended-protocol batch: two connections
 *   sending `Parse/Bind/Execute/Sync` at the same time can interleave and bind
 *   each other's unnamed statement (electric-sql/pglite#1046, open against
 *   0.2.17). With one pooled connection only one client speaks the extended
 *   protocol; PGlite runs one statement at a time anyway, so a bigger pool
 *   would buy no parallelism.
 * - **LISTEN/NOTIFY does not cross connections.** A notification is written
 *   to the socket of the connection that sent `NOTIFY`, never to the one that
 *   sent `LISTEN`. The job queue's wake-ups therefore never arrive: its
 *   listener's ping times out, it logs a warning and reconnects with backoff,
 *   and workers find jobs by polling (`pollInterval`). Use a short poll
 *   interval on the embedded database, and {@link quietListenerWarnings}
 *   to drop those expected warnings from the logs.
 * - The server admits {@link maxConnections} connections: the pool's one, the
 *   job queue's listener and a few spare (a listener being replaced, a `psql`
 *   an operator opens).
 *
 * Everything else Bulwark's migrations and queries use works on it: PL/pgSQL
 * functions, `INSERT … ON CONFLICT`, `FOR UPDATE SKIP LOCKED`, `jsonb`,
 * partial indexes, the Migrator's table lock, advisory locks.
 *
 * @since 0.1.0
 */
import { PGlite } from "@electric-sql/pglite"
import { PGLiteSocketServer } from "@electric-sql/pglite-socket"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as HashMap from "effect/HashMap"
import * as HashSet from "effect/HashSet"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

/**
 * PGlite could not start, or its socket server could not listen.
 *
 * @since 0.1.0
 * @category Errors
 */
export class EmbeddedPostgresError extends Data.TaggedError("EmbeddedPostgresError")<{
  readonly step: "create" | "listen"
  readonly cause: unknown
}> {
  override get message(): string {
    const detail = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return this.step === "create"
      ? `Could not start the embedded PostgreSQL (PGlite): ${detail}`
      : `Could not serve the embedded PostgreSQL on 127.0.0.1: ${detail}`
  }
}

/**
 * A running embedded PostgreSQL.
 *
 * @since 0.1.0
 * @category Models
 */
export interface EmbeddedPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
}

/**
 * The connection pool size to use against the embedded server: one (see the
 * module's notes on interleaved extended-protocol batches).
 *
 * @since 0.1.0
 * @category Constants
 */
export const recommendedPoolSize = 1

/**
 * How many connections the embedded server admits at once.
 *
 * @since 0.1.0
 * @category Constants
 */
export const maxConnections = 8

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** A directory to keep the database in across runs. Default: in memory, gone when the scope closes. */
  readonly dataDir?: string
}

const parsePort = (address: string): number | undefined => {
  const match = /:(\d+)$/.exec(address)
  const port = match?.[1] === undefined ? Number.NaN : Number(match[1])
  return Number.isInteger(port) && port > 0 && port < 65_536 ? port : undefined
}

/**
 * Starts PGlite and serves it on 127.0.0.1 (an ephemeral port) until the
 * scope closes; then the server stops and the database closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { make } from "./EmbeddedPostgres.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const { url } = yield* make({ dataDir: ".data/payments" })
 *   yield* Effect.log(`PostgreSQL at ${url}`)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make = (options: Options = {}): Effect.Effect<EmbeddedPostgres, EmbeddedPostgresError, Scope.Scope> =>
  Effect.gen(function*() {
    const db = yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => options.dataDir === undefined ? PGlite.create() : PGlite.create(options.dataDir),
        catch: (cause) => new EmbeddedPostgresError({ step: "create", cause })
      }),
      (db) => Effect.promise(() => db.close()).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
    )
    const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections })
    yield* Effect.acquireRelease(
      Effect.tryPromise({
        try: () => server.start(),
        catch: (cause) => new EmbeddedPostgresError({ step: "listen", cause })
      }),
      () => Effect.promise(() => server.stop()).pipe(Effect.timeoutOption("5 seconds"), Effect.ignore)
    )
    const address = server.getServerConn()
    const port = parsePort(address)
    if (port === undefined) {
      return yield* new EmbeddedPostgresError({ step: "listen", cause: `unexpected server address "${address}"` })
    }
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, port }
  })

/**
 * An in-memory embedded PostgreSQL on 127.0.0.1 for the life of the scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { startEmbeddedPostgres } from "./EmbeddedPostgres.js"
 *
 * const program = Effect.scoped(Effect.flatMap(startEmbeddedPostgres, ({ url }) => Effect.log(url)))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const startEmbeddedPostgres: Effect.Effect<EmbeddedPostgres, EmbeddedPostgresError, Scope.Scope> = make()

const isListenerWarning = (options: Logger.Logger.Options<unknown>): boolean => {
  if (options.logLevel._tag !== "Warning") return false
  if (Option.getOrUndefined(HashMap.get(options.annotations, "module")) !== "SqlJobQueue") return false
  const message = Array.isArray(options.message) ? options.message.join(" ") : String(options.message)
  return message.includes("wake-up listener")
}

/**
 * Drops the job queue's "wake-up listener is down; reconnecting" warnings
 * from the logs of this fiber and the fibers it forks, for the rest of the
 * scope: on the embedded database they are expected (see the module notes)
 * and say nothing an operator could act on. Every other log line passes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { quietListenerWarnings, startEmbeddedPostgres } from "./EmbeddedPostgres.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   yield* startEmbeddedPostgres
 *   yield* quietListenerWarnings
 *   // start workers here
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Logging
 */
export const quietListenerWarnings: Effect.Effect<void, never, Scope.Scope> = Effect.locallyScopedWith(
  FiberRef.currentLoggers,
  (loggers: HashSet.HashSet<Logger.Logger<unknown, unknown>>): HashSet.HashSet<Logger.Logger<unknown, unknown>> =>
    HashSet.map(loggers, (logger) =>
      Logger.make((options) => {
        if (!isListenerWarning(options)) logger.log(options)
      }))
)
