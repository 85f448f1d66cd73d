import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as AdaptiveConcurrency from "./AdaptiveConcurrency.js"

let names = 0
const uniqueName = (label: string) => `test.adaptive.${label}.${++names}`

const gauges = (name: string) =>
  Effect.all({
    limit: Effect.map(Metric.value(Metric.tagged(Metrics.adaptiveConcurrencyLimit, "limiter", name)), (s) => s.value),
    inflight: Effect.map(
      Metric.value(Metric.tagged(Metrics.adaptiveConcurrencyInflight, "limiter", name)),
      (s) => s.value
    ),
    rejected: Effect.map(
      Metric.value(Metric.tagged(Metrics.adaptiveConcurrencyRejected, "limiter", name)),
      (s) => s.count
    )
  })

/** Lets forked fibers run until `inflight` calls are running. */
const reach = (limiter: AdaptiveConcurrency.AdaptiveConcurrency, inflight: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      if ((yield* limiter.snapshot).inflight === inflight) return
      yield* Effect.yieldNow()
    }
    assert.fail(`expected ${inflight} calls in flight, got ${(yield* limiter.snapshot).inflight}`)
  })

/** One round of `limit` concurrent calls (the limit in use) that each take `latency` ms of TestClock time. */
const round = (limiter: AdaptiveConcurrency.AdaptiveConcurrency, latency: number) =>
  Effect.gen(function*() {
    const { limit } = yield* limiter.snapshot
    const fibers = yield* Effect.forEach(
      Array.from({ length: limit }),
      () => Effect.fork(Effect.sleep(latency).pipe(AdaptiveConcurrency.protect(limiter))),
      { concurrency: "unbounded" }
    )
    yield* reach(limiter, limit)
    yield* TestClock.adjust(latency)
    yield* Fiber.joinAll(fibers)
  })

const learning = (name: string, algorithm?: AdaptiveConcurrency.Algorithm) =>
  AdaptiveConcurrency.make({
    name,
    ...(algorithm === undefined ? {} : { algorithm }),
    initialLimit: 10,
    minLimit: 2,
    maxLimit: 100,
    window: "100 millis",
    minSamples: 5
  })

describe("AdaptiveConcurrency", () => {
  it.effect("admits calls up to the limit and refuses the next one at once, without running it", () =>
    Effect.gen(function*() {
      const name = uniqueName("refuse")
      const limiter = yield* AdaptiveConcurrency.make({ name, initialLimit: 3, minLimit: 1, retryAfter: "2 seconds" })
      const gate = yield* Deferred.make<void>()
      const fibers = yield* Effect.forEach(
        [1, 2, 3],
        () => Effect.fork(Deferred.await(gate).pipe(AdaptiveConcurrency.protect(limiter))),
        { concurrency: "unbounded" }
      )
      yield* reach(limiter, 3)
      let ran = false
      const refused = yield* Effect.either(
        Effect.sync(() => {
          ran = true
        }).pipe(AdaptiveConcurrency.protect(limiter))
      )
      assert.isFalse(ran)
      assert.isTrue(Either.isLeft(refused))
      if (Either.isLeft(refused)) {
        const error = refused.left
        assert.strictEqual(error._tag, "ConcurrencyLimitError")
        assert.deepStrictEqual([error.limiter, error.limit, error.inflight], [name, 3, 3])
        assert.isTrue(Failure.isTransient(error))
        assert.isTrue(Failure.isRejection(error))
        assert.isTrue(AdaptiveConcurrency.isConcurrencyLimitError(error))
        assert.isTrue(Option.exists(Failure.retryAfterOf(error), Duration.equals(Duration.seconds(2))))
        assert.match(error.message, /limit 3/)
      }
      assert.deepStrictEqual(yield* gauges(name), { limit: 3, inflight: 3, rejected: 1 })
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.joinAll(fibers)
      assert.deepStrictEqual(yield* gauges(name), { limit: 3, inflight: 0, rejected: 1 })
    }))

  it.effect("grows the limit while latency stays flat and the limit is in use", () =>
    Effect.gen(function*() {
      const limiter = yield* learning(uniqueName("grow"))
      for (let i = 0; i < 20; i++) yield* round(limiter, 100)
      const snapshot = yield* limiter.snapshot
      assert.isAbove(snapshot.limit, 18)
      assert.isAtLeast(snapshot.windows, 15)
      assert.deepStrictEqual((yield* gauges(limiter.name)).limit, snapshot.limit)
    }))

  it.effect("shrinks the limit when latency rises, down to minLimit at most", () =>
    Effect.gen(function*() {
      const limiter = yield* learning(uniqueName("shrink"))
      for (let i = 0; i < 20; i++) yield* round(limiter, 100)
      const grown = (yield* limiter.snapshot).limit
      // Latency grows with the load: queueing somewhere below.
      for (let i = 0; i < 20; i++) yield* round(limiter, 100 * (1 + (yield* limiter.snapshot).limit / 5))
      const shrunk = yield* limiter.snapshot
      assert.isBelow(shrunk.limit, grown / 2)
      assert.isAtLeast(shrunk.limit, 2)
    }))

  it.effect("Vegas learns too", () =>
    Effect.gen(function*() {
      const limiter = yield* learning(uniqueName("vegas"), AdaptiveConcurrency.vegas())
      for (let i = 0; i < 4; i++) yield* round(limiter, 100)
      const grown = (yield* limiter.snapshot).limit
      assert.isAbove(grown, 10)
      for (let i = 0; i < 10; i++) yield* round(limiter, 100 * (1 + (yield* limiter.snapshot).limit / 5))
      assert.isBelow((yield* limiter.snapshot).limit, grown)
    }))

  it.effect("counts transient failures as drops, which shrink the limit", () =>
    Effect.gen(function*() {
      const limiter = yield* learning(uniqueName("drops"))
      const failing = Effect.zipRight(
        Effect.sleep(10),
        Effect.fail(new Failure.TransientError({ reason: "Lifted", message: "timed out" }))
      )
      for (let i = 0; i < 20; i++) {
        const fibers = yield* Effect.forEach(
          Array.from({ length: 5 }),
          () => Effect.fork(failing.pipe(AdaptiveConcurrency.protect(limiter))),
          { concurrency: "unbounded" }
        )
        yield* TestClock.adjust(100)
        yield* Fiber.joinAll(fibers).pipe(Effect.ignore)
      }
      assert.isBelow((yield* limiter.snapshot).limit, 10)
    }))

  it.effect("frees the slot of an interrupted call and learns nothing from it", () =>
    Effect.gen(function*() {
      const limiter = yield* AdaptiveConcurrency.make({ name: uniqueName("interrupt"), minSamples: 1, window: 1 })
      const fiber = yield* Effect.fork(Effect.never.pipe(AdaptiveConcurrency.protect(limiter)))
      yield* reach(limiter, 1)
      yield* TestClock.adjust(5_000)
      yield* Fiber.interrupt(fiber)
      const snapshot = yield* limiter.snapshot
      assert.deepStrictEqual([snapshot.inflight, snapshot.windows], [0, 0])
    }))

  it.effect("a classify of its own decides what a call teaches", () =>
    Effect.gen(function*() {
      const limiter = yield* AdaptiveConcurrency.make({ name: uniqueName("classify"), minSamples: 1, window: 1 })
      const exits: Array<Exit.Exit<unknown, unknown>> = []
      yield* Effect.succeed(1).pipe(
        Effect.delay(10),
        AdaptiveConcurrency.protect(limiter, {
          classify: (exit) => {
            exits.push(exit)
            return "ignore"
          }
        }),
        Effect.fork,
        Effect.tap(() => TestClock.adjust(10)),
        Effect.flatMap(Fiber.join)
      )
      assert.strictEqual(exits.length, 1)
      assert.isTrue(Exit.isSuccess(exits[0] ?? Exit.void))
      assert.strictEqual((yield* limiter.snapshot).windows, 0)
      assert.strictEqual(AdaptiveConcurrency.defaultClassify(Exit.fail(new Error("no"))), "sample")
      assert.strictEqual(
        AdaptiveConcurrency.defaultClassify(Exit.fail(new Failure.TransientError({ reason: "Lifted", message: "x" }))),
        "drop"
      )
      assert.strictEqual(AdaptiveConcurrency.defaultClassify(Exit.die("boom")), "drop")
    }))

  it.effect("rejects invalid options with InvalidOptionsError naming the option", () =>
    Effect.gen(function*() {
      const attempt = (options: Partial<AdaptiveConcurrency.AdaptiveConcurrency.Options>) =>
        AdaptiveConcurrency.make({ name: "valid", ...options }).pipe(Effect.flip, Effect.map((e) => e.option))
      assert.strictEqual(yield* attempt({ name: "no spaces" }), "name")
      assert.strictEqual(yield* attempt({ minLimit: 0 }), "minLimit")
      assert.strictEqual(yield* attempt({ minLimit: 10, maxLimit: 5 }), "maxLimit")
      assert.strictEqual(yield* attempt({ initialLimit: 2000 }), "initialLimit")
      assert.strictEqual(yield* attempt({ initialLimit: 1.5 }), "initialLimit")
      assert.strictEqual(yield* attempt({ window: 0 }), "window")
      assert.strictEqual(yield* attempt({ minSamples: 0 }), "minSamples")
      assert.strictEqual(yield* attempt({ retryAfter: -1 }), "retryAfter")
      assert.strictEqual(
        yield* attempt({ algorithm: AdaptiveConcurrency.gradient2({ smoothing: 0 }) }),
        "algorithm.smoothing"
      )
      assert.strictEqual(
        yield* attempt({ algorithm: AdaptiveConcurrency.gradient2({ tolerance: 0.5 }) }),
        "algorithm.tolerance"
      )
      assert.strictEqual(
        yield* attempt({ algorithm: AdaptiveConcurrency.vegas({ probeMultiplier: 0 }) }),
        "algorithm.probeMultiplier"
      )
      // The default initial limit is clamped into small bounds rather than refused.
      const small = yield* AdaptiveConcurrency.make({ name: uniqueName("small"), minLimit: 1, maxLimit: 5 })
      assert.strictEqual((yield* small.snapshot).limit, 5)
      assert.isTrue(AdaptiveConcurrency.isAdaptiveConcurrency(small))
    }))
})
