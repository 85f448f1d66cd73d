/**
 * What only the PostgreSQL backend can show: the wake-up listener recovers
 * from a terminated connection, enqueue joins the caller's transaction,
 * retry due times come from the database clock within the jitter bounds, a
 * worker whose lease was taken interrupts its handler, and workers on
 * separate connection pools never run a job twice (a unique constraint would
 * refuse the second run).
 *
 * Real time is unavoidable here (`now()` is the server's clock); waits are
 * bounded and short.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import { eventually } from "./conformance.js"

const Ping = JobQueue.define({ kind: "ping", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })
const Polled = JobQueue.define({ kind: "polled", queue: "polled", payload: Schema.Struct({ n: Schema.Number }) })

class Flaky extends Data.TaggedError("Flaky")<{ readonly message: string }> {}

const truncate = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`TRUNCATE bulwark_jobs, bulwark_dead_letters RESTART IDENTITY`
)

const jobs = (options: SqlJobQueue.Options) =>
  Layer.unwrapEffect(Effect.as(Effect.orDie(truncate), SqlJobQueue.layer(options)))

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({ onNone: () => Effect.die(new Error(`no job ${id}`)), onSome: Effect.succeed }))
  )

describe("PostgreSQL job queue", () => {
  layer(ScratchPostgres.layer({ maxConnections: 10 }), { excludeTestServices: true })((it) => {
    it.effect("re-creates a terminated LISTEN connection; polling covers the gap", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const listenerPids = sql<{ readonly pid: number }>`
          SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query ILIKE 'LISTEN %'`
        const ran = yield* Queue.unbounded<string>()
        const worker = yield* JobWorker.make({
          handlers: [
            JobWorker.handler(Ping, ({ n }) => Queue.offer(ran, `ping ${n}`)),
            JobWorker.handler(Polled, ({ n }) => Queue.offer(ran, `polled ${n}`))
          ]
        })
        const take = (what: string) =>
          Queue.take(ran).pipe(
            Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`${what} did not run in time`) })
          )
        yield* eventually(worker.listening, (up) => up, "10 seconds", "the listener")
        const [first] = yield* eventually(listenerPids, (rows) => rows.length === 1, "5 seconds", "one LISTEN backend")

        // The default queue polls once a minute: a job that runs within seconds was woken by NOTIFY.
        yield* JobQueue.enqueue(Ping, { n: 1 })
        assert.strictEqual(yield* take("the first notified job"), "ping 1")

        yield* sql`SELECT pg_terminate_backend(${first?.pid ?? -1})`
        // While the listener is down, a polled queue still gets its jobs.
        yield* JobQueue.enqueue(Polled, { n: 1 })
        assert.strictEqual(yield* take("the polled job"), "polled 1")

        const [second] = yield* eventually(
          listenerPids,
          (rows) => rows.length === 1 && rows[0]?.pid !== first?.pid,
          "15 seconds",
          "a new LISTEN backend"
        )
        assert.notStrictEqual(second?.pid, first?.pid)
        yield* eventually(worker.listening, (up) => up, "10 seconds", "the listener to be back")
        yield* JobQueue.enqueue(Ping, { n: 2 })
        assert.strictEqual(yield* take("the job notified after recovery"), "ping 2")
      }).pipe(
        Effect.scoped,
        Effect.provide(jobs({
          queues: { default: { pollInterval: "60 seconds" }, polled: { pollInterval: "100 millis" } },
          listenerCheckInterval: "200 millis"
        }))
      ), 60_000)

    it.effect(
      "wake-ups sent after commit reach an idle worker for every burst of concurrent enqueues, none lost",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const ran = yield* Queue.unbounded<number>()
          const worker = yield* JobWorker.make({ handlers: [JobWorker.handler(Ping, ({ n }) => Queue.offer(ran, n))] })
          yield* eventually(worker.listening, (up) => up, "10 seconds", "the listener")
          // The queue polls once a minute: a job that runs within seconds was woken by a notification.
          const take = (what: string) =>
            Queue.take(ran).pipe(
              Effect.timeoutFail({ duration: "5 seconds", onTimeout: () => new Error(`${what}: no wake-up`) })
            )

          // Latency of a wake-up: one job at a time, the worker idle in between.
          const latencies: Array<number> = []
          for (let n = 0; n < 15; n++) {
            const sent = Date.now()
            yield* JobQueue.enqueue(Ping, { n })
            yield* take(`job ${n}`)
            latencies.push(Date.now() - sent)
          }

          // Bursts: 16 enqueues (each its own transaction) spread over 16 ms, so commits keep landing while earlier
          // wake-ups are in flight; the worker drains each burst before the next. A wake-up coalesced away without a
          // later one would leave the burst's last jobs waiting for the one-minute poll.
          for (let round = 0; round < 20; round++) {
            yield* Effect.forEach(
              Array.from({ length: 16 }, (_, k) => k),
              (k) => Effect.zipRight(Effect.sleep(`${k} millis`), JobQueue.enqueue(Ping, { n: 1000 + round * 16 + k })),
              { concurrency: "unbounded", discard: true }
            )
            for (let k = 0; k < 16; k++) yield* take(`burst ${round}`)
          }

          // Inside a transaction the wake-up joins it: it arrives with the commit, never before.
          const committed = yield* Deferred.make<number>()
          const enqueuing = yield* sql.withTransaction(
            JobQueue.enqueue(Ping, { n: -1 }).pipe(
              Effect.zipRight(Effect.sleep("300 millis")),
              Effect.zipRight(Effect.sync(() => Date.now())),
              Effect.tap((at) => Deferred.succeed(committed, at))
            )
          ).pipe(Effect.fork)
          assert.strictEqual(yield* take("the job enqueued in a transaction"), -1)
          const ranAt = Date.now()
          yield* Fiber.join(enqueuing)
          assert.isAtLeast(ranAt, yield* Deferred.await(committed), "not before its transaction committed")

          const sorted = [...latencies].sort((a, b) => a - b)
          console.log(
            `[postgres] wake-up latency, enqueue to handler, idle worker (ms): median ${
              sorted[Math.floor(sorted.length / 2)]
            }, max ${sorted.at(-1)}; 20 bursts of 16 concurrent enqueues, none waited for the poll`
          )
          // Completions are written after the handlers return.
          yield* eventually(worker.stats, (stats) => stats.succeeded === 15 + 20 * 16 + 1, "5 seconds", "completions")
        }).pipe(
          Effect.scoped,
          Effect.provide(jobs({
            queues: { default: { pollInterval: "60 seconds", concurrency: 8 } },
            listenerCheckInterval: "200 millis"
          }))
        ),
      60_000
    )

    it.effect("enqueue joins the caller's transaction", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rolledBack = yield* sql.withTransaction(
          JobQueue.enqueue(Ping, { n: 1 }).pipe(Effect.zipRight(Effect.fail("business rule broken" as const)))
        ).pipe(Effect.flip)
        assert.strictEqual(rolledBack, "business rule broken")
        const [count] = yield* sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM bulwark_jobs`
        assert.strictEqual(count?.n, 0)
        const committed = yield* sql.withTransaction(JobQueue.enqueue(Ping, { n: 2 }))
        assert.strictEqual((yield* statusOf(committed.id)).status, "queued")
      }).pipe(Effect.provide(jobs({ queues: { default: {} } }))))

    it.effect(
      "retry due times are min(base·2^(n-1)·(1±25 %), cap) on the database clock",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { id } = yield* JobQueue.enqueue(Ping, { n: 1 })
          yield* JobWorker.make({
            handlers: [
              JobWorker.handler(Ping, (_, job) => Effect.fail(new Flaky({ message: `attempt ${job.attempt}` })))
            ]
          })
          const base = 10_000
          const cap = 60_000
          for (let attempt = 1; attempt <= 5; attempt++) {
            const info = yield* eventually(
              statusOf(id),
              (i) => i.status === "retrying" && i.errors.length === attempt,
              "10 seconds",
              `failure ${attempt}`
            )
            const error = info.errors[attempt - 1]
            const delay = info.runAt.getTime() - (error?.failedAt.getTime() ?? 0)
            const nominal = base * 2 ** (attempt - 1)
            const low = Math.min(nominal * 0.75, cap)
            const high = Math.min(nominal * 1.25, cap)
            assert.isTrue(
              delay >= low - 1 && delay <= high + 1,
              `attempt ${attempt}: ${delay} ms not in [${low}, ${high}]`
            )
            // Fast-forward the backoff instead of waiting for it.
            yield* sql`UPDATE bulwark_jobs SET run_at = now() WHERE id = ${id}::bigint`
          }
          const dead = yield* eventually(statusOf(id), (i) => i.status === "dead", "10 seconds", "the last attempt")
          assert.strictEqual(dead.attempts, 6)
        }).pipe(
          Effect.scoped,
          Effect.provide(jobs({
            queues: {
              default: { pollInterval: "20 millis", retry: { base: "10 seconds", cap: "1 minute", maxAttempts: 6 } }
            }
          }))
        ),
      30_000
    )

    it.effect("a worker whose lease was taken interrupts the handler and drops its outcome", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const started = yield* Deferred.make<void>()
        const interrupted = yield* Deferred.make<void>()
        const { id } = yield* JobQueue.enqueue(Ping, { n: 1 })
        const worker = yield* JobWorker.make({
          workerId: "victim",
          handlers: [
            JobWorker.handler(Ping, () =>
              Deferred.succeed(started, undefined).pipe(
                Effect.zipRight(Effect.never),
                Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
              ))
          ]
        })
        yield* Deferred.await(started)
        // Another worker took the job over (as after a lapsed lease and a reclaim).
        yield* sql`UPDATE bulwark_jobs SET lease_owner = 'thief', lease_epoch = lease_epoch + 1 WHERE id = ${id}::bigint`
        yield* Deferred.await(interrupted).pipe(Effect.timeoutFail({
          duration: "5 seconds",
          onTimeout: () => new Error("the handler was not interrupted")
        }))
        yield* eventually(worker.stats, (s) => s.leasesLost === 1, "5 seconds", "the lost lease to be counted")
        const info = yield* statusOf(id)
        assert.deepStrictEqual([info.status, info.leaseOwner], ["running", Option.some("thief")])
        assert.deepStrictEqual(info.errors, [])
        assert.deepInclude(yield* worker.stats, { succeeded: 0, retried: 0, lateOutcomesRejected: 0 })
      }).pipe(
        Effect.scoped,
        Effect.provide(jobs({
          queues: {
            default: { pollInterval: "20 millis", visibilityTimeout: "2 seconds", heartbeatInterval: "100 millis" }
          }
        }))
      ))

    it.effect("workers on separate connection pools never run a job twice", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const { url } = yield* ScratchPostgres.ScratchDatabase
        yield* sql`CREATE TABLE job_runs (job_id bigint PRIMARY KEY, worker text NOT NULL)`
        const options: SqlJobQueue.Options = {
          queues: {
            default: {
              concurrency: 8,
              pollInterval: "20 millis",
              // Tight, but with room for a loaded machine: a heartbeat that waits behind the handlers' queries for a
              // pooled connection must still land before the lease lapses.
              visibilityTimeout: "3 seconds",
              heartbeatInterval: "250 millis",
              reclaimInterval: "100 millis"
            }
          }
        }
        const total = 400
        yield* JobQueue.enqueueMany(Array.from({ length: total }, (_, n) => JobQueue.job(Ping, { n })))
        for (let n = 0; n < 3; n++) {
          const pool = Layer.orDie(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 }))
          const context = yield* Layer.build(Layer.provideMerge(Layer.orDie(SqlJobQueue.layer(options)), pool))
          yield* JobWorker.make({
            workerId: `process-${n}`,
            handlers: [
              JobWorker.handler(Ping, ({ n: job }, ctx) =>
                Effect.flatMap(SqlClient.SqlClient, (own) =>
                  own`INSERT INTO job_runs (job_id, worker) VALUES (${ctx.id}::bigint, ${ctx.workerId})`.pipe(
                    // Some jobs outlive the lease: only heartbeats keep them from being reclaimed.
                    Effect.zipRight(Effect.sleep(job % 100 === 0 ? "3500 millis" : "2 millis"))
                  )))
            ]
          }).pipe(Effect.provide(context))
        }
        yield* eventually(
          sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM bulwark_jobs WHERE state = 'succeeded'`,
          (rows) =>
            rows[0]?.n === total,
          "40 seconds",
          "every job to succeed"
        )
        const [runs] = yield* sql<{ readonly n: number; readonly workers: number }>`
          SELECT count(*)::int AS n, count(DISTINCT worker)::int AS workers FROM job_runs`
        assert.strictEqual(runs?.n, total)
        assert.strictEqual(runs?.workers, 3, "all three pools took part")
        const [failed] = yield* sql<{ readonly n: number }>`
          SELECT count(*)::int AS n FROM bulwark_jobs WHERE jsonb_array_length(errors) > 0 OR attempt <> 1`
        assert.strictEqual(failed?.n, 0, "no job failed (a second run would have hit the primary key) or re-ran")
      }).pipe(Effect.scoped, Effect.provide(jobs({ queues: { default: {} } }))), 60_000)

    it.effect("options of the Postgres backend are validated", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<SqlJobQueue.Options> = [
          { queues: { default: {} }, channel: "Bad-Channel" },
          { queues: { default: {} }, channel: "" },
          { queues: { default: {} }, listenerCheckInterval: "1 millis" }
        ]
        for (const options of bad) {
          const error = yield* Effect.flip(Layer.build(SqlJobQueue.layer(options)))
          assert.strictEqual(error._tag, "InvalidOptionsError", JSON.stringify(options))
        }
      }).pipe(Effect.scoped))
  })
})
