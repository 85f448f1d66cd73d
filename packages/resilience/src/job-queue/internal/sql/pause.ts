/**
 * Pause and resume on PostgreSQL. The flag is a row of `bulwark_job_queues`; the claim (claim.ts) and the pause are
 * ordered by a per-queue advisory lock in the SQL functions of `sql/0008_job_queue_pause.sql`, so once `pauseQueue`
 * returns no claim takes a job of the queue. Resuming wakes the queue's workers in the same statement.
 */
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { JobStoreError } from "../errors.js"
import { run, type Store } from "./shared.js"

const ChangedRows = Schema.Array(Schema.Struct({ changed: Schema.Boolean }))
const QueueRows = Schema.Array(Schema.Struct({ queue: Schema.String }))

/** @internal */
export const pause = ({ sql }: Store) => (queue: string): Effect.Effect<boolean, JobStoreError> =>
  run("pauseQueue", ChangedRows, sql`SELECT bulwark_job_queue_pause(${queue}) AS changed`).pipe(
    Effect.map((rows) => rows[0]?.changed === true)
  )

/** @internal */
export const resume = ({ channel, sql }: Store) => (queue: string): Effect.Effect<boolean, JobStoreError> =>
  run(
    "resumeQueue",
    QueueRows,
    sql`
    WITH resumed AS (
      UPDATE bulwark_job_queues SET paused = false, paused_at = NULL WHERE queue = ${queue} AND paused
      RETURNING queue
    ), woken AS (
      SELECT pg_notify(${channel}, queue) FROM resumed
    )
    SELECT queue FROM resumed WHERE (SELECT count(*) FROM woken) >= 0`
  ).pipe(Effect.map((rows) => rows.length > 0))
