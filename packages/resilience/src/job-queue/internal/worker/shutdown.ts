/**
 * Graceful shutdown: claiming stops, jobs waiting in the local queues are handed back at once, running jobs get
 * the grace period (then are interrupted and their leases handed back), and it ends once the completions of the
 * finished ones are written.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import { type Held, log, persist, type Pool, type Worker } from "./pool.js"

/** Jobs whose handler runs now, or whose failure is being written. @internal */
export const handlersRunning = (worker: Worker): Array<Held> =>
  [...worker.pools.values()].flatMap((pool) =>
    [...pool.held].filter((entry) => entry.phase === "running" || entry.phase === "reporting")
  )

/** Shutdown hands the jobs of the local queues back at once (not burning their attempt), for others to run. */
const releaseWaiting = (worker: Worker, pool: Pool): Effect.Effect<void> =>
  Effect.gen(function*() {
    const entries = pool.waiting.splice(0).filter((entry) => !entry.lost)
    if (entries.length === 0) return
    const released = yield* persist(
      worker,
      pool,
      "hand back waiting jobs",
      worker.store.release(entries.map((e) => e.job.lease))
    )
    for (const entry of entries) pool.held.delete(entry)
    if (Option.isSome(released)) worker.counters.released += released.value.length
  })

/**
 * The shutdown itself. `claimLoops` are stopped first; `services` (heartbeats, completion writers, reclaims,
 * wake-ups) last, once every lease is settled.
 *
 * @internal
 */
export const drain = (
  worker: Worker,
  fibers: {
    readonly claimLoops: FiberSet.FiberSet<void, never>
    readonly services: FiberSet.FiberSet<void, never>
  },
  gracePeriod: Duration.Duration
): Effect.Effect<void> =>
  Effect.gen(function*() {
    worker.draining = true
    yield* FiberSet.clear(fibers.claimLoops)
    yield* Effect.forEach(worker.pools.values(), (pool) => releaseWaiting(worker, pool), {
      discard: true,
      concurrency: "unbounded"
    })
    // Shutdown usually runs as a finalizer (uninterruptible): the wait itself must stay interruptible for the
    // timeout to end it.
    const finished = yield* FiberSet.awaitEmpty(worker.runners).pipe(
      Effect.interruptible,
      Effect.timeoutOption(gracePeriod)
    )
    if (Option.isNone(finished)) {
      const left = handlersRunning(worker).filter((entry) => entry.phase === "running")
      yield* log(worker, Effect.logWarning(`Grace period over: handing back ${left.length} running job(s)`))
      for (const entry of left) {
        entry.stopped = true
        if (entry.fiber !== undefined) yield* Fiber.interruptFork(entry.fiber)
      }
      yield* FiberSet.awaitEmpty(worker.runners)
    }
    // Successes whose completion is still being written (it gives up once the lease would have lapsed anyway).
    yield* Effect.forEach(worker.pools.values(), (pool) => pool.allCompleted.await, { discard: true })
    yield* FiberSet.clear(fibers.services)
  }).pipe((effect) => log(worker, effect))
