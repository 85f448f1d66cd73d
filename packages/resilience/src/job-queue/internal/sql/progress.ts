/**
 * Progress reports on PostgreSQL: `reportProgress` stores a running job's latest progress, fenced by its lease.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Lease, ProgressReport } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { IdRows, run, stillHeld, storable, type Store } from "./shared.js"

/** @internal */
export const progress =
  ({ sql }: Store) => (lease: Lease, report: ProgressReport): Effect.Effect<boolean, JobStoreError> => {
    const held = storable([lease])
    if (held.length === 0) return Effect.succeed(false)
    return run(
      "reportProgress",
      IdRows,
      sql`
      UPDATE bulwark_jobs j
      SET progress = jsonb_build_object('value', ${report.value}::double precision,
        'message', ${Option.getOrNull(report.message)}::text, 'attempt', j.attempt, 'updatedAt', now())
      ${stillHeld(sql, held)}
      RETURNING j.id::text AS id`
    ).pipe(Effect.map((rows) => rows.length > 0))
  }
