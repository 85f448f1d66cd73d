/**
 * Concurrency tests run against both breakers: the synchronous one
 * (`CircuitBreaker.make`) and the STM one (`TCircuitBreaker.make`).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as TCircuitBreaker from "./TCircuitBreaker.js"

let breakers = 0
const uniqueName = (label: string) => `cb-concurrency.${label}.${++breakers}`

interface Variant {
  readonly name: string
  readonly make: (
    options: CircuitBreaker.Options
  ) => Effect.Effect<CircuitBreaker.CircuitBreaker, Failure.InvalidOptionsError, Scope.Scope>
}

const VARIANTS: ReadonlyArray<Variant> = [
  { name: "CircuitBreaker", make: CircuitBreaker.make },
  { name: "TCircuitBreaker", make: TCircuitBreaker.make }
]

const transient = new Failure.TransientError({ reason: "Transport", message: "connection reset" })

const transitions = (name: string, from: string, to: string) =>
  Effect.map(
    Metric.value(
      Metric.tagged(
        Metric.tagged(Metric.tagged(Metrics.circuitBreakerTransitions, "breaker", name), "from", from),
        "to",
        to
      )
    ),
    (counter) => counter.count
  )

/** A breaker that one failure opens for a second, then half-open with `permits` probes. */
const halfOpen = (variant: Variant, name: string, permits: number) =>
  Effect.gen(function*() {
    const breaker = yield* variant.make({
      name,
      trip: CircuitBreaker.consecutiveFailures(1),
      openDuration: "1 second",
      halfOpen: { permits, closeAfter: permits }
    })
    yield* Effect.either(CircuitBreaker.protect(Effect.fail(transient), breaker))
    yield* TestClock.adjust("1 second")
    assert.strictEqual(yield* breaker.state, "HalfOpen")
    return breaker
  })

describe.each(VARIANTS)("$name under concurrency", (variant) => {
  it.scoped("1,000 concurrent calls on a half-open breaker: exactly the permitted probes run, the rest are rejected", () =>
    Effect.gen(function*() {
      const permits = 3
      const breaker = yield* halfOpen(variant, uniqueName("stampede"), permits)
      const started = yield* Ref.make(0)
      const rejected = yield* Ref.make(0)
      const gate = yield* Deferred.make<void>()
      const probe = Effect.zipRight(Ref.update(started, (n) => n + 1), Deferred.await(gate))
      const call = CircuitBreaker.protect(probe, breaker).pipe(
        Effect.catchTag("CircuitOpenError", (error) =>
          Effect.zipRight(
            Ref.update(rejected, (n) => n + 1),
            Effect.sync(() => assert.strictEqual(error.state, "HalfOpen"))
          ))
      )
      const all = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 1000 }), () => call, { concurrency: "unbounded", discard: true })
      )
      while ((yield* Ref.get(started)) + (yield* Ref.get(rejected)) < 1000) {
        yield* Effect.yieldNow()
      }
      assert.strictEqual(yield* Ref.get(started), permits)
      assert.strictEqual(yield* Ref.get(rejected), 1000 - permits)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(all)
      assert.strictEqual(yield* breaker.state, "Closed")
    }))

  it.scoped("1,000 concurrent failures open the breaker exactly once", () =>
    Effect.gen(function*() {
      const name = uniqueName("trip-once")
      const breaker = yield* variant.make({
        name,
        trip: CircuitBreaker.consecutiveFailures(5),
        openDuration: "1 minute"
      })
      const gate = yield* Deferred.make<void>()
      const call = Effect.either(
        CircuitBreaker.protect(Effect.zipRight(Deferred.await(gate), Effect.fail(transient)), breaker)
      )
      const all = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 1000 }), () => call, { concurrency: "unbounded", discard: true })
      )
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(all)
      assert.strictEqual(yield* breaker.state, "Open")
      assert.strictEqual(yield* transitions(name, "closed", "open"), 1)
    }))

  it.scoped.prop(
    "probes interrupted at random never leak a permit: once every call has ended, the breaker still admits its probes",
    [FastCheck.array(FastCheck.boolean(), { minLength: 50, maxLength: 300 })],
    ([interrupts]) =>
      Effect.gen(function*() {
        const permits = 4
        const breaker = yield* halfOpen(variant, uniqueName("interrupted-probes"), permits)
        const fibers = yield* Effect.forEach(interrupts, () =>
          Effect.fork(Effect.either(CircuitBreaker.protect(Effect.never, breaker))))
        yield* Effect.yieldNow()
        // Interrupt the marked calls, in any order, while the others wait on.
        yield* Effect.forEach(fibers, (fiber, i) =>
          interrupts[i] === true ? Fiber.interrupt(fiber) : Effect.void, {
          concurrency: "unbounded",
          discard: true
        })
        // Then the rest: every probe slot must come back, so the breaker admits `permits` new probes.
        yield* Effect.forEach(fibers, Fiber.interrupt, { concurrency: "unbounded", discard: true })
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        const probes = yield* Effect.forEach(Array.from({ length: permits + 1 }), () =>
          Effect.fork(CircuitBreaker.protect(Effect.never, breaker)))
        yield* Effect.yieldNow()
        const polled = yield* Effect.forEach(probes, Fiber.poll)
        const running = polled.filter((poll) =>
          poll._tag === "None"
        ).length
        yield* Effect.forEach(probes, Fiber.interrupt, { discard: true })
        assert.strictEqual(running, permits)
      }),
    { fastCheck: { numRuns: 20 } }
  )
})
