import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import type * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Bulkhead from "./Bulkhead.js"
import * as TBulkhead from "./TBulkhead.js"

let names = 0
const uniqueName = (label: string) => `test.concurrency.${label}.${++names}`

const metricValues = (name: string) =>
  Effect.all({
    active: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadActive, "bulkhead", name)), (s) => s.value),
    queued: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadQueued, "bulkhead", name)), (s) => s.value),
    rejected: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadRejected, "bulkhead", name)), (s) => s.count)
  })

/**
 * Every test runs for both variants. The fast bulkhead hands a freed permit
 * straight to the oldest waiter, so a snapshot never shows a free permit
 * while calls are queued; the STM bulkhead leaves a freed permit free until a
 * waiting transaction takes it, so that holds only for the fast one.
 */
interface Variant {
  readonly label: string
  readonly make: (
    options: Bulkhead.Bulkhead.Options
  ) => Effect.Effect<Bulkhead.Bulkhead, Failure.InvalidOptionsError, Scope.Scope>
  readonly handsOver: boolean
}

const variants: ReadonlyArray<Variant> = [
  { label: "Bulkhead", make: Bulkhead.make, handsOver: true },
  { label: "TBulkhead", make: TBulkhead.make, handsOver: false }
]

type Outcome = "succeed" | "fail" | "die"

const outcomeArb = FastCheck.constantFrom<Outcome>("succeed", "fail", "die")

const finish = (outcome: Outcome): Effect.Effect<void, string> =>
  outcome === "succeed" ? Effect.void : outcome === "fail" ? Effect.fail("boom") : Effect.dieMessage("defect")

/**
 * Watches a bulkhead from inside and outside: the number of bodies running at
 * once, and every snapshot taken, must respect the limits.
 */
class Observer {
  running = 0
  peakRunning = 0
  peakQueued = 0
  readonly violations: Array<string> = []
  readonly observe: Effect.Effect<void>

  constructor(readonly bulkhead: Bulkhead.Bulkhead, handsOver: boolean) {
    this.observe = Effect.map(Bulkhead.snapshot(bulkhead), (s) => {
      this.peakQueued = Math.max(this.peakQueued, s.queued)
      if (s.active > s.maxConcurrent) this.violations.push(`active ${s.active}`)
      if (s.queued > s.maxQueued) this.violations.push(`queued ${s.queued}`)
      if (s.active + s.available !== s.maxConcurrent) this.violations.push(`active ${s.active} + free ${s.available}`)
      if (handsOver && s.queued > 0 && s.available > 0) {
        this.violations.push(`queued ${s.queued} with ${s.available} free permits`)
      }
    })
  }

  body<A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    const enter = Effect.sync(() => {
      this.running++
      this.peakRunning = Math.max(this.peakRunning, this.running)
      if (this.running > this.bulkhead.limits.maxConcurrent) this.violations.push(`running ${this.running}`)
    })
    const exit = Effect.sync(() => {
      this.running--
    })
    return Effect.zipRight(enter, Effect.zipRight(this.observe, work)).pipe(Effect.ensuring(exit))
  }
}

const isFull = (exit: Exit.Exit<unknown, unknown>, reason?: Bulkhead.FullReason) =>
  Exit.isFailure(exit) &&
  Option.exists(Cause.failureOption(exit.cause), (e) =>
    Bulkhead.isBulkheadFullError(e) && (!reason || e.reason === reason))

for (const variant of variants) {
  describe(`${variant.label} under concurrency`, () => {
    it.scoped(
      "keeps at most 8 running and 16 queued through 10,000 calls with random interruptions, and leaks no permit",
      () =>
        Effect.gen(function*() {
          const name = uniqueName(`10k.${variant.label}`)
          const bulkhead = yield* variant.make({ name, maxConcurrent: 8, maxQueued: 16 })
          const observer = new Observer(bulkhead, variant.handsOver)
          const plan = FastCheck.sample(
            FastCheck.record({
              work: FastCheck.integer({ min: 0, max: 6 }),
              interruptAfter: FastCheck.option(FastCheck.integer({ min: 0, max: 8 }), { freq: 3, nil: undefined }),
              outcome: outcomeArb
            }),
            { seed: 20_240_521, numRuns: 10_000 }
          )
          const tally = { succeeded: 0, failed: 0, died: 0, rejected: 0, interrupted: 0 }

          const call = (step: (typeof plan)[number]) =>
            Effect.gen(function*() {
              const work = Effect.zipRight(Effect.repeatN(Effect.yieldNow(), step.work), finish(step.outcome))
              const fiber = yield* Effect.fork(Bulkhead.protect(observer.body(work), bulkhead))
              if (step.interruptAfter !== undefined) {
                yield* Effect.repeatN(Effect.yieldNow(), step.interruptAfter)
                yield* Fiber.interrupt(fiber)
              }
              const exit = yield* Fiber.await(fiber)
              if (Exit.isSuccess(exit)) tally.succeeded++
              else if (Exit.isInterrupted(exit)) tally.interrupted++
              else if (isFull(exit, "QueueFull")) tally.rejected++
              else if (Cause.isDie(exit.cause)) tally.died++
              else tally.failed++
            })

          const sampler = yield* Effect.fork(Effect.forever(Effect.zipRight(observer.observe, Effect.yieldNow())))
          yield* Effect.forEach(plan, call, { concurrency: 40, discard: true })
          yield* Fiber.interrupt(sampler)

          assert.deepStrictEqual(observer.violations, [])
          assert.strictEqual(observer.peakRunning, 8, "the load should fill every permit")
          assert.strictEqual(observer.peakQueued, 16, "the load should fill the queue")
          assert.strictEqual(
            tally.succeeded + tally.failed + tally.died + tally.rejected + tally.interrupted,
            10_000
          )
          assert.isAbove(tally.rejected, 0)
          assert.isAbove(tally.interrupted, 0)
          assert.isAbove(tally.died, 0)

          const snapshot = yield* bulkhead.snapshot
          assert.deepStrictEqual([snapshot.active, snapshot.queued, snapshot.available], [0, 0, 8])
          assert.deepStrictEqual(yield* metricValues(name), { active: 0, queued: 0, rejected: tally.rejected })
        }),
      60_000
    )

    /**
     * Few runs, each crowded: TestClock's cost grows with the number of sleeps,
     * not with what they exercise. So the calls are packed into a short span
     * (most wake-ups are ties between arrivals, releases, interruptions and
     * deadlines), and array sizes are not biased small, so that most runs fill
     * the permits and the queue.
     */
    const scenarioArb = FastCheck.record({
      maxConcurrent: FastCheck.integer({ min: 1, max: 4 }),
      maxQueued: FastCheck.integer({ min: 0, max: 5 }),
      maxWait: FastCheck.option(FastCheck.integer({ min: 0, max: 6 }), { nil: undefined }),
      calls: FastCheck.array(
        FastCheck.record({
          arrival: FastCheck.integer({ min: 0, max: 12 }),
          duration: FastCheck.integer({ min: 0, max: 6 }),
          interruptAfter: FastCheck.option(FastCheck.integer({ min: 0, max: 12 }), { freq: 4, nil: undefined }),
          outcome: outcomeArb
        }),
        { minLength: 1, maxLength: 24, size: "max" }
      )
    })

    it.scoped.prop(
      "respects its limits and its maxWait, and comes to rest with every permit back, whatever the arrivals",
      { scenario: scenarioArb },
      ({ scenario }) =>
        Effect.gen(function*() {
          const name = uniqueName(`prop.${variant.label}`)
          const bulkhead = yield* variant.make({
            name,
            maxConcurrent: scenario.maxConcurrent,
            maxQueued: scenario.maxQueued,
            ...(scenario.maxWait === undefined ? {} : { maxWait: Duration.millis(scenario.maxWait) })
          })
          const observer = new Observer(bulkhead, variant.handsOver)
          const records: Array<{ arrived: number; started?: number; ended: number; exit: Exit.Exit<void, unknown> }> =
            []

          const call = (step: (typeof scenario.calls)[number]) =>
            Effect.gen(function*() {
              yield* Effect.sleep(Duration.millis(step.arrival))
              const arrived = yield* Clock.currentTimeMillis
              let started: number | undefined
              const work = Effect.zipRight(
                Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => (started = now))),
                Effect.zipRight(Effect.sleep(Duration.millis(step.duration)), finish(step.outcome))
              )
              const fiber = yield* Effect.fork(Bulkhead.protect(observer.body(work), bulkhead))
              if (step.interruptAfter !== undefined) {
                yield* Effect.fork(
                  Effect.zipRight(Effect.sleep(Duration.millis(step.interruptAfter)), Fiber.interrupt(fiber))
                )
              }
              const exit = yield* Fiber.await(fiber)
              const ended = yield* Clock.currentTimeMillis
              records.push({ arrived, ended, exit, ...(started === undefined ? {} : { started }) })
            })

          const calls = yield* Effect.fork(Effect.forEach(scenario.calls, call, { concurrency: "unbounded" }))
          // From one wake-up to the next, so that a snapshot is taken after every step.
          for (let step = 0; step < 1_000 && Option.isNone(yield* Fiber.poll(calls)); step++) {
            yield* observer.observe
            const wakeUps = yield* TestClock.sleeps()
            const next = Chunk.reduce(wakeUps, Infinity, (min, instant) => Math.min(min, instant))
            if (next === Infinity) yield* Effect.yieldNow()
            else yield* TestClock.setTime(next)
          }
          yield* observer.observe
          assert.isTrue(Option.isSome(yield* Fiber.poll(calls)), "every call should end")
          yield* Fiber.join(calls)

          assert.deepStrictEqual(observer.violations, [])
          assert.strictEqual(records.length, scenario.calls.length)
          for (const record of records) {
            const waited = record.started === undefined ? undefined : record.started - record.arrived
            if (isFull(record.exit, "QueueFull")) assert.strictEqual(record.ended, record.arrived)
            if (isFull(record.exit, "MaxWait")) {
              assert.isDefined(scenario.maxWait)
              assert.strictEqual(record.ended - record.arrived, scenario.maxWait)
            }
            if (waited !== undefined && scenario.maxWait !== undefined) assert.isAtMost(waited, scenario.maxWait)
            if (waited !== undefined && scenario.maxQueued === 0) assert.strictEqual(waited, 0)
          }
          const snapshot = yield* bulkhead.snapshot
          assert.deepStrictEqual([snapshot.active, snapshot.queued, snapshot.available], [0, 0, scenario.maxConcurrent])
          assert.deepStrictEqual(yield* metricValues(name), {
            active: 0,
            queued: 0,
            rejected: records.filter((record) => isFull(record.exit)).length
          })
        }),
      { fastCheck: { numRuns: 16 } }
    )
  })
}
