/**
 * The job-queue contract, run against every backend (memory and PostgreSQL):
 * enqueue and deduplication, bad input, admission control, claims and
 * leases with fencing, workers (retries, backoff, terminal failures,
 * undecodable payloads, no double execution, tier isolation, graceful
 * shutdown), the dead-letter queue and the depth metrics.
 *
 * Workers run on real time, kept short: leases of a few hundred
 * milliseconds, polls of tens. Tests of the store alone (leases lapsing,
 * heartbeats, retention cutoffs) move the store's time with the backend's
 * `advance` instead: `TestClock.adjust` for the in-memory store, a real sleep
 * for PostgreSQL (whose `now()` cannot be faked). Time-sensitive worker logic
 * is also covered with TestClock on the memory backend
 * (packages/resilience/src/job-queue/JobWorker.test.ts).
 */
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as Failure from "@bulwark/resilience/Failure"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import type * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import { assert, describe, type Vitest } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"

// -----------------------------------------------------------------------------
// Fixtures
// -----------------------------------------------------------------------------

export const Email = JobQueue.define({
  kind: "email",
  queue: "default",
  payload: Schema.Struct({ to: Schema.String, n: Schema.Number })
})

/** Encodes a Date to an ISO string: the stored payload is the Schema's encoded side. */
export const Reminder = JobQueue.define({
  kind: "reminder",
  queue: "default",
  payload: Schema.Struct({ at: Schema.Date })
})

export const Report = JobQueue.define({ kind: "report", queue: "batch", payload: Schema.Struct({ id: Schema.Number }) })
export const Urgent = JobQueue.define({
  kind: "urgent",
  queue: "high_priority",
  payload: Schema.Struct({ id: Schema.Number })
})

/** Same kind as {@link Email}, stricter Schema: old payloads no longer decode. */
const EmailV2 = JobQueue.define({
  kind: "email",
  queue: "default",
  payload: Schema.Struct({ to: Schema.String, n: Schema.Number, locale: Schema.String })
})

class Flaky extends Data.TaggedError("Flaky")<{ readonly message: string }> {}

const fast = { pollInterval: "20 millis", visibilityTimeout: "2 seconds", reclaimInterval: "50 millis" } as const

/** The batch backlog of the tier-isolation test. */
const BACKLOG = 10_000

/**
 * The start-within target of the high-priority tier in the tier-isolation test: far tighter than the 30 s of the
 * production alert (`BulwarkJobBacklogAboveTarget`), with room for a loaded CI machine (jobs start in milliseconds).
 */
const HIGH_PRIORITY_TARGET = Duration.seconds(1)

export const defaultOptions: SqlJobQueue.Options = {
  queues: {
    high_priority: { ...fast, concurrency: 4 },
    default: { ...fast, concurrency: 4, retry: { base: "50 millis", cap: "200 millis", maxAttempts: 3 } },
    batch: { ...fast, concurrency: 2 }
  },
  jobs: [Email, Reminder, Report, Urgent],
  listenerCheckInterval: "200 millis"
}

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** Polls `effect` every 20 ms until `done` holds, failing loudly after `timeout`. */
export const eventually = <A, E, R>(
  effect: Effect.Effect<A, E, R>,
  done: (a: A) => boolean,
  timeout: Duration.DurationInput = "10 seconds",
  what = "condition"
): Effect.Effect<A, E | Error, R> =>
  Effect.gen(function*() {
    while (true) {
      const value = yield* effect
      if (done(value)) return value
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: timeout, onTimeout: () => new Error(`timed out waiting for ${what}`) }))

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.die(new Error(`job ${id} not found`)),
      onSome: Effect.succeed
    }))
  )

const waitForStatus = (id: string, status: JobQueue.JobStatus, timeout: Duration.DurationInput = "10 seconds") =>
  eventually(statusOf(id), (info) => info.status === status, timeout, `job ${id} to be ${status}`)

const entryOf = (id: string) =>
  DeadLetter.show(id).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.die(new Error(`dead letter ${id} not found`)),
      onSome: Effect.succeed
    }))
  )

const counterValue = (queue: string, outcome: string) =>
  Metric.value(
    Metric.taggedWithLabels(Metrics.jobs, [MetricLabel.make("queue", queue), MetricLabel.make("outcome", outcome)])
  ).pipe(Effect.map((state) => state.count))

const histogramCount = (metric: Metric.Metric.Histogram<number>, queue: string) =>
  Metric.value(Metric.taggedWithLabels(metric, [MetricLabel.make("queue", queue)])).pipe(
    Effect.map((state) => state.count)
  )

const gaugeValue = (metric: Metric.Metric.Gauge<number>, labels: Record<string, string>) =>
  Metric.value(
    Metric.taggedWithLabels(metric, Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value)))
  ).pipe(Effect.map((state) => state.value))

const storeOf = Effect.map(JobQueue.JobQueue, (queue) => queue.store)

/** Claims one job of a queue directly from the store, as a worker would. */
const claimOne = (queue: string, owner: string, lease: Duration.DurationInput) =>
  Effect.gen(function*() {
    const store = yield* storeOf
    const [job] = yield* store.claim({ queue, limit: 1, owner, lease: Duration.decode(lease) })
    if (job === undefined) return yield* Effect.die(new Error(`nothing to claim in ${queue}`))
    return job
  })

/** Dead-letters a job at once through the store (a terminal failure). */
const killOne = (queue: string, tag: string) =>
  Effect.gen(function*() {
    const store = yield* storeOf
    const job = yield* claimOne(queue, "killer", "10 seconds")
    const outcome = yield* store.fail({
      lease: job.lease,
      error: { tag, message: `${tag} happened`, cause: null, verdict: "terminal" },
      retryIn: Option.none()
    })
    assert.strictEqual(outcome._tag, "Dead")
    return job.lease.id
  })

// -----------------------------------------------------------------------------
// Suite
// -----------------------------------------------------------------------------

export interface Backend<R> {
  readonly name: string
  /** Runs a test on the live clock. */
  readonly test: Vitest.Tester<R>
  /** Runs a test whose only waits are {@link Backend.advance}: on `TestClock` where the backend follows it. */
  readonly clocked: Vitest.Tester<R>
  /** Moves the store's time forward: `TestClock.adjust` for the in-memory store, a real sleep for PostgreSQL. */
  readonly advance: (duration: Duration.DurationInput) => Effect.Effect<void>
  /** A job queue with these options on an empty backend. */
  readonly layer: (options: SqlJobQueue.Options) => Layer.Layer<JobQueue.JobQueue, unknown, R>
}

export const conformance = <R>(backend: Backend<R>): void => {
  type Body = () => Effect.Effect<void, unknown, JobQueue.JobQueue | Scope.Scope | R>
  const test = Object.assign(
    (name: string, body: Body, options: SqlJobQueue.Options = defaultOptions) =>
      backend.test(name, () => body().pipe(Effect.scoped, Effect.provide(backend.layer(options))), 30_000),
    {
      /** A test of the store alone, whose waits are all `advance`. */
      clocked: (name: string, body: Body) =>
        backend.clocked(name, () => body().pipe(Effect.scoped, Effect.provide(backend.layer(defaultOptions))), 30_000)
    }
  )
  const advance = backend.advance

  describe(`job queue conformance: ${backend.name}`, () => {
    // ------------------------------------------------------------- enqueue

    test("enqueue confirms with an id, and the job is queued with its encoded payload", () =>
      Effect.gen(function*() {
        const at = new Date("2030-01-02T03:04:05.678Z")
        const enqueued = yield* JobQueue.enqueue(Reminder, { at })
        assert.strictEqual(enqueued.queue, "default")
        assert.isFalse(enqueued.deduplicated)
        const info = yield* statusOf(enqueued.id)
        assert.strictEqual(info.status, "queued")
        assert.strictEqual(info.kind, "reminder")
        assert.strictEqual(info.attempts, 0)
        assert.strictEqual(info.maxAttempts, 3)
        assert.strictEqual(info.priority, 0)
        assert.deepStrictEqual(info.payload, { at: "2030-01-02T03:04:05.678Z" })
        assert.isTrue(Option.isNone(info.dedupKey))
        assert.deepStrictEqual(info.errors, [])
        assert.isTrue(Option.isNone(yield* JobQueue.status("999999999")))
        assert.isTrue(Option.isNone(yield* JobQueue.status("not-a-number")))
      }))

    test("a job due later is scheduled and is not claimed before it is due", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const later = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { delay: "400 millis" })
        const farAway = yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { runAt: new Date(Date.now() + 3_600_000) })
        assert.strictEqual((yield* statusOf(later.id)).status, "scheduled")
        assert.strictEqual((yield* statusOf(farAway.id)).status, "scheduled")
        const none = yield* store.claim({ queue: "default", limit: 10, owner: "w", lease: Duration.seconds(5) })
        assert.strictEqual(none.length, 0)
        const stats = yield* JobQueue.stats
        assert.deepInclude(stats.find((s) => s.queue === "default"), { ready: 0, scheduled: 2, running: 0 })
        const due = yield* eventually(
          store.claim({ queue: "default", limit: 10, owner: "w", lease: Duration.seconds(5) }),
          (jobs) => jobs.length > 0,
          "5 seconds",
          "the delayed job to become due"
        )
        assert.deepStrictEqual(due.map((job) => job.lease.id), [later.id])
      }))

    test("concurrent enqueues and batches each get their own job, with their own payload and options", () =>
      Effect.gen(function*() {
        // Postgres combines concurrent single enqueues into shared statements: every caller must still get the
        // id of its own job.
        const singles = yield* Effect.all(
          Array.from({ length: 120 }, (_, n) =>
            JobQueue.enqueue(Email, { to: `s${n}`, n }, {
              priority: n % 7,
              maxAttempts: 1 + (n % 3),
              ...(n % 10 === 0 ? { dedupKey: `single-${n}` } : {}),
              ...(n % 11 === 0 ? { delay: "1 hour" } : {})
            })),
          { concurrency: "unbounded" }
        )
        const batches = yield* Effect.all(
          Array.from({ length: 6 }, (_, b) =>
            JobQueue.enqueueMany(
              Array.from({ length: 25 }, (_, k) => JobQueue.job(Email, { to: `b${b}`, n: k }, { priority: k % 5 }))
            )),
          { concurrency: "unbounded" }
        )
        const ids = [...singles, ...batches.flat()].map((job) => job.id)
        assert.strictEqual(new Set(ids).size, ids.length)
        for (const [n, job] of singles.entries()) {
          assert.isFalse(job.deduplicated)
          const info = yield* statusOf(job.id)
          assert.deepStrictEqual(info.payload, { to: `s${n}`, n })
          assert.deepInclude(info, { priority: n % 7, maxAttempts: 1 + (n % 3) })
          assert.deepStrictEqual(info.dedupKey, n % 10 === 0 ? Option.some(`single-${n}`) : Option.none())
          assert.strictEqual(info.status, n % 11 === 0 ? "scheduled" : "queued")
        }
        for (const [b, batch] of batches.entries()) {
          for (const [k, job] of batch.entries()) {
            const info = yield* statusOf(job.id)
            assert.deepStrictEqual([info.payload, info.priority], [{ to: `b${b}`, n: k }, k % 5])
          }
        }
      }))

    test("the same dedup key and payload in the same queue returns the existing job, even under concurrency", () =>
      Effect.gen(function*() {
        const key = JobQueue.dedupKey("owner-1", { op: "welcome", campaign: 9 })
        assert.strictEqual(key, JobQueue.dedupKey("owner-1", { campaign: 9, op: "welcome" }))
        assert.notStrictEqual(key, JobQueue.dedupKey("owner-2", { campaign: 9, op: "welcome" }))
        const first = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: key })
        const again = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: key })
        assert.strictEqual(again.id, first.id)
        assert.isTrue(again.deduplicated)
        assert.deepStrictEqual((yield* statusOf(first.id)).payload, { to: "a", n: 1 })
        const elsewhere = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, {
          dedupKey: key,
          queue: "batch"
        })
        assert.notStrictEqual(elsewhere.id, first.id)

        const racing = yield* Effect.all(
          Array.from({ length: 20 }, () => JobQueue.enqueue(Email, { to: "r", n: 1 }, { dedupKey: "race" })),
          { concurrency: "unbounded" }
        )
        assert.strictEqual(new Set(racing.map((r) => r.id)).size, 1)
        assert.strictEqual(racing.filter((r) => !r.deduplicated).length, 1)

        const batch = yield* JobQueue.enqueueMany([
          JobQueue.job(Email, { to: "x", n: 1 }, { dedupKey: "in-batch" }),
          JobQueue.job(Email, { to: "y", n: 2 }),
          JobQueue.job(Email, { to: "x", n: 1 }, { dedupKey: "in-batch" }),
          JobQueue.job(Email, { to: "a", n: 1 }, { dedupKey: key })
        ])
        assert.deepStrictEqual(batch.map((r) => r.deduplicated), [false, false, true, true])
        assert.strictEqual(batch[2]?.id, batch[0]?.id)
        assert.strictEqual(batch[3]?.id, first.id)
        const stats = yield* JobQueue.stats
        // a, race, in-batch, y in default; the copy in batch.
        assert.strictEqual(stats.find((s) => s.queue === "default")?.ready, 4)
        assert.strictEqual(stats.find((s) => s.queue === "batch")?.ready, 1)
      }))

    test(
      "bad input fails with a typed error and stores nothing; enqueueMany is all-or-nothing",
      () =>
        Effect.gen(function*() {
          const Nowhere = JobQueue.define({ kind: "nowhere", queue: "missing", payload: Schema.String })
          const unknownQueue = yield* Effect.flip(JobQueue.enqueue(Nowhere, "x"))
          assert.strictEqual(unknownQueue._tag, "UnknownQueueError")
          const unknownOverride = yield* Effect.flip(JobQueue.enqueue(Email, { to: "a", n: 1 }, { queue: "nope" }))
          assert.strictEqual(unknownOverride._tag, "UnknownQueueError")

          const Loose = JobQueue.define({
            kind: "email",
            queue: "default",
            payload: Schema.Struct({ to: Schema.String, n: Schema.Number.pipe(Schema.int()) })
          })
          const invalid = yield* Effect.flip(JobQueue.enqueue(Loose, { to: "a", n: 1.5 }))
          assert.strictEqual(invalid._tag, "InvalidPayloadError")
          if (invalid._tag === "InvalidPayloadError") assert.include(invalid.issue, "integer")

          const Small = JobQueue.define({ kind: "small", queue: "tiny", payload: Schema.String })
          const tooLarge = yield* Effect.flip(JobQueue.enqueue(Small, "x".repeat(200)))
          assert.strictEqual(tooLarge._tag, "PayloadTooLargeError")
          if (tooLarge._tag === "PayloadTooLargeError") {
            assert.strictEqual(tooLarge.limit, 64)
            assert.strictEqual(tooLarge.bytes, 202)
          }

          for (
            const options of [
              { priority: 1.5 },
              { priority: 40_000 },
              { dedupKey: "" },
              { dedupKey: "k".repeat(513) },
              { runAt: new Date(Number.NaN) },
              { maxAttempts: 0 },
              { delay: -5 }
            ]
          ) {
            const error = yield* Effect.flip(JobQueue.enqueue(Email, { to: "a", n: 1 }, options))
            assert.strictEqual(error._tag, "InvalidOptionsError", JSON.stringify(options))
          }

          const batch = yield* Effect.flip(JobQueue.enqueueMany([
            JobQueue.job(Email, { to: "a", n: 1 }),
            JobQueue.job(Email, { to: "b", n: 2 }, { dedupKey: "kept?" }),
            JobQueue.job(Loose, { to: "c", n: 0.5 })
          ]))
          assert.strictEqual(batch._tag, "InvalidPayloadError")
          if (batch._tag === "InvalidPayloadError") assert.strictEqual(batch.index, 2)
          const oversized = yield* Effect.flip(JobQueue.enqueueMany([
            JobQueue.job(Small, "ok"),
            JobQueue.job(Small, "y".repeat(100))
          ]))
          assert.strictEqual(oversized._tag, "PayloadTooLargeError")

          const stats = yield* JobQueue.stats
          for (const queue of stats) assert.strictEqual(queue.ready + queue.scheduled + queue.running, 0, queue.queue)
          // The dedup key of the failed batch was not taken.
          const fresh = yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedupKey: "kept?" })
          assert.isFalse(fresh.deduplicated)
        }),
      {
        ...defaultOptions,
        queues: { ...defaultOptions.queues, tiny: { maxPayloadBytes: 64 } }
      }
    )

    // ------------------------------------------------------------- admission

    backend.test(
      "admission control rejects with retryAfter, or waits, and stores nothing when refused",
      () =>
        Effect.gen(function*() {
          const rejecting = yield* RateLimiter.make({
            name: "enqueue-reject",
            algorithm: RateLimiter.tokenBucket({ limit: 2, window: "1 minute" })
          })
          const waiting = yield* RateLimiter.make({
            name: "enqueue-wait",
            algorithm: RateLimiter.tokenBucket({ limit: 1, window: "300 millis" })
          })
          const options: SqlJobQueue.Options = {
            queues: {
              default: { ...fast, admission: { limiter: rejecting } },
              batch: { ...fast, admission: { limiter: waiting, onLimited: "wait", maxWait: "1 second" } },
              high_priority: {
                ...fast,
                // Shares the batch queue's bucket (same limiter and key), with almost no patience.
                admission: { limiter: waiting, onLimited: "wait", maxWait: "10 millis", key: "batch" }
              }
            }
          }
          yield* Effect.gen(function*() {
            yield* JobQueue.enqueue(Email, { to: "a", n: 1 })
            yield* JobQueue.enqueue(Email, { to: "b", n: 2 })
            const refused = yield* Effect.flip(JobQueue.enqueue(Email, { to: "c", n: 3 }))
            assert.strictEqual(refused._tag, "AdmissionRejectedError")
            if (refused._tag === "AdmissionRejectedError") {
              assert.strictEqual(refused.reason, "LimitExceeded")
              assert.strictEqual(refused.queue, "default")
              assert.isTrue(Duration.greaterThan(refused.retryAfter, Duration.zero))
              assert.isTrue(Failure.isTransient(refused) && Failure.isRejection(refused))
            }
            const tooMany = yield* Effect.flip(JobQueue.enqueueMany([
              JobQueue.job(Report, { id: 1 }),
              JobQueue.job(Report, { id: 2 })
            ]))
            assert.strictEqual(tooMany._tag, "AdmissionRejectedError")
            if (tooMany._tag === "AdmissionRejectedError") assert.strictEqual(tooMany.reason, "BatchExceedsQuota")

            // Wait mode: the second job waits for the bucket to refill, then is stored.
            yield* JobQueue.enqueue(Report, { id: 1 })
            const waited = yield* Effect.timed(JobQueue.enqueue(Report, { id: 2 }))
            assert.isTrue(Duration.greaterThanOrEqualTo(waited[0], Duration.millis(100)), Duration.format(waited[0]))
            // ...unless the wait would exceed maxWait.
            const impatient = yield* Effect.flip(JobQueue.enqueue(Urgent, { id: 1 }))
            assert.strictEqual(impatient._tag, "AdmissionRejectedError")

            const stats = yield* JobQueue.stats
            assert.strictEqual(stats.find((s) => s.queue === "default")?.ready, 2)
            assert.strictEqual(stats.find((s) => s.queue === "batch")?.ready, 2)
            assert.strictEqual(stats.find((s) => s.queue === "high_priority")?.ready, 0)
          }).pipe(Effect.provide(backend.layer(options)))
        }).pipe(Effect.scoped, Effect.provide(RateLimiter.layerMemory())),
      30_000
    )

    // ------------------------------------------------------------- claims and leases

    test("claims take the highest priority, then the earliest due, and never hand a job out twice", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const low = yield* JobQueue.enqueue(Email, { to: "low", n: 0 }, { priority: -5 })
        const normal = yield* JobQueue.enqueue(Email, { to: "normal", n: 0 })
        const high = yield* JobQueue.enqueue(Email, { to: "high", n: 0 }, { priority: 10 })
        const normal2 = yield* JobQueue.enqueue(Email, { to: "normal2", n: 0 })
        const claimed = yield* store.claim({ queue: "default", limit: 3, owner: "w", lease: Duration.seconds(5) })
        assert.deepStrictEqual(claimed.map((job) => job.lease.id), [high.id, normal.id, normal2.id])
        assert.deepStrictEqual(claimed.map((job) => job.lease.attempt), [1, 1, 1])
        const [rest] = yield* store.claim({ queue: "default", limit: 3, owner: "w", lease: Duration.seconds(5) })
        assert.strictEqual(rest?.lease.id, low.id)

        yield* JobQueue.enqueueMany(Array.from({ length: 40 }, (_, n) => JobQueue.job(Report, { id: n })))
        const grabs = yield* Effect.all(
          Array.from(
            { length: 8 },
            (_, n) => store.claim({ queue: "batch", limit: 7, owner: `w${n}`, lease: Duration.seconds(5) })
          ),
          { concurrency: "unbounded" }
        )
        const ids = grabs.flat().map((job) => job.lease.id)
        assert.strictEqual(ids.length, 40)
        assert.strictEqual(new Set(ids).size, 40)
        const stats = yield* JobQueue.stats
        assert.strictEqual(stats.find((s) => s.queue === "batch")?.running, 40)
      }))

    test.clocked("a lapsed lease is reclaimed, and the stale worker's completion, failure and heartbeat are rejected", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { id } = yield* JobQueue.enqueue(Email, { to: "a", n: 1 })
        const stale = yield* claimOne("default", "worker-a", "150 millis")
        assert.strictEqual((yield* statusOf(id)).status, "running")
        assert.deepStrictEqual(yield* store.reclaim(["default"], 10), [])
        yield* advance("250 millis")
        const reclaimed = yield* store.reclaim(["default"], 10)
        assert.deepStrictEqual(reclaimed, [{ id, queue: "default", outcome: "Retrying", previousOwner: "worker-a" }])
        assert.deepStrictEqual(yield* store.reclaim(["default"], 10), [], "reclaimed once")
        const retrying = yield* statusOf(id)
        assert.strictEqual(retrying.status, "retrying")
        assert.strictEqual(retrying.errors[0]?.tag, "LeaseExpired")
        assert.strictEqual(retrying.errors[0]?.workerId, "worker-a")

        const fresh = yield* claimOne("default", "worker-b", "10 seconds")
        assert.strictEqual(fresh.lease.attempt, 2)
        assert.deepStrictEqual(yield* store.heartbeat([stale.lease], Duration.seconds(10)), [])
        assert.deepStrictEqual(yield* store.complete([stale.lease]), [])
        const lateFailure = yield* store.fail({
          lease: stale.lease,
          error: { tag: "Late", message: "late", cause: null, verdict: "terminal" },
          retryIn: Option.none()
        })
        assert.strictEqual(lateFailure._tag, "Rejected")
        assert.deepStrictEqual(yield* store.release([stale.lease]), [])
        // Same owner and attempt but an older claim epoch is still refused.
        const forged = { ...fresh.lease, epoch: fresh.lease.epoch - 1 }
        assert.deepStrictEqual(yield* store.complete([forged]), [])

        assert.deepStrictEqual(yield* store.heartbeat([fresh.lease], Duration.seconds(10)), [id])
        assert.deepStrictEqual(yield* store.complete([fresh.lease]), [id])
        const done = yield* statusOf(id)
        assert.strictEqual(done.status, "succeeded")
        assert.strictEqual(done.attempts, 2)
        assert.strictEqual(done.errors.length, 1)
        // Finished jobs cannot be completed, failed or reclaimed again.
        assert.deepStrictEqual(yield* store.complete([fresh.lease]), [])
        assert.strictEqual(
          (yield* store.fail({
            lease: fresh.lease,
            error: { tag: "X", message: "x", cause: null, verdict: "transient" },
            retryIn: Option.some(Duration.millis(1))
          }))._tag,
          "Rejected"
        )
      }))

    test.clocked("a lapsed lease with no attempts left goes to the dead-letter queue", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { id } = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { maxAttempts: 1, dedupKey: "one-shot" })
        yield* claimOne("default", "crashed", "100 millis")
        yield* advance("200 millis")
        const [reclaimed] = yield* store.reclaim(["default", "batch"], 10)
        assert.strictEqual(reclaimed?.outcome, "Dead")
        assert.strictEqual((yield* statusOf(id)).status, "dead")
        const entry = yield* entryOf(id)
        assert.strictEqual(entry.reason, "exhausted")
        assert.strictEqual(entry.attempts, 1)
        assert.deepStrictEqual(entry.dedupKey, Option.some("one-shot"))
        assert.strictEqual(entry.errors[0]?.tag, "LeaseExpired")
      }))

    test.clocked("heartbeats keep a lease alive past its visibility timeout", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { id } = yield* JobQueue.enqueue(Email, { to: "a", n: 1 })
        const job = yield* claimOne("default", "slow", "200 millis")
        for (let beat = 0; beat < 6; beat++) {
          yield* advance("100 millis")
          assert.deepStrictEqual(yield* store.heartbeat([job.lease], Duration.millis(200)), [id])
          assert.deepStrictEqual(yield* store.reclaim(["default"], 10), [])
        }
        assert.deepStrictEqual(yield* store.complete([job.lease]), [id])
      }))

    test("releasing a lease hands the job back without burning the attempt", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { id } = yield* JobQueue.enqueue(Email, { to: "a", n: 1 })
        const first = yield* claimOne("default", "leaving", "10 seconds")
        assert.deepStrictEqual(yield* store.release([first.lease]), [id])
        const back = yield* statusOf(id)
        assert.strictEqual(back.status, "queued")
        assert.strictEqual(back.attempts, 0)
        assert.isTrue(Option.isNone(back.leaseOwner))
        const second = yield* claimOne("default", "leaving", "10 seconds")
        assert.strictEqual(second.lease.attempt, 1)
        assert.isTrue(second.lease.epoch > first.lease.epoch)
        assert.deepStrictEqual(yield* store.complete([first.lease]), [], "the released lease is dead")
      }))

    test("a failure with retries left is scheduled with its delay; without, the job is dead-lettered", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const { id } = yield* JobQueue.enqueue(Email, { to: "a", n: 1 })
        const job = yield* claimOne("default", "w", "10 seconds")
        const outcome = yield* store.fail({
          lease: job.lease,
          error: { tag: "Flaky", message: "flaky", cause: "Error: flaky", verdict: "transient" },
          retryIn: Option.some(Duration.millis(300))
        })
        assert.strictEqual(outcome._tag, "Retrying")
        const info = yield* statusOf(id)
        assert.strictEqual(info.status, "retrying")
        const error = info.errors[0]
        assert.isDefined(error)
        if (error !== undefined) {
          const delay = info.runAt.getTime() - error.failedAt.getTime()
          assert.isTrue(delay >= 299 && delay <= 301, `${delay}`)
          assert.deepInclude(error, { attempt: 1, tag: "Flaky", cause: "Error: flaky", workerId: "w" })
        }
        assert.strictEqual(
          (yield* store.claim({ queue: "default", limit: 1, owner: "w", lease: Duration.seconds(1) })).length,
          0
        )
        const stats = yield* JobQueue.stats
        assert.deepInclude(stats.find((s) => s.queue === "default"), { ready: 0, retrying: 1 })
        const again = yield* eventually(
          store.claim({ queue: "default", limit: 1, owner: "w", lease: Duration.seconds(10) }),
          (jobs) => jobs.length === 1,
          "5 seconds",
          "the retry to become due"
        )
        assert.strictEqual(again[0]?.lease.attempt, 2)
      }))

    // ------------------------------------------------------------- workers

    test("a worker runs jobs to success and counts them", () =>
      Effect.gen(function*() {
        const before = yield* counterValue("default", "succeeded")
        const durationsBefore = yield* histogramCount(Metrics.jobDuration, "default")
        const waitsBefore = yield* histogramCount(Metrics.jobWait, "default")
        const seen: Array<number> = []
        const jobs = yield* JobQueue.enqueueMany(
          Array.from({ length: 25 }, (_, n) => JobQueue.job(Email, { to: "a", n }))
        )
        const worker = yield* JobWorker.make({
          handlers: [JobWorker.handler(Email, (payload) => Effect.sync(() => seen.push(payload.n)))]
        })
        assert.deepStrictEqual(worker.queues, ["default"])
        for (const job of jobs) yield* waitForStatus(job.id, "succeeded")
        assert.deepStrictEqual([...seen].sort((a, b) => a - b), Array.from({ length: 25 }, (_, n) => n))
        // The worker counts a success just after the database recorded it.
        yield* eventually(worker.stats, (s) => s.succeeded === 25, "5 seconds", "the worker's counters")
        assert.strictEqual((yield* counterValue("default", "succeeded")) - before, 25)
        assert.strictEqual((yield* histogramCount(Metrics.jobDuration, "default")) - durationsBefore, 25)
        assert.strictEqual((yield* histogramCount(Metrics.jobWait, "default")) - waitsBefore, 25)
        const stats = yield* worker.stats
        assert.deepInclude(stats, { claimed: 25, succeeded: 25, retried: 0, deadLettered: 0, lateOutcomesRejected: 0 })
        const info = yield* statusOf(jobs[0]?.id ?? "")
        assert.isTrue(Option.isSome(info.finishedAt))
        assert.isTrue(Option.isNone(info.leaseOwner))
      }))

    test("transient failures are retried with growing backoff, and the history keeps every attempt", () =>
      Effect.gen(function*() {
        let calls = 0
        const { id } = yield* JobQueue.enqueue(Email, { to: "flaky", n: 1 })
        const worker = yield* JobWorker.make({
          workerId: "retrier",
          handlers: [
            JobWorker.handler(Email, () =>
              Effect.suspend(() => {
                calls += 1
                return calls < 3
                  ? Effect.fail(new Failure.TransientError({ reason: "Lifted", message: `attempt ${calls} failed` }))
                  : Effect.void
              }))
          ]
        })
        const done = yield* waitForStatus(id, "succeeded")
        assert.strictEqual(done.attempts, 3)
        assert.deepStrictEqual(done.errors.map((e) => [e.attempt, e.tag, e.message, e.verdict, e.workerId]), [
          [1, "TransientError", "attempt 1 failed", "transient", "retrier"],
          [2, "TransientError", "attempt 2 failed", "transient", "retrier"]
        ])
        // base 50 ms, doubling, ±25 %: the second wait is at least 75 ms, the first at least 37.5 ms.
        const [first, second] = done.errors
        const startedAfter = (error: JobQueue.AttemptError | undefined, next: Date | undefined) =>
          error === undefined || next === undefined ? -1 : next.getTime() - error.failedAt.getTime()
        assert.isAtLeast(startedAfter(first, second?.startedAt ?? undefined), 37)
        assert.isAtLeast(startedAfter(second, Option.getOrUndefined(done.startedAt)), 75)
        const stats = yield* eventually(worker.stats, (s) => s.succeeded === 1, "5 seconds", "the worker's counters")
        assert.deepInclude(stats, { retried: 2, succeeded: 1 })
      }))

    test("retry delays follow min(base·2^(n-1)·(1±jitter), cap)", () =>
      Effect.gen(function*() {
        const { id } = yield* JobQueue.enqueue(Email, { to: "always", n: 1 })
        yield* JobWorker.make({
          handlers: [JobWorker.handler(Email, () => Effect.fail(new Flaky({ message: "nope" })))]
        })
        const dead = yield* waitForStatus(id, "dead", "20 seconds")
        assert.strictEqual(dead.attempts, 4)
        const starts = [...dead.errors.slice(1).map((e) => e.startedAt), null]
        const delays = dead.errors.slice(0, 3).map((error, n) => {
          const next = starts[n]
          return next === null || next === undefined ? -1 : next.getTime() - error.failedAt.getTime()
        })
        // base 120 ms, cap 400 ms, jitter 25 %: [90, 150], [180, 300], [360, 400] (capped) plus at most a poll.
        const bounds: ReadonlyArray<readonly [number, number]> = [[90, 150], [180, 300], [360, 400]]
        delays.forEach((delay, n) => {
          const [low, high] = bounds[n] ?? [0, 0]
          assert.isTrue(delay >= low - 1 && delay <= high + 500, `retry ${n + 1} waited ${delay} ms`)
        })
      }), {
      ...defaultOptions,
      queues: {
        default: { ...fast, retry: { base: "120 millis", cap: "400 millis", jitter: 0.25, maxAttempts: 4 } }
      }
    })

    test("a terminal failure skips the retries and goes straight to the dead-letter queue", () =>
      Effect.gen(function*() {
        const before = yield* counterValue("default", "dead_lettered")
        const { id } = yield* JobQueue.enqueue(Email, { to: "bad", n: 1 })
        yield* JobWorker.make({
          handlers: [
            JobWorker.handler(
              Email,
              () => Effect.fail(new Failure.TerminalError({ reason: "Lifted", message: "card declined", status: 402 }))
            )
          ]
        })
        yield* waitForStatus(id, "dead")
        const entry = yield* entryOf(id)
        assert.strictEqual(entry.reason, "terminal")
        assert.strictEqual(entry.attempts, 1)
        assert.strictEqual(entry.errors[0]?.tag, "TerminalError")
        assert.strictEqual(entry.errors[0]?.verdict, "terminal")
        yield* eventually(
          counterValue("default", "dead_lettered"),
          (count) => count - before === 1,
          "5 seconds",
          "the dead_lettered counter"
        )
      }))

    test("a payload that no longer decodes is terminal", () =>
      Effect.gen(function*() {
        const { id } = yield* JobQueue.enqueue(Email, { to: "old", n: 1 })
        let ran = false
        yield* JobWorker.make({ handlers: [JobWorker.handler(EmailV2, () => Effect.sync(() => (ran = true)))] })
        yield* waitForStatus(id, "dead")
        const entry = yield* entryOf(id)
        assert.isFalse(ran)
        assert.strictEqual(entry.attempts, 1)
        assert.strictEqual(entry.errors[0]?.tag, "PayloadDecodeError")
        assert.include(entry.errors[0]?.message ?? "", "locale")
      }))

    test("after its last attempt a job is dead-lettered with its full envelope", () =>
      Effect.gen(function*() {
        const { id } = yield* JobQueue.enqueue(Email, { to: "doomed", n: 7 }, { dedupKey: "doomed-1", priority: 3 })
        const enqueuedAt = (yield* statusOf(id)).enqueuedAt
        yield* JobWorker.make({
          workerId: "undertaker",
          handlers: [
            JobWorker.handler(Email, (payload, job) =>
              Effect.fail(new Flaky({ message: `${payload.to} failed on attempt ${job.attempt}` })))
          ]
        })
        yield* waitForStatus(id, "dead")
        const entry = yield* entryOf(id)
        assert.deepInclude(entry, {
          id,
          queue: "default",
          kind: "email",
          priority: 3,
          attempts: 3,
          maxAttempts: 3,
          reason: "exhausted",
          status: "pending"
        })
        assert.deepStrictEqual(entry.payload, { to: "doomed", n: 7 })
        assert.deepStrictEqual(entry.dedupKey, Option.some("doomed-1"))
        assert.deepStrictEqual(
          entry.errors.map((e) => [e.attempt, e.tag, e.message, e.verdict, e.workerId]),
          [1, 2, 3].map((n) => [n, "Flaky", `doomed failed on attempt ${n}`, "transient", "undertaker"])
        )
        for (const error of entry.errors) {
          assert.include(error.cause ?? "", "Flaky")
          assert.isTrue(error.startedAt !== null && error.startedAt.getTime() <= error.failedAt.getTime())
        }
        assert.strictEqual(entry.enqueuedAt.getTime(), enqueuedAt.getTime())
        assert.isTrue(entry.deadLetteredAt.getTime() >= enqueuedAt.getTime())
        // A dead job frees its dedup key: the same key makes a new job (conformance.dedup.ts has the rest).
        const again = yield* JobQueue.enqueue(Email, { to: "doomed", n: 7 }, { dedupKey: "doomed-1" })
        assert.isFalse(again.deduplicated)
        assert.notStrictEqual(again.id, id)
      }))

    test(
      "a handler past the queue's maxRunTime is interrupted and retried, then dead-lettered with JobTimeoutError",
      () =>
        Effect.gen(function*() {
          let interrupted = 0
          const hanging = yield* JobQueue.enqueue(Email, { to: "hang", n: 1 })
          const quick = yield* JobQueue.enqueue(Email, { to: "quick", n: 2 })
          const worker = yield* JobWorker.make({
            workerId: "timekeeper",
            handlers: [
              JobWorker.handler(Email, (payload) =>
                payload.to === "hang"
                  ? Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted += 1))))
                  : Effect.sleep("20 millis"))
            ]
          })
          const done = yield* waitForStatus(quick.id, "succeeded")
          assert.strictEqual(done.attempts, 1)
          assert.deepStrictEqual(done.errors, [])
          yield* waitForStatus(hanging.id, "dead")
          const entry = yield* entryOf(hanging.id)
          assert.deepInclude(entry, { attempts: 3, reason: "exhausted" })
          assert.deepStrictEqual(
            entry.errors.map((e) => [e.attempt, e.tag, e.verdict, e.workerId]),
            [1, 2, 3].map((n) => [n, "JobTimeoutError", "transient", "timekeeper"])
          )
          for (const error of entry.errors) {
            assert.include(error.message, `Job ${hanging.id} (email) in queue "default" ran longer than`)
            assert.include(error.message, "300ms")
            const ran = error.startedAt === null ? -1 : error.failedAt.getTime() - error.startedAt.getTime()
            assert.isAtLeast(ran, 290, `attempt ${error.attempt} ran ${ran} ms`)
          }
          // Every attempt's handler was really stopped, not left running in the background.
          assert.strictEqual(interrupted, 3)
          const stats = yield* eventually(worker.stats, (s) => s.deadLettered === 1, "5 seconds", "the counters")
          assert.deepInclude(stats, { succeeded: 1, retried: 2, deadLettered: 1, leasesLost: 0 })
          assert.strictEqual(yield* worker.inFlight, 0)
        }),
      {
        ...defaultOptions,
        queues: {
          default: {
            ...fast,
            maxRunTime: "300 millis",
            retry: { base: "50 millis", cap: "100 millis", maxAttempts: 3 }
          }
        }
      }
    )

    test(
      "no job runs on two workers at once while its lease is valid, even when jobs outlive the lease",
      () =>
        Effect.gen(function*() {
          const running = new Set<number>()
          const runs = new Map<number, number>()
          let overlaps = 0
          const handler = JobWorker.handler(Report, (payload) =>
            Effect.acquireUseRelease(
              Effect.sync(() => {
                if (running.has(payload.id)) overlaps += 1
                running.add(payload.id)
                runs.set(payload.id, (runs.get(payload.id) ?? 0) + 1)
              }),
              // Every twentieth job runs longer than the 1 s lease: only heartbeats keep it.
              () => Effect.sleep(payload.id % 20 === 0 ? "1300 millis" : `${payload.id % 7} millis`),
              () => Effect.sync(() => running.delete(payload.id))
            ))
          const total = 120
          yield* JobQueue.enqueueMany(Array.from({ length: total }, (_, id) => JobQueue.job(Report, { id })))
          const workers = yield* Effect.all(
            Array.from({ length: 4 }, (_, n) => JobWorker.make({ workerId: `w${n}`, handlers: [handler] }))
          )
          yield* eventually(
            JobQueue.stats,
            (stats) => {
              const batch = stats.find((s) => s.queue === "batch")
              return batch !== undefined && batch.ready + batch.running + batch.retrying === 0
            },
            "30 seconds",
            "the batch queue to drain"
          )
          assert.strictEqual(overlaps, 0)
          assert.strictEqual(runs.size, total)
          assert.deepStrictEqual([...new Set(runs.values())], [1], "each job ran exactly once")
          // A worker counts a success just after the database recorded it.
          const stats = yield* eventually(
            Effect.all(workers.map((w) => w.stats)),
            (all) => all.reduce((sum, s) => sum + s.succeeded, 0) === total,
            "5 seconds",
            "the workers' counters"
          )
          assert.strictEqual(stats.reduce((sum, s) => sum + s.leasesLost + s.reclaimed, 0), 0)
        }),
      {
        ...defaultOptions,
        queues: {
          batch: {
            concurrency: 6,
            pollInterval: "20 millis",
            visibilityTimeout: "1 second",
            heartbeatInterval: "100 millis",
            reclaimInterval: "50 millis"
          }
        }
      }
    )

    test(
      "with 10,000 batch jobs queued and the batch tier saturated, high-priority jobs start within their target",
      () =>
        Effect.gen(function*() {
          const batchConcurrency = 4
          const batch = JobWorker.handler(Report, () => Effect.sleep("20 millis"))
          const urgent = JobWorker.handler(Urgent, () => Effect.void)
          yield* JobQueue.enqueueMany(Array.from({ length: BACKLOG }, (_, id) => JobQueue.job(Report, { id })))
          yield* JobWorker.make({ handlers: [batch, urgent] })
          yield* eventually(
            JobQueue.stats,
            (stats) => (stats.find((s) => s.queue === "batch")?.running ?? 0) === batchConcurrency,
            "10 seconds",
            "the batch tier to be saturated"
          )
          const urgentJobs: Array<JobQueue.Enqueued> = []
          for (let id = 0; id < 20; id++) {
            urgentJobs.push(yield* JobQueue.enqueue(Urgent, { id }))
            yield* Effect.sleep("25 millis")
          }
          // The wait of each urgent job, from the backend's own timestamps: enqueued to started.
          const waits: Array<number> = []
          for (const job of urgentJobs) {
            const info = yield* waitForStatus(job.id, "succeeded")
            const startedAt = Option.getOrThrowWith(info.startedAt, () => new Error(`job ${job.id} never started`))
            waits.push(startedAt.getTime() - info.enqueuedAt.getTime())
          }
          const batchNow = (yield* JobQueue.stats).find((s) => s.queue === "batch")
          console.log(
            `[${backend.name}] high-priority waits (ms) behind a saturated batch tier: ${waits.join(", ")}; ` +
              `batch backlog then: ${batchNow?.ready}`
          )
          // The batch tier was still busy with its backlog the whole time: the urgent jobs ran beside it.
          assert.isAbove(batchNow?.ready ?? 0, BACKLOG - 1_000)
          for (const [i, wait] of waits.entries()) {
            assert.isAtMost(wait, Duration.toMillis(HIGH_PRIORITY_TARGET), `urgent job ${i} waited ${wait} ms`)
          }
        }),
      {
        ...defaultOptions,
        queues: {
          high_priority: { ...fast, concurrency: 2 },
          batch: { ...fast, concurrency: 4 }
        }
      }
    )

    test("graceful shutdown stops claiming and lets running jobs finish within the grace period", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const first = yield* JobQueue.enqueue(Email, { to: "slow", n: 1 })
        const worker = yield* JobWorker.make({
          gracePeriod: "5 seconds",
          handlers: [
            JobWorker.handler(
              Email,
              () => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.sleep("300 millis")))
            )
          ]
        })
        yield* Deferred.await(started)
        const stopping = yield* Effect.fork(worker.shutdown)
        yield* Effect.sleep("50 millis")
        const second = yield* JobQueue.enqueue(Email, { to: "late", n: 2 })
        yield* Effect.sleep("100 millis")
        yield* stopping.await
        assert.strictEqual((yield* statusOf(first.id)).status, "succeeded")
        assert.strictEqual((yield* statusOf(second.id)).status, "queued", "no claim after shutdown began")
        assert.deepInclude(yield* worker.stats, { succeeded: 1, released: 0 })
        yield* worker.shutdown // idempotent
      }))

    test("graceful shutdown hands back the leases of jobs that outlive the grace period", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const interrupted = yield* Deferred.make<void>()
        const { id } = yield* JobQueue.enqueue(Email, { to: "endless", n: 1 })
        const worker = yield* JobWorker.make({
          gracePeriod: "200 millis",
          handlers: [
            JobWorker.handler(Email, () =>
              Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Effect.never),
                Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
              ))
          ]
        })
        yield* Deferred.await(started)
        assert.strictEqual(yield* worker.inFlight, 1)
        yield* worker.shutdown
        assert.isTrue(yield* Deferred.isDone(interrupted))
        const info = yield* statusOf(id)
        assert.strictEqual(info.status, "queued")
        assert.strictEqual(info.attempts, 0, "the attempt is not burned")
        assert.deepStrictEqual(info.errors, [])
        assert.isTrue(Option.isNone(info.leaseOwner))
        assert.deepInclude(yield* worker.stats, { released: 1, succeeded: 0 })
        assert.strictEqual(yield* worker.inFlight, 0)
      }))

    test("closing the worker's scope shuts it down gracefully", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const { id } = yield* JobQueue.enqueue(Email, { to: "endless", n: 1 })
        yield* Effect.scoped(Effect.gen(function*() {
          yield* JobWorker.make({
            gracePeriod: "100 millis",
            handlers: [
              JobWorker.handler(Email, () => Deferred.succeed(started, undefined).pipe(Effect.zipRight(Effect.never)))
            ]
          })
          yield* Deferred.await(started)
        }))
        const info = yield* statusOf(id)
        assert.deepInclude({ status: info.status, attempts: info.attempts }, { status: "queued", attempts: 0 })
      }))

    test("worker options are validated", () =>
      Effect.gen(function*() {
        const handler = JobWorker.handler(Email, () => Effect.void)
        const errors = yield* Effect.all([
          Effect.flip(JobWorker.make({ handlers: [handler, handler] })),
          Effect.flip(JobWorker.make({ handlers: [handler], queues: ["nope"] })),
          Effect.flip(JobWorker.make({ handlers: [handler], concurrency: { default: 0 } })),
          Effect.flip(JobWorker.make({ handlers: [handler], gracePeriod: -1 })),
          Effect.flip(JobWorker.make<never>({ handlers: [] }))
        ])
        assert.deepStrictEqual(errors.map((e) => e._tag), [
          "InvalidOptionsError",
          "UnknownQueueError",
          "InvalidOptionsError",
          "InvalidOptionsError",
          "InvalidOptionsError"
        ])
      }))

    // ------------------------------------------------------------- dead-letter queue

    test("dead letters are listed with filters and keyset pagination, and shown in full", () =>
      Effect.gen(function*() {
        yield* JobQueue.enqueueMany([
          ...Array.from({ length: 5 }, (_, n) => JobQueue.job(Email, { to: `e${n}`, n })),
          ...Array.from({ length: 3 }, (_, id) => JobQueue.job(Report, { id }))
        ])
        const dead: Array<string> = []
        for (let n = 0; n < 5; n++) {
          dead.push(yield* killOne("default", n % 2 === 0 ? "Declined" : "Invalid"))
          yield* Effect.sleep("3 millis")
        }
        for (let n = 0; n < 3; n++) dead.push(yield* killOne("batch", "Declined"))

        const pages: Array<ReadonlyArray<DeadLetter.Entry>> = []
        let page = yield* DeadLetter.list({ limit: 3 })
        pages.push(page.entries)
        while (Option.isSome(page.next)) {
          page = yield* DeadLetter.list({ limit: 3, cursor: page.next.value })
          pages.push(page.entries)
        }
        assert.deepStrictEqual(pages.map((p) => p.length), [3, 3, 2])
        const newestFirst = pages.flat().map((e) => e.id)
        assert.deepStrictEqual(newestFirst, [...dead].reverse())

        let oldest = yield* DeadLetter.list({ limit: 5, order: "oldest" })
        const ascending = [...oldest.entries]
        while (Option.isSome(oldest.next)) {
          oldest = yield* DeadLetter.list({ limit: 5, order: "oldest", cursor: oldest.next.value })
          ascending.push(...oldest.entries)
        }
        assert.deepStrictEqual(ascending.map((e) => e.id), dead)

        const ids = (entries: ReadonlyArray<DeadLetter.Entry>) => entries.map((e) => e.id).sort()
        assert.deepStrictEqual(ids((yield* DeadLetter.list({ queue: "batch" })).entries), [...dead.slice(5)].sort())
        assert.deepStrictEqual(ids((yield* DeadLetter.list({ kind: "email" })).entries), [...dead.slice(0, 5)].sort())
        assert.deepStrictEqual(
          ids((yield* DeadLetter.list({ queue: "default", errorTag: "Invalid" })).entries),
          [dead[1] ?? "", dead[3] ?? ""].sort()
        )
        assert.strictEqual((yield* DeadLetter.list({ status: "replayed" })).entries.length, 0)
        assert.strictEqual((yield* DeadLetter.list({ since: new Date(Date.now() + 60_000) })).entries.length, 0)
        assert.strictEqual((yield* DeadLetter.list({ until: new Date(Date.now() + 60_000) })).entries.length, 8)

        const shown = yield* entryOf(dead[0] ?? "")
        assert.deepInclude(shown, { queue: "default", kind: "email", attempts: 1, reason: "terminal" })
        assert.deepStrictEqual(shown.payload, { to: "e0", n: 0 })
        assert.deepStrictEqual(shown.errors.map((e) => [e.tag, e.message, e.workerId]), [[
          "Declined",
          "Declined happened",
          "killer"
        ]])
        assert.isTrue(Option.isNone(yield* DeadLetter.show("424242")))

        for (const bad of [{ limit: 0 }, { limit: 1001 }, { cursor: "!!" }, { cursor: "bm9wZQ" }]) {
          const error = yield* Effect.flip(DeadLetter.list(bad))
          assert.strictEqual(error._tag, "InvalidOptionsError", JSON.stringify(bad))
        }
        const stats = yield* JobQueue.stats
        assert.strictEqual(stats.find((s) => s.queue === "default")?.deadLetters, 5)
        assert.strictEqual(stats.find((s) => s.queue === "batch")?.deadLetters, 3)
      }))

    test("replay creates one fresh job in the source queue with attempts reset, and is idempotent", () =>
      Effect.gen(function*() {
        const before = yield* counterValue("default", "replayed")
        yield* JobQueue.enqueue(Email, { to: "again", n: 1 }, { priority: 2, dedupKey: "replay-me" })
        const deadId = yield* killOne("default", "Declined")
        const replayed = yield* DeadLetter.replay(deadId)
        assert.deepInclude(replayed, { _tag: "Replayed", id: deadId, queue: "default", created: true })
        const fresh = yield* statusOf(replayed.job)
        assert.deepInclude(fresh, { status: "queued", attempts: 0, kind: "email", priority: 2, queue: "default" })
        assert.deepStrictEqual(fresh.payload, { to: "again", n: 1 })
        assert.deepStrictEqual(fresh.replayOf, Option.some(deadId))
        assert.deepStrictEqual(fresh.errors, [])
        const entry = yield* entryOf(deadId)
        assert.strictEqual(entry.status, "replayed")
        assert.deepStrictEqual(entry.replayedAs, Option.some(replayed.job))
        assert.isTrue(Option.isSome(entry.replayedAt))

        const twice = yield* DeadLetter.replay(deadId)
        assert.deepInclude(twice, { job: replayed.job, created: false })
        assert.strictEqual((yield* counterValue("default", "replayed")) - before, 1)
        const stats = yield* JobQueue.stats
        assert.deepInclude(stats.find((s) => s.queue === "default"), { ready: 1, deadLetters: 0 })

        const discardedId = yield* Effect.zipRight(JobQueue.enqueue(Email, { to: "d", n: 1 }), killOne("default", "X"))
        yield* DeadLetter.discard(discardedId)
        const many = yield* DeadLetter.replayMany([deadId, "777777", discardedId, deadId, "bogus"])
        assert.deepStrictEqual(many.map((r) => r._tag), ["Replayed", "NotFound", "Discarded", "NotFound"])
        const conflict = yield* Effect.flip(DeadLetter.replay(discardedId))
        assert.strictEqual(conflict._tag, "DeadLetterConflictError")
        const missing = yield* Effect.flip(DeadLetter.replay("777777"))
        assert.strictEqual(missing._tag, "DeadLetterNotFoundError")
      }))

    test("concurrent replays of the same entries create exactly one job per entry", () =>
      Effect.gen(function*() {
        yield* JobQueue.enqueueMany(Array.from({ length: 3 }, (_, n) => JobQueue.job(Email, { to: "c", n })))
        const dead = [
          yield* killOne("default", "X"),
          yield* killOne("default", "X"),
          yield* killOne("default", "X")
        ]
        const results = yield* Effect.all(
          Array.from({ length: 12 }, (_, n) =>
            n % 3 === 0
              ? DeadLetter.replayMany([...dead].reverse())
              : DeadLetter.replay(dead[n % 3] ?? "").pipe(Effect.map((r) => [r]))),
          { concurrency: "unbounded" }
        )
        const replayed = results.flat().flatMap((r) => (r._tag === "Replayed" ? [r] : []))
        for (const id of dead) {
          const forEntry = replayed.filter((r) => r.id === id)
          assert.strictEqual(new Set(forEntry.map((r) => r.job)).size, 1, `one job for entry ${id}`)
          assert.strictEqual(forEntry.filter((r) => r.created).length, 1, `created once for entry ${id}`)
        }
        const stats = yield* JobQueue.stats
        assert.deepInclude(stats.find((s) => s.queue === "default"), { ready: 3, deadLetters: 0 })
      }))

    test("replay with an edited payload re-validates it with the kind's Schema", () =>
      Effect.gen(function*() {
        yield* JobQueue.enqueue(Reminder, { at: new Date("2030-01-01T00:00:00.000Z") })
        const deadId = yield* killOne("default", "BadDate")
        const rejected = yield* Effect.flip(DeadLetter.replay(deadId, { payload: { at: "not a date" } }))
        assert.strictEqual(rejected._tag, "InvalidPayloadError")
        assert.strictEqual((yield* entryOf(deadId)).status, "pending", "nothing half-written")
        const replayed = yield* DeadLetter.replay(deadId, { payload: { at: "2031-05-06T07:08:09.000Z" } })
        assert.deepStrictEqual((yield* statusOf(replayed.job)).payload, { at: "2031-05-06T07:08:09.000Z" })

        const Unregistered = JobQueue.define({ kind: "unregistered", queue: "default", payload: Schema.String })
        yield* JobQueue.enqueue(Unregistered, "x", { queue: "batch" })
        const orphan = yield* killOne("batch", "X")
        const unknownKind = yield* Effect.flip(DeadLetter.replay(orphan, { payload: "y" }))
        assert.strictEqual(unknownKind._tag, "UnknownJobKindError")
        // Without an edit no Schema is needed.
        assert.isTrue((yield* DeadLetter.replay(orphan)).created)
      }))

    test("discard is idempotent and never touches a replayed entry; replayWhere redrives oldest first", () =>
      Effect.gen(function*() {
        const before = yield* counterValue("default", "discarded")
        yield* JobQueue.enqueueMany(Array.from({ length: 5 }, (_, n) => JobQueue.job(Email, { to: "d", n })))
        const dead: Array<string> = []
        for (let n = 0; n < 5; n++) {
          dead.push(yield* killOne("default", n < 3 ? "Timeout" : "Declined"))
          yield* Effect.sleep("3 millis")
        }
        const [a = "", b = "", c = "", d = "", e = ""] = dead
        assert.strictEqual((yield* DeadLetter.discard(a)).outcome, "discarded")
        assert.strictEqual((yield* DeadLetter.discard(a)).outcome, "already_discarded")
        assert.strictEqual((yield* entryOf(a)).status, "discarded")
        yield* DeadLetter.replay(b)
        const conflict = yield* Effect.flip(DeadLetter.discard(b))
        assert.strictEqual(conflict._tag, "DeadLetterConflictError")
        const missing = yield* Effect.flip(DeadLetter.discard("888888"))
        assert.strictEqual(missing._tag, "DeadLetterNotFoundError")
        const many = yield* DeadLetter.discardMany([a, b, "888888", e, e])
        assert.deepStrictEqual(many.map((r) => [r.id, r.outcome]), [
          [a, "already_discarded"],
          [b, "replayed"],
          ["888888", "not_found"],
          [e, "discarded"]
        ])
        assert.strictEqual((yield* counterValue("default", "discarded")) - before, 2)

        const redriven = yield* DeadLetter.replayWhere({ errorTag: "Timeout", limit: 5 })
        assert.deepStrictEqual(redriven.map((r) => r.id), [c])
        const rest = yield* DeadLetter.replayWhere({ queue: "default" })
        assert.deepStrictEqual(rest.map((r) => r.id), [d])
        assert.strictEqual((yield* DeadLetter.list()).entries.length, 0)
        const all = yield* DeadLetter.list({ status: "all" })
        assert.strictEqual(all.entries.length, 5)
      }))

    // ------------------------------------------------------------- metrics

    test("depth gauges are set from one aggregate read of the backend", () =>
      Effect.gen(function*() {
        yield* JobQueue.enqueueMany([
          JobQueue.job(Email, { to: "a", n: 1 }),
          JobQueue.job(Email, { to: "b", n: 2 }),
          JobQueue.job(Email, { to: "c", n: 3 }),
          JobQueue.job(Email, { to: "later", n: 4 }, { delay: "1 hour" }),
          JobQueue.job(Report, { id: 1 })
        ])
        yield* claimOne("batch", "w", "10 seconds")
        yield* killOne("default", "X")
        yield* JobQueue.reportMetrics({ interval: "50 millis" })
        const read = Effect.all({
          ready: gaugeValue(Metrics.jobQueueDepth, { queue: "default", state: "ready" }),
          scheduled: gaugeValue(Metrics.jobQueueDepth, { queue: "default", state: "scheduled" }),
          running: gaugeValue(Metrics.jobQueueDepth, { queue: "batch", state: "running" }),
          batchReady: gaugeValue(Metrics.jobQueueDepth, { queue: "batch", state: "ready" }),
          dead: gaugeValue(Metrics.deadLetterDepth, { queue: "default" }),
          highReady: gaugeValue(Metrics.jobQueueDepth, { queue: "high_priority", state: "ready" })
        })
        const expected = { ready: 2, scheduled: 1, running: 1, batchReady: 0, dead: 1, highReady: 0 }
        const values = yield* eventually(
          read,
          (v) => JSON.stringify(v) === JSON.stringify(expected),
          "5 seconds",
          "the gauges"
        )
        assert.deepStrictEqual(values, expected)
        const invalid = yield* Effect.exit(JobQueue.reportMetrics({ interval: 0 }))
        assert.isTrue(Exit.isFailure(invalid))
      }))

    test("backend options are validated", () =>
      Effect.sync(() => {
        const bad: ReadonlyArray<JobQueue.Options> = [
          { queues: {} },
          { queues: { "bad name!": {} } },
          { queues: { q: { concurrency: 0 } } },
          { queues: { q: { visibilityTimeout: "10 millis" } } },
          { queues: { q: { visibilityTimeout: "1 second", heartbeatInterval: "2 seconds" } } },
          { queues: { q: { retry: { base: "1 minute", cap: "1 second" } } } },
          { queues: { q: { retry: { jitter: 1.5 } } } },
          { queues: { q: { retry: { maxAttempts: 0 } } } },
          { queues: { q: { maxPayloadBytes: 0 } } },
          { queues: { q: { prefetch: -1 } } },
          { queues: { q: { prefetch: 1.5 } } },
          { queues: { q: { maxRunTime: 0 } } },
          { queues: { q: { maxRunTime: "-1 seconds" } } },
          { queues: { q: { maxRunTime: Duration.infinity } } },
          { queues: { q: {} }, jobs: [JobQueue.define({ kind: "bad kind!", queue: "q", payload: Schema.String })] },
          { queues: { default: {} }, jobs: [Email, Email] }
        ]
        for (const options of bad) {
          const result = JobQueue.makeConfig(options)
          assert.isTrue(Either.isLeft(result), JSON.stringify(options))
          if (Either.isLeft(result)) assert.strictEqual(result.left._tag, "InvalidOptionsError")
        }
        const zeroRunTime = JobQueue.makeConfig({ queues: { q: { maxRunTime: "0 millis" } } })
        assert.deepInclude(Either.isLeft(zeroRunTime) ? zeroRunTime.left : undefined, {
          _tag: "InvalidOptionsError",
          option: "queues.q.maxRunTime"
        })
        const limited = JobQueue.makeConfig({ queues: { q: { maxRunTime: "2 minutes" } } })
        assert.deepStrictEqual(
          Either.map(limited, (config) => config.queues.get("q")?.maxRunTime),
          Either.right(Option.some(Duration.minutes(2)))
        )
        const good = JobQueue.makeConfig({ queues: { default: {} } })
        assert.isTrue(Either.isRight(good))
        if (Either.isRight(good)) {
          const queue = good.right.queues.get("default")
          assert.deepInclude(queue, { concurrency: 10, prefetch: 10, batchSize: 20, maxPayloadBytes: 262_144 })
          assert.strictEqual(Duration.toMillis(queue?.visibilityTimeout ?? Duration.zero), 30_000)
          assert.strictEqual(Duration.toMillis(queue?.heartbeatInterval ?? Duration.zero), 10_000)
          assert.strictEqual(Duration.toMillis(queue?.retry.base ?? Duration.zero), 5_000)
          assert.strictEqual(Duration.toMillis(queue?.retry.cap ?? Duration.zero), 300_000)
          assert.deepInclude(queue?.retry, { jitter: 0.25, maxAttempts: 5 })
          assert.isTrue(Option.isNone(queue?.maxRunTime ?? Option.some(Duration.zero)), "no run-time limit")
        }
      }))

    // ------------------------------------------------------------- retention

    test.clocked("prune deletes only succeeded and cancelled jobs and settled dead letters older than the cutoff", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const completeOne = (queue: string) =>
          Effect.flatMap(claimOne(queue, "finisher", "10 seconds"), (job) => store.complete([job.lease]))

        // Old enough to prune: a succeeded job, a discarded entry and a replayed one (its replay job stays ready).
        const oldDone = yield* JobQueue.enqueue(Email, { to: "old", n: 1 }, { dedupKey: "pruned-key" })
        yield* completeOne("default")
        const discarded = yield* Effect.zipRight(JobQueue.enqueue(Urgent, { id: 1 }), killOne("high_priority", "X"))
        yield* DeadLetter.discard(discarded)
        const replayed = yield* Effect.zipRight(JobQueue.enqueue(Urgent, { id: 2 }), killOne("high_priority", "X"))
        const replay = yield* DeadLetter.replay(replayed)
        // Old but pending: never pruned, nor its dead job.
        const pending = yield* Effect.zipRight(JobQueue.enqueue(Report, { id: 1 }), killOne("batch", "X"))
        // An old cancelled job: pruned as a succeeded one is.
        const oldCancelled = yield* JobQueue.enqueue(Report, { id: 7 }, { delay: "1 hour" })
        assert.strictEqual((yield* JobQueue.cancel(oldCancelled.id))._tag, "Cancelled")
        yield* advance("1200 millis")
        const recentCancelled = yield* JobQueue.enqueue(Report, { id: 8 }, { delay: "1 hour" })
        assert.strictEqual((yield* JobQueue.cancel(recentCancelled.id))._tag, "Cancelled")

        // Recent: kept by a 1-second retention.
        const recentDone = yield* JobQueue.enqueue(Email, { to: "new", n: 2 }, { dedupKey: "kept-key" })
        yield* completeOne("default")
        const recentDiscarded = yield* Effect.zipRight(JobQueue.enqueue(Report, { id: 2 }), killOne("batch", "X"))
        yield* DeadLetter.discard(recentDiscarded)
        // Live jobs of every state.
        const running = yield* JobQueue.enqueue(Report, { id: 3 })
        yield* claimOne("batch", "runner", "30 seconds")
        const retrying = yield* JobQueue.enqueue(Report, { id: 4 })
        const failing = yield* claimOne("batch", "runner", "30 seconds")
        yield* store.fail({
          lease: failing.lease,
          error: { tag: "Flaky", message: "flaky", cause: null, verdict: "transient" },
          retryIn: Option.some(Duration.hours(1))
        })
        const scheduled = yield* JobQueue.enqueue(Report, { id: 5 }, { delay: "1 hour" })
        const queued = yield* JobQueue.enqueue(Report, { id: 6 })

        const pruned = yield* JobQueue.prune({ keepSucceeded: "1 second", keepSettledDeadLetters: "1 second" })
        assert.deepStrictEqual(pruned, { succeeded: 1, cancelled: 1, deadLetters: 2 })
        assert.isTrue(Option.isNone(yield* JobQueue.status(oldCancelled.id)))
        assert.strictEqual((yield* statusOf(recentCancelled.id)).status, "cancelled")

        assert.isTrue(Option.isNone(yield* JobQueue.status(oldDone.id)))
        assert.isTrue(Option.isNone(yield* DeadLetter.show(discarded)))
        assert.isTrue(Option.isNone(yield* DeadLetter.show(replayed)))
        // The dead job rows of pruned entries go with them; a pending entry keeps its own.
        assert.isTrue(Option.isNone(yield* JobQueue.status(discarded)))
        assert.isTrue(Option.isNone(yield* JobQueue.status(replayed)))
        assert.strictEqual((yield* statusOf(pending)).status, "dead")
        assert.strictEqual((yield* entryOf(pending)).status, "pending")
        assert.strictEqual((yield* entryOf(recentDiscarded)).status, "discarded")
        assert.strictEqual((yield* statusOf(recentDone.id)).status, "succeeded")
        const replayJob = yield* statusOf(replay.job)
        assert.strictEqual(replayJob.status, "queued")
        assert.deepStrictEqual(replayJob.replayOf, Option.some(replayed))
        assert.strictEqual((yield* statusOf(running.id)).status, "running")
        assert.strictEqual((yield* statusOf(retrying.id)).status, "retrying")
        assert.strictEqual((yield* statusOf(scheduled.id)).status, "scheduled")
        assert.strictEqual((yield* statusOf(queued.id)).status, "queued")
        // A pruned entry is gone for replays too.
        assert.deepStrictEqual((yield* DeadLetter.replayMany([replayed])).map((r) => r._tag), ["NotFound"])

        // Deduplication holds while the job is retained.
        const again = yield* JobQueue.enqueue(Email, { to: "old", n: 3 }, { dedupKey: "pruned-key" })
        assert.isFalse(again.deduplicated)
        assert.notStrictEqual(again.id, oldDone.id)
        const kept = yield* JobQueue.enqueue(Email, { to: "new", n: 2 }, { dedupKey: "kept-key" })
        assert.deepInclude(kept, { id: recentDone.id, deduplicated: true })

        assert.deepStrictEqual(
          yield* JobQueue.prune({ keepSucceeded: "1 second", keepSettledDeadLetters: "1 second" }),
          { succeeded: 0, cancelled: 0, deadLetters: 0 }
        )
        yield* advance("50 millis")
        assert.deepStrictEqual(
          yield* JobQueue.prune({ keepSucceeded: 0, keepSettledDeadLetters: 0 }),
          { succeeded: 1, cancelled: 1, deadLetters: 1 }
        )
        assert.strictEqual((yield* statusOf(pending)).status, "dead")
        assert.strictEqual((yield* statusOf(again.id)).status, "queued")
      }))

    test.clocked("prune deletes at most batchSize records per batch and at most maxBatches batches per run", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        yield* JobQueue.enqueueMany(Array.from({ length: 5 }, (_, n) => JobQueue.job(Report, { id: n })))
        const claimed = yield* store.claim({ queue: "batch", limit: 10, owner: "w", lease: Duration.seconds(10) })
        assert.strictEqual((yield* store.complete(claimed.map((job) => job.lease))).length, 5)
        yield* advance("50 millis")
        const everything = { keepSucceeded: Duration.zero, keepSettledDeadLetters: Duration.zero }
        assert.deepStrictEqual(yield* store.prune({ ...everything, limit: 2 }), {
          succeeded: 2,
          cancelled: 0,
          deadLetters: 0
        })
        assert.deepStrictEqual(
          yield* JobQueue.prune({ ...everything, batchSize: 2, maxBatches: 1 }),
          { succeeded: 2, cancelled: 0, deadLetters: 0 }
        )
        assert.deepStrictEqual(yield* JobQueue.prune({ ...everything, batchSize: 2 }), {
          succeeded: 1,
          cancelled: 0,
          deadLetters: 0
        })
        assert.deepStrictEqual(yield* JobQueue.prune(everything), { succeeded: 0, cancelled: 0, deadLetters: 0 })
        // The default retention (7 days) keeps what just finished.
        yield* JobQueue.enqueue(Report, { id: 9 })
        yield* Effect.flatMap(claimOne("batch", "w", "10 seconds"), (job) => store.complete([job.lease]))
        assert.deepStrictEqual(yield* JobQueue.prune(), { succeeded: 0, cancelled: 0, deadLetters: 0 })
      }))

    test("prune and retention reject bad options, naming the field", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<readonly [JobQueue.RetentionOptions, string]> = [
          [{ keepSucceeded: -1 }, "keepSucceeded"],
          [{ keepSucceeded: "-1 days" }, "keepSucceeded"],
          [{ keepSucceeded: Infinity }, "keepSucceeded"],
          [{ keepSettledDeadLetters: Number.NaN }, "keepSettledDeadLetters"],
          [{ batchSize: 0 }, "batchSize"],
          [{ batchSize: 1.5 }, "batchSize"],
          [{ batchSize: 100_001 }, "batchSize"],
          [{ maxBatches: 0 }, "maxBatches"]
        ]
        for (const [options, option] of bad) {
          const error = yield* Effect.flip(JobQueue.prune(options))
          assert.deepInclude(error, { _tag: "InvalidOptionsError", component: "JobQueue.prune", option })
          const background = yield* Effect.flip(JobQueue.startRetention(options))
          assert.deepInclude(background, { _tag: "InvalidOptionsError", option })
        }
        const intervals: ReadonlyArray<Duration.DurationInput> = [0, -5, "-1 minutes"]
        for (const interval of intervals) {
          const error = yield* Effect.flip(JobQueue.startRetention({ interval }))
          assert.deepInclude(error, { _tag: "InvalidOptionsError", option: "interval" })
        }
      }))
  })
}
