/**
 * Crashes, for real: 5,000 jobs, three worker OS processes running the real
 * `JobWorker` on the Postgres backend, and one of them SIGKILLed mid-job
 * several times (restarted after each kill). Every job must end succeeded or
 * dead — none lost, none left running — and, because the handler's side
 * effect is keyed by the job id, no side effect may happen twice even though
 * killed jobs run again.
 *
 * Real time, not TestClock: leases live on Postgres' `now()` and the workers
 * are other processes. The leases are short (600 ms, heartbeat 150 ms, see
 * `crash.jobs.ts`) so a killed worker's jobs come back within a second and the
 * test takes seconds. Needs PostgreSQL on 127.0.0.1:5432 (fails, never skips).
 */
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ScratchPostgres from "../support/postgres.js"
import { CrashJob, queueOptions } from "./crash.jobs.js"
import { type Child, spawnWorker } from "./crash.process.js"

const JOBS = 5_000
/** Every 50th job is poisoned (fails terminally): 100 dead, 4,900 succeeded. */
const isPoisoned = (n: number) => n % 50 === 0
const POISONED = Array.from({ length: JOBS }, (_, n) => n).filter(isPoisoned).length
const WORKERS = 3
const KILLS = 4
const VICTIM = 0
/**
 * The jobs are enqueued in KILLS + 1 equal portions: one each time the victim is (back) up, just before it is
 * killed, and the last after the last kill. So the victim always has work to die in the middle of, however
 * fast the others drain the queue and however slowly a restarted process starts.
 */
const PORTION = JOBS / (KILLS + 1)

const Queue = SqlJobQueue.layer({ queues: { crash: queueOptions }, jobs: [CrashJob] })

const random = (min: number, max: number) => min + Math.floor(Math.random() * (max - min))

/** Polls until `done` holds (real time: the state lives in Postgres and in other processes). */
const waitUntil = <A, E, R>(check: Effect.Effect<A, E, R>, done: (a: A) => boolean, what: string, seconds: number) =>
  Effect.gen(function*() {
    while (true) {
      const value = yield* check
      if (done(value)) return value
      yield* Effect.sleep("20 millis")
    }
  }).pipe(Effect.timeoutFail({ duration: `${seconds} seconds`, onTimeout: () => new Error(`timed out: ${what}`) }))

describe("the Postgres job queue with workers SIGKILLed mid-job", () => {
  // Live services: the clock must be the real one (see the top of the file).
  layer(ScratchPostgres.layer(), { excludeTestServices: true })((it) => {
    it.scoped(
      "finishes every job exactly once in effect: succeeded or dead, none lost, none running",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { url } = yield* ScratchPostgres.ScratchDatabase
          yield* sql`CREATE TABLE crash_executions (
            id bigserial PRIMARY KEY, job_id bigint NOT NULL, attempt int NOT NULL, worker text NOT NULL)`
          yield* sql`CREATE TABLE crash_effects (job_id bigint PRIMARY KEY, worker text NOT NULL)`
          yield* sql`CREATE TABLE crash_effect_attempts (job_id bigint NOT NULL, worker text NOT NULL, applied boolean NOT NULL)`

          const ids: Array<string> = []
          const enqueuePortion = (portion: number) =>
            Effect.gen(function*() {
              const batch = Array.from({ length: PORTION }, (_, k) => portion * PORTION + k).map((n) =>
                JobQueue.job(CrashJob, { n, poison: isPoisoned(n), workMillis: 10 + (n * 7) % 30 })
              )
              const enqueued = yield* JobQueue.enqueueMany(batch)
              ids.push(...enqueued.map((job) => job.id))
            })

          const startedAt = Date.now()
          const generation = new Map<number, number>()
          const workerId = (slot: number) => `crash-w${slot}-g${generation.get(slot) ?? 0}`
          const start = (slot: number) => spawnWorker(url, workerId(slot))
          const workers: Array<Child> = []
          yield* Effect.addFinalizer(() => Effect.sync(() => workers.forEach((worker) => worker.kill("SIGKILL"))))
          for (let slot = 0; slot < WORKERS; slot++) workers.push(yield* start(slot))
          yield* Effect.forEach(workers, (worker) => worker.ready, { discard: true })

          // Kill one worker at a random moment while it holds leases of running jobs, restart it, repeat; the
          // other two keep working (and reclaim the killed one's jobs once their leases lapse).
          const orphaned: Array<{ readonly id: string; readonly victim: string }> = []
          const victims: Array<string> = []
          for (let kill = 0; kill < KILLS; kill++) {
            const worker = workers[VICTIM]
            if (worker === undefined) return assert.fail("no worker to kill")
            yield* worker.ready
            yield* enqueuePortion(kill)
            yield* Effect.sleep(`${random(100, 400)} millis`)
            const victim = workerId(VICTIM)
            // Mid-job: the database shows jobs leased by that process right now.
            yield* waitUntil(
              sql<{ n: number }>`SELECT count(*)::int AS n FROM bulwark_jobs
                WHERE state = 'running' AND lease_owner = ${victim}`,
              (rows) => (rows[0]?.n ?? 0) > 0,
              `${victim} runs a job`,
              10
            )
            worker.kill("SIGKILL")
            yield* worker.exited
            const held = yield* sql<{ id: string }>`SELECT id::text AS id FROM bulwark_jobs
              WHERE state = 'running' AND lease_owner = ${victim}`
            orphaned.push(...held.map((row) => ({ id: row.id, victim })))
            victims.push(victim)
            generation.set(VICTIM, (generation.get(VICTIM) ?? 0) + 1)
            workers[VICTIM] = yield* start(VICTIM)
          }
          yield* enqueuePortion(KILLS)
          assert.strictEqual(new Set(ids).size, JOBS)
          // Every kill left jobs behind whose worker was gone mid-run.
          assert.isAbove(orphaned.length, 0)
          yield* Effect.forEach(workers, (worker) => worker.ready, { discard: true })

          // Wait until nothing is ready, scheduled, retrying or running.
          yield* waitUntil(
            JobQueue.stats,
            (stats) => stats.every((q) => q.ready + q.scheduled + q.retrying + q.running === 0),
            "every job finished",
            60
          )
          yield* Effect.forEach(workers, (worker) =>
            Effect.zipRight(Effect.sync(() => worker.kill("SIGTERM")), worker.exited), {
            discard: true
          })

          // Every job is succeeded or dead: exactly the poisoned ones dead, the rest succeeded, none lost.
          const states = yield* sql<{ state: string; n: number }>`
            SELECT state, count(*)::int AS n FROM bulwark_jobs WHERE queue = 'crash' GROUP BY state ORDER BY state`
          assert.deepStrictEqual(Object.fromEntries(states.map((row) => [row.state, row.n])), {
            dead: POISONED,
            succeeded: JOBS - POISONED
          })
          const [leftovers] = yield* sql<{ leased: number; missing: number }>`
            SELECT count(*) FILTER (WHERE lease_owner IS NOT NULL)::int AS leased,
                   (SELECT count(*)::int FROM unnest(${ids}::bigint[]) AS i(id)
                      WHERE NOT EXISTS (SELECT 1 FROM bulwark_jobs j WHERE j.id = i.id)) AS missing
            FROM bulwark_jobs`
          assert.deepStrictEqual(leftovers, { leased: 0, missing: 0 })

          // The dead ones are exactly the poisoned ones, each a pending dead-letter entry carrying its error.
          const dead = yield* DeadLetter.list({ queue: "crash", limit: 1000 })
          assert.strictEqual(dead.entries.length, POISONED)
          assert.isTrue(Option.isNone(dead.next))
          for (const entry of dead.entries) {
            assert.strictEqual(entry.kind, "crash-job")
            assert.strictEqual(entry.errors.at(-1)?.tag, "PoisonError")
            const payload = entry.payload
            assert.isTrue(
              typeof payload === "object" && payload !== null && "poison" in payload && payload.poison === true
            )
          }

          // Side effects: one per succeeded job, none for dead ones, applied exactly once each.
          const [effects] = yield* sql<{ rows: number; distinct: number; dead: number; applied: number }>`
            SELECT
              (SELECT count(*)::int FROM crash_effects) AS rows,
              (SELECT count(DISTINCT job_id)::int FROM crash_effects) AS distinct,
              (SELECT count(*)::int FROM crash_effects e JOIN bulwark_jobs j ON j.id = e.job_id
                 WHERE j.state <> 'succeeded') AS dead,
              (SELECT count(*)::int FROM crash_effect_attempts WHERE applied) AS applied`
          assert.deepStrictEqual(effects, {
            rows: JOBS - POISONED,
            distinct: JOBS - POISONED,
            dead: 0,
            applied: JOBS - POISONED
          })

          // The jobs a kill orphaned came back: each ran again on another process, with its lost attempt counted,
          // and ended succeeded or dead through the public API too.
          const [orphans] = yield* sql<{ orphans: number; midHandler: number; ranAgain: number; counted: number }>`
            SELECT count(*)::int AS orphans,
                   count(*) FILTER (WHERE EXISTS (
                     SELECT 1 FROM crash_executions x WHERE x.job_id = o.id AND x.worker = o.victim))::int AS "midHandler",
                   count(*) FILTER (WHERE EXISTS (
                     SELECT 1 FROM crash_executions x WHERE x.job_id = o.id AND x.worker <> o.victim))::int AS "ranAgain",
                   count(*) FILTER (WHERE j.attempt >= 2)::int AS counted
            FROM unnest(${
            orphaned.map((o) => o.id)
          }::bigint[], ${
            orphaned.map((o) => o.victim)
          }::text[]) AS o(id, victim)
            JOIN bulwark_jobs j ON j.id = o.id`
          assert.deepStrictEqual(orphans, {
            orphans: orphaned.length,
            midHandler: orphans?.midHandler ?? -1,
            ranAgain: orphaned.length,
            counted: orphaned.length
          })
          // At least one kill landed inside a running handler (not only between claim and start).
          assert.isAbove(orphans?.midHandler ?? 0, 0)
          for (const { id } of orphaned) {
            const status = yield* JobQueue.status(id)
            assert.include(["succeeded", "dead"], Option.getOrUndefined(status)?.status)
          }

          // Raw executions exceed the jobs (at-least-once delivery); the side effects above did not (exactly once).
          const [runs] = yield* sql<{ executions: number; absorbed: number }>`
            SELECT (SELECT count(*)::int FROM crash_executions) AS executions,
                   (SELECT count(*)::int FROM crash_effect_attempts WHERE NOT applied) AS absorbed`
          assert.isAtLeast(runs?.executions ?? 0, JOBS + (orphans?.midHandler ?? 0))
          console.log(
            `crash test (${Math.round((Date.now() - startedAt) / 1000)} s): ${KILLS} kills of ${
              victims.join(", ")
            }; ${orphaned.length} jobs orphaned ` +
              `(${orphans?.midHandler} inside their handler); ${runs?.executions} executions for ${JOBS} jobs; ` +
              `${runs?.absorbed} repeated side effects absorbed by the idempotent insert`
          )
        }).pipe(Effect.provide(Queue)),
      90_000
    )
  })
})
