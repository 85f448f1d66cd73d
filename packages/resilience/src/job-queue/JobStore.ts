/**
 * The storage contract of the job queue: what a backend implements so that
 * `JobQueue`, `JobWorker` and `DeadLetter` can run on it. Two backends ship:
 * `JobQueue.layerMemory` (one process, Effect `Clock`) and `SqlJobQueue`
 * (PostgreSQL, many processes); both pass one conformance suite
 * (`test/job-queue/conformance.ts`).
 *
 * ```text
 *   insert ──▶ ready ──claim (lease)──▶ running ──complete (result)──▶ succeeded
 *                ▲                        │  (heartbeat renews the lease, progress reports)
 *                └── fail with retryIn, ◀─┤
 *                    release, reclaim     └── fail without retry, reclaim with no attempt left ──▶ dead
 *
 *   ready, running ──cancel──▶ cancelled (the lease is void: `cancelled` tells its holder)
 *
 *   dead-letter entry (pending) ──replayDeadLetters──▶ replayed (a fresh ready job)
 *                               ──discardDeadLetters─▶ discarded
 *   prune: succeeded jobs and settled entries past their retention
 * ```
 *
 * Every write after a claim is **fenced** by its {@link Lease}: a worker
 * whose lease lapsed (and was reclaimed or claimed again), or whose job was
 * cancelled, can no longer renew, complete, fail, release or report progress
 * on the job. Each operation is atomic: one SQL
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
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type { Verdict } from "../Failure.js"
import type * as DeadLetter from "./DeadLetter.js"
import type {
  AdmissionRejectedError,
  CancelResult,
  DedupConflictError,
  JobId,
  JobInfo,
  JobStoreError,
  QueueStats
} from "./JobQueue.js"

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
  /** How `dedupKey` deduplicates. Default: mode `"error"`, the key freed by death, no window, nothing else replaced. */
  readonly dedup?: DedupPolicy
}

/**
 * How a {@link NewJob}'s dedup key deduplicates (`JobQueue.DedupOptions`,
 * validated): the rule both backends apply, in input order, is
 *
 * 1. no job of the same queue, kind and key holds the key → insert (`created`);
 * 2. the holder was enqueued longer ago than `window` → it gives up the key, insert;
 * 3. same payload (JSON equality) → `deduplicated`, unless `onConflict` is
 *    `"replace"`, the holder is waiting (ready, never attempted) and `replaces`
 *    names a field: then `replaced`;
 * 4. another payload → `"ignore"`: `deduplicated`; `"replace"` on a waiting
 *    holder: `replaced` (payload and the `replaces` fields overwritten);
 *    otherwise a `DedupConflictError`.
 *
 * A job holds its key while ready, running or succeeded, and while dead if it
 * was inserted with `keepAfterDeath`; a job superseded by a window, dead
 * without `keepAfterDeath` or in any other state (cancelled) does not.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface DedupPolicy {
  readonly onConflict: "error" | "replace" | "ignore"
  readonly keepAfterDeath: boolean
  readonly window: Option.Option<Duration.Duration>
  /** Which fields a replace overwrites besides the payload: the ones the enqueue gave. */
  readonly replaces: {
    readonly priority: boolean
    readonly maxAttempts: boolean
    /** `runAt` or `delay`. */
    readonly runAt: boolean
  }
}

/**
 * What {@link JobStore} `insert` answers per job, in input order. At most one
 * of `deduplicated` and `replaced` is `true`; both `false`: a new job.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface Inserted {
  readonly id: JobId
  readonly deduplicated: boolean
  readonly replaced: boolean
}

/**
 * Takes admission for the jobs an insert is about to create (never for
 * deduplicated or replaced ones); a failure undoes the whole insert.
 *
 * @since 0.1.0
 * @category Backend
 */
export type Admit = (created: ReadonlyArray<NewJob>) => Effect.Effect<void, AdmissionRejectedError>

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
 * A successful attempt: its lease, and the result to store with the job
 * (the handler's return value encoded with the definition's `result` Schema,
 * JSON, already checked against the queue's `maxResultBytes`). A bare
 * {@link Lease} is a completion without a result.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface Completion extends Lease {
  /** Absent or `None`: no result is stored. */
  readonly result?: Option.Option<unknown>
}

/**
 * A progress report of a running job, fenced by its lease: `value` from 0 to
 * 100, `message` already cut to its limit (see `JobWorker.progress`).
 *
 * @since 0.1.0
 * @category Backend
 */
export interface ProgressReport {
  readonly value: number
  readonly message: Option.Option<string>
}

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
  /** How long succeeded and cancelled jobs are kept after they finished. */
  readonly keepSucceeded: Duration.Duration
  readonly keepSettledDeadLetters: Duration.Duration
  /** Most records of each kind (succeeded jobs, cancelled jobs, settled entries) deleted by one call. */
  readonly limit: number
}

/**
 * How many records a prune deleted: succeeded jobs, cancelled jobs, and
 * settled dead-letter entries (each with its dead job row).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Pruned {
  readonly succeeded: number
  readonly cancelled: number
  readonly deadLetters: number
}

// -----------------------------------------------------------------------------
// Queue metrics
// -----------------------------------------------------------------------------

/**
 * Dead-letter entries of one queue in one status, counted by the backend.
 *
 * @example
 * ```ts
 * import type { JobQueue } from "@bulwark/resilience"
 *
 * const count: JobQueue.DeadLetterCount = { queue: "emails", status: "replayed", count: 3 }
 * ```
 *
 * @since 0.1.0
 * @category Backend
 */
export interface DeadLetterCount {
  readonly queue: string
  readonly status: DeadLetter.EntryStatus
  readonly count: number
}

/**
 * The metrics reporter's lock ({@link JobStore} `reporterLock`). `held(ttl)`
 * answers whether this caller holds it: it takes the lock when it is free
 * (or its holder let it run out) and renews it for `ttl` when it holds it;
 * a holder that does not call again within `ttl` loses it to the next
 * caller. It never fails: a backend error answers `false`.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * // Whether this process is the one that reads the queue depth for everyone (for the next 45 seconds).
 * const leading = Effect.scoped(Effect.gen(function*() {
 *   const { store } = yield* JobQueue.JobQueue
 *   const lock = yield* store.reporterLock
 *   return yield* lock.held(Duration.seconds(45))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Backend
 */
export interface ReporterLock {
  readonly held: (ttl: Duration.Duration) => Effect.Effect<boolean>
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
  /**
   * Stores jobs all-or-nothing, deduplicating by {@link DedupPolicy} in input order; results in input order. A dedup
   * conflict fails the call (its `index` set when more than one job was given) and stores nothing. With `admit`,
   * it is called once, only when jobs are to be created, with those jobs: inside the atomic insert when a job has a
   * dedup key (concurrent inserts of the same key wait for it, so only the job actually created takes admission;
   * a refusal stores nothing), before it otherwise (every job is created).
   */
  readonly insert: (
    jobs: ReadonlyArray<NewJob>,
    admit?: Admit
  ) => Effect.Effect<ReadonlyArray<Inserted>, JobStoreError | DedupConflictError | AdmissionRejectedError>
  /**
   * Leases up to `limit` due jobs of a queue, highest priority then oldest due first (`FOR UPDATE SKIP LOCKED`).
   * A paused queue yields none: once {@link JobStore.pause} returned, no claim takes a job of that queue.
   */
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
  /** Marks jobs succeeded, storing their results; returns the ids accepted (the others' leases no longer matched). */
  readonly complete: (completions: ReadonlyArray<Completion>) => Effect.Effect<ReadonlyArray<JobId>, JobStoreError>
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
  /**
   * Cancels a ready or running job in one atomic step: `cancelled`, finished now, its lease void and its dedup key
   * released. Succeeded, dead and cancelled jobs are left as they are (`AlreadyFinished`). No lease needed: it is an
   * operator's decision, and the fence turns away the running worker's late outcome.
   */
  readonly cancel: (id: JobId) => Effect.Effect<CancelResult, JobStoreError>
  /**
   * Of these leases, the ones whose job was cancelled while they held it (same attempt and claim epoch): how a
   * worker learns it must stop a handler. A read; renews nothing.
   */
  readonly cancelled: (leases: ReadonlyArray<Lease>) => Effect.Effect<ReadonlyArray<JobId>, JobStoreError>
  /** Stores a running job's latest progress; `false` when the lease no longer holds the job. */
  readonly progress: (lease: Lease, report: ProgressReport) => Effect.Effect<boolean, JobStoreError>
  /** One aggregate read of every queue's counts (queues without jobs are absent, unless paused). */
  readonly stats: Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError>
  /**
   * Pauses a queue for every worker of the backend: once it returns, no claim takes a job of the queue (on
   * PostgreSQL it waits for the claims of that queue in flight). Running jobs are not touched; enqueues are
   * accepted. `true` when the queue was not paused already.
   */
  readonly pause: (queue: string) => Effect.Effect<boolean, JobStoreError>
  /** Resumes a paused queue and wakes its workers; `true` when it was paused. */
  readonly resume: (queue: string) => Effect.Effect<boolean, JobStoreError>
  /** Dead-letter entries per queue and status (pending, replayed, discarded), from the backend; zero counts absent. */
  readonly deadLetterCounts: Effect.Effect<ReadonlyArray<DeadLetterCount>, JobStoreError>
  /**
   * The election of the one process that reads the queue gauges for the whole backend (see
   * `JobQueue.reportMetrics`), given up when the scope closes. On PostgreSQL, a lease in
   * `bulwark_job_queue_reporter` that its holder renews at each read (no connection is held between reads); in
   * memory, always held (a store is one process).
   */
  readonly reporterLock: Effect.Effect<ReporterLock, never, Scope.Scope>
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
