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
import * as TestClock from "effect/TestClock"
import * as Metrics from "../Metrics.js"
import * as PartitionedBulkhead from "./PartitionedBulkhead.js"

let names = 0
const uniqueName = (label: string) => `test.partitioned.concurrency.${label}.${++names}`

const metricValues = (name: string) =>
  Effect.all({
    active: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadActive, "bulkhead", name)), (s) => s.value),
    queued: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadQueued, "bulkhead", name)), (s) => s.value),
    rejected: Effect.map(Metric.value(Metric.tagged(Metrics.bulkheadRejected, "bulkhead", name)), (s) => s.count)
  })

type Outcome = "succeed" | "fail" | "die"

const outcomeArb = FastCheck.constantFrom<Outcome>("succeed", "fail", "die")

const finish = (outcome: Outcome): Effect.Effect<void, string> =>
  outcome === "succeed" ? Effect.void : outcome === "fail" ? Effect.fail("boom") : Effect.dieMessage("defect")

/**
 * Watches a partitioned bulkhead from inside (bodies running, per key and in
 * all) and outside (snapshots of the whole and of each key): every reading
 * must respect the limits, and the bulkhead must be work-conserving: a key
 * never has a call queued while both its own permits and the total's are
 * free (a freed permit is handed over in the step that frees it).
 */
class Observer {
  private readonly running = new Map<string, number>()
  private runningTotal = 0
  peakRunning = 0
  peakKeys = 0
  peakQueued = 0
  readonly violations: Array<string> = []
  readonly observe: Effect.Effect<void>

  constructor(readonly bulkhead: PartitionedBulkhead.PartitionedBulkhead, keys: ReadonlyArray<string>) {
    const { maxKeys, perKey, total } = bulkhead.limits
    const totalMax = total?.maxConcurrent ?? Infinity
    this.observe = Effect.gen(this, function*() {
      const s = yield* bulkhead.snapshot
      this.peakKeys = Math.max(this.peakKeys, s.keys)
      this.peakQueued = Math.max(this.peakQueued, s.queued)
      if (s.active > totalMax) this.violations.push(`active ${s.active}`)
      if (s.keys > maxKeys) this.violations.push(`keys ${s.keys}`)
      if (s.keys === 0 && (s.active > 0 || s.queued > 0)) this.violations.push(`no key, active ${s.active}`)
      let active = 0
      let queued = 0
      for (const key of keys) {
        const k = yield* bulkhead.snapshotKey(key)
        active += k.active
        queued += k.queued
        if (k.active > perKey.maxConcurrent) this.violations.push(`${key} active ${k.active}`)
        if (k.queued > perKey.maxQueued) this.violations.push(`${key} queued ${k.queued}`)
        if (k.queued > 0 && k.active < perKey.maxConcurrent && s.active < totalMax) {
          this.violations.push(`${key} queued ${k.queued} with free permits`)
        }
      }
      if (active !== s.active || queued !== s.queued) this.violations.push(`keys sum ${active}/${queued}`)
    })
  }

  body<A, E, R>(key: string, work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    const { perKey, total } = this.bulkhead.limits
    const enter = Effect.sync(() => {
      const running = (this.running.get(key) ?? 0) + 1
      this.running.set(key, running)
      this.runningTotal++
      this.peakRunning = Math.max(this.peakRunning, this.runningTotal)
      if (running > perKey.maxConcurrent) this.violations.push(`${key} running ${running}`)
      if (this.runningTotal > (total?.maxConcurrent ?? Infinity)) this.violations.push(`running ${this.runningTotal}`)
    })
    const exit = Effect.sync(() => {
      this.running.set(key, (this.running.get(key) ?? 0) - 1)
      this.runningTotal--
    })
    return Effect.zipRight(enter, Effect.zipRight(this.observe, work)).pipe(Effect.ensuring(exit))
  }
}

const refusal = (exit: Exit.Exit<unknown, unknown>): PartitionedBulkhead.FullReason | undefined => {
  if (Exit.isSuccess(exit)) return undefined
  const failure = Cause.failureOption(exit.cause)
  return Option.isSome(failure) && PartitionedBulkhead.isPartitionedBulkheadFullError(failure.value)
    ? failure.value.reason
    : undefined
}

describe("PartitionedBulkhead under concurrency", () => {
  it.scoped(
    "keeps every key, the total and the key table within bounds through 10,000 calls with random keys and interruptions, and leaks nothing",
    () =>
      Effect.gen(function*() {
        const name = uniqueName("10k")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: { maxConcurrent: 3, maxQueued: 4 },
          total: { maxConcurrent: 8 },
          maxKeys: 12
        })
        const keys = Array.from({ length: 20 }, (_, i) => `tenant-${i}`)
        const observer = new Observer(bulkhead, keys)
        const plan = FastCheck.sample(
          FastCheck.record({
            key: FastCheck.constantFrom(...keys),
            work: FastCheck.integer({ min: 0, max: 6 }),
            interruptAfter: FastCheck.option(FastCheck.integer({ min: 0, max: 8 }), { freq: 3, nil: undefined }),
            outcome: outcomeArb
          }),
          { seed: 20_250_118, numRuns: 10_000 }
        )
        const tally = { succeeded: 0, failed: 0, died: 0, rejected: 0, tooManyKeys: 0, interrupted: 0 }

        const call = (step: (typeof plan)[number]) =>
          Effect.gen(function*() {
            const work = Effect.zipRight(Effect.repeatN(Effect.yieldNow(), step.work), finish(step.outcome))
            const fiber = yield* Effect.fork(
              PartitionedBulkhead.protect(observer.body(step.key, work), bulkhead, step.key)
            )
            if (step.interruptAfter !== undefined) {
              yield* Effect.repeatN(Effect.yieldNow(), step.interruptAfter)
              yield* Fiber.interrupt(fiber)
            }
            const exit = yield* Fiber.await(fiber)
            const refused = refusal(exit)
            if (Exit.isSuccess(exit)) tally.succeeded++
            else if (Exit.isInterrupted(exit)) tally.interrupted++
            else if (refused === "TooManyKeys") tally.tooManyKeys++
            else if (refused !== undefined) tally.rejected++
            else if (Cause.isDie(exit.cause)) tally.died++
            else tally.failed++
          })

        const sampler = yield* Effect.fork(Effect.forever(Effect.zipRight(observer.observe, Effect.yieldNow())))
        yield* Effect.forEach(plan, call, { concurrency: 60, discard: true })
        yield* Fiber.interrupt(sampler)

        assert.deepStrictEqual(observer.violations.slice(0, 10), [])
        assert.strictEqual(observer.peakRunning, 8, "the load should fill the total")
        assert.strictEqual(observer.peakKeys, 12, "the load should fill the key table")
        assert.isAbove(observer.peakQueued, 0)
        assert.strictEqual(Object.values(tally).reduce((a, b) => a + b, 0), 10_000)
        assert.isAbove(tally.rejected, 0)
        assert.isAbove(tally.tooManyKeys, 0)
        assert.isAbove(tally.interrupted, 0)

        const s = yield* bulkhead.snapshot
        assert.deepStrictEqual([s.active, s.queued, s.keys], [0, 0, 0])
        assert.deepStrictEqual(yield* metricValues(name), {
          active: 0,
          queued: 0,
          rejected: tally.rejected + tally.tooManyKeys
        })
      }),
    60_000
  )

  /** Crowded runs on the TestClock, as the bulkhead's own property test (see `Bulkhead.concurrency.test.ts`). */
  const scenarioArb = FastCheck.record({
    perKey: FastCheck.integer({ min: 1, max: 3 }),
    maxQueued: FastCheck.integer({ min: 0, max: 3 }),
    maxWait: FastCheck.option(FastCheck.integer({ min: 0, max: 6 }), { nil: undefined }),
    total: FastCheck.option(FastCheck.integer({ min: 1, max: 4 }), { nil: undefined }),
    maxKeys: FastCheck.integer({ min: 1, max: 4 }),
    calls: FastCheck.array(
      FastCheck.record({
        key: FastCheck.integer({ min: 0, max: 5 }),
        arrival: FastCheck.integer({ min: 0, max: 12 }),
        duration: FastCheck.integer({ min: 0, max: 6 }),
        interruptAfter: FastCheck.option(FastCheck.integer({ min: 0, max: 12 }), { freq: 4, nil: undefined }),
        outcome: outcomeArb
      }),
      { minLength: 1, maxLength: 24, size: "max" }
    )
  })

  it.scoped.prop(
    "respects every limit and maxWait, never idles a permit a queued call could use, and comes to rest empty",
    { scenario: scenarioArb },
    ({ scenario }) =>
      Effect.gen(function*() {
        const name = uniqueName("prop")
        const bulkhead = yield* PartitionedBulkhead.make({
          name,
          perKey: {
            maxConcurrent: scenario.perKey,
            maxQueued: scenario.maxQueued,
            ...(scenario.maxWait === undefined ? {} : { maxWait: Duration.millis(scenario.maxWait) })
          },
          ...(scenario.total === undefined ? {} : { total: { maxConcurrent: scenario.total } }),
          maxKeys: scenario.maxKeys
        })
        const keys = Array.from({ length: 6 }, (_, i) => `k${i}`)
        const observer = new Observer(bulkhead, keys)
        const records: Array<{ arrived: number; started?: number; ended: number; exit: Exit.Exit<void, unknown> }> = []

        const call = (step: (typeof scenario.calls)[number]) =>
          Effect.gen(function*() {
            yield* Effect.sleep(Duration.millis(step.arrival))
            const key = `k${step.key}`
            const arrived = yield* Clock.currentTimeMillis
            let started: number | undefined
            const work = Effect.zipRight(
              Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => (started = now))),
              Effect.zipRight(Effect.sleep(Duration.millis(step.duration)), finish(step.outcome))
            )
            const fiber = yield* Effect.fork(PartitionedBulkhead.protect(observer.body(key, work), bulkhead, key))
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
          const reason = refusal(record.exit)
          const waited = record.started === undefined ? undefined : record.started - record.arrived
          if (reason === "QueueFull" || reason === "TooManyKeys") assert.strictEqual(record.ended, record.arrived)
          if (reason === "MaxWait") {
            assert.isDefined(scenario.maxWait)
            assert.strictEqual(record.ended - record.arrived, scenario.maxWait)
          }
          if (waited !== undefined && scenario.maxWait !== undefined) assert.isAtMost(waited, scenario.maxWait)
          if (waited !== undefined && scenario.maxQueued === 0) assert.strictEqual(waited, 0)
        }
        const s = yield* bulkhead.snapshot
        assert.deepStrictEqual([s.active, s.queued, s.keys], [0, 0, 0])
        assert.deepStrictEqual(yield* metricValues(name), {
          active: 0,
          queued: 0,
          rejected: records.filter((record) => refusal(record.exit) !== undefined).length
        })
      }),
    { fastCheck: { numRuns: 24 } }
  )
})
