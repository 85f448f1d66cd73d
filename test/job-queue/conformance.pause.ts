/**
 * The job-queue contract for pausing queues and for the queue gauges, run against every backend (memory and
 * PostgreSQL) by `memory.test.ts` and `postgres.test.ts`: a paused queue is claimed by no worker (other queues run
 * on, running jobs finish, enqueues wait) until it is resumed, which wakes the workers; pause and resume are
 * idempotent and show in stats; workers report the depth, the oldest ready age, paused queues and dead letters by
 * status from the backend, and set their gauges back to 0 when they stop.
 *
 * Workers run on the live clock, as in conformance.ts. The sharing of one reader per store is on the TestClock in
 * packages/resilience/src/job-queue/JobQueueMetrics.test.ts; the claim racing a pause, and one reader per database
 * across connection pools, in postgres-features.test.ts.
 */
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as Metrics from "@bulwark/resilience/Metrics"
import type * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import { assert, describe } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { identity } from "effect/Function"
import * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { type Backend, defaultOptions, Email, eventually, Report, Urgent } from "./conformance.js"

// -----------------------------------------------------------------------------
// Fixtures and helpers
// -----------------------------------------------------------------------------

const fast = { pollInterval: "20 millis", visibilityTimeout: "2 seconds", reclaimInterval: "50 millis" } as const

/**
 * `default` polls once an hour: after a resume, only the wake-up can make its worker claim again (at once).
 */
const options: SqlJobQueue.Options = {
  ...defaultOptions,
  queues: {
    high_priority: { ...fast, concurrency: 2 },
    default: { ...fast, pollInterval: "1 hour", concurrency: 2 },
    batch: { ...fast, concurrency: 2 }
  }
}

const storeOf = Effect.map(JobQueue.JobQueue, (queue) => queue.store)

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.die(new Error(`job ${id} not found`)), onSome: Effect.succeed }))
  )

const waitForStatus = (id: string, status: JobQueue.JobStatus, timeout: Duration.DurationInput = "10 seconds") =>
  eventually(statusOf(id), (info) => info.status === status, timeout, `job ${id} to be ${status}`)

const statsOf = (queue: string) => Effect.map(JobQueue.stats, (stats) => stats.find((row) => row.queue === queue))

/** Dead-letters one job of a queue at once through the store (a terminal failure); returns its id. */
const killOne = (queue: string) =>
  Effect.gen(function*() {
    const store = yield* storeOf
    const [job] = yield* store.claim({ queue, limit: 1, owner: "killer", lease: Duration.seconds(10) })
    if (job === undefined) return yield* Effect.die(new Error(`nothing to claim in ${queue}`))
    yield* store.fail({
      lease: job.lease,
      error: { tag: "Boom", message: "boom", cause: null, verdict: "terminal" },
      retryIn: Option.none()
    })
    return job.lease.id
  })

const gauge = (metric: Metric.Metric.Gauge<number>, labels: Record<string, string>) =>
  Metric.value(
    Metric.taggedWithLabels(metric, Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value)))
  ).pipe(Effect.map((state) => state.value))

// -----------------------------------------------------------------------------
// Suite
// -----------------------------------------------------------------------------

export const conformancePause = <R>(backend: Backend<R>): void => {
  type Body = () => Effect.Effect<void, unknown, JobQueue.JobQueue | Scope.Scope | R>
  const test = (name: string, body: Body) =>
    backend.test(name, () => body().pipe(Effect.scoped, Effect.provide(backend.layer(options))), 30_000)

  describe(`job queue pause and queue gauges: ${backend.name}`, () => {
    test("a paused queue is claimed by no worker until resumed; running jobs finish, and resume wakes the workers", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        const ran: Array<number> = []
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const worker = yield* JobWorker.make({
          handlers: [
            JobWorker.handler(Email, ({ n }) =>
              (n === 0
                ? Deferred.succeed(started, undefined).pipe(Effect.zipRight(Deferred.await(release)))
                : Effect.void).pipe(Effect.zipRight(Effect.sync(() => ran.push(n))))),
            JobWorker.handler(Urgent, () => Effect.void)
          ]
        })
        // `default` polls once an hour: its jobs are claimed on wake-ups only.
        yield* eventually(worker.listening, identity, "10 seconds", "the wake-up listener")
        const running = yield* JobQueue.enqueue(Email, { to: "running", n: 0 })
        yield* Deferred.await(started).pipe(Effect.timeout("10 seconds"))

        assert.isTrue(yield* JobQueue.pause("default"))
        const waiting = yield* JobQueue.enqueueMany([1, 2, 3].map((n) => JobQueue.job(Email, { to: "waiting", n })))
        // Other queues run on.
        const other = yield* JobQueue.enqueue(Urgent, { id: 1 })
        yield* waitForStatus(other.id, "succeeded")
        // No claim takes a job of the paused queue, the worker's or anyone's.
        const claimed = yield* store.claim({ queue: "default", limit: 10, owner: "tool", lease: Duration.seconds(5) })
        assert.deepStrictEqual(claimed, [])
        // The job already running finishes normally.
        yield* Deferred.succeed(release, undefined)
        yield* waitForStatus(running.id, "succeeded")
        yield* Effect.sleep("300 millis")
        for (const job of waiting) assert.strictEqual((yield* statusOf(job.id)).status, "queued")
        assert.deepStrictEqual(ran, [0])
        assert.deepInclude(yield* statsOf("default"), { ready: 3, running: 0, paused: true })

        assert.isTrue(yield* JobQueue.resume("default"))
        // Within seconds, not the hour of its poll interval: the resume woke the worker.
        for (const job of waiting) yield* waitForStatus(job.id, "succeeded", "5 seconds")
        assert.deepStrictEqual([...ran].sort(), [0, 1, 2, 3])
        assert.deepInclude(yield* statsOf("default"), { ready: 0, paused: false })
      }))

    test("pause and resume are idempotent, need a configured queue, and show in stats even for an empty queue", () =>
      Effect.gen(function*() {
        const store = yield* storeOf
        assert.isTrue(yield* JobQueue.pause("batch"))
        assert.isFalse(yield* JobQueue.pause("batch"))
        const stats = yield* JobQueue.stats
        assert.deepStrictEqual(stats.map((row) => [row.queue, row.paused]).sort(), [
          ["batch", true],
          ["default", false],
          ["high_priority", false]
        ])
        assert.deepInclude(yield* statsOf("batch"), { ready: 0, running: 0, deadLetters: 0, paused: true })
        // The store's own read lists a paused queue that has no job.
        assert.deepStrictEqual((yield* store.stats).map((row) => [row.queue, row.paused]), [["batch", true]])
        const unknown = yield* Effect.flip(JobQueue.pause("no-such-queue"))
        assert.strictEqual(unknown._tag, "UnknownQueueError")
        assert.strictEqual((yield* Effect.flip(JobQueue.resume("no-such-queue")))._tag, "UnknownQueueError")

        // Enqueues into a paused queue are accepted; they wait.
        const job = yield* JobQueue.enqueue(Report, { id: 1 })
        assert.strictEqual((yield* statusOf(job.id)).status, "queued")
        assert.isTrue(yield* JobQueue.resume("batch"))
        assert.isFalse(yield* JobQueue.resume("batch"))
        assert.isFalse(yield* JobQueue.resume("high_priority"))
        const [claimed] = yield* store.claim({ queue: "batch", limit: 1, owner: "tool", lease: Duration.seconds(5) })
        assert.strictEqual(claimed?.lease.id, job.id)

        // The store pauses any queue, configured or not (the CLI knows no configuration).
        assert.isTrue(yield* store.pause("elsewhere"))
        assert.deepInclude((yield* JobQueue.stats).find((row) => row.queue === "elsewhere"), { paused: true })
        assert.isTrue(yield* store.resume("elsewhere"))
        assert.isUndefined((yield* JobQueue.stats).find((row) => row.queue === "elsewhere"))
      }))

    test("workers report the queue gauges from the backend, dead letters by status included, and zero them on stop", () =>
      Effect.gen(function*() {
        yield* JobQueue.enqueueMany([1, 2, 3, 4].map((n) => JobQueue.job(Email, { to: "gauged", n })))
        const replayed = yield* killOne("default")
        const discarded = yield* killOne("default")
        // Done the way the CLI does them: through the store, in no worker.
        yield* DeadLetter.replay(replayed)
        yield* DeadLetter.discard(discarded)
        yield* JobQueue.pause("batch")
        const read = Effect.all({
          ready: gauge(Metrics.jobQueueDepth, { queue: "default", state: "ready" }),
          oldestReady: Effect.map(gauge(Metrics.jobQueueOldestReady, { queue: "default" }), (age) => age > 0),
          batchPaused: gauge(Metrics.jobQueuePaused, { queue: "batch" }),
          defaultPaused: gauge(Metrics.jobQueuePaused, { queue: "default" }),
          pending: gauge(Metrics.deadLetterEntries, { queue: "default", status: "pending" }),
          replayed: gauge(Metrics.deadLetterEntries, { queue: "default", status: "replayed" }),
          discarded: gauge(Metrics.deadLetterEntries, { queue: "default", status: "discarded" }),
          deadLetters: gauge(Metrics.deadLetterDepth, { queue: "default" })
        })
        yield* Effect.scoped(Effect.gen(function*() {
          // Serves high_priority only, so the default jobs stay ready; no reportMetrics anywhere.
          yield* JobWorker.make({
            handlers: [JobWorker.handler(Urgent, () => Effect.void)],
            reportMetrics: { interval: "50 millis" }
          })
          const expected = {
            ready: 3,
            oldestReady: true,
            batchPaused: 1,
            defaultPaused: 0,
            pending: 0,
            replayed: 1,
            discarded: 1,
            deadLetters: 0
          }
          const values = yield* eventually(
            read,
            (v) => JSON.stringify(v) === JSON.stringify(expected),
            "10 seconds",
            "the gauges"
          )
          assert.deepStrictEqual(values, expected)
          // A change made elsewhere shows at the next read.
          yield* JobQueue.resume("batch")
          yield* eventually(gauge(Metrics.jobQueuePaused, { queue: "batch" }), (paused) => paused === 0)
        }))
        // The worker stopped: this process reads no more, and its gauges are 0 (another process's are the truth).
        assert.deepStrictEqual(yield* read, {
          ready: 0,
          oldestReady: false,
          batchPaused: 0,
          defaultPaused: 0,
          pending: 0,
          replayed: 0,
          discarded: 0,
          deadLetters: 0
        })
      }))
  })
}
