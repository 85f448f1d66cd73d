/**
 * The dead-letter queue: jobs that failed for good (a terminal failure, a
 * payload that no longer decodes, or no attempts left), each kept as a full
 * envelope in its own table — original payload, source queue, kind, every
 * attempt's error (tag, message, cause, worker, times), attempt count, when it
 * was first enqueued and when it was dead-lettered.
 *
 * An entry is `pending` until an operator {@link replay}s it (a fresh job in
 * its source queue: new id, attempts reset, optionally an edited payload
 * re-validated by its kind's Schema) or {@link discard}s it. Both are
 * idempotent and safe to run concurrently: replaying the same entry twice,
 * from two processes at once, creates one job, and the second call answers
 * with that job's id. Entries stay (as `replayed` / `discarded`) for audit.
 *
 * The entry id is the dead job's id. Replays count in
 * `bulwark_jobs_total{outcome="replayed"}`, discards in
 * `{outcome="discarded"}`, in the process that made them;
 * `bulwark_dead_letter_depth{queue}` counts pending entries and
 * `bulwark_dead_letter_entries{queue,status}` every entry by status, both read
 * from the backend, so replays and discards made anywhere (the `bulwark` CLI
 * included) show (see `JobQueue.reportMetrics`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DeadLetter } from "@bulwark/resilience"
 *
 * const replayPaymentFailures = Effect.gen(function*() {
 *   const page = yield* DeadLetter.list({ queue: "default", errorTag: "PaymentDeclined", limit: 100 })
 *   return yield* DeadLetter.replayMany(page.entries.map((entry) => entry.id))
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { InvalidOptionsError } from "../Failure.js"
import * as internal from "./internal/deadLetter.js"
import { DeadLetterConflictError, DeadLetterNotFoundError, UnknownJobKindError } from "./internal/errors.js"
import type {
  AttemptError,
  InvalidPayloadError,
  JobId,
  JobQueue,
  JobStoreError,
  PayloadTooLargeError,
  UnknownQueueError
} from "./JobQueue.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * `pending` (in the queue), `replayed` (a fresh job was created from it) or
 * `discarded` (an operator dropped it).
 *
 * @since 0.1.0
 * @category Models
 */
export type EntryStatus = "pending" | "replayed" | "discarded"

/**
 * Why a job was dead-lettered: `terminal` (a terminal failure or an
 * undecodable payload: no retry was made) or `exhausted` (its last attempt
 * failed, or its lease lapsed, with no attempts left).
 *
 * @since 0.1.0
 * @category Models
 */
export type Reason = "terminal" | "exhausted"

/**
 * A dead-letter envelope.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Entry {
  /** The dead job's id. */
  readonly id: JobId
  /** The source queue. */
  readonly queue: string
  readonly kind: string
  /** The original (encoded, JSON) payload. */
  readonly payload: unknown
  readonly priority: number
  readonly dedupKey: Option.Option<string>
  readonly attempts: number
  readonly maxAttempts: number
  /** Every attempt's error, oldest first; the last one is why it died. */
  readonly errors: ReadonlyArray<AttemptError>
  readonly reason: Reason
  /** When the original job was first enqueued. */
  readonly enqueuedAt: Date
  readonly deadLetteredAt: Date
  readonly status: EntryStatus
  /** The job created by replaying this entry. */
  readonly replayedAs: Option.Option<JobId>
  readonly replayedAt: Option.Option<Date>
  readonly discardedAt: Option.Option<Date>
  /** When the dead job was itself a replay: the entry it replayed. */
  readonly replayOf: Option.Option<JobId>
}

/**
 * Which entries to list or replay. Every field narrows the selection.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Filter {
  readonly queue?: string
  readonly kind?: string
  /** Default `"pending"`; `"all"` lists every status. */
  readonly status?: EntryStatus | "all"
  /** The `tag` of the entry's last error. */
  readonly errorTag?: string
  /** Dead-lettered at or after. */
  readonly since?: Date
  /** Dead-lettered before. */
  readonly until?: Date
}

/**
 * {@link list} options: a filter plus keyset pagination.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ListOptions extends Filter {
  /** Default `"newest"` (most recently dead-lettered first). */
  readonly order?: "newest" | "oldest"
  /** 1–1,000. Default 50. */
  readonly limit?: number
  /** The `next` cursor of the previous page. */
  readonly cursor?: string
}

/**
 * A validated list query, as backends receive it. Entries are ordered by
 * dead-letter time, then id: descending for `"newest"`, ascending for `"oldest"`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Query {
  readonly queue: Option.Option<string>
  readonly kind: Option.Option<string>
  readonly status: EntryStatus | "all"
  readonly errorTag: Option.Option<string>
  readonly since: Option.Option<Date>
  readonly until: Option.Option<Date>
  readonly order: "newest" | "oldest"
  readonly limit: number
  /** Entries strictly after this position in the ordering. */
  readonly after: Option.Option<{ readonly deadLetteredAt: Date; readonly id: JobId }>
}

/**
 * One page of entries; `next` is the cursor of the following page, `None` on the last.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Page {
  readonly entries: ReadonlyArray<Entry>
  readonly next: Option.Option<string>
}

/**
 * Replay options.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ReplayOptions {
  /**
   * A corrected payload in its encoded (JSON) form. It is decoded with the
   * kind's Schema (the kind must be in the backend's `jobs` option) and
   * re-encoded; a payload that fails fails the replay with `InvalidPayloadError`.
   */
  readonly payload?: unknown
}

/**
 * A replay as backends receive it (payload already validated and encoded).
 *
 * @since 0.1.0
 * @category Models
 */
export interface ReplayRequest {
  readonly id: JobId
  readonly payload: Option.Option<unknown>
}

/**
 * What replaying one entry did:
 *
 * - `Replayed`: `job` is the fresh job; `created` is `false` when the entry had already been replayed (this call
 *   created nothing and answers with the earlier job);
 * - `NotFound`: no such entry;
 * - `Discarded`: the entry was discarded, so it is not replayed.
 *
 * @since 0.1.0
 * @category Models
 */
export type ReplayResult =
  | {
    readonly _tag: "Replayed"
    readonly id: JobId
    readonly queue: string
    readonly job: JobId
    readonly created: boolean
  }
  | { readonly _tag: "NotFound"; readonly id: JobId }
  | { readonly _tag: "Discarded"; readonly id: JobId }

/**
 * What discarding one entry did: `discarded` now, `already_discarded`,
 * `replayed` (left alone: it was replayed already) or `not_found`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface DiscardResult {
  readonly id: JobId
  readonly queue: Option.Option<string>
  readonly outcome: "discarded" | "already_discarded" | "replayed" | "not_found"
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { DeadLetterConflictError, DeadLetterNotFoundError, UnknownJobKindError }

/**
 * Everything {@link replay} can fail with.
 *
 * @since 0.1.0
 * @category Errors
 */
export type ReplayError =
  | DeadLetterNotFoundError
  | DeadLetterConflictError
  | UnknownJobKindError
  | UnknownQueueError
  | InvalidPayloadError
  | PayloadTooLargeError
  | JobStoreError

// -----------------------------------------------------------------------------
// Operations
// -----------------------------------------------------------------------------

/**
 * Lists entries, newest dead-lettered first unless `order: "oldest"`,
 * `limit` per page. A bad limit or cursor (or a cursor from a list with
 * another order) fails with `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { DeadLetter } from "@bulwark/resilience"
 *
 * const everyPendingEntry = Effect.gen(function*() {
 *   let page = yield* DeadLetter.list({ limit: 100 })
 *   const all = [...page.entries]
 *   while (Option.isSome(page.next)) {
 *     page = yield* DeadLetter.list({ limit: 100, cursor: page.next.value })
 *     all.push(...page.entries)
 *   }
 *   return all
 * })
 * ```
 *
 * @since 0.1.0
 * @category Inspection
 */
export const list: (
  options?: ListOptions
) => Effect.Effect<Page, JobStoreError | InvalidOptionsError, JobQueue> = internal.list

/**
 * One entry, whatever its status.
 *
 * @since 0.1.0
 * @category Inspection
 */
export const show: (id: JobId) => Effect.Effect<Option.Option<Entry>, JobStoreError, JobQueue> = internal.show

/**
 * Replays one entry as a fresh job in its source queue: a new id, attempts
 * reset, same kind, priority and payload (or the edited one). The dedup key
 * stays with the dead job, so re-enqueueing it still finds that job.
 * Idempotent: an entry already replayed answers with the earlier job
 * (`created: false`).
 *
 * @since 0.1.0
 * @category Replay
 */
export const replay: (
  id: JobId,
  options?: ReplayOptions
) => Effect.Effect<Extract<ReplayResult, { _tag: "Replayed" }>, ReplayError, JobQueue> = internal.replay

/**
 * Replays many entries in one atomic step; one result per distinct id, in
 * input order (missing and discarded entries are reported, not errors).
 *
 * @since 0.1.0
 * @category Replay
 */
export const replayMany: (
  ids: ReadonlyArray<JobId>
) => Effect.Effect<ReadonlyArray<ReplayResult>, JobStoreError, JobQueue> = internal.replayMany

/**
 * Replays up to `limit` (default 100, at most 1,000) pending entries matching
 * a filter, oldest dead-lettered first — a redrive.
 *
 * @since 0.1.0
 * @category Replay
 */
export const replayWhere: (
  filter: Omit<Filter, "status"> & { readonly limit?: number }
) => Effect.Effect<ReadonlyArray<ReplayResult>, JobStoreError | InvalidOptionsError, JobQueue> = internal.replayWhere

/**
 * Discards one entry. Idempotent (discarding twice is fine); discarding a
 * replayed entry fails with {@link DeadLetterConflictError}.
 *
 * @since 0.1.0
 * @category Discard
 */
export const discard: (
  id: JobId
) => Effect.Effect<
  DiscardResult,
  DeadLetterNotFoundError | DeadLetterConflictError | JobStoreError,
  JobQueue
> = internal.discard

/**
 * Discards many entries in one atomic step; one result per distinct id, in input order.
 *
 * @since 0.1.0
 * @category Discard
 */
export const discardMany: (
  ids: ReadonlyArray<JobId>
) => Effect.Effect<ReadonlyArray<DiscardResult>, JobStoreError, JobQueue> = internal.discardMany

/**
 * Encodes a list position as an opaque cursor (backends and tests).
 *
 * @since 0.1.0
 * @category Inspection
 */
export const encodeCursor: (position: { readonly deadLetteredAt: Date; readonly id: JobId }) => string =
  internal.encodeCursor
