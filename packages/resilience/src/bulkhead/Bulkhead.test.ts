import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import * as TestClock from "effect/TestClock"
import * as Metrics from "../Metrics.js"
import * as Bulkhead from "./Bulkhead.js"
import * as TBulkhead from "./TBulkhead.js"

let names = 0
const uniqueName = (label: string) => `test.${label}.${++names}`

/**
 * The behaviour both bulkheads share is one suite, run for each variant (the
 * STM one's `make` needs a scope, hence `it.scoped`). The fast bulkhead hands
 * a freed permit straight to the oldest waiter (`handsOver`); the tests of its
 * FIFO queue, and of the one timer its queued calls share, are its own, at
 * the end. `TBulkhead.test.ts` has the STM bulkhead's own tests, and
 * `Bulkhead.options.test.ts` the options, the error and the registries of both.
 */
const variants = [
  { label: "Bulkhead", make: Bulkhead.make, handsOver: true },
  { label: "TBulkhead", make: TBulkhead.make, handsOver: false }
] as const

const gauges = (name: string) =>
  Effect.all({
    active: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadActive, "bulkhead", name)), (s) => s.value),
    queued: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadQueued, "bulkhead", name)), (s) => s.value),
    rejected: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadRejected, "bulkhead", name)), (s) => s.count)
  })

const counts = (bulkhead: Bulkhead.Bulkhead) =>
  Effect.map(bulkhead.snapshot, ({ active, available, queued }) => ({ active, queued, available }))

/** Lets forked fibers run until the bulkhead reaches the expected state. */
const reach = (bulkhead: Bulkhead.Bulkhead, expected: { readonly active: number; readonly queued: number }) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      const snapshot = yield* bulkhead.snapshot
      if (snapshot.active === expected.active && snapshot.queued === expected.queued) return
      yield* Effect.yieldNow()
    }
    const snapshot = yield* bulkhead.snapshot
    assert.fail(`expected ${JSON.stringify(expected)}, got active ${snapshot.active}, queued ${snapshot.queued}`)
  })

/** The bulkhead is at rest: every permit free, nobody queued, and the gauges agree. */
const assertIdle = (bulkhead: Bulkhead.Bulkhead) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(yield* counts(bulkhead), {
      active: 0,
      queued: 0,
      available: bulkhead.limits.maxConcurrent
    })
    const { active, queued } = yield* gauges(bulkhead.name)
    assert.deepStrictEqual({ active, queued }, { active: 0, queued: 0 })
  })

const fullReason = <A, E>(result: Either.Either<A, E>): Bulkhead.FullReason | undefined =>
  Either.isLeft(result) && Bulkhead.isBulkheadFullError(result.left) ? result.left.reason : undefined

describe.each(variants.map((variant) => [variant.label, variant] as const))("%s", (_label, variant) => {
  describe("admission", () => {
    it.scoped("runs up to maxConcurrent calls at once and, by default, rejects the next one at once", () =>
      Effect.gen(function*() {
        const name = uniqueName("no-queue")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 2 })
        const gate = yield* Deferred.make<void>()
        const running = yield* Effect.forkAll([1, 2].map(() => Bulkhead.protect(Deferred.await(gate), bulkhead)))
        yield* reach(bulkhead, { active: 2, queued: 0 })

        const third = yield* Effect.either(Bulkhead.protect(Effect.succeed("ran"), bulkhead))
        assert.strictEqual(fullReason(third), "QueueFull")
        assert.strictEqual((yield* gauges(name)).rejected, 1)

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(running)
        assert.strictEqual(yield* Bulkhead.protect(Effect.succeed("ran"), bulkhead), "ran")
        yield* assertIdle(bulkhead)
      }))

    it.scoped("queues calls up to maxQueued and rejects the next one at once with QueueFull", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("queue"), maxConcurrent: 2, maxQueued: 1 })
        const gate = yield* Deferred.make<void>()
        const held = yield* Effect.forkAll([1, 2].map(() => Bulkhead.protect(Deferred.await(gate), bulkhead)))
        yield* reach(bulkhead, { active: 2, queued: 0 })
        const queued = yield* Effect.fork(Bulkhead.protect(Effect.succeed("queued ran"), bulkhead))
        yield* reach(bulkhead, { active: 2, queued: 1 })

        const rejected = yield* Effect.either(Bulkhead.protect(Effect.succeed("ran"), bulkhead))
        assert.strictEqual(fullReason(rejected), "QueueFull")
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 2, queued: 1, available: 0 })

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(held)
        assert.strictEqual(yield* Fiber.join(queued), "queued ran")
        yield* assertIdle(bulkhead)
      }))

    it.scoped("is pipeable and data-first", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("dual"), maxConcurrent: 1 })
        assert.strictEqual(yield* Effect.succeed(1).pipe(Bulkhead.protect(bulkhead)), 1)
        assert.strictEqual(yield* Bulkhead.protect(Effect.succeed(2), bulkhead), 2)
        assert.strictEqual(yield* bulkhead.pipe(Bulkhead.snapshot, Effect.map((s) => s.available)), 1)
        assert.isTrue(Bulkhead.isBulkhead(bulkhead))
        assert.isFalse(Bulkhead.isBulkhead({ name: "x" }))
      }))
  })

  describe("permits", () => {
    it.scoped("come back when the call succeeds", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("success"), maxConcurrent: 1 })
        assert.strictEqual(yield* Bulkhead.protect(Effect.succeed("ok"), bulkhead), "ok")
        yield* assertIdle(bulkhead)
      }))

    it.scoped("come back when the call fails", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("failure"), maxConcurrent: 1 })
        const result = yield* Effect.either(Bulkhead.protect(Effect.fail("boom"), bulkhead))
        assert.deepStrictEqual(result, Either.left("boom"))
        yield* assertIdle(bulkhead)
      }))

    it.scoped("come back when the call dies", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("defect"), maxConcurrent: 1 })
        const exit = yield* Effect.exit(Bulkhead.protect(Effect.dieMessage("defect"), bulkhead))
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        yield* assertIdle(bulkhead)
      }))

    it.scoped("come back when a running call is interrupted", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("interrupt-running"), maxConcurrent: 1 })
        const fiber = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        assert.strictEqual((yield* gauges(bulkhead.name)).active, 1)
        yield* Fiber.interrupt(fiber)
        yield* assertIdle(bulkhead)
      }))

    it.scoped("leave the queue when a queued call is interrupted, and it never runs", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("interrupt-queued"), maxConcurrent: 1, maxQueued: 2 })
        const gate = yield* Deferred.make<void>()
        let queuedRan = false
        const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued = yield* Effect.fork(Bulkhead.protect(Effect.sync(() => (queuedRan = true)), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        assert.strictEqual((yield* gauges(bulkhead.name)).queued, 1)

        const exit = yield* Fiber.interrupt(queued)
        assert.isTrue(Exit.isInterrupted(exit))
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 0, available: 0 })
        assert.strictEqual((yield* gauges(bulkhead.name)).queued, 0)

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        assert.isFalse(queuedRan)
        yield* assertIdle(bulkhead)
      }))

    it.scoped("come back when a queued call is interrupted around the instant a permit frees for it", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("interrupt-grant"), maxConcurrent: 1, maxQueued: 1 })
        // Interrupting after 0..31 scheduler turns lands before, during and after the queued call gets the permit.
        for (let turns = 0; turns <= 31; turns++) {
          const gate = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
          yield* reach(bulkhead, { active: 1, queued: 0 })
          const queued = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
          yield* reach(bulkhead, { active: 1, queued: 1 })
          yield* Deferred.succeed(gate, undefined)
          for (let i = 0; i < turns; i++) yield* Effect.yieldNow()
          yield* Fiber.interrupt(queued)
          yield* Fiber.join(holder)
          yield* assertIdle(bulkhead)
        }
      }))
  })

  describe("maxWait", () => {
    it.scoped("rejects a queued call with MaxWait after exactly maxWait and frees its queue slot", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-wait")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 1, maxQueued: 1, maxWait: "5 seconds" })
        const holder = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued = yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.succeed("ran"), bulkhead)))
        yield* reach(bulkhead, { active: 1, queued: 1 })

        yield* TestClock.adjust("4999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(queued)))
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 1, available: 0 })

        yield* TestClock.adjust("1 millis")
        assert.strictEqual(fullReason(yield* Fiber.join(queued)), "MaxWait")
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 0, available: 0 })
        assert.deepStrictEqual(yield* gauges(name), { active: 1, queued: 0, rejected: 1 })

        // The slot is free again.
        const next = yield* Effect.fork(Bulkhead.protect(Effect.void, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* Fiber.interrupt(next)
        yield* Fiber.interrupt(holder)
        yield* assertIdle(bulkhead)
      }))

    it.scoped("runs a queued call that gets a permit before maxWait runs out", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({
          name: uniqueName("max-wait-ok"),
          maxConcurrent: 1,
          maxQueued: 1,
          maxWait: "5 seconds"
        })
        const holder = yield* Effect.fork(Bulkhead.protect(Effect.sleep("3 seconds"), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued = yield* Effect.fork(Bulkhead.protect(Effect.succeed("ran"), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* TestClock.adjust("3 seconds")
        assert.strictEqual(yield* Fiber.join(queued), "ran")
        yield* Fiber.join(holder)
        yield* TestClock.adjust("10 seconds")
        yield* assertIdle(bulkhead)
        assert.strictEqual((yield* gauges(bulkhead.name)).rejected, 0)
      }))

    it.scoped("uses or returns a permit freed in the same instant as the wait runs out", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-wait-tie")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 1, maxQueued: 1, maxWait: "1 second" })
        const holder = yield* Effect.fork(Bulkhead.protect(Effect.sleep("1 second"), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued = yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.succeed("ran"), bulkhead)))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* TestClock.adjust("1 second")
        const result = yield* Fiber.join(queued)
        yield* Fiber.join(holder)
        assert.isTrue(Either.isRight(result) || fullReason(result) === "MaxWait")
        assert.strictEqual((yield* gauges(name)).rejected, Either.isLeft(result) ? 1 : 0)
        yield* assertIdle(bulkhead)
      }))

    it.scoped("uses or returns a permit freed around the instant a zero maxWait runs out", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-wait-zero")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 1, maxQueued: 1, maxWait: 0 })
        let ran = 0
        let rejected = 0
        // Releasing after 0..30 scheduler turns lands before, during and after the timeout.
        for (let turns = 0; turns <= 30; turns++) {
          const gate = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
          yield* reach(bulkhead, { active: 1, queued: 0 })
          const queued = yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.sync(() => ran++), bulkhead)))
          yield* Effect.repeatN(Effect.yieldNow(), turns)
          yield* Deferred.succeed(gate, undefined)
          const result = yield* Fiber.join(queued)
          if (Either.isLeft(result)) rejected++
          assert.isTrue(Either.isRight(result) || fullReason(result) === "MaxWait")
          yield* Fiber.join(holder)
          yield* assertIdle(bulkhead)
        }
        assert.strictEqual(ran + rejected, 31)
        // The fast bulkhead hands the permit over at the release, so the releases land on both sides of the
        // timeout; the STM bulkhead's zero wait runs out before its waiting transaction takes the permit.
        if (variant.handsOver) {
          assert.isTrue(ran > 0 && rejected > 0, "the releases should land on both sides of the timeout")
        }
        assert.strictEqual((yield* gauges(name)).rejected, rejected)
      }))

    it.scoped("times out queued calls one by one, each exactly maxWait after it queued", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-wait-staggered")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 1, maxQueued: 3, maxWait: "5 seconds" })
        const start = yield* Clock.currentTimeMillis
        const holder = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        // Queued at 0s, 1s and 2s.
        const queued: Array<Fiber.RuntimeFiber<Either.Either<string, Bulkhead.BulkheadFullError>>> = []
        for (const at of [0, 1_000, 2_000]) {
          yield* TestClock.setTime(start + at)
          queued.push(yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.succeed("ran"), bulkhead))))
          yield* reach(bulkhead, { active: 1, queued: queued.length })
        }
        for (const [i, fiber] of queued.entries()) {
          const deadline = start + i * 1_000 + 5_000
          yield* TestClock.setTime(deadline - 1)
          assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)), `call ${i} should still wait`)
          yield* TestClock.setTime(deadline)
          assert.strictEqual(fullReason(yield* Fiber.join(fiber)), "MaxWait")
          assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 2 - i, available: 0 })
        }
        assert.deepStrictEqual(yield* gauges(name), { active: 1, queued: 0, rejected: 3 })
        yield* Fiber.interrupt(holder)
        yield* assertIdle(bulkhead)
      }))

    it.scoped("leaves no timer fiber behind once its queued calls have ended", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({
          name: uniqueName("max-wait-no-leak"),
          maxConcurrent: 1,
          maxQueued: 4,
          maxWait: "1 hour"
        })
        const rootsBefore = new Set(yield* Fiber.roots)
        const newRoots = Effect.map(Fiber.roots, (roots) => roots.filter((fiber) => !rootsBefore.has(fiber)))
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const granted = yield* Effect.forkAll([1, 2].map(() => Bulkhead.protect(Effect.void, bulkhead)))
        const interrupted = yield* Effect.fork(Bulkhead.protect(Effect.void, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 3 })
        yield* Fiber.interrupt(interrupted)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(granted)
        yield* assertIdle(bulkhead)
        for (let i = 0; i < 100 && (yield* newRoots).length > 0; i++) yield* Effect.yieldNow()
        assert.deepStrictEqual(yield* newRoots, [])
      }))
  })

  describe("metrics", () => {
    it.scoped("track active and queued calls and count rejections under the bulkhead label", () =>
      Effect.gen(function*() {
        const name = uniqueName("metrics")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 2, maxQueued: 1, maxWait: "1 second" })
        assert.deepStrictEqual(yield* gauges(name), { active: 0, queued: 0, rejected: 0 })

        const gate = yield* Deferred.make<void>()
        const held = yield* Effect.forkAll([1, 2].map(() => Bulkhead.protect(Deferred.await(gate), bulkhead)))
        yield* reach(bulkhead, { active: 2, queued: 0 })
        const queued = yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.void, bulkhead)))
        yield* reach(bulkhead, { active: 2, queued: 1 })
        assert.deepStrictEqual(yield* gauges(name), { active: 2, queued: 1, rejected: 0 })

        yield* Effect.either(Bulkhead.protect(Effect.void, bulkhead))
        assert.deepStrictEqual(yield* gauges(name), { active: 2, queued: 1, rejected: 1 })

        yield* TestClock.adjust("1 second")
        assert.strictEqual(fullReason(yield* Fiber.join(queued)), "MaxWait")
        assert.deepStrictEqual(yield* gauges(name), { active: 2, queued: 0, rejected: 2 })

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(held)
        assert.deepStrictEqual(yield* gauges(name), { active: 0, queued: 0, rejected: 2 })
      }))

    it.scoped("ignore fiber metric tags, so every update lands on the bulkhead's own series", () =>
      Effect.gen(function*() {
        const name = uniqueName("metric-tags")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 1 })
        const fiber = yield* Effect.fork(
          Bulkhead.protect(Effect.never, bulkhead).pipe(Effect.tagMetrics("route", "x"))
        )
        yield* reach(bulkhead, { active: 1, queued: 0 })
        assert.strictEqual((yield* gauges(name)).active, 1)
        yield* Fiber.interrupt(fiber)
        assert.strictEqual((yield* gauges(name)).active, 0)
      }))
  })
})

/**
 * A full bulkhead (`maxWait` 10 s) with two queued calls. The first, queued at
 * 0 s through `queueFirst`, starts the timer of the queued calls in its own
 * fiber; the effect `queueFirst` answers then ends that fiber. The second,
 * queued at 2 s, must still time out exactly at 12 s.
 */
const timerHandOver = (
  label: string,
  queueFirst: (
    call: Effect.Effect<void, Bulkhead.BulkheadFullError>
  ) => Effect.Effect<Effect.Effect<void>>
) =>
  Effect.gen(function*() {
    const bulkhead = yield* Bulkhead.make({
      name: uniqueName(label),
      maxConcurrent: 1,
      maxQueued: 4,
      maxWait: "10 seconds"
    })
    const gate = yield* Deferred.make<void>()
    const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
    yield* reach(bulkhead, { active: 1, queued: 0 })
    const endFirst = yield* queueFirst(Bulkhead.protect(Effect.void, bulkhead))
    yield* reach(bulkhead, { active: 1, queued: 1 })
    yield* TestClock.adjust("2 seconds")
    const second = yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.void, bulkhead)))
    yield* reach(bulkhead, { active: 1, queued: 2 })
    yield* endFirst
    yield* reach(bulkhead, { active: 1, queued: 1 })
    // the second call's fiber takes the timer over
    for (let i = 0; i < 100 && !Chunk.some(yield* TestClock.sleeps(), (at) => at === 12_000); i++) {
      yield* Effect.yieldNow()
    }
    yield* TestClock.adjust("9999 millis")
    assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
    yield* TestClock.adjust("1 millis")
    assert.strictEqual(fullReason(yield* Fiber.join(second)), "MaxWait")
    yield* Deferred.succeed(gate, undefined)
    yield* Fiber.join(holder)
    yield* assertIdle(bulkhead)
  })

/** The fast bulkhead's own: its FIFO queue, and the one timer its queued calls share. */
describe("Bulkhead alone", () => {
  describe("admission", () => {
    it.effect("hands freed permits to queued calls in arrival order", () =>
      Effect.gen(function*() {
        const bulkhead = yield* Bulkhead.make({ name: uniqueName("fifo"), maxConcurrent: 1, maxQueued: 3 })
        const gate = yield* Deferred.make<void>()
        const order: Array<string> = []
        const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const waiting: Array<Fiber.RuntimeFiber<void, Bulkhead.BulkheadFullError>> = []
        for (const label of ["b", "c", "d"]) {
          waiting.push(yield* Effect.fork(Bulkhead.protect(Effect.sync(() => void order.push(label)), bulkhead)))
          yield* reach(bulkhead, { active: 1, queued: waiting.length })
        }

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(Fiber.all(waiting))
        assert.deepStrictEqual(order, ["b", "c", "d"])
        yield* assertIdle(bulkhead)
      }))

    it.effect("never lets a newcomer overtake a queued call when a permit frees", () =>
      Effect.gen(function*() {
        const bulkhead = yield* Bulkhead.make({ name: uniqueName("no-barging"), maxConcurrent: 1, maxQueued: 1 })
        const order: Array<string> = []
        const holder = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued = yield* Effect.fork(Bulkhead.protect(Effect.sync(() => order.push("queued")), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 1 })

        // The release hands the permit to the queued call before its fiber wakes up;
        // the newcomer arriving in that window must wait behind it.
        yield* Fiber.interrupt(holder)
        yield* Bulkhead.protect(Effect.sync(() => order.push("newcomer")), bulkhead)
        yield* Fiber.join(queued)
        assert.deepStrictEqual(order, ["queued", "newcomer"])
        yield* assertIdle(bulkhead)
      }))
  })

  describe("maxWait", () => {
    it.effect("still times out a later call on time after an earlier one got its permit", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-wait-after-grant")
        const bulkhead = yield* Bulkhead.make({ name, maxConcurrent: 1, maxQueued: 2, maxWait: "5 seconds" })
        const start = yield* Clock.currentTimeMillis
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(Bulkhead.protect(Deferred.await(gate), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const first = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* TestClock.setTime(start + 2_000)
        const second = yield* Effect.fork(Effect.either(Bulkhead.protect(Effect.succeed("ran"), bulkhead)))
        yield* reach(bulkhead, { active: 1, queued: 2 })

        // At 3s the first call gets the permit, and holds it.
        yield* TestClock.setTime(start + 3_000)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        yield* reach(bulkhead, { active: 1, queued: 1 })

        // 5s, the first call's deadline, is no deadline any more; 7s is the second's.
        yield* TestClock.setTime(start + 6_999)
        assert.isTrue(Option.isNone(yield* Fiber.poll(second)))
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 1, available: 0 })
        yield* TestClock.setTime(start + 7_000)
        assert.strictEqual(fullReason(yield* Fiber.join(second)), "MaxWait")
        assert.deepStrictEqual(yield* gauges(name), { active: 1, queued: 0, rejected: 1 })
        yield* Fiber.interrupt(first)
        yield* assertIdle(bulkhead)
      }))

    it.effect("leaves no fiber of a closed scope running, and still times out the calls queued outside it", () =>
      timerHandOver("max-wait-scope", (call) =>
        Effect.gen(function*() {
          const supervisor = yield* Supervisor.track
          const scope = yield* Scope.make()
          yield* Effect.supervised(Effect.forkIn(call, scope), supervisor)
          return Effect.gen(function*() {
            // the scope's call, and the fiber that times the queued calls out
            assert.strictEqual((yield* supervisor.value).length, 2)
            yield* Scope.close(scope, Exit.void)
            assert.deepStrictEqual(yield* supervisor.value, [])
          })
        })))

    it.effect("still times out the calls queued after the call whose fiber ran the timer has ended", () =>
      timerHandOver("max-wait-hand-over", (call) => Effect.map(Effect.fork(call), Fiber.interrupt)))
  })
})
