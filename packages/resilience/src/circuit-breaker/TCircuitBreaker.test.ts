/**
 * What only the STM breaker can do: steps composed into one transaction with
 * other breakers and with a bulkhead, consistent snapshots, waiting with
 * `STM.retry`, and transactions that roll back leaving no trace. What both
 * breakers share is tested against both (CircuitBreaker.model.test.ts,
 * CircuitBreaker.concurrency.test.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Config from "effect/Config"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as STM from "effect/STM"
import * as TestClock from "effect/TestClock"
import * as TBulkhead from "../bulkhead/TBulkhead.js"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as TCircuitBreaker from "./TCircuitBreaker.js"

type Step = "succeed" | "fail" | "isolate" | "close" | "disable" | "metricsOnly" | "trip" | "rollback"

let breakers = 0
const uniqueName = (label: string) => `tcb-test.${label}.${++breakers}`

const transient = new Failure.TransientError({ reason: "Transport", message: "connection reset" })

const gauge = (name: string, state: string) =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(Metrics.circuitBreakerState, "breaker", name), "state", state)),
    (value) => value.value
  )
const calls = (name: string, outcome: string) =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "breaker", name), "outcome", outcome)),
    (counter) => counter.count
  )

/** Yields until `condition` holds (the reporter fiber runs between yields); fails after 1,000 yields. */
const eventually = (condition: Effect.Effect<boolean>, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      if (yield* condition) return
      yield* Effect.yieldNow()
    }
    assert.fail(`never: ${what}`)
  })

/** One failure opens it for a second; then `permits` probes, all needed to close it. */
const oneStrike = (name: string, permits = 1) =>
  TCircuitBreaker.make({
    name,
    trip: CircuitBreaker.consecutiveFailures(1),
    openDuration: "1 second",
    halfOpen: { permits, closeAfter: permits }
  })

/** A failed call recorded in one transaction: opens a `oneStrike` breaker. */
const failOnce = (breaker: TCircuitBreaker.TCircuitBreaker) =>
  STM.flatMap(TCircuitBreaker.admit(breaker), (permit) => TCircuitBreaker.recordFailure(breaker, permit))

describe("TCircuitBreaker", () => {
  it.scoped("bad options fail at construction with InvalidOptionsError naming the option", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(TCircuitBreaker.make({ name: "payments", halfOpen: { permits: 0 } }))
      assert.strictEqual(error._tag, "InvalidOptionsError")
      assert.strictEqual(error.option, "halfOpen.permits")
      const badName = yield* Effect.flip(TCircuitBreaker.make({ name: "" }))
      assert.strictEqual(badName.option, "name")
    }))

  it.scoped("is a CircuitBreaker: protect, state, controls and the guards", () =>
    Effect.gen(function*() {
      const breaker = yield* oneStrike(uniqueName("plain"))
      assert.isTrue(TCircuitBreaker.isTCircuitBreaker(breaker))
      assert.isFalse(TCircuitBreaker.isTCircuitBreaker(yield* CircuitBreaker.make({ name: uniqueName("fast") })))
      assert.strictEqual(yield* Effect.succeed(1).pipe(TCircuitBreaker.protect(breaker)), 1)
      yield* Effect.either(CircuitBreaker.protect(Effect.fail(transient), breaker))
      assert.strictEqual(yield* breaker.state, "Open")
      const refused = yield* Effect.flip(CircuitBreaker.protect(Effect.succeed(1), breaker))
      assert.strictEqual(refused._tag, "CircuitOpenError")
      yield* breaker.reset
      assert.strictEqual(yield* breaker.state, "Closed")
    }))

  it.scoped.prop(
    "protect sees every change other transactions commit, and none they roll back",
    [FastCheck.array(
      FastCheck.constantFrom<Step>("succeed", "fail", "isolate", "close", "disable", "metricsOnly", "trip", "rollback"),
      { minLength: 10, maxLength: 60 }
    )],
    ([steps]) =>
      Effect.gen(function*() {
        const breaker = yield* TCircuitBreaker.make({
          name: uniqueName("known"),
          trip: CircuitBreaker.consecutiveFailures(2),
          openDuration: "1 minute"
        })
        for (const step of steps) {
          switch (step) {
            case "succeed":
            case "fail": {
              const committed = yield* STM.commit(TCircuitBreaker.state(breaker))
              const exit = yield* Effect.exit(
                CircuitBreaker.protect(step === "succeed" ? Effect.void : Effect.fail(transient), breaker)
              )
              const refused = Exit.isFailure(exit) && Exit.causeOption(exit).pipe(
                Option.flatMap(Cause.failureOption),
                Option.exists(CircuitBreaker.isCircuitOpenError)
              )
              assert.strictEqual(refused, committed === "Open" || committed === "ForcedOpen", `${step} in ${committed}`)
              break
            }
            case "isolate":
            case "close":
            case "disable":
            case "metricsOnly":
              yield* STM.commit(TCircuitBreaker[step](breaker))
              break
            case "trip":
              yield* Effect.either(STM.commit(STM.zipRight(failOnce(breaker), failOnce(breaker))))
              break
            case "rollback": {
              const before = yield* STM.commit(TCircuitBreaker.state(breaker))
              yield* Effect.either(STM.commit(STM.zipRight(TCircuitBreaker.isolate(breaker), STM.fail("rolled back"))))
              assert.strictEqual(yield* STM.commit(TCircuitBreaker.state(breaker)), before)
              break
            }
          }
        }
      }),
    { fastCheck: { numRuns: 50 } }
  )

  it.scoped("a transaction's steps are reported once it commits: metrics and events", () =>
    Effect.gen(function*() {
      const name = uniqueName("reported")
      const breaker = yield* oneStrike(name)
      const events = yield* breaker.subscribe
      yield* STM.commit(failOnce(breaker))
      assert.strictEqual(yield* STM.commit(TCircuitBreaker.state(breaker)), "Open")
      yield* eventually(Effect.map(gauge(name, "open"), (value) => value === 1), "the gauge shows open")
      assert.strictEqual(yield* gauge(name, "closed"), 0)
      assert.strictEqual(yield* calls(name, "failure"), 1)
      const seen = yield* Queue.takeAll(events)
      assert.deepStrictEqual(Array.from(seen, (event) => event._tag), ["CallRecorded", "StateChanged"])
    }))

  it.scoped("a transaction that rolls back leaves no trace: no permit taken, nothing counted", () =>
    Effect.gen(function*() {
      const name = uniqueName("rollback")
      const breaker = yield* oneStrike(name)
      yield* STM.commit(failOnce(breaker))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* breaker.state, "HalfOpen")
      // Takes the only probe slot, then fails: the slot is not taken.
      const failed = yield* Effect.either(STM.commit(STM.zipRight(TCircuitBreaker.admit(breaker), STM.fail("no"))))
      assert.isTrue(Either.isLeft(failed))
      const permit = yield* STM.commit(TCircuitBreaker.admit(breaker))
      yield* STM.commit(TCircuitBreaker.recordSuccess(breaker, permit))
      assert.strictEqual(yield* breaker.state, "Closed")
      yield* eventually(Effect.map(calls(name, "success"), (count) => count === 1), "one success counted")
      assert.strictEqual(yield* calls(name, "failure"), 1)
    }))

  it.scoped("a refusal fails the transaction, so another breaker can be tried in the same one", () =>
    Effect.gen(function*() {
      const primary = yield* oneStrike(uniqueName("primary"))
      const secondary = yield* oneStrike(uniqueName("secondary"))
      yield* STM.commit(failOnce(primary))
      const permit = yield* STM.commit(
        STM.orElse(TCircuitBreaker.admit(primary), () => TCircuitBreaker.admit(secondary))
      )
      assert.strictEqual(permit.breaker, secondary.name)
    }))

  it.scoped("several breakers read in one transaction are one consistent snapshot while other fibers trip them", () =>
    Effect.gen(function*() {
      const group = yield* Effect.forEach(["a", "b", "c", "d"], (label) => oneStrike(uniqueName(`snapshot-${label}`)))
      // Writers trip the whole group in one transaction (an open breaker refuses the call and stays open), or close it.
      const openAll = STM.commit(
        STM.forEach(group, (breaker) => STM.orElse(failOnce(breaker), () => STM.void), { discard: true })
      )
      const closeAll = STM.commit(STM.forEach(group, TCircuitBreaker.close, { discard: true }))
      // Two writers at different paces, so the reader finds the group open at some reads and closed at others.
      const writer = (every: number) =>
        Effect.fork(
          Effect.forEach(Array.from({ length: 300 }), (_, i) =>
            Effect.zipRight(i % every === 0 ? closeAll : openAll, Effect.yieldNow()), { discard: true })
        )
      const writers = yield* Effect.all([writer(3), writer(5)])
      const mixed = yield* Ref.make(0)
      const states = yield* Ref.make(new Set<string>())
      for (let i = 0; i < 400; i++) {
        const snapshot = yield* STM.commit(STM.forEach(group, TCircuitBreaker.state))
        yield* Ref.update(states, (seen) => seen.add(snapshot.join()))
        if (new Set(snapshot).size !== 1) yield* Ref.update(mixed, (n) => n + 1)
        yield* Effect.yieldNow()
      }
      yield* Fiber.joinAll(writers)
      assert.strictEqual(yield* Ref.get(mixed), 0)
      // Both kinds of snapshot were seen: the writers did run in between the reads.
      assert.isTrue((yield* Ref.get(states)).size >= 2, JSON.stringify([...(yield* Ref.get(states))]))
    }))

  it.scoped("a fiber waiting for a breaker to leave Open wakes when it half-opens, with no call", () =>
    Effect.gen(function*() {
      const breaker = yield* oneStrike(uniqueName("await"))
      yield* STM.commit(failOnce(breaker))
      const waiter = yield* Effect.fork(STM.commit(TCircuitBreaker.awaitNotOpen(breaker)))
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(waiter), "HalfOpen")
    }))

  it.scoped("a fiber waiting on a forced-open breaker wakes when an operator closes it", () =>
    Effect.gen(function*() {
      const breaker = yield* oneStrike(uniqueName("await-forced"))
      yield* STM.commit(TCircuitBreaker.isolate(breaker))
      const waiter = yield* Effect.fork(STM.commit(TCircuitBreaker.awaitNotOpen(breaker)))
      yield* TestClock.adjust("1 hour")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* STM.commit(TCircuitBreaker.close(breaker))
      assert.strictEqual(yield* Fiber.join(waiter), "Closed")
    }))

  it.scoped("a bulkhead permit and a breaker probe in one transaction: both or neither, under 1,000 racing fibers", () =>
    Effect.gen(function*() {
      const probes = 7
      const slots = 5
      const breaker = yield* oneStrike(uniqueName("atomic"), probes)
      const bulkhead = yield* TBulkhead.make({ name: uniqueName("atomic-bulkhead"), maxConcurrent: slots })
      yield* STM.commit(failOnce(breaker))
      yield* TestClock.adjust("1 second")
      const gate = yield* Deferred.make<void>()
      const both = STM.zipRight(TBulkhead.tryAcquire(bulkhead), TCircuitBreaker.admit(breaker))
      const racer = Effect.zipRight(Deferred.await(gate), Effect.either(STM.commit(both)))
      const all = yield* Effect.fork(
        Effect.forEach(Array.from({ length: 1000 }), () => racer, { concurrency: "unbounded" })
      )
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gate, undefined)
      const results = yield* Fiber.join(all)
      const admitted = results.filter(Either.isRight)
      // The bulkhead has fewer slots than the breaker has probes: it decides, and no probe is taken without a slot.
      assert.strictEqual(admitted.length, slots)
      const snapshot = yield* STM.commit(TBulkhead.snapshot(bulkhead))
      assert.strictEqual(snapshot.active, slots)
      // The breaker issued exactly `slots` probes: `probes - slots` are still free.
      const more = yield* Effect.forEach(
        Array.from({ length: probes }),
        () => Effect.either(STM.commit(TCircuitBreaker.admit(breaker)))
      )
      assert.strictEqual(more.filter(Either.isRight).length, probes - slots)
      // And a refusal by the breaker gives the bulkhead slot back.
      yield* STM.commit(TBulkhead.release(bulkhead))
      const refused = yield* Effect.exit(STM.commit(both))
      assert.isTrue(Exit.isFailure(refused))
      assert.strictEqual((yield* STM.commit(TBulkhead.snapshot(bulkhead))).active, slots - 1)
    }))

  it.scoped("the registry makes STM breakers once per name and reads every state in one transaction", () =>
    Effect.gen(function*() {
      const layer = TCircuitBreaker.layer({
        defaults: { openDuration: "5 seconds" },
        breakers: { [uniqueName("registry-a")]: { trip: CircuitBreaker.consecutiveFailures(1) } }
      })
      const context = yield* Layer.build(layer)
      const registry = yield* Effect.provide(TCircuitBreaker.Registry, context)
      const [first] = yield* registry.all
      assert.isDefined(first)
      assert.isTrue(TCircuitBreaker.isTCircuitBreaker(first))
      const again = yield* Effect.provide(TCircuitBreaker.named(first?.name ?? ""), context)
      assert.strictEqual(again, first)
      const created = yield* registry.get(uniqueName("registry-b"))
      assert.notStrictEqual(created, first)
      yield* Effect.either(CircuitBreaker.protect(Effect.fail(transient), again))
      assert.deepStrictEqual(yield* registry.states, [
        { name: again.name, state: "Open" },
        { name: created.name, state: "Closed" }
      ])
    }))

  it.scoped("layerConfig reads the breakers from Config, and bad values fail the layer", () =>
    Effect.gen(function*() {
      const name = uniqueName("config")
      const layer = TCircuitBreaker.layerConfig({
        breakers: { [name]: { halfOpen: { permits: Config.integer("PROBES") } } }
      })
      const error = yield* Effect.flip(
        Layer.build(layer).pipe(Effect.withConfigProvider(ConfigProvider.fromJson({ PROBES: 0 })))
      )
      assert.strictEqual(error._tag, "InvalidOptionsError")
      const good = yield* Layer.build(layer).pipe(Effect.withConfigProvider(ConfigProvider.fromJson({ PROBES: 2 })))
      const breaker = yield* Effect.provide(TCircuitBreaker.named(name), good)
      assert.isTrue(TCircuitBreaker.isTCircuitBreaker(breaker))
      yield* breaker.isolate
      assert.strictEqual(yield* STM.commit(TCircuitBreaker.state(breaker)), "ForcedOpen")
    }))
})
