/**
 * Timeouts that really stop the work.
 *
 * `Timeout.timeout(policy)` fails with a typed, **transient** `TimeoutError`
 * naming the operation and the limit, and interrupts the timed-out effect:
 * its finalizers run and it stops, so nothing keeps running in the background
 * (no cooperative cancellation token to forget, unlike Polly's optimistic
 * timeouts or opossum's AbortController reuse bug).
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
 * A validated timeout. Build it with {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policy {
  readonly operation: string
  readonly limit: Duration.Duration
  /** `bulwark_timeouts_total{operation}`, tagged once. */
  readonly counter: Metric.Metric.Counter<number>
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
  }
}

/**
 * Builds a timeout; a zero, negative, NaN or infinite limit, or a bad name,
 * fails with `InvalidOptionsError`.
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
 * @since 0.1.0
 * @category Combinators
 */
export const timeout: {
  (policy: Policy): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | TimeoutError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Policy): Effect.Effect<A, E | TimeoutError, R>
} = internal.timeout
