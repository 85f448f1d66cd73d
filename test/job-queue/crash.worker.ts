/**
 * One worker OS process of the crash test (`crash.test.ts`): the real
 * `JobWorker` on the real Postgres backend, against the test's scratch
 * database. Usage: `tsx crash.worker.ts <database url> <worker id>`.
 *
 * Its handler is idempotent the way the docs ask: the side effect is an
 * `INSERT … ON CONFLICT DO NOTHING` keyed by the job id. Every execution
 * also leaves a row in `crash_executions` (the raw count, duplicates
 * included), and every time the handler reaches its side effect it records
 * whether the insert applied, so the test can tell "ran twice" from "took
 * effect twice".
 *
 * It prints `ready` once the worker runs, then `running <n>` whenever a job
 * starts, so the test can SIGKILL it mid-job.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { CrashJob, PoisonError, queueOptions } from "./crash.jobs.js"

const [url, workerId] = process.argv.slice(2)
if (url === undefined || workerId === undefined) {
  console.error("usage: crash.worker.ts <database url> <worker id>")
  process.exit(2)
}

const handler = JobWorker.handler(CrashJob, (payload, job) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT INTO crash_executions (job_id, attempt, worker) VALUES (${job.id}, ${job.attempt}, ${workerId})`
    yield* Effect.sync(() => process.stdout.write(`running ${payload.n}\n`))
    // Long enough that a kill usually lands while jobs are in flight.
    yield* Effect.sleep(`${payload.workMillis} millis`)
    if (payload.poison) return yield* new PoisonError({ n: payload.n })
    // The side effect and its bookkeeping in one statement, so a kill cannot separate them.
    yield* sql`
      WITH effect AS (
        INSERT INTO crash_effects (job_id, worker) VALUES (${job.id}, ${workerId})
        ON CONFLICT (job_id) DO NOTHING
        RETURNING job_id
      )
      INSERT INTO crash_effect_attempts (job_id, worker, applied)
      SELECT ${job.id}, ${workerId}, EXISTS (SELECT 1 FROM effect)`
  }))

const Database = PgClient.layer({ url: Redacted.make(url), maxConnections: 6 })
const Queue = SqlJobQueue.layer({ queues: { crash: queueOptions }, jobs: [CrashJob] }).pipe(Layer.provide(Database))

Effect.gen(function*() {
  const queue = yield* JobQueue.JobQueue
  yield* JobWorker.make({ handlers: [handler], workerId, gracePeriod: "1 second" })
  yield* Effect.sync(() => process.stdout.write(`ready (${queue.store.backend})\n`))
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.merge(Queue, Database)),
  NodeRuntime.runMain
)
