/**
 * The rate limiter's error, in a leaf module: the internals construct it and
 * `RateLimiter.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import { RejectionTypeId, TransientTypeId } from "../../internal/failureErrors.js"
import { formatDuration } from "../../internal/format.js"
import type { RejectionReason } from "../RateLimiter.js"

/**
 * A limiter refused the call. Transient (retrying after `retryAfter` may
 * succeed; `Retry.retry` waits at least that long) and a rejection (circuit
 * breakers ignore it). It never carries the key: keys are user data.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 *
 * declare const limiter: RateLimiter.RateLimiter
 *
 * const answer = limiter.consume("user-42").pipe(
 *   Effect.as("ok"),
 *   Effect.catchTag("RateLimitedError", (e) => Effect.succeed(`slow down, retry in ${e.retryAfter}`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class RateLimitedError extends Data.TaggedError("RateLimitedError")<{
  readonly limiter: string
  readonly reason: RejectionReason
  readonly retryAfter: Duration.Duration
  readonly limit: number
  readonly remaining: number
  readonly reset: Duration.Duration
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
    return rateLimitedMessage(this)
  }
}

const rateLimitedMessage = (self: RateLimitedError): string =>
  self.reason === "StoreUnavailable"
    ? `Rate limiter "${self.limiter}" refused the call: its store is unavailable and it fails closed; ` +
      `retry after ${formatDuration(self.retryAfter)}`
    : `Rate limiter "${self.limiter}" refused the call: limit ${self.limit} reached; ` +
      `retry after ${formatDuration(self.retryAfter)}`
