/**
 * Inspection on PostgreSQL: `jobStatus` (one job, with the database's now) and `queueStats` (every queue's counts
 * in one aggregate read, paused queues included even when they hold no job).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { JobId, JobInfo, QueueStats } from "../../JobQueue.js"
import type { JobStoreError } from "../errors.js"
import { JobProgress } from "../progress.js"
import { statusOf } from "../status.js"
import { AttemptErrors, BIGINT, NullableTimestamp, run, type Store, Timestamp } from "./shared.js"

const JobRow = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  kind: Schema.String,
  state: Schema.Literal("ready", "running", "succeeded", "dead", "cancelled"),
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
  progress: Schema.NullOr(JobProgress),
  result: Schema.Unknown,
  has_result: Schema.Boolean,
  now: Timestamp
})

const StatsRow = Schema.Struct({
  queue: Schema.String,
  ready: Schema.Number,
  scheduled: Schema.Number,
  retrying: Schema.Number,
  running: Schema.Number,
  dead_letters: Schema.Number,
  oldest_ready_ms: Schema.NullOr(Schema.Number),
  paused: Schema.Boolean
})

const JobRows = Schema.Array(JobRow)
const StatsRows = Schema.Array(StatsRow)

/** @internal */
export const status = ({ sql }: Store) => (id: JobId): Effect.Effect<Option.Option<JobInfo>, JobStoreError> => {
  if (!BIGINT.test(id)) return Effect.succeed(Option.none())
  return run(
    "jobStatus",
    JobRows,
    sql`
      SELECT id::text AS id, queue, kind, state, priority, attempt, max_attempts, payload, dedup_key, enqueued_at,
        run_at, started_at, finished_at, lease_owner, lease_expires_at, errors, replay_of::text AS replay_of,
        progress, result, result IS NOT NULL AS has_result, now() AS now
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
      replayOf: Option.fromNullable(row.replay_of),
      progress: Option.fromNullable(row.progress),
      result: row.has_result ? Option.some(row.result) : Option.none()
    }))
  ))
}

/** @internal */
export const stats = ({ sql }: Store): Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError> =>
  run(
    "queueStats",
    StatsRows,
    sql`
    SELECT queue, sum(ready)::int AS ready, sum(scheduled)::int AS scheduled, sum(retrying)::int AS retrying,
      sum(running)::int AS running, sum(dead_letters)::int AS dead_letters,
      (extract(epoch FROM now() - min(oldest_ready)) * 1000)::double precision AS oldest_ready_ms,
      bool_or(paused) AS paused
    FROM (
      SELECT queue,
        count(*) FILTER (WHERE state = 'ready' AND run_at <= now()) AS ready,
        count(*) FILTER (WHERE state = 'ready' AND run_at > now() AND attempt = 0) AS scheduled,
        count(*) FILTER (WHERE state = 'ready' AND run_at > now() AND attempt > 0) AS retrying,
        count(*) FILTER (WHERE state = 'running') AS running,
        0 AS dead_letters,
        min(run_at) FILTER (WHERE state = 'ready' AND run_at <= now()) AS oldest_ready,
        false AS paused
      FROM bulwark_jobs WHERE state IN ('ready', 'running') GROUP BY queue
      UNION ALL
      SELECT queue, 0, 0, 0, 0, count(*), NULL, false FROM bulwark_dead_letters WHERE status = 'pending' GROUP BY queue
      UNION ALL
      SELECT queue, 0, 0, 0, 0, 0, NULL, true FROM bulwark_job_queues WHERE paused
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
      oldestReadyAge: Option.map(Option.fromNullable(row.oldest_ready_ms), (ms) => Duration.millis(Math.max(0, ms))),
      paused: row.paused
    }))
  ))
