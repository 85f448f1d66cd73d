/**
 * The storage contract of the job queue: what a backend implements so that
 * `JobQueue`, `JobWorker` and `DeadLetter` can run on it. Two backends ship:
 * `JobQueue.layerMemory` (one process, Effect `Clock`) and `SqlJobQueue`
 * (PostgreSQL, many processes); both pass one conformance suite
 * (`test/job-queue/conformance.ts`).
 *
 * ```text
 *   insert ──▶ ready ──claim (lease)──▶ running ──complete──▶ succeeded
 *                ▲                        │  (heartbeat renews the lease)
 *                └── fail with retryIn, ◀─┤
 *                    release, reclaim     └── fail without retry, reclaim with no attempt left ──▶ dead
 *
 *   dead-letter entry (pending) ──replayDeadLetters──▶ replayed (a fresh ready job)
 *                               ──discardDeadLetters─▶ discarded
 *   prune: succeeded jobs and settled entries past their retention
 * ```
 *
 * Every write after a claim is **fenced** by its {@link Lease}: a worker
 * whose lease lapsed (and was reclaimed or claimed again) can no longer
 * renew, complete, fail or release the job. Each operation is atomic: one SQL
 * statement on PostgreSQL, one synchronous step in memory. Time is the
 * backend's own (the database's `now()`), so leases do not depend on the
 * clocks of worker machines.
 *
 * Applications use the `JobQueue` service; a store is reached as
 * the service's `store` (or built alone with `JobQueue.makeMemoryStore` and
 * `SqlJobQueue.makeStore`) by workers, tools and tests.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * // Lease one due job of the "default" queue for 30 seconds, then mark it done.
 * const runOne = Effect.gen(function*() {
 *   const { store } = yield* JobQueue.JobQueue
 *   const [job] = yield* store.claim({ queue: "default", limit: 1, owner: "tool", lease: Duration.seconds(30) })
 *   if (job !== undefined) yield* store.complete([job.lease])
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type { Verdict } from "../Failure.js"
import type * as DeadLetter from "./DeadLetter.js"
import type { JobId, JobInfo, JobStoreError, QueueStats } from "./JobQueue.js"

// -----------------------------------------------------------------------------
// Enqueue and claims
// -----------------------------------------------------------------------------

/**
 * A job as a backend stores it on enqueue (already validated and encoded).
 *
 * @since 0.1.0
 * @category Backend
 */
export interface NewJob {
  readonly queue: string
  readonly kind: string
  readonly payload: unknown
  readonly priority: number
  readonly maxAttempts: number
  readonly dedupKey: Option.Option<string>
  /** Absolute due time; `None` = now (the backend's clock). */
  readonly runAt: Option.Option<Date>
  /** Relative delay from the backend's now, used when `runAt` is `None`. */
  readonly delay: Duration.Duration
}

/**
 * A lease: which worker holds a job, for which attempt, and the claim epoch
 * (a per-job counter bumped by every claim). Every completion, failure,
 * heartbeat and release must match all three while the job is running, so a
 * worker whose lease lapsed can never overwrite a newer outcome.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface Lease {
  readonly id: JobId
  readonly owner: string
  readonly attempt: number
  readonly epoch: number
}

/**
 * A job handed to a worker by a claim.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface ClaimedJob {
  readonly lease: Lease
  readonly queue: string
  readonly kind: string
  readonly payload: unknown
  readonly priority: number
  readonly maxAttempts: number
  readonly dedupKey: Option.Option<string>
  readonly enqueuedAt: Date
  /** When it became due (for the wait histogram). */
  readonly runAt: Date
  /** The backend's clock at claim time. */
  readonly claimedAt: Date
  readonly leaseExpiresAt: Date
}

// -----------------------------------------------------------------------------
// Outcomes
// -----------------------------------------------------------------------------

/**
 * How a worker reports a failed attempt. `retryIn: None` sends the job to
 * the dead-letter queue (a terminal failure, or no attempts left).
 *
 * @since 0.1.0
 * @category Backend
 */
export interface FailRequest {
  readonly lease: Lease
  readonly error: {
    readonly tag: string
    readonly message: string
    readonly cause: string | null
    readonly verdict: Verdict
  }
  readonly retryIn: Option.Option<Duration.Duration>
}

/**
 * What a failure report did: `retrying` (with the new due time), `dead`
 * (moved to the dead-letter queue) or `rejected` (the lease no longer
 * matched: a late report from a worker that lost the job).
 *
 * @since 0.1.0
 * @category Backend
 */
export type FailOutcome =
  | { readonly _tag: "Retrying"; readonly runAt: Date }
  | { readonly _tag: "Dead" }
  | { readonly _tag: "Rejected" }

/**
 * A job whose lease lapsed and that a reclaim put back (`Retrying`) or, with
 * no attempts left, dead-lettered (`Dead`).
 *
 * @since 0.1.0
 * @category Backend
 */
export interface Reclaimed {
  readonly id: JobId
  readonly queue: string
  readonly outcome: "Retrying" | "Dead"
  readonly previousOwner: string
}

// -----------------------------------------------------------------------------
// Retention
// -----------------------------------------------------------------------------

/**
 * What {@link JobStore} `prune` takes: validated durations and a batch limit.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface PruneRequest {
  readonly keepSucceeded: Duration.Duration
  readonly keepSettledDeadLetters: Duration.Duration
  /** Most records of each kind (succeeded jobs, settled entries) deleted by one call. */
  readonly limit: number
}

/**
 * How many records a prune deleted: succeeded jobs, and settled dead-letter
 * entries (each with its dead job row).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Pruned {
  readonly succeeded: number
  readonly deadLetters: number
}

// -----------------------------------------------------------------------------
// The store
// -----------------------------------------------------------------------------

/**
 * The storage contract every backend implements (`JobQueue.layerMemory`,
 * `SqlJobQueue`). Workers and the dead-letter API use it; applications use
 * the `JobQueue` service instead. Each operation is atomic: one SQL
 * statement on Postgres, one synchronous step in memory.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface JobStore {
  /** `"memory"` or `"postgres"`. */
  readonly backend: string
  /** Stores jobs all-or-nothing; a `dedupKey` already present in the queue returns that job. Results in input order. */
  readonly insert: (
    jobs: ReadonlyArray<NewJob>
  ) => Effect.Effect<ReadonlyArray<{ readonly id: JobId; readonly deduplicated: boolean }>, JobStoreError>
  /** Leases up to `limit` due jobs of a queue, highest priority then oldest due first (`FOR UPDATE SKIP LOCKED`). */
  readonly claim: (request: {
    readonly queue: string
    readonly limit: number
    readonly owner: string
    readonly lease: Duration.Duration
  }) => Effect.Effect<ReadonlyArray<ClaimedJob>, JobStoreError>
  /** Extends the leases still held; returns their ids (a missing id = lease lost). */
  readonly heartbeat: (
    leases: ReadonlyArray<Lease>,
    lease: Duration.Duration
  ) => Effect.Effect<ReadonlyArray<JobId>, JobStoreError>
  /** Marks jobs succeeded; returns the ids accepted (the others' leases no longer matched). */
  readonly complete: (leases: ReadonlyArray<Lease>) => Effect.Effect<ReadonlyArray<JobId>, JobStoreError>
  /** Records a failed attempt: schedules the retry or dead-letters the job. */
  readonly fail: (request: FailRequest) => Effect.Effect<FailOutcome, JobStoreError>
  /** Hands leases back without burning the attempt (graceful shutdown); returns the ids released. */
  readonly release: (leases: ReadonlyArray<Lease>) => Effect.Effect<ReadonlyArray<JobId>, JobStoreError>
  /** Puts running jobs of these queues whose lease lapsed back to retrying (or dead), up to `limit`. */
  readonly reclaim: (
    queues: ReadonlyArray<string>,
    limit: number
  ) => Effect.Effect<ReadonlyArray<Reclaimed>, JobStoreError>
  readonly status: (id: JobId) => Effect.Effect<Option.Option<JobInfo>, JobStoreError>
  /** One aggregate read of every queue's counts (queues without jobs are absent). */
  readonly stats: Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError>
  /**
   * Wake-ups: the name of a queue that got new due jobs. Best effort (a lost
   * notification costs at most one poll interval); while subscribed, a
   * backend keeps its listener alive and reconnects it.
   */
  readonly wakeups: Stream.Stream<string>
  /** Whether the wake-up listener is connected (`true` for memory; `false` on Postgres while reconnecting or idle). */
  readonly listening: Effect.Effect<boolean>
  readonly listDeadLetters: (query: DeadLetter.Query) => Effect.Effect<DeadLetter.Page, JobStoreError>
  readonly getDeadLetter: (id: JobId) => Effect.Effect<Option.Option<DeadLetter.Entry>, JobStoreError>
  /** Replays entries as fresh jobs in their source queues, atomically per call; idempotent per entry. */
  readonly replayDeadLetters: (
    requests: ReadonlyArray<DeadLetter.ReplayRequest>
  ) => Effect.Effect<ReadonlyArray<DeadLetter.ReplayResult>, JobStoreError>
  readonly discardDeadLetters: (
    ids: ReadonlyArray<JobId>
  ) => Effect.Effect<ReadonlyArray<DeadLetter.DiscardResult>, JobStoreError>
  /**
   * Retention, one bounded step: deletes up to `limit` succeeded jobs that
   * finished more than `keepSucceeded` ago, and up to `limit` settled
   * (replayed or discarded) dead-letter entries settled more than
   * `keepSettledDeadLetters` ago together with their dead job rows, oldest
   * first, skipping rows another transaction holds. Never touches ready,
   * running or dead jobs whose entry is pending, nor pending entries.
   */
  readonly prune: (request: PruneRequest) => Effect.Effect<Pruned, JobStoreError>
}
