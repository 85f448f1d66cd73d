/**
 * What only PostgreSQL can show about pausing and the queue gauges: a pause waits for the claims of its queue in
 * flight, and a claim that starts meanwhile waits for the pause and finds the queue paused, so once pause returns
 * no claim takes a job, however many claims race it; and across connection pools (processes), one holder of the
 * reporter's lease runs the aggregate reads, another taking over when it stops or its lease runs out.
 *
 * Real time (the server's `now()` and locks); waits are bounded and short. Pause and resume in memory, and the
 * gauges' values, are in the conformance suite (conformance.pause.ts).
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as ScratchPostgres from "../support/postgres.js"
import { eventually } from "./conformance.js"

const Ping = JobQueue.define({ kind: "ping", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })

const truncate = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`TRUNCATE bulwark_jobs, bulwark_dead_letters, bulwark_job_queues RESTART IDENTITY`
)

const options: SqlJobQueue.Options = { queues: { default: {} }, jobs: [Ping] }

const jobs = Layer.unwrapEffect(Effect.as(Effect.orDie(truncate), SqlJobQueue.layer(options)))

const lease = Duration.seconds(30)

/** Jobs taken by a claim (anything but ready), from the table itself. */
const taken = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  Effect.map(
    sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM bulwark_jobs WHERE state <> 'ready'`,
    (rows) => rows[0]?.n ?? -1
  ))

describe("PostgreSQL job queue: pause and the metrics lock", () => {
  layer(ScratchPostgres.layer({ maxConnections: 12 }), { excludeTestServices: true })((it) => {
    it.effect(
      "a pause waits for the claims in flight; a claim that starts meanwhile waits for it and finds the queue paused",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { store } = yield* JobQueue.JobQueue
          const { id } = yield* JobQueue.enqueue(Ping, { n: 1 })
          // A claim in flight: past `bulwark_job_queue_open` (holding its lock), not yet committed.
          const inFlight = yield* Deferred.make<void>()
          const commit = yield* Deferred.make<void>()
          const slowClaim = yield* Effect.gen(function*() {
            const [gate] = yield* sql<{ readonly open: boolean }>`SELECT bulwark_job_queue_open('default') AS open`
            assert.isTrue(gate?.open)
            yield* Deferred.succeed(inFlight, undefined)
            yield* Deferred.await(commit)
            yield* sql`UPDATE bulwark_jobs SET state = 'running', attempt = attempt + 1, lease_owner = 'slow',
              lease_expires_at = now() + interval '1 minute', started_at = now() WHERE id = ${id}::bigint`
          }).pipe(sql.withTransaction, Effect.forkScoped)
          yield* Deferred.await(inFlight)

          const pausing = yield* Effect.forkScoped(JobQueue.pause("default"))
          yield* Effect.sleep("300 millis")
          assert.isTrue(Option.isNone(yield* Fiber.poll(pausing)), "pause waits for the claim in flight")
          const late = yield* Effect.forkScoped(store.claim({ queue: "default", limit: 10, owner: "late", lease }))
          yield* Effect.sleep("200 millis")
          assert.isTrue(Option.isNone(yield* Fiber.poll(late)), "a claim starting now waits for the pause")

          yield* Deferred.succeed(commit, undefined)
          yield* Fiber.join(slowClaim)
          assert.isTrue(yield* Fiber.join(pausing))
          assert.deepStrictEqual(yield* Fiber.join(late), [], "and then finds the queue paused")
          const info = yield* JobQueue.status(id)
          assert.strictEqual(Option.getOrUndefined(info)?.status, "running", "the claim in flight committed first")
        }).pipe(Effect.scoped, Effect.provide(jobs))
    )

    it.effect(
      "once pause returns, no claim takes a job of the queue, however many claims race it",
      () =>
        Effect.gen(function*() {
          const { store } = yield* JobQueue.JobQueue
          yield* JobQueue.enqueueMany(Array.from({ length: 16_000 }, (_, n) => JobQueue.job(Ping, { n })))
          let running = true
          const claimer = (owner: string) =>
            Effect.gen(function*() {
              while (running) yield* store.claim({ queue: "default", limit: 4, owner, lease })
            })
          const claimers = yield* Effect.forkScoped(
            Effect.all(Array.from({ length: 10 }, (_, i) => claimer(`claimer-${i}`)), { concurrency: "unbounded" })
          )
          let before = 0
          for (let round = 0; round < 20; round++) {
            yield* Effect.sleep("30 millis")
            assert.isTrue(yield* JobQueue.pause("default"))
            const atPause = yield* taken
            assert.isAbove(atPause, before, `round ${round}: the claimers took jobs before the pause`)
            yield* Effect.sleep("50 millis")
            assert.strictEqual(yield* taken, atPause, `round ${round}: a claim took a job after pause returned`)
            assert.isTrue(yield* JobQueue.resume("default"))
            before = atPause
          }
          running = false
          yield* Fiber.join(claimers)
        }).pipe(Effect.scoped, Effect.provide(jobs)),
      60_000
    )

    it.effect(
      "across processes one lease holder reads the gauges; another takes over when it stops or its lease runs out",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { url } = yield* ScratchPostgres.ScratchDatabase
          // Three "processes", each with its own pool of one connection (the lease holds none) and store, reads
          // counted.
          const processes = yield* Effect.forEach([0, 1, 2], () =>
            Effect.gen(function*() {
              const scope = yield* Scope.make()
              const pool = Layer.orDie(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
              const context = yield* Layer.build(Layer.provideMerge(Layer.orDie(SqlJobQueue.layer(options)), pool))
                .pipe(Scope.extend(scope))
              const service = yield* JobQueue.JobQueue.pipe(Effect.provide(context))
              const counter = { reads: 0 }
              const store: JobQueue.JobStore = {
                ...service.store,
                deadLetterCounts: Effect.zipRight(Effect.sync(() => counter.reads++), service.store.deadLetterCounts)
              }
              yield* JobQueue.reportMetrics({ interval: "50 millis" }).pipe(
                Effect.provideService(JobQueue.JobQueue, { ...service, store }),
                Scope.extend(scope)
              )
              return { scope, counter, service }
            }))
          const lease = Effect.map(
            sql<{ readonly owner: string; readonly live: boolean }>`
              SELECT owner, expires_at > now() AS live FROM bulwark_job_queue_reporter`,
            (rows) => rows
          )
          const readingSince = (baseline: ReadonlyArray<number>) =>
            processes.filter((p, i) => p.counter.reads > (baseline[i] ?? 0))
          const counts = () => processes.map((p) => p.counter.reads)

          yield* eventually(Effect.sync(() => readingSince([])), (list) => list.length > 0, "5 seconds", "a reader")
          let baseline = counts()
          yield* Effect.sleep("500 millis")
          const [leader, ...more] = readingSince(baseline)
          if (leader === undefined) return assert.fail("no process reads")
          assert.strictEqual(more.length, 0, "only one")
          assert.isAbove(leader.counter.reads - (baseline[processes.indexOf(leader)] ?? 0), 3, "every 50 ms")
          const [row] = yield* lease
          assert.isTrue(row?.live)
          // Its one connection is not held by the lease: it still answers at once.
          yield* leader.service.stats.pipe(Effect.timeout("2 seconds"))

          // It stops: the lease is given up, and another process takes over at its next tick.
          yield* Scope.close(leader.scope, Exit.void)
          baseline = counts()
          yield* eventually(
            Effect.sync(() => readingSince(baseline)),
            (list) => list.length > 0,
            "5 seconds",
            "another process to take over"
          )
          baseline = counts()
          yield* Effect.sleep("300 millis")
          const [second, ...others] = readingSince(baseline)
          assert.isDefined(second)
          assert.strictEqual(others.length, 0)

          // It dies without giving the lease up (here: another owner's lease, running out in a second): nobody reads
          // until the lease runs out, then one process takes over.
          yield* sql`UPDATE bulwark_job_queue_reporter SET owner = 'dead', expires_at = now() + interval '1 second'`
          yield* Effect.sleep("200 millis")
          baseline = counts()
          yield* Effect.sleep("500 millis")
          assert.deepStrictEqual(readingSince(baseline), [], "the lease holds while it lasts")
          yield* eventually(
            Effect.sync(() => readingSince(baseline)),
            (list) => list.length === 1,
            "5 seconds",
            "a process to take over the lapsed lease"
          )
          for (const p of processes) if (p !== leader) yield* Scope.close(p.scope, Exit.void)
          const [after] = yield* lease
          assert.isFalse(after?.live, "the last reader gave the lease up")
        }),
      30_000
    )
  })
})
