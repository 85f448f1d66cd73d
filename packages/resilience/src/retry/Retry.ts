/**
 * Retries that only retry what is safe to retry.
 *
 * `Retry.retry(policy)` re-runs an effect after a **transient** failure (see
 * `Failure`), waiting a backoff delay with jitter and at least the failure's
 * `retryAfter` hint. Terminal and unclassified failures pass through at once,
 * untouched. It stops at `maxAttempts`, before a wait would reach
 * `maxElapsed` or when a retry is still running as `maxElapsed` is spent
 * (the retry is interrupted), or when a shared `RetryBudget` is spent, and
 * then fails with `RetriesExhausted` carrying the last failure, the attempt
 * count and the elapsed time. The types show it: after `retry`, the
 * transient part has left the error channel.
 *
 * ```text
 * attempt 1 ──transient──▶ wait max(backoff+jitter, retryAfter) ──▶ attempt 2 ──▶ … ──▶ RetriesExhausted
 *     │                         │ (would reach maxElapsed? budget spent? → stop now)  │
 *     │                         │                       (still running at maxElapsed? → interrupt, stop)
 *     └──terminal / unknown──▶ fails at once with the original error
 * ```
 *
 * Backoffs are `Schedule`s: the built-in ones are available as schedules
 * through {@link schedule}, and any `Schedule` can serve as a policy's backoff.
 * Timeouts compose around it: `op.pipe(Timeout.timeout(perAttempt),
 * Retry.retry(policy), Timeout.timeout(overall))`.
 *
 * Traces (with `Tracing.layer`): the call's one span carries
 * `bulwark.retry.policy` and `bulwark.retry.attempts`, and a `retry` event
 * per retry with the attempt it announces (`bulwark.retry.attempt`), its
 * delay (`bulwark.retry.delay_ms`) and the failure's `error.type`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Schedule from "effect/Schedule"
import type { InvalidOptionsError, RetriesExhausted, Transient } from "../Failure.js"
import * as policy from "./internal/policy.js"
import * as internal from "./internal/retry.js"
import type { RetryBudget } from "./RetryBudget.js"

// -----------------------------------------------------------------------------
// Backoff
// -----------------------------------------------------------------------------

/**
 * A backoff, as data: validated when a policy or schedule is built.
 *
 * @since 0.1.0
 * @category Models
 */
export type Backoff = Backoff.Constant | Backoff.Linear | Backoff.Exponential | Backoff.Fibonacci

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Backoff {
  /**
   * The same delay before every retry.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Constant {
    readonly _tag: "Constant"
    readonly delay: Duration.DurationInput
  }
  /**
   * `base + increment·(n-1)` before retry `n`, capped.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Linear {
    readonly _tag: "Linear"
    readonly base: Duration.DurationInput
    /** Default: the base. */
    readonly increment?: Duration.DurationInput
    /** Default: 30 seconds. */
    readonly cap?: Duration.DurationInput
  }
  /**
   * `base·factor^(n-1)` before retry `n`, capped.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Exponential {
    readonly _tag: "Exponential"
    readonly base: Duration.DurationInput
    /** At least 1. Default: 2. */
    readonly factor?: number
    /** Default: 30 seconds. */
    readonly cap?: Duration.DurationInput
  }
  /**
   * `base·fib(n)` before retry `n` (1, 1, 2, 3, 5, …), capped.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Fibonacci {
    readonly _tag: "Fibonacci"
    readonly base: Duration.DurationInput
    /** Default: 30 seconds. */
    readonly cap?: Duration.DurationInput
  }
}

/**
 * How a backoff delay `d` is randomised:
 *
 * | jitter | delay |
 * |---|---|
 * | `"none"` | `d` |
 * | `"full"` | `random(0, d)` (AWS "full jitter") |
 * | `"equal"` | `d/2 + random(0, d/2)` |
 * | `"decorrelated"` | `min(cap, random(base, previous·3))`, stateful per call (AWS) |
 * | `{ proportional: r }` | `random(d·(1-r), d·(1+r))`, never above the cap |
 *
 * Jitter spreads retries of many clients apart, so they do not arrive in waves.
 *
 * @since 0.1.0
 * @category Models
 */
export type Jitter = "none" | "full" | "equal" | "decorrelated" | { readonly proportional: number }

/**
 * @since 0.1.0
 * @category Backoff
 */
export const constant: (delay: Duration.DurationInput) => Backoff = policy.constant

/**
 * @since 0.1.0
 * @category Backoff
 */
export const linear: (options: Omit<Backoff.Linear, "_tag">) => Backoff = policy.linear

/**
 * @example
 * ```ts
 * import { Retry } from "@bulwark/resilience"
 *
 * // 200ms, 400ms, 800ms, … never more than 10s (before jitter)
 * const backoff = Retry.exponential({ base: "200 millis", factor: 2, cap: "10 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category Backoff
 */
export const exponential: (options: Omit<Backoff.Exponential, "_tag">) => Backoff = policy.exponential

/**
 * @since 0.1.0
 * @category Backoff
 */
export const fibonacci: (options: Omit<Backoff.Fibonacci, "_tag">) => Backoff = policy.fibonacci

/**
 * A backoff with jitter as an Effect `Schedule` of delays, for use with
 * `Effect.retry`, `Effect.repeat` or anything else that takes a schedule. It
 * never stops by itself. Random numbers come from Effect's `Random`.
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { Retry } from "@bulwark/resilience"
 *
 * const poll = Effect.gen(function*() {
 *   const backoff = yield* Retry.schedule(Retry.exponential({ base: "1 second" }), "equal")
 *   return yield* Effect.repeat(Effect.log("polling"), Schedule.intersect(backoff, Schedule.recurs(3)))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Backoff
 */
export const schedule: (
  backoff: Backoff,
  jitter?: Jitter
) => Effect.Effect<Schedule.Schedule<Duration.Duration>, InvalidOptionsError> = policy.schedule

// -----------------------------------------------------------------------------
// Policy
// -----------------------------------------------------------------------------

/**
 * A validated retry policy. Build it with {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policy {
  readonly name: string
  readonly schedule: Schedule.Schedule<unknown, unknown>
  readonly maxAttempts: number
  readonly maxElapsed: Option.Option<Duration.Duration>
  readonly budget: Option.Option<RetryBudget>
  readonly respectRetryAfter: boolean
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Retry {
  /**
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Names the policy in metrics (`policy` label) and logs. Default `"default"`. */
    readonly name?: string
    /**
     * The delays between attempts. A {@link Backoff}, or any `Schedule` (its
     * delays are used; when it stops, the policy gives up with reason
     * `"ScheduleDone"`). Default: exponential, base 100 ms, factor 2, cap 5 s.
     */
    readonly backoff?: Backoff | Schedule.Schedule<unknown, unknown>
    /** Default `"full"`. `"decorrelated"` needs a growing built-in backoff. */
    readonly jitter?: Jitter
    /** Attempts in all, the first one included; a whole number ≥ 1, or `Infinity`. Default 4. */
    readonly maxAttempts?: number
    /**
     * The time budget of a call, counted from the start of its first attempt;
     * default: no limit. A wait that would reach it is not started, and a
     * retry still running when it is spent is interrupted (its finalizers run
     * first): the call then fails with `RetriesExhausted`, reason
     * `"MaxElapsed"`. For a retry cut off, `lastFailure` is the failure of the
     * attempt before it (the cut-off attempt has none of its own) and
     * `attempts` counts it. So a call that has failed once ends by the budget.
     * The first attempt is not cut off: before a transient failure there is no
     * `RetriesExhausted` to give (an effect with no transient failure has none
     * in its type), so a first attempt that fails transiently after the budget
     * gives up at once. Bound the first attempt with a timeout:
     * `Timeout.timeout` per attempt inside the retry, or for the whole call
     * outside it.
     */
    readonly maxElapsed?: Duration.DurationInput
    /** A budget shared with other policies, against retry storms. Default: none. */
    readonly budget?: RetryBudget
    /** Waits at least a failure's `retryAfter` hint (capped by the classifier). Default `true`. */
    readonly respectRetryAfter?: boolean
  }
}

/**
 * Defaults of {@link make}: 4 attempts, exponential backoff from 100 ms
 * doubling to at most 5 s, full jitter; backoffs cap at 30 s when no cap is given.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const defaults: typeof policy.defaults = policy.defaults

/**
 * Builds a policy. Invalid options (negative or NaN durations, zero attempts,
 * a factor below 1, a cap below the base, jitter outside 0–1) fail with
 * `InvalidOptionsError` naming the option.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Retry } from "@bulwark/resilience"
 *
 * const charge = Effect.fail(new Failure.TransientError({ reason: "HttpStatus", message: "503", status: 503 }))
 *
 * const program = Effect.gen(function*() {
 *   const policy = yield* Retry.make({
 *     name: "payments",
 *     backoff: Retry.exponential({ base: "200 millis", cap: "5 seconds" }),
 *     jitter: "full",
 *     maxAttempts: 5,
 *     maxElapsed: "20 seconds"
 *   })
 *   return yield* charge.pipe(Retry.retry(policy))
 *   // error channel: RetriesExhausted<TransientError>
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options?: Retry.Options) => Effect.Effect<Policy, InvalidOptionsError> = policy.make

/**
 * Like {@link make}, for module-level constants: throws the
 * `InvalidOptionsError` instead of returning it.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const unsafeMake: (options?: Retry.Options) => Policy = policy.unsafeMake

// -----------------------------------------------------------------------------
// Combinator
// -----------------------------------------------------------------------------

/**
 * The error channel after {@link retry}: transient failures are gone;
 * `RetriesExhausted` carrying them appears when there were any.
 *
 * @since 0.1.0
 * @category Models
 */
export type Retried<E> =
  | Exclude<E, Transient>
  | ([Extract<E, Transient>] extends [never] ? never : RetriesExhausted<Extract<E, Transient>>)

/**
 * Retries transient failures of `self` according to `policy`. Every retry is
 * logged at warning level (policy, attempt, delay, error tag) and counted in
 * `bulwark_retry_attempts_total`; every call ends in
 * `bulwark_retry_calls_total{result}`. Interruption stops it at once, even
 * mid-wait. With `maxElapsed`, a retry still running when the time budget is
 * spent is interrupted and the call fails with `RetriesExhausted` (reason
 * `"MaxElapsed"`, the previous attempt's failure as `lastFailure`); see
 * {@link Retry.Options}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Retry } from "@bulwark/resilience"
 *
 * const policy = Retry.unsafeMake({ name: "inventory", maxAttempts: 3 })
 *
 * declare const reserve: Effect.Effect<string, Failure.TransientError | Failure.TerminalError>
 *
 * const reserved = reserve.pipe(Retry.retry(policy))
 * // Effect<string, Failure.TerminalError | Failure.RetriesExhausted<Failure.TransientError>>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const retry: {
  (policy: Policy): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Retried<E>, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, policy: Policy): Effect.Effect<A, Retried<E>, R>
} = internal.retry
