/**
 * Cancellation on PostgreSQL: `cancelJob` stops a ready or running job in one statement (its lease void, its dedup
 * key released), and `cancelledJobs` tells leases' holders which of their jobs were cancelled.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CancelResult, JobId } from "../../JobQueue.js"
import type { Lease } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { cancellableStatusOf } from "../status.js"
import { BIGINT, IdRows, run, storable, type Store, Timestamp } from "./shared.js"

const TargetRow = Schema.Struct({
  queue: Schema.String,
  state: Schema.Literal("ready", "running", "succeeded", "dead", "cancelled"),
  attempt: Schema.Number,
  run_at: Timestamp,
  now: Timestamp,
  cancelled: Schema.Boolean
})

const TargetRows = Schema.Array(TargetRow)

/**
 * The row is locked first (`FOR UPDATE` waits for a claim, completion or failure in flight and reads the version it
 * committed), so the state it reports is the one the cancel decided on. A cancelled job keeps its attempt and claim
 * epoch (`cancelledJobs` matches the lease it voided), its history and its progress; its dedup key is cleared, so
 * the key enqueues a new job.
 *
 * @internal
 */
export const cancel = ({ sql }: Store) => (id: JobId): Effect.Effect<CancelResult, JobStoreError> => {
  if (!BIGINT.test(id)) return Effect.succeed({ _tag: "NotFound", id })
  return run(
    "cancelJob",
    TargetRows,
    sql`
      WITH target AS (
        SELECT id, queue, state, attempt, run_at FROM bulwark_jobs WHERE id = ${id}::bigint FOR UPDATE
      ), cancelled AS (
        UPDATE bulwark_jobs j
        SET state = 'cancelled', finished_at = now(), lease_owner = NULL, lease_expires_at = NULL, dedup_key = NULL
        FROM target t
        WHERE j.id = t.id AND t.state IN ('ready', 'running') AND j.state IN ('ready', 'running')
        RETURNING j.id
      )
      SELECT t.queue, t.state, t.attempt, t.run_at, now() AS now, EXISTS (SELECT 1 FROM cancelled) AS cancelled
      FROM target t`
  ).pipe(Effect.flatMap((rows): Effect.Effect<CancelResult> => {
    const row = rows[0]
    if (row === undefined) return Effect.succeed({ _tag: "NotFound", id })
    if (row.state !== "ready" && row.state !== "running") {
      return Effect.succeed({ _tag: "AlreadyFinished", id, queue: row.queue, status: row.state })
    }
    // Locked while ready or running: this statement cancelled it.
    return row.cancelled
      ? Effect.succeed({
        _tag: "Cancelled",
        id,
        queue: row.queue,
        previous: cancellableStatusOf(row.state, row.attempt, row.run_at.getTime(), row.now.getTime())
      })
      : Effect.dieMessage(`cancelJob found job ${id} ${row.state} but did not cancel it`)
  }))
}

/** @internal */
export const cancelled =
  ({ sql }: Store) => (leases: ReadonlyArray<Lease>): Effect.Effect<ReadonlyArray<JobId>, JobStoreError> => {
    const held = storable(leases)
    if (held.length === 0) return Effect.succeed([])
    const voided = JSON.stringify(
      held.map((lease) => ({ id: lease.id, attempt: lease.attempt, epoch: String(lease.epoch) }))
    )
    return run(
      "cancelledJobs",
      IdRows,
      sql`
        SELECT j.id::text AS id
        FROM bulwark_jobs j, jsonb_to_recordset(${voided}::jsonb) AS l(id bigint, attempt int, epoch bigint)
        WHERE j.id = ANY (${held.map((lease) => lease.id)}::bigint[]) AND j.id = l.id AND j.state = 'cancelled'
          AND j.attempt = l.attempt AND j.lease_epoch = l.epoch`
    ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
  }
