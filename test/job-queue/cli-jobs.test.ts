/**
 * `bulwark jobs show` and `bulwark jobs cancel`, run for real: the CLI is a
 * child process (tsx) on a scratch database whose jobs the real `JobWorker`
 * runs in this process, with handlers that fail, report progress, return
 * results and hang until they are cancelled. Checks what the CLI prints, its
 * exit codes, and that a cancel from that other process interrupts the handler
 * running here.
 *
 * Real time (not TestClock): the worker's retries, polls and cancellation
 * checks wait on the clock. Needs PostgreSQL on 127.0.0.1:5432.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import { assert, describe, layer } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import { eventually } from "./conformance.js"
import { array, field, parseJson, runCli } from "./crash.process.js"

const Render = JobQueue.define({
  kind: "render-report",
  queue: "reports",
  payload: Schema.Struct({ reportId: Schema.Number }),
  result: Schema.Struct({ url: Schema.String, pages: Schema.Number })
})

/** A queue no worker serves here: its jobs stay queued. */
const Archive = JobQueue.define({ kind: "archive", queue: "archive", payload: Schema.Struct({ day: Schema.String }) })

class RendererBusy extends Data.TaggedError("RendererBusy")<{ readonly reportId: number }> {
  override get message() {
    return `renderer busy for report ${this.reportId}`
  }
}

// The default lease (30 s) renews every 10 s: a cancel reaches the worker through its one-second check.
const Queue = SqlJobQueue.layer({
  queues: {
    reports: { pollInterval: "50 millis", retry: { base: "10 millis", cap: "20 millis", maxAttempts: 3 } },
    archive: {}
  },
  jobs: [Render, Archive]
})

const TestLayer = Layer.provideMerge(Queue, ScratchPostgres.layer())

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.die(new Error(`no job ${id}`)), onSome: Effect.succeed }))
  )

describe("bulwark jobs", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    const cli = (...args: ReadonlyArray<string>) =>
      Effect.flatMap(ScratchPostgres.ScratchDatabase, ({ url }) => runCli([...args, "--database-url", url]))

    it.effect(
      "show prints a job's status, attempts, errors, progress, result, dedup key and times",
      () =>
        Effect.gen(function*() {
          const { id } = yield* JobQueue.enqueue(Render, { reportId: 7 }, { dedupKey: "report:7" })
          yield* Effect.scoped(Effect.gen(function*() {
            yield* JobWorker.make({
              handlers: [
                JobWorker.handler(Render, ({ reportId }, job) =>
                  job.attempt === 1
                    ? Effect.fail(new RendererBusy({ reportId }))
                    : JobWorker.progress(100, "12 of 12 pages").pipe(
                      Effect.as({ url: `s3://reports/${reportId}.pdf`, pages: 12 })
                    ))
              ]
            })
            yield* eventually(statusOf(id), (info) => info.status === "succeeded", "15 seconds", "the report")
          })).pipe(Logger.withMinimumLogLevel(LogLevel.Error))

          const [human, json, missing, badId] = yield* Effect.all([
            cli("jobs", "show", id),
            cli("jobs", "show", id, "--json"),
            cli("jobs", "show", "999999"),
            cli("jobs", "show", "seven")
          ], { concurrency: 2 })
          assert.strictEqual(human.code, 0, human.stderr)
          assert.include(human.stdout, `Job ${id}`)
          assert.match(human.stdout, /status:\s+succeeded/)
          assert.match(human.stdout, /attempts:\s+2 of 3/)
          assert.match(human.stdout, /dedup key:\s+report:7/)
          assert.match(human.stdout, /progress:\s+100% 12 of 12 pages \(attempt 2, /)
          assert.include(human.stdout, `"url": "s3://reports/7.pdf"`)
          assert.match(human.stdout, /#1 .*RendererBusy \(transient\)/)
          assert.include(human.stdout, "renderer busy for report 7")

          assert.strictEqual(json.code, 0, json.stderr)
          const job = parseJson(json)
          assert.strictEqual(field(job, "status"), "succeeded")
          assert.strictEqual(field(job, "attempts"), 2)
          assert.strictEqual(field(job, "maxAttempts"), 3)
          assert.strictEqual(field(job, "dedupKey"), "report:7")
          assert.deepStrictEqual(field(job, "payload"), { reportId: 7 })
          assert.isTrue(field(job, "hasResult"))
          assert.deepStrictEqual(field(job, "result"), { url: "s3://reports/7.pdf", pages: 12 })
          const progress = field(job, "progress")
          assert.deepInclude(progress, { value: 100, message: "12 of 12 pages", attempt: 2 })
          assert.isString(field(progress, "updatedAt"))
          assert.deepStrictEqual(array(field(job, "errors")).map((error) => field(error, "tag")), ["RendererBusy"])
          for (const time of ["enqueuedAt", "runAt", "startedAt", "finishedAt"]) assert.isString(field(job, time), time)
          assert.isNull(field(job, "leaseOwner"))

          assert.strictEqual(missing.code, 3)
          assert.include(missing.stderr, "no job with id 999999")
          assert.strictEqual(badId.code, 2)
          assert.include(badId.stderr, "Not a job id: seven")
        }),
      120_000
    )

    it.effect(
      "cancel stops a queued job, interrupts a running one on its worker, and refuses finished jobs",
      () =>
        Effect.gen(function*() {
          // A queued job: cancelled, and cancelling it again succeeds.
          const queued = yield* JobQueue.enqueue(Archive, { day: "2026-03-01" })
          const first = yield* cli("jobs", "cancel", queued.id)
          assert.strictEqual(first.code, 0, first.stderr)
          assert.include(first.stdout, `Job ${queued.id}: cancelled (it was queued; it will not run)`)
          assert.strictEqual((yield* statusOf(queued.id)).status, "cancelled")
          const again = yield* cli("jobs", "cancel", queued.id, "--json")
          assert.strictEqual(again.code, 0, again.stderr)
          assert.deepStrictEqual(parseJson(again), {
            id: queued.id,
            outcome: "already_cancelled",
            queue: "archive",
            previous: null
          })

          // A running job: the CLI's cancel interrupts the handler running in this process.
          const started = yield* Deferred.make<void>()
          const finalized = yield* Deferred.make<void>()
          const running = yield* JobQueue.enqueue(Render, { reportId: 8 })
          yield* Effect.scoped(Effect.gen(function*() {
            const worker = yield* JobWorker.make({
              handlers: [
                JobWorker.handler(Render, () =>
                  JobWorker.progress(25, "3 of 12 pages").pipe(
                    Effect.zipRight(Deferred.succeed(started, undefined)),
                    Effect.zipRight(Effect.never),
                    Effect.onInterrupt(() => Deferred.succeed(finalized, undefined))
                  ))
              ]
            })
            yield* Deferred.await(started).pipe(Effect.timeout("15 seconds"))
            const shown = parseJson(yield* cli("jobs", "show", running.id, "--json"))
            assert.strictEqual(field(shown, "status"), "running")
            assert.deepInclude(field(shown, "progress"), { value: 25, message: "3 of 12 pages", attempt: 1 })

            const cancelled = yield* cli("jobs", "cancel", running.id, "--json")
            assert.strictEqual(cancelled.code, 0, cancelled.stderr)
            assert.deepStrictEqual(parseJson(cancelled), {
              id: running.id,
              outcome: "cancelled",
              queue: "reports",
              previous: "running"
            })
            // From the CLI's exit: within about a second, plus scheduling slack on a busy machine.
            yield* Deferred.await(finalized).pipe(
              Effect.timeoutFail({
                duration: Duration.seconds(3),
                onTimeout: () => new Error("the handler was not interrupted")
              })
            )
            yield* eventually(worker.stats, (stats) => stats.cancelled === 1, "5 seconds", "the worker's counters")
          })).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
          const after = yield* statusOf(running.id)
          assert.strictEqual(after.status, "cancelled")
          assert.strictEqual(after.attempts, 1)
          assert.deepStrictEqual(after.errors, [])

          // A finished job cannot be cancelled; an unknown one is not found.
          const done = yield* JobQueue.enqueue(Archive, { day: "2026-03-02" })
          const store = (yield* JobQueue.JobQueue).store
          const [claimed] = yield* store.claim({
            queue: "archive",
            limit: 1,
            owner: "test",
            lease: Duration.seconds(10)
          })
          assert.deepStrictEqual(yield* store.complete(claimed === undefined ? [] : [claimed.lease]), [done.id])
          const [succeeded, succeededJson, missing] = yield* Effect.all([
            cli("jobs", "cancel", done.id),
            cli("jobs", "cancel", done.id, "--json"),
            cli("jobs", "cancel", "999999")
          ], { concurrency: 2 })
          assert.strictEqual(succeeded.code, 2)
          assert.include(succeeded.stderr, `Job ${done.id} already succeeded: there is nothing to cancel`)
          assert.strictEqual(succeededJson.code, 2)
          assert.strictEqual(field(parseJson(succeededJson), "outcome"), "already_succeeded")
          assert.strictEqual(missing.code, 3)
          assert.include(missing.stderr, "no job with id 999999")
          assert.strictEqual((yield* statusOf(done.id)).status, "succeeded")
        }),
      120_000
    )
  })
})
