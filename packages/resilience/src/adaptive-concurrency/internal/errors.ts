/**
 * The adaptive limiter's error, in a leaf module: the internals construct it
 * and `AdaptiveConcurrency.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import { RejectionTypeId, TransientTypeId } from "../../internal/failureErrors.js"

/**
 * An adaptive concurrency limiter refused a call: as many calls as its
 * current limit were already running. The call never ran. Transient (try
 * again later; `retryAfter` is the hint) and a rejection (circuit breakers
 * do not count it as a failure of the dependency), like `BulkheadFullError`.
 * Carries the limiter's name, its limit and the calls in flight when it
 * refused.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AdaptiveConcurrency } from "@bulwark/resilience"
 *
 * declare const limiter: AdaptiveConcurrency.AdaptiveConcurrency
 * declare const search: Effect.Effect<string>
 *
 * const answer = search.pipe(
 *   AdaptiveConcurrency.protect(limiter),
 *   Effect.catchTag("ConcurrencyLimitError", (error) => Effect.succeed(`busy: ${error.inflight}/${error.limit}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class ConcurrencyLimitError extends Data.TaggedError("ConcurrencyLimitError")<{
  readonly limiter: string
  readonly limit: number
  readonly inflight: number
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
    return `Adaptive concurrency limit "${this.limiter}" reached: ${this.inflight} call${
      this.inflight === 1 ? "" : "s"
    } running, limit ${this.limit}; retry after ${Duration.format(this.retryAfter)}`
  }
}
