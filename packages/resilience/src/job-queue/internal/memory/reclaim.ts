/**
 * In-memory reclaims: running jobs whose lease lapsed go back to ready, or to the dead-letter queue with no attempt
 * left, each with a `LeaseExpired` attempt error.
 */
import type * as Effect from "effect/Effect"
import type { Reclaimed } from "../../JobStore.js"
import { AttemptError } from "../errors.js"
import { bury, date, idOf, makeReady, type State, withNow } from "./state.js"

/** @internal */
export const reclaim = (state: State) =>
(
  queues: ReadonlyArray<string>,
  limit: number
): Effect.Effect<ReadonlyArray<Reclaimed>> =>
  withNow(state, (now) => {
    const wanted = new Set(queues)
    const lapsed = [...state.running]
      .filter((job) => wanted.has(job.queue) && job.leaseExpiresAt !== null && job.leaseExpiresAt < now)
      .sort((a, b) => a.id - b.id)
      .slice(0, limit)
    return lapsed.map((job): Reclaimed => {
      const previousOwner = job.leaseOwner ?? ""
      job.errors.push(
        new AttemptError({
          attempt: job.attempt,
          tag: "LeaseExpired",
          message: `the lease of worker ${previousOwner} lapsed before the job finished`,
          cause: null,
          verdict: "transient",
          workerId: previousOwner,
          startedAt: job.startedAt === null ? null : date(job.startedAt),
          failedAt: date(now)
        })
      )
      if (job.attempt >= job.maxAttempts) {
        bury(state, job, "exhausted", now)
        return { id: idOf(job.id), queue: job.queue, outcome: "Dead", previousOwner }
      }
      job.runAt = now
      makeReady(state, job, now)
      return { id: idOf(job.id), queue: job.queue, outcome: "Retrying", previousOwner }
    })
  })
