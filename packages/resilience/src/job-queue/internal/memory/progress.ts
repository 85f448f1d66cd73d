/**
 * In-memory progress reports: the latest report of a running job, fenced by its lease.
 */
import type * as Effect from "effect/Effect"
import type { Lease, ProgressReport } from "../../JobStore.js"
import { JobProgress } from "../progress.js"
import { date, holds, type State, withNow } from "./state.js"

/** @internal */
export const progress = (state: State) => (lease: Lease, report: ProgressReport): Effect.Effect<boolean> =>
  withNow(state, (now) => {
    const job = holds(state, lease)
    if (job === undefined) return false
    job.progress = new JobProgress({
      value: report.value,
      message: report.message,
      attempt: job.attempt,
      updatedAt: date(now)
    })
    return true
  })
