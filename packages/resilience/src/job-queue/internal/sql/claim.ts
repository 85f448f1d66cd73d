/**
 * Claims on PostgreSQL: `claimJobs` leases the due jobs of a queue, highest priority, then earliest due, then oldest
 * first. The claim's `FOR UPDATE SKIP LOCKED` lets workers claim at once without blocking one another; a paused
 * queue yields nothing (`bulwark_job_queue_open`, which orders claims and pauses).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { ClaimedJob, JobStore } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { byNumericId, millisParam, run, type Store, Timestamp } from "./shared.js"

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

const ClaimedRows = Schema.Array(ClaimedRow)

/** Claim order: highest priority, then earliest due, then oldest (ids are decimal text). */
const claimOrder = (
  a: { readonly priority: number; readonly run_at: Date; readonly id: string },
  b: { readonly priority: number; readonly run_at: Date; readonly id: string }
): number => b.priority - a.priority || a.run_at.getTime() - b.run_at.getTime() || byNumericId(a.id, b.id)

/** @internal */
export const claim = ({ sql }: Store) =>
(
  request: Parameters<JobStore["claim"]>[0]
): Effect.Effect<ReadonlyArray<ClaimedJob>, JobStoreError> =>
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
          -- Not while the queue is paused (0008_job_queue_pause.sql): evaluated once, before the scan.
          AND (SELECT bulwark_job_queue_open(${request.queue}))
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
