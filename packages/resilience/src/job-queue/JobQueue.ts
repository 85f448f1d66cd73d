/**
 * Durable background jobs: typed job definitions, confirmed and deduplicated
 * enqueue, queue tiers, admission control, status and queue statistics.
 *
 * ```text
 *   enqueue ──▶ queued / scheduled ──claim (lease)──▶ running ──▶ succeeded (with its result, if any)
 *                    ▲                                   │
 *                    └──── retrying ◀── transient failure┤ (backoff: min(base·2^(n-1)·(1±jitter), cap))
 *                                                        └──▶ dead (terminal failure, undecodable payload,
 *                                                              attempts exhausted) ──▶ dead-letter queue
 *
 *   queued / scheduled / retrying / running ──cancel──▶ cancelled (a running handler is interrupted)
 * ```
 *
 * A job is a {@link JobDefinition} (a `kind`, a default queue and a `Schema`
 * for its payload) plus a payload. {@link enqueue} validates the payload with
 * the Schema, encodes it to JSON, checks its size and the queue's admission
 * limiter, and returns only once the job is stored: the returned id is a
 * promise that the job exists. A dedup key ({@link DedupOptions}) makes
 * enqueue idempotent without ever dropping work silently: the same key, kind
 * and queue with the same payload returns the existing job; another payload
 * is a {@link DedupConflictError} unless the enqueue says to `replace` the
 * waiting job or `ignore` the new payload. A job that died (or was superseded
 * after a dedup `window`) frees its key; admission tokens are taken only for
 * jobs actually inserted. {@link enqueueMany} is all-or-nothing.
 *
 * Queues are tiers (`high_priority`, `default`, `batch`…), each with its own
 * worker pool, concurrency, lease, retry policy and payload limit, so a flood
 * of batch jobs never takes a slot from a latency-sensitive tier (see
 * `JobWorker`). Delivery is at-least-once: a worker that dies mid-job loses its
 * lease and the job runs again, so handlers should be idempotent (pair them
 * with a dedup key of your own, or the idempotency module).
 *
 * Backends: {@link layerMemory} (one process, Effect `Clock`, for tests) and
 * `SqlJobQueue.layer` (PostgreSQL, many processes). Both implement
 * {@link JobStore} and pass one conformance suite (`test/job-queue/`).
 *
 * Defaults per queue: concurrency 10, up to 10 jobs claimed ahead (fast jobs
 * only), lease (visibility timeout) 30 s renewed every 10 s, poll every 1 s, 5
 * attempts, retry delay from 5 s doubling up to 5 minutes with ±25 % jitter,
 * payloads up to 256 KiB, results up to 64 KiB.
 *
 * {@link cancel} stops a job that has not finished: a waiting one never runs,
 * a running one is interrupted on its worker within about a second. A handler
 * reports progress with `JobWorker.progress`, and a definition with a
 * `result` Schema stores what its handler returns; {@link status} shows both.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError, Verdict } from "../Failure.js"
import type * as RateLimiter from "../rate-limiter/RateLimiter.js"
import * as backoff from "./internal/backoff.js"
import * as cancellation from "./internal/cancel.js"
import * as config from "./internal/config.js"
import * as definition from "./internal/definition.js"
import {
  AdmissionRejectedError,
  AttemptError,
  DedupConflictError,
  InvalidPayloadError,
  JobStoreError,
  PayloadTooLargeError,
  UnknownQueueError
} from "./internal/errors.js"
import * as internal from "./internal/jobQueue.js"
import * as memoryStore from "./internal/memory/store.js"
import * as metrics from "./internal/metrics.js"
import * as pausing from "./internal/pause.js"
import { JobProgress } from "./internal/progress.js"
import * as retention from "./internal/retention.js"
import * as service from "./internal/tag.js"
import type { JobStore, Pruned } from "./JobStore.js"

// -----------------------------------------------------------------------------
// Job definitions
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Symbols
 */
export const DefinitionTypeId: typeof definition.DefinitionTypeId = definition.DefinitionTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type DefinitionTypeId = typeof DefinitionTypeId

/**
 * A job id. Postgres ids are the decimal text of a `bigint` identity, so they
 * sort in enqueue order; memory ids look the same.
 *
 * @since 0.1.0
 * @category Models
 */
export type JobId = string

/**
 * A kind of job: its name (`kind`, stored with every job and used to find its
 * handler), the queue it goes to by default, the Schema of its payload and,
 * optionally, the Schema of the result its handler returns. Both Schemas'
 * encoded sides must be JSON (they are stored as `jsonb`), and they need no
 * context.
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobDefinition<
  Kind extends string = string,
  Payload extends Schema.Schema.AnyNoContext = Schema.Schema.AnyNoContext,
  Result extends Schema.Schema.AnyNoContext = never
> {
  readonly [DefinitionTypeId]: DefinitionTypeId
  readonly kind: Kind
  readonly queue: string
  readonly payload: Payload
  /** The Schema of what its handler returns, stored (encoded) when a job succeeds; none: nothing is stored. */
  readonly result: Option.Option<Result>
  /** Overrides the queue's `retry.maxAttempts` for this kind. */
  readonly maxAttempts: Option.Option<number>
  /** Default priority of this kind's jobs (higher runs first). Default 0. */
  readonly priority: number
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace JobDefinition {
  /**
   * Any job definition.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Any = JobDefinition<string, Schema.Schema.AnyNoContext, Schema.Schema.AnyNoContext>

  /**
   * The decoded payload type of a definition.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Payload<D> = D extends JobDefinition<infer _Kind, infer S, infer _Result> ? Schema.Schema.Type<S>
    : never

  /**
   * The encoded (stored, JSON) payload type of a definition.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Encoded<D> = D extends JobDefinition<infer _Kind, infer S, infer _Result> ? Schema.Schema.Encoded<S>
    : never

  /**
   * What a definition's handler returns: the decoded side of its `result`
   * Schema, or anything (ignored, nothing stored) when it has none.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Result<D> = D extends JobDefinition<infer _Kind, infer _Payload, infer R>
    ? [R] extends [never] ? unknown : Schema.Schema.Type<R>
    : never

  /**
   * What {@link define} takes.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options<
    Kind extends string,
    Payload extends Schema.Schema.AnyNoContext,
    Result extends Schema.Schema.AnyNoContext = never
  > {
    /** Stored with every job; 1–128 characters of `A-Z a-z 0-9 _ . : / -`. */
    readonly kind: Kind
    /** The queue (tier) its jobs go to unless enqueue says otherwise. */
    readonly queue: string
    readonly payload: Payload
    /**
     * The Schema of what the handler returns. A job that succeeds stores it, encoded, as its result (shown by
     * `status`), up to the queue's `maxResultBytes`. Default: none (the handler's return value is ignored).
     */
    readonly result?: Result
    /** Attempts before the dead-letter queue, first included: 1–1,000. Default: the queue's. */
    readonly maxAttempts?: number
    /** −32,768 to 32,767, higher first. Default 0. */
    readonly priority?: number
  }
}

/**
 * Defines a kind of job. Pure: the kind, queue and limits are checked when
 * the definition is registered (`jobs` option of a backend layer) or used
 * (enqueue, worker), with typed errors.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const SendReceipt = JobQueue.define({
 *   kind: "send-receipt",
 *   queue: "default",
 *   payload: Schema.Struct({ orderId: Schema.String, email: Schema.String })
 * })
 *
 * // Its handler must return { url }, stored with the succeeded job.
 * const Export = JobQueue.define({
 *   kind: "export",
 *   queue: "batch",
 *   payload: Schema.Struct({ reportId: Schema.Number }),
 *   result: Schema.Struct({ url: Schema.String })
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const define: <
  const Kind extends string,
  Payload extends Schema.Schema.AnyNoContext,
  Result extends Schema.Schema.AnyNoContext = never
>(
  options: JobDefinition.Options<Kind, Payload, Result>
) => JobDefinition<Kind, Payload, Result> = definition.define

/**
 * @since 0.1.0
 * @category Guards
 */
export const isJobDefinition: (u: unknown) => u is JobDefinition.Any = definition.isJobDefinition

// -----------------------------------------------------------------------------
// Status
// -----------------------------------------------------------------------------

/**
 * Where a job is:
 *
 * - `queued`: due now, never attempted (or its lease was handed back on shutdown);
 * - `scheduled`: not yet due (a future `runAt` / `delay`), never attempted;
 * - `running`: leased by a worker;
 * - `retrying`: failed transiently (or its lease lapsed), waiting for its next attempt;
 * - `succeeded`: done;
 * - `dead`: failed for good; its envelope is in the dead-letter queue (`DeadLetter`);
 * - `cancelled`: stopped by {@link cancel} before it finished (not a dead letter).
 *
 * @since 0.1.0
 * @category Models
 */
export type JobStatus = "queued" | "scheduled" | "running" | "retrying" | "succeeded" | "dead" | "cancelled"

// Declared in `internal/errors.ts` and `internal/progress.ts`, leaves the internals import.
export { AttemptError, JobProgress }

/**
 * What {@link status} reports about a job.
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobInfo {
  readonly id: JobId
  readonly queue: string
  readonly kind: string
  readonly status: JobStatus
  readonly priority: number
  /** Attempts started so far (the running one included; a lease handed back on shutdown is not counted). */
  readonly attempts: number
  readonly maxAttempts: number
  /** The stored (encoded, JSON) payload. */
  readonly payload: unknown
  /** Its dedup key; a cancelled job released it (`None`), so the key enqueues a new job. */
  readonly dedupKey: Option.Option<string>
  readonly enqueuedAt: Date
  /** When it is (or was last) due. */
  readonly runAt: Date
  /** When the latest attempt started. */
  readonly startedAt: Option.Option<Date>
  /** When it succeeded, died or was cancelled. */
  readonly finishedAt: Option.Option<Date>
  readonly leaseOwner: Option.Option<string>
  readonly leaseExpiresAt: Option.Option<Date>
  /** Every failed attempt, oldest first. */
  readonly errors: ReadonlyArray<AttemptError>
  /** The dead-letter entry this job replays, when it was created by a replay. */
  readonly replayOf: Option.Option<JobId>
  /** The latest progress its handler reported (`JobWorker.progress`), kept once it finished. */
  readonly progress: Option.Option<JobProgress>
  /** What a succeeded job's handler returned, encoded (JSON) with its definition's `result` Schema. */
  readonly result: Option.Option<unknown>
}

/**
 * What {@link cancel} did:
 *
 * - `Cancelled`: the job was `previous` and is now `cancelled`; a running
 *   one's handler is interrupted on its worker within about a second;
 * - `AlreadyFinished`: it had already succeeded, died or been cancelled
 *   (`status`); nothing changed;
 * - `NotFound`: no job has this id (or it was pruned).
 *
 * @since 0.1.0
 * @category Models
 */
export type CancelResult =
  | {
    readonly _tag: "Cancelled"
    readonly id: JobId
    readonly queue: string
    readonly previous: "queued" | "scheduled" | "retrying" | "running"
  }
  | {
    readonly _tag: "AlreadyFinished"
    readonly id: JobId
    readonly queue: string
    readonly status: "succeeded" | "dead" | "cancelled"
  }
  | { readonly _tag: "NotFound"; readonly id: JobId }

/**
 * Counts for one queue, read from the backend (the database on Postgres), not
 * from a process's memory.
 *
 * @since 0.1.0
 * @category Models
 */
export interface QueueStats {
  readonly queue: string
  /** Due now: new jobs and retries whose backoff has elapsed. */
  readonly ready: number
  /** Not yet due, never attempted. */
  readonly scheduled: number
  /** Waiting out a retry backoff. */
  readonly retrying: number
  /** Leased by a worker. */
  readonly running: number
  /** Pending entries in the dead-letter queue whose source is this queue. */
  readonly deadLetters: number
  /** How long the oldest ready job has been due (SQS' "age of oldest message"). */
  readonly oldestReadyAge: Option.Option<Duration.Duration>
  /** Paused ({@link pause}): no worker claims its jobs until it is resumed. */
  readonly paused: boolean
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export {
  AdmissionRejectedError,
  DedupConflictError,
  InvalidPayloadError,
  JobStoreError,
  PayloadTooLargeError,
  UnknownQueueError
}

/**
 * Everything {@link enqueue} and {@link enqueueMany} can fail with.
 * `InvalidOptionsError` covers bad per-call options (a priority out of range,
 * an empty or over-long dedup key, both `dedupKey` and `dedup`, a bad dedup
 * mode or window, an invalid kind, an invalid `runAt`).
 *
 * @since 0.1.0
 * @category Errors
 */
export type EnqueueError =
  | UnknownQueueError
  | InvalidPayloadError
  | PayloadTooLargeError
  | AdmissionRejectedError
  | DedupConflictError
  | InvalidOptionsError
  | JobStoreError

// -----------------------------------------------------------------------------
// Configuration
// -----------------------------------------------------------------------------

/**
 * Retry policy of a queue. The delay before the attempt after failed attempt
 * `n` (1-based) is `min(base · 2^(n-1) · (1 + u), cap)` with `u` uniform in
 * `[−jitter, +jitter]`; see {@link retryDelay}.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RetryOptions {
  /** Default 5 seconds. */
  readonly base?: Duration.DurationInput
  /** Default 5 minutes. */
  readonly cap?: Duration.DurationInput
  /** A fraction from 0 to 1. Default 0.25 (±25 %). */
  readonly jitter?: number
  /** Attempts before the dead-letter queue, first included: 1–1,000. Default 5. */
  readonly maxAttempts?: number
}

/**
 * Admission control on enqueue, with a limiter from `RateLimiter.make`
 * (e.g. a token bucket): `reject` fails at once with
 * {@link AdmissionRejectedError} (carrying `retryAfter`) when no token is
 * free; `wait` waits up to `maxWait` for one (backpressure by waiting), then
 * fails the same way. An {@link enqueueMany} batch takes one token per job.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface AdmissionOptions {
  readonly limiter: RateLimiter.RateLimiter
  /** Default `"reject"`. */
  readonly onLimited?: "reject" | "wait"
  /** For `"wait"`. Default: the limiter's `maxWait`. */
  readonly maxWait?: Duration.DurationInput
  /** The limiter key. Default: the queue name (one bucket per queue). */
  readonly key?: string
}

/**
 * One queue (tier). Worker settings (`concurrency`, `batchSize`, lease,
 * heartbeat, poll, reclaim, `maxRunTime`) apply to each worker process serving
 * the queue.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface QueueOptions {
  /** Jobs of this queue run at once per worker process: 1–10,000. Default 10. */
  readonly concurrency?: number
  /**
   * Most jobs a worker claims beyond its free slots, to start the moment a slot frees (they wait in the worker,
   * leased and heartbeated; shutdown hands them back at once): 0–10,000. Default: `concurrency`. A pool claims
   * ahead only as many jobs as it finishes during one claim round trip at its recent pace, so slow jobs are never
   * hoarded by one worker while another idles; 0 turns it off.
   */
  readonly prefetch?: number
  /** Most jobs claimed by one claim statement: 1–1,000. Default: `concurrency + prefetch` (capped at 1,000). */
  readonly batchSize?: number
  /** The lease a claim takes (SQS' visibility timeout): ≥ 100 ms. Default 30 seconds. */
  readonly visibilityTimeout?: Duration.DurationInput
  /** How often a worker renews the leases of its running jobs: below `visibilityTimeout`. Default a third of it. */
  readonly heartbeatInterval?: Duration.DurationInput
  /** Idle polling between wake-ups (the fallback when notifications are lost): ≥ 1 ms. Default 1 second. */
  readonly pollInterval?: Duration.DurationInput
  /** How often a worker looks for lapsed leases to reclaim. Default half the visibility timeout, at most 5 s. */
  readonly reclaimInterval?: Duration.DurationInput
  /**
   * Longest an attempt's handler may run (on the Effect `Clock`, from its start; payload decoding included): a
   * positive duration. Default: none (a handler may run as long as the heartbeat keeps its lease). A handler past it
   * is interrupted (its finalizers run; an uninterruptible region is waited for) and the attempt fails with the
   * transient `JobWorker.JobTimeoutError`, so the queue's retry policy applies and the last attempt dead-letters
   * the job, the error recorded in its history like any other failure.
   */
  readonly maxRunTime?: Duration.DurationInput
  readonly retry?: RetryOptions
  /** Largest encoded payload in bytes (UTF-8 JSON): 1 to 64 MiB. Default 256 KiB. */
  readonly maxPayloadBytes?: number
  /**
   * Largest encoded result in bytes (UTF-8 JSON) a job of a definition with a `result` Schema may store: 1 to 64
   * MiB. Default 64 KiB. A larger result fails the attempt with the terminal `JobWorker.ResultTooLargeError` (the
   * job is dead-lettered, nothing is stored).
   */
  readonly maxResultBytes?: number
  readonly admission?: AdmissionOptions
  /**
   * The verdict for handler failures that are neither branded (`Failure.Transient` / `Failure.Terminal`) nor known
   * to the current `Failure` classifier, and for defects. Default `"transient"` (retried, like every job system).
   */
  readonly unclassified?: Verdict
}

/**
 * What a backend layer takes.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface Options {
  /** The queues (tiers) by name; names are 1–128 characters of `A-Z a-z 0-9 _ . : / -`. */
  readonly queues: Readonly<Record<string, QueueOptions>>
  /**
   * Known job kinds: replaying a dead-letter entry with an edited payload re-validates it with its kind's Schema,
   * which needs the definition here. Optional otherwise.
   */
  readonly jobs?: ReadonlyArray<JobDefinition.Any>
}

/**
 * A queue's validated settings.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface QueueConfig {
  readonly name: string
  readonly concurrency: number
  readonly prefetch: number
  readonly batchSize: number
  readonly visibilityTimeout: Duration.Duration
  readonly heartbeatInterval: Duration.Duration
  readonly pollInterval: Duration.Duration
  readonly reclaimInterval: Duration.Duration
  /** Longest an attempt's handler may run; none: no limit. */
  readonly maxRunTime: Option.Option<Duration.Duration>
  readonly retry: RetryPolicy
  readonly maxPayloadBytes: number
  readonly maxResultBytes: number
  readonly admission: Option.Option<{
    readonly limiter: RateLimiter.RateLimiter
    readonly onLimited: "reject" | "wait"
    readonly maxWait: Option.Option<Duration.Duration>
    readonly key: string
  }>
  readonly unclassified: Verdict
}

/**
 * A validated retry policy.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RetryPolicy {
  readonly base: Duration.Duration
  readonly cap: Duration.Duration
  readonly jitter: number
  readonly maxAttempts: number
}

/**
 * Validated options: the queues and the registered job kinds.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface Config {
  readonly queues: ReadonlyMap<string, QueueConfig>
  readonly jobs: ReadonlyMap<string, JobDefinition.Any>
}

/**
 * Validates options; every bad value fails with `InvalidOptionsError` naming
 * it (`queues.batch.concurrency`, …). Backend layers call it.
 *
 * @since 0.1.0
 * @category Configuration
 */
export const makeConfig: (options: Options) => Either.Either<Config, InvalidOptionsError> = config.makeConfig

/**
 * The retry delay after failed attempt `attempt` (1-based), for a random
 * draw `random` in [0, 1): `min(base · 2^(attempt-1) · (1 + jitter·(2·random − 1)), cap)`.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const policy = { base: Duration.seconds(5), cap: Duration.minutes(5), jitter: 0.25, maxAttempts: 5 }
 * JobQueue.retryDelay(policy, 3, 0.5) // 20 seconds (5 s · 2², no jitter at the midpoint)
 * ```
 *
 * @since 0.1.0
 * @category Configuration
 */
export const retryDelay: (policy: RetryPolicy, attempt: number, random: number) => Duration.Duration =
  backoff.retryDelay

// -----------------------------------------------------------------------------
// Backend contract
// -----------------------------------------------------------------------------

// Declared in `JobStore.ts`, the storage contract every backend implements.
export type {
  Admit,
  ClaimedJob,
  Completion,
  DeadLetterCount,
  DedupPolicy,
  FailOutcome,
  FailRequest,
  Inserted,
  JobStore,
  Lease,
  NewJob,
  ProgressReport,
  Pruned,
  PruneRequest,
  Reclaimed,
  ReporterLock
} from "./JobStore.js"

// -----------------------------------------------------------------------------
// Service
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: typeof service.TypeId = service.TypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TypeId = typeof TypeId

/**
 * Deduplication of one enqueue. The key is scoped by the job's kind and queue:
 * a job of another kind, or in another queue, never matches. A job holds its
 * key while it is queued, scheduled, running, retrying or succeeded (until
 * `JobQueue.prune` deletes it); a job that died frees it (unless
 * `keepAfterDeath`), and so does a job that was cancelled. When a job holds
 * the key:
 *
 * - the same payload (compared encoded: JSON equality, `jsonb` on Postgres)
 *   answers with that job, `deduplicated: true`, whatever the mode — except
 *   that `"replace"` on a waiting job with `priority`, `runAt`, `delay` or
 *   `maxAttempts` given updates them (`replaced: true`);
 * - another payload, by `onConflict`:
 *   - `"error"` (the default): fails with {@link DedupConflictError}, nothing stored;
 *   - `"replace"`: if the job is still waiting (queued or scheduled, never
 *     attempted), its payload — and the `priority`, `runAt` / `delay` and
 *     `maxAttempts` given with this enqueue — are overwritten, and the answer
 *     is its id with `replaced: true` (graphile-worker's `job_key` "replace");
 *     a running, retrying, succeeded or kept dead job cannot be replaced:
 *     {@link DedupConflictError};
 *   - `"ignore"`: the existing job wins, `deduplicated: true`, the new payload
 *     is not stored (what a bare `dedupKey` used to do for any payload).
 *
 * With a `window`, a job enqueued longer ago than the window no longer
 * deduplicates: it keeps running as it is, gives up its key, and a new job is
 * made, atomically.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const Reindex = JobQueue.define({
 *   kind: "reindex",
 *   queue: "batch",
 *   payload: Schema.Struct({ fields: Schema.Array(Schema.String) })
 * })
 *
 * // Debounced: a later reindex of the same document replaces the waiting one and pushes it back 30 seconds.
 * const program = JobQueue.enqueue(Reindex, { fields: ["title"] }, {
 *   dedup: { key: "reindex:doc-7", onConflict: "replace" },
 *   delay: "30 seconds"
 * })
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface DedupOptions {
  /** 1–512 characters. */
  readonly key: string
  /** What another payload under a held key does. Default `"error"`. */
  readonly onConflict?: "error" | "replace" | "ignore"
  /** A job that died keeps its key (and keeps deduplicating) until it is pruned. Default `false`. */
  readonly keepAfterDeath?: boolean
  /** A holding job enqueued longer ago than this (a positive, finite duration) no longer deduplicates. Default: none. */
  readonly window?: Duration.DurationInput
}

/**
 * Per-job enqueue options.
 *
 * @since 0.1.0
 * @category Models
 */
export interface EnqueueOptions {
  /**
   * Shorthand for `dedup: { key }` (mode `"error"`: the same payload deduplicates, another one fails with
   * {@link DedupConflictError}). 1–512 characters. Give `dedupKey` or `dedup`, not both.
   */
  readonly dedupKey?: string
  /** Deduplication with a mode, a window, or keeping the key after death: see {@link DedupOptions}. */
  readonly dedup?: DedupOptions
  /** Run no earlier than this. */
  readonly runAt?: Date | DateTime.DateTime
  /** Run no earlier than this long from now (ignored when `runAt` is given). */
  readonly delay?: Duration.DurationInput
  /** −32,768 to 32,767, higher first. Default: the definition's. */
  readonly priority?: number
  /** Another configured queue than the definition's. */
  readonly queue?: string
  /** Attempts before the dead-letter queue, 1–1,000. Default: the definition's, else the queue's. */
  readonly maxAttempts?: number
}

/**
 * A confirmed enqueue: the job is stored. `deduplicated` is `true` when its
 * dedup key matched an existing job, whose id this is, and the new payload was
 * not stored (it was equal, or `onConflict: "ignore"`); `replaced` is `true`
 * when the existing, still waiting job took this enqueue's payload
 * (`onConflict: "replace"`). At most one of them is `true`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Enqueued {
  readonly id: JobId
  readonly queue: string
  readonly deduplicated: boolean
  readonly replaced: boolean
}

/**
 * One job for {@link enqueueMany}, typed at creation by {@link job}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobRequest {
  readonly definition: JobDefinition.Any
  readonly payload: unknown
  readonly options: EnqueueOptions
}

/**
 * A dedup key from an owner (a user, tenant or aggregate id) and the
 * operation: `<owner>:<SHA-256 of the operation as canonical JSON>`, so the
 * same operation for the same owner always maps to the same key, whatever
 * the key order of its fields. 44 characters plus the owner.
 *
 * @example
 * ```ts
 * import { JobQueue } from "@bulwark/resilience"
 *
 * JobQueue.dedupKey("user-42", { op: "welcome-email", campaign: 7 }) === JobQueue.dedupKey("user-42", {
 *   campaign: 7,
 *   op: "welcome-email"
 * }) // true
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const dedupKey: (owner: string, operation: unknown) => string = definition.dedupKey

/**
 * Pairs a definition with a payload (type-checked against its Schema) for {@link enqueueMany}.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const job: <D extends JobDefinition.Any>(
  definition: D,
  payload: JobDefinition.Payload<D>,
  options?: EnqueueOptions
) => JobRequest = definition.job

/**
 * The job queue service: enqueue, status, statistics, on one backend.
 *
 * On Postgres, enqueue runs on the `SqlClient` in context, so inside
 * `sql.withTransaction` the job commits or rolls back with your own writes
 * (and its wake-up is sent at commit). Outside a transaction, single-job
 * enqueues made at the same time share statements, and wake-ups are sent
 * right after the commit (see `SqlJobQueue`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobQueue {
  readonly [TypeId]: TypeId
  readonly config: Config
  readonly store: JobStore
  readonly enqueue: <D extends JobDefinition.Any>(
    definition: D,
    payload: JobDefinition.Payload<D>,
    options?: EnqueueOptions
  ) => Effect.Effect<Enqueued, EnqueueError>
  readonly enqueueMany: (jobs: ReadonlyArray<JobRequest>) => Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError>
  readonly status: (id: JobId) => Effect.Effect<Option.Option<JobInfo>, JobStoreError>
  readonly stats: Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError>
  readonly pause: (queue: string) => Effect.Effect<boolean, UnknownQueueError | JobStoreError>
  readonly resume: (queue: string) => Effect.Effect<boolean, UnknownQueueError | JobStoreError>
  readonly cancel: (id: JobId) => Effect.Effect<CancelResult, JobStoreError>
}

/**
 * The {@link JobQueue} service tag.
 *
 * @since 0.1.0
 * @category Tags
 */
export const JobQueue: Context.Tag<JobQueue, JobQueue> = service.tag

/**
 * Builds the service on a backend store (for backend authors; use
 * {@link layerMemory} or `SqlJobQueue.layer`).
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (config: Config, store: JobStore) => JobQueue = internal.make

/**
 * Enqueues one job and returns once it is stored.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const SendReceipt = JobQueue.define({
 *   kind: "send-receipt",
 *   queue: "default",
 *   payload: Schema.Struct({ orderId: Schema.String })
 * })
 *
 * const program = JobQueue.enqueue(SendReceipt, { orderId: "o-1" }, { dedupKey: "receipt:o-1" }).pipe(
 *   Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Enqueue
 */
export const enqueue: <D extends JobDefinition.Any>(
  definition: D,
  payload: JobDefinition.Payload<D>,
  options?: EnqueueOptions
) => Effect.Effect<Enqueued, EnqueueError, JobQueue> = internal.enqueue

/**
 * Enqueues many jobs at once, all or nothing (one statement on Postgres, in a
 * transaction when the batch has dedup keys). Results are in input order;
 * jobs are deduplicated in input order, as if enqueued one after another, so
 * a later duplicate of a key inside the batch deduplicates against, replaces
 * or conflicts with the earlier one. The first invalid job, or a dedup
 * conflict, fails the whole batch (errors carry its `index`).
 *
 * @since 0.1.0
 * @category Enqueue
 */
export const enqueueMany: (
  jobs: ReadonlyArray<JobRequest>
) => Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError, JobQueue> = internal.enqueueMany

/**
 * A job's status, or `None` for an unknown id.
 *
 * @since 0.1.0
 * @category Inspection
 */
export const status: (id: JobId) => Effect.Effect<Option.Option<JobInfo>, JobStoreError, JobQueue> = internal.status

/**
 * Counts per queue (ready, scheduled, retrying, running, dead letters), from
 * one aggregate read of the backend, and whether the queue is paused. Every
 * configured queue is listed.
 *
 * @since 0.1.0
 * @category Inspection
 */
export const stats: Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError, JobQueue> = internal.stats

/**
 * Pauses a configured queue for every worker of the backend, in every
 * process: once it returns, no worker claims a job of that queue (on
 * PostgreSQL it waits for the claims of the queue already in flight, and the
 * flag is a row of `bulwark_job_queues`). Jobs already running finish
 * normally (their heartbeats, completions, retries and reclaims go on);
 * enqueues are accepted and wait. Answers `true` when the queue was running,
 * `false` when it was already paused. {@link stats} and the
 * `bulwark_job_queue_paused{queue}` gauge show it; `bulwark queues pause`
 * does the same from the command line.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * // Stop sending emails while the provider is down; resume once it is back.
 * const program = Effect.gen(function*() {
 *   yield* JobQueue.pause("emails")
 *   yield* Effect.sleep("10 minutes")
 *   yield* JobQueue.resume("emails")
 * }).pipe(Effect.provide(JobQueue.layerMemory({ queues: { emails: {} } })))
 * ```
 *
 * @since 0.1.0
 * @category Pausing
 */
export const pause: (queue: string) => Effect.Effect<boolean, UnknownQueueError | JobStoreError, JobQueue> =
  pausing.pause

/**
 * Resumes a paused queue and wakes its workers (a `NOTIFY` on PostgreSQL), so
 * its jobs are claimed again at once rather than at the next poll. Answers
 * `true` when the queue was paused, `false` when it was not.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const program = JobQueue.resume("emails").pipe(
 *   Effect.tap((resumed) => Effect.log(resumed ? "emails resumed" : "emails was not paused")),
 *   Effect.provide(JobQueue.layerMemory({ queues: { emails: {} } }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Pausing
 */
export const resume: (queue: string) => Effect.Effect<boolean, UnknownQueueError | JobStoreError, JobQueue> =
  pausing.resume

/**
 * Cancels a job that has not finished, in one atomic step of the backend:
 * a queued, scheduled or retrying job never runs; a running one becomes
 * `cancelled` at once and its handler is interrupted on its worker within
 * about a second (its finalizers run; an uninterruptible region is waited
 * for). The worker's late outcome is fenced off like any other, so a cancel
 * racing a completion leaves exactly one of them. A cancelled job is not
 * retried and not dead-lettered; it releases its dedup key, and keeps its
 * history and progress. Counted as `bulwark_jobs_total{outcome="cancelled"}`
 * by the process that cancels.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const stop = (id: string) =>
 *   JobQueue.cancel(id).pipe(
 *     Effect.tap((result) => {
 *       switch (result._tag) {
 *         case "Cancelled":
 *           return Effect.log(`job ${id} cancelled (it was ${result.previous})`)
 *         case "AlreadyFinished":
 *           return Effect.log(`job ${id} had already ${result.status === "dead" ? "died" : result.status}`)
 *         case "NotFound":
 *           return Effect.log(`no job ${id}`)
 *       }
 *     })
 *   )
 * ```
 *
 * @since 0.1.0
 * @category Cancellation
 */
export const cancel: (id: JobId) => Effect.Effect<CancelResult, JobStoreError, JobQueue> = cancellation.cancel

// -----------------------------------------------------------------------------
// Backends and metrics
// -----------------------------------------------------------------------------

/**
 * An in-memory backend for one process, on Effect's `Clock` (so `TestClock`
 * drives its leases and backoffs). Same contract as the Postgres backend.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemory: (options: Options) => Layer.Layer<JobQueue, InvalidOptionsError> = memoryStore.layer

/**
 * Builds an in-memory store (the state of {@link layerMemory}).
 *
 * @since 0.1.0
 * @category Backend
 */
export const makeMemoryStore: Effect.Effect<JobStore> = memoryStore.make

/**
 * Reports the queue gauges, read from the backend (never from a process's
 * memory) every `interval` (default 15 seconds) while the scope is open:
 *
 * - `bulwark_job_queue_depth{queue,state}`: ready, scheduled (not-yet-due
 *   jobs and retries waiting out their backoff), running;
 * - `bulwark_job_queue_oldest_ready_seconds{queue}`: how long the oldest
 *   ready job has been due (0 when none is);
 * - `bulwark_job_queue_paused{queue}`: 1 while the queue is paused;
 * - `bulwark_dead_letter_depth{queue}`: pending dead letters;
 * - `bulwark_dead_letter_entries{queue,status}`: dead-letter entries by
 *   status (pending, replayed, discarded), so replays and discards made by
 *   any process, the `bulwark` CLI included, show on the dashboard.
 *
 * Every configured queue is listed, and a queue that no longer appears is
 * set back to 0. Workers (`JobWorker.make`) report by default, so nothing
 * else is needed; this is for processes without a worker, or for another
 * interval.
 *
 * One reader per backend: in a process, every reporter of one store shares
 * one reader, which reads when a reporter starts, then at the shortest
 * interval asked for; across processes, only the holder of the store's
 * `reporterLock` reads and the others skip, so N processes do not run N
 * aggregate reads. On PostgreSQL the lock is a lease row
 * (`bulwark_job_queue_reporter`) that the reader renews at each read for
 * three of its longest interval and gives up when it stops; if its process
 * dies, another takes over once the lease runs out. A process that stops
 * reading (it lost the lease, or its last reporter's scope closed) sets its
 * gauges to 0: combine them across processes with `max by (queue)`, as the
 * dashboards and alert rules do. A failed read is logged and retried at the
 * next tick.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * // An API process that enqueues but runs no worker still reports the depth every 5 seconds.
 * const program = Effect.scoped(
 *   JobQueue.reportMetrics({ interval: "5 seconds" }).pipe(Effect.zipRight(Effect.never))
 * ).pipe(Effect.provide(JobQueue.layerMemory({ queues: { default: {} } })))
 * ```
 *
 * @since 0.1.0
 * @category Metrics
 */
export const reportMetrics: (
  options?: { readonly interval?: Duration.DurationInput }
) => Effect.Effect<void, InvalidOptionsError, JobQueue | Scope.Scope> = metrics.reportMetrics

/**
 * {@link reportMetrics} as a layer.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const layerMetrics: (
  options?: { readonly interval?: Duration.DurationInput }
) => Layer.Layer<never, InvalidOptionsError, JobQueue> = metrics.layerMetrics

// -----------------------------------------------------------------------------
// Retention
// -----------------------------------------------------------------------------

/**
 * What {@link prune} keeps and how much one run may delete.
 *
 * @since 0.1.0
 * @category Retention
 */
export interface PruneOptions {
  /** How long a succeeded job is kept after it finished (zero: prune every succeeded job). Default 7 days. */
  readonly keepSucceeded?: Duration.DurationInput
  /**
   * How long a replayed or discarded dead-letter entry is kept after it was settled (zero: prune every settled
   * entry). Pending entries are never pruned. Default 30 days.
   */
  readonly keepSettledDeadLetters?: Duration.DurationInput
  /** Records of each kind deleted per statement. A whole number from 1 to 100,000. Default 1,000. */
  readonly batchSize?: number
  /** Batches per run at most, so one run is bounded. A whole number from 1 to 1,000,000. Default 100. */
  readonly maxBatches?: number
}

/**
 * Deletes finished records in bounded batches, oldest first, until a batch
 * comes back short or `maxBatches` ran; returns how many were deleted:
 *
 * - succeeded and cancelled jobs that finished more than `keepSucceeded` ago (default 7 days);
 * - replayed or discarded dead-letter entries settled more than
 *   `keepSettledDeadLetters` ago (default 30 days), each with its dead job row.
 *
 * Ready, scheduled, running and retrying jobs, pending dead-letter entries and
 * their dead jobs are never touched, and rows another transaction holds are
 * skipped (the next run gets them). Times are the backend's (the database's
 * `now()` on Postgres).
 *
 * Deduplication holds while a job is retained: once a succeeded job (or a
 * settled entry's dead job kept with `keepAfterDeath`) is pruned, its dedup
 * key is free and the same key enqueues a new job. Keep jobs at least as long as their keys must
 * deduplicate. A pruned entry can no longer be shown or replayed (replaying it
 * reports `NotFound`); a replay job keeps its `replayOf` id, and an entry its
 * `replayedAs` id, after the other side was pruned.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const program = JobQueue.prune({ keepSucceeded: "1 day", keepSettledDeadLetters: "14 days" }).pipe(
 *   Effect.tap((pruned) => Effect.log(`pruned ${pruned.succeeded} jobs, ${pruned.deadLetters} dead letters`)),
 *   Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Retention
 */
export const prune: (
  options?: PruneOptions
) => Effect.Effect<Pruned, JobStoreError | InvalidOptionsError, JobQueue> = retention.prune

/**
 * {@link prune} options plus how often the background runs are.
 *
 * @since 0.1.0
 * @category Retention
 */
export interface RetentionOptions extends PruneOptions {
  /** Time between runs. Default 1 minute. */
  readonly interval?: Duration.DurationInput
}

/**
 * Forks a fiber, alive as long as the scope, that runs {@link prune} every
 * `interval` (default 1 minute; the first run after one interval). Failures
 * are logged and the next run tries again. Safe to run in many processes at
 * once: batches skip rows another one holds.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const program = Effect.scoped(
 *   JobQueue.startRetention({ keepSucceeded: "7 days", interval: "5 minutes" }).pipe(Effect.zipRight(Effect.never))
 * ).pipe(Effect.provide(JobQueue.layerMemory({ queues: { default: {} } })))
 * ```
 *
 * @since 0.1.0
 * @category Retention
 */
export const startRetention: (
  options?: RetentionOptions
) => Effect.Effect<void, InvalidOptionsError, JobQueue | Scope.Scope> = retention.startRetention

/**
 * {@link startRetention} as a layer.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const queue = JobQueue.layerMemory({ queues: { default: {} } })
 * const withRetention = Layer.merge(
 *   queue,
 *   JobQueue.layerRetention({ keepSucceeded: "7 days", keepSettledDeadLetters: "30 days" }).pipe(Layer.provide(queue))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Retention
 */
export const layerRetention: (
  options?: RetentionOptions
) => Layer.Layer<never, InvalidOptionsError, JobQueue> = retention.layerRetention
