/**
 * What PostgreSQL gives the queue metrics reporter (`JobQueue.reportMetrics`, workers): dead-letter entries counted
 * by queue and status, and the reporter lock, a lease in `bulwark_job_queue_reporter` (sql/0008_job_queue_pause.sql)
 * that elects one process per database to run the aggregate reads.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { hostname } from "node:os"
import type { DeadLetterCount, ReporterLock } from "../../JobStore.js"
import type { JobStoreError } from "../errors.js"
import { millisParam, run, type Store } from "./shared.js"

const CountRows = Schema.Array(Schema.Struct({
  queue: Schema.String,
  status: Schema.Literal("pending", "replayed", "discarded"),
  count: Schema.Number
}))

/** @internal */
export const deadLetterCounts = ({ sql }: Store): Effect.Effect<ReadonlyArray<DeadLetterCount>, JobStoreError> =>
  run(
    "deadLetterCounts",
    CountRows,
    sql`SELECT queue, status, count(*)::int AS count FROM bulwark_dead_letters GROUP BY queue, status ORDER BY 1, 2`
  )

const OwnerRows = Schema.Array(Schema.Struct({ owner: Schema.String }))

/**
 * The lease is taken when free or run out, and renewed by its owner, in one statement: an UPDATE that matches no
 * row writes nothing and takes no lock, so the processes that find the lease held cost one cheap read each. The row
 * is inserted again if it is missing (a `TRUNCATE`). Closing the scope gives the lease up at once, so another
 * process takes over at its next tick rather than when the lease runs out.
 *
 * @internal
 */
export const reporterLock = ({ sql }: Store): Effect.Effect<ReporterLock, never, Scope.Scope> =>
  Effect.gen(function*() {
    const owner = `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 10)}`
    const take = (ttl: Duration.Duration) =>
      run(
        "takeReporterLease",
        OwnerRows,
        sql`
        WITH renewed AS (
          UPDATE bulwark_job_queue_reporter
          SET owner = ${owner}, expires_at = now() + ${millisParam(ttl)}::double precision * interval '1 millisecond'
          WHERE owner = ${owner} OR expires_at < now()
          RETURNING owner
        ), created AS (
          INSERT INTO bulwark_job_queue_reporter (owner, expires_at)
          SELECT ${owner}, now() + ${millisParam(ttl)}::double precision * interval '1 millisecond'
          WHERE NOT EXISTS (SELECT 1 FROM bulwark_job_queue_reporter)
          ON CONFLICT (id) DO NOTHING
          RETURNING owner
        )
        SELECT owner FROM renewed UNION ALL SELECT owner FROM created`
      ).pipe(Effect.map((rows) => rows.length > 0))
    yield* Effect.addFinalizer(() =>
      sql`UPDATE bulwark_job_queue_reporter SET expires_at = '-infinity' WHERE owner = ${owner}`.pipe(
        Effect.timeout(Duration.seconds(5)),
        Effect.catchAllCause((cause) => Effect.logDebug("Could not give up the job-queue metrics lease", cause)),
        Effect.annotateLogs("module", "SqlJobQueue")
      )
    )
    return {
      held: (ttl) =>
        take(ttl).pipe(
          Effect.catchAll((error) =>
            Effect.as(Effect.logWarning("Could not take or renew the job-queue metrics lease", error), false)
          ),
          Effect.annotateLogs("module", "SqlJobQueue")
        )
    }
  })
