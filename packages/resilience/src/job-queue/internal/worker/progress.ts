/**
 * A running handler's progress reports (`JobWorker.progress`): validated, then stored at once, fenced by the job's
 * lease. A report never fails the job: one the backend could not take is logged and dropped.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { progressReport } from "../progress.js"
import { type Held, log, type Worker } from "./pool.js"

/** @internal */
export const reportProgress = (
  worker: Worker,
  entry: Held,
  value: number,
  message: string | undefined
): Effect.Effect<void> =>
  Either.match(progressReport(value, message), {
    onLeft: Effect.die,
    onRight: (report) =>
      Effect.suspend(() => {
        const id = entry.job.lease.id
        if (entry.lost) return Effect.void
        return worker.store.progress(entry.job.lease, report).pipe(
          Effect.flatMap((stored) =>
            stored ? Effect.void : log(worker, Effect.logDebug(`Progress of job ${id} not stored: its lease is gone`))
          ),
          Effect.catchAll((error) => log(worker, Effect.logWarning(`Could not store the progress of job ${id}`, error)))
        )
      })
  })
