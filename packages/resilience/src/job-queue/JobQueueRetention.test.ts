/**
 * Background retention on the TestClock (memory backend): the defaults (7 days for succeeded jobs, 30 days for
 * settled dead letters, a run every minute) and the layer. The per-backend behaviour of `prune` is in the
 * conformance suite (test/job-queue/conformance.ts).
 */
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as DeadLetter from "./DeadLetter.js"
import * as JobQueue from "./JobQueue.js"

const Task = JobQueue.define({ kind: "task", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })

const queueLayer = JobQueue.layerMemory({ queues: { default: {} }, jobs: [Task] })

const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
})

const store = Effect.map(JobQueue.JobQueue, (queue) => queue.store)

/** Runs one job to success (or to the dead-letter queue) through the store, as a worker would. */
const finish = (outcome: "succeed" | "die") =>
  Effect.gen(function*() {
    const jobs = yield* store
    const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
    const [claimed] = yield* jobs.claim({ queue: "default", limit: 1, owner: "w", lease: Duration.seconds(30) })
    if (claimed === undefined) return yield* Effect.die(new Error("nothing to claim"))
    if (outcome === "succeed") yield* jobs.complete([claimed.lease])
    else {
      yield* jobs.fail({
        lease: claimed.lease,
        error: { tag: "X", message: "x", cause: null, verdict: "terminal" },
        retryIn: Option.none()
      })
    }
    return id
  })

const exists = (id: string) => Effect.map(JobQueue.status(id), Option.isSome)

describe("JobQueue retention on the TestClock", () => {
  it.effect("by default keeps succeeded jobs 7 days and settled dead letters 30 days", () =>
    Effect.gen(function*() {
      const done = yield* finish("succeed")
      const dead = yield* finish("die")
      const pending = yield* finish("die")
      yield* DeadLetter.discard(dead)
      // Daily runs keep the TestClock's work small; the default interval is tested below.
      yield* JobQueue.startRetention({ interval: "1 day" })

      yield* TestClock.adjust("7 days")
      yield* settle
      assert.isTrue(yield* exists(done), "kept for 7 days")
      yield* TestClock.adjust("1 day")
      yield* settle
      assert.isFalse(yield* exists(done), "pruned after 7 days")
      assert.isTrue(Option.isSome(yield* DeadLetter.show(dead)))

      yield* TestClock.adjust("22 days")
      yield* settle
      assert.isTrue(Option.isSome(yield* DeadLetter.show(dead)), "kept for 30 days")
      yield* TestClock.adjust("1 day")
      yield* settle
      assert.isTrue(Option.isNone(yield* DeadLetter.show(dead)), "settled entries go after 30 days")
      assert.isFalse(yield* exists(dead))
      const stillPending = Option.map(yield* DeadLetter.show(pending), (entry) => entry.status)
      assert.deepStrictEqual(stillPending, Option.some("pending"))
      assert.isTrue(yield* exists(pending))
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))

  it.effect("runs every minute by default, the first run after one minute", () =>
    Effect.gen(function*() {
      const done = yield* finish("succeed")
      yield* JobQueue.startRetention({ keepSucceeded: 0 })
      yield* TestClock.adjust("59 seconds")
      yield* settle
      assert.isTrue(yield* exists(done))
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.isFalse(yield* exists(done))
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))

  it.effect("layerRetention prunes in the background with its own retention and interval", () =>
    Effect.gen(function*() {
      const done = yield* finish("succeed")
      yield* TestClock.adjust("59 minutes")
      yield* settle
      assert.isTrue(yield* exists(done), "no run before the interval")
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.isFalse(yield* exists(done))
    }).pipe(
      Effect.provide(
        JobQueue.layerRetention({ keepSucceeded: "1 minute", interval: "1 hour" }).pipe(Layer.provideMerge(queueLayer))
      )
    ))

  it.effect("a failed run is logged and the next one tries again", () =>
    Effect.gen(function*() {
      const queue = yield* JobQueue.JobQueue
      let calls = 0
      const flaky: JobQueue.JobStore = {
        ...queue.store,
        prune: (request) => {
          calls += 1
          return calls === 1
            ? Effect.fail(new JobQueue.JobStoreError({ operation: "pruneJobs", cause: "down" }))
            : queue.store.prune(request)
        }
      }
      const done = yield* finish("succeed")
      yield* JobQueue.startRetention({ keepSucceeded: 0, interval: "1 minute" }).pipe(
        Effect.provideService(JobQueue.JobQueue, { ...queue, store: flaky })
      )
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.strictEqual(calls, 1)
      assert.isTrue(yield* exists(done))
      yield* TestClock.adjust("1 minute")
      yield* settle
      assert.strictEqual(calls, 2)
      assert.isFalse(yield* exists(done))
    }).pipe(Effect.scoped, Effect.provide(queueLayer)))
})
