/**
 * `bulwark`: the operator's command line for the Postgres job queue — the
 * dead-letter queue, single jobs, queue depth, pausing queues — built with
 * `@effect/cli`.
 *
 * ```text
 * bulwark dlq list     [--queue Q] [--kind K] [--error-tag T] [--since 2h|2026-03-01]
 *                      [--status pending|replayed|discarded|all] [--oldest] [--limit 50] [--cursor C] [--json]
 * bulwark dlq show     <id> [--json]
 * bulwark dlq replay   <id>... [--payload JSON --jobs ./jobs.ts] [--json]
 * bulwark dlq replay   --all [--queue Q] [--kind K] [--error-tag T] [--since S] [--limit 1000] [--json]
 * bulwark dlq discard  <id>... --yes [--json]
 * bulwark dlq discard  --all [filters] [--limit 1000] --yes [--json]
 * bulwark jobs show    <id> [--json]
 * bulwark jobs cancel  <id> [--json]
 * bulwark queues stats [--json]
 * bulwark queues pause  <queue> [--json]
 * bulwark queues resume <queue> [--json]
 * bulwark schedules list [--json]
 * ```
 *
 * Every command takes `--database-url postgres://…`, else reads
 * `DATABASE_URL`; with neither it stops with a usage error (it never guesses
 * a database). Output is a table for people; `--json` prints one JSON
 * document for scripts (times in ISO-8601, absent values as `null`).
 *
 * - `list` pages newest first (`--oldest` reverses); when more entries exist
 *   it prints the `--cursor` of the next page (`next` in JSON).
 * - `show` prints the full envelope: payload, every attempt's error (tag,
 *   verdict, worker, message, cause, times), enqueue and dead-letter times.
 * - `replay` creates a fresh job per entry in its source queue. It is
 *   idempotent: replaying an entry again creates nothing and names the job the
 *   first replay created. With ids, every id must exist and none may be
 *   discarded, or nothing is replayed. `--all` replays pending entries that
 *   match the filters and were dead-lettered before the command started
 *   (oldest first, at most `--limit`), so a job that dies again at once is not
 *   replayed again by the same run. `--payload` (one id) replaces the payload;
 *   it must be JSON and pass the kind's Schema, so the CLI needs the job
 *   definitions: `--jobs <module>` loads them from a module's exports, or an
 *   application embedding the CLI passes them to {@link run}.
 * - `discard` marks entries discarded (they stay for audit). Without `--yes`
 *   it changes nothing, says what it would discard and exits with 2.
 * - `jobs show` prints one job: its status, attempts, dedup key, the latest
 *   progress its handler reported, its times and lease, its payload, the
 *   result it stored, and every attempt's error. JSON: `JobInfo`'s fields,
 *   `progress` as `{ value, message, attempt, updatedAt }`, and `hasResult`
 *   beside `result` (a job may store `null`).
 * - `jobs cancel` cancels a job that has not finished (`JobQueue.cancel`): a
 *   waiting one never runs, a running one is interrupted on its worker within
 *   about a second. Cancelling it again succeeds ("was already cancelled"); a
 *   job that already succeeded or died exits with 2. JSON: `{ id, outcome,
 *   queue, previous }`, `outcome` one of `cancelled`, `already_cancelled`,
 *   `already_succeeded`, `already_dead`, `not_found`, printed whatever the
 *   exit code.
 * - `queues stats` prints ready / scheduled / retrying / running jobs and
 *   pending dead letters per queue, the age of the oldest ready job, and
 *   whether the queue is paused.
 * - `queues pause` stops every worker, in every process, from claiming the
 *   queue's jobs (it returns once the claims in flight committed; running
 *   jobs finish); `queues resume` undoes it and wakes the workers. Both are
 *   idempotent ("was already paused" / "was not paused"); any well-formed
 *   queue name is accepted, with a note when the database has never seen it.
 *   JSON: `{ queue, paused, changed, known }`.
 * - `schedules list` prints the recurring jobs (`JobSchedule`, table
 *   `bulwark_job_schedules`): expression, time zone, last tick enqueued, next
 *   run, and how long ago a scheduler last advanced each.
 *
 * Exit codes ({@link ExitCode}): 0 done; 1 the database was unreachable or a
 * statement failed; 2 bad command line (unknown command or flag, bad value,
 * no database URL, missing `--yes`, invalid `--payload`) or an operation the
 * entry's state forbids (replaying a discarded entry, discarding a replayed
 * one, cancelling a finished job); 3 an id named no dead-letter entry (or, for
 * `jobs`, no job). With 2 or 3 nothing was changed.
 * A malformed command line prints the error and the usage of the command it
 * named to stderr.
 *
 * `bulwark --help` (and `bulwark dlq --help`, `bulwark dlq list --help`, …)
 * prints the help, `bulwark --version` the version of `@bulwark/resilience`.
 * Help, errors and tables are plain text when the stream is not a terminal or
 * `NO_COLOR` is set, so `bulwark --help | less` and logs hold no escape codes.
 *
 * The package's `bin` is `bulwark`: in an application, `npx bulwark dlq list`.
 * It needs the optional peer dependencies `@effect/cli`,
 * `@effect/platform-node`, `@effect/sql` and `@effect/sql-pg`; without them
 * it names the missing ones and the `npm install` that adds them, and exits
 * with 1. In this repository: `npm run bulwark -- dlq list`.
 *
 * Or embed it:
 *
 * @example
 * ```ts
 * import { NodeContext, NodeRuntime } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import * as Cli from "@bulwark/resilience/Cli"
 * import { SendReceipt } from "./jobs.js"
 *
 * // Your own `bulwark`, which validates edited payloads with your Schemas.
 * Cli.run({ jobs: [SendReceipt] })(process.argv).pipe(
 *   Effect.flatMap((code) =>
 *     Effect.sync(() => {
 *       process.exitCode = code
 *     })
 *   ),
 *   Effect.provide(NodeContext.layer),
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as CliApp from "@effect/cli/CliApp"
import type * as Effect from "effect/Effect"
import type { JobDefinition } from "../job-queue/JobQueue.js"
import * as internal from "./internal/cli.js"
import * as errors from "./internal/errors.js"

/**
 * The exit codes of `bulwark`: `ok` 0, `databaseError` 1, `usage` 2, `notFound` 3.
 *
 * @since 0.1.0
 * @category Constants
 */
export const ExitCode: {
  readonly ok: 0
  readonly databaseError: 1
  readonly usage: 2
  readonly notFound: 3
} = errors.ExitCode

/**
 * @since 0.1.0
 * @category Models
 */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

/**
 * Options of an embedded CLI.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** Job definitions whose Schemas validate an edited `--payload` on replay. */
  readonly jobs?: ReadonlyArray<JobDefinition.Any>
}

/**
 * The `bulwark` command tree, to mount under an application's own
 * `@effect/cli` command.
 *
 * @since 0.1.0
 * @category Commands
 */
export const command: typeof internal.command = internal.command

/**
 * Runs the CLI on `argv` (shaped like `process.argv`) and succeeds with the
 * exit code; errors are printed to stderr, with the usage when the command
 * line is malformed. Output is plain text on a stream that is not a terminal
 * or when `NO_COLOR` is set. Needs the platform's CLI environment
 * (`NodeContext.layer` from `@effect/platform-node`).
 *
 * @since 0.1.0
 * @category Running
 */
export const run: (
  options?: Options
) => (argv: ReadonlyArray<string>) => Effect.Effect<ExitCode, never, CliApp.CliApp.Environment> = internal.run
