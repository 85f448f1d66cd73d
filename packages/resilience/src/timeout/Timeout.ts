/**
 * Timeouts that really stop the work.
 *
 * `Timeout.timeout(policy)` fails with a typed, **transient** `TimeoutError`
 * naming the operation and the limit, and interrupts the timed-out effect:
 * its finalizers run and it stops, so nothing keeps running in the background
 * (no cooperative cancellation token to forget, unlike Polly's optimistic
 * timeouts or opossum's AbortController reuse bug).
 *
 * **Uninterruptible work.** Interruption waits for an uninterruptible region
 * to end, so by default (`onUninterruptible: "wait"`) the timeout waits too: a
 * 50 ms timeout around 300 ms of uninterruptible work answers after 300 ms,
 * with the `TimeoutError` (the work's success is discarded: it came too late).
 * With `onUninterruptible: "abandon"` (Polly's pessimistic strategy,
 * Resilience4j's `TimeLimiter`) the timeout interrupts the work as always but
 * answers at the limit: what could not stop finishes in the background and
 * stops at its first interruptible point, counted by how it ended in
 * `bulwark_timeout_abandoned_total{operation, result}`. The work stays a child
 * of the fiber that ran the timeout (not a daemon, as `Effect.disconnect`
 * makes it): interrupting that fiber interrupts it, and the fiber, when it
 * ends, waits for it, so nothing outlives its owner.
 *
 * A per-attempt timeout goes inside a retry (so a slow attempt is retried), an
 * overall timeout outside it:
 *
 * ```ts
 * op.pipe(Timeout.timeout(perAttempt), Retry.retry(policy), Timeout.timeout(overall))
 * ```
 *
 * Traces (with `Tracing.layer`): `bulwark.timeout.operation` and `.limit_ms`
 * on the call's span, and a `timeout` event when the limit strikes.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Metric from "effect/Metric"
import type { InvalidOptionsError } from "../Failure.js"
import { TimeoutError } from "./internal/errors.js"
import * as internal from "./internal/timeout.js"

// Declared in `internal/errors.ts`, a leaf the internals import.
export { TimeoutError }

/**
 * What a timeout does when the work does not stop at once (it is in an
 * uninterruptible region, or its finalizers take time): `"wait"` until it has
 * stopped, or `"abandon"` it to finish in the background and answer at the
 * limit.
 *
 * @since 0.1.0
 * @category Models
 */
export type OnUninterruptible = "wait" | "abandon"

/**
 * A validated timeout. Build it with {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policy {
  readonly operation: string
  readonly limit: Duration.Duration
  readonly onUninterruptible: OnUninterruptible
  /** `bulwark_timeouts_total{operation}`, tagged once. */
  readonly counter: Metric.Metric.Counter<number>
  /** `bulwark_timeout_abandoned_total{operation}`, tagged once (the `result` is tagged when the work ends). */
  readonly abandoned: Metric.Metric.Counter<number>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Timeout {
  /**
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Names the operation in the error, logs and the `operation` metric label. */
    readonly operation: string
    /** A positive, finite duration. */
    readonly limit: Duration.DurationInput
    /**
     * When the work does not stop at once at the limit (an uninterruptible
     * region): `"wait"` for it (default; the caller answers when it has
     * stopped), or `"abandon"` it (the caller answers at the limit, the work
     * finishes in the background and is counted in
     * `bulwark_timeout_abandoned_total`).
     */
    readonly onUninterruptible?: OnUninterruptible | undefined
  }
}

/**
 * Builds a timeout; a zero, negative, NaN or infinite limit, a bad name, or
 * an `onUninterruptible` other than `"wait"` or `"abandon"`, fails with
 * `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Timeout } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const perAttempt = yield* Timeout.make({ operation: "charge", limit: "2 seconds" })
 *   return yield* Effect.never.pipe(Timeout.timeout(perAttempt))
 *   // fails with TimeoutError { operation: "charge", limit: 2 seconds }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options: Timeout.Options) => Effect.Effect<Policy, InvalidOptionsError> = internal.make

/**
 * Like {@link make}, for module-level constants: throws the `InvalidOptionsError`.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const unsafeMake: (options: Timeout.Options) => Policy = internal.unsafeMake

/**
 * Fails with `TimeoutError` and interrupts `self` when it runs longer than the
 * policy's limit; counts it in `bulwark_timeouts_total` and logs a warning.
 *
 * With `onUninterruptible: "wait"` (the default) the error comes once `self`
 * has stopped: 300 ms of uninterruptible work under a 50 ms limit answers
 * after 300 ms. With `"abandon"` it comes at the limit, and `self` finishes in
 * the background as a child of the calling fiber: the caller goes on at once,
 * but that fiber's own end waits for the work (so `Fiber.join` of a forked
 * call does too), and interrupting it interrupts the work. An abandoned call
 * no longer holds what the layers outside hold for it (a bulkhead's permit):
 * the background work runs outside their count.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Timeout } from "@bulwark/resilience"
 *
 * const flush = Effect.uninterruptible(Effect.sleep("300 millis"))
 *
 * const program = Effect.gen(function*() {
 *   const policy = yield* Timeout.make({ operation: "flush", limit: "50 millis", onUninterruptible: "abandon" })
 *   return yield* flush.pipe(Timeout.timeout(policy))
 *   // fails with TimeoutError after 50 ms; the flush ends at 300 ms and counts in
 *   // bulwark_timeout_abandoned_total{operation="flush", result="interrupted"}
 * })
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const timeout: {
  (policy: Policy): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TimeoutError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Policy): Effect.Effect<A, E | TimeoutError, R>
} = internal.timeout
