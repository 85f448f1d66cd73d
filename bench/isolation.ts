/**
 * Per-call happy-path overhead of the circuit breaker, the bulkhead, and
 * breaker + bulkhead + retry composed: Bulwark against a bare Effect and
 * against cockatiel's and opossum's equivalents wrapped in `Effect.promise`
 * (the way an Effect user would adopt them), in one run.
 *
 * opossum has no retry and no bulkhead queue: its "composed" row is a breaker
 * with `capacity` (its semaphore), which is all it offers.
 *
 * The last table puts the same three layers in the pipeline's documented order
 * (breaker ▸ bulkhead ▸ retry) by hand and through `Pipeline.run`: the
 * pipeline must cost what the hand-stacked layers cost. Its last row is the
 * other order, for reference.
 *
 * Each table is the median of five rounds in which every case runs in turn
 * (see `rounds` in harness.ts): the machines this runs on are shared, and a
 * burst of other work then skews one round of one case, not a whole row.
 */
import * as Bulkhead from "@bulwark/resilience/Bulkhead"
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Pipeline from "@bulwark/resilience/Pipeline"
import * as Retry from "@bulwark/resilience/Retry"
import * as TBulkhead from "@bulwark/resilience/TBulkhead"
import * as TCircuitBreaker from "@bulwark/resilience/TCircuitBreaker"
import {
  bulkhead as cockatielBulkhead,
  circuitBreaker as cockatielBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleAll,
  retry as cockatielRetry,
  wrap
} from "cockatiel"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"
import * as STM from "effect/STM"
import * as TRef from "effect/TRef"
import * as TSemaphore from "effect/TSemaphore"
import Opossum from "opossum"
import { compare } from "./harness.js"

const CALLS = 1_000
/** Five rounds of 400 ms per case. */
const TIMING = { time: 2_000, rounds: 5 } as const

const loop = <A, E>(call: Effect.Effect<A, E>): Effect.Effect<void, E> =>
  Effect.gen(function*() {
    for (let i = 0; i < CALLS; i++) yield* call
  })

const resolveOne = () => Promise.resolve(1)

export const run = async () => {
  const breaker = await Effect.runPromise(CircuitBreaker.make({ name: "bench-breaker" }))
  const bulkhead = await Effect.runPromise(Bulkhead.make({ name: "bench-bulkhead", maxConcurrent: 8, maxQueued: 16 }))
  const policy = Retry.unsafeMake({ name: "bench-composed" })
  // The STM variants' fibers live in this scope, for the whole run.
  const scope = await Effect.runPromise(Scope.make())
  const tBreaker = await Effect.runPromise(Scope.extend(TCircuitBreaker.make({ name: "bench-tbreaker" }), scope))
  // A count window changes with every call: every call of the STM breaker commits twice (admit, record).
  const rateOptions = { trip: CircuitBreaker.failureRate({ window: { calls: 100 } }) }
  const rateBreaker = await Effect.runPromise(CircuitBreaker.make({ name: "bench-breaker-rate", ...rateOptions }))
  const tRateBreaker = await Effect.runPromise(
    Scope.extend(TCircuitBreaker.make({ name: "bench-tbreaker-rate", ...rateOptions }), scope)
  )
  const tBulkhead = await Effect.runPromise(
    Scope.extend(TBulkhead.make({ name: "bench-tbulkhead", maxConcurrent: 8, maxQueued: 16 }), scope)
  )
  const counter = await Effect.runPromise(TRef.make(0))
  const increment = STM.commit(TRef.update(counter, (n) => n + 1))
  // What a transactional breaker cannot go below: one commit to admit a call, one to record it.
  const twoCommits = Effect.zipRight(increment, Effect.zipRight(Effect.succeed(1), increment))
  const semaphore = await Effect.runPromise(TSemaphore.make(8))

  const cbBreaker = cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) })
  const cbBulkhead = cockatielBulkhead(8, 16)
  const cbComposed = wrap(
    cockatielRetry(handleAll, { maxAttempts: 3, backoff: new ExponentialBackoff() }),
    cockatielBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new ConsecutiveBreaker(5) }),
    cockatielBulkhead(8, 16)
  )
  const opossumBreaker = new Opossum(resolveOne, { timeout: false, resetTimeout: 30_000 })
  const opossumWithCapacity = new Opossum(resolveOne, { timeout: false, resetTimeout: 30_000, capacity: 8 })

  const bare = { name: "bare Effect", run: () => Effect.runPromise(loop(Effect.succeed(1))) }
  const floor = {
    name: "bare Effect.promise (floor for promise peers)",
    run: () => Effect.runPromise(loop(Effect.promise(resolveOne)))
  }

  const rows = []
  rows.push(
    ...await compare(
      "circuit breaker: happy path (closed, 1,000 sequential calls per iteration)",
      {
        callsPerIteration: CALLS,
        ...TIMING,
        versus: [
          "bare Effect",
          "two bare TRef commits (floor for TCircuitBreaker)",
          "cockatiel in Effect.promise",
          "opossum in Effect.promise"
        ]
      },
      [
        bare,
        {
          name: "Bulwark CircuitBreaker.protect",
          run: () => Effect.runPromise(loop(Effect.succeed(1).pipe(CircuitBreaker.protect(breaker))))
        },
        {
          name: "two bare TRef commits (floor for TCircuitBreaker)",
          run: () => Effect.runPromise(loop(twoCommits))
        },
        {
          name: "Bulwark TCircuitBreaker.protect",
          run: () => Effect.runPromise(loop(Effect.succeed(1).pipe(TCircuitBreaker.protect(tBreaker))))
        },
        {
          name: "Bulwark CircuitBreaker.protect, failure-rate window",
          run: () => Effect.runPromise(loop(Effect.succeed(1).pipe(CircuitBreaker.protect(rateBreaker))))
        },
        {
          name: "Bulwark TCircuitBreaker.protect, failure-rate window (2 commits)",
          run: () => Effect.runPromise(loop(Effect.succeed(1).pipe(TCircuitBreaker.protect(tRateBreaker))))
        },
        floor,
        {
          name: "cockatiel in Effect.promise",
          run: () => Effect.runPromise(loop(Effect.promise(() => cbBreaker.execute(resolveOne))))
        },
        {
          name: "opossum in Effect.promise",
          run: () => Effect.runPromise(loop(Effect.promise(() => opossumBreaker.fire())))
        }
      ]
    )
  )
  rows.push(
    ...await compare(
      "bulkhead: happy path (free permit, 1,000 sequential calls per iteration)",
      {
        callsPerIteration: CALLS,
        ...TIMING,
        versus: ["bare Effect", "TSemaphore.withPermit (floor for TBulkhead)", "cockatiel in Effect.promise"]
      },
      [
        bare,
        {
          name: "Bulwark Bulkhead.protect",
          run: () => Effect.runPromise(loop(Effect.succeed(1).pipe(Bulkhead.protect(bulkhead))))
        },
        {
          name: "TSemaphore.withPermit (floor for TBulkhead)",
          run: () => Effect.runPromise(loop(TSemaphore.withPermit(Effect.succeed(1), semaphore)))
        },
        {
          name: "Bulwark TBulkhead.protect",
          run: () => Effect.runPromise(loop(Effect.succeed(1).pipe(TBulkhead.protect(tBulkhead))))
        },
        floor,
        {
          name: "cockatiel in Effect.promise",
          run: () => Effect.runPromise(loop(Effect.promise(() => cbBulkhead.execute(resolveOne))))
        }
      ]
    )
  )
  rows.push(
    ...await compare(
      "breaker + bulkhead + retry: happy path (1,000 sequential calls per iteration)",
      {
        callsPerIteration: CALLS,
        ...TIMING,
        versus: ["bare Effect", "cockatiel in Effect.promise", "opossum in Effect.promise"]
      },
      [
        bare,
        {
          name: "Bulwark composed",
          run: () =>
            Effect.runPromise(
              loop(
                Effect.succeed(1).pipe(Bulkhead.protect(bulkhead), CircuitBreaker.protect(breaker), Retry.retry(policy))
              )
            )
        },
        floor,
        {
          name: "cockatiel in Effect.promise",
          run: () => Effect.runPromise(loop(Effect.promise(() => cbComposed.execute(resolveOne))))
        },
        {
          name: "opossum in Effect.promise",
          run: () => Effect.runPromise(loop(Effect.promise(() => opossumWithCapacity.fire())))
        }
      ]
    )
  )

  const pipeline = await Effect.runPromise(
    Pipeline.make({
      name: "bench-pipeline",
      circuitBreaker: {},
      bulkhead: { maxConcurrent: 8, maxQueued: 16 },
      retry: {}
    })
  )
  const orderedBreaker = await Effect.runPromise(CircuitBreaker.make({ name: "bench-ordered" }))
  const orderedBulkhead = await Effect.runPromise(
    Bulkhead.make({ name: "bench-ordered", maxConcurrent: 8, maxQueued: 16 })
  )
  const orderedPolicy = Retry.unsafeMake({ name: "bench-ordered" })
  // Both are built once and run many times, as a protected effect whose operation does not change should be.
  const byHand = Effect.succeed(1).pipe(
    Retry.retry(orderedPolicy),
    Bulkhead.protect(orderedBulkhead),
    CircuitBreaker.protect(orderedBreaker)
  )
  const throughPipeline = Effect.succeed(1).pipe(Pipeline.run(pipeline))
  // For reference, the other order (the HTTP client's): the retry around the breaker's region takes its first attempt
  // through that region, so its happy path costs less.
  const perAttempt = Effect.succeed(1).pipe(
    Bulkhead.protect(orderedBulkhead),
    CircuitBreaker.protect(orderedBreaker),
    Retry.retry(orderedPolicy)
  )
  rows.push(
    ...await compare(
      "pipeline order, breaker ▸ bulkhead ▸ retry: happy path (1,000 sequential calls per iteration)",
      { callsPerIteration: CALLS, ...TIMING, versus: ["bare Effect", "Bulwark stacked by hand"] },
      [
        bare,
        { name: "Bulwark stacked by hand", run: () => Effect.runPromise(loop(byHand)) },
        { name: "Bulwark Pipeline.run", run: () => Effect.runPromise(loop(throughPipeline)) },
        { name: "retry ▸ breaker ▸ bulkhead (per attempt), by hand", run: () => Effect.runPromise(loop(perAttempt)) }
      ]
    )
  )
  await Effect.runPromise(Scope.close(scope, Exit.void))
  return rows
}
