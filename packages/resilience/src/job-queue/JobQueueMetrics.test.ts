/**
 * The queue metrics reporter on the TestClock (memory backend): reporters of one store share one reader, which
 * reads when a reporter starts, then at the shortest interval asked for; a process without the store's reporter lock reads nothing; a reader
 * that stops reading sets its gauges back to 0; a queue that no longer appears goes back to 0. Workers report by
 * default. Both backends (and the PostgreSQL lock across processes) are in test/job-queue/.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Metrics from "../Metrics.js"
import * as JobQueue from "./JobQueue.js"
import * as JobWorker from "./JobWorker.js"

// Queue names of their own: the gauges are process-wide.
const Task = JobQueue.define({ kind: "metrics-task", queue: "metrics-a", payload: Schema.Struct({ n: Schema.Number }) })

const queueLayer = JobQueue.layerMemory({ queues: { "metrics-a": {}, "metrics-b": {} }, jobs: [Task] })

const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

const gauge = (metric: Metric.Metric.Gauge<number>, labels: Record<string, string>) =>
  Metric.value(
    Metric.taggedWithLabels(metric, Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value)))
  ).pipe(Effect.map((state) => state.value))

const ready = (queue: string) => gauge(Metrics.jobQueueDepth, { queue, state: "ready" })

/** The service on a store whose reads are counted and whose reporter lock is `held()`. */
const instrumented = (held: () => boolean) =>
  Effect.gen(function*() {
    const queue = yield* JobQueue.JobQueue
    const counter = { reads: 0 }
    const store: JobQueue.JobStore = {
      ...queue.store,
      deadLetterCounts: Effect.zipRight(Effect.sync(() => counter.reads++), queue.store.deadLetterCounts),
      reporterLock: Effect.succeed({ held: () => Effect.sync(held) })
    }
    return { service: { ...queue, store }, counter }
  })

const report = (service: JobQueue.JobQueue, interval: Duration.DurationInput, scope: Scope.Scope) =>
  JobQueue.reportMetrics({ interval }).pipe(
    Effect.provideService(JobQueue.JobQueue, service),
    Scope.extend(scope)
  )

describe("JobQueue.reportMetrics on the TestClock", () => {
  it.effect("reporters of one store share one reader, at the shortest interval; the last to leave zeroes", () =>
    Effect.gen(function*() {
      const { counter, service } = yield* instrumented(() => true)
      yield* JobQueue.enqueueMany([JobQueue.job(Task, { n: 1 }), JobQueue.job(Task, { n: 2 })])
      const slow = yield* Scope.make()
      const fast = yield* Scope.make()
      yield* report(service, "10 seconds", slow)
      yield* report(service, "1 second", fast)
      yield* settle
      assert.strictEqual(counter.reads, 2, "a reporter reads at its start")
      assert.strictEqual(yield* ready("metrics-a"), 2)
      for (let second = 1; second <= 10; second++) {
        yield* TestClock.adjust("1 second")
        yield* settle
      }
      assert.strictEqual(counter.reads, 12, "then every second, the 10-second reporter never adding a read")
      yield* Scope.close(fast, Exit.void)
      yield* TestClock.adjust("9 seconds")
      yield* settle
      assert.strictEqual(counter.reads, 12, "the 10-second reporter waits its interval")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(counter.reads, 13)
      assert.strictEqual(yield* ready("metrics-a"), 2)
      yield* Scope.close(slow, Exit.void)
      assert.strictEqual(yield* ready("metrics-a"), 0, "no reader left in this process: its gauges go to 0")
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))

  it.effect("a process without the reporter lock reads nothing; one that loses it zeroes its gauges", () =>
    Effect.gen(function*() {
      let held = false
      const { counter, service } = yield* instrumented(() => held)
      yield* JobQueue.enqueue(Task, { n: 1 }, { queue: "metrics-b" })
      yield* report(service, "1 second", yield* Effect.scope)
      yield* TestClock.adjust("5 seconds")
      yield* settle
      assert.strictEqual(counter.reads, 0)
      held = true
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(counter.reads, 1)
      assert.strictEqual(yield* ready("metrics-b"), 1)
      held = false
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(counter.reads, 1)
      assert.strictEqual(yield* ready("metrics-b"), 0, "another process reads now: max by (queue) takes its value")
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))

  it.effect("sets the oldest ready age, paused and dead letters by status; a vanished series goes back to 0", () =>
    Effect.gen(function*() {
      const queue = yield* JobQueue.JobQueue
      yield* JobQueue.enqueue(Task, { n: 1 })
      yield* TestClock.adjust("90 seconds")
      const [claimed] = yield* queue.store.claim({
        queue: "metrics-a",
        limit: 1,
        owner: "w",
        lease: Duration.seconds(30)
      })
      yield* JobQueue.enqueueMany([JobQueue.job(Task, { n: 2 }), JobQueue.job(Task, { n: 3 })])
      if (claimed === undefined) return assert.fail("nothing claimed")
      yield* queue.store.fail({
        lease: claimed.lease,
        error: { tag: "X", message: "x", cause: null, verdict: "terminal" },
        retryIn: Option.none()
      })
      yield* JobQueue.pause("metrics-b")
      yield* JobQueue.reportMetrics({ interval: "1 second" })
      yield* TestClock.adjust("30 seconds")
      yield* settle
      assert.strictEqual(yield* ready("metrics-a"), 2)
      assert.strictEqual(yield* gauge(Metrics.jobQueueOldestReady, { queue: "metrics-a" }), 30)
      assert.strictEqual(yield* gauge(Metrics.jobQueuePaused, { queue: "metrics-b" }), 1)
      assert.strictEqual(yield* gauge(Metrics.jobQueuePaused, { queue: "metrics-a" }), 0)
      const entries = (status: string) => gauge(Metrics.deadLetterEntries, { queue: "metrics-a", status })
      assert.deepStrictEqual([yield* entries("pending"), yield* entries("replayed"), yield* entries("discarded")], [
        1,
        0,
        0
      ])
      yield* queue.store.discardDeadLetters([claimed.lease.id])
      yield* JobQueue.resume("metrics-b")
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.deepStrictEqual([yield* entries("pending"), yield* entries("discarded")], [0, 1])
      assert.strictEqual(yield* gauge(Metrics.deadLetterDepth, { queue: "metrics-a" }), 0)
      assert.strictEqual(yield* gauge(Metrics.jobQueuePaused, { queue: "metrics-b" }), 0)
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))

  it.effect("workers report the gauges by default, and not with reportMetrics: false", () =>
    Effect.gen(function*() {
      yield* JobQueue.enqueueMany([JobQueue.job(Task, { n: 1 }, { queue: "metrics-b" })])
      const quiet = yield* Scope.make()
      yield* JobWorker.make<never>({ handlers: [], queues: ["metrics-a"], reportMetrics: false }).pipe(
        Scope.extend(quiet)
      )
      yield* settle
      assert.strictEqual(yield* ready("metrics-b"), 0)
      yield* Scope.close(quiet, Exit.void)
      yield* JobWorker.make<never>({ handlers: [], queues: ["metrics-a"] })
      yield* settle
      assert.strictEqual(yield* ready("metrics-b"), 1, "read at the worker's start")
      const invalid = yield* Effect.exit(
        JobWorker.make<never>({ handlers: [], queues: ["metrics-a"], reportMetrics: { interval: 0 } })
      )
      assert.isTrue(Exit.isFailure(invalid))
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))
})
