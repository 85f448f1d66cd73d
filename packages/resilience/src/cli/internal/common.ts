/**
 * What every `bulwark` command shares: the `--database-url` and `--json`
 * options, the connection to the job queue over that database, and printing.
 *
 * A leaf of the CLI: the command modules (`dlq.ts`, `dlqReplay.ts`,
 * `dlqDiscard.ts`, `queues.ts`) import it, and `cli.ts` imports them, so it
 * imports none of them.
 */
import * as Options from "@effect/cli/Options"
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as JobQueue from "../../job-queue/JobQueue.js"
import * as SqlJobQueue from "../../job-queue/SqlJobQueue.js"
import * as database from "./database.js"
import { type CliError, type DatabaseError, UsageError } from "./errors.js"

// -----------------------------------------------------------------------------
// Options every command takes
// -----------------------------------------------------------------------------

/** @internal */
export const databaseUrl = Options.text("database-url").pipe(
  Options.withDescription(
    "PostgreSQL URL (postgres://user@host:5432/db). Default: the DATABASE_URL environment variable"
  ),
  Options.optional
)

/** @internal */
export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON (for scripts) instead of a table"))

/** @internal */
export const print = (text: string) => Console.log(text)

// -----------------------------------------------------------------------------
// Connecting: the job queue service over the database the command points at
// -----------------------------------------------------------------------------

/** @internal */
export const storeFailed = (error: JobQueue.JobStoreError): DatabaseError =>
  database.statementFailed(error.operation, error)

/**
 * What a command works with: the job queue service over the database the
 * command points at, and a way to get one that also knows more queues.
 *
 * @internal
 */
export interface Connection {
  readonly service: JobQueue.JobQueue
  /** The service with these queues configured too (replaying an edited payload re-checks it against its queue). */
  readonly withQueues: (queues: ReadonlyArray<string>) => Effect.Effect<JobQueue.JobQueue, UsageError>
}

/**
 * Stands in when the database has no queue at all: the service needs one
 * configured queue, and dead-letter reads and writes go to the store whatever
 * the configured queues are. It is never written anywhere.
 */
const PLACEHOLDER_QUEUE = "bulwark-cli"

/**
 * The CLI serves whatever queues the database holds: the service is
 * configured with the queues that have jobs or pending dead letters (plus
 * those of the given job definitions), since an operator tool does not know
 * the application's worker settings and does not need them.
 *
 * @internal
 */
export const connect = <A, E, R>(
  flag: Option.Option<string>,
  definitions: ReadonlyArray<JobQueue.JobDefinition.Any>,
  use: (connection: Connection) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | CliError, Exclude<Exclude<R, Scope.Scope>, PgClient.PgClient>> =>
  Effect.flatMap(database.resolveUrl(flag), (url) =>
    Effect.gen(function*() {
      const store = yield* SqlJobQueue.makeStore().pipe(
        Effect.mapError((error) => new UsageError({ message: error.message }))
      )
      const present = yield* Effect.mapError(store.stats, storeFailed)
      const known = [...present.map((row) => row.queue), ...definitions.map((definition) => definition.queue)]
      const withQueues = (queues: ReadonlyArray<string>): Effect.Effect<JobQueue.JobQueue, UsageError> => {
        const names = new Set([...known, ...queues])
        if (names.size === 0) names.add(PLACEHOLDER_QUEUE)
        const config = JobQueue.makeConfig({
          queues: Object.fromEntries([...names].map((name) => [name, {}])),
          jobs: definitions
        })
        return Either.isLeft(config)
          ? Effect.fail(new UsageError({ message: config.left.message }))
          : Effect.succeed(JobQueue.make(config.right, store))
      }
      return yield* use({ service: yield* withQueues([]), withQueues })
    }).pipe(Effect.scoped, Effect.provide(database.layer(url))))
