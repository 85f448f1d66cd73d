/**
 * Where idempotency records live: a service with an in-memory implementation
 * (this module) and a PostgreSQL one (`SqlIdempotencyStore`), both held to one
 * conformance suite.
 *
 * A record is identified by `(scope, partition, key)` and is in one of three
 * states:
 *
 * ```text
 *   (absent or expired) ──claim──▶ InProgress(owner, attempt, lease)
 *   InProgress ──complete (fenced)──▶ Completed(result)        replayed until it expires
 *   InProgress ──release (fenced)───▶ Released                 the next claim runs again (attempt + 1)
 *   InProgress ──lease lapses, claim─▶ InProgress(attempt + 1, recovery)
 *   any state ──expires (TTL)──▶ (absent): deleted by cleanup, or reclaimed as attempt 1
 * ```
 *
 * Every write after the claim is **fenced** by the lease's `(owner, attempt)`:
 * an executor whose lease lapsed and was taken over can no longer heartbeat,
 * complete or release. A key is bound to the fingerprint of its first request
 * until the record expires: a claim with another fingerprint is a `Mismatch`,
 * whatever the record's state.
 *
 * Most programs never call the store directly: `Idempotency.run` does. Call
 * {@link cleanup} (or run {@link layerCleanup}) to delete expired records.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Failure.js"
import * as cleanupInternal from "./internal/cleanup.js"
import type { IdempotencyStoreError } from "./internal/errors.js"
import * as memory from "./internal/memoryStore.js"
import { IdempotencyStore } from "./internal/tags.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * What identifies a record. `partition` is `""` when the caller has none.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecordKey {
  /** The bounded operation name, e.g. `"POST /payments"`. */
  readonly scope: string
  /** A tenant or user id, `""` for none: part of the identity, so one tenant can never replay another's result. */
  readonly partition: string
  /** The client's idempotency key. */
  readonly key: string
}

/**
 * A request to claim a key for execution.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ClaimRequest extends RecordKey {
  /** The request's fingerprint: a key is bound to the fingerprint of its first request. */
  readonly fingerprint: string
  /** A token unique to this execution attempt; every later write is fenced by it. */
  readonly owner: string
  /** How long the claim holds without a heartbeat. */
  readonly lease: Duration.Duration
  /** How long the record lives (from the claim, and again from completion). */
  readonly ttl: Duration.Duration
}

/**
 * A claim held by one executor. Heartbeats, completion and release are fenced
 * by `owner` and `attempt`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Lease extends RecordKey {
  readonly fingerprint: string
  readonly owner: string
  /** 1 for the first execution of the key; each release or takeover adds one. */
  readonly attempt: number
  /** `true` when the previous attempt's lease lapsed mid-execution (a crash): its side effects are unknown. */
  readonly recovery: boolean
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
}

/**
 * What a completed record holds.
 *
 * - `success`: `payload` is the JSON-encoded success.
 * - `failure`: `payload` is the JSON-encoded (stored) failure.
 * - `too_large`: the result was over the size limit; `payload` is `{"bytes":n,"limit":m}`. Replays fail with
 *   `StoredResultTooLargeError`.
 * - `unencodable`: the result could not be encoded with its schema; `payload` is a message. Replays die.
 *
 * @since 0.1.0
 * @category Models
 */
export type Outcome = "success" | "failure" | "too_large" | "unencodable"

/**
 * A result as stored: the outcome and its JSON text, replayed byte for byte.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StoredResult {
  readonly outcome: Outcome
  readonly payload: string
}

/**
 * A completed record, immutable until it expires (so it is safe to cache for
 * at most `expiresIn`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface CompletedRecord extends StoredResult {
  readonly fingerprint: string
  /** The attempt that produced the result. */
  readonly attempt: number
  /** Time left until the record expires, by the store's clock. */
  readonly expiresIn: Duration.Duration
}

/**
 * The answer to a claim.
 *
 * - `Claimed`: the caller holds the lease and must execute, then complete or release.
 * - `Completed`: the key already has a result with the same fingerprint: replay it.
 * - `InProgress`: another executor holds a live lease; `retryAfter` is a hint (the lease's time left, at most 1 second).
 * - `Mismatch`: the key is bound to another fingerprint.
 *
 * @since 0.1.0
 * @category Models
 */
export type ClaimResult =
  | { readonly _tag: "Claimed"; readonly lease: Lease }
  | { readonly _tag: "Completed"; readonly record: CompletedRecord }
  | { readonly _tag: "InProgress"; readonly retryAfter: Duration.Duration }
  | { readonly _tag: "Mismatch" }

/**
 * The state of a record.
 *
 * @since 0.1.0
 * @category Models
 */
export type State = "in_progress" | "completed" | "released"

/**
 * A record as {@link Service.lookup} sees it (for operators and tests).
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecordInfo extends RecordKey {
  readonly state: State
  readonly fingerprint: string
  readonly attempt: number
  readonly recovery: boolean
  /** The owner token while in progress. */
  readonly owner: Option.Option<string>
  /** Time left on the lease while in progress (zero once it lapsed). */
  readonly leaseExpiresIn: Option.Option<Duration.Duration>
  readonly expiresIn: Duration.Duration
  readonly result: Option.Option<StoredResult>
}

/**
 * The store's operations. Each is atomic; each write after `claim` is fenced.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Service {
  /** `"memory"`, `"postgres"`, `"redis+postgres"`…: for logs. */
  readonly backend: string
  /**
   * Claims a key in one atomic step: absent, expired, released (same
   * fingerprint) or lease-lapsed (same fingerprint) records are claimed;
   * anything else is classified.
   */
  readonly claim: (request: ClaimRequest) => Effect.Effect<ClaimResult, IdempotencyStoreError>
  /** Extends the lease by `lease.lease` from now. `false`: the lease is no longer this executor's. */
  readonly heartbeat: (lease: Lease) => Effect.Effect<boolean, IdempotencyStoreError>
  /** Stores the result and makes the record expire `lease.ttl` from now. `false`: fenced, nothing written. */
  readonly complete: (lease: Lease, result: StoredResult) => Effect.Effect<boolean, IdempotencyStoreError>
  /** Gives the claim up (the next claim runs again). `false`: fenced, nothing written. */
  readonly release: (lease: Lease) => Effect.Effect<boolean, IdempotencyStoreError>
  /** The record for a key, if one exists and has not expired. */
  readonly lookup: (key: RecordKey) => Effect.Effect<Option.Option<RecordInfo>, IdempotencyStoreError>
  /** Deletes at most `limit` expired records (never one with a live lease); returns how many. */
  readonly deleteExpired: (limit: number) => Effect.Effect<number, IdempotencyStoreError>
  /**
   * Runs `effect` in one transaction of the database the store lives in: store writes made inside it (the
   * completion) commit together with the effect's own writes to that database, or roll back with them. A failure
   * of `effect` rolls back. Only stores that share a database with their callers have it (the PostgreSQL store,
   * and a cache in front of it); `Idempotency.run`'s `transactional` option uses it.
   */
  readonly transaction?: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | IdempotencyStoreError, R>
}

// Declared in `internal/tags.ts`, a leaf the internals import.
export { IdempotencyStore } from "./internal/tags.js"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { IdempotencyStoreError } from "./internal/errors.js"

/**
 * The operations a store error can come from.
 *
 * @since 0.1.0
 * @category Models
 */
export type Operation =
  | "claim"
  | "heartbeat"
  | "complete"
  | "release"
  | "lookup"
  | "deleteExpired"
  | "transaction"

// -----------------------------------------------------------------------------
// In memory
// -----------------------------------------------------------------------------

/**
 * An in-memory store for one process (tests, single-instance services). Each
 * operation is one synchronous step on a `Map`, so it is atomic; time comes
 * from the Effect `Clock`, so `TestClock` drives leases and expiry.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeMemory: Effect.Effect<Service> = memory.make

/**
 * The in-memory store as a layer.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Idempotency, IdempotencyStore } from "@bulwark/resilience"
 *
 * const program = Idempotency.run({
 *   scope: "send-welcome-email",
 *   key: "user-42",
 *   fingerprint: "v1",
 *   success: Schema.String,
 *   failure: Schema.Never
 * })(() => Effect.succeed("sent")).pipe(Effect.provide(IdempotencyStore.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemory: Layer.Layer<IdempotencyStore> = Layer.effect(IdempotencyStore, memory.make)

// -----------------------------------------------------------------------------
// Cleanup
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Models
 */
export interface CleanupOptions {
  /** Records deleted per statement. A whole number from 1 to 100,000. Default 1,000. */
  readonly batchSize?: number
  /** Batches per run at most, so one run is bounded. A whole number from 1 to 1,000,000. Default 100. */
  readonly maxBatches?: number
}

/**
 * Deletes expired records in bounded batches, until a batch comes back short
 * or `maxBatches` ran; returns how many were deleted. Records with a live
 * lease are never deleted.
 *
 * @since 0.1.0
 * @category Cleanup
 */
export const cleanup: (
  options?: CleanupOptions
) => Effect.Effect<number, IdempotencyStoreError | InvalidOptionsError, IdempotencyStore> = cleanupInternal.cleanup

/**
 * @since 0.1.0
 * @category Models
 */
export interface BackgroundCleanupOptions extends CleanupOptions {
  /** Time between runs. Default 1 minute. */
  readonly interval?: Duration.DurationInput
}

/**
 * Forks a fiber, alive as long as the scope, that runs {@link cleanup} every
 * `interval` (the first run after one interval). A failed run (an error or a
 * defect) is logged, and the next run tries again.
 *
 * @since 0.1.0
 * @category Cleanup
 */
export const startCleanup: (
  options?: BackgroundCleanupOptions
) => Effect.Effect<void, InvalidOptionsError, IdempotencyStore | Scope.Scope> = cleanupInternal.startCleanup

/**
 * {@link startCleanup} as a layer.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { IdempotencyStore } from "@bulwark/resilience"
 *
 * const store = IdempotencyStore.layerMemory
 * const withCleanup = Layer.merge(store, IdempotencyStore.layerCleanup({ interval: "5 minutes" }).pipe(Layer.provide(store)))
 * ```
 *
 * @since 0.1.0
 * @category Cleanup
 */
export const layerCleanup = (
  options?: BackgroundCleanupOptions
): Layer.Layer<never, InvalidOptionsError, IdempotencyStore> =>
  Layer.scopedDiscard(cleanupInternal.startCleanup(options))
