/**
 * Reclaims on PostgreSQL: `reclaimJobs` puts running jobs whose lease lapsed back to ready, or into the dead-letter
 * table with no attempt left, each with a `LeaseExpired` attempt error, and wakes the queues it refilled.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { Reclaimed } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { bury, run, type Store } from "./shared.js"

const ReclaimedRow = Schema.Struct({
  id: Schema.String,
  queue: Schema.String,
  state: Schema.String,
  previous_owner: Schema.NullOr(Schema.String)
})

const ReclaimedRows = Schema.Array(ReclaimedRow)

/** @internal */
export const reclaim = ({ channel, sql }: Store) =>
(
  queues: ReadonlyArray<string>,
  limit: number
): Effect.Effect<ReadonlyArray<Reclaimed>, JobStoreError> => {
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
        ${bury(sql, "reclaimed", "exhausted")}
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
