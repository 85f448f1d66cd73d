import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Queue from "effect/Queue"
import * as RcRef from "effect/RcRef"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { InvalidOptionsError } from "../../Failure.js"
import * as check from "../../internal/options.js"
import type * as DeadLetter from "../DeadLetter.js"
import type {
  ClaimedJob,
  FailOutcome,
  FailRequest,
  JobId,
  JobInfo,
  JobStore,
  Lease,
  NewJob,
  Pruned,
  PruneRequest,
  QueueStats,
  Reclaimed
} from "../JobQueue.js"
import * as JobQueue from "../JobQueue.js"
import type { Options } from "../SqlJobQueue.js"
import { encodeCursor } from "./cursor.js"
import { makeNotifier } from "./notifier.js"
import { statusOf } from "./status.js"
import { tag } from "./tag.js"

// Only SqlJobQueue.ts imports this module (see tag.ts); values from the public modules are only touched inside
// functions.

const COMPONENT = "SqlJobQueue"
const BIGINT = /^\d{1,18}$/

// -----------------------------------------------------------------------------
// Rows
// -----------------------------------------------------------------------------

const Timestamp = Schema.DateFromSelf
const NullableTimestamp = Schema.NullOr(Schema.DateFromSelf)
const AttemptErrors = Schema.Array(JobQueueAttemptError())

/** The attempt history is read through the public Schema class (lazily: JobQueue.ts imports this module). */
function JobQueueAttemptError() {
  return Schema.suspend(() => JobQueue.AttemptError)
}

const InsertedRow = Schema.Struct({
  ord: Schema.Number,
  queue: Schema.String,
  id: Schema.String,
  created: Schema.Boolean,
  due: Schema.Boolean
})

const FreshRow = Schema.Struct({ id: Schema.String, queue: Schema.String, due: Schema.Boolean })

const NotifiedRow = Schema.Struct({ n: Schema.Number })

/** What enqueue returns per job. */
interface Inserted {
  readonly id: JobId
  readonly deduplicated: boolean
}

/** A single-job enqueue waiting to be combined with others into one statement. */
interface Single {
  readonly job: NewJob
  readonly done: Deferred.Deferred<Inserted, JobQueue.JobStoreError>
  abandoned: boolean
}

/** Most single-job enqueues one statement carries, and how many such statements may run at once. */
const MAX_COMBINED = 100
const COMBINERS = 2

/** Orders decimal ids (no sign, no leading zeros) numerically. */
const byNumericId = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

const ClaimedRow = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  kind: Schema.String,
  payload: Schema.Unknown,
  priority: Schema.Number,
  max_attempts: Schema.Number,
  dedup_key: Schema.NullOr(Schema.String),
  attempt: Schema.Number,
  lease_epoch: Schema.String,
  enqueued_at: Timestamp,
  run_at: Timestamp,
  claimed_at: Timestamp,
  lease_expires_at: Timestamp
})

const IdRow = Schema.Struct({ id: Schema.String })

const FailedRow = Schema.Struct({ state: Schema.String, run_at: Timestamp })

const ReclaimedRow = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  state: Schema.String,
  previous_owner: Schema.NullOr(Schema.String)
})

const JobRow = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  kind: Schema.String,
  state: Schema.Literal("ready", "running", "succeeded", "dead"),
  priority: Schema.Number,
  attempt: Schema.Number,
  max_attempts: Schema.Number,
  payload: Schema.Unknown,
  dedup_key: Schema.NullOr(Schema.String),
  enqueued_at: Timestamp,
  run_at: Timestamp,
  started_at: NullableTimestamp,
  finished_at: NullableTimestamp,
  lease_owner: Schema.NullOr(Schema.String),
  lease_expires_at: NullableTimestamp,
  errors: AttemptErrors,
  replay_of: Schema.NullOr(Schema.String),
  now: Timestamp
})

const StatsRow = Schema.Struct({
  queue: Schema.String,
  ready: Schema.Number,
  scheduled: Schema.Number,
  retrying: Schema.Number,
  running: Schema.Number,
  dead_letters: Schema.Number,
  oldest_ready_ms: Schema.NullOr(Schema.Number)
})

const EntryRow = Schema.Struct({
  job_id: Schema.String,
  queue: Schema.String,
  kind: Schema.String,
  payload: Schema.Unknown,
  priority: Schema.Number,
  dedup_key: Schema.NullOr(Schema.String),
  attempts: Schema.Number,
  max_attempts: Schema.Number,
  errors: AttemptErrors,
  reason: Schema.Literal("terminal", "exhausted"),
  enqueued_at: Timestamp,
  dead_lettered_at: Timestamp,
  status: Schema.Literal("pending", "replayed", "discarded"),
  replayed_job_id: Schema.NullOr(Schema.String),
  replayed_at: NullableTimestamp,
  discarded_at: NullableTimestamp,
  replay_of: Schema.NullOr(Schema.String)
})

const ReplayRow = Schema.Struct({
  ord: Schema.Number,
  id: Schema.String,
  queue: Schema.NullOr(Schema.String),
  status: Schema.NullOr(Schema.String),
  job: Schema.NullOr(Schema.String),
  created: Schema.Boolean
})

const DiscardRow = Schema.Struct({
  ord: Schema.Number,
  id: Schema.String,
  queue: Schema.NullOr(Schema.String),
  status: Schema.NullOr(Schema.String),
  discarded: Schema.Boolean
})

// Row decoders are built once: a Schema parser is memoised per schema, so a fresh Schema.Array per call would be
// compiled again each time.
const PrunedRow = Schema.Struct({ succeeded: Schema.Number, dead_letters: Schema.Number, dead_jobs: Schema.Number })

const InsertedRows = Schema.Array(InsertedRow)
const FreshRows = Schema.Array(FreshRow)
const NotifiedRows = Schema.Array(NotifiedRow)
const ClaimedRows = Schema.Array(ClaimedRow)
const IdRows = Schema.Array(IdRow)
const FailedRows = Schema.Array(FailedRow)
const ReclaimedRows = Schema.Array(ReclaimedRow)
const JobRows = Schema.Array(JobRow)
const StatsRows = Schema.Array(StatsRow)
const EntryRows = Schema.Array(EntryRow)
const ReplayRows = Schema.Array(ReplayRow)
const DiscardRows = Schema.Array(DiscardRow)
const PrunedRows = Schema.Array(PrunedRow)

const entryOf = (row: typeof EntryRow.Type): DeadLetter.Entry => ({
  id: row.job_id,
  queue: row.queue,
  kind: row.kind,
  payload: row.payload,
  priority: row.priority,
  dedupKey: Option.fromNullable(row.dedup_key),
  attempts: row.attempts,
  maxAttempts: row.max_attempts,
  errors: row.errors,
  reason: row.reason,
  enqueuedAt: row.enqueued_at,
  deadLetteredAt: row.dead_lettered_at,
  status: row.status,
  replayedAs: Option.fromNullable(row.replayed_job_id),
  replayedAt: Option.fromNullable(row.replayed_at),
  discardedAt: Option.fromNullable(row.discarded_at),
  replayOf: Option.fromNullable(row.replay_of)
})

const ENTRY_COLUMNS = `job_id::text AS job_id, queue, kind, payload, priority, dedup_key, attempts, max_attempts,
  errors, reason, enqueued_at, dead_lettered_at, status, replayed_job_id::text AS replayed_job_id, replayed_at,
  discarded_at, replay_of::text AS replay_of`

// -----------------------------------------------------------------------------
// Store
// -----------------------------------------------------------------------------

const leasesJson = (leases: ReadonlyArray<Lease>): string =>
  JSON.stringify(leases.map((lease) => ({
    id: lease.id,
    owner: lease.owner,
    attempt: lease.attempt,
    epoch: String(lease.epoch)
  })))

/** The ids of leases, for `id = ANY (…)`: the planner then reaches the rows through the primary key. */
const idsOf = (leases: ReadonlyArray<Lease>): ReadonlyArray<string> => leases.map((lease) => lease.id)

/** Claim order: highest priority, then earliest due, then oldest (ids are decimal text). */
const claimOrder = (
  a: { readonly priority: number; readonly run_at: Date; readonly id: string },
  b: { readonly priority: number; readonly run_at: Date; readonly id: string }
): number => b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime() || byNumericId(a.id, b.id)

/** Leases that cannot name a stored job (a non-numeric id) are dropped before they reach SQL. */
const storable = (leases: ReadonlyArray<Lease>): ReadonlyArray<Lease> => leases.filter((l) => BIGINT.test(l.id))

const millisParam = (duration: Duration.Duration): number => Math.max(0, Math.round(Duration.toMillis(duration)))

const makeStoreWith = (
  pg: PgClient.PgClient,
  channel: string,
  listenerCheckInterval: Duration.Duration
): Effect.Effect<JobStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Row names are ours: a PgClient configured with name transforms must not rename them (or the payload keys).
    const sql: SqlClient.SqlClient = pg.withoutTransforms()

    const run = <A, I>(
      operation: string,
      rows: Schema.Schema<ReadonlyArray<A>, ReadonlyArray<I>>,
      statement: Statement.Statement<object>
    ): Effect.Effect<ReadonlyArray<A>, JobQueue.JobStoreError> =>
      statement.pipe(
        Effect.mapError((cause: SqlError) => new JobQueue.JobStoreError({ operation, cause })),
        Effect.flatMap((result) =>
          Schema.decodeUnknown(rows)(result).pipe(
            Effect.orDieWith((error) => new Error(`Unexpected rows from ${operation}: ${error.message}`))
          )
        )
      )

    // ---------------------------------------------------------------- enqueue

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
        const single: Single = { job, done: yield* Deferred.make<Inserted, JobQueue.JobStoreError>(), abandoned: false }
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

    const insert = (jobs: ReadonlyArray<NewJob>): Effect.Effect<ReadonlyArray<Inserted>, JobQueue.JobStoreError> => {
      if (jobs.length === 0) return Effect.succeed([])
      const [first] = jobs
      if (jobs.length > 1 || first === undefined) return insertNow(jobs)
      // Inside the caller's transaction the job must go through its connection, alone.
      return Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        (transaction) => Option.isSome(transaction) ? insertNow(jobs) : insertCombined(first)
      )
    }

    // ---------------------------------------------------------------- workers

    const claim = (request: Parameters<JobStore["claim"]>[0]) =>
      run(
        "claimJobs",
        ClaimedRows,
        sql`
          UPDATE bulwark_jobs j
          SET state = 'running', attempt = j.attempt + 1, lease_epoch = j.lease_epoch + 1,
            lease_owner = ${request.owner},
            lease_expires_at = now() + ${millisParam(request.lease)}::double precision * interval '1 millisecond',
            started_at = now()
          -- The ids as an array, so the update reaches them through the primary key (a join let the planner scan the
          -- whole table, which keeps every finished job).
          WHERE j.id = ANY (ARRAY(
            SELECT id FROM bulwark_jobs
            WHERE queue = ${request.queue} AND state = 'ready' AND run_at <= now()
            ORDER BY priority DESC, run_at, id
            LIMIT ${request.limit}
            FOR UPDATE SKIP LOCKED
          ))
          RETURNING j.id::text AS id, j.queue, j.kind, j.payload, j.priority, j.max_attempts, j.dedup_key, j.attempt,
            j.lease_epoch::text AS lease_epoch, j.enqueued_at, j.run_at, j.started_at AS claimed_at, j.lease_expires_at`
      ).pipe(Effect.map((rows) =>
        // RETURNING has no order: put the jobs back in claim order (the order a worker starts them).
        [...rows].sort(claimOrder).map((row): ClaimedJob => ({
          lease: { id: row.id, owner: request.owner, attempt: row.attempt, epoch: Number(row.lease_epoch) },
          queue: row.queue,
          kind: row.kind,
          payload: row.payload,
          priority: row.priority,
          maxAttempts: row.max_attempts,
          dedupKey: Option.fromNullable(row.dedup_key),
          enqueuedAt: row.enqueued_at,
          runAt: row.run_at,
          claimedAt: row.claimed_at,
          leaseExpiresAt: row.lease_expires_at
        }))
      ))

    const heartbeat = (leases: ReadonlyArray<Lease>, lease: Duration.Duration) => {
      const held = storable(leases)
      if (held.length === 0) return Effect.succeed([])
      return run(
        "heartbeatJobs",
        IdRows,
        sql`
          UPDATE bulwark_jobs j
          SET lease_expires_at = now() + ${millisParam(lease)}::double precision * interval '1 millisecond'
          FROM jsonb_to_recordset(${leasesJson(held)}::jsonb) AS l(id bigint, owner text, attempt int, epoch bigint)
          WHERE j.id = ANY (${idsOf(held)}::bigint[]) AND j.id = l.id AND j.state = 'running'
            AND j.lease_owner = l.owner AND j.attempt = l.attempt AND j.lease_epoch = l.epoch
          RETURNING j.id::text AS id`
      ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
    }

    const complete = (leases: ReadonlyArray<Lease>) => {
      const held = storable(leases)
      if (held.length === 0) return Effect.succeed([])
      return run(
        "completeJobs",
        IdRows,
        sql`
          UPDATE bulwark_jobs j
          SET state = 'succeeded', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL
          FROM jsonb_to_recordset(${leasesJson(held)}::jsonb) AS l(id bigint, owner text, attempt int, epoch bigint)
          WHERE j.id = ANY (${idsOf(held)}::bigint[]) AND j.id = l.id AND j.state = 'running'
            AND j.lease_owner = l.owner AND j.attempt = l.attempt AND j.lease_epoch = l.epoch
          RETURNING j.id::text AS id`
      ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
    }

    const fail = (request: FailRequest): Effect.Effect<FailOutcome, JobQueue.JobStoreError> => {
      const { error, lease } = request
      if (!BIGINT.test(lease.id)) return Effect.succeed({ _tag: "Rejected" })
      const dead = Option.isNone(request.retryIn)
      const retryMillis = Option.match(request.retryIn, { onNone: () => 0, onSome: millisParam })
      const reason = error.verdict === "terminal" ? "terminal" : "exhausted"
      return run(
        "failJob",
        FailedRows,
        sql`
          WITH failed AS (
            UPDATE bulwark_jobs j SET
              state = CASE WHEN ${dead}::boolean THEN 'dead' ELSE 'ready' END,
              run_at = CASE WHEN ${dead}::boolean THEN j.run_at
                ELSE now() + ${retryMillis}::double precision * interval '1 millisecond' END,
              finished_at = CASE WHEN ${dead}::boolean THEN now() ELSE NULL END,
              errors = j.errors || jsonb_build_array(jsonb_build_object(
                'attempt', j.attempt, 'tag', ${error.tag}::text, 'message', ${error.message}::text,
                'cause', ${error.cause}::text, 'verdict', ${error.verdict}::text, 'workerId', j.lease_owner,
                'startedAt', j.started_at, 'failedAt', now())),
              lease_owner = NULL, lease_expires_at = NULL
            WHERE j.id = ${lease.id}::bigint AND j.state = 'running' AND j.lease_owner = ${lease.owner}
              AND j.attempt = ${lease.attempt}::int AND j.lease_epoch = ${String(lease.epoch)}::bigint
            RETURNING j.*
          ), buried AS (
            INSERT INTO bulwark_dead_letters (job_id, queue, kind, payload, priority, dedup_key, attempts, max_attempts,
              errors, reason, enqueued_at, dead_lettered_at, replay_of)
            SELECT id, queue, kind, payload, priority, dedup_key, attempt, max_attempts, errors, ${reason}::text,
              enqueued_at, date_trunc('milliseconds', now()), replay_of
            FROM failed WHERE state = 'dead'
            RETURNING job_id
          )
          SELECT f.state, f.run_at FROM failed f WHERE (SELECT count(*) FROM buried) >= 0`
      ).pipe(Effect.map((rows): FailOutcome => {
        const row = rows[0]
        if (row === undefined) return { _tag: "Rejected" }
        return row.state === "dead" ? { _tag: "Dead" } : { _tag: "Retrying", runAt: row.run_at }
      }))
    }

    const release = (leases: ReadonlyArray<Lease>) => {
      const held = storable(leases)
      if (held.length === 0) return Effect.succeed([])
      return run(
        "releaseJobs",
        IdRows,
        sql`
          WITH released AS (
            UPDATE bulwark_jobs j
            SET state = 'ready', attempt = j.attempt - 1, lease_owner = NULL, lease_expires_at = NULL
            FROM jsonb_to_recordset(${leasesJson(held)}::jsonb) AS l(id bigint, owner text, attempt int, epoch bigint)
            WHERE j.id = ANY (${idsOf(held)}::bigint[]) AND j.id = l.id AND j.state = 'running'
              AND j.lease_owner = l.owner AND j.attempt = l.attempt AND j.lease_epoch = l.epoch
            RETURNING j.id, j.queue
          ), woken AS (
            SELECT pg_notify(${channel}, q.queue) FROM (SELECT DISTINCT queue FROM released) q
          )
          SELECT id::text AS id FROM released WHERE (SELECT count(*) FROM woken) >= 0`
      ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
    }

    const reclaim = (queues: ReadonlyArray<string>, limit: number) => {
      if (queues.length === 0) return Effect.succeed([])
      return run(
        "reclaimJobs",
        ReclaimedRows,
        sql`
          WITH reclaimed AS (
            UPDATE bulwark_jobs j SET
              state = CASE WHEN j.attempt >= j.max_attempts THEN 'dead' ELSE 'ready' END,
              run_at = CASE WHEN j.attempt >= j.max_attempts THEN j.run_at ELSE now() END,
              finished_at = CASE WHEN j.attempt >= j.max_attempts THEN now() ELSE NULL END,
              errors = j.errors || jsonb_build_array(jsonb_build_object(
                'attempt', j.attempt, 'tag', 'LeaseExpired',
                'message', 'the lease of worker ' || j.lease_owner || ' lapsed before the job finished',
                'cause', NULL, 'verdict', 'transient', 'workerId', j.lease_owner,
                'startedAt', j.started_at, 'failedAt', now())),
              lease_owner = NULL, lease_expires_at = NULL
            WHERE j.id = ANY (ARRAY(
              SELECT id FROM bulwark_jobs
              WHERE state = 'running' AND ${sql.in("queue", queues)} AND lease_expires_at < now()
              ORDER BY lease_expires_at
              LIMIT ${limit}
            ))
              -- Re-checked on the row's latest version: a heartbeat or an outcome that won the race keeps the job.
              AND j.state = 'running' AND j.lease_expires_at < now()
            RETURNING j.*
          ), buried AS (
            INSERT INTO bulwark_dead_letters (job_id, queue, kind, payload, priority, dedup_key, attempts, max_attempts,
              errors, reason, enqueued_at, dead_lettered_at, replay_of)
            SELECT id, queue, kind, payload, priority, dedup_key, attempt, max_attempts, errors, 'exhausted',
              enqueued_at, date_trunc('milliseconds', now()), replay_of
            FROM reclaimed WHERE state = 'dead'
            RETURNING job_id
          ), woken AS (
            SELECT pg_notify(${channel}, q.queue) FROM (SELECT DISTINCT queue FROM reclaimed WHERE state = 'ready') q
          )
          SELECT id::text AS id, queue, state, errors -> -1 ->> 'workerId' AS previous_owner FROM reclaimed
          WHERE (SELECT count(*) FROM buried) >= 0 AND (SELECT count(*) FROM woken) >= 0`
      ).pipe(Effect.map((rows) =>
        rows.map((row): Reclaimed => ({
          id: row.id,
          queue: row.queue,
          outcome: row.state === "dead" ? "Dead" : "Retrying",
          previousOwner: row.previous_owner ?? ""
        }))
      ))
    }

    // ---------------------------------------------------------------- inspection

    const status = (id: JobId) => {
      if (!BIGINT.test(id)) return Effect.succeed(Option.none())
      return run(
        "jobStatus",
        JobRows,
        sql`
          SELECT id::text AS id, queue, kind, state, priority, attempt, max_attempts, payload, dedup_key, enqueued_at,
            run_at, started_at, finished_at, lease_owner, lease_expires_at, errors, replay_of::text AS replay_of,
            now() AS now
          FROM bulwark_jobs WHERE id = ${id}::bigint`
      ).pipe(Effect.map((rows) =>
        Option.map(Option.fromNullable(rows[0]), (row): JobInfo => ({
          id: row.id,
          queue: row.queue,
          kind: row.kind,
          status: statusOf(row.state, row.attempt, row.run_at.getTime(), row.now.getTime()),
          priority: row.priority,
          attempts: row.attempt,
          maxAttempts: row.max_attempts,
          payload: row.payload,
          dedupKey: Option.fromNullable(row.dedup_key),
          enqueuedAt: row.enqueued_at,
          runAt: row.run_at,
          startedAt: Option.fromNullable(row.started_at),
          finishedAt: Option.fromNullable(row.finished_at),
          leaseOwner: Option.fromNullable(row.lease_owner),
          leaseExpiresAt: Option.fromNullable(row.lease_expires_at),
          errors: row.errors,
          replayOf: Option.fromNullable(row.replay_of)
        }))
      ))
    }

    const stats = run(
      "queueStats",
      StatsRows,
      sql`
        SELECT queue, sum(ready)::int AS ready, sum(scheduled)::int AS scheduled, sum(retrying)::int AS retrying,
          sum(running)::int AS running, sum(dead_letters)::int AS dead_letters,
          (extract(epoch FROM now() - min(oldest_ready)) * 1000)::double precision AS oldest_ready_ms
        FROM (
          SELECT queue,
            count(*) FILTER (WHERE state = 'ready' AND run_at <= now()) AS ready,
            count(*) FILTER (WHERE state = 'ready' AND run_at > now() AND attempt = 0) AS scheduled,
            count(*) FILTER (WHERE state = 'ready' AND run_at > now() AND attempt > 0) AS retrying,
            count(*) FILTER (WHERE state = 'running') AS running,
            0 AS dead_letters,
            min(run_at) FILTER (WHERE state = 'ready' AND run_at <= now()) AS oldest_ready
          FROM bulwark_jobs WHERE state IN ('ready', 'running') GROUP BY queue
          UNION ALL
          SELECT queue, 0, 0, 0, 0, count(*), NULL FROM bulwark_dead_letters WHERE status = 'pending' GROUP BY queue
        ) counts
        GROUP BY queue ORDER BY queue`
    ).pipe(Effect.map((rows) =>
      rows.map((row): QueueStats => ({
        queue: row.queue,
        ready: row.ready,
        scheduled: row.scheduled,
        retrying: row.retrying,
        running: row.running,
        deadLetters: row.dead_letters,
        oldestReadyAge: Option.map(Option.fromNullable(row.oldest_ready_ms), (ms) => Duration.millis(Math.max(0, ms)))
      }))
    ))

    // ---------------------------------------------------------------- dead letters

    const listDeadLetters = (query: DeadLetter.Query) => {
      const newest = query.order === "newest"
      const clauses: Array<Statement.Fragment> = []
      if (query.status !== "all") clauses.push(sql`status = ${query.status}`)
      if (Option.isSome(query.queue)) clauses.push(sql`queue = ${query.queue.value}`)
      if (Option.isSome(query.kind)) clauses.push(sql`kind = ${query.kind.value}`)
      if (Option.isSome(query.errorTag)) clauses.push(sql`errors -> -1 ->> 'tag' = ${query.errorTag.value}`)
      if (Option.isSome(query.since)) {
        clauses.push(sql`dead_lettered_at >= ${query.since.value.toISOString()}::timestamptz`)
      }
      if (Option.isSome(query.until)) {
        clauses.push(sql`dead_lettered_at < ${query.until.value.toISOString()}::timestamptz`)
      }
      if (Option.isSome(query.after) && BIGINT.test(query.after.value.id)) {
        const at = query.after.value.deadLetteredAt.toISOString()
        const id = query.after.value.id
        clauses.push(
          newest
            ? sql`(dead_lettered_at, job_id) < (${at}::timestamptz, ${id}::bigint)`
            : sql`(dead_lettered_at, job_id) > (${at}::timestamptz, ${id}::bigint)`
        )
      }
      const where = clauses.length === 0 ? sql`TRUE` : sql.and(clauses)
      const order = newest ? sql.literal("dead_lettered_at DESC, job_id DESC") : sql.literal("dead_lettered_at, job_id")
      return run(
        "listDeadLetters",
        EntryRows,
        sql`SELECT ${sql.literal(ENTRY_COLUMNS)} FROM bulwark_dead_letters WHERE ${where} ORDER BY ${order}
          LIMIT ${query.limit + 1}`
      ).pipe(Effect.map((rows): DeadLetter.Page => {
        const entries = rows.slice(0, query.limit).map(entryOf)
        const last = entries.at(-1)
        return {
          entries,
          next: rows.length > query.limit && last !== undefined
            ? Option.some(encodeCursor({ deadLetteredAt: last.deadLetteredAt, id: last.id }))
            : Option.none()
        }
      }))
    }

    const getDeadLetter = (id: JobId) => {
      if (!BIGINT.test(id)) return Effect.succeed(Option.none())
      return run(
        "getDeadLetter",
        EntryRows,
        sql`SELECT ${sql.literal(ENTRY_COLUMNS)} FROM bulwark_dead_letters WHERE job_id = ${id}::bigint`
      ).pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), entryOf)))
    }

    const distinctIds = (ids: ReadonlyArray<JobId>): ReadonlyArray<JobId> => [...new Set(ids)]

    const replayDeadLetters = (requests: ReadonlyArray<DeadLetter.ReplayRequest>) =>
      Effect.suspend(() => {
        const seen = new Set<JobId>()
        const unique = requests.filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true)))
        const valid = unique.filter((r) => BIGINT.test(r.id))
        const byId = new Map<JobId, DeadLetter.ReplayResult>()
        const answer = () =>
          unique.map((r): DeadLetter.ReplayResult => byId.get(r.id) ?? { _tag: "NotFound", id: r.id })
        if (valid.length === 0) return Effect.succeed(answer())
        const json = JSON.stringify(valid.map((r, ord) => ({
          ord,
          id: r.id,
          payload: Option.getOrNull(r.payload),
          has_payload: Option.isSome(r.payload)
        })))
        return run(
          "replayDeadLetters",
          ReplayRows,
          sql`
            WITH req AS MATERIALIZED (
              SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS r(ord int, id bigint, payload jsonb, has_payload boolean)
            ), target AS MATERIALIZED (
              -- Locks the entries (in id order, against deadlocks) and reads their latest committed version: a
              -- concurrent replay that committed first is seen as 'replayed' here, so each entry yields one job.
              SELECT d.job_id, d.status, d.replayed_job_id, d.queue
              FROM bulwark_dead_letters d WHERE d.job_id IN (SELECT id FROM req)
              ORDER BY d.job_id
              FOR UPDATE
            ), fresh AS MATERIALIZED (
              SELECT t.job_id, nextval(pg_get_serial_sequence('bulwark_jobs', 'id')) AS new_id
              FROM target t WHERE t.status = 'pending'
            ), inserted AS (
              INSERT INTO bulwark_jobs (id, queue, kind, payload, priority, max_attempts, replay_of)
              SELECT f.new_id, d.queue, d.kind, CASE WHEN r.has_payload THEN r.payload ELSE d.payload END, d.priority,
                d.max_attempts, d.job_id
              FROM fresh f JOIN bulwark_dead_letters d ON d.job_id = f.job_id JOIN req r ON r.id = f.job_id
              RETURNING id, queue
            ), marked AS (
              UPDATE bulwark_dead_letters d
              SET status = 'replayed', replayed_job_id = f.new_id, replayed_at = date_trunc('milliseconds', now())
              FROM fresh f WHERE d.job_id = f.job_id
              RETURNING d.job_id
            ), woken AS (
              SELECT pg_notify(${channel}, q.queue) FROM (SELECT DISTINCT queue FROM inserted) q
            )
            SELECT r.ord, r.id::text AS id, t.queue, t.status, coalesce(f.new_id, t.replayed_job_id)::text AS job,
              (f.new_id IS NOT NULL) AS created
            FROM req r LEFT JOIN target t ON t.job_id = r.id LEFT JOIN fresh f ON f.job_id = r.id
            WHERE (SELECT count(*) FROM inserted) >= 0 AND (SELECT count(*) FROM marked) >= 0
              AND (SELECT count(*) FROM woken) >= 0
            ORDER BY r.ord`
        ).pipe(Effect.map((rows) => {
          for (const row of rows) {
            if (row.status === null || row.queue === null) continue
            if (row.status === "discarded") byId.set(row.id, { _tag: "Discarded", id: row.id })
            else if (row.job !== null) {
              byId.set(row.id, { _tag: "Replayed", id: row.id, queue: row.queue, job: row.job, created: row.created })
            }
          }
          return answer()
        }))
      })

    const discardDeadLetters = (ids: ReadonlyArray<JobId>) =>
      Effect.suspend(() => {
        const unique = distinctIds(ids)
        const valid = unique.filter((id) => BIGINT.test(id))
        const byId = new Map<JobId, DeadLetter.DiscardResult>()
        const answer = () =>
          unique.map((id): DeadLetter.DiscardResult =>
            byId.get(id) ?? { id, queue: Option.none(), outcome: "not_found" }
          )
        if (valid.length === 0) return Effect.succeed(answer())
        const json = JSON.stringify(valid.map((id, ord) => ({ ord, id })))
        return run(
          "discardDeadLetters",
          DiscardRows,
          sql`
            WITH req AS MATERIALIZED (
              SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS r(ord int, id bigint)
            ), target AS MATERIALIZED (
              SELECT d.job_id, d.status, d.queue
              FROM bulwark_dead_letters d WHERE d.job_id IN (SELECT id FROM req)
              ORDER BY d.job_id
              FOR UPDATE
            ), marked AS (
              UPDATE bulwark_dead_letters d
              SET status = 'discarded', discarded_at = date_trunc('milliseconds', now())
              FROM target t WHERE d.job_id = t.job_id AND t.status = 'pending'
              RETURNING d.job_id
            )
            SELECT r.ord, r.id::text AS id, t.queue, t.status, (m.job_id IS NOT NULL) AS discarded
            FROM req r LEFT JOIN target t ON t.job_id = r.id LEFT JOIN marked m ON m.job_id = r.id
            ORDER BY r.ord`
        ).pipe(Effect.map((rows) => {
          for (const row of rows) {
            if (row.status === null || row.queue === null) continue
            const queue = Option.some(row.queue)
            const outcome: DeadLetter.DiscardResult["outcome"] = row.discarded
              ? "discarded"
              : row.status === "discarded"
              ? "already_discarded"
              : "replayed"
            byId.set(row.id, { id: row.id, queue, outcome })
          }
          return answer()
        }))
      })

    // ---------------------------------------------------------------- retention

    // Oldest first, in bounded batches that skip rows another transaction holds (a late completion, a replay or
    // discard in progress). A settled entry's dead job row goes with it: it only backs the entry (and holds its
    // dedup key). The cutoff scans use the partial indexes of 0003_job_queue_retention.sql; their expressions must
    // stay identical to these.
    const prune = (request: PruneRequest) =>
      run(
        "pruneJobs",
        PrunedRows,
        sql`
          WITH doomed_jobs AS (
            SELECT id FROM bulwark_jobs
            WHERE state = 'succeeded'
              AND finished_at < now() - ${
          millisParam(request.keepSucceeded)
        }::double precision * interval '1 millisecond'
            ORDER BY finished_at
            LIMIT ${request.limit}
            FOR UPDATE SKIP LOCKED
          ), pruned_jobs AS (
            DELETE FROM bulwark_jobs j USING doomed_jobs d
            WHERE j.id = d.id AND j.state = 'succeeded'
            RETURNING j.id
          ), doomed_entries AS (
            SELECT job_id FROM bulwark_dead_letters
            WHERE status <> 'pending'
              AND coalesce(replayed_at, discarded_at) <
                now() - ${millisParam(request.keepSettledDeadLetters)}::double precision * interval '1 millisecond'
            ORDER BY coalesce(replayed_at, discarded_at)
            LIMIT ${request.limit}
            FOR UPDATE SKIP LOCKED
          ), pruned_entries AS (
            DELETE FROM bulwark_dead_letters d USING doomed_entries e
            WHERE d.job_id = e.job_id AND d.status <> 'pending'
            RETURNING d.job_id
          ), pruned_dead_jobs AS (
            DELETE FROM bulwark_jobs j USING pruned_entries e
            WHERE j.id = e.job_id AND j.state = 'dead'
            RETURNING j.id
          )
          SELECT (SELECT count(*) FROM pruned_jobs)::int AS succeeded,
            (SELECT count(*) FROM pruned_entries)::int AS dead_letters,
            (SELECT count(*) FROM pruned_dead_jobs)::int AS dead_jobs`
      ).pipe(Effect.map((rows): Pruned => ({
        succeeded: rows[0]?.succeeded ?? 0,
        deadLetters: rows[0]?.dead_letters ?? 0
      })))

    // ---------------------------------------------------------------- wake-ups

    const listener = yield* makeListener(pg, sql, channel, listenerCheckInterval)

    return {
      backend: "postgres",
      insert,
      claim,
      heartbeat,
      complete,
      fail,
      release,
      reclaim,
      status,
      stats,
      wakeups: listener.wakeups,
      listening: listener.listening,
      listDeadLetters,
      getDeadLetter,
      replayDeadLetters,
      discardDeadLetters,
      prune
    }
  })

// -----------------------------------------------------------------------------
// Listener
// -----------------------------------------------------------------------------

// Queue names cannot contain "!", so no wake-up is ever mistaken for a ping.
const PING = "!ping:"

/**
 * One LISTEN per store, started when the first worker subscribes and
 * stopped with the last. `PgClient.listen` neither reports a dead connection
 * nor reconnects, so a session proves itself with pings through the database
 * (`pg_notify` on the same channel, a payload only this store recognises): a
 * ping that does not come back within the check interval ends the session,
 * and a new one starts with backoff. Closing the session's stream releases
 * @effect/sql-pg's shared listen client, so the next session connects afresh.
 */
const makeListener = (
  pg: PgClient.PgClient,
  sql: SqlClient.SqlClient,
  channel: string,
  checkInterval: Duration.Duration
) =>
  Effect.gen(function*() {
    const hub = yield* PubSub.sliding<string>(4096)
    const connected = yield* Ref.make(false)
    const instance = Math.random().toString(36).slice(2, 12)
    const pingTimeout = Duration.max(checkInterval, Duration.seconds(2))

    const session = Effect.gen(function*() {
      const received = yield* Ref.make(0)
      const consumer = yield* pg.listen(channel).pipe(
        Stream.runForEach((payload) =>
          payload.startsWith(PING)
            ? payload === `${PING}${instance}` ? Ref.update(received, (n) => n + 1) : Effect.void
            : PubSub.publish(hub, payload)
        ),
        Effect.forkDaemon
      )
      const stop = Effect.gen(function*() {
        yield* Ref.set(connected, false)
        yield* Fiber.interruptFork(consumer)
        // The dead connection's UNLISTEN may fail; never wait long for it.
        yield* Fiber.await(consumer).pipe(Effect.interruptible, Effect.timeoutOption(Duration.seconds(5)))
      })
      // A ping sent before LISTEN is in place is lost, so pings are re-sent every 100 ms until one comes back.
      const ping = Effect.gen(function*() {
        const before = yield* Ref.get(received)
        const once = sql`SELECT pg_notify(${channel}, ${`${PING}${instance}`})`.pipe(
          Effect.zipRight(
            Ref.get(received).pipe(
              Effect.repeat({ until: (n) => n > before, schedule: Schedule.spaced(Duration.millis(10)) }),
              Effect.timeoutOption(Duration.millis(100))
            )
          )
        )
        const back = yield* once.pipe(Effect.repeat({ until: Option.isSome }), Effect.timeoutOption(pingTimeout))
        if (Option.isNone(back)) return yield* Effect.fail("ping lost" as const)
        yield* Ref.set(connected, true)
      })
      return yield* Effect.repeat(ping, Schedule.spaced(checkInterval)).pipe(
        Effect.raceFirst(Fiber.join(consumer).pipe(Effect.zipRight(Effect.fail("listener ended" as const)))),
        Effect.ensuring(stop)
      )
    })

    const supervise = session.pipe(
      Effect.tapError((reason) =>
        Effect.logWarning(`Job wake-up listener on "${channel}" is down (${String(reason)}); reconnecting`)
      ),
      Effect.retry(
        Schedule.exponential(Duration.millis(100)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(5))))
      ),
      Effect.annotateLogs("module", "SqlJobQueue"),
      Effect.ignore
    )

    const running = yield* RcRef.make({ acquire: Effect.forkScoped(supervise) })

    const wakeups: Stream.Stream<string> = Stream.unwrapScoped(
      Effect.gen(function*() {
        const subscription = yield* PubSub.subscribe(hub)
        yield* RcRef.get(running)
        return Stream.fromQueue(subscription)
      })
    )
    return { wakeups, listening: Ref.get(connected) }
  })

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

const resolveOptions = (
  options: { readonly channel?: string; readonly listenerCheckInterval?: Duration.DurationInput }
): Either.Either<{ channel: string; listenerCheckInterval: Duration.Duration }, InvalidOptionsError> =>
  Either.gen(function*() {
    const channel = options.channel ?? "bulwark_jobs"
    if (typeof channel !== "string" || !/^[a-z0-9_]{1,63}$/.test(channel)) {
      return yield* Either.left(
        check.invalid({ component: COMPONENT, option: "channel" }, channel, "1 to 63 characters of a-z 0-9 _")
      )
    }
    const listenerCheckInterval = yield* check.duration(
      { component: COMPONENT, option: "listenerCheckInterval" },
      options.listenerCheckInterval ?? Duration.seconds(5),
      { allowZero: false }
    )
    if (Duration.lessThan(listenerCheckInterval, Duration.millis(10))) {
      return yield* Either.left(
        check.invalid(
          { component: COMPONENT, option: "listenerCheckInterval" },
          options.listenerCheckInterval,
          "at least 10 ms"
        )
      )
    }
    return { channel, listenerCheckInterval }
  })

/** @internal */
export const makeStore = (
  options: { readonly channel?: string; readonly listenerCheckInterval?: Duration.DurationInput } = {}
): Effect.Effect<JobStore, InvalidOptionsError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* Either.match(resolveOptions(options), { onLeft: Effect.fail, onRight: Effect.succeed })
    const pg = yield* PgClient.PgClient
    return yield* makeStoreWith(pg, resolved.channel, resolved.listenerCheckInterval)
  })

/** @internal */
export const layer = (options: Options): Layer.Layer<JobQueue.JobQueue, InvalidOptionsError, PgClient.PgClient> =>
  Layer.scoped(
    tag,
    Effect.gen(function*() {
      const config = yield* Either.match(JobQueue.makeConfig(options), { onLeft: Effect.fail, onRight: Effect.succeed })
      const store = yield* makeStore(options)
      return JobQueue.make(config, store)
    })
  )
