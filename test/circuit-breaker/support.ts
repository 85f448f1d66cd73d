/**
 * What the shared-breaker tests (one Redis, a Redis Cluster) do to their breakers.
 */
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"

/** The dependency behind the breakers, down. */
export const failing = Effect.fail(new Error("dependency down"))

/** A breaker name no other test uses. */
export const unique = (label: string): string => `${label}-${Math.random().toString(36).slice(2, 8)}`

/** `items[index]`, which must be there. */
export const at = <A>(items: ReadonlyArray<A>, index: number): A => {
  const item = items[index]
  if (item === undefined) throw new Error(`no item ${index}`)
  return item
}

/** Trips `breaker` (2 consecutive failures in these tests). */
export const trip = (breaker: CircuitBreaker.CircuitBreaker): Effect.Effect<void> =>
  Effect.asVoid(Effect.repeatN(Effect.ignore(failing.pipe(CircuitBreaker.protect(breaker))), 1))

/** The refusal `breaker` answers a call with; a defect when it lets the call run. */
export const refusal = (breaker: CircuitBreaker.CircuitBreaker): Effect.Effect<CircuitBreaker.CircuitOpenError> =>
  Effect.flatMap(
    Effect.either(Effect.succeed("ran").pipe(CircuitBreaker.protect(breaker))),
    (result) =>
      Either.isLeft(result) && CircuitBreaker.isCircuitOpenError(result.left)
        ? Effect.succeed(result.left)
        : Effect.dieMessage(`expected a refusal, got ${JSON.stringify(result)}`)
  )
