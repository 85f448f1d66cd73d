/**
 * The chaos module's error, in a leaf module: the internals construct it and
 * `Chaos.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import { TransientTypeId } from "../../internal/failureErrors.js"

/**
 * The failure {@link fault} injects when you give it no error of your own.
 * Transient, like the dropped connection it stands for: `Retry.retry`
 * retries it and circuit breakers count it.
 *
 * @since 0.1.0
 * @category Errors
 */
export class InjectedFaultError extends Data.TaggedError("InjectedFaultError")<{
  readonly policy: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Chaos policy "${this.policy}" injected a fault`
  }
}
