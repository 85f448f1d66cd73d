/**
 * Heartbeats on PostgreSQL: `heartbeatJobs` extends the leases still held (fenced by owner, attempt and epoch).
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { JobId } from "../../JobQueue.js"
import type { Lease } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { IdRows, millisParam, run, stillHeld, storable, type Store } from "./shared.js"

/** @internal */
export const heartbeat = ({ sql }: Store) =>
(
  leases: ReadonlyArray<Lease>,
  lease: Duration.Duration
): Effect.Effect<ReadonlyArray<JobId>, JobStoreError> => {
  const held = storable(leases)
  if (held.length === 0) return Effect.succeed([])
  return run(
    "heartbeatJobs",
    IdRows,
    sql`
      UPDATE bulwark_jobs j
      SET lease_expires_at = now() + ${millisParam(lease)}::double precision * interval '1 millisecond'
      ${stillHeld(sql, held)}
      RETURNING j.id::text AS id`
  ).pipe(Effect.map((rows) => rows.map((row) => row.id)))
}
