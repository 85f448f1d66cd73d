/**
 * The conformance suite every rate-limiter store must pass, run by
 * `memory.test.ts` against the in-memory store and by `redis.test.ts` against
 * a real Redis (with `clock: "local"`, so that the same `TestClock` drives
 * both).
 *
 * Besides behaviour through the public API, it checks decision by decision
 * that the store decides exactly as the pure algorithms do: for Redis, that
 * the Lua scripts compute what `internal/algorithms.ts` computes.
 */
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Algorithms from "../../packages/resilience/src/rate-limiter/internal/algorithms.js"
import { validate, validateAlgorithm } from "../../packages/resilience/src/rate-limiter/internal/config.js"

let counter = 0
const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++counter}`

const algorithms: ReadonlyArray<
  readonly [string, (limit: number, window: Duration.DurationInput) => RateLimiter.Algorithm]
> = [
  ["token bucket", (limit, window) => RateLimiter.tokenBucket({ limit, window })],
  ["fixed window", (limit, window) => RateLimiter.fixedWindow({ limit, window })],
  ["sliding window log", (limit, window) => RateLimiter.slidingWindowLog({ limit, window })],
  ["sliding window counter", (limit, window) => RateLimiter.slidingWindowCounter({ limit, window })],
  ["GCRA", (limit, window) => RateLimiter.gcra({ limit, window })]
]

/** The pure decision and refund functions for an algorithm, keeping its state to themselves. */
const pureDecider = (algorithm: RateLimiter.Algorithm) => {
  const spec = getOrThrow(validateAlgorithm(algorithm))
  const model = <S>(
    decide: (s: S | undefined, now: number, cost: number, maxDelay: number) => readonly [
      Algorithms.Decision,
      S | undefined
    ],
    refund: (s: S | undefined, now: number, cost: number, reservation: Algorithms.Reservation) => S | undefined
  ) => {
    let state: S | undefined = undefined
    return {
      decide: (now: number, cost: number, maxDelay: number): Algorithms.Decision => {
        const [decision, next] = decide(state, now, cost, maxDelay)
        state = next
        return decision
      },
      refund: (now: number, cost: number, reservation: Algorithms.Reservation): boolean => {
        const next = refund(state, now, cost, reservation)
        const changed = next !== state
        state = next
        return changed
      }
    }
  }
  switch (spec._tag) {
    case "TokenBucket":
      return model<Algorithms.TokenBucketState>(
        (s, n, c, m) => Algorithms.tokenBucket(s, n, c, spec, m),
        (s, n, c, r) => Algorithms.refundTokenBucket(s, n, c, spec, r)
      )
    case "FixedWindow":
      return model<Algorithms.FixedWindowState>(
        (s, n, c, m) => Algorithms.fixedWindow(s, n, c, spec, m),
        (s, n, c, r) => Algorithms.refundFixedWindow(s, n, c, spec, r)
      )
    case "SlidingWindowLog":
      return model<Algorithms.LogState>(
        (s, n, c, m) => Algorithms.slidingWindowLog(s, n, c, spec, m),
        (s, n, c, r) => Algorithms.refundSlidingWindowLog(s, n, c, spec, r)
      )
    case "SlidingWindowCounter":
      return model<Algorithms.CounterState>(
        (s, n, c, m) => Algorithms.slidingWindowCounter(s, n, c, spec, m),
        (s, n, c, r) => Algorithms.refundSlidingWindowCounter(s, n, c, spec, r)
      )
    case "LeakyBucket":
      return model<Algorithms.TatState>(
        (s, n, c, m) => Algorithms.leakyBucket(s, n, c, spec, m),
        (s, n, c, r) => Algorithms.refundTat(s, n, c, spec, r)
      )
    case "Gcra":
      return model<Algorithms.TatState>(
        (s, n, c, m) => Algorithms.gcra(s, n, c, spec, m),
        (s, n, c, r) => Algorithms.refundTat(s, n, c, spec, r)
      )
  }
}

const getOrThrow = <A, E>(either: Either.Either<A, E>): A =>
  Either.getOrThrowWith(either, (error) => new Error(`invalid options in the contract suite: ${String(error)}`))

const differentialArb = FastCheck.record({
  tag: FastCheck.constantFrom<RateLimiter.Algorithm["_tag"]>(
    "TokenBucket",
    "FixedWindow",
    "SlidingWindowLog",
    "SlidingWindowCounter",
    "LeakyBucket",
    "Gcra"
  ),
  limit: FastCheck.integer({ min: 1, max: 6 }),
  window: FastCheck.integer({ min: 1, max: 2_000 }),
  extra: FastCheck.integer({ min: 1, max: 6 }),
  // Often long enough for several waiters in a row, so that refunds meet later reservations.
  maxWait: FastCheck.oneof(
    FastCheck.constant(0),
    FastCheck.integer({ min: 1, max: 3_000 }),
    FastCheck.integer({ min: 3_000, max: 12_000 })
  ),
  start: FastCheck.integer({ min: 0, max: 10_000_000 }),
  steps: FastCheck.array(
    FastCheck.record({
      gap: FastCheck.oneof(
        FastCheck.constant(0),
        FastCheck.integer({ min: 0, max: 300 }),
        FastCheck.integer({ min: 0, max: 2_500 })
      ),
      cost: FastCheck.integer({ min: 1, max: 6 }),
      key: FastCheck.constantFrom<"a" | "b">("a", "b"),
      // Before deciding, give back the n-th latest reservation not given back yet (as an interrupted waiter does).
      refund: FastCheck.option(FastCheck.integer({ min: 0, max: 2 }), { nil: undefined, freq: 2 })
    }),
    { minLength: 1, maxLength: 25 }
  )
})

const algorithmOf = (tag: RateLimiter.Algorithm["_tag"], limit: number, window: number, extra: number) => {
  switch (tag) {
    case "TokenBucket":
      return RateLimiter.tokenBucket({ limit, window, burst: extra })
    case "Gcra":
      return RateLimiter.gcra({ limit, window, burst: extra })
    case "LeakyBucket":
      return RateLimiter.leakyBucket({ limit, window, capacity: extra })
    case "FixedWindow":
      return RateLimiter.fixedWindow({ limit, window })
    case "SlidingWindowLog":
      return RateLimiter.slidingWindowLog({ limit, window })
    case "SlidingWindowCounter":
      return RateLimiter.slidingWindowCounter({ limit, window })
  }
}

const manualClock = (time: { readonly now: number }): Clock.Clock => ({
  [Clock.ClockTypeId]: Clock.ClockTypeId,
  unsafeCurrentTimeMillis: () => time.now,
  unsafeCurrentTimeNanos: () => BigInt(time.now) * 1_000_000n,
  currentTimeMillis: Effect.sync(() => time.now),
  currentTimeNanos: Effect.sync(() => BigInt(time.now) * 1_000_000n),
  sleep: () => Effect.void
})

/**
 * The wake-up times of the fibers sleeping on the TestClock, once there are
 * `count` of them. A store may answer over the network, so this waits a
 * little real time between looks (bounded).
 */
const sleepingUntil = (count: number) =>
  Effect.gen(function*() {
    for (let attempt = 0; attempt < 2_000; attempt++) {
      const sleeps = Chunk.toReadonlyArray(yield* TestClock.sleeps())
      if (sleeps.length === count) return sleeps
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 1)))
    }
    return assert.fail(`expected ${count} sleeping fibers`)
  })

/**
 * Registers the conformance suite for a store. `layer` is built afresh for
 * every test; the store must decide with the Effect `Clock`.
 */
export const storeContract = <E>(
  backend: string,
  layer: () => Layer.Layer<RateLimiter.RateLimiterStore, E>,
  options: { readonly propertyRuns?: number } = {}
) =>
  describe(`RateLimiter store contract: ${backend}`, () => {
    const withStore = <A, E2>(effect: Effect.Effect<A, E2, RateLimiter.RateLimiterStore>) =>
      Effect.provide(effect, layer())

    for (const [label, algorithm] of algorithms) {
      it.effect(`${label}: admits up to the limit, then rejects with what the HTTP layer needs`, () =>
        withStore(Effect.gen(function*() {
          const limiter = yield* RateLimiter.make({ name: uniqueName("contract"), algorithm: algorithm(3, "1 minute") })
          const decisions = yield* Effect.all([limiter.consume("k"), limiter.consume("k"), limiter.consume("k")])
          assert.deepStrictEqual(decisions.map((d) => d.remaining), [2, 1, 0])
          assert.isTrue(decisions.every((d) => d.outcome === "allowed" && d.limit === 3 && !d.degraded))
          const error = yield* Effect.flip(limiter.consume("k"))
          assert.strictEqual(error._tag, "RateLimitedError")
          if (error._tag !== "RateLimitedError") return
          assert.strictEqual(error.reason, "LimitExceeded")
          assert.strictEqual(error.limit, 3)
          assert.strictEqual(error.remaining, 0)
          assert.isTrue(Duration.greaterThan(error.retryAfter, Duration.zero))
          // The counter may need most of two windows: the previous one still weighs on the current one.
          assert.isTrue(Duration.lessThanOrEqualTo(error.retryAfter, error.reset))
          assert.isTrue(Duration.lessThanOrEqualTo(error.reset, Duration.minutes(3)))
          assert.notInclude(error.message, "\"k\"")
        })))

      it.effect(`${label}: frees units as time passes, exactly when retryAfter said`, () =>
        withStore(Effect.gen(function*() {
          yield* TestClock.setTime(60_000 * 7)
          const limiter = yield* RateLimiter.make({
            name: uniqueName("contract"),
            algorithm: algorithm(2, "10 seconds")
          })
          yield* limiter.consume("k", 2)
          const error = yield* Effect.flip(limiter.consume("k"))
          if (error._tag !== "RateLimitedError") return assert.fail("expected a rejection")
          const wait = Duration.toMillis(error.retryAfter)
          yield* TestClock.adjust(wait - 1)
          assert.strictEqual((yield* limiter.tryConsume("k")).outcome, "rejected")
          yield* TestClock.adjust(1)
          assert.strictEqual((yield* limiter.tryConsume("k")).outcome, "allowed")
        })))
    }

    it.effect("keys are limited independently", () =>
      withStore(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("keys"),
          algorithm: RateLimiter.fixedWindow({ limit: 1, window: "1 minute" })
        })
        yield* limiter.consume("alice")
        yield* limiter.consume("bob")
        assert.strictEqual((yield* limiter.tryConsume("alice")).outcome, "rejected")
        assert.strictEqual((yield* limiter.tryConsume("carol")).outcome, "allowed")
      })))

    it.effect("a cost takes several units at once, all or nothing", () =>
      withStore(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("cost"),
          algorithm: RateLimiter.slidingWindowLog({ limit: 10, window: "1 minute" })
        })
        assert.strictEqual((yield* limiter.consume("k", 7)).remaining, 3)
        assert.strictEqual((yield* limiter.tryConsume("k", 4)).outcome, "rejected")
        assert.strictEqual((yield* limiter.consume("k", 3)).remaining, 0)
      })))

    it.effect("limiters share state by name and algorithm, and only then", () =>
      withStore(Effect.gen(function*() {
        const name = uniqueName("shared")
        const algorithm = RateLimiter.fixedWindow({ limit: 2, window: "1 minute" })
        const first = yield* RateLimiter.make({ name, algorithm })
        const second = yield* RateLimiter.make({ name, algorithm })
        const other = yield* RateLimiter.make({ name: uniqueName("shared"), algorithm })
        const resized = yield* RateLimiter.make({
          name,
          algorithm: RateLimiter.fixedWindow({ limit: 3, window: "1 minute" })
        })
        yield* first.consume("k", 2)
        assert.strictEqual((yield* second.tryConsume("k")).outcome, "rejected")
        assert.strictEqual((yield* other.tryConsume("k")).outcome, "allowed")
        assert.strictEqual((yield* resized.tryConsume("k")).outcome, "allowed")
      })))

    it.effect("wait mode delays a call to its reserved slot, first come first served", () =>
      withStore(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("wait"),
          algorithm: RateLimiter.tokenBucket({ limit: 1, window: "1 second" }),
          onExceeded: "wait",
          maxWait: "2 seconds"
        })
        yield* limiter.consume("k")
        const second = yield* Effect.fork(limiter.consume("k"))
        yield* Effect.yieldNow()
        const third = yield* Effect.fork(limiter.consume("k"))
        yield* Effect.yieldNow()
        const fourth = yield* Effect.exit(limiter.consume("k"))
        assert.isTrue(Exit.isFailure(fourth))
        yield* TestClock.adjust("999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
        yield* TestClock.adjust("1 milli")
        const done = yield* Fiber.join(second)
        assert.strictEqual(done.outcome, "delayed")
        assert.strictEqual(Duration.toMillis(done.delay), 1_000)
        yield* TestClock.adjust("1 second")
        assert.strictEqual(Duration.toMillis((yield* Fiber.join(third)).delay), 2_000)
      })))

    // After a first call at 0 (the whole quota, one unit for the shaper), one more call waits for a later slot.
    const waiting: ReadonlyArray<readonly [string, RateLimiter.Algorithm, number]> = [
      ["token bucket", RateLimiter.tokenBucket({ limit: 1, window: "1 second" }), 1],
      ["fixed window", RateLimiter.fixedWindow({ limit: 1, window: "1 second" }), 1],
      ["sliding window log", RateLimiter.slidingWindowLog({ limit: 1, window: "1 second" }), 1],
      ["sliding window counter", RateLimiter.slidingWindowCounter({ limit: 4, window: "1 second" }), 4],
      ["GCRA", RateLimiter.gcra({ limit: 1, window: "1 second" }), 1],
      ["leaky bucket", RateLimiter.leakyBucket({ limit: 1, window: "1 second", capacity: 3 }), 1]
    ]
    for (const [label, algorithm, fill] of waiting) {
      it.effect(`${label}: an interrupted waiter's slot goes to the next caller`, () =>
        withStore(Effect.gen(function*() {
          yield* TestClock.setTime(600_000)
          const limiter = yield* RateLimiter.make({
            name: uniqueName("refund"),
            algorithm,
            onExceeded: "wait",
            maxWait: "10 seconds"
          })
          yield* limiter.consume("k", fill)
          const waiter = yield* Effect.fork(limiter.consume("k"))
          const [slot] = yield* sleepingUntil(1)
          if (slot === undefined) return assert.fail("the waiter sleeps towards its slot")
          yield* TestClock.adjust("100 millis")
          yield* Fiber.interrupt(waiter)
          // The next caller gets the interrupted waiter's slot, not the one after it. (The TestClock keeps listing
          // the interrupted sleep until its time passes.)
          const next = yield* Effect.fork(limiter.consume("k"))
          assert.deepStrictEqual(yield* sleepingUntil(2), [slot, slot])
          yield* TestClock.setTime(slot)
          const decision = yield* Fiber.join(next)
          assert.strictEqual(decision.outcome, "delayed")
          assert.strictEqual(Duration.toMillis(decision.delay), slot - 600_100)
          // Given back once: the slot is taken again, and the caller after waits for a later one.
          assert.strictEqual((yield* limiter.tryConsume("k")).outcome, "rejected")
        })))
    }

    it.effect("a waiter that is not interrupted keeps its slot, and a timed-out one gives it back", () =>
      withStore(Effect.gen(function*() {
        yield* TestClock.setTime(600_000)
        const limiter = yield* RateLimiter.make({
          name: uniqueName("refund-timeout"),
          algorithm: RateLimiter.slidingWindowLog({ limit: 1, window: "1 second" }),
          onExceeded: "wait",
          maxWait: "10 seconds"
        })
        yield* limiter.consume("k")
        // Gives up after 300 ms of its 1 s wait: Effect.timeout interrupts it.
        const impatient = yield* Effect.fork(Effect.timeout(limiter.consume("k"), "300 millis"))
        yield* sleepingUntil(2)
        yield* TestClock.adjust("300 millis")
        assert.isTrue(Exit.isFailure(yield* Fiber.await(impatient)))
        const patient = yield* Effect.fork(limiter.consume("k"))
        // the interrupted sleep is still listed until its time passes
        assert.deepStrictEqual(yield* sleepingUntil(2), [601_000, 601_000])
        yield* TestClock.setTime(601_000)
        assert.strictEqual(Duration.toMillis((yield* Fiber.join(patient)).delay), 700)
        assert.strictEqual((yield* limiter.tryConsume("k")).outcome, "rejected")
      })))

    it.effect("waiters interrupted together give back exactly their slots, each once", () =>
      withStore(Effect.gen(function*() {
        yield* TestClock.setTime(600_000)
        const limiter = yield* RateLimiter.make({
          name: uniqueName("refund-many"),
          algorithm: RateLimiter.slidingWindowLog({ limit: 3, window: "1 second" }),
          onExceeded: "wait",
          maxWait: "10 seconds"
        })
        yield* limiter.consume("k", 3)
        const waiters = yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.fork(limiter.consume("k")))
        assert.deepStrictEqual(yield* sleepingUntil(3), [601_000, 601_000, 601_000])
        yield* Fiber.interruptAll(waiters)
        // Interrupting again finds the fibers done: nothing more is given back.
        yield* Fiber.interruptAll(waiters)
        const next = yield* Effect.forEach(Array.from({ length: 4 }), () => Effect.fork(limiter.consume("k")))
        const sleeps = yield* sleepingUntil(7)
        // three callers take the three slots at 1 s, the fourth waits for the next free one at 2 s
        assert.deepStrictEqual([...sleeps.slice(0, 4)].sort((a, b) => a - b), [601_000, 601_000, 601_000, 602_000])
        yield* TestClock.setTime(602_000)
        const delays = (yield* Fiber.joinAll(next)).map((d) => Duration.toMillis(d.delay))
        assert.deepStrictEqual(delays, [1_000, 1_000, 1_000, 2_000])
      })))

    it.effect("many concurrent calls never take more than the limit", () =>
      withStore(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("race"),
          algorithm: RateLimiter.slidingWindowCounter({ limit: 25, window: "1 minute" })
        })
        const decisions = yield* Effect.all(
          Array.from({ length: 200 }, () => limiter.tryConsume("hot")),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(decisions.filter((d) => d.outcome === "allowed").length, 25)
      })))

    it.effect.prop(
      "decides and refunds exactly as the pure algorithms, step by step",
      [differentialArb],
      ([scenario]) =>
        withStore(Effect.gen(function*() {
          const algorithm = algorithmOf(scenario.tag, scenario.limit, scenario.window, scenario.extra)
          const config = getOrThrow(validate({ name: uniqueName("diff"), algorithm, maxWait: scenario.maxWait }))
          const store = yield* RateLimiter.RateLimiterStore
          const { decide, refund } = yield* store.bind(config)
          const models = { a: pureDecider(algorithm), b: pureDecider(algorithm) }
          const reserved: Array<
            { readonly key: "a" | "b"; readonly cost: number; readonly at: Algorithms.Reservation }
          > = []
          // A hand-moved clock: TestClock.setTime yields to the timer on every move, too slow for hundreds of steps.
          const time = { now: scenario.start }
          const clock = manualClock(time)
          for (const step of scenario.steps) {
            time.now += step.gap
            const taken = step.refund === undefined || step.refund >= reserved.length
              ? []
              : reserved.splice(reserved.length - 1 - step.refund, 1)
            for (const r of taken) {
              const expected = models[r.key].refund(time.now, r.cost, r.at)
              const actual = yield* Effect.withClock(refund(r.key, r.cost, r.at), clock)
              // A store may have dropped a key past its reset, where a refund changes no decision: it then
              // reports nothing given back, while the model still changes its (equivalent) state.
              if (actual) assert.isTrue(expected, `${scenario.tag} refund at ${time.now}`)
            }
            const cost = Math.min(step.cost, config.quota)
            const expected = models[step.key].decide(time.now, cost, scenario.maxWait)
            const actual = yield* Effect.withClock(decide(step.key, cost, scenario.maxWait), clock)
            assert.deepStrictEqual(actual, expected, `${scenario.tag} at ${time.now}`)
            if (actual.reservation !== undefined) reserved.push({ key: step.key, cost, at: actual.reservation })
          }
        })),
      { fastCheck: { numRuns: options.propertyRuns ?? 100 } }
    )
  })
