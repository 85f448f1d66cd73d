/**
 * A retry budget shared across calls, so that a failing dependency cannot
 * cause a retry storm.
 *
 * The model is Finagle's `RetryBudget` (also tower's `Budget`): every call
 * deposits `ratio` of a token, every retry withdraws one, and deposits expire
 * after `window`; on top, a reserve of `minRetriesPerSecond` keeps low-traffic
 * callers able to retry at all. Over any window, retries are therefore at most
 * `ratio × calls + minRetriesPerSecond × window`. When the budget is spent, a
 * retry policy stops at once with `RetriesExhausted` (reason `"Budget"`) and
 * counts it in `bulwark_retry_budget_denied_total`.
 *
 * None of Resilience4j, Polly, cockatiel or opossum ships this (Polly #2348).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { InvalidOptionsError } from "../Failure.js"
import * as internal from "./internal/retryBudget.js"

/**
 * A shared budget. Pass the same value to every retry policy that should draw
 * from it.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RetryBudget {
  readonly name: string
  readonly ratio: number
  readonly minRetriesPerSecond: number
  readonly window: Duration.Duration
  /** Records one call (the retry combinator does this once per logical call). */
  readonly deposit: Effect.Effect<void>
  /** Takes one retry from the budget if it has one; `false` when it is spent. */
  readonly tryWithdraw: Effect.Effect<boolean>
  /** Whole retries currently available. */
  readonly available: Effect.Effect<number>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace RetryBudget {
  /**
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Used in logs. Default `"default"`. */
    readonly name?: string
    /** Retries allowed per call, on average over the window. Default `0.2` (20 %, Finagle's default). */
    readonly ratio?: number
    /** A floor of retries per second that is always allowed. Default `10`. */
    readonly minRetriesPerSecond?: number
    /** How long a call's deposit counts: a whole number of seconds, 1 to 60. Default 10 seconds. */
    readonly window?: Duration.DurationInput
  }
}

/**
 * Builds a budget; invalid options fail with `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Retry, RetryBudget } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const budget = yield* RetryBudget.make({ ratio: 0.1, minRetriesPerSecond: 5 })
 *   const policy = yield* Retry.make({ name: "inventory", budget })
 *   return policy
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options?: RetryBudget.Options) => Effect.Effect<RetryBudget, InvalidOptionsError> = internal.make
