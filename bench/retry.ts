/**
 * The retry combinator's happy-path overhead: a call that succeeds at once,
 * through Bulwark's `Retry.retry`, against a bare Effect and against
 * cockatiel's retry policy wrapped in `Effect.promise` (the way an Effect user
 * would adopt it).
 */
import { Retry } from "@bulwark/resilience"
import { ExponentialBackoff, handleAll, retry } from "cockatiel"
import * as Effect from "effect/Effect"
import { compare } from "./harness.js"

const CALLS = 1_000

const loop = <A, E>(call: Effect.Effect<A, E>): Effect.Effect<void, E> =>
  Effect.gen(function*() {
    for (let i = 0; i < CALLS; i++) yield* call
  })

export const run = async () => {
  const policy = Retry.unsafeMake({ name: "bench", maxAttempts: 4 })
  const cockatielPolicy = retry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() })

  const bare = loop(Effect.succeed(1))
  const bulwark = loop(Effect.succeed(1).pipe(Retry.retry(policy)))
  const promiseFloor = loop(Effect.promise(() => Promise.resolve(1)))
  const cockatiel = loop(Effect.promise(() => cockatielPolicy.execute(() => Promise.resolve(1))))

  return compare(
    "retry: happy path (1,000 sequential calls per iteration)",
    { callsPerIteration: CALLS, versus: ["bare Effect", "cockatiel retry in Effect.promise"] },
    [
      { name: "bare Effect", run: () => Effect.runPromise(bare) },
      { name: "Bulwark Retry.retry", run: () => Effect.runPromise(bulwark) },
      { name: "bare Effect.promise (floor for promise peers)", run: () => Effect.runPromise(promiseFloor) },
      { name: "cockatiel retry in Effect.promise", run: () => Effect.runPromise(cockatiel) }
    ]
  )
}
