/**
 * Enqueue on PostgreSQL: `enqueueJobs` (a plain `INSERT … SELECT`), `enqueueDeduplicatedJobs` (the dedup rule of
 * `bulwark_jobs_enqueue`, sql/0006_job_dedup.sql, for each job in input order: created, deduplicated, replaced or a
 * conflict), single-job enqueues made at the same time combined into shared statements, and the wake-ups of the
 * queues that got due jobs.
 *
 * A batch with dedup keys, or an insert that takes admission, runs in a transaction (a savepoint inside the caller's):
 * a conflict or a refused admission rolls the whole batch back, and the rows it inserted or locked keep concurrent
 * enqueues of the same keys waiting until it ends, so only the jobs it created take admission.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { JobStatus } from "../../JobQueue.js"
import type { Admit, DedupPolicy, Inserted, JobStore, NewJob } from "../../JobStore.js"
import { type AdmissionRejectedError, DedupConflictError, JobStoreError } from "../errors.js"
import { statusOf } from "../status.js"
import { makeNotifier } from "./notifier.js"
import { byNumericId, millisParam, NullableTimestamp, run, type Store, Timestamp } from "./shared.js"

const InsertedRow = Schema.Struct({
  ord: Schema.Number,
  id: Schema.String,
  outcome: Schema.Literal("created", "deduplicated", "replaced", "conflict"),
  due: Schema.Boolean,
  existing_state: Schema.NullOr(Schema.Literal("ready", "running", "succeeded", "dead")),
  existing_attempt: Schema.NullOr(Schema.Number),
  existing_run_at: NullableTimestamp,
  now: Timestamp
})

const FreshRow = Schema.Struct({ id: Schema.String, queue: Schema.String, due: Schema.Boolean })

const NotifiedRow = Schema.Struct({ n: Schema.Number })

const InsertedRows = Schema.Array(InsertedRow)
const FreshRows = Schema.Array(FreshRow)
const NotifiedRows = Schema.Array(NotifiedRow)

/** A single-job enqueue waiting to be combined with others into one statement. */
interface Single {
  readonly job: NewJob
  readonly done: Deferred.Deferred<Inserted, JobStoreError | DedupConflictError>
  abandoned: boolean
}

/** What a `NewJob` without `dedup` means. */
const defaultPolicy: DedupPolicy = {
  onConflict: "error",
  keepAfterDeath: false,
  window: Option.none(),
  replaces: { priority: false, maxAttempts: false, runAt: false }
}

/** A job's dedup conflict, without its position. */
interface Conflict {
  readonly queue: string
  readonly kind: string
  readonly dedupKey: string
  readonly existingId: string
  readonly existingStatus: JobStatus
  readonly onConflict: "error" | "replace"
}

/** Each job's answer from `enqueueDeduplicatedJobs`, in input order, and the queues that got due jobs. */
interface Decided {
  readonly outcomes: ReadonlyArray<Either.Either<Inserted, Conflict>>
  readonly due: ReadonlySet<string>
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

    const dedupRow = (job: NewJob, ord: number) => {
      const policy = job.dedup ?? defaultPolicy
      return {
        ...inputRow(job, ord),
        on_conflict: policy.onConflict,
        keep_dead: policy.keepAfterDeath,
        window_ms: Option.getOrNull(Option.map(policy.window, millisParam)),
        replace_priority: policy.replaces.priority,
        replace_max_attempts: policy.replaces.maxAttempts,
        replace_run_at: policy.replaces.runAt
      }
    }

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
        return Effect.as(wake(due), ids.map((id): Inserted => ({ id, deduplicated: false, replaced: false })))
      }))

    /**
     * Jobs with dedup keys (and any without in the same batch): `bulwark_jobs_enqueue` applies the dedup rule to
     * each in input order. A conflict writes nothing for its job; the caller decides what it means for the others.
     */
    const decide = (jobs: ReadonlyArray<NewJob>): Effect.Effect<Decided, JobStoreError> =>
      run(
        "enqueueDeduplicatedJobs",
        InsertedRows,
        sql`
          SELECT e.ord, e.id::text AS id, e.outcome, e.due, e.existing_state, e.existing_attempt, e.existing_run_at,
            now() AS now
          FROM bulwark_jobs_enqueue(${JSON.stringify(jobs.map(dedupRow))}::jsonb) AS e
          ORDER BY e.ord`
      ).pipe(Effect.flatMap((rows) => {
        const byOrd = new Map(rows.map((row) => [row.ord, row]))
        const due = new Set<string>()
        const outcomes: Array<Either.Either<Inserted, Conflict>> = []
        for (const [ord, job] of jobs.entries()) {
          const row = byOrd.get(ord)
          if (row === undefined) return Effect.dieMessage(`enqueueDeduplicatedJobs returned no row for job ${ord}`)
          if (row.due) due.add(job.queue)
          outcomes.push(
            row.outcome === "conflict"
              ? Either.left({
                queue: job.queue,
                kind: job.kind,
                dedupKey: Option.getOrElse(job.dedupKey, () => ""),
                existingId: row.id,
                existingStatus: statusOf(
                  row.existing_state ?? "ready",
                  row.existing_attempt ?? 0,
                  (row.existing_run_at ?? row.now).getTime(),
                  row.now.getTime()
                ),
                onConflict: job.dedup?.onConflict === "replace" ? "replace" : "error"
              })
              : Either.right({
                id: row.id,
                deduplicated: row.outcome === "deduplicated",
                replaced: row.outcome === "replaced"
              })
          )
        }
        return Effect.succeed({ outcomes, due })
      }))

    /**
     * One caller's jobs with dedup keys, all or nothing. A lone job without admission is one statement (a conflict
     * wrote nothing); otherwise the statement and the admission of the jobs it creates share a transaction, rolled
     * back by a conflict or a refused admission.
     */
    const insertDeduplicated = (
      jobs: ReadonlyArray<NewJob>,
      admit: Admit | undefined
    ): Effect.Effect<ReadonlyArray<Inserted>, JobStoreError | DedupConflictError | AdmissionRejectedError> => {
      const settle = (decided: Decided) =>
        Effect.gen(function*() {
          const conflict = decided.outcomes.findIndex(Either.isLeft)
          const found = decided.outcomes[conflict]
          if (found !== undefined && Either.isLeft(found)) {
            return yield* Effect.fail(
              new DedupConflictError(jobs.length > 1 ? { ...found.left, index: conflict } : found.left)
            )
          }
          const inserted = decided.outcomes.flatMap((outcome) => Either.isRight(outcome) ? [outcome.right] : [])
          const created = jobs.filter((_, ord) => {
            const outcome = decided.outcomes[ord]
            return outcome !== undefined && Either.isRight(outcome) && !outcome.right.deduplicated &&
              !outcome.right.replaced
          })
          if (admit !== undefined && created.length > 0) yield* admit(created)
          return { inserted, due: decided.due }
        })
      const atomic = jobs.length === 1 && admit === undefined
        ? Effect.flatMap(decide(jobs), settle)
        : sql.withTransaction(Effect.flatMap(decide(jobs), settle)).pipe(
          Effect.catchTag("SqlError", (cause) => Effect.fail(new JobStoreError({ operation: "enqueue", cause })))
        )
      return Effect.flatMap(atomic, ({ due, inserted }) => Effect.as(wake(due), inserted))
    }

    const insertNow = (
      jobs: ReadonlyArray<NewJob>,
      admit: Admit | undefined
    ): Effect.Effect<ReadonlyArray<Inserted>, JobStoreError | DedupConflictError | AdmissionRejectedError> =>
      jobs.some((job) => Option.isSome(job.dedupKey))
        ? insertDeduplicated(jobs, admit)
        // Without dedup keys every job is created: admission first, then the insert.
        : Effect.zipRight(admit === undefined ? Effect.void : admit(jobs), insertFresh(jobs))

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
        const jobs = batch.map((single) => single.job)
        // Each caller gets its own answer: a conflict fails only its own enqueue (it wrote nothing).
        const exit = yield* Effect.exit(
          jobs.some((job) => Option.isSome(job.dedupKey))
            ? Effect.tap(decide(jobs), ({ due }) => wake(due)).pipe(Effect.map(({ outcomes }) => outcomes))
            : Effect.map(insertFresh(jobs), (rows) => rows.map(Either.right))
        )
        for (const [index, single] of batch.entries()) {
          yield* Deferred.done(
            single.done,
            Exit.flatMap(exit, (rows) => {
              const row = rows[index]
              return row === undefined
                ? Exit.die(new Error(`enqueue returned no row for job ${index}`))
                : Either.match(row, {
                  onLeft: (conflict) => Exit.fail(new DedupConflictError(conflict)),
                  onRight: Exit.succeed
                })
            })
          )
        }
      })
    for (let n = 0; n < COMBINERS; n++) yield* Effect.forkScoped(combine)

    const insertCombined = (job: NewJob) =>
      Effect.gen(function*() {
        const single: Single = {
          job,
          done: yield* Deferred.make<Inserted, JobStoreError | DedupConflictError>(),
          abandoned: false
        }
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

    const insert: JobStore["insert"] = (jobs, admit) => {
      if (jobs.length === 0) return Effect.succeed([])
      const [first] = jobs
      // A job taking admission holds its transaction while it does: it goes alone.
      if (jobs.length > 1 || first === undefined || admit !== undefined) return insertNow(jobs, admit)
      // Inside the caller's transaction the job must go through its connection, alone.
      return Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        (transaction) => Option.isSome(transaction) ? insertNow(jobs, undefined) : insertCombined(first)
      )
    }

    return insert
  })
