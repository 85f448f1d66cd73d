/**
 * The circuit breaker's error, in a leaf module: the internals construct it
 * and `CircuitBreaker.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import { RejectionTypeId, TransientTypeId } from "../../internal/failureErrors.js"
import { formatDuration } from "../../internal/format.js"

/**
 * The breaker refused the call: the dependency was not called. Transient and
 * a rejection, so a retry waits at least `retryAfter` (the time until the
 * breaker half-opens; zero while it is half-open with every probe taken; the
 * configured open duration when an operator forced it open) and other
 * breakers ignore it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * const answer = (call: Effect.Effect<string, CircuitBreaker.CircuitOpenError>) =>
 *   call.pipe(Effect.catchTag("CircuitOpenError", (e) => Effect.succeed(`try again in ${e.retryAfter}`)))
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class CircuitOpenError extends Data.TaggedError("CircuitOpenError")<{
  readonly breaker: string
  readonly state: "Open" | "HalfOpen" | "ForcedOpen"
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
    return openErrorMessage(this)
  }
}

const openErrorMessage = (self: CircuitOpenError): string => {
  switch (self.state) {
    case "Open":
      return `Circuit breaker "${self.breaker}" is open; it half-opens in ${formatDuration(self.retryAfter)}`
    case "HalfOpen":
      return `Circuit breaker "${self.breaker}" is half-open and every probe call is taken; retry shortly`
    case "ForcedOpen":
      return `Circuit breaker "${self.breaker}" was forced open by an operator`
  }
}
