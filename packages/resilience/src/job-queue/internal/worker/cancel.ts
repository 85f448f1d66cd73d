/**
 * Cancelled jobs on a worker (`JobQueue.cancel`): the backend cancels a job in one statement and voids its lease;
 * the worker holding it learns it here and stops it. A running handler is interrupted (its finalizers run; nothing
 * more is written, the backend already holds the outcome), a job waiting in the local queue is dropped.
 *
 * The pool asks the backend which of its jobs were cancelled every second ({@link cancelLoop}) while it holds any,
 * so a cancellation reaches a running handler within about a second whatever the heartbeat interval; a queue whose
 * heartbeat is at least that frequent needs no extra check: a lease the heartbeat finds gone is checked the same way
 * (heartbeat.ts).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { type Held, log, type Pool, type Worker } from "./pool.js"

/** How often a pool checks for cancelled jobs when its heartbeat is slower. */
const CHECK_INTERVAL = Duration.seconds(1)

/** Stops a job the backend reports cancelled. Counted once it stopped (failure.ts), or now for a waiting one. */
export const cancelEntry = (worker: Worker, pool: Pool, entry: Held): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (entry.cancelled === true || !pool.held.has(entry)) return
    const id = entry.job.lease.id
    switch (entry.phase) {
      case "waiting": {
        entry.cancelled = true
        entry.lost = true
        pool.held.delete(entry)
        const at = pool.waiting.indexOf(entry)
        if (at >= 0) pool.waiting.splice(at, 1)
        worker.counters.cancelled += 1
        yield* log(worker, Effect.logInfo(`Job ${id} (${entry.job.kind}) was cancelled before it started; dropping it`))
        return
      }
      case "running": {
        entry.cancelled = true
        entry.lost = true
        if (entry.fiber !== undefined) yield* Fiber.interruptFork(entry.fiber)
        yield* log(worker, Effect.logInfo(`Job ${id} (${entry.job.kind}) was cancelled; interrupting it`))
        return
      }
      // Its outcome is being written: the backend refuses it (the job is no longer running).
      case "reporting":
      case "completing":
        return
    }
  })

/** Asks the backend which of these jobs were cancelled and stops them. @internal */
export const stopCancelled = (worker: Worker, pool: Pool, entries: ReadonlyArray<Held>): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (entries.length === 0) return
    const cancelled = new Set(yield* worker.store.cancelled(entries.map((entry) => entry.job.lease)))
    for (const entry of entries) {
      if (cancelled.has(entry.job.lease.id)) yield* cancelEntry(worker, pool, entry)
    }
  }).pipe(Effect.catchAllCause((cause) => log(worker, Effect.logWarning("Could not check for cancelled jobs", cause))))

/** @internal */
export const cancelLoop = (worker: Worker, pool: Pool): Effect.Effect<void> => {
  if (!Duration.greaterThan(pool.queue.heartbeatInterval, CHECK_INTERVAL)) return Effect.void
  const check = Effect.suspend(() =>
    stopCancelled(
      worker,
      pool,
      [...pool.held].filter((entry) =>
        !entry.lost && !entry.stopped && (entry.phase === "running" || entry.phase === "waiting")
      )
    )
  )
  return Effect.repeat(check, Schedule.spaced(CHECK_INTERVAL)).pipe(Effect.asVoid)
}
