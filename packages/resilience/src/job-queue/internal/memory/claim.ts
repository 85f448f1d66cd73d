/**
 * In-memory claims: leases the due jobs of a queue, highest priority, then earliest due, then oldest first; none
 * while the queue is paused.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ClaimedJob, JobStore } from "../../JobStore.js"
import { date, idOf, type MemoryJob, readySet, type State, withNow } from "./state.js"

/** Claim order: highest priority, then earliest due, then oldest. */
const claimOrder = (a: MemoryJob, b: MemoryJob): number => b.priority - a.priority || a.runAt - b.runAt || a.id - b.id

/** @internal */
export const claim = (state: State) =>
(
  request: Parameters<JobStore["claim"]>[0]
): Effect.Effect<ReadonlyArray<ClaimedJob>> =>
  withNow(state, (now) => {
    // A paused queue yields nothing; pausing is one synchronous step too, so no claim straddles it.
    if (state.paused.has(request.queue)) return []
    const candidates = [...readySet(state, request.queue)].filter((job) => job.runAt <= now).sort(claimOrder)
    const leaseMillis = Duration.toMillis(request.lease)
    return candidates.slice(0, request.limit).map((job): ClaimedJob => {
      readySet(state, job.queue).delete(job)
      state.running.add(job)
      job.state = "running"
      job.attempt += 1
      job.epoch += 1
      job.leaseOwner = request.owner
      job.leaseExpiresAt = now + leaseMillis
      job.startedAt = now
      return {
        lease: { id: idOf(job.id), owner: request.owner, attempt: job.attempt, epoch: job.epoch },
        queue: job.queue,
        kind: job.kind,
        payload: job.payload,
        priority: job.priority,
        maxAttempts: job.maxAttempts,
        dedupKey: Option.fromNullable(job.dedupKey),
        enqueuedAt: date(job.enqueuedAt),
        runAt: date(job.runAt),
        claimedAt: date(now),
        leaseExpiresAt: date(now + leaseMillis)
      }
    })
  })
