import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import { pipe } from "effect/Function"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Retry from "../retry/Retry.js"
import * as RateLimiter from "./RateLimiter.js"

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

let counter = 0
const uniqueName = (prefix: string) => `${prefix}-${++counter}`

const withMemory = <A, E>(effect: Effect.Effect<A, E, RateLimiter.RateLimiterStore>) =>
  Effect.provide(effect, RateLimiter.layerMemory())

const decisions = (limiter: string, decision: "allowed" | "delayed" | "rejected") =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(Metrics.rateLimiterDecisions, "limiter", limiter), "decision", decision)),
    (state) => state.count
  )

/** Moves the TestClock to each pending wake-up in turn until nothing sleeps (no real time passes). */
const drain = Effect.gen(function*() {
  for (let step = 0; step < 10_000; step++) {
    yield* Effect.yieldNow()
    const sleeps = yield* TestClock.sleeps()
    if (!Chunk.isNonEmpty(sleeps)) return
    yield* TestClock.setTime(Math.min(...sleeps))
  }
})

// ---------------------------------------------------------------------------
// behaviour
// ---------------------------------------------------------------------------

describe("RateLimiter", () => {
  it.effect("rejects with a typed, transient rejection carrying retryAfter, limit, remaining and reset", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: "login",
        algorithm: RateLimiter.fixedWindow({ limit: 2, window: "1 minute" })
      })
      yield* TestClock.setTime(15_000)
      yield* limiter.consume("alice@example.com", 2)
      const error = yield* Effect.flip(limiter.consume("alice@example.com"))
      assert.isTrue(RateLimiter.isRateLimitedError(error))
      if (!RateLimiter.isRateLimitedError(error)) return
      assert.isTrue(Failure.isTransient(error))
      assert.isTrue(Failure.isRejection(error))
      assert.isFalse(Failure.isTerminal(error))
      assert.deepStrictEqual(Failure.retryAfterOf(error), Option.some(Duration.seconds(45)))
      assert.strictEqual(error.limiter, "login")
      assert.strictEqual(error.limit, 2)
      assert.strictEqual(error.remaining, 0)
      assert.strictEqual(Duration.toMillis(error.reset), 45_000)
      assert.strictEqual(error.message, `Rate limiter "login" refused the call: limit 2 reached; retry after 45s`)
      assert.notInclude(JSON.stringify(error), "alice")
    })))

  it.effect("reports limit, remaining, reset and the policy on every decision", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("report"),
        algorithm: RateLimiter.tokenBucket({ limit: 10, window: "10 seconds", burst: 4 })
      })
      const decision = yield* limiter.consume("k", 3)
      assert.strictEqual(decision.outcome, "allowed")
      assert.strictEqual(decision.limit, 4)
      assert.strictEqual(decision.remaining, 1)
      assert.strictEqual(Duration.toMillis(decision.reset), 3_000)
      assert.deepStrictEqual(decision.retryAfter, Duration.zero)
      // The sustained policy is the algorithm's limit per window; the burst is the scale of limit and remaining.
      assert.strictEqual(decision.policy.quota, 10)
      assert.strictEqual(Duration.toMillis(decision.policy.window), 10_000)
      assert.strictEqual(decision.policy.burst, 4)
      const refused = yield* limiter.tryConsume("k", 2)
      assert.strictEqual(refused.outcome, "rejected")
      assert.strictEqual(Duration.toMillis(refused.retryAfter), 1_000)
    })))

  it.effect("counts decisions in bulwark_rate_limiter_decisions_total by limiter and decision", () =>
    withMemory(Effect.gen(function*() {
      const name = uniqueName("metrics")
      const limiter = yield* RateLimiter.make({
        name,
        algorithm: RateLimiter.gcra({ limit: 1, window: "1 second" }),
        onExceeded: "wait",
        maxWait: "1 second"
      })
      yield* limiter.consume("k")
      const waiting = yield* Effect.fork(limiter.consume("k"))
      yield* Effect.yieldNow()
      yield* Effect.exit(limiter.consume("k"))
      yield* limiter.tryConsume("other")
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(waiting)
      assert.strictEqual(yield* decisions(name, "allowed"), 2)
      assert.strictEqual(yield* decisions(name, "delayed"), 1)
      assert.strictEqual(yield* decisions(name, "rejected"), 1)
    })))

  it.effect("waits in wait mode up to maxWait, then rejects", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("wait"),
        algorithm: RateLimiter.fixedWindow({ limit: 1, window: "1 second" }),
        onExceeded: "wait",
        maxWait: "1500 millis"
      })
      yield* limiter.consume("k")
      const second = yield* Effect.fork(limiter.consume("k"))
      yield* Effect.yieldNow()
      // the next free slot is at 2 s, beyond the 1.5 s bound
      const third = yield* Effect.flip(limiter.consume("k"))
      assert.strictEqual(third._tag, "RateLimitedError")
      if (third._tag === "RateLimitedError") assert.strictEqual(Duration.toMillis(third.retryAfter), 2_000)
      yield* TestClock.adjust("1 second")
      const waited = yield* Fiber.join(second)
      assert.strictEqual(waited.outcome, "delayed")
      assert.strictEqual(yield* Clock.currentTimeMillis, 1_000)
    })))

  it.effect("admit waits for a slot whatever the mode, and fails for backpressure beyond its bound", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("admit"),
        algorithm: RateLimiter.leakyBucket({ limit: 2, window: "1 second", capacity: 10 })
      })
      const admitted = yield* Ref.make<ReadonlyArray<number>>([])
      const enqueue = RateLimiter.admit(limiter, "tenant", 1, "1 second").pipe(
        Effect.zipRight(Clock.currentTimeMillis),
        Effect.flatMap((now) => Ref.update(admitted, (xs) => [...xs, now]))
      )
      const fibers = yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.fork(enqueue))
      yield* Effect.yieldNow()
      const overflow = yield* Effect.flip(enqueue)
      assert.strictEqual(overflow._tag, "RateLimitedError")
      yield* drain
      yield* Fiber.joinAll(fibers)
      // the shaper releases one call every 500 ms
      assert.deepStrictEqual(yield* Ref.get(admitted), [0, 500, 1_000])
    })))

  it.effect("limit runs the effect only after taking its units", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("limit"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 1, window: "1 minute" })
      })
      const runs = yield* Ref.make(0)
      const work = Ref.update(runs, (n) => n + 1)
      yield* work.pipe(RateLimiter.limit(limiter, { key: "user-1" }))
      const exit = yield* Effect.exit(work.pipe(RateLimiter.limit(limiter, { key: "user-1" })))
      yield* RateLimiter.limit(work, limiter, { key: "user-2" })
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(yield* Ref.get(runs), 2)
    })))

  it.effect("Retry.retry waits at least the rejection's retryAfter", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("retry"),
        algorithm: RateLimiter.fixedWindow({ limit: 1, window: "3 seconds" })
      })
      const policy = Retry.unsafeMake({
        name: uniqueName("retry"),
        backoff: Retry.constant("10 millis"),
        jitter: "none"
      })
      yield* limiter.consume("k")
      const fiber = yield* Effect.fork(Retry.retry(limiter.consume("k"), policy))
      yield* drain
      const decision = yield* Fiber.join(fiber)
      assert.strictEqual(decision.outcome, "allowed")
      assert.strictEqual(yield* Clock.currentTimeMillis, 3_000)
    })))

  it.effect("the data-first and data-last forms agree", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("dual"),
        algorithm: RateLimiter.fixedWindow({ limit: 3, window: "1 minute" })
      })
      assert.strictEqual((yield* RateLimiter.consume(limiter, "k")).remaining, 2)
      assert.strictEqual((yield* pipe(limiter, RateLimiter.consume("k", 2))).remaining, 0)
      assert.strictEqual((yield* RateLimiter.tryConsume(limiter, "k")).outcome, "rejected")
      assert.strictEqual((yield* pipe(limiter, RateLimiter.tryConsume("j"))).outcome, "allowed")
    })))
})

// ---------------------------------------------------------------------------
// bad input
// ---------------------------------------------------------------------------

describe("RateLimiter input validation", () => {
  const rejects = (options: Partial<RateLimiter.RateLimiter.Options>, option: string) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(
        RateLimiter.make({
          name: "valid",
          algorithm: RateLimiter.fixedWindow({ limit: 1, window: "1 second" }),
          ...options
        })
      )
      assert.strictEqual(error._tag, "InvalidOptionsError")
      assert.strictEqual(error.option, option)
      assert.isTrue(Failure.isTerminal(error))
    })

  it.effect("refuses bad limits, windows, bounds and names at construction", () =>
    withMemory(Effect.gen(function*() {
      const window = "1 second"
      yield* rejects({ algorithm: RateLimiter.tokenBucket({ limit: 0, window }) }, "algorithm.limit")
      yield* rejects({ algorithm: RateLimiter.fixedWindow({ limit: -5, window }) }, "algorithm.limit")
      yield* rejects({ algorithm: RateLimiter.gcra({ limit: Number.NaN, window }) }, "algorithm.limit")
      yield* rejects({ algorithm: RateLimiter.slidingWindowCounter({ limit: 2.5, window }) }, "algorithm.limit")
      yield* rejects({ algorithm: RateLimiter.slidingWindowLog({ limit: 1_000_000, window }) }, "algorithm.limit")
      yield* rejects({ algorithm: RateLimiter.fixedWindow({ limit: 1, window: 0 }) }, "algorithm.window")
      yield* rejects({ algorithm: RateLimiter.fixedWindow({ limit: 1, window: -1 }) }, "algorithm.window")
      yield* rejects({ algorithm: RateLimiter.fixedWindow({ limit: 1, window: Number.NaN }) }, "algorithm.window")
      yield* rejects({ algorithm: RateLimiter.fixedWindow({ limit: 1, window: "0.5 millis" }) }, "algorithm.window")
      yield* rejects({ algorithm: RateLimiter.fixedWindow({ limit: 1, window: Infinity }) }, "algorithm.window")
      yield* rejects({ algorithm: RateLimiter.tokenBucket({ limit: 1, window, burst: 0 }) }, "algorithm.burst")
      yield* rejects({ algorithm: RateLimiter.leakyBucket({ limit: 1, window, capacity: -1 }) }, "algorithm.capacity")
      yield* rejects(
        { algorithm: RateLimiter.tokenBucket({ limit: 1e9, window: "100 days" }) },
        "algorithm.limit"
      )
      yield* rejects({ name: "" }, "name")
      yield* rejects({ name: "has spaces" }, "name")
      yield* rejects({ maxWait: -1 }, "maxWait")
      yield* rejects({ maxWait: "2 hours" }, "maxWait")
      yield* rejects({ maxKeyLength: 0 }, "maxKeyLength")
      const store = yield* Effect.flip(Effect.provide(
        RateLimiter.make({ name: "x", algorithm: RateLimiter.fixedWindow({ limit: 1, window }) }),
        RateLimiter.layerMemory({ maxKeys: 0 })
      ))
      assert.strictEqual(store.option, "maxKeys")
    })))

  it.effect("refuses empty, huge or non-string keys and bad costs per call, without echoing the key", () =>
    withMemory(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: "input",
        algorithm: RateLimiter.tokenBucket({ limit: 5, window: "1 second" }),
        maxKeyLength: 64
      })
      const huge = "x".repeat(65)
      const errors = yield* Effect.all([
        Effect.flip(limiter.consume("")),
        Effect.flip(limiter.consume(huge)),
        Effect.flip(limiter.consume("k", 0)),
        Effect.flip(limiter.consume("k", 6)),
        Effect.flip(limiter.consume("k", 1.5)),
        Effect.flip(limiter.consume("k", Number.NaN)),
        Effect.flip(limiter.tryConsume("", 1)),
        Effect.flip(limiter.admit("k", 1, -1))
      ])
      assert.deepStrictEqual(
        errors.map((e) => (e._tag === "InvalidOptionsError" ? e.option : e._tag)),
        ["key", "key", "cost", "cost", "cost", "cost", "key", "maxWait"]
      )
      assert.notInclude(errors[1]?.message ?? "", huge)
      assert.include(errors[1]?.message ?? "", "at most 64 characters")
      assert.include(errors[3]?.message ?? "", "from 1 to 5")
      // nothing was taken by the refused calls
      assert.strictEqual((yield* limiter.consume("k", 5)).remaining, 0)
    })))
})

// ---------------------------------------------------------------------------
// properties through the public API, on the TestClock
// ---------------------------------------------------------------------------

const arrivals = (maxGap: number) =>
  FastCheck.array(
    FastCheck.record({
      gap: FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 0, max: maxGap })),
      cost: FastCheck.integer({ min: 1, max: 3 })
    }),
    { minLength: 1, maxLength: 20 }
  )

/** Runs calls at the given gaps (in wait mode, forked: each records the time it was let through). */
const drive = (
  limiter: RateLimiter.RateLimiter,
  steps: ReadonlyArray<{ readonly gap: number; readonly cost: number }>
) =>
  Effect.gen(function*() {
    const admitted = yield* Ref.make<ReadonlyArray<{ readonly at: number; readonly cost: number }>>([])
    const fibers: Array<Fiber.RuntimeFiber<void>> = []
    for (const step of steps) {
      if (step.gap > 0) yield* TestClock.adjust(step.gap)
      const fiber = yield* Effect.fork(
        limiter.consume("k", step.cost).pipe(
          Effect.zipRight(Clock.currentTimeMillis),
          Effect.flatMap((at) => Ref.update(admitted, (xs) => [...xs, { at, cost: step.cost }])),
          Effect.ignore
        )
      )
      fibers.push(fiber)
      yield* Effect.yieldNow()
    }
    yield* drain
    yield* Fiber.joinAll(fibers)
    return yield* Ref.get(admitted)
  })

const unitsIn = (admitted: ReadonlyArray<{ at: number; cost: number }>, from: number, to: number) =>
  admitted.reduce((sum, a) => (a.at > from && a.at <= to ? sum + a.cost : sum), 0)

describe("RateLimiter properties (TestClock)", () => {
  it.effect.prop(
    "the sliding log never admits more than the limit in any window",
    { steps: arrivals(1_500), limit: FastCheck.integer({ min: 1, max: 5 }), wait: FastCheck.boolean() },
    ({ limit, steps, wait }) =>
      withMemory(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("prop-log"),
          algorithm: RateLimiter.slidingWindowLog({ limit: Math.max(limit, 3), window: "1 second" }),
          onExceeded: wait ? "wait" : "reject",
          maxWait: "2 seconds"
        })
        const admitted = yield* drive(limiter, steps)
        for (const a of admitted) assert.isAtMost(unitsIn(admitted, a.at - 1_000, a.at), Math.max(limit, 3))
      })),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "the token bucket never admits more than burst + rate·t over any interval t",
    {
      steps: arrivals(400),
      limit: FastCheck.integer({ min: 1, max: 7 }),
      burst: FastCheck.integer({ min: 3, max: 6 }),
      wait: FastCheck.boolean()
    },
    ({ burst, limit, steps, wait }) =>
      withMemory(Effect.gen(function*() {
        const window = 1_000
        const limiter = yield* RateLimiter.make({
          name: uniqueName("prop-bucket"),
          algorithm: RateLimiter.tokenBucket({ limit, window, burst }),
          onExceeded: wait ? "wait" : "reject",
          maxWait: "3 seconds"
        })
        const admitted = [...(yield* drive(limiter, steps))].sort((a, b) => a.at - b.at)
        admitted.forEach((from, i) => {
          let units = 0
          for (const to of admitted.slice(i)) {
            units += to.cost
            assert.isAtMost(units * window, burst * window + limit * (to.at - from.at))
          }
        })
      })),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "the fixed window's boundary burst is exactly twice the limit and no more",
    { limit: FastCheck.integer({ min: 1, max: 6 }), window: FastCheck.integer({ min: 2, max: 5_000 }) },
    ({ limit, window }) =>
      withMemory(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("prop-boundary"),
          algorithm: RateLimiter.fixedWindow({ limit, window })
        })
        const burst = Effect.gen(function*() {
          let admitted = 0
          for (let i = 0; i <= limit; i++) {
            if ((yield* limiter.tryConsume("k")).outcome === "allowed") admitted++
          }
          return admitted
        })
        // the last millisecond of one window, then the first of the next
        yield* TestClock.setTime(7 * window - 1)
        const before = yield* burst
        yield* TestClock.adjust(1)
        const after = yield* burst
        assert.strictEqual(before, limit)
        assert.strictEqual(after, limit)
        // … and nothing more until the window after
        yield* TestClock.adjust(window - 1)
        assert.strictEqual((yield* limiter.tryConsume("k")).outcome, "rejected")
      })),
    { fastCheck: { numRuns: 25 } }
  )

  it.effect.prop(
    "GCRA lets calls through at their theoretical arrival times",
    {
      steps: arrivals(600),
      limit: FastCheck.integer({ min: 1, max: 9 }),
      burst: FastCheck.integer({ min: 3, max: 5 })
    },
    ({ burst, limit, steps }) =>
      withMemory(Effect.gen(function*() {
        const window = 1_000
        const limiter = yield* RateLimiter.make({
          name: uniqueName("prop-gcra"),
          algorithm: RateLimiter.gcra({ limit, window, burst }),
          onExceeded: "wait",
          maxWait: "1 minute"
        })
        const admitted = yield* drive(limiter, steps)
        // Reference: virtual scheduling in ticks of 1/limit ms; emission interval T = window ticks per unit.
        let tat = 0
        let now = 0
        const expected: Array<number> = []
        for (const step of steps) {
          now += step.gap
          const t = now * limit
          const base = Math.max(tat, t)
          const early = base + step.cost * window - burst * window
          const at = early <= t ? now : Math.ceil(early / limit)
          tat = Math.max(base, at * limit) + step.cost * window
          expected.push(at)
        }
        assert.deepStrictEqual(admitted.map((a) => a.at).sort((a, b) => a - b), expected.sort((a, b) => a - b))
      })),
    { fastCheck: { numRuns: 25 } }
  )
})
