/**
 * A pool's claim loop: how many jobs to claim now (free slots, plus the jobs its slots finish during one claim
 * round trip when they are fast), the claim itself, and the wait for the doorbell (a wake-up or a freed slot) or
 * the poll interval.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import type { JobStoreError } from "../errors.js"
import { average, type Held, log, MAX_COMPLETIONS, type Pool, type Worker } from "./pool.js"
import { fill } from "./slots.js"

/** Most successes awaiting their completion before a pool stops claiming (the completion writer is behind). */
const MAX_PENDING_COMPLETIONS = 4 * MAX_COMPLETIONS

/**
 * How many jobs a pool claims now. It wants, when the claim returns, its slots full plus the jobs its slots will
 * finish during the next round trip waiting (so no slot idles while that claim runs). Its slots finish about
 * `concurrency · roundTrip / runTime` jobs per round trip, so it claims:
 *
 *   concurrency + ahead − (held − finishing)
 *
 * with `held` the jobs it runs or holds waiting, `finishing` those of them that will be done when the claim
 * returns (at most that per-round-trip figure) and `ahead` that figure capped by the queue's `prefetch` (0 turns
 * both off). `roundTrip` is the moving average of claims; `runTime` the moving average of handlers, or the age of
 * the oldest one still running if that is longer (a handler that hangs stops the claiming ahead at once). Slow
 * jobs, or a backend that answers at once (memory), make both 0: one claim per free slot, nothing hoarded. Fast jobs
 * make it claim full batches (`batchSize`) back to back.
 */
const wanted = (pool: Pool, now: number): number => {
  if (pool.completing >= MAX_PENDING_COMPLETIONS) return 0
  const held = pool.busy + pool.waiting.length
  let perRoundTrip = 0
  if (pool.meanRunMillis !== undefined && pool.meanClaimMillis !== undefined && pool.meanClaimMillis > 0) {
    let runTime = pool.meanRunMillis
    for (const entry of pool.running) runTime = Math.max(runTime, now - entry.startedAt)
    perRoundTrip = runTime === 0 ? Infinity : Math.floor((pool.concurrency * pool.meanClaimMillis) / runTime)
  }
  const ahead = Math.min(pool.queue.prefetch, perRoundTrip)
  const finishing = pool.queue.prefetch === 0 ? 0 : Math.min(held, perRoundTrip)
  return Math.min(pool.queue.batchSize, pool.concurrency + ahead - (held - finishing))
}

/** Claims and queues as one uninterruptible step, so a claimed job is always either run or handed back. */
const claimAndStart = (worker: Worker, pool: Pool, limit: number): Effect.Effect<number, JobStoreError> =>
  Effect.gen(function*() {
    const sentAt = yield* Clock.currentTimeMillis
    const claimed = yield* worker.store.claim({
      queue: pool.queue.name,
      limit,
      owner: worker.id,
      lease: pool.queue.visibilityTimeout
    })
    const now = yield* Clock.currentTimeMillis
    pool.meanClaimMillis = average(pool.meanClaimMillis, now - sentAt)
    const deadline = sentAt + Duration.toMillis(pool.queue.visibilityTimeout)
    for (const job of claimed) {
      worker.counters.claimed += 1
      const entry: Held = {
        job,
        phase: "waiting",
        lost: false,
        stopped: false,
        fiber: undefined,
        deadline,
        claimedLocally: now,
        startedAt: now
      }
      pool.held.add(entry)
      pool.waiting.push(entry)
    }
    yield* fill(worker, pool)
    return claimed.length
  }).pipe(Effect.uninterruptible)

/** @internal */
export const claimLoop = (worker: Worker, pool: Pool): Effect.Effect<void> =>
  Effect.gen(function*() {
    const waitForRing = Queue.take(pool.doorbell).pipe(Effect.timeout(pool.queue.pollInterval), Effect.ignore)
    while (true) {
      const limit = wanted(pool, yield* Clock.currentTimeMillis)
      if (limit <= 0) {
        yield* Queue.take(pool.doorbell)
        continue
      }
      const claimed = yield* claimAndStart(worker, pool, limit).pipe(
        // A failed claim (even a defect) must never end the loop: log it and try again after a poll.
        Effect.catchAllCause((cause) =>
          log(worker, Effect.logWarning(`Could not claim jobs from queue ${pool.queue.name}`, cause)).pipe(Effect.as(0))
        )
      )
      if (claimed < limit) yield* waitForRing
    }
  })
