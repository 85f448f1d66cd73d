/**
 * A pool's reclaim sweep: every reclaim interval, jobs of its queue whose lease lapsed (a crashed worker's) go back
 * to retrying, or to the dead-letter queue with no attempt left.
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { log, type Pool, ring, type Worker } from "./pool.js"

/** @internal */
export const reclaimLoop = (worker: Worker, pool: Pool): Effect.Effect<void> => {
  const sweep = Effect.gen(function*() {
    const reclaimed = yield* worker.store.reclaim([pool.queue.name], 100)
    for (const job of reclaimed) {
      worker.counters.reclaimed += 1
      if (job.outcome === "Dead") {
        worker.counters.deadLettered += 1
        pool.deadLettered()
      } else {
        worker.counters.retried += 1
        pool.retried()
      }
    }
    if (reclaimed.length > 0) {
      yield* log(worker, Effect.logWarning(`Reclaimed ${reclaimed.length} job(s) whose lease lapsed`, reclaimed))
      yield* ring(pool)
    }
  }).pipe(Effect.catchAllCause((cause) => log(worker, Effect.logWarning("Could not reclaim lapsed leases", cause))))
  return Effect.repeat(sweep, Schedule.spaced(pool.queue.reclaimInterval)).pipe(Effect.asVoid)
}
