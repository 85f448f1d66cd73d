import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as STM from "effect/STM"
import * as Supervisor from "effect/Supervisor"
import * as TRef from "effect/TRef"
import * as Metrics from "../Metrics.js"
import * as Bulkhead from "./Bulkhead.js"
import * as TBulkhead from "./TBulkhead.js"

let names = 0
const uniqueName = (label: string) => `test.t.${label}.${++names}`

const gauges = (name: string) =>
  Effect.all({
    active: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadActive, "bulkhead", name)), (s) => s.value),
    queued: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadQueued, "bulkhead", name)), (s) => s.value),
    rejected: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadRejected, "bulkhead", name)), (s) => s.count)
  })

/** The counts, read in a transaction. */
const counts = (bulkhead: TBulkhead.TBulkhead) =>
  STM.commit(STM.map(TBulkhead.snapshot(bulkhead), ({ active, available, queued }) => ({ active, queued, available })))

/** Waits, in a transaction that retries until then, for forked fibers to bring the bulkhead to the expected state. */
const reach = (bulkhead: TBulkhead.TBulkhead, expected: { readonly active: number; readonly queued: number }) =>
  STM.commit(
    STM.flatMap(
      TBulkhead.snapshot(bulkhead),
      ({ active, queued }) => active === expected.active && queued === expected.queued ? STM.void : STM.retry
    )
  )

/** Lets the reporter run until the gauges equal the snapshot, then checks they do. */
const converged = (bulkhead: TBulkhead.TBulkhead) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1_000; i++) {
      const snapshot = yield* bulkhead.snapshot
      const { active, queued } = yield* gauges(bulkhead.name)
      if (active === snapshot.active && queued === snapshot.queued) return snapshot
      yield* Effect.yieldNow()
    }
    const snapshot = yield* bulkhead.snapshot
    const { active, queued } = yield* gauges(bulkhead.name)
    assert.deepStrictEqual({ active, queued }, { active: snapshot.active, queued: snapshot.queued })
    return snapshot
  })

/** The bulkhead is at rest: every permit free, nobody queued, and the gauges agree. */
const assertIdle = (bulkhead: TBulkhead.TBulkhead) =>
  Effect.gen(function*() {
    assert.deepStrictEqual(yield* counts(bulkhead), { active: 0, queued: 0, available: bulkhead.limits.maxConcurrent })
    yield* converged(bulkhead)
  })

const fullReason = <A, E>(result: Either.Either<A, E>): Bulkhead.FullReason | undefined =>
  Either.isLeft(result) && Bulkhead.isBulkheadFullError(result.left) ? result.left.reason : undefined

describe("TBulkhead", () => {
  it.scoped("is a Bulkhead of its own kind: TBulkhead.protect is pipeable and data-first, the errors are Bulkhead's", () =>
    Effect.gen(function*() {
      const bulkhead = yield* TBulkhead.make({ name: uniqueName("dual"), maxConcurrent: 1 })
      assert.strictEqual(yield* Effect.succeed(1).pipe(TBulkhead.protect(bulkhead)), 1)
      assert.strictEqual(yield* TBulkhead.protect(Effect.succeed(2), bulkhead), 2)
      assert.isTrue(TBulkhead.isTBulkhead(bulkhead))
      assert.isFalse(TBulkhead.isTBulkhead(yield* Bulkhead.make({ name: uniqueName("fast"), maxConcurrent: 1 })))
      assert.isFalse(TBulkhead.isTBulkhead({ name: "x" }))
      assert.strictEqual(TBulkhead.BulkheadFullError, Bulkhead.BulkheadFullError)
    }))

  describe("metrics", () => {
    it.scoped("equal the snapshot at rest after your own transactions, once the reporter has run", () =>
      Effect.gen(function*() {
        const name = uniqueName("metrics-stm")
        const bulkhead = yield* TBulkhead.make({ name, maxConcurrent: 3 })
        yield* STM.commit(STM.zip(TBulkhead.acquire(bulkhead), TBulkhead.tryAcquire(bulkhead)))
        assert.strictEqual((yield* converged(bulkhead)).active, 2)

        // A transaction that fails commits nothing: no permit, no gauge move.
        const failed = yield* Effect.either(STM.commit(STM.zipRight(TBulkhead.acquire(bulkhead), STM.fail("no"))))
        assert.deepStrictEqual(failed, Either.left("no"))
        assert.strictEqual((yield* converged(bulkhead)).active, 2)

        // Mixed with protect, which moves the gauges itself.
        assert.strictEqual(yield* TBulkhead.protect(Effect.succeed("ok"), bulkhead), "ok")
        yield* STM.commit(STM.zip(TBulkhead.release(bulkhead), TBulkhead.release(bulkhead)))
        yield* assertIdle(bulkhead)
        assert.strictEqual((yield* gauges(name)).active, 0)
      }))

    it.effect("run the reporter in the scope of make: nothing is left running once it closes", () =>
      Effect.gen(function*() {
        const supervisor = yield* Supervisor.track
        const scope = yield* Scope.make()
        const bulkhead = yield* Effect.supervised(
          Scope.extend(TBulkhead.make({ name: uniqueName("scope"), maxConcurrent: 1 }), scope),
          supervisor
        )
        assert.strictEqual((yield* supervisor.value).length, 1)
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(yield* supervisor.value, [])
        // protect needs no fiber of its own.
        assert.strictEqual(yield* TBulkhead.protect(Effect.succeed("ok"), bulkhead), "ok")
      }))
  })

  describe("transactions", () => {
    it.scoped("tryAcquire takes a free permit, or fails with QueueFull and never queues", () =>
      Effect.gen(function*() {
        const bulkhead = yield* TBulkhead.make({ name: uniqueName("try"), maxConcurrent: 1, maxQueued: 4 })
        yield* STM.commit(TBulkhead.tryAcquire(bulkhead))
        const error = yield* Effect.flip(STM.commit(TBulkhead.tryAcquire(bulkhead)))
        assert.strictEqual(error.reason, "QueueFull")
        assert.strictEqual(error.bulkhead, bulkhead.name)
        assert.deepStrictEqual(yield* counts(bulkhead), { active: 1, queued: 0, available: 0 })
        // A permit taken in a transaction counts against protect, and its release lets a queued call run.
        const queued = yield* Effect.fork(TBulkhead.protect(Effect.succeed("ran"), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 1 })
        yield* STM.commit(TBulkhead.release(bulkhead))
        assert.strictEqual(yield* Fiber.join(queued), "ran")
        yield* assertIdle(bulkhead)
      }))

    it.scoped("two tryAcquire in one transaction take both permits or neither", () =>
      Effect.gen(function*() {
        const a = yield* TBulkhead.make({ name: uniqueName("zip-a"), maxConcurrent: 1 })
        const b = yield* TBulkhead.make({ name: uniqueName("zip-b"), maxConcurrent: 1 })
        const both = STM.commit(STM.zip(TBulkhead.tryAcquire(a), TBulkhead.tryAcquire(b)))
        const releaseBoth = STM.commit(STM.zip(TBulkhead.release(a), TBulkhead.release(b)))

        yield* both
        assert.deepStrictEqual([(yield* counts(a)).active, (yield* counts(b)).active], [1, 1])
        yield* releaseBoth

        // b is taken: the transaction fails, and a keeps its permit free.
        yield* STM.commit(TBulkhead.tryAcquire(b))
        const refused = yield* Effect.either(both)
        assert.strictEqual(fullReason(refused), "QueueFull")
        assert.deepStrictEqual(yield* counts(a), { active: 0, queued: 0, available: 1 })
        assert.deepStrictEqual(yield* counts(b), { active: 1, queued: 0, available: 0 })
        yield* STM.commit(TBulkhead.release(b))
        yield* assertIdle(a)
        yield* assertIdle(b)
      }))

    it.scoped("acquire waits until a permit is given back, and the snapshot reads the counts in the transaction", () =>
      Effect.gen(function*() {
        const bulkhead = yield* TBulkhead.make({ name: uniqueName("acquire"), maxConcurrent: 1 })
        const taken = yield* TRef.make(0)
        const gate = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(TBulkhead.protect(Deferred.await(gate), bulkhead))
        yield* reach(bulkhead, { active: 1, queued: 0 })
        const waiter = yield* Effect.fork(
          STM.commit(
            STM.zipRight(
              TBulkhead.acquire(bulkhead),
              STM.zipRight(TRef.update(taken, (n) => n + 1), TBulkhead.snapshot(bulkhead))
            )
          )
        )
        yield* Effect.repeatN(Effect.yieldNow(), 10)
        assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
        assert.strictEqual(yield* TRef.get(taken), 0)

        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(holder)
        const seen = yield* Fiber.join(waiter)
        assert.deepInclude(seen, { active: 1, available: 0, queued: 0, maxConcurrent: 1 })
        assert.strictEqual(yield* TRef.get(taken), 1)
        assert.strictEqual((yield* converged(bulkhead)).active, 1)
        yield* STM.commit(TBulkhead.release(bulkhead))
        yield* assertIdle(bulkhead)
      }))

    it.scoped("release without a permit held is a defect, and changes nothing", () =>
      Effect.gen(function*() {
        const bulkhead = yield* TBulkhead.make({ name: uniqueName("release"), maxConcurrent: 2 })
        const exit = yield* Effect.exit(STM.commit(TBulkhead.release(bulkhead)))
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        yield* assertIdle(bulkhead)
      }))
  })

  describe("Registry", () => {
    it.effect("is its own service, beside the fast bulkheads' registry", () =>
      Effect.gen(function*() {
        const fast = yield* Bulkhead.Registry
        const stm = yield* TBulkhead.Registry
        assert.isFalse(TBulkhead.isTBulkhead(yield* fast.get("shared")))
        assert.isTrue(TBulkhead.isTBulkhead(yield* stm.get("shared")))
      }).pipe(
        Effect.provide(
          Layer.merge(
            Bulkhead.layer({ shared: { maxConcurrent: 1 } }),
            TBulkhead.layer({ shared: { maxConcurrent: 1 } })
          )
        )
      ))

    it.effect("reads the bulkheads from Config, as Bulkhead.layerConfig does", () =>
      Effect.gen(function*() {
        const provider = ConfigProvider.fromMap(
          new Map([["PAYMENTS_MAX_CONCURRENT", "4"], ["PAYMENTS_MAX_QUEUED", "10"], ["PAYMENTS_MAX_WAIT", "500"]]),
          { pathDelim: "_" }
        )
        const Bulkheads = TBulkhead.layerConfig({ payments: TBulkhead.config("payments") })
        yield* Effect.gen(function*() {
          const bulkhead = yield* Effect.flatMap(TBulkhead.Registry, (registry) => registry.get("payments"))
          assert.isTrue(TBulkhead.isTBulkhead(bulkhead))
          assert.deepInclude(bulkhead.limits, { maxConcurrent: 4, maxQueued: 10 })
          assert.isTrue(Duration.equals(bulkhead.limits.maxWait, Duration.millis(500)))
          assert.strictEqual(yield* Effect.succeed("ok").pipe(TBulkhead.protectNamed("payments")), "ok")
        }).pipe(Effect.provide(Bulkheads), Effect.withConfigProvider(provider))

        const invalid = yield* Effect.either(
          Effect.provide(TBulkhead.Registry, Bulkheads).pipe(
            Effect.withConfigProvider(ConfigProvider.fromMap(new Map([["PAYMENTS_MAX_CONCURRENT", "0"]]), {
              pathDelim: "_"
            }))
          )
        )
        assert(Either.isLeft(invalid) && !ConfigError.isConfigError(invalid.left))
        assert.strictEqual(invalid.left.component, `Bulkhead "payments" (config PAYMENTS_MAX_CONCURRENT)`)
        assert.strictEqual(invalid.left.option, "maxConcurrent")
      }))
  })
})
