import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as TestClock from "effect/TestClock"
import * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as PartitionedBulkhead from "./PartitionedBulkhead.js"

let names = 0
const uniqueName = (label: string) => `test.partitioned.${label}.${++names}`

type Bulkhead = PartitionedBulkhead.PartitionedBulkhead

const gauges = (name: string) =>
  Effect.all({
    active: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadActive, "bulkhead", name)), (s) => s.value),
    queued: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadQueued, "bulkhead", name)), (s) => s.value),
    rejected: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadRejected, "bulkhead", name)), (s) => s.count)
  })

const counts = (bulkhead: Bulkhead) =>
  Effect.map(bulkhead.snapshot, ({ active, keys, queued }) => ({ active, queued, keys }))

/** Lets forked fibers run until the bulkhead reaches the expected counts. */
const reach = (
  bulkhead: Bulkhead,
  expected: { readonly active: number; readonly queued: number; readonly keys?: number }
) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      const s = yield* bulkhead.snapshot
      if (s.active === expected.active && s.queued === expected.queued && (expected.keys ?? s.keys) === s.keys) return
      yield* Effect.yieldNow()
    }
    const s = yield* bulkhead.snapshot
    assert.fail(`expected ${JSON.stringify(expected)}, got active ${s.active}, queued ${s.queued}, keys ${s.keys}`)
  })

/** Lets forked fibers run until the condition holds. */
const until = (condition: () => boolean) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000 && !condition(); i++) yield* Effect.yieldNow()
    assert.isTrue(condition(), "the condition should hold")
  })

/** Nothing held: no permit, no waiter, no key; and the gauges agree. */
const assertIdle = (bulkhead: Bulkhead) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(yield* counts(bulkhead), { active: 0, queued: 0, keys: 0 })
    const { active, queued } = yield* gauges(bulkhead.name)
    assert.deepStrictEqual({ active, queued }, { active: 0, queued: 0 })
  })

const refusal = <A, E>(result: Either.Either<A, E>) =>
  Either.isLeft(result) && PartitionedBulkhead.isPartitionedBulkheadFullError(result.left)
    ? `${result.left.reason}/${result.left.limit}`
    : undefined

describe("PartitionedBulkhead", () => {
  describe("per key", () => {
    it.effect("runs up to perKey.maxConcurrent calls of a key and refuses the next, while other keys run", () =>
      Effect.gen(function*() {
        const name = uniqueName("per-key")
        const bulkhead = yield* PartitionedBulkhead.make({ name, perKey: { maxConcurrent: 2 }, maxKeys: 10 })
        const gate = yield* Deferred.make<void>()
        const held = yield* Effect.forkAll(
          [1, 2].map(() => PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, "a"))
        )
        yield* reach(bulkhead, { active: 2, queued: 0, keys: 1 })

        const third = yield* Effect.either(PartitionedBulkhead.protect(Effect.succeed("ran"), bulkhead, "a"))
        assert.strictEqual(refusal(third), "QueueFull/perKey")
        assert.strictEqual(yield* PartitionedBulkhead.protect(Effect.succeed("b ran"), bulkhead, "b"), "b ran")
        assert.deepStrictEqual(yield* bulkhead.snapshotKey("a"), { active: 2, queued: 0 })
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 2, queued: 0, keys: 1 })
        assert.deepStrictEqual(yield* gauges(name), { active: 2, queued: 0, rejected: 1 })

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(held)
        yield* assertIdle(bulkhead)
      }))

    it.effect("queues a key's calls up to perKey.maxQueued and runs them in arrival order", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("fifo"),
          perKey: { maxConcurrent: 1, maxQueued: 3 },
          maxKeys: 10
        })
        const order: Array<number> = []
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, "a"))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued: Array<Fiber.RuntimeFiber<void, PartitionedBulkhead.PartitionedBulkheadFullError>> = []
        for (const i of [1, 2, 3]) {
          const call = Effect.sync(() => {
            order.push(i)
          })
          queued.push(yield* Effect.fork(PartitionedBulkhead.protect(call, bulkhead, "a")))
          yield* reach(bulkhead, { active: 1, queued: i })
        }
        const fourth = yield* Effect.either(PartitionedBulkhead.protect(Effect.void, bulkhead, "a"))
        assert.strictEqual(refusal(fourth), "QueueFull/perKey")
        assert.deepStrictEqual(yield* bulkhead.snapshotKey("a"), { active: 1, queued: 3 })

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        yield* Effect.forEach(queued, Fiber.join)
        assert.deepStrictEqual(order, [1, 2, 3])
        yield* assertIdle(bulkhead)
      }))

    it.effect("is pipeable and data-first, and answers its guards", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("dual"),
          perKey: { maxConcurrent: 1 },
          maxKeys: 1
        })
        assert.strictEqual(yield* Effect.succeed(1).pipe(PartitionedBulkhead.protect(bulkhead, "k")), 1)
        assert.strictEqual(yield* PartitionedBulkhead.protect(Effect.succeed(2), bulkhead, "k"), 2)
        assert.strictEqual(yield* Effect.succeed(3).pipe(bulkhead.protect("k")), 3)
        assert.deepStrictEqual(yield* bulkhead.pipe(PartitionedBulkhead.snapshotKey("k")), { active: 0, queued: 0 })
        assert.deepStrictEqual(yield* PartitionedBulkhead.snapshotKey(bulkhead, "k"), { active: 0, queued: 0 })
        assert.strictEqual((yield* PartitionedBulkhead.snapshot(bulkhead)).keys, 0)
        assert.isTrue(PartitionedBulkhead.isPartitionedBulkhead(bulkhead))
        assert.isFalse(PartitionedBulkhead.isPartitionedBulkhead({ name: "x" }))
      }))
  })

  describe("shared total", () => {
    it.effect("caps every key together at total.maxConcurrent, and names the total when it refuses", () =>
      Effect.gen(function*() {
        const name = uniqueName("total")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: { maxConcurrent: 2 },
          total: { maxConcurrent: 3 },
          maxKeys: 10
        })
        const gate = yield* Deferred.make<void>()
        const held = yield* Effect.forkAll(
          ["a", "a", "b"].map((key) => PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, key))
        )
        yield* reach(bulkhead, { active: 3, queued: 0, keys: 2 })
        // "b" and "c" have free permits of their own; the total has none.
        assert.strictEqual(refusal(yield* Effect.either(bulkhead.protect("b")(Effect.void))), "QueueFull/total")
        assert.strictEqual(refusal(yield* Effect.either(bulkhead.protect("c")(Effect.void))), "QueueFull/total")
        assert.strictEqual(refusal(yield* Effect.either(bulkhead.protect("a")(Effect.void))), "QueueFull/perKey")
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 3, queued: 0, keys: 2 })

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(held)
        yield* assertIdle(bulkhead)
      }))

    it.effect("takes a total permit only with the key's own, so a key at its limit leaves the total to others", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("key-first"),
          perKey: { maxConcurrent: 1, maxQueued: 10 },
          total: { maxConcurrent: 2 },
          maxKeys: 10
        })
        const gate = yield* Deferred.make<void>()
        const hot = yield* Effect.forkAll(
          Array.from({ length: 6 }, () => PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, "hot"))
        )
        yield* reach(bulkhead, { active: 1, queued: 5, keys: 1 })
        // Five calls of "hot" wait for "hot"'s permit, none holds a total one: "cold" runs at once.
        assert.strictEqual(yield* PartitionedBulkhead.protect(Effect.succeed("cold ran"), bulkhead, "cold"), "cold ran")
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(hot)
        yield* assertIdle(bulkhead)
      }))

    it.effect("serves the keys waiting for the total round-robin: a hot key's long queue does not starve the others", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("fair"),
          perKey: { maxConcurrent: 4, maxQueued: 10 },
          total: { maxConcurrent: 2 },
          maxKeys: 10
        })
        const started: Array<string> = []
        const finish = yield* Queue.unbounded<void>()
        const call = (key: string) =>
          PartitionedBulkhead.protect(
            Effect.zipRight(Effect.sync(() => started.push(key)), Queue.take(finish)),
            bulkhead,
            key
          )
        const fibers: Array<Fiber.RuntimeFiber<void, PartitionedBulkhead.PartitionedBulkheadFullError>> = []
        // "a" takes both total permits and queues six more calls; then "b" queues two, "c" one.
        for (const key of ["a", "a", "a", "a", "a", "a", "a", "a", "b", "b", "c"]) {
          fibers.push(yield* Effect.fork(call(key)))
          yield* Effect.yieldNow()
        }
        yield* reach(bulkhead, { active: 2, queued: 9, keys: 3 })
        assert.deepStrictEqual(started, ["a", "a"])

        // One call ends at a time; each freed total permit goes to the next key in the ring.
        for (let ended = 1; ended <= 9; ended++) {
          yield* Queue.offer(finish, undefined)
          yield* reach(bulkhead, { active: 2, queued: 9 - ended })
        }
        yield* until(() => started.length === 11)
        assert.deepStrictEqual(started, ["a", "a", "a", "b", "c", "a", "b", "a", "a", "a", "a"])

        yield* Queue.offerAll(finish, [undefined, undefined])
        yield* Effect.forEach(fibers, Fiber.join)
        yield* assertIdle(bulkhead)
      }))

    it.effect("hands a key's freed permit to another key waiting for the total before its own next call", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("fair-blocked"),
          perKey: { maxConcurrent: 2, maxQueued: 10 },
          total: { maxConcurrent: 2 },
          maxKeys: 10
        })
        const started: Array<string> = []
        const finish = yield* Queue.unbounded<void>()
        const call = (key: string) =>
          PartitionedBulkhead.protect(
            Effect.zipRight(Effect.sync(() => started.push(key)), Queue.take(finish)),
            bulkhead,
            key
          )
        const fibers: Array<Fiber.RuntimeFiber<void, PartitionedBulkhead.PartitionedBulkheadFullError>> = []
        // "a" holds both of its permits (and the total's) and queues five more; "b" then waits for the total only.
        for (const key of ["a", "a", "a", "a", "a", "a", "a", "b"]) {
          fibers.push(yield* Effect.fork(call(key)))
          yield* Effect.yieldNow()
        }
        yield* reach(bulkhead, { active: 2, queued: 6 })
        yield* Queue.offer(finish, undefined)
        yield* reach(bulkhead, { active: 2, queued: 5 })
        yield* until(() => started.length === 3)
        assert.deepStrictEqual(started, ["a", "a", "b"])

        yield* Queue.offerAll(finish, Array.from({ length: 7 }, () => undefined))
        yield* Effect.forEach(fibers, Fiber.join)
        yield* assertIdle(bulkhead)
      }))
  })

  describe("bounded keys", () => {
    it.effect("refuses a new key with TooManyKeys while maxKeys keys are held, and takes it once one is dropped", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-keys")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: { maxConcurrent: 1, maxQueued: 1 },
          maxKeys: 2
        })
        const gateA = yield* Deferred.make<void>()
        const gateB = yield* Deferred.make<void>()
        const a = yield* Effect.fork(PartitionedBulkhead.protect(Deferred.await(gateA), bulkhead, "a"))
        const b = yield* Effect.fork(PartitionedBulkhead.protect(Deferred.await(gateB), bulkhead, "b"))
        yield* reach(bulkhead, { active: 2, queued: 0, keys: 2 })

        const c = yield* Effect.either(PartitionedBulkhead.protect(Effect.void, bulkhead, "c"))
        assert.strictEqual(refusal(c), "TooManyKeys/maxKeys")
        // Keys already held still queue.
        const queuedA = yield* Effect.fork(PartitionedBulkhead.protect(Effect.succeed("a2"), bulkhead, "a"))
        yield* reach(bulkhead, { active: 2, queued: 1, keys: 2 })
        assert.deepStrictEqual(yield* gauges(name), { active: 2, queued: 1, rejected: 1 })

        yield* Deferred.succeed(gateB, undefined)
        yield* Fiber.join(b)
        assert.strictEqual((yield* counts(bulkhead)).keys, 1)
        assert.strictEqual(yield* PartitionedBulkhead.protect(Effect.succeed("c ran"), bulkhead, "c"), "c ran")

        yield* Deferred.succeed(gateA, undefined)
        yield* Fiber.join(a)
        assert.strictEqual(yield* Fiber.join(queuedA), "a2")
        yield* assertIdle(bulkhead)
      }))

    it.effect("refuses a new key with TooManyKeys even when it would only have queued for the total", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("max-keys-total"),
          perKey: { maxConcurrent: 1, maxQueued: 1 },
          total: { maxConcurrent: 1 },
          maxKeys: 2
        })
        const gate = yield* Deferred.make<void>()
        const a = yield* Effect.fork(PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, "a"))
        const b = yield* Effect.fork(PartitionedBulkhead.protect(Effect.void, bulkhead, "b"))
        yield* reach(bulkhead, { active: 1, queued: 1, keys: 2 })
        assert.strictEqual(
          refusal(yield* Effect.either(PartitionedBulkhead.protect(Effect.void, bulkhead, "c"))),
          "TooManyKeys/maxKeys"
        )
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(a)
        yield* Fiber.join(b)
        yield* assertIdle(bulkhead)
      }))

    it.effect("drops a key when its last call succeeds, fails, dies or is refused, and reading it holds nothing", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("drop"),
          perKey: { maxConcurrent: 1 },
          total: { maxConcurrent: 1 },
          maxKeys: 1
        })
        yield* PartitionedBulkhead.protect(Effect.void, bulkhead, "ok")
        yield* assertIdle(bulkhead)
        yield* Effect.flip(PartitionedBulkhead.protect(Effect.fail("boom"), bulkhead, "failed"))
        yield* assertIdle(bulkhead)
        const died = yield* Effect.exit(PartitionedBulkhead.protect(Effect.dieMessage("defect"), bulkhead, "died"))
        assert.isTrue(Exit.isFailure(died) && Cause.isDie(died.cause))
        yield* assertIdle(bulkhead)
        assert.deepStrictEqual(yield* bulkhead.snapshotKey("never-seen"), { active: 0, queued: 0 })
        yield* assertIdle(bulkhead)
      }))

    it.effect(
      "leaves the key table empty after 100,000 distinct keys, one after another",
      () =>
        Effect.gen(function*() {
          const bulkhead = yield* PartitionedBulkhead.make({
            name: uniqueName("100k"),
            perKey: { maxConcurrent: 1 },
            total: { maxConcurrent: 4 },
            maxKeys: 1
          })
          let peakKeys = 0
          const observe = Effect.map(bulkhead.snapshot, (s) => {
            peakKeys = Math.max(peakKeys, s.keys)
          })
          for (let i = 0; i < 100_000; i++) {
            yield* PartitionedBulkhead.protect(i % 1_000 === 0 ? observe : Effect.void, bulkhead, `tenant-${i}`)
          }
          assert.strictEqual(peakKeys, 1)
          yield* assertIdle(bulkhead)
        }),
      30_000
    )

    it.effect("never holds more than maxKeys keys under many distinct keys at once", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("many-keys"),
          perKey: { maxConcurrent: 1, maxQueued: 2 },
          total: { maxConcurrent: 8 },
          maxKeys: 16
        })
        let peakKeys = 0
        let refused = 0
        const observe = Effect.map(bulkhead.snapshot, (s) => {
          peakKeys = Math.max(peakKeys, s.keys)
        })
        yield* Effect.forEach(
          Array.from({ length: 20_000 }, (_, i) => `k${i % 5_000}`),
          (key) =>
            PartitionedBulkhead.protect(Effect.zipRight(observe, Effect.yieldNow()), bulkhead, key).pipe(
              Effect.catchTag("PartitionedBulkheadFullError", () => Effect.sync(() => refused++))
            ),
          { concurrency: 64, discard: true }
        )
        assert.strictEqual(peakKeys, 16)
        assert.isAbove(refused, 0)
        yield* assertIdle(bulkhead)
      }), 30_000)
  })

  describe("maxWait", () => {
    it.effect("refuses a queued call after exactly perKey.maxWait, naming the limit that held it, and drops its key", () =>
      Effect.gen(function*() {
        const name = uniqueName("max-wait")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: { maxConcurrent: 1, maxQueued: 1, maxWait: "5 seconds" },
          total: { maxConcurrent: 1 },
          maxKeys: 4
        })
        const holder = yield* Effect.fork(PartitionedBulkhead.protect(Effect.never, bulkhead, "a"))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const sameKey = yield* Effect.fork(Effect.either(PartitionedBulkhead.protect(Effect.void, bulkhead, "a")))
        yield* TestClock.adjust("1 second")
        const otherKey = yield* Effect.fork(Effect.either(PartitionedBulkhead.protect(Effect.void, bulkhead, "b")))
        yield* reach(bulkhead, { active: 1, queued: 2, keys: 2 })

        yield* TestClock.adjust("3999 millis")
        assert.isTrue(Option.isNone(yield* Fiber.poll(sameKey)))
        yield* TestClock.adjust("1 millis")
        assert.strictEqual(refusal(yield* Fiber.join(sameKey)), "MaxWait/perKey")
        assert.isTrue(Option.isNone(yield* Fiber.poll(otherKey)))
        yield* TestClock.adjust("1 second")
        assert.strictEqual(refusal(yield* Fiber.join(otherKey)), "MaxWait/total")
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 0, keys: 1 })
        assert.deepStrictEqual(yield* gauges(name), { active: 1, queued: 0, rejected: 2 })

        yield* Fiber.interrupt(holder)
        yield* assertIdle(bulkhead)
      }))

    it.effect("runs a queued call whose key gets a permit before maxWait runs out", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("max-wait-ok"),
          perKey: { maxConcurrent: 1, maxQueued: 1, maxWait: "5 seconds" },
          maxKeys: 4
        })
        const holder = yield* Effect.fork(
          PartitionedBulkhead.protect(Effect.sleep("3 seconds"), bulkhead, "a")
        )
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queued = yield* Effect.fork(PartitionedBulkhead.protect(Effect.succeed("ran"), bulkhead, "a"))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(holder)
        assert.strictEqual(yield* Fiber.join(queued), "ran")
        yield* TestClock.adjust("10 seconds")
        yield* assertIdle(bulkhead)
      }))
  })

  describe("interruption", () => {
    it.effect("an interrupted queued call leaves its key's queue, never runs, and its key is dropped", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("interrupt-queued"),
          perKey: { maxConcurrent: 1, maxQueued: 2 },
          total: { maxConcurrent: 1 },
          maxKeys: 4
        })
        let ran = false
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, "a"))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const queuedA = yield* Effect.fork(PartitionedBulkhead.protect(Effect.sync(() => (ran = true)), bulkhead, "a"))
        const queuedB = yield* Effect.fork(PartitionedBulkhead.protect(Effect.sync(() => (ran = true)), bulkhead, "b"))
        yield* reach(bulkhead, { active: 1, queued: 2, keys: 2 })

        assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(queuedB)))
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 1, keys: 1 })
        assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(queuedA)))
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 0, keys: 1 })
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        assert.isFalse(ran)
        yield* assertIdle(bulkhead)
      }))

    it.effect("an interrupted running call gives back its key's permit and the total's", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("interrupt-running"),
          perKey: { maxConcurrent: 1, maxQueued: 1 },
          total: { maxConcurrent: 1 },
          maxKeys: 4
        })
        const running = yield* Effect.fork(PartitionedBulkhead.protect(Effect.never, bulkhead, "a"))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const waiting = yield* Effect.fork(PartitionedBulkhead.protect(Effect.succeed("b ran"), bulkhead, "b"))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* Fiber.interrupt(running)
        assert.strictEqual(yield* Fiber.join(waiting), "b ran")
        yield* assertIdle(bulkhead)
      }))

    it.effect("leaves nothing held when a queued call is interrupted around the instant a permit is handed to it", () =>
      Effect.gen(function*() {
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("interrupt-grant"),
          perKey: { maxConcurrent: 1, maxQueued: 1, maxWait: "1 second" },
          total: { maxConcurrent: 1 },
          maxKeys: 4
        })
        // Interrupting after 0..31 scheduler turns lands before, during and after the queued call gets the permit.
        for (let turns = 0; turns < 32; turns++) {
          const gate = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, "a"))
          yield* reach(bulkhead, { active: 1, queued: 0 })
          const queued = yield* Effect.fork(
            PartitionedBulkhead.protect(Effect.yieldNow(), bulkhead, turns % 2 ? "a" : "b")
          )
          yield* reach(bulkhead, { active: 1, queued: 1 })
          yield* Deferred.succeed(gate, undefined)
          yield* Effect.repeatN(Effect.yieldNow(), turns)
          yield* Fiber.interrupt(queued)
          yield* Fiber.join(holder)
          yield* assertIdle(bulkhead)
        }
      }))
  })

  describe("errors", () => {
    it.effect("refuses with a transient rejection that names the bulkhead, the reason and the limit, never the key", () =>
      Effect.gen(function*() {
        const name = uniqueName("error")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: { maxConcurrent: 1 },
          total: { maxConcurrent: 4 },
          maxKeys: 1
        })
        const key = "tenant-4f1c-secret"
        const holder = yield* Effect.fork(PartitionedBulkhead.protect(Effect.never, bulkhead, key))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const full = yield* Effect.flip(PartitionedBulkhead.protect(Effect.void, bulkhead, key))
        const tooMany = yield* Effect.flip(PartitionedBulkhead.protect(Effect.void, bulkhead, `${key}-2`))
        yield* Fiber.interrupt(holder)

        assert.strictEqual(full._tag, "PartitionedBulkheadFullError")
        assert.deepStrictEqual([full.bulkhead, full.reason, full.limit], [name, "QueueFull", "perKey"])
        assert.deepStrictEqual([tooMany.reason, tooMany.limit], ["TooManyKeys", "maxKeys"])
        assert.deepStrictEqual(full.limits, bulkhead.limits)
        assert.strictEqual(
          full.message,
          `Partitioned bulkhead "${name}" is full: every permit of its key is in use and it does not queue (1 permit and no queue per key)`
        )
        assert.strictEqual(
          tooMany.message,
          `Partitioned bulkhead "${name}" takes no new key: it holds its maxKeys (1 key), each with a call running or queued`
        )
        for (const error of [full, tooMany]) {
          assert.isTrue(Failure.isTransient(error))
          assert.isTrue(Failure.isRejection(error))
          assert.isFalse(Failure.isTerminal(error))
          assert.notInclude(JSON.stringify(error), key)
          assert.notInclude(error.message, key)
          assert.notInclude(String(error), key)
        }
      }))

    it.effect("never trips a circuit breaker around it, in one region with it, and both see the call end", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("breaker"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        const bulkhead = yield* PartitionedBulkhead.make({
          name: uniqueName("under-breaker"),
          perKey: { maxConcurrent: 1 },
          maxKeys: 1
        })
        const call = (key: string, work: Effect.Effect<string>) =>
          work.pipe(PartitionedBulkhead.protect(bulkhead, key), CircuitBreaker.protect(breaker))
        const holder = yield* Effect.fork(call("a", Effect.never))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        for (const key of ["a", "b", "a"]) {
          const error = yield* Effect.flip(call(key, Effect.succeed("x")))
          assert.strictEqual(error._tag, "PartitionedBulkheadFullError")
        }
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* Fiber.interrupt(holder)
        yield* assertIdle(bulkhead)
        assert.strictEqual(yield* call("b", Effect.succeed("after")), "after")
        yield* assertIdle(bulkhead)
      }))

    it.effect("rejects invalid options with InvalidOptionsError naming the option", () =>
      Effect.gen(function*() {
        const invalid = (options: PartitionedBulkhead.PartitionedBulkhead.Options) =>
          Effect.map(Effect.flip(PartitionedBulkhead.make(options)), (error) => `${error.component} ${error.option}`)
        const perKey = { maxConcurrent: 1 }
        assert.strictEqual(yield* invalid({ name: "bad name", perKey, maxKeys: 1 }), "PartitionedBulkhead name")
        assert.strictEqual(
          yield* invalid({ name: "p", perKey: { maxConcurrent: 0 }, maxKeys: 1 }),
          `PartitionedBulkhead "p" perKey.maxConcurrent`
        )
        assert.strictEqual(
          yield* invalid({ name: "p", perKey: { maxConcurrent: 1, maxQueued: 1.5 }, maxKeys: 1 }),
          `PartitionedBulkhead "p" perKey.maxQueued`
        )
        assert.strictEqual(
          yield* invalid({ name: "p", perKey: { maxConcurrent: 1, maxWait: -1 }, maxKeys: 1 }),
          `PartitionedBulkhead "p" perKey.maxWait`
        )
        assert.strictEqual(
          yield* invalid({ name: "p", perKey, total: { maxConcurrent: 0 }, maxKeys: 1 }),
          `PartitionedBulkhead "p" total.maxConcurrent`
        )
        assert.strictEqual(yield* invalid({ name: "p", perKey, maxKeys: 0 }), `PartitionedBulkhead "p" maxKeys`)
        assert.strictEqual(yield* invalid({ name: "p", perKey, maxKeys: Infinity }), `PartitionedBulkhead "p" maxKeys`)

        const bulkhead = yield* PartitionedBulkhead.make({ name: "p", perKey, maxKeys: 3 })
        assert.deepStrictEqual(bulkhead.limits, {
          perKey: { maxConcurrent: 1, maxQueued: 0, maxWait: Duration.infinity },
          total: undefined,
          maxKeys: 3
        })
      }))
  })

  describe("metrics", () => {
    it.effect("reports active, queued and rejected calls under the bulkhead's name, and no key in any label", () =>
      Effect.gen(function*() {
        const name = uniqueName("metrics")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: { maxConcurrent: 1, maxQueued: 1 },
          total: { maxConcurrent: 2 },
          maxKeys: 3
        })
        const keys = ["key-label-probe-1", "key-label-probe-2", "key-label-probe-3", "key-label-probe-4"]
        const gate = yield* Deferred.make<void>()
        const fibers = yield* Effect.forkAll(
          [keys[0], keys[1], keys[0], keys[2]].map((key) =>
            Effect.either(PartitionedBulkhead.protect(Deferred.await(gate), bulkhead, key ?? ""))
          )
        )
        yield* reach(bulkhead, { active: 2, queued: 2, keys: 3 })
        yield* Effect.either(PartitionedBulkhead.protect(Effect.void, bulkhead, keys[3] ?? ""))
        assert.deepStrictEqual(yield* gauges(name), { active: 2, queued: 2, rejected: 1 })
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(fibers)
        assert.deepStrictEqual(yield* gauges(name), { active: 0, queued: 0, rejected: 1 })

        const series = (yield* Metric.snapshot).filter((pair) =>
          pair.metricKey.tags.some((tag) => tag.key === "bulkhead" && tag.value === name)
        )
        assert.deepStrictEqual(
          series.map((pair) => pair.metricKey.name).sort(),
          ["bulwark_bulkhead_active", "bulwark_bulkhead_queued", "bulwark_bulkhead_rejected_total"]
        )
        for (const pair of yield* Metric.snapshot) {
          for (const tag of pair.metricKey.tags) {
            assert.isFalse(keys.includes(tag.value), `${pair.metricKey.name}{${tag.key}="${tag.value}"}`)
          }
        }
        for (const pair of series) assert.deepStrictEqual(pair.metricKey.tags.map((tag) => tag.key), ["bulkhead"])
      }))
  })

  describe("registry", () => {
    const PerTenant = PartitionedBulkhead.layer({
      reports: { perKey: { maxConcurrent: 2 }, total: { maxConcurrent: 4 }, maxKeys: 10 },
      exports: { perKey: { maxConcurrent: 1, maxQueued: 3 }, maxKeys: 100 }
    })

    it.effect("builds one partitioned bulkhead per entry, protects by name and key, and fails for an unknown name", () =>
      Effect.gen(function*() {
        const registry = yield* PartitionedBulkhead.Registry
        assert.deepStrictEqual(registry.all.map((bulkhead) => bulkhead.name), ["reports", "exports"])
        const reports = yield* registry.get("reports")
        assert.deepStrictEqual(reports.limits.total, { maxConcurrent: 4 })
        assert.strictEqual(yield* Effect.succeed("ok").pipe(PartitionedBulkhead.protectNamed("reports", "acme")), "ok")
        assert.strictEqual(yield* PartitionedBulkhead.protectNamed(Effect.succeed(1), "exports", "acme"), 1)
        const missing = yield* Effect.flip(PartitionedBulkhead.protectNamed(Effect.void, "nope", "acme"))
        assert.strictEqual(missing._tag, "BulkheadNotFoundError")
        assert.deepStrictEqual(
          (yield* registry.snapshots).map((s) => [s.name, s.active, s.queued, s.keys]),
          [["reports", 0, 0, 0], ["exports", 0, 0, 0]]
        )
      }).pipe(Effect.provide(PerTenant)))

    it.effect("fails to build with an error naming the bulkhead and the option of an invalid entry", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Effect.scoped(Layer.build(PartitionedBulkhead.layer({
          good: { perKey: { maxConcurrent: 1 }, maxKeys: 1 },
          broken: { perKey: { maxConcurrent: 1 }, maxKeys: -1 }
        }))))
        assert.strictEqual(error._tag, "InvalidOptionsError")
        assert.deepStrictEqual([error.component, error.option], [`PartitionedBulkhead "broken"`, "maxKeys"])
      }))
  })
})
