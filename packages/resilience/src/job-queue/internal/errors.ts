/**
 * Every error of the job queue, and the attempt error kept in a job's history, in a leaf module: the internals
 * construct them, and `JobQueue`, `DeadLetter` and `JobWorker` re-export them unchanged.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"
import { RejectionTypeId, TerminalTypeId, TransientTypeId } from "../../internal/failureErrors.js"
import type { EntryStatus } from "../DeadLetter.js"
import type { JobId, JobStatus } from "../JobQueue.js"
import { describe } from "./status.js"

// -----------------------------------------------------------------------------
// History
// -----------------------------------------------------------------------------

/**
 * One attempt's failure, kept in the job's history and in its dead-letter
 * envelope. Persisted as JSON, hence a Schema class. Times come from the
 * backend's clock (the database's `now()` on Postgres).
 *
 * `tag` is the error's `_tag` (or `"Defect"`, `"Interrupted"`,
 * `"LeaseExpired"`, `"PayloadDecodeError"`, `"NoHandlerError"`); `cause` is
 * the pretty-printed Effect `Cause`, cut to 8 KiB.
 *
 * @since 0.1.0
 * @category Models
 */
export class AttemptError extends Schema.Class<AttemptError>("@bulwark/resilience/JobQueue/AttemptError")({
  attempt: Schema.Number,
  tag: Schema.String,
  message: Schema.String,
  cause: Schema.NullOr(Schema.String),
  verdict: Schema.Literal("transient", "terminal"),
  workerId: Schema.String,
  startedAt: Schema.NullOr(Schema.Date),
  failedAt: Schema.Date
}) {}

// -----------------------------------------------------------------------------
// Enqueue and backend (JobQueue)
// -----------------------------------------------------------------------------

const at = (index: number | undefined): string => index === undefined ? "" : ` (item ${index})`

/**
 * Enqueue named a queue the backend was not configured with. Terminal.
 *
 * @since 0.1.0
 * @category Errors
 */
export class UnknownQueueError extends Data.TaggedError("UnknownQueueError")<{
  readonly queue: string
  readonly known: ReadonlyArray<string>
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Unknown job queue "${this.queue}" (configured: ${this.known.join(", ") || "none"})`
  }
}

/**
 * A payload failed its job definition's Schema (at enqueue, or when a
 * dead-letter entry is replayed with an edited payload). Terminal. `index`
 * is the position in an `JobQueue.enqueueMany` batch.
 *
 * @since 0.1.0
 * @category Errors
 */
export class InvalidPayloadError extends Data.TaggedError("InvalidPayloadError")<{
  readonly kind: string
  readonly queue: string
  readonly index?: number
  /** The Schema's explanation (a `ParseError` message). */
  readonly issue: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Invalid payload for job "${this.kind}" in queue "${this.queue}"${at(this.index)}: ${this.issue}`
  }
}

/**
 * An encoded payload is larger than the queue's `maxPayloadBytes`. Terminal.
 *
 * @since 0.1.0
 * @category Errors
 */
export class PayloadTooLargeError extends Data.TaggedError("PayloadTooLargeError")<{
  readonly kind: string
  readonly queue: string
  readonly index?: number
  readonly bytes: number
  readonly limit: number
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Payload of job "${this.kind}" for queue "${this.queue}"${
      at(this.index)
    } is ${this.bytes} bytes; the limit is ${this.limit}`
  }
}

/**
 * The queue's admission limiter refused the enqueue: backpressure. Transient
 * (try again after `retryAfter`) and a rejection (breakers ignore it).
 * Nothing was stored.
 *
 * - `LimitExceeded`: no token now (`onLimited: "reject"`) or not within `maxWait` (`"wait"`);
 * - `StoreUnavailable`: the limiter's store was down and it fails closed;
 * - `BatchExceedsQuota`: an `JobQueue.enqueueMany` batch needs more tokens than the bucket can ever hold.
 *
 * @since 0.1.0
 * @category Errors
 */
export class AdmissionRejectedError extends Data.TaggedError("AdmissionRejectedError")<{
  readonly queue: string
  readonly limiter: string
  readonly reason: "LimitExceeded" | "StoreUnavailable" | "BatchExceedsQuota"
  readonly retryAfter: Duration.Duration
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  readonly [RejectionTypeId]: RejectionTypeId = RejectionTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Queue "${this.queue}" refused the job (${this.reason}, limiter "${this.limiter}"); retry after ${
      Math.ceil(Duration.toMillis(this.retryAfter))
    } ms`
  }
}

/**
 * An enqueue's dedup key is held by a job of the same kind and queue whose
 * payload differs, and the enqueue did not say to ignore or replace it
 * (`onConflict: "error"`, what a bare `dedupKey` means), or asked to replace
 * it while it is no longer waiting (`onConflict: "replace"` on a running,
 * retrying, succeeded or kept dead job). Terminal. Nothing was stored: an
 * `JobQueue.enqueueMany` batch with a conflicting job stores none of its jobs,
 * and `index` is that job's position in it.
 *
 * @since 0.1.0
 * @category Errors
 */
export class DedupConflictError extends Data.TaggedError("DedupConflictError")<{
  readonly queue: string
  readonly kind: string
  readonly dedupKey: string
  /** The job holding the key. */
  readonly existingId: JobId
  /** Where that job is: only a `queued` or `scheduled` one can be replaced. */
  readonly existingStatus: JobStatus
  /** What the enqueue asked for. */
  readonly onConflict: "error" | "replace"
  readonly index?: number
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const why = this.onConflict === "replace"
      ? `cannot be replaced: it is ${this.existingStatus}`
      : `has another payload (it is ${this.existingStatus})`
    return `Dedup key "${this.dedupKey}" of job "${this.kind}" in queue "${this.queue}"${
      at(this.index)
    } is held by job ${this.existingId}, which ${why}`
  }
}

/**
 * The backend failed (the database is unreachable, a statement failed).
 * Transient. `operation` names the statement (`enqueue`, `claimJobs`, …).
 *
 * @since 0.1.0
 * @category Errors
 */
export class JobStoreError extends Data.TaggedError("JobStoreError")<{
  readonly operation: string
  readonly cause: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Job store failed during ${this.operation}: ${describe(this.cause)}`
  }
}

// -----------------------------------------------------------------------------
// Dead letters (DeadLetter)
// -----------------------------------------------------------------------------

/**
 * No dead-letter entry has this id. Terminal.
 *
 * @since 0.1.0
 * @category Errors
 */
export class DeadLetterNotFoundError extends Data.TaggedError("DeadLetterNotFoundError")<{
  readonly id: JobId
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `No dead-letter entry ${this.id}`
  }
}

/**
 * The entry is in a state that forbids the operation: replaying a discarded
 * entry, or discarding a replayed one. Terminal.
 *
 * @since 0.1.0
 * @category Errors
 */
export class DeadLetterConflictError extends Data.TaggedError("DeadLetterConflictError")<{
  readonly id: JobId
  readonly status: EntryStatus
  readonly operation: "replay" | "discard"
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Cannot ${this.operation} dead-letter entry ${this.id}: it is ${this.status}`
  }
}

/**
 * A replay with an edited payload needs the kind's Schema, and the backend's
 * `jobs` option does not list this kind. Terminal.
 *
 * @since 0.1.0
 * @category Errors
 */
export class UnknownJobKindError extends Data.TaggedError("UnknownJobKindError")<{
  readonly kind: string
  readonly known: ReadonlyArray<string>
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Unknown job kind "${this.kind}": register its definition in the "jobs" option to validate edited payloads`
  }
}

// -----------------------------------------------------------------------------
// Workers (JobWorker)
// -----------------------------------------------------------------------------

/**
 * A stored payload no longer decodes with its kind's Schema (the Schema
 * changed, or the row was edited). Terminal: the job goes straight to the
 * dead-letter queue, where it can be replayed with a corrected payload.
 *
 * @since 0.1.0
 * @category Errors
 */
export class PayloadDecodeError extends Data.TaggedError("PayloadDecodeError")<{
  readonly kind: string
  readonly issue: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The stored payload of job "${this.kind}" does not decode: ${this.issue}`
  }
}

/**
 * A worker claimed a job whose kind it has no handler for. Transient: in a
 * mixed deployment (a rolling upgrade) another worker may know the kind; if
 * none does, the job ends in the dead-letter queue after its attempts.
 *
 * @since 0.1.0
 * @category Errors
 */
export class NoHandlerError extends Data.TaggedError("NoHandlerError")<{
  readonly kind: string
  readonly workerId: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Worker ${this.workerId} has no handler for job kind "${this.kind}"`
  }
}

/**
 * A handler ran past its queue's `maxRunTime` and was interrupted. Transient:
 * the attempt is retried with backoff like any transient failure, and the last
 * one dead-letters the job with this error in its history.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobWorker } from "@bulwark/resilience"
 *
 * const Export = JobQueue.define({ kind: "export", queue: "batch", payload: Schema.Struct({ id: Schema.Number }) })
 *
 * // With `queues: { batch: { maxRunTime: "2 minutes" } }`, this attempt fails with
 * // JobTimeoutError { queue: "batch", kind: "export", jobId, limit: 2 minutes } after 2 minutes.
 * const exportHandler = JobWorker.handler(Export, () => Effect.never)
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class JobTimeoutError extends Data.TaggedError("JobTimeoutError")<{
  readonly queue: string
  readonly kind: string
  readonly jobId: JobId
  readonly limit: Duration.Duration
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Job ${this.jobId} (${this.kind}) in queue "${this.queue}" ran longer than its maxRunTime of ${
      Duration.format(this.limit)
    } and was interrupted`
  }
}

/**
 * A handler's result, encoded with its definition's `result` Schema, is
 * larger than the queue's `maxResultBytes` (UTF-8 JSON). Terminal: the same
 * job would produce the same result again, so the attempt fails, the job is
 * dead-lettered with this error in its history, and no result is stored.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobWorker } from "@bulwark/resilience"
 *
 * const Export = JobQueue.define({
 *   kind: "export",
 *   queue: "batch",
 *   payload: Schema.Struct({ id: Schema.Number }),
 *   result: Schema.Struct({ rows: Schema.Array(Schema.String) })
 * })
 *
 * // With `queues: { batch: { maxResultBytes: 1024 } }` this attempt fails with
 * // ResultTooLargeError { kind: "export", jobId, bytes, limit: 1024 }.
 * const exportHandler = JobWorker.handler(Export, () => Effect.succeed({ rows: Array.from({ length: 1000 }, String) }))
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class ResultTooLargeError extends Data.TaggedError("ResultTooLargeError")<{
  readonly queue: string
  readonly kind: string
  readonly jobId: JobId
  readonly bytes: number
  readonly limit: number
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The result of job ${this.jobId} (${this.kind}) in queue "${this.queue}" is ${this.bytes} bytes; ` +
      `the limit is ${this.limit}`
  }
}

/**
 * A handler's result does not encode with its definition's `result` Schema,
 * or its encoded side is not JSON. Terminal, like {@link PayloadDecodeError}:
 * the job is dead-lettered and no result is stored.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobWorker } from "@bulwark/resilience"
 *
 * const Count = JobQueue.define({
 *   kind: "count",
 *   queue: "default",
 *   payload: Schema.Struct({}),
 *   result: Schema.Struct({ n: Schema.Number.pipe(Schema.positive()) })
 * })
 *
 * // Fails with InvalidResultError { kind: "count", issue: "… Expected a positive number, actual -1" }.
 * const count = JobWorker.handler(Count, () => Effect.succeed({ n: -1 }))
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class InvalidResultError extends Data.TaggedError("InvalidResultError")<{
  readonly kind: string
  readonly issue: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The result of job "${this.kind}" does not encode with its result Schema: ${this.issue}`
  }
}
