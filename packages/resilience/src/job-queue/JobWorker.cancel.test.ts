/**
 * How a worker learns that a running job was cancelled, on the memory backend driven by TestClock: the one-second
 * check when the heartbeat is slower, the heartbeat itself when it is at least as frequent, and progress reports
 * timed by the backend's clock. The backend-independent contract is in test/job-queue/conformance.cancel.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as JobQueue from "./JobQueue.js"
import * as JobWorker from "./JobWorker.js"

const Task = JobQueue.define({ kind: "task", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })

/** Moves the TestClock forward in small steps, letting the worker's fibers run between them. */
const advance = (total: Duration.DurationInput, step: Duration.DurationInput = "50 millis") =>
  Effect.gen(function*() {
    const end = Duration.toMillis(total)
    const stride = Duration.toMillis(step)
    for (let done = 0; done < end; done += stride) {
      yield* TestClock.adjust(Math.min(stride, end - done))
      for (let i = 0; i < 20; i++) yield* Effect.yieldNow()
    }
  })

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.die(new Error(`no job ${id}`)), onSome: Effect.succeed }))
  )

/** A handler that reports progress, says it started, then hangs until interrupted, recording when. */
const hanging = Effect.gen(function*() {
  const started = yield* Deferred.make<void>()
  const interruptedAt = yield* Deferred.make<number>()
  const handler = JobWorker.handler(Task, () =>
    JobWorker.progress(10, "started").pipe(
      Effect.zipRight(Deferred.succeed(started, undefined)),
      Effect.zipRight(Effect.never),
      Effect.onInterrupt(() => Effect.flatMap(Clock.currentTimeMillis, (now) => Deferred.succeed(interruptedAt, now)))
    ))
  return { handler, started, interruptedAt }
})

describe("JobWorker cancellation on the TestClock", () => {
  it.effect("with a slow heartbeat, the one-second check interrupts a cancelled running job; it never runs again", () =>
    Effect.gen(function*() {
      const { handler, interruptedAt, started } = yield* hanging
      const worker = yield* JobWorker.make({ handlers: [handler] })
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      yield* advance("100 millis")
      assert.isTrue(yield* Deferred.isDone(started))
      const progress = Option.getOrThrow((yield* statusOf(id)).progress)
      assert.deepStrictEqual([progress.value, progress.message, progress.updatedAt.getTime()], [
        10,
        Option.some("started"),
        0
      ])

      yield* advance("1400 millis")
      const cancelledAt = yield* Clock.currentTimeMillis
      assert.deepInclude(yield* JobQueue.cancel(id), { _tag: "Cancelled", previous: "running" })
      yield* advance("300 millis")
      assert.isFalse(yield* Deferred.isDone(interruptedAt), "the heartbeat (every 10 s) has not run since")
      yield* advance("800 millis")
      const at = yield* Deferred.await(interruptedAt)
      assert.isTrue(at > cancelledAt && at - cancelledAt <= 1000, `interrupted ${at - cancelledAt} ms after`)
      assert.deepInclude(yield* worker.stats, { cancelled: 1, leasesLost: 0, lateOutcomesRejected: 0 })
      const info = yield* statusOf(id)
      assert.strictEqual(info.status, "cancelled")
      assert.deepStrictEqual(info.errors, [])
      // Nothing runs it again.
      yield* advance("40 seconds", "1 second")
      assert.deepInclude(yield* worker.stats, { claimed: 1, reclaimed: 0 })
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))

  it.effect("with a heartbeat at least as frequent, the heartbeat finds the cancellation (not a lost lease)", () =>
    Effect.gen(function*() {
      const { handler, interruptedAt, started } = yield* hanging
      const worker = yield* JobWorker.make({ handlers: [handler] })
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      yield* advance("100 millis")
      assert.isTrue(yield* Deferred.isDone(started))
      yield* advance("650 millis")
      const cancelledAt = yield* Clock.currentTimeMillis
      yield* JobQueue.cancel(id)
      const at = yield* advance("500 millis").pipe(Effect.zipRight(Deferred.await(interruptedAt)))
      assert.isTrue(at > cancelledAt && at - cancelledAt <= 400, `interrupted ${at - cancelledAt} ms after`)
      assert.deepInclude(yield* worker.stats, { cancelled: 1, leasesLost: 0 })
      assert.strictEqual((yield* statusOf(id)).status, "cancelled")
    }).pipe(
      Effect.scoped,
      Effect.provide(
        JobQueue.layerMemory({
          queues: { default: { visibilityTimeout: "1200 millis", heartbeatInterval: "400 millis" } }
        })
      )
    ))
})
