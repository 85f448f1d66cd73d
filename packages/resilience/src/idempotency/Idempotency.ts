/**
 * Idempotency keys: run an effect at most once per `(scope, partition, key)`,
 * and answer every repeat of the same request with the first one's result.
 *
 * ```text
 *   run(options)(handler)
 *     claim (one atomic store operation)
 *       ├─ Claimed ─────────▶ handler(execution) with a heartbeat fiber renewing the lease
 *       │                       ├─ success / terminal failure ─▶ stored (fenced), returned
 *       │                       └─ transient, unclassified, defect, interrupted ─▶ claim released, failure returned
 *       ├─ Completed ───────▶ the stored result, replayed exactly (a stored failure fails again)
 *       ├─ InProgress ──────▶ IdempotencyConflictError (retryAfter), or wait up to `waitForInFlight` and replay
 *       └─ Mismatch ────────▶ IdempotencyMismatchError (the key was used with another fingerprint)
 * ```
 *
 * The rules, and why:
 *
 * - **Outcomes.** A success and a terminal failure (a brand, or what
 *   `Failure.classifyError` says) are stored and replayed. A transient or
 *   unclassified failure, a defect or an interruption **releases** the claim:
 *   no result is stored, so the client's retry with the same key runs again
 *   (a 503 followed by a retry charges once). `storeFailures: "all"` stores
 *   every typed failure instead (Stripe's rule); `shouldStore` overrides both.
 *   Defects and interruptions are never stored (they have no schema).
 * - **Crashes.** A claim is a lease (default 30 s) that a heartbeat fiber
 *   renews every third of it while the handler runs. If the process dies, the
 *   lease lapses and the next request with the same key and fingerprint takes
 *   over: the handler sees `attempt > 1` and `recovery: true`, so it can
 *   reconcile (pass its own key downstream, check what the last attempt did).
 * - **Fencing.** Heartbeats, completions and releases are conditional on the
 *   lease's `(owner, attempt)`. An executor whose lease was taken over cannot
 *   overwrite the newer attempt's result: its heartbeat notices, the handler
 *   is interrupted, and the caller gets `IdempotencyConflictError` with reason
 *   `"LeaseLost"` (retrying replays the newer attempt's result).
 * - **The first caller gets the handler's answer** whenever the handler
 *   produced one, even when it could not be stored: its side effects
 *   happened, and an error would only invite a retry that repeats them.
 *   - **Size.** A result whose JSON is larger than `maxStoredBytes` (default
 *     1 MiB) is not stored; the key is completed with a stored "too large"
 *     marker instead, so it never runs twice. The first caller gets the
 *     result; every replay fails with the terminal
 *     {@link StoredResultTooLargeError}.
 *   - **Store down.** A completion that cannot be written (after two quick
 *     retries) is logged; the first caller gets the result, and the key stays
 *     claimed until its lease lapses, after which a repeat runs again as a
 *     recovery (`attempt + 1`, `recovery: true`).
 *   - A completion refused by fencing (the lease was lost to a newer
 *     execution) is the exception: the key's answer is the newer execution's,
 *     so this caller gets `IdempotencyConflictError` (`"LeaseLost"`).
 * - **Exact replay.** Results are stored as the JSON text of their schema's
 *   encoding; the first caller gets the same decoded value as every replay.
 *   A result with no JSON form (`NaN`, `Infinity`, a schema that refuses to
 *   encode it) is a defect, and the key is completed with an "unencodable"
 *   marker so that it never runs twice.
 * - **Waiting.** With `waitForInFlight`, a duplicate polls with jittered
 *   backoff (50 ms doubling to 1 s, never past the bound) using read-only
 *   lookups, replays the result as soon as it is stored, and claims again
 *   (atomically) only once the other execution released or lost its lease.
 * - **Inside a transaction of yours** (PostgreSQL store): the claim, the
 *   completion and the handler's writes go through your transaction and commit
 *   or roll back with it. At READ COMMITTED a concurrent claim of the same key
 *   waits for your commit. In a REPEATABLE READ or SERIALIZABLE transaction,
 *   the snapshot cannot show a key another transaction claimed or changed
 *   after it was taken: the claim then fails with a serialization failure,
 *   which aborts your transaction, and `run` fails with the transient
 *   `IdempotencyStoreError` with `abortedTransaction: true`. Retry the whole
 *   transaction (not `run` inside it): the new one replays the other's result
 *   or runs. The unique key and the row lock still decide between concurrent
 *   claims, so a key never runs twice. Any store write that fails inside your
 *   transaction is answered the same way, never with a success: the
 *   transaction is aborted, and its COMMIT would silently roll everything
 *   back. `waitForInFlight` cannot see another execution finish inside one
 *   snapshot: it waits out its bound, then answers the conflict. Statements
 *   the store sends on their own (no transaction around them) are sent again
 *   after a serialization failure or deadlock, so a database whose
 *   `default_transaction_isolation` is above READ COMMITTED works too.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Schema from "effect/Schema"
import type { InvalidOptionsError } from "../Failure.js"
import type { IdempotencyStore } from "./IdempotencyStore.js"
import type {
  IdempotencyConflictError,
  IdempotencyMismatchError,
  IdempotencyStoreError,
  StoredResultTooLargeError
} from "./internal/errors.js"
import * as internal from "./internal/idempotency.js"
import * as metrics from "./internal/metrics.js"
import * as runOptions from "./internal/runOptions.js"

// Declared in `internal/errors.ts`, a leaf the internals import.
export { IdempotencyStoreError } from "./internal/errors.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * Options of {@link run}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options<A, AI, E, EI> {
  /**
   * The bounded operation name, e.g. `"POST /payments"` or `"job:send-invoice"`: part of the key's identity and the
   * `scope` label of `bulwark_idempotency_requests_total`. 1 to 128 printable ASCII characters, no leading or
   * trailing space. Never put ids in it.
   */
  readonly scope: string
  /**
   * A tenant or user id: part of the key's identity (one tenant can never replay another's result), never a metric
   * label. Up to 255 characters, no control characters. Default `""`.
   */
  readonly partition?: string
  /** The idempotency key. 1 to 255 characters, no control characters (see {@link isValidKey}). */
  readonly key: string
  /** A caller-computed hash of the request (method, route, canonical body…). 1 to 512 characters, no control characters. */
  readonly fingerprint: string
  /** How a success is stored and replayed: its encoded form must be JSON. */
  readonly success: Schema.Schema<A, AI>
  /** How a stored failure is stored and replayed: its encoded form must be JSON. */
  readonly failure: Schema.Schema<E, EI>
  /** How long a claim holds without a heartbeat; the heartbeat renews it every third of it. Default 30 seconds. */
  readonly lease?: Duration.DurationInput
  /** How long a record lives, from the claim and again from completion. Default 24 hours. */
  readonly ttl?: Duration.DurationInput
  /**
   * When the key is in flight elsewhere, poll (backoff from 50 ms doubling, at most 1 second between polls) for up
   * to this long, then replay its result (or run, if it released). Default: no wait, conflict at once.
   */
  readonly waitForInFlight?: Duration.DurationInput
  /** Which typed failures are stored: `"terminal"` (the default) or `"all"` (Stripe's rule). */
  readonly storeFailures?: "terminal" | "all"
  /**
   * Decides, instead of the default rule, whether an outcome is stored (`true`) or releases the claim (`false`).
   * Defects and interruptions always release. Example: an HTTP handler's 5xx response is a success of the handler
   * that must release.
   */
  readonly shouldStore?: (exit: Exit.Exit<A, E>) => boolean
  /** Largest stored result, in bytes of its JSON (UTF-8). Default 1 MiB (1,048,576). */
  readonly maxStoredBytes?: number
  /**
   * Runs the handler and the completion in one transaction of the store's database (Brandur Leach's "atomic
   * phase"): the handler's own writes to that database commit if and only if its success is stored, in one commit
   * instead of two. A failure, a lost lease, a defect or an interruption rolls them back (a stored terminal failure
   * is then written on its own, after the rollback). Calls the handler makes outside the database are not undone:
   * keep them out of a transactional handler, or make them idempotent. Needs a store with `transaction` (the
   * PostgreSQL store, and a Redis cache in front of it); with any other store the completion is written after the
   * handler as usual. Default `false`.
   *
   * Inside a transaction of yours, the handler and the completion run in a savepoint of it, and everything commits
   * with your transaction. Under REPEATABLE READ or SERIALIZABLE, a key another transaction claimed or changed after
   * your snapshot fails `run` with `IdempotencyStoreError` (`abortedTransaction: true`, transient): your transaction
   * is aborted, so roll it back and run it again as a whole. Without a transaction of yours, a COMMIT the database
   * refuses (a SERIALIZABLE conflict, a deferred constraint) fails `run` with `IdempotencyStoreError` (operation
   * `"transaction"`) and releases the key: the handler's writes were rolled back, and retrying `run` runs it again.
   */
  readonly transactional?: boolean
}

/**
 * What the handler is told about its execution.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Execution {
  readonly scope: string
  readonly partition: string
  readonly key: string
  /** 1 for the first execution; each earlier release or takeover adds one. */
  readonly attempt: number
  /**
   * `true` when the previous attempt was abandoned mid-execution (its process died, its lease lapsed): its side
   * effects are unknown, so reconcile before repeating them.
   */
  readonly recovery: boolean
}

/**
 * A successful outcome: executed now, or replayed from the store. `attempt`
 * is the attempt that produced the value.
 *
 * @since 0.1.0
 * @category Models
 */
export type Result<A> = {
  readonly _tag: "Executed" | "Replayed"
  readonly value: A
  readonly attempt: number
}

/**
 * The values of the `result` label of `bulwark_idempotency_requests_total`.
 *
 * @since 0.1.0
 * @category Models
 */
export type MetricResult =
  | "executed"
  | "replayed"
  | "in_flight_conflict"
  | "fingerprint_mismatch"
  | "missing_key"
  | "invalid_key"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * Why a conflict happened.
 *
 * - `InFlight`: another execution holds a live lease on the key.
 * - `LeaseLost`: this execution's lease lapsed and another took the key over; this execution's outcome was discarded.
 *
 * @since 0.1.0
 * @category Models
 */
export type ConflictReason = "InFlight" | "LeaseLost"

// Declared in `internal/errors.ts`, a leaf the internals import.
export { IdempotencyConflictError, IdempotencyMismatchError, StoredResultTooLargeError } from "./internal/errors.js"

// -----------------------------------------------------------------------------
// Defaults and validation
// -----------------------------------------------------------------------------

/**
 * The defaults: lease 30 seconds, TTL 24 hours, no wait for in-flight
 * requests, terminal failures stored, 1 MiB per stored result.
 *
 * @since 0.1.0
 * @category Constants
 */
export const defaults: {
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly storeFailures: "terminal"
  readonly maxStoredBytes: number
} = runOptions.defaults

/**
 * Whether a key is acceptable: 1 to 255 characters, no control characters.
 * The HTTP layer checks this before calling {@link run} to answer 400.
 *
 * @since 0.1.0
 * @category Validation
 */
export const isValidKey: (key: string) => boolean = runOptions.isValidKey

/**
 * A short, stable hash of a key (12 hex characters of its SHA-256), for logs
 * and error messages: keys may be secrets, hashes are not.
 *
 * @since 0.1.0
 * @category Validation
 */
export const keyHash: (key: string) => string = runOptions.keyHash

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

/**
 * The errors {@link run} adds to the handler's.
 *
 * @since 0.1.0
 * @category Models
 */
export type RunError =
  | IdempotencyConflictError
  | IdempotencyMismatchError
  | IdempotencyStoreError
  | StoredResultTooLargeError
  | InvalidOptionsError

/**
 * Runs `handler` at most once per `(scope, partition, key)`; repeats of the
 * same request replay the stored result. Invalid options (an empty or
 * oversized key or scope, a non-positive lease or TTL…) fail with
 * `InvalidOptionsError` before anything is claimed.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Failure, Idempotency, IdempotencyStore } from "@bulwark/resilience"
 *
 * class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { reason: Schema.String }) {
 *   readonly [Failure.TerminalTypeId]: typeof Failure.TerminalTypeId = Failure.TerminalTypeId
 * }
 * const Charge = Schema.Struct({ id: Schema.String, amount: Schema.Number })
 *
 * declare const charge: (amount: number, downstreamKey: string) => Effect.Effect<typeof Charge.Type, CardDeclined>
 *
 * const program = Idempotency.run({
 *   scope: "POST /payments",
 *   partition: "account-7",
 *   key: "8e03978e-40d5-43e8-bc93-6894a57f9324",
 *   fingerprint: "sha256:…",
 *   success: Charge,
 *   failure: CardDeclined
 * })((execution) => charge(1000, `pay-${execution.key}`)).pipe(Effect.provide(IdempotencyStore.layerMemory))
 * // Effect<Result<{ id, amount }>, CardDeclined | IdempotencyConflictError | …>
 * ```
 *
 * @since 0.1.0
 * @category Running
 */
export const run: {
  <A, AI, E, EI>(
    options: Options<A, AI, E, EI>
  ): <R>(handler: (execution: Execution) => Effect.Effect<A, E, R>) => Effect.Effect<
    Result<A>,
    E | RunError,
    R | IdempotencyStore
  >
  <A, AI, E, EI, R>(
    handler: (execution: Execution) => Effect.Effect<A, E, R>,
    options: Options<A, AI, E, EI>
  ): Effect.Effect<Result<A>, E | RunError, R | IdempotencyStore>
} = internal.run

/**
 * Counts one request in `bulwark_idempotency_requests_total{scope, result}`.
 * {@link run} records `executed`, `replayed`, `in_flight_conflict` and
 * `fingerprint_mismatch` itself; the HTTP layer records `missing_key` and
 * `invalid_key`, which never reach `run`. `scope` must be the bounded
 * operation name.
 *
 * @since 0.1.0
 * @category Metrics
 */
export const recordRequest: (scope: string, result: MetricResult) => Effect.Effect<void> = metrics.recordRequest
