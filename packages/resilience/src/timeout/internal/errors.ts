/**
 * The timeout's error, in a leaf module: the internals construct it and
 * `Timeout.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import { TransientTypeId } from "../../internal/failureErrors.js"

/**
 * The operation ran out of time and was interrupted. Transient: a later
 * attempt may be faster.
 *
 * @since 0.1.0
 * @category Errors
 */
export class TimeoutError extends Data.TaggedError("TimeoutError")<{
  readonly operation: string
  readonly limit: Duration.Duration
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Operation "${this.operation}" timed out after ${Duration.format(this.limit)}`
  }
}
