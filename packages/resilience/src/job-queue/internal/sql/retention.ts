/**
 * Retention on PostgreSQL: `pruneJobs` deletes, oldest first and up to a limit each, succeeded jobs and settled
 * dead-letter entries (with their dead job rows) past their cutoff.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Pruned, PruneRequest } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { millisParam, run, type Store } from "./shared.js"

const PrunedRow = Schema.Struct({
  succeeded: Schema.Number,
  cancelled: Schema.Number,
  dead_letters: Schema.Number,
  dead_jobs: Schema.Number
})

const PrunedRows = Schema.Array(PrunedRow)

// Oldest first, in bounded batches that skip rows another transaction holds (a late completion, a replay or
// discard in progress). A settled entry's dead job row goes with it: it only backs the entry (and holds its
// dedup key). The cutoff scans use the partial indexes of 0003_job_queue_retention.sql; their expressions must
/** @internal */
export const prune = ({ sql }: Store) => (request: PruneRequest): Effect.Effect<Pruned, JobStoreError> =>
  run(
    "pruneJobs",
    PrunedRows,
    sql`
      WITH doomed_jobs AS (
        SELECT id FROM bulwark_jobs
        WHERE state = 'succeeded'
          AND finished_at < now() - ${millisParam(request.keepSucceeded)}::double precision * interval '1 millisecond'
        ORDER BY finished_at
        LIMIT ${request.limit}
        FOR UPDATE SKIP LOCKED
      ), pruned_jobs AS (
        DELETE FROM bulwark_jobs j USING doomed_jobs d
        WHERE j.id = d.id AND j.state = 'succeeded'
        RETURNING j.id
      ), doomed_cancelled AS (
        SELECT id FROM bulwark_jobs
        WHERE state = 'cancelled'
          AND finished_at < now() - ${millisParam(request.keepSucceeded)}::double precision * interval '1 millisecond'
        ORDER BY finished_at
        LIMIT ${request.limit}
        FOR UPDATE SKIP LOCKED
      ), pruned_cancelled AS (
        DELETE FROM bulwark_jobs j USING doomed_cancelled d
        WHERE j.id = d.id AND j.state = 'cancelled'
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
        (SELECT count(*) FROM pruned_cancelled)::int AS cancelled,
        (SELECT count(*) FROM pruned_entries)::int AS dead_letters,
        (SELECT count(*) FROM pruned_dead_jobs)::int AS dead_jobs`
  ).pipe(Effect.map((rows): Pruned => ({
    succeeded: rows[0]?.succeeded ?? 0,
    cancelled: rows[0]?.cancelled ?? 0,
    deadLetters: rows[0]?.dead_letters ?? 0
  })))
