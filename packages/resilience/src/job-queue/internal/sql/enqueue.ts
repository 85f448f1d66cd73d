/**
 * Enqueue on PostgreSQL: `enqueueJobs` (a plain `INSERT … SELECT`), `enqueueDeduplicatedJobs` (`INSERT … ON
 * CONFLICT (queue, dedup_key)`, answering with the existing job), single-job enqueues made at the same time
 * combined into shared statements, and the wake-ups of the queues that got due jobs.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { JobId } from "../../JobQueue.js"
import type { JobStore, NewJob } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { makeNotifier } from "./notifier.js"
import { byNumericId, millisParam, run, type Store } from "./shared.js"

const InsertedRow = Schema.Struct({
  ord: Schema.Number,
  queue: Schema.String,
  id: Schema.String,
  created: Schema.Boolean,
  due: Schema.Boolean
})

const FreshRow = Schema.Struct({ id: Schema.String, queue: Schema.String, due: Schema.Boolean })

const NotifiedRow = Schema.Struct({ n: Schema.Number })

const InsertedRows = Schema.Array(InsertedRow)
const FreshRows = Schema.Array(FreshRow)
const NotifiedRows = Schema.Array(NotifiedRow)

/** What enqueue returns per job. */
interface Inserted {
  readonly id: JobId
  readonly deduplicated: boolean
}

/** A single-job enqueue waiting to be combined with others into one statement. */
interface Single {
  readonly job: NewJob
  readonly done: Deferred.Deferred<Inserted, JobStoreError>
  abandoned: boolean
}

/** Most single-job enqueues one statement carries, and how many such statements may run at once. */
const MAX_COMBINED = 100
const COMBINERS = 2

/**
 * The store's `insert`. Its combiners (and the notifier's sends) run in the store's scope.
 *
 * @internal
 */
export const makeInsert = ({ channel, sql }: Store): Effect.Effect<JobStore["insert"], never, Scope.Scope> =>
  Effect.gen(function*() {
    // Wake-ups for jobs enqueued outside a transaction are sent after their commit (see notifier.ts).
    const notifier = yield* makeNotifier((queues) =>
      sql`SELECT pg_notify(${channel}, q) FROM unnest(${queues}::text[]) AS q`.pipe(Effect.asVoid)
    )

    /**
     * Wake-ups for the queues that got due jobs. Inside the caller's transaction the NOTIFY joins it, so it is
     * delivered at commit and dropped on rollback; otherwise the jobs are already committed and the notifier
     * sends it in the background.
     */
    const wake = (queues: ReadonlySet<string>) =>
      queues.size === 0 ? Effect.void : Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        Option.match({
          onNone: () => notifier.signal(queues),
          onSome: () =>
            run(
              "notifyJobs",
              NotifiedRows,
              sql`SELECT count(pg_notify(${channel}, q))::int AS n FROM unnest(${[...queues]}::text[]) AS q`
            ).pipe(Effect.asVoid)
        })
      )

    const inputRow = (job: NewJob, ord: number) => ({
      ord,
      queue: job.queue,
      kind: job.kind,
      payload: job.payload,
      priority: job.priority,
      max_attempts: job.maxAttempts,
      dedup_key: Option.getOrNull(job.dedupKey),
      run_at: Option.match(job.runAt, { onNone: () => null, onSome: (at) => at.toISOString() }),
      delay_ms: millisParam(job.delay)
    })

    /**
     * Jobs without dedup keys: a plain INSERT … SELECT in input order. The identity default is evaluated above the
     * sorted input (see its plan), so the new ids ascend in input order, and sorting them numerically pairs them
     * with the jobs.
     */
    const insertFresh = (jobs: ReadonlyArray<NewJob>) =>
      run(
        "enqueueJobs",
        FreshRows,
        sql`
          INSERT INTO bulwark_jobs (queue, kind, payload, priority, max_attempts, run_at)
          SELECT queue, kind, payload, priority, max_attempts, coalesce(run_at, now() + delay_ms * interval '1 millisecond')
          FROM jsonb_to_recordset(${JSON.stringify(jobs.map(inputRow))}::jsonb) AS x(
            ord int, queue text, kind text, payload jsonb, priority smallint, max_attempts int,
            run_at timestamptz, delay_ms double precision
          )
          ORDER BY ord
          RETURNING id::text AS id, queue, run_at <= now() AS due`
      ).pipe(Effect.flatMap((rows) => {
        if (rows.length !== jobs.length) {
          return Effect.dieMessage(`enqueueJobs returned ${rows.length} rows for ${jobs.length} jobs`)
        }
        const due = new Set<string>()
        for (const row of rows) if (row.due) due.add(row.queue)
        const ids = rows.map((row) => row.id).sort(byNumericId)
        return Effect.as(wake(due), ids.map((id) => ({ id, deduplicated: false })))
      }))

    /** Jobs with dedup keys: `ON CONFLICT … DO UPDATE` returns the existing job of a key, even one committed meanwhile. */
    const insertDeduplicated = (jobs: ReadonlyArray<NewJob>) =>
      Effect.suspend(() => {
        // Duplicate dedup keys inside one batch become one row (ON CONFLICT cannot touch a row twice per statement).
        const firstOf = new Map<string, number>()
        const rows: Array<ReturnType<typeof inputRow>> = []
        const target: Array<number> = []
        for (const job of jobs) {
          const key = Option.map(job.dedupKey, (dedup) => `${job.queue}\u0000${dedup}`)
          const seen = Option.flatMap(key, (k) => Option.fromNullable(firstOf.get(k)))
          if (Option.isSome(seen)) {
            target.push(seen.value)
            continue
          }
          const ord = rows.length
          if (Option.isSome(key)) firstOf.set(key.value, ord)
          target.push(ord)
          rows.push(inputRow(job, ord))
        }
        return run(
          "enqueueDeduplicatedJobs",
          InsertedRows,
          sql`
            WITH input AS MATERIALIZED (
              SELECT x.*, nextval(pg_get_serial_sequence('bulwark_jobs', 'id')) AS new_id
              FROM jsonb_to_recordset(${JSON.stringify(rows)}::jsonb) AS x(
                ord int, queue text, kind text, payload jsonb, priority smallint, max_attempts int,
                dedup_key text, run_at timestamptz, delay_ms double precision
              )
            ), inserted AS (
              INSERT INTO bulwark_jobs (id, queue, kind, payload, priority, max_attempts, dedup_key, run_at)
              SELECT new_id, queue, kind, payload, priority, max_attempts, dedup_key,
                coalesce(run_at, now() + delay_ms * interval '1 millisecond')
              FROM input ORDER BY ord
              ON CONFLICT (queue, dedup_key) WHERE dedup_key IS NOT NULL
                DO UPDATE SET dedup_key = EXCLUDED.dedup_key
              RETURNING id, queue, dedup_key, run_at <= now() AS due
            )
            SELECT n.ord, n.queue, coalesce(by_id.id, by_key.id)::text AS id, (by_id.id IS NOT NULL) AS created,
              coalesce(by_id.due, false) AS due
            FROM input n
            LEFT JOIN inserted by_id ON by_id.id = n.new_id
            LEFT JOIN inserted by_key ON by_id.id IS NULL AND by_key.queue = n.queue AND by_key.dedup_key = n.dedup_key
            ORDER BY n.ord`
        ).pipe(
          Effect.flatMap((inserted) => {
            const byOrd = new Map(inserted.map((row) => [row.ord, row]))
            const results: Array<{ readonly id: JobId; readonly deduplicated: boolean }> = []
            const reported = new Set<number>()
            const due = new Set<string>()
            for (const ord of target) {
              const row = byOrd.get(ord)
              if (row === undefined) {
                return Effect.dieMessage(`enqueueDeduplicatedJobs returned no row for job ${ord}`)
              }
              // A later duplicate inside the batch found the job its first occurrence created.
              results.push({ id: row.id, deduplicated: !row.created || reported.has(ord) })
              reported.add(ord)
              if (row.due) due.add(row.queue)
            }
            return Effect.as(wake(due), results)
          })
        )
      })

    const insertNow = (jobs: ReadonlyArray<NewJob>) =>
      jobs.some((job) => Option.isSome(job.dedupKey)) ? insertDeduplicated(jobs) : insertFresh(jobs)

    // Single-job enqueues outside a transaction are combined: whatever piled up while the combiners' statements ran
    // goes in one statement, so sixteen callers cost one INSERT and one commit, not sixteen. Each caller still
    // returns only once its own job is committed; an idle store sends a lone job at once.
    const singles = yield* Queue.unbounded<Single>()
    const combine = Queue.takeBetween(singles, 1, MAX_COMBINED).pipe(
      Effect.flatMap((taken) => insertSingles(Chunk.toReadonlyArray(taken)).pipe(Effect.uninterruptible)),
      Effect.forever
    )
    const insertSingles = (taken: ReadonlyArray<Single>) =>
      Effect.gen(function*() {
        // A caller interrupted while it waited gave up its job: it is not inserted.
        const batch = taken.filter((single) => !single.abandoned)
        if (batch.length === 0) return
        const exit = yield* Effect.exit(insertNow(batch.map((single) => single.job)))
        for (const [index, single] of batch.entries()) {
          yield* Deferred.done(
            single.done,
            Exit.flatMap(exit, (rows) => {
              const row = rows[index]
              return row === undefined
                ? Exit.die(new Error(`enqueue returned no row for job ${index}`))
                : Exit.succeed(row)
            })
          )
        }
      })
    for (let n = 0; n < COMBINERS; n++) yield* Effect.forkScoped(combine)

    const insertCombined = (job: NewJob) =>
      Effect.gen(function*() {
        const single: Single = { job, done: yield* Deferred.make<Inserted, JobStoreError>(), abandoned: false }
        yield* Queue.offer(singles, single)
        const row = yield* Deferred.await(single.done).pipe(
          Effect.onInterrupt(() =>
            Effect.sync(() => {
              single.abandoned = true
            })
          )
        )
        return [row]
      })

    const insert = (jobs: ReadonlyArray<NewJob>): Effect.Effect<ReadonlyArray<Inserted>, JobStoreError> => {
      if (jobs.length === 0) return Effect.succeed([])
      const [first] = jobs
      if (jobs.length > 1 || first === undefined) return insertNow(jobs)
      // Inside the caller's transaction the job must go through its connection, alone.
      return Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        (transaction) => Option.isSome(transaction) ? insertNow(jobs) : insertCombined(first)
      )
    }

    return insert
  })
