/**
 * Durable job queues on one local PostgreSQL (127.0.0.1:5432): Bulwark's
 * Postgres queue against pg-boss 10.3.3 and graphile-worker 0.16.6, in one
 * run, in one scratch database created for the run and dropped after it.
 *
 * The peers installed here are their Node-20-compatible releases. graphile-
 * worker 0.16.6 has no `localQueue` / batched-completion options and no
 * JavaScript `addJobs`, so its batched enqueue row uses its documented SQL
 * function `graphile_worker.add_jobs`, and it processes one job per worker
 * loop (its "unbatched" mode).
 *
 * What is measured, for each system with the same pool size:
 * - enqueue, unbatched: `JOBS` single-job inserts from `CLIENT_CONCURRENCY`
 *   concurrent callers (pg-boss `send`, graphile `addJob`, Bulwark `enqueue`);
 * - enqueue, batched: the same jobs in batches of `BATCH` (pg-boss `insert`,
 *   graphile `add_jobs`, Bulwark `enqueueMany`), `CLIENT_CONCURRENCY` batches in flight;
 * - enqueue with replace dedup: `JOBS` single-job enqueues over `DEDUP_KEYS`
 *   keys, each replacing the waiting job of its key (graphile `addJob` with
 *   `jobKey` and `jobKeyMode: "replace"`, Bulwark `enqueue` with
 *   `dedup: { key, onConflict: "replace" }`; pg-boss has no equivalent);
 * - process: `JOBS` jobs already queued, drained by workers running
 *   `WORKER_CONCURRENCY` no-op handlers at once; the clock stops once the
 *   last handler has run and the database says no job is left unfinished
 *   (the last handler returning is not enough: pg-boss completes jobs without
 *   awaiting the write, and every system writes completions after handlers).
 *
 * pg-boss 10's `work()` is one polling loop that fetches `batchSize` jobs,
 * runs the handler, then sleeps what is left of `pollingIntervalSeconds`
 * (≥ 0.5 s) even when more jobs are waiting. At the same concurrency (16
 * loops × 1 job) it is bound by that sleep, so a second, clearly labelled
 * pg-boss row gives each loop a batch of 50 (800 jobs in flight) to show its
 * throughput when tuned for it.
 *
 * Every round runs every case once, systems interleaved, so drift on a shared
 * machine hits all of them alike; rows show the median round and, as `±%`,
 * the largest distance of a round from it (harness.ts' convention).
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as Migrations from "@bulwark/resilience/Migrations"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { Logger as GraphileLogger, makeWorkerUtils, run as runGraphile, type WorkerUtils } from "graphile-worker"
import PgBoss from "pg-boss"

const SERVER = process.env["BULWARK_BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const JOBS = 5_000
const SLOW_JOBS = 160
const CLIENT_CONCURRENCY = 16
const WORKER_CONCURRENCY = 16
const BATCH = 100
const DEDUP_KEYS = 500
const POOL = 16
const ROUNDS = 5
const QUEUE = "bench"

// -----------------------------------------------------------------------------
// The systems under test
// -----------------------------------------------------------------------------

interface Draining {
  /** Resolves once every queued job is finished according to the database. */
  readonly drained: () => Promise<void>
  readonly stop: () => Promise<void>
}

/**
 * Counts handler calls, so the clock can wait for the last one without
 * querying the database meanwhile (polling would compete with the workers for
 * the same two cores); then it polls the database until the completions of
 * the last jobs have landed.
 */
class Tally {
  count = 0
  private target = Infinity
  private wake: (() => void) | undefined
  readonly add = (n: number) => {
    this.count += n
    if (this.count >= this.target) this.wake?.()
  }
  reached(target: number): Promise<void> {
    this.target = target
    return this.count >= target ? Promise.resolve() : new Promise((resolve) => {
      this.wake = resolve
    })
  }
}

interface System {
  readonly name: string
  readonly enqueueOne: (i: number) => Promise<unknown>
  readonly enqueueBatch: (from: number, count: number) => Promise<unknown>
  /** One job whose key (`i` modulo `DEDUP_KEYS`) replaces the waiting job holding it; absent: no such mode. */
  readonly enqueueReplace?: (i: number) => Promise<unknown>
  /** Starts workers with `WORKER_CONCURRENCY` no-op handlers over the jobs already queued; each handler call ticks `tally`. */
  readonly process: (jobs: number) => Promise<Draining>
  /** How many jobs are not finished yet. */
  readonly unfinished: () => Promise<number>
  /** Removes every job, finished or not, between cases. */
  readonly clear: () => Promise<void>
  readonly close: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const waitUntilNone = async (unfinished: () => Promise<number>): Promise<void> => {
  while ((await unfinished()) > 0) await sleep(2)
}

const drainedAfter = (tally: Tally, jobs: number, unfinished: () => Promise<number>) => async () => {
  await tally.reached(jobs)
  await waitUntilNone(unfinished)
}

const payload = (i: number) => ({ n: i })

const dedupKey = (i: number) => `key-${i % DEDUP_KEYS}`

const pgBoss = async (url: string, loops: number, batchSize: number, name: string): Promise<System> => {
  const boss = new PgBoss({ connectionString: url, max: POOL, supervise: false, schedule: false })
  boss.on("error", (error) => console.error("pg-boss:", error))
  await boss.start()
  await boss.createQueue(QUEUE)
  const unfinished = () => boss.getQueueSize(QUEUE, { before: "completed" })
  return {
    name,
    enqueueOne: (i) => boss.send(QUEUE, payload(i)),
    enqueueBatch: (from, count) =>
      boss.insert(Array.from({ length: count }, (_, k) => ({ name: QUEUE, data: payload(from + k) }))),
    process: async (jobs) => {
      const tally = new Tally()
      const ids: Array<string> = []
      for (let i = 0; i < loops; i++) {
        ids.push(
          await boss.work(QUEUE, { batchSize, pollingIntervalSeconds: 0.5 }, async (batch) => {
            await Promise.all(batch.map(noop))
            tally.add(batch.length)
          })
        )
      }
      return {
        drained: drainedAfter(tally, jobs, unfinished),
        stop: async () => {
          for (const id of ids) await boss.offWork({ id })
        }
      }
    },
    unfinished,
    // Between cases only, never measured: drop finished jobs too, so every case starts from an empty table.
    clear: () => boss.getDb().executeSql("truncate pgboss.job", []).then(noop),
    close: () => boss.stop({ graceful: false, wait: true })
  }
}

const noop = (_job: unknown): Promise<void> => Promise.resolve()

const silent = new GraphileLogger(() => () => undefined)

const graphileWorker = async (url: string): Promise<System> => {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, maxPoolSize: POOL, logger: silent })
  await utils.migrate()
  const count = () =>
    utils.withPgClient(async (client) => {
      const result = await client.query<{ n: number }>("select count(*)::int as n from graphile_worker.jobs")
      return result.rows[0]?.n ?? 0
    })
  return {
    name: "graphile-worker 0.16.6",
    enqueueOne: (i) => utils.addJob(QUEUE, payload(i)),
    enqueueReplace: (i) => utils.addJob(QUEUE, payload(i), { jobKey: dedupKey(i), jobKeyMode: "replace" }),
    enqueueBatch: (from, count) =>
      utils.withPgClient((client) =>
        client.query(
          "select graphile_worker.add_jobs(array(select json_populate_recordset(null::graphile_worker.job_spec, $1::json)))",
          [JSON.stringify(Array.from({ length: count }, (_, k) => ({ identifier: QUEUE, payload: payload(from + k) })))]
        )
      ),
    process: async (jobs) => {
      const tally = new Tally()
      const runner = await runGraphile({
        connectionString: url,
        concurrency: WORKER_CONCURRENCY,
        maxPoolSize: POOL,
        noHandleSignals: true,
        logger: silent,
        taskList: {
          [QUEUE]: () => {
            tally.add(1)
            return Promise.resolve()
          }
        }
      })
      return { drained: drainedAfter(tally, jobs, count), stop: () => runner.stop() }
    },
    unfinished: count,
    clear: () => utils.withPgClient((client) => client.query("truncate graphile_worker._private_jobs")).then(noop),
    close: async () => {
      await utils.release()
    }
  }
}

const BenchJob = JobQueue.define({ kind: "bench", queue: QUEUE, payload: Schema.Struct({ n: Schema.Number }) })

const bulwark = async (url: string): Promise<System> => {
  const database = PgClient.layer({ url: Redacted.make(url), maxConnections: POOL })
  const runtime = ManagedRuntime.make(
    SqlJobQueue.layer({ queues: { [QUEUE]: { concurrency: WORKER_CONCURRENCY } } }).pipe(Layer.provideMerge(database))
  )
  await runtime.runPromise(Migrations.run)
  const unfinished = () =>
    runtime.runPromise(
      Effect.map(
        JobQueue.stats,
        (stats) => stats.reduce((sum, q) => sum + q.ready + q.scheduled + q.retrying + q.running, 0)
      )
    )
  return {
    name: "Bulwark",
    enqueueOne: (i) => runtime.runPromise(JobQueue.enqueue(BenchJob, payload(i))),
    enqueueReplace: (i) =>
      runtime.runPromise(
        JobQueue.enqueue(BenchJob, payload(i), { dedup: { key: dedupKey(i), onConflict: "replace" } })
      ),
    enqueueBatch: (from, count) =>
      runtime.runPromise(
        JobQueue.enqueueMany(Array.from({ length: count }, (_, k) => JobQueue.job(BenchJob, payload(from + k))))
      ),
    process: async (jobs) => {
      const tally = new Tally()
      const handler = JobWorker.handler(BenchJob, () => Effect.sync(() => tally.add(1)))
      const scope = await runtime.runPromise(Scope.make())
      await runtime.runPromise(Scope.extend(JobWorker.make({ handlers: [handler] }), scope))
      return {
        drained: drainedAfter(tally, jobs, unfinished),
        stop: () => runtime.runPromise(Scope.close(scope, Exit.void))
      }
    },
    unfinished,
    clear: () =>
      runtime.runPromise(
        Effect.flatMap(SqlClient.SqlClient, (sql) => sql`TRUNCATE bulwark_jobs, bulwark_dead_letters`).pipe(
          Effect.asVoid
        )
      ),
    close: () => runtime.dispose()
  }
}

// -----------------------------------------------------------------------------
// Measuring
// -----------------------------------------------------------------------------

const pool = async (count: number, concurrency: number, call: (i: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  const caller = async () => {
    while (next < count) await call(next++)
  }
  await Promise.all(Array.from({ length: concurrency }, caller))
}

const timed = async (work: () => Promise<unknown>): Promise<number> => {
  const start = performance.now()
  await work()
  return performance.now() - start
}

/** Jobs per second for one run of one case. */
type Measure = (system: System) => Promise<number>

const enqueueUnbatched: Measure = async (system) => {
  const ms = await timed(() => pool(JOBS, CLIENT_CONCURRENCY, system.enqueueOne))
  await system.clear()
  return (JOBS / ms) * 1000
}

const enqueueBatched: Measure = async (system) => {
  const ms = await timed(() => pool(JOBS / BATCH, CLIENT_CONCURRENCY, (b) => system.enqueueBatch(b * BATCH, BATCH)))
  await system.clear()
  return (JOBS / ms) * 1000
}

const enqueueReplacing: Measure = async (system) => {
  const enqueueReplace = system.enqueueReplace
  if (enqueueReplace === undefined) throw new Error(`${system.name} has no replace dedup`)
  const ms = await timed(() => pool(JOBS, CLIENT_CONCURRENCY, enqueueReplace))
  if ((await system.unfinished()) !== DEDUP_KEYS) throw new Error(`${system.name}: expected ${DEDUP_KEYS} jobs`)
  await system.clear()
  return (JOBS / ms) * 1000
}

const processing = (jobs: number): Measure => async (system) => {
  for (let from = 0; from < jobs; from += BATCH) await system.enqueueBatch(from, Math.min(BATCH, jobs - from))
  if ((await system.unfinished()) !== jobs) throw new Error(`${system.name}: expected ${jobs} queued jobs`)
  let draining: Draining | undefined
  const ms = await timed(async () => {
    draining = await system.process(jobs)
    await draining.drained()
  })
  await draining?.stop()
  await system.clear()
  return (jobs / ms) * 1000
}

interface Row {
  readonly name: string
  readonly opsPerSecond: number
  readonly marginPercent: number
}

/**
 * The median round, and as `±%` the largest distance of a round from it — the
 * convention of `compare()` in harness.ts: on a shared machine a burst of
 * other work lands on one case of one round, not on a whole case.
 */
const summarise = (name: string, samples: ReadonlyArray<number>): Row => {
  const sorted = [...samples].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  const median = sorted.length % 2 === 1
    ? sorted[middle] ?? Number.NaN
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
  const spread = Math.max(0, ...samples.map((sample) => Math.abs(sample - median) / median))
  return { name, opsPerSecond: median, marginPercent: spread * 100 }
}

/** Prints rows the way `compare()` in harness.ts does, for cases that are not tinybench loops. */
const print = (title: string, versus: ReadonlyArray<string>, rows: ReadonlyArray<Row>): void => {
  const format = (n: number) => Math.round(n).toLocaleString("en-US")
  const nameWidth = Math.max(...rows.map((row) => row.name.length), 4)
  const ratioWidth = (v: string) => Math.max(10, v.length + 4)
  console.log(`\n## ${title}\n`)
  console.log(
    [
      "case".padEnd(nameWidth),
      "jobs/s".padStart(12),
      "±%".padStart(6),
      ...versus.map((v) => `vs ${v}`.padStart(ratioWidth(v)))
    ]
      .join("  ")
  )
  for (const row of rows) {
    const ratios = versus.map((v) => {
      const other = rows.find((r) => r.name === v)
      const ratio = other === undefined ? Number.NaN : row.opsPerSecond / other.opsPerSecond
      return `${ratio.toFixed(2)}×`.padStart(ratioWidth(v))
    })
    console.log(
      [
        row.name.padEnd(nameWidth),
        format(row.opsPerSecond).padStart(12),
        row.marginPercent.toFixed(1).padStart(6),
        ...ratios
      ]
        .join("  ")
    )
  }
}

interface Case {
  readonly name: string
  readonly system: System
  readonly measure: Measure
}

const measureAll = async (cases: ReadonlyArray<Case>): Promise<ReadonlyArray<Row>> => {
  const samples = new Map<string, Array<number>>(cases.map((c) => [c.name, []]))
  // A warm-up round that is not recorded: JIT, prepared statements, pools.
  for (let round = 0; round <= ROUNDS; round++) {
    for (const c of cases) {
      const rate = await c.measure(c.system)
      if (round > 0) samples.get(c.name)?.push(rate)
    }
  }
  return cases.map((c) => summarise(c.name, samples.get(c.name) ?? []))
}

// -----------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------

const admin = (statement: string): Promise<unknown> =>
  Effect.runPromise(
    Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(statement)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(SERVER), maxConnections: 1 }))
    )
  )

const withDatabase = (database: string): string => {
  const url = new URL(SERVER)
  url.pathname = `/${database}`
  return url.toString()
}

export const run = async () => {
  const database = `bulwark_bench_${process.pid}_${Date.now().toString(36)}`
  await admin(`CREATE DATABASE ${database}`)
  const url = withDatabase(database)
  const systems: Array<System> = []
  try {
    const boss = await pgBoss(url, WORKER_CONCURRENCY, 1, "pg-boss 10.3.3")
    const bossBatched = await pgBoss(url, WORKER_CONCURRENCY, 50, "pg-boss 10.3.3, 16 loops × batch 50")
    const graphile = await graphileWorker(url)
    const ours = await bulwark(url)
    systems.push(boss, bossBatched, graphile, ours)
    const peers = [boss.name, graphile.name]
    console.log(
      `\njob queues on PostgreSQL ${SERVER.replace(/\/[^/]*$/, "")}, scratch database ${database}; ` +
        `pool ${POOL}; median of ${ROUNDS} rounds after a warm-up round`
    )

    print(
      `enqueue, one job per call (${JOBS.toLocaleString("en-US")} jobs, ${CLIENT_CONCURRENCY} callers)`,
      peers,
      await measureAll(
        [ours, boss, graphile].map((system) => ({ name: system.name, system, measure: enqueueUnbatched }))
      )
    )
    print(
      `enqueue, batches of ${BATCH} (${JOBS.toLocaleString("en-US")} jobs, ${CLIENT_CONCURRENCY} batches in flight)`,
      peers,
      await measureAll([ours, boss, graphile].map((system) => ({ name: system.name, system, measure: enqueueBatched })))
    )
    print(
      `enqueue with replace dedup (${JOBS.toLocaleString("en-US")} jobs over ${DEDUP_KEYS} keys, ` +
        `${CLIENT_CONCURRENCY} callers)`,
      [graphile.name],
      await measureAll([ours, graphile].map((system) => ({ name: system.name, system, measure: enqueueReplacing })))
    )
    print(
      `process: drain queued no-op jobs, ${WORKER_CONCURRENCY} at once ` +
        `(${JOBS.toLocaleString("en-US")} jobs; pg-boss at the same concurrency: ${SLOW_JOBS})`,
      peers,
      await measureAll([
        { name: ours.name, system: ours, measure: processing(JOBS) },
        { name: boss.name, system: boss, measure: processing(SLOW_JOBS) },
        { name: bossBatched.name, system: bossBatched, measure: processing(JOBS) },
        { name: graphile.name, system: graphile, measure: processing(JOBS) }
      ])
    )
  } finally {
    for (const system of systems) await system.close().catch((error: unknown) => console.error(error))
    // graphile-worker's runner ends its pool without awaiting it (and drops its error listener first): give those
    // connections time to close, or the forced DROP below terminates them and their pool throws.
    await sleep(1_000)
    await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
  }
}
