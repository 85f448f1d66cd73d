/**
 * The job-queue contract for cancellation, progress and results, run against every backend (memory and
 * PostgreSQL) by `memory.test.ts` and `postgres.test.ts`: cancelling queued, scheduled, retrying and running jobs
 * (the handler interrupted within about a second, its finalizers run, no retry and no dead letter), a cancel racing
 * a completion or a failure (exactly one outcome), the stale worker fenced off, the dedup key released, progress
 * reported while a job runs, results stored, and results too large or that do not encode failing terminally.
 *
 * Workers run on the live clock, as in conformance.ts; the store-only test of a lapsed lease uses the backend's
 * `advance`.
 */
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as Metrics from "@bulwark/resilience/Metrics"
import type * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import { assert, describe } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type Backend, defaultOptions, Email, eventually, Report } from "./conformance.js"

// -----------------------------------------------------------------------------
// Fixtures
// -----------------------------------------------------------------------------

/** On `slow`: its heartbeat (a third of the default 30 s lease) is slower than the one-second cancellation check. */
const Slow = JobQueue.define({ kind: "slow", queue: "slow", payload: Schema.Struct({ n: Schema.Number }) })

/** On `default`: its heartbeat (a third of 2 s) finds a cancelled job by itself. */
const Busy = JobQueue.define({ kind: "busy", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })

const Export = JobQueue.define({
  kind: "export",
  queue: "results",
  payload: Schema.Struct({ id: Schema.Number, size: Schema.Number }),
  result: Schema.Struct({ url: Schema.String, at: Schema.Date })
})

const Lookup = JobQueue.define({
  kind: "lookup",
  queue: "results",
  payload: Schema.Struct({ key: Schema.String }),
  result: Schema.NullOr(Schema.String)
})

const Count = JobQueue.define({
  kind: "count",
  queue: "results",
  payload: Schema.Struct({ n: Schema.Number }),
  result: Schema.Struct({ n: Schema.Number.pipe(Schema.positive()) })
})

const options: SqlJobQueue.Options = {
  ...defaultOptions,
  queues: {
    ...defaultOptions.queues,
    slow: { pollInterval: "20 millis", reclaimInterval: "50 millis", concurrency: 2 },
    results: { pollInterval: "20 millis", reclaimInterval: "50 millis", maxResultBytes: 64 }
  },
  jobs: [...(defaultOptions.jobs ?? []), Slow, Busy, Export, Lookup, Count]
}

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

const storeOf = Effect.map(JobQueue.JobQueue, (queue) => queue.store)

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.die(new Error(`job ${id} not found`)), onSome: Effect.succeed }))
  )

const waitForStatus = (id: string, status: JobQueue.JobStatus) =>
  eventually(statusOf(id), (info) => info.status === status, "10 seconds", `job ${id} to be ${status}`)

const claimOne = (queue: string, owner: string, lease: Duration.DurationInput = "10 seconds") =>
  Effect.gen(function*() {
    const store = yield* storeOf
    const [job] = yield* store.claim({ queue, limit: 1, owner, lease: Duration.decode(lease) })
    if (job === undefined) return yield* Effect.die(new Error(`nothing to claim in ${queue}`))
    return job
  })

const cancelledCount = (queue: string) =>
  Metric.value(
    Metric.taggedWithLabels(Metrics.jobs, [MetricLabel.make("queue", queue), MetricLabel.make("outcome", "cancelled")])
  ).pipe(Effect.map((state) => state.count))

const within = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  what: string,
  duration: Duration.DurationInput = "10 seconds"
) => Effect.timeoutFail(effect, { duration, onTimeout: () => new Error(`timed out waiting for ${what}`) })

// -----------------------------------------------------------------------------
// Suite
// -----------------------------------------------------------------------------

export const conformanceCancel = <R>(backend: Backend<R>): void => {
  type Body = () => Effect.Effect<void, unknown, JobQueue.JobQueue | Scope.Scope | R>
  const test = (name: string, body: Body) =>
    backend.test(name, () => body().pipe(Effect.scoped, Effect.provide(backend.layer(options))), 30_000)
  const clocked = (name: string, body: Body) =>
    backend.clocked(name, () => body().pipe(Effect.scoped, Effect.provide(backend.layer(options))), 30_000)

  describe(`job queue cancellation, progress and results: ${backend.name}`, () => {
    // ------------------------------------------------------------- cancel

    test("cancel stops queued, scheduled and retrying jobs; finished and unknown ones say what they are", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const before = { default: yield* cancelledCount("default"), batch: yield* cancelledCount("batch") }
        const queued = yield* JobQueue.enqueue(Email, { to: "queued", n: 1 })
        const scheduled = yield* JobQueue.enqueue(Email, { to: "scheduled", n: 2 }, { delay: "1 hour" })
        const retrying = yield* JobQueue.enqueue(Report, { id: 1 })
        const failed = yield* claimOne("batch", "w")
        const retry = yield* store.fail({
          lease: failed.lease,
          error: { tag: "Flaky", message: "flaky", cause: null, verdict: "transient" },
          retryIn: Option.some(Duration.hours(1))
        })
        assert.strictEqual(retry._tag, "Retrying")
        assert.strictEqual((yield* statusOf(retrying.id)).status, "retrying")

        assert.deepStrictEqual(yield* JobQueue.cancel(queued.id), {
          _tag: "Cancelled",
          id: queued.id,
          queue: "default",
          previous: "queued"
        })
        assert.deepStrictEqual(yield* JobQueue.cancel(scheduled.id), {
          _tag: "Cancelled",
          id: scheduled.id,
          queue: "default",
          previous: "scheduled"
        })
        assert.deepStrictEqual(yield* JobQueue.cancel(retrying.id), {
          _tag: "Cancelled",
          id: retrying.id,
          queue: "batch",
          previous: "retrying"
        })
        for (const id of [queued.id, scheduled.id, retrying.id]) {
          const info = yield* statusOf(id)
          assert.strictEqual(info.status, "cancelled")
          assert.isTrue(Option.isSome(info.finishedAt))
          assert.isTrue(Option.isNone(info.leaseOwner))
          // Cancelling again changes nothing and says so.
          assert.deepInclude(yield* JobQueue.cancel(id), { _tag: "AlreadyFinished", status: "cancelled" })
        }
        // The history stays; nothing is claimable or counted as waiting.
        const history = yield* statusOf(retrying.id)
        assert.strictEqual(history.attempts, 1)
        assert.deepStrictEqual(history.errors.map((error) => error.tag), ["Flaky"])
        assert.deepStrictEqual(
          yield* store.claim({ queue: "default", limit: 10, owner: "w", lease: Duration.seconds(5) }),
          []
        )
        const stats = yield* JobQueue.stats
        assert.deepInclude(stats.find((s) => s.queue === "default"), { ready: 0, scheduled: 0, running: 0 })
        assert.deepInclude(stats.find((s) => s.queue === "batch"), { retrying: 0, running: 0 })
        assert.strictEqual((yield* cancelledCount("default")) - before.default, 2)
        assert.strictEqual((yield* cancelledCount("batch")) - before.batch, 1)

        const done = yield* JobQueue.enqueue(Email, { to: "done", n: 3 })
        assert.deepStrictEqual(yield* store.complete([(yield* claimOne("default", "w")).lease]), [done.id])
        assert.deepStrictEqual(yield* JobQueue.cancel(done.id), {
          _tag: "AlreadyFinished",
          id: done.id,
          queue: "default",
          status: "succeeded"
        })
        const dead = yield* JobQueue.enqueue(Email, { to: "dead", n: 4 })
        const dying = yield* claimOne("default", "w")
        yield* store.fail({
          lease: dying.lease,
          error: { tag: "Declined", message: "declined", cause: null, verdict: "terminal" },
          retryIn: Option.none()
        })
        assert.deepInclude(yield* JobQueue.cancel(dead.id), { _tag: "AlreadyFinished", status: "dead" })
        assert.strictEqual(
          (yield* DeadLetter.show(dead.id)).pipe(Option.map((e) => e.status), Option.getOrNull),
          "pending"
        )
        assert.deepStrictEqual(yield* JobQueue.cancel("999999"), { _tag: "NotFound", id: "999999" })
        assert.deepStrictEqual(yield* JobQueue.cancel("not-a-job"), { _tag: "NotFound", id: "not-a-job" })
        assert.strictEqual((yield* cancelledCount("default")) - before.default, 2, "only cancellations are counted")
      }))

    test("a cancelled job releases its dedup key: the key enqueues a new job", () =>
      Effect.gen(function*() {
        const first = yield* JobQueue.enqueue(Email, { to: "once", n: 1 }, { dedupKey: "welcome:42" })
        assert.isTrue((yield* JobQueue.enqueue(Email, { to: "once", n: 1 }, { dedupKey: "welcome:42" })).deduplicated)
        assert.strictEqual((yield* JobQueue.cancel(first.id))._tag, "Cancelled")
        assert.isTrue(Option.isNone((yield* statusOf(first.id)).dedupKey))
        const second = yield* JobQueue.enqueue(Email, { to: "once", n: 1 }, { dedupKey: "welcome:42" })
        assert.isFalse(second.deduplicated)
        assert.notStrictEqual(second.id, first.id)
        assert.strictEqual((yield* statusOf(second.id)).status, "queued")
      }))

    test("cancelling a running job interrupts its handler within about a second: finalizers run, no retry, no dead letter", () =>
      Effect.gen(function*() {
        const before = { slow: yield* cancelledCount("slow"), default: yield* cancelledCount("default") }
        const started = { slow: yield* Deferred.make<void>(), busy: yield* Deferred.make<void>() }
        const finalized = { slow: yield* Deferred.make<number>(), busy: yield* Deferred.make<number>() }
        let attempts = 0
        const hang = (which: "slow" | "busy") =>
          Effect.sync(() => {
            attempts += 1
          }).pipe(
            Effect.zipRight(Deferred.succeed(started[which], undefined)),
            Effect.zipRight(Effect.never),
            Effect.onInterrupt(() =>
              Effect.flatMap(Clock.currentTimeMillis, (now) => Deferred.succeed(finalized[which], now))
            )
          )
        const worker = yield* JobWorker.make({
          handlers: [JobWorker.handler(Slow, () => hang("slow")), JobWorker.handler(Busy, () => hang("busy"))]
        })
        const slow = yield* JobQueue.enqueue(Slow, { n: 1 })
        const busy = yield* JobQueue.enqueue(Busy, { n: 1 })
        yield* within(Deferred.await(started.slow), "the slow handler to start")
        yield* within(Deferred.await(started.busy), "the busy handler to start")
        assert.strictEqual((yield* statusOf(slow.id)).status, "running")

        for (const [which, job, queue] of [["slow", slow, "slow"], ["busy", busy, "default"]] as const) {
          const cancelledAt = yield* Clock.currentTimeMillis
          assert.deepStrictEqual(yield* JobQueue.cancel(job.id), {
            _tag: "Cancelled",
            id: job.id,
            queue,
            previous: "running"
          })
          const stoppedAt = yield* within(Deferred.await(finalized[which]), `the ${which} handler's finalizer`)
          assert.isBelow(
            stoppedAt - cancelledAt,
            1_500,
            `the ${which} handler stopped ${stoppedAt - cancelledAt} ms after`
          )
        }
        const stats = yield* eventually(worker.stats, (s) => s.cancelled === 2, "5 seconds", "the worker's counters")
        assert.deepInclude(stats, { cancelled: 2, leasesLost: 0, lateOutcomesRejected: 0, retried: 0, deadLettered: 0 })
        // Nothing runs again and nothing is dead-lettered.
        yield* Effect.sleep("300 millis")
        assert.strictEqual(attempts, 2)
        for (const job of [slow, busy]) {
          const info = yield* statusOf(job.id)
          assert.strictEqual(info.status, "cancelled")
          assert.strictEqual(info.attempts, 1)
          assert.deepStrictEqual(info.errors, [])
          assert.isTrue(Option.isNone(yield* DeadLetter.show(job.id)))
        }
        assert.strictEqual((yield* cancelledCount("slow")) - before.slow, 1)
        assert.strictEqual((yield* cancelledCount("default")) - before.default, 1)
      }))

    test("a cancel racing a completion or a failure leaves exactly one outcome", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        for (let round = 0; round < 12; round++) {
          const { id } = yield* JobQueue.enqueue(Email, { to: "race", n: round })
          const job = yield* claimOne("default", "racer")
          const settle = round % 2 === 0
            ? Effect.map(store.complete([job.lease]), (ids) => ids.length === 1 ? "succeeded" : "refused")
            : Effect.map(
              store.fail({
                lease: job.lease,
                error: { tag: "Declined", message: "declined", cause: null, verdict: "terminal" },
                retryIn: Option.none()
              }),
              (outcome) => outcome._tag === "Dead" ? "dead" : "refused"
            )
          const [settled, cancelled] = yield* Effect.all([settle, JobQueue.cancel(id)], { concurrency: "unbounded" })
          const info = yield* statusOf(id)
          const entry = yield* DeadLetter.show(id)
          if (settled === "refused") {
            assert.deepStrictEqual(cancelled, { _tag: "Cancelled", id, queue: "default", previous: "running" })
            assert.strictEqual(info.status, "cancelled")
            assert.isTrue(Option.isNone(entry))
          } else {
            assert.deepStrictEqual(cancelled, { _tag: "AlreadyFinished", id, queue: "default", status: settled })
            assert.strictEqual(info.status, settled)
            assert.strictEqual(Option.isSome(entry), settled === "dead")
          }
        }
      }))

    clocked(
      "a cancelled job's worker is fenced off: its lease can no longer complete, fail, renew, release or report",
      () =>
        Effect.gen(function*() {
          const store = yield* storeOf
          const { id } = yield* JobQueue.enqueue(Email, { to: "stale", n: 1 })
          const other = yield* JobQueue.enqueue(Email, { to: "other", n: 2 })
          const job = yield* claimOne("default", "worker-a", "150 millis")
          const otherJob = yield* claimOne("default", "worker-a", "10 seconds")
          assert.strictEqual((yield* JobQueue.cancel(id))._tag, "Cancelled")
          assert.deepStrictEqual(yield* store.cancelled([job.lease, otherJob.lease]), [id])
          assert.deepStrictEqual(yield* store.complete([job.lease]), [])
          assert.strictEqual(
            (yield* store.fail({
              lease: job.lease,
              error: { tag: "Late", message: "late", cause: null, verdict: "transient" },
              retryIn: Option.some(Duration.millis(1))
            }))._tag,
            "Rejected"
          )
          assert.deepStrictEqual(yield* store.heartbeat([job.lease], Duration.seconds(10)), [])
          assert.deepStrictEqual(yield* store.release([job.lease]), [])
          assert.isFalse(yield* store.progress(job.lease, { value: 50, message: Option.none() }))
          // Its lease lapses: there is nothing to reclaim.
          yield* backend.advance("250 millis")
          assert.deepStrictEqual(yield* store.reclaim(["default"], 10), [])
          const info = yield* statusOf(id)
          assert.strictEqual(info.status, "cancelled")
          assert.strictEqual(info.attempts, 1)
          assert.deepStrictEqual(info.errors, [])
          assert.isTrue(Option.isNone(info.progress))
          assert.isTrue(Option.isNone(info.result))
          // The other job's lease still holds.
          assert.deepStrictEqual(yield* store.complete([otherJob.lease]), [other.id])
        })
    )

    // ------------------------------------------------------------- progress

    test("a handler's progress is stored fenced by its lease and shown by status while the job runs", () =>
      Effect.gen(function*() {
        const reported = yield* Deferred.make<void>()
        const proceed = yield* Deferred.make<void>()
        const seen = yield* Deferred.make<string>()
        const deep = Effect.flatMap(JobWorker.JobContext, (job) => Deferred.succeed(seen, `${job.kind}:${job.id}`))
        yield* JobWorker.make({
          handlers: [
            JobWorker.handler(Busy, (_, job) =>
              Effect.gen(function*() {
                yield* JobWorker.progress(140, "x".repeat(1000))
                yield* deep
                yield* Deferred.succeed(reported, undefined)
                yield* Deferred.await(proceed)
                yield* job.progress(40, "four of ten")
                yield* Deferred.succeed(reported, undefined)
                yield* job.progress(100, "done")
              }))
          ]
        })
        const { id } = yield* JobQueue.enqueue(Busy, { n: 1 })
        yield* within(Deferred.await(reported), "the first report")
        assert.strictEqual(yield* Deferred.await(seen), `busy:${id}`)
        const first = yield* statusOf(id)
        assert.strictEqual(first.status, "running")
        const clamped = Option.getOrThrow(first.progress)
        assert.strictEqual(clamped.value, 100, "clamped to 100")
        assert.strictEqual(Option.getOrThrow(clamped.message).length, 256, "cut to 256 characters")
        assert.strictEqual(clamped.attempt, 1)
        yield* Deferred.succeed(proceed, undefined)
        const done = yield* waitForStatus(id, "succeeded")
        const last = Option.getOrThrow(done.progress)
        assert.deepStrictEqual([last.value, last.message, last.attempt], [100, Option.some("done"), 1])
        assert.isTrue(last.updatedAt.getTime() >= clamped.updatedAt.getTime())
        assert.isTrue(Option.isNone(done.result), "a definition without a result Schema stores none")
      }))

    test("progress is kept as the handler left it when the attempt fails", () =>
      Effect.gen(function*() {
        const { id } = yield* JobQueue.enqueue(Export, { id: 1, size: 1 }, { maxAttempts: 1 })
        yield* JobWorker.make({
          handlers: [
            JobWorker.handler(Export, () =>
              JobWorker.progress(30, "three of ten").pipe(Effect.zipRight(Effect.fail(new Error("disk full")))))
          ]
        })
        const dead = yield* waitForStatus(id, "dead")
        const progress = Option.getOrThrow(dead.progress)
        assert.deepStrictEqual([progress.value, progress.message], [30, Option.some("three of ten")])
        assert.isTrue(Option.isNone(dead.result))
      }))

    // ------------------------------------------------------------- results

    test("a succeeded job stores its handler's result, encoded with the definition's result Schema", () =>
      Effect.gen(function*() {
        const at = new Date("2030-01-02T03:04:05.678Z")
        const exported = yield* JobQueue.enqueue(Export, { id: 7, size: 1 })
        const found = yield* JobQueue.enqueue(Lookup, { key: "missing" })
        yield* JobWorker.make({
          handlers: [
            JobWorker.handler(Export, ({ id }) => Effect.succeed({ url: `s3://exports/${id}`, at })),
            JobWorker.handler(Lookup, () => Effect.succeed(null))
          ]
        })
        const done = yield* waitForStatus(exported.id, "succeeded")
        assert.deepStrictEqual(done.result, Option.some({ url: "s3://exports/7", at: "2030-01-02T03:04:05.678Z" }))
        // A JSON null result is a result, not the absence of one.
        assert.deepStrictEqual((yield* waitForStatus(found.id, "succeeded")).result, Option.some(null))
      }))

    test("a result over maxResultBytes, or one that does not encode, fails the job terminally and stores nothing", () =>
      Effect.gen(function*() {
        const large = yield* JobQueue.enqueue(Export, { id: 8, size: 100 })
        const invalid = yield* JobQueue.enqueue(Count, { n: -1 })
        yield* JobWorker.make({
          handlers: [
            JobWorker.handler(
              Export,
              ({ id, size }) => Effect.succeed({ url: `s3://${"x".repeat(size)}/${id}`, at: new Date(0) })
            ),
            JobWorker.handler(Count, ({ n }) => Effect.succeed({ n }))
          ]
        })
        const tooLarge = yield* waitForStatus(large.id, "dead")
        assert.strictEqual(tooLarge.attempts, 1, "terminal: not retried")
        assert.isTrue(Option.isNone(tooLarge.result))
        const [error] = tooLarge.errors
        assert.deepInclude(error, { tag: "ResultTooLargeError", verdict: "terminal" })
        assert.include(error?.message ?? "", "the limit is 64")
        const entry = Option.getOrThrow(yield* DeadLetter.show(large.id))
        assert.strictEqual(entry.reason, "terminal")

        const notEncoded = yield* waitForStatus(invalid.id, "dead")
        assert.deepInclude(notEncoded.errors[0], { tag: "InvalidResultError", verdict: "terminal" })
        assert.isTrue(Option.isNone(notEncoded.result))
      }))

    test("maxResultBytes is validated", () =>
      Effect.sync(() => {
        for (const bad of [0, 1.5, 64 * 1024 * 1024 + 1]) {
          const config = JobQueue.makeConfig({ queues: { q: { maxResultBytes: bad } } })
          assert.isTrue(Either.isLeft(config), String(bad))
          if (Either.isLeft(config)) assert.include(config.left.message, "queues.q.maxResultBytes")
        }
        const fine = JobQueue.makeConfig({ queues: { q: {} } })
        assert.strictEqual(Either.getOrThrow(fine).queues.get("q")?.maxResultBytes, 64 * 1024)
      }))
  })
}
