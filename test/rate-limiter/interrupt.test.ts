/**
 * Callers interrupted while their decision is in flight, against the
 * in-memory store and a real Redis on 127.0.0.1:6379 (these tests fail,
 * never skip, when it is not there; every key is under the run's prefix and
 * deleted afterwards). The rule, documented on `RateLimiter.consume`:
 *
 * - a call interrupted before its decision starts takes nothing;
 * - reject mode: a decision that has started counts (on Redis the script
 *   already sent runs), though its caller is gone at once;
 * - wait mode: the decision is not interruptible, so a reservation made for
 *   a caller interrupted while the store decided, or while it sleeps towards
 *   its slot, is always seen and given back.
 */
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import type * as Scope from "effect/Scope"
import * as TestRedis from "../support/redis.js"

let counter = 0
const uniqueName = (label: string) => `${label}-${++counter}`

/** What the store saw: decisions started and answered (to a caller still there), slots given back. */
interface Probe {
  started: number
  answered: number
  refunded: number
}

/** `inner` with every decision and refund counted in `probe`. */
const probed = (inner: RateLimiter.Store, probe: Probe): RateLimiter.Store => ({
  backend: inner.backend,
  bind: (config) =>
    Effect.map(inner.bind(config), (binding): RateLimiter.Binding => ({
      decide: (key, cost, maxDelay) =>
        Effect.suspend(() => {
          probe.started++
          return Effect.tap(binding.decide(key, cost, maxDelay), () => {
            probe.answered++
          })
        }),
      refund: (key, cost, reservation) =>
        Effect.tap(binding.refund(key, cost, reservation), (given) => {
          if (given) probe.refunded++
        })
    }))
})

/** The store of each backend, in the test's scope. */
const stores: ReadonlyArray<readonly [string, Effect.Effect<RateLimiter.Store, unknown, Scope.Scope>]> = [
  ["memory", Effect.map(Layer.build(RateLimiter.layerMemory()), Context.get(RateLimiter.RateLimiterStore))],
  [
    "redis",
    Effect.gen(function*() {
      // Fails loudly, naming the address, when Redis is not there (the store itself would fail open).
      yield* Effect.promise(() => TestRedis.connect().then((client) => client.quit()))
      const prefix = yield* TestRedis.scopedPrefix("rate-limiter-interrupt")
      const context = yield* Layer.build(RedisRateLimiter.layer({ redis: TestRedis.connection, prefix }))
      return Context.get(context, RateLimiter.RateLimiterStore)
    })
  ]
]

/**
 * Runs `body` with a probed store; fails on a warning or error logged, or a
 * promise rejection nobody handled, meanwhile or in the moment after (late
 * replies to interrupted callers arrive then).
 */
const withProbe = <A, E>(
  store: Effect.Effect<RateLimiter.Store, unknown, Scope.Scope>,
  body: (probe: Probe) => Effect.Effect<A, E, RateLimiter.RateLimiterStore>
) =>
  Effect.gen(function*() {
    const complaints: Array<string> = []
    const onRejection = (reason: unknown) => complaints.push(`unhandled rejection: ${String(reason)}`)
    yield* Effect.acquireRelease(
      Effect.sync(() => process.on("unhandledRejection", onRejection)),
      () => Effect.sync(() => process.off("unhandledRejection", onRejection))
    )
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning" || logLevel._tag === "Error" || logLevel._tag === "Fatal") {
        complaints.push(`${logLevel.label}: ${String(message)}`)
      }
    })
    const probe: Probe = { started: 0, answered: 0, refunded: 0 }
    const inner = yield* Effect.orDie(store)
    const result = yield* body(probe).pipe(
      Effect.provideService(RateLimiter.RateLimiterStore, probed(inner, probe)),
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    yield* Effect.sleep("100 millis")
    assert.deepStrictEqual(complaints, [])
    return result
  }).pipe(Effect.scoped)

/** Lets forked callers run until `count` decisions have started. */
const startedAll = (probe: Probe, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; probe.started < count; i++) {
      if (i > 1_000) return yield* Effect.dieMessage(`only ${probe.started} of ${count} decisions started`)
      yield* Effect.yieldNow()
    }
  })

/** Waits (real time) until `count` decisions have been answered: the callers then sleep towards their slots. */
const answeredAll = (probe: Probe, count: number) =>
  Effect.gen(function*() {
    for (let i = 0; probe.answered < count; i++) {
      if (i > 500) return yield* Effect.dieMessage(`only ${probe.answered} of ${count} decisions answered`)
      yield* Effect.sleep("10 millis")
    }
  })

describe.each(stores)("RateLimiter interrupted mid-decision: %s store", (backend, store) => {
  it.live("reject mode: a call interrupted before its decision takes nothing; one whose decision started counts", () =>
    withProbe(store, (probe) =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("reject"),
          algorithm: RateLimiter.slidingWindowLog({ limit: 100, window: "1 hour" })
        })
        // Forked and interrupted before they run: no decision starts.
        const early = yield* Effect.forEach(Array.from({ length: 20 }), () => Effect.fork(limiter.consume("k")))
        yield* Fiber.interruptAll(early)
        assert.strictEqual(probe.started, 0)
        // Interrupted once every decision has started: in memory each is already made, on Redis each is in flight.
        const late = yield* Effect.forEach(Array.from({ length: 40 }), () => Effect.fork(limiter.consume("k")))
        yield* startedAll(probe, 40)
        const answeredBeforeInterrupt = probe.answered
        yield* Fiber.interruptAll(late)
        if (backend === "redis") {
          assert.isBelow(answeredBeforeInterrupt, 40, "some decisions were still in flight when interrupted")
        } else {
          assert.strictEqual(answeredBeforeInterrupt, 40, "an in-memory decision is one synchronous step")
        }
        // Behind the interrupted ones on the same connection, so Redis has run them all by then.
        const next = yield* limiter.tryConsume("k")
        assert.isFalse(next.degraded)
        assert.strictEqual(probe.started, 41)
        assert.strictEqual(next.remaining, 100 - 40 - 1)
        assert.strictEqual(probe.refunded, 0)
      })))

  for (const when of ["in flight", "asleep"] as const) {
    it.live(`wait mode: callers interrupted with their decision ${when} all get their slots back`, () =>
      withProbe(store, (probe) =>
        Effect.gen(function*() {
          const limiter = yield* RateLimiter.make({
            name: uniqueName("wait"),
            algorithm: RateLimiter.slidingWindowLog({ limit: 5, window: "10 seconds" }),
            onExceeded: "wait",
            maxWait: "1 minute"
          })
          const filled = yield* limiter.consume("k", 5)
          assert.strictEqual(filled.outcome, "allowed")
          // Each of these reserves a slot 10 or 20 seconds away.
          const waiters = yield* Effect.forEach(Array.from({ length: 10 }), () => Effect.fork(limiter.consume("k")))
          yield* startedAll(probe, 11)
          if (when === "asleep") yield* answeredAll(probe, 11)
          const answeredBeforeInterrupt = probe.answered
          yield* Fiber.interruptAll(waiters)
          if (when === "in flight" && backend === "redis") {
            assert.isBelow(answeredBeforeInterrupt, 11, "some decisions were still in flight when interrupted")
          }
          // Every reservation was seen (the decision ran to its answer) and given back.
          assert.strictEqual(probe.answered, 11)
          assert.strictEqual(probe.refunded, 10)
          // Only the first five units remain: all five free again within one window, not two.
          const whole = yield* limiter.tryConsume("k", 5)
          assert.strictEqual(whole.outcome, "rejected")
          assert.isFalse(whole.degraded)
          assert.isTrue(
            Duration.lessThanOrEqualTo(whole.retryAfter, Duration.seconds(10)),
            `retry after ${Duration.format(whole.retryAfter)}`
          )
        })))
  }

  it.live("wait mode, GCRA: the latest waiter interrupted in flight gives its slot to the next caller", () =>
    withProbe(store, (probe) =>
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("gcra"),
          algorithm: RateLimiter.gcra({ limit: 1, window: "10 seconds" }),
          onExceeded: "wait",
          maxWait: "1 minute"
        })
        yield* limiter.consume("k")
        const waiter = yield* Effect.fork(limiter.consume("k"))
        yield* startedAll(probe, 2)
        yield* Fiber.interrupt(waiter)
        assert.strictEqual(probe.refunded, 1)
        // The next caller's slot is the interrupted one's (about 10 s away), not the one after it.
        const next = yield* limiter.tryConsume("k")
        assert.strictEqual(next.outcome, "rejected")
        assert.isTrue(
          Duration.lessThanOrEqualTo(next.retryAfter, Duration.seconds(10)),
          `retry after ${Duration.format(next.retryAfter)}`
        )
      })))
})
