/**
 * The fallback module's error, in a leaf module: the internals construct it
 * and `Fallback.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import * as Inspectable from "effect/Inspectable"
import { hasProperty } from "effect/Predicate"
import { TransientTypeId } from "../../internal/failureErrors.js"

/**
 * A critical dependency is down and no fallback could answer. Names the
 * dependency; `cause` is the last failure of its chain. Transient: the
 * dependency may come back (answer 503, not 500).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Fallback } from "@bulwark/resilience"
 *
 * declare const page: Effect.Effect<string, Fallback.DependencyUnavailableError>
 *
 * const status = page.pipe(
 *   Effect.as(200),
 *   Effect.catchTag("DependencyUnavailableError", (e) => Effect.as(Effect.logError(e.message), 503))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class DependencyUnavailableError<out E = unknown> extends Data.TaggedError("DependencyUnavailableError")<{
  readonly dependency: string
  readonly cause: E
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Dependency "${this.dependency}" is unavailable: ${describe(this.cause)}`
  }
}

/**
 * A failure for a human: its message, else its tag, else the value itself.
 *
 * @internal
 */
export const describe = (error: unknown): string => {
  if (hasProperty(error, "message") && typeof error.message === "string" && error.message !== "") return error.message
  if (hasProperty(error, "_tag") && typeof error._tag === "string") return error._tag
  return Inspectable.toStringUnknown(error, undefined)
}
