/**
 * The PostgreSQL backend of the job queue, on `@effect/sql-pg`. Schema:
 * `packages/resilience/sql/0002_job_queue.sql` (run `Migrations.run` first):
 * `bulwark_jobs` (one row per job, kept after success for status and
 * deduplication) and `bulwark_dead_letters` (the dead-letter envelopes).
 *
 * - **One statement per operation**, each atomic on its own: `enqueueJobs` (a
 *   plain `INSERT … SELECT`), `enqueueDeduplicatedJobs` (`bulwark_jobs_enqueue`,
 *   the dedup rule of `0006_job_dedup.sql` for each job in input order, in a
 *   transaction when a batch could conflict or admission is taken), `claimJobs` (the only `FOR
 *   UPDATE SKIP LOCKED`, over a partial index of ready jobs; the rows are then
 *   updated through the primary key), `completeJobs`, `failJob` (retry or move
 *   to the dead-letter table), `heartbeatJobs`, `releaseJobs`, `reclaimJobs`,
 *   `replayDeadLetters`, `discardDeadLetters`, `queueStats`.
 * - **Group enqueue**: single-job enqueues made at the same time outside a
 *   transaction share statements (whatever piles up while one runs goes in the
 *   next; at most two at once), so concurrent producers cost one INSERT and one
 *   commit per batch. Each caller still returns only once its own job is
 *   committed, and an idle store sends a lone job at once.
 * - **Fencing**: completions, failures, heartbeats and releases match `id`,
 *   `state = 'running'`, `lease_owner`, `attempt` and `lease_epoch` (bumped by
 *   every claim); reclaims re-check `lease_expires_at < now()` inside the
 *   UPDATE. A late worker can never overwrite a newer outcome (River #1302,
 *   Bull's "Missing lock").
 * - **Time** is the database's `now()`: leases, backoffs and due times do not
 *   depend on the clocks of the worker machines.
 * - **Wake-ups**: `SELECT pg_notify(channel, queue)` (the `PgClient.notify` of
 *   @effect/sql-pg 0.53 is broken). Outside a transaction it is sent after the
 *   jobs committed, as its own statement: a transaction that NOTIFYs holds
 *   PostgreSQL's global notification lock until its commit is flushed, so
 *   notifying inside every INSERT would make concurrent enqueues commit one by
 *   one. One notification is in flight at a time per store; queues filled
 *   meanwhile are named by the next one, sent as soon as it returns, so no
 *   wake-up is lost (an idle worker wakes within milliseconds). Inside the
 *   caller's transaction the NOTIFY joins it and is delivered at commit. The
 *   listener (`PgClient.listen`, which neither reports a dropped
 *   connection nor reconnects) is checked with a ping through the database
 *   every `listenerCheckInterval`; when a ping does not come back it is torn
 *   down and re-created with backoff. Meanwhile workers keep polling, so a
 *   lost listener costs at most one poll interval of latency.
 *
 * - **Pausing** (`0008_job_queue_pause.sql`): the flag is a row of
 *   `bulwark_job_queues`; every claim reads it in `bulwark_job_queue_open`
 *   under a shared per-queue advisory lock that `bulwark_job_queue_pause`
 *   takes exclusively, so once a pause returns no claim takes a job of the
 *   queue. `resumeQueue` notifies the queue in the same statement.
 * - **Queue gauges**: one process per database reads them (`queueStats`,
 *   `deadLetterCounts`), the one holding the lease row of
 *   `bulwark_job_queue_reporter` (`takeReporterLease`, one statement per
 *   tick; no connection is held between reads; see `JobQueue.reportMetrics`).
 *
 * Enqueue runs on the `SqlClient` in context: inside `sql.withTransaction`
 * the job commits or rolls back with your writes. Notifications do not pass
 * through PgBouncer in transaction mode: polling still works there.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Layer, Redacted } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 * import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
 *
 * const Jobs = SqlJobQueue.layer({
 *   queues: { high_priority: { concurrency: 20 }, default: {}, batch: { concurrency: 2, visibilityTimeout: "5 minutes" } }
 * }).pipe(Layer.provide(PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") })))
 *
 * const program = JobQueue.stats.pipe(Effect.provide(Jobs))
 * ```
 *
 * @since 0.1.0
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Failure.js"
import * as internal from "./internal/sql/store.js"
import type { JobQueue, Options as QueueOptions } from "./JobQueue.js"
import type { JobStore } from "./JobStore.js"

/**
 * Options of the Postgres backend.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options extends QueueOptions {
  /** The LISTEN/NOTIFY channel. Default `"bulwark_jobs"`; 1–63 characters of `a-z 0-9 _`. */
  readonly channel?: string
  /** How often the listener is proven alive with a ping: ≥ 10 ms. Default 5 seconds. */
  readonly listenerCheckInterval?: Duration.DurationInput
}

/**
 * The store alone (for tools and tests that work below the `JobQueue` service).
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeStore: (
  options?: { readonly channel?: string; readonly listenerCheckInterval?: Duration.DurationInput }
) => Effect.Effect<JobStore, InvalidOptionsError, PgClient.PgClient | Scope.Scope> = internal.makeStore

/**
 * The {@link JobQueue} service on PostgreSQL.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (options: Options) => Layer.Layer<JobQueue, InvalidOptionsError, PgClient.PgClient> = internal.layer
