/**
 * Time-dependent worker behaviour on the memory backend, driven by TestClock:
 * backoff delays, reclaiming lapsed leases (and not a moment earlier),
 * heartbeats over a long job, the grace period of a shutdown and the queue's
 * `maxRunTime`. The backend-independent contract is in
 * test/job-queue/conformance.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import * as JobQueue from "./JobQueue.js"
import * as JobWorker from "./JobWorker.js"

const Task = JobQueue.define({ kind: "task", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })

class Boom extends Data.TaggedError("Boom")<{ readonly message: string }> {}

/** Moves the TestClock forward in small steps, letting the worker's fibers run between them. */
const advance = (total: Duration.DurationInput, step: Duration.DurationInput = "100 millis") =>
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

const settle = Effect.gen(function*() {
  for (let i = 0; i < 50; i++) yield* Effect.yieldNow()
})

describe("JobWorker on the TestClock", () => {
  it.effect("waits base·2^(n-1) between attempts (no jitter), then dead-letters after the last", () =>
    Effect.gen(function*() {
      const starts: Array<number> = []
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      yield* JobWorker.make({
        handlers: [
          JobWorker.handler(Task, () =>
            Clock.currentTimeMillis.pipe(
              Effect.flatMap((now) => {
                starts.push(now)
                return Effect.fail(new Boom({ message: "again" }))
              })
            ))
        ]
      })
      yield* settle
      assert.deepStrictEqual(starts, [0])
      // 5 s, 10 s, 20 s, 40 s: each retry starts exactly when due (the poll interval is 1 s).
      yield* advance("4999 millis")
      assert.strictEqual(starts.length, 1, "not before 5 s")
      yield* advance("71 seconds", "250 millis")
      const gaps = starts.slice(1).map((start, n) => start - (starts[n] ?? 0))
      assert.strictEqual(starts.length, 5)
      gaps.forEach((gap, n) => {
        const expected = 5000 * 2 ** n
        assert.isTrue(gap >= expected && gap <= expected + 1000, `retry ${n + 1}: ${gap} ms`)
      })
      const dead = yield* statusOf(id)
      assert.strictEqual(dead.status, "dead")
      assert.strictEqual(dead.attempts, 5)
    }).pipe(
      Effect.scoped,
      Effect.provide(JobQueue.layerMemory({ queues: { default: { retry: { jitter: 0 } } } }))
    ))

  it.effect("caps the delay and keeps jittered delays within ±25 %", () =>
    Effect.gen(function*() {
      const ids = yield* JobQueue.enqueueMany(Array.from({ length: 30 }, (_, n) => JobQueue.job(Task, { n })))
      yield* JobWorker.make({ handlers: [JobWorker.handler(Task, () => Effect.fail(new Boom({ message: "x" })))] })
      yield* settle
      for (const { id } of ids) {
        const info = yield* statusOf(id)
        assert.strictEqual(info.status, "retrying")
        const delay = info.runAt.getTime() - (info.errors[0]?.failedAt.getTime() ?? 0)
        assert.isTrue(delay >= 3750 && delay <= 6250, `${delay}`)
      }
      // Drive every job to its 4th failure (by 3 · 1.25 · (5 + 10 + 20) s plus polls; the 5th cannot come before
      // 0.75 · 35 s + 22.5 s): the nominal 40 s of the 4th retry is capped at 30 s.
      yield* advance("47500 millis", "500 millis")
      for (const { id } of ids) {
        const info = yield* statusOf(id)
        assert.strictEqual(info.errors.length, 4)
        const delay = info.runAt.getTime() - (info.errors[3]?.failedAt.getTime() ?? 0)
        assert.isTrue(delay >= 30_000 * 0.75 && delay <= 30_000, `capped: ${delay}`)
      }
    }).pipe(
      Effect.scoped,
      Effect.provide(JobQueue.layerMemory({
        queues: { default: { concurrency: 30, retry: { cap: "30 seconds", maxAttempts: 10 } } }
      }))
    ))

  it.effect("reclaims a crashed worker's job once its lease lapses, not before", () =>
    Effect.gen(function*() {
      const queue = yield* JobQueue.JobQueue
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      const [crashed] = yield* queue.store.claim({
        queue: "default",
        limit: 1,
        owner: "crashed",
        lease: Duration.seconds(30)
      })
      const ran = yield* Deferred.make<number>()
      const worker = yield* JobWorker.make({
        workerId: "survivor",
        handlers: [JobWorker.handler(Task, (_, job) => Deferred.succeed(ran, job.attempt))]
      })
      yield* advance("29 seconds", "1 second")
      assert.strictEqual((yield* statusOf(id)).status, "running")
      assert.isFalse(yield* Deferred.isDone(ran))
      yield* advance("7 seconds", "500 millis")
      assert.strictEqual(yield* Deferred.await(ran), 2)
      const info = yield* statusOf(id)
      assert.strictEqual(info.status, "succeeded")
      assert.deepStrictEqual(info.errors.map((e) => [e.tag, e.workerId]), [["LeaseExpired", "crashed"]])
      assert.deepInclude(yield* worker.stats, { reclaimed: 1, succeeded: 1 })
      assert.deepStrictEqual(yield* queue.store.complete(crashed === undefined ? [] : [crashed.lease]), [])
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))

  it.effect("heartbeats hold a long job's lease for as long as it runs", () =>
    Effect.gen(function*() {
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      const runner = yield* JobWorker.make({
        workerId: "long",
        handlers: [JobWorker.handler(Task, () => Effect.sleep("3 minutes"))]
      })
      // A second worker sweeps for lapsed leases the whole time.
      const sweeper = yield* JobWorker.make({
        workerId: "sweeper",
        handlers: [JobWorker.handler(Task, () => Effect.void)]
      })
      yield* advance("190 seconds", "5 seconds")
      const info = yield* statusOf(id)
      assert.strictEqual(info.status, "succeeded")
      assert.strictEqual(info.attempts, 1)
      assert.deepStrictEqual(info.errors, [])
      assert.deepInclude(yield* sweeper.stats, { reclaimed: 0, claimed: 0 })
      assert.deepInclude(yield* runner.stats, { succeeded: 1, leasesLost: 0 })
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))

  it.effect("stops a handler whose lease could not be renewed once it surely lapsed", () =>
    Effect.gen(function*() {
      const healthy = yield* JobQueue.JobQueue
      // The database is unreachable for renewals from this worker only.
      const cutOff = JobQueue.make(healthy.config, {
        ...healthy.store,
        heartbeat: () => Effect.fail(new JobQueue.JobStoreError({ operation: "heartbeatJobs", cause: "unreachable" }))
      })
      const interruptedAt = yield* Deferred.make<number>()
      yield* JobQueue.enqueue(Task, { n: 1 })
      const worker = yield* JobWorker.make({
        // The reclaimed job runs again (and hangs again): shut down without waiting for it.
        gracePeriod: 0,
        handlers: [
          JobWorker.handler(Task, () =>
            Effect.never.pipe(
              Effect.onInterrupt(() =>
                Effect.flatMap(Clock.currentTimeMillis, (now) => Deferred.succeed(interruptedAt, now))
              )
            ))
        ]
      }).pipe(Effect.provideService(JobQueue.JobQueue, cutOff))
      yield* advance("29 seconds", "1 second")
      assert.isFalse(yield* Deferred.isDone(interruptedAt), "the lease is still valid")
      yield* advance("11 seconds", "1 second")
      const at = yield* Deferred.await(interruptedAt)
      // The lease (30 s) ran out; the next heartbeat tick (every 10 s) stops the handler.
      assert.isTrue(at >= 30_000 && at <= 40_000, `${at}`)
      assert.strictEqual((yield* worker.stats).leasesLost, 1)
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))

  it.effect("a handler past maxRunTime is interrupted on the clock, retried, then dead-lettered; others run on", () =>
    Effect.gen(function*() {
      const interruptedAt: Array<number> = []
      const startedAt: Array<number> = []
      const hanging = yield* JobQueue.enqueue(Task, { n: 1 })
      const slow = yield* JobQueue.enqueue(Task, { n: 2 })
      const worker = yield* JobWorker.make({
        handlers: [
          JobWorker.handler(Task, ({ n }) =>
            n === 2
              ? Effect.sleep("59 seconds")
              : Clock.currentTimeMillis.pipe(
                Effect.tap((now) => startedAt.push(now)),
                Effect.zipRight(Effect.never),
                Effect.onInterrupt(() => Effect.map(Clock.currentTimeMillis, (now) => interruptedAt.push(now)))
              ))
        ]
      })
      // Past the 30 s lease: the heartbeat renews it, so only maxRunTime can stop the handler.
      yield* advance("59900 millis")
      assert.deepStrictEqual(interruptedAt, [])
      assert.strictEqual((yield* statusOf(hanging.id)).status, "running")
      assert.strictEqual((yield* statusOf(slow.id)).status, "succeeded", "a handler within the limit is unaffected")
      yield* advance("100 millis")
      assert.deepStrictEqual(interruptedAt, [60_000])
      const retrying = yield* statusOf(hanging.id)
      assert.strictEqual(retrying.status, "retrying")
      assert.deepStrictEqual(retrying.errors.map((e) => [e.attempt, e.tag, e.verdict]), [[
        1,
        "JobTimeoutError",
        "transient"
      ]])
      assert.include(retrying.errors[0]?.message ?? "", "1m")
      // Retried after the 5 s backoff (plus at most a poll), and stopped again a minute after it started.
      yield* advance("70 seconds", "500 millis")
      assert.strictEqual(startedAt.length, 2)
      const second = startedAt[1] ?? 0
      assert.isTrue(second >= 65_000 && second <= 66_000, `${second}`)
      assert.deepStrictEqual(interruptedAt, [60_000, second + 60_000])
      const dead = yield* statusOf(hanging.id)
      assert.strictEqual(dead.status, "dead")
      assert.deepStrictEqual(dead.errors.map((e) => e.tag), ["JobTimeoutError", "JobTimeoutError"])
      assert.deepInclude(yield* worker.stats, { succeeded: 1, retried: 1, deadLettered: 1, leasesLost: 0 })
      assert.strictEqual(yield* worker.inFlight, 0)
    }).pipe(
      Effect.scoped,
      Effect.provide(JobQueue.layerMemory({
        queues: { default: { maxRunTime: "1 minute", retry: { jitter: 0, maxAttempts: 2 } } }
      }))
    ))

  it.effect("without maxRunTime a handler runs as long as it takes", () =>
    Effect.gen(function*() {
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      yield* JobWorker.make({ handlers: [JobWorker.handler(Task, () => Effect.sleep("5 minutes"))] })
      yield* advance("301 seconds", "5 seconds")
      const info = yield* statusOf(id)
      assert.strictEqual(info.status, "succeeded")
      assert.deepStrictEqual(info.errors, [])
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))

  it.effect("an invalid maxRunTime is rejected, naming the field", () =>
    Effect.gen(function*() {
      for (const maxRunTime of [0, -5, "-1 seconds", Duration.infinity] as const) {
        const error = yield* Effect.flip(
          JobQueue.JobQueue.pipe(Effect.provide(JobQueue.layerMemory({ queues: { default: { maxRunTime } } })))
        )
        assert.deepInclude(error, { _tag: "InvalidOptionsError", option: "queues.default.maxRunTime" })
      }
    }))

  it.effect("shutdown waits the grace period, then hands the lease back", () =>
    Effect.gen(function*() {
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      const worker = yield* JobWorker.make({
        gracePeriod: "10 seconds",
        handlers: [JobWorker.handler(Task, () => Effect.sleep("1 minute"))]
      })
      yield* settle
      assert.strictEqual((yield* statusOf(id)).status, "running")
      const stopping = yield* Effect.fork(worker.shutdown)
      yield* advance("9 seconds", "1 second")
      assert.isTrue(Option.isNone(yield* Fiber.poll(stopping)), "still within the grace period")
      assert.strictEqual((yield* statusOf(id)).status, "running")
      yield* advance("2 seconds", "1 second")
      yield* Fiber.join(stopping)
      const info = yield* statusOf(id)
      assert.deepStrictEqual([info.status, info.attempts], ["queued", 0])
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))
})

/** The worker's view of the store, with some operations changed (the job queue in context keeps the real one). */
const withStore = (change: (store: JobQueue.JobStore) => Partial<JobQueue.JobStore>) =>
  Effect.map(
    JobQueue.JobQueue,
    (healthy) => JobQueue.make(healthy.config, { ...healthy.store, ...change(healthy.store) })
  )

/** Jobs leased now (running, or claimed ahead and waiting in a worker), and jobs ready to claim. */
const depth = Effect.map(JobQueue.stats, (stats) => {
  const queue = stats.find((s) => s.queue === "default")
  return { leased: queue?.running ?? 0, ready: queue?.ready ?? 0 }
})

describe("JobWorker slots, completions and claiming ahead", () => {
  it.effect("a success frees its slot at once; its completion, written later, is fenced by the lease", () =>
    Effect.gen(function*() {
      const completions = yield* Deferred.make<void>()
      const unrenewed = new Set<string>()
      const queue = yield* withStore((store) => ({
        // Completions wait until the test lets them through; renewals skip the jobs in `unrenewed`.
        complete: (leases) => Effect.zipRight(Deferred.await(completions), store.complete(leases)),
        heartbeat: (leases, lease) => store.heartbeat(leases.filter((held) => !unrenewed.has(held.id)), lease)
      }))
      const runs: Array<string> = []
      const [first, second] = yield* JobQueue.enqueueMany([
        JobQueue.job(Task, { n: 1 }),
        JobQueue.job(Task, { n: 2 })
      ])
      const worker = yield* JobWorker.make({
        handlers: [JobWorker.handler(Task, ({ n }, job) => Effect.sync(() => runs.push(`${n}@${job.attempt}`)))]
      }).pipe(Effect.provideService(JobQueue.JobQueue, queue))
      // Runs before the worker's own finalizer, so a failed assertion cannot leave its shutdown waiting forever.
      yield* Effect.addFinalizer(() => Deferred.succeed(completions, undefined))
      yield* settle
      // One slot: the second job could only start because the first one gave it back before its completion landed.
      assert.deepStrictEqual(runs, ["1@1", "2@1"])
      assert.strictEqual((yield* statusOf(first?.id ?? "")).status, "running", "its completion is not written yet")
      // The first job's lease is no longer renewed: it lapses, is reclaimed, and runs again (at least once).
      unrenewed.add(first?.id ?? "")
      yield* advance("15 seconds", "500 millis")
      assert.deepStrictEqual(runs, ["1@1", "2@1", "1@2"])
      // The completions land now: the first run's is refused (its lease is gone), logged and counted.
      yield* Deferred.succeed(completions, undefined)
      yield* settle
      assert.deepInclude(yield* worker.stats, { claimed: 3, succeeded: 2, lateOutcomesRejected: 1, reclaimed: 1 })
      const info = yield* statusOf(first?.id ?? "")
      assert.deepStrictEqual([info.status, info.attempts], ["succeeded", 2])
      assert.deepStrictEqual(info.errors.map((error) => error.tag), ["LeaseExpired"])
      assert.strictEqual((yield* statusOf(second?.id ?? "")).status, "succeeded")
    }).pipe(
      Effect.scoped,
      Effect.provide(JobQueue.layerMemory({ queues: { default: { concurrency: 1, visibilityTimeout: "10 seconds" } } }))
    ))

  it.effect("shutdown ends only once the completions still being written have landed", () =>
    Effect.gen(function*() {
      const completions = yield* Deferred.make<void>()
      const queue = yield* withStore((store) => ({
        complete: (leases) => Effect.zipRight(Deferred.await(completions), store.complete(leases))
      }))
      const { id } = yield* JobQueue.enqueue(Task, { n: 1 })
      const worker = yield* JobWorker.make({ handlers: [JobWorker.handler(Task, () => Effect.void)] }).pipe(
        Effect.provideService(JobQueue.JobQueue, queue)
      )
      yield* Effect.addFinalizer(() => Deferred.succeed(completions, undefined))
      yield* settle
      assert.strictEqual(yield* worker.inFlight, 0, "the handler is done")
      const stopping = yield* Effect.fork(worker.shutdown)
      yield* settle
      assert.isTrue(Option.isNone(yield* Fiber.poll(stopping)), "shutdown waits for the completion")
      assert.strictEqual((yield* statusOf(id)).status, "running")
      yield* Deferred.succeed(completions, undefined)
      yield* Fiber.join(stopping)
      assert.strictEqual((yield* statusOf(id)).status, "succeeded")
      assert.deepInclude(yield* worker.stats, { succeeded: 1, lateOutcomesRejected: 0 })
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: {} } }))))

  /** Claims that take 100 ms (a database round trip), recording the limit of each. */
  const slowClaims = (limits: Array<number>) =>
    withStore((store) => ({
      claim: (request) =>
        Effect.sync(() => limits.push(request.limit)).pipe(
          Effect.zipRight(Effect.sleep("100 millis")),
          Effect.zipRight(store.claim(request))
        )
    }))

  it.effect("fast jobs are claimed ahead of free slots, in full batches", () =>
    Effect.gen(function*() {
      const limits: Array<number> = []
      const queue = yield* slowClaims(limits)
      const jobs = yield* JobQueue.enqueueMany(Array.from({ length: 40 }, (_, n) => JobQueue.job(Task, { n })))
      const worker = yield* JobWorker.make({ handlers: [JobWorker.handler(Task, () => Effect.sleep("10 millis"))] })
        .pipe(Effect.provideService(JobQueue.JobQueue, queue))
      yield* advance("3 seconds", "10 millis")
      for (const job of jobs) assert.strictEqual((yield* statusOf(job.id)).status, "succeeded")
      // 2 slots, up to 2 ahead: batches of 4 (`batchSize` defaults to concurrency + prefetch), not 2.
      assert.strictEqual(Math.max(...limits), 4)
      assert.isAtMost(limits.filter((limit) => limit > 0).length, 15, `claims: ${limits.join(", ")}`)
      assert.deepInclude(yield* worker.stats, { claimed: 40, succeeded: 40 })
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: { concurrency: 2 } } }))))

  it.effect("slow jobs are claimed one free slot at a time: none waits in a busy worker", () =>
    Effect.gen(function*() {
      const limits: Array<number> = []
      const queue = yield* slowClaims(limits)
      yield* JobQueue.enqueueMany(Array.from({ length: 6 }, (_, n) => JobQueue.job(Task, { n })))
      yield* JobWorker.make({
        // The last two are still running when the test ends: hand them back without waiting.
        gracePeriod: 0,
        handlers: [JobWorker.handler(Task, () => Effect.sleep("10 seconds"))]
      }).pipe(Effect.provideService(JobQueue.JobQueue, queue))
      for (let step = 0; step < 6; step++) {
        yield* advance("5 seconds", "250 millis")
        assert.deepInclude(yield* depth, { leased: 2 }, `after ${5 * (step + 1)} s`)
      }
      assert.isAtMost(Math.max(...limits), 2, `claims: ${limits.join(", ")}`)
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: { concurrency: 2 } } }))))

  it.effect("shutdown hands the jobs claimed ahead back at once, and claiming ahead stops behind hanging handlers", () =>
    Effect.gen(function*() {
      const unblock = yield* Deferred.make<void>()
      const queue = yield* slowClaims([])
      // Six fast jobs teach the worker that jobs are short; the next fourteen hang until the test unblocks them.
      const jobs = yield* JobQueue.enqueueMany(Array.from({ length: 20 }, (_, n) => JobQueue.job(Task, { n })))
      const worker = yield* JobWorker.make({
        gracePeriod: "10 seconds",
        handlers: [
          JobWorker.handler(Task, ({ n }) => n < 6 ? Effect.sleep("10 millis") : Deferred.await(unblock))
        ]
      }).pipe(Effect.provideService(JobQueue.JobQueue, queue))
      yield* Effect.addFinalizer(() => Deferred.succeed(unblock, undefined))
      yield* advance("2 seconds", "10 millis")
      const hanging = jobs.slice(6)
      const leased: Array<string> = []
      for (const job of hanging) if ((yield* statusOf(job.id)).status === "running") leased.push(job.id)
      assert.strictEqual(yield* worker.inFlight, 2, "two handlers hang")
      const waiting = leased.length - 2
      assert.isAtLeast(waiting, 1, "jobs were claimed ahead and wait in the worker")
      // Hanging handlers stop the claiming ahead: nothing more is leased while they hang, the rest stays claimable.
      yield* advance("5 seconds", "100 millis")
      const { ready } = yield* depth
      assert.deepStrictEqual(yield* depth, { leased: leased.length, ready: 20 - 6 - leased.length })
      assert.isAbove(ready, 0)

      const stopping = yield* Effect.fork(worker.shutdown)
      yield* settle
      // The waiting jobs are queued again at once (their attempt not burned), within the grace period.
      assert.isTrue(Option.isNone(yield* Fiber.poll(stopping)))
      const states = yield* Effect.forEach(leased, (id) => Effect.map(statusOf(id), (i) => [i.status, i.attempts]))
      assert.strictEqual(states.filter(([status]) => status === "running").length, 2)
      assert.deepStrictEqual(
        states.filter(([status]) => status !== "running"),
        Array.from({ length: waiting }, () => ["queued", 0])
      )
      yield* Deferred.succeed(unblock, undefined)
      yield* Fiber.join(stopping)
      assert.deepInclude(yield* worker.stats, { released: waiting, succeeded: 8 })
    }).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: { concurrency: 2 } } }))))
})

describe("JobQueue.retryDelay", () => {
  const policy = (jitter: number, cap = 300_000) => ({
    base: Duration.seconds(5),
    cap: Duration.millis(cap),
    jitter,
    maxAttempts: 5
  })

  it("is base·2^(n-1) at the midpoint of the jitter range", () => {
    assert.deepStrictEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => Duration.toMillis(JobQueue.retryDelay(policy(0.25), n, 0.5))),
      [5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000]
    )
  })

  it("stays within ±jitter of the nominal delay and never above the cap", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 5_000, max: 3_600_000 }),
        (attempt, random, jitter, cap) => {
          const delay = Duration.toMillis(JobQueue.retryDelay(policy(jitter, cap), attempt, random))
          const nominal = 5_000 * 2 ** Math.min(attempt - 1, 60)
          return delay <= cap && delay >= Math.min(nominal * (1 - jitter), cap) - 1e-6 &&
            delay <= nominal * (1 + jitter) + 1e-6
        }
      )
    ))
})
