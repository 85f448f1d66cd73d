/**
 * What the PostgreSQL statements share: the store's context (its client and wake-up channel), running a statement
 * with its rows decoded, and the parameters and columns several statements use.
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Statement from "@effect/sql/Statement"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Completion, Lease } from "../../JobStore.js"
import { AttemptError, JobStoreError } from "../errors.js"

/**
 * What every statement needs: the client (without name transforms: row names are ours, and so are the payload
 * keys) and the LISTEN/NOTIFY channel that statements waking workers notify.
 *
 * @internal
 */
export interface Store {
  readonly sql: SqlClient.SqlClient
  readonly channel: string
}

/** A job id as PostgreSQL can store it (a `bigint`); anything else names no job. @internal */
export const BIGINT = /^\d{1,18}$/

/**
 * Runs one statement and decodes its rows. A statement that fails is a `JobStoreError` named by `operation`;
 * rows of an unexpected shape are a defect.
 *
 * @internal
 */
export const run = <A, I>(
  operation: string,
  rows: Schema.Schema<ReadonlyArray<A>, ReadonlyArray<I>>,
  statement: Statement.Statement<object>
): Effect.Effect<ReadonlyArray<A>, JobStoreError> =>
  statement.pipe(
    Effect.mapError((cause: SqlError) => new JobStoreError({ operation, cause })),
    Effect.flatMap((result) =>
      Schema.decodeUnknown(rows)(result).pipe(
        Effect.orDieWith((error) => new Error(`Unexpected rows from ${operation}: ${error.message}`))
      )
    )
  )

/** A duration as whole milliseconds for `… * interval '1 millisecond'`. @internal */
export const millisParam = (duration: Duration.Duration): number => Math.max(0, Math.round(Duration.toMillis(duration)))

/** Orders decimal ids (no sign, no leading zeros) numerically. @internal */
export const byNumericId = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

/** Leases that cannot name a stored job (a non-numeric id) are dropped before they reach SQL. @internal */
export const storable = <L extends Lease>(leases: ReadonlyArray<L>): ReadonlyArray<L> =>
  leases.filter((l) => BIGINT.test(l.id))

// A completion's result is wrapped (`{"v": …}`), so a JSON `null` result stays apart from no result (`l.result -> 'v'`).
const leasesJson = (leases: ReadonlyArray<Completion>): string =>
  JSON.stringify(leases.map((lease) => ({
    id: lease.id,
    owner: lease.owner,
    attempt: lease.attempt,
    epoch: String(lease.epoch),
    result: Option.match(lease.result ?? Option.none(), { onNone: () => null, onSome: (v) => ({ v }) })
  })))

/**
 * The fence of the writes that take many leases (heartbeats, completions, hand-backs, progress), as the `FROM …
 * WHERE …` of an `UPDATE bulwark_jobs j`: the rows these leases still hold, running under the same owner, attempt
 * and claim epoch. The ids come as an array too, so the planner reaches the rows through the primary key. A
 * completion's result is `l.result -> 'v'`.
 *
 * @internal
 */
export const stillHeld = (sql: SqlClient.SqlClient, leases: ReadonlyArray<Completion>): Statement.Fragment =>
  sql`FROM jsonb_to_recordset(${leasesJson(leases)}::jsonb)
      AS l(id bigint, owner text, attempt int, epoch bigint, result jsonb)
    WHERE j.id = ANY (${leases.map((lease) => lease.id)}::bigint[]) AND j.id = l.id AND j.state = 'running'
      AND j.lease_owner = l.owner AND j.attempt = l.attempt AND j.lease_epoch = l.epoch`

/**
 * A dead-letter envelope for each row of `source` (a CTE over updated `bulwark_jobs` rows) that is now dead: the
 * body of the `buried` CTE of `failJob` and `reclaimJobs`.
 *
 * @internal
 */
export const bury = (
  sql: SqlClient.SqlClient,
  source: "failed" | "reclaimed",
  reason: "terminal" | "exhausted"
): Statement.Fragment =>
  sql`INSERT INTO bulwark_dead_letters (job_id, queue, kind, payload, priority, dedup_key, attempts, max_attempts,
      errors, reason, enqueued_at, dead_lettered_at, replay_of)
    SELECT id, queue, kind, payload, priority, dedup_key, attempt, max_attempts, errors, ${reason}::text,
      enqueued_at, date_trunc('milliseconds', now()), replay_of
    FROM ${sql.literal(source)} WHERE state = 'dead'
    RETURNING job_id`

/** @internal */
export const Timestamp = Schema.DateFromSelf

/** @internal */
export const NullableTimestamp = Schema.NullOr(Schema.DateFromSelf)

/** A job's attempt history (`errors jsonb`), read through the public Schema class. @internal */
export const AttemptErrors = Schema.Array(AttemptError)

// Row decoders are built once: a Schema parser is memoised per schema, so a fresh Schema.Array per call would be
// compiled again each time.

/** `RETURNING id::text AS id`. @internal */
export const IdRows = Schema.Array(Schema.Struct({ id: Schema.String }))
