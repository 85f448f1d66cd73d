/**
 * Which finished calls count against a breaker: the options' predicates and
 * the failure model, shared by the synchronous breaker and the STM one.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Option from "effect/Option"
import * as Failure from "../../Failure.js"
import type { Resolved } from "./config.js"

/** How deep `RetriesExhausted` wrappers are unwrapped: enough for any real stack, and no loop on a cyclic one. */
const MAX_UNWRAP = 32

/**
 * Whether a local policy refused the call (`Failure.isRejection`), also when
 * the refusal is the last failure of an exhausted retry, however many retry
 * layers wrap it: retries that only ever met a full bulkhead, an open inner
 * breaker or a rate limit never reached the dependency, so they say nothing
 * about its health.
 *
 * @internal
 */
export const isRejectionDeep = (error: unknown): boolean => {
  let current = error
  for (let depth = 0; depth <= MAX_UNWRAP; depth++) {
    if (Failure.isRejection(current)) return true
    if (!Failure.isRetriesExhausted(current)) return false
    current = current.lastFailure
  }
  return false
}

/** @internal */
export interface Classifier<E, A> {
  /** Whether a success counts as a failure. A throwing predicate counts the call as failed: it must not skip the record (that would leak a half-open permit). */
  readonly successFails: (value: A) => boolean
  /** Whether a failed call counts as a failure; `false` when it hands its permit back uncounted (interrupted, or an error that does not count). */
  readonly failureCounts: (cause: Cause.Cause<E>) => boolean
}

/** @internal */
export const classifier = <E, A>(resolved: Resolved<E, A>): Classifier<E, A> => {
  const errorCounts = (error: E): boolean => {
    if (resolved.ignoreError?.(error) === true) return false
    if (resolved.recordError?.(error) === true) return true
    if (isRejectionDeep(error)) return resolved.countRejections
    return !Failure.isTerminal(error)
  }
  return {
    successFails: (value) => {
      try {
        return resolved.recordResult !== undefined && resolved.recordResult(value)
      } catch {
        return true
      }
    },
    failureCounts: (cause) => {
      try {
        if (Cause.isDie(cause)) return true
        const error = Cause.failureOption(cause)
        return Option.isSome(error) && errorCounts(error.value)
      } catch {
        return true
      }
    }
  }
}
