/**
 * The outcomes of an attempt on PostgreSQL, each fenced by its lease: `completeJobs`, `failJob` (a retry, or the
 * move to the dead-letter table) and `releaseJobs` (hands leases back without counting the attempt).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { JobId } from "../../JobQueue.js"
import type { Completion, FailOutcome, FailRequest, Lease } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { BIGINT, bury, IdRows, millisParam, run, stillHeld, storable, type Store, Timestamp } from "./shared.js"

const FailedRow = Schema.Struct({ state: Schema.String, run_at: Timestamp })

const FailedRows = Schema.Array(FailedRow)

/** @internal */
export const complete =
  ({ sql }: Store) => (completions: ReadonlyArray<Completion>): Effect.Effect<ReadonlyArray<JobId>, JobStoreError> => {
    const held = storable(completions)
    if (held.length === 0) return Effect.succeed([])
    return run(
      "completeJobs",
      IdRows,
      sql`
      UPDATE bulwark_jobs j
      SET state = 'succeeded', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL,
        result = l.result -> 'v'
      ${stillHeld(sql, held)}
      RETURNING j.id::text AS id`
    ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
  }

/** @internal */
export const fail = ({ sql }: Store) => (request: FailRequest): Effect.Effect<FailOutcome, JobStoreError> => {
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
        ${bury(sql, "failed", reason)}
      )
      SELECT f.state, f.run_at FROM failed f WHERE (SELECT count(*) FROM buried) >= 0`
  ).pipe(Effect.map((rows): FailOutcome => {
    const row = rows[0]
    if (row === undefined) return { _tag: "Rejected" }
    return row.state === "dead" ? { _tag: "Dead" } : { _tag: "Retrying", runAt: row.run_at }
  }))
}

/** @internal */
export const release =
  ({ channel, sql }: Store) => (leases: ReadonlyArray<Lease>): Effect.Effect<ReadonlyArray<JobId>, JobStoreError> => {
    const held = storable(leases)
    if (held.length === 0) return Effect.succeed([])
    return run(
      "releaseJobs",
      IdRows,
      sql`
      WITH released AS (
        UPDATE bulwark_jobs j
        SET state = 'ready', attempt = j.attempt - 1, lease_owner = NULL, lease_expires_at = NULL
        ${stillHeld(sql, held)}
        RETURNING j.id, j.queue
      ), woken AS (
        SELECT pg_notify(${channel}, q.queue) FROM (SELECT DISTINCT queue FROM released) q
      )
      SELECT id::text AS id FROM released WHERE (SELECT count(*) FROM woken) >= 0`
    ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
  }
