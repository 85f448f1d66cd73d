/**
 * In-memory cancellation: `cancel` stops a ready or running job in one step (its lease void, its dedup key
 * released), and `cancelled` tells a lease's holder that its job was cancelled.
 */
import type * as Effect from "effect/Effect"
import type { CancelResult, JobId } from "../../JobQueue.js"
import type { Lease } from "../../JobStore.js"
import { cancellableStatusOf } from "../status.js"
import { clearLease, numericId, readySet, releaseDedupKey, type State, withNow } from "./state.js"

/** @internal */
export const cancel = (state: State) => (id: JobId): Effect.Effect<CancelResult> =>
  withNow(state, (now): CancelResult => {
    const numeric = numericId(id)
    const job = numeric === undefined ? undefined : state.jobs.get(numeric)
    if (job === undefined) return { _tag: "NotFound", id }
    if (job.state !== "ready" && job.state !== "running") {
      return { _tag: "AlreadyFinished", id, queue: job.queue, status: job.state }
    }
    const previous = cancellableStatusOf(job.state, job.attempt, job.runAt, now)
    readySet(state, job.queue).delete(job)
    // The lease owner and expiry go; attempt and epoch stay, so `cancelled` recognises the lease it voided.
    clearLease(state, job)
    job.state = "cancelled"
    job.finishedAt = now
    releaseDedupKey(job)
    job.dedupKey = null
    return { _tag: "Cancelled", id, queue: job.queue, previous }
  })

/** @internal */
export const cancelled = (state: State) => (leases: ReadonlyArray<Lease>): Effect.Effect<ReadonlyArray<JobId>> =>
  withNow(state, () =>
    leases.flatMap((lease) => {
      const numeric = numericId(lease.id)
      const job = numeric === undefined ? undefined : state.jobs.get(numeric)
      return job !== undefined && job.state === "cancelled" && job.attempt === lease.attempt &&
          job.epoch === lease.epoch
        ? [lease.id]
        : []
    }))
