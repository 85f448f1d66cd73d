/**
 * `JobQueue.cancel`: the backend's atomic cancel, counted in `bulwark_jobs_total{outcome="cancelled"}` by the
 * process that cancels (as replays and discards are), and the accessor that finds the service in context.
 */
import * as Effect from "effect/Effect"
import * as Metric from "../../internal/metric.js"
import * as Metrics from "../../Metrics.js"
import type { CancelResult, JobId, JobQueue } from "../JobQueue.js"
import type { JobStore } from "../JobStore.js"
import type { JobStoreError } from "./errors.js"
import { tag } from "./tag.js"

/** The service's `cancel` over a store. @internal */
export const cancelWith = (store: JobStore) => (id: JobId): Effect.Effect<CancelResult, JobStoreError> =>
  Effect.tap(store.cancel(id), (result) =>
    Effect.sync(() => {
      if (result._tag === "Cancelled") Metric.counter(Metrics.jobs, { queue: result.queue, outcome: "cancelled" })()
    }))

/** @internal */
export const cancel = (id: JobId): Effect.Effect<CancelResult, JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.cancel(id))
