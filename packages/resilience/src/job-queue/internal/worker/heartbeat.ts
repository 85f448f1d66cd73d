/**
 * A pool's heartbeat: renews every lease the pool holds (running, waiting or completing) each heartbeat interval,
 * and drops a lease another worker took or that surely lapsed (a waiting job never starts, a running handler is
 * interrupted). A lease found gone because its job was cancelled is stopped as a cancellation (cancel.ts).
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Schedule from "effect/Schedule"
import { stopCancelled } from "./cancel.js"
import { type Held, log, type Pool, type Worker } from "./pool.js"

/** Drops a lease: a waiting job never starts, a running handler is interrupted, a late outcome is fenced off. */
const lose = (worker: Worker, pool: Pool, entry: Held, why: string): Effect.Effect<void> =>
  Effect.gen(function*() {
    if (entry.lost || !pool.held.has(entry)) return
    switch (entry.phase) {
      case "waiting": {
        entry.lost = true
        pool.held.delete(entry)
        const at = pool.waiting.indexOf(entry)
        if (at >= 0) pool.waiting.splice(at, 1)
        worker.counters.leasesLost += 1
        yield* log(
          worker,
          Effect.logWarning(`Lost the lease of waiting job ${entry.job.lease.id} (${why}); dropping it`)
        )
        return
      }
      case "running": {
        entry.lost = true
        if (entry.fiber !== undefined) yield* Fiber.interruptFork(entry.fiber)
        yield* log(worker, Effect.logWarning(`Lost the lease of job ${entry.job.lease.id} (${why}); interrupting it`))
        return
      }
      // An outcome being written is fenced by the backend: a lost lease makes it a rejected late outcome.
      case "reporting":
      case "completing":
        return
    }
  })

/** @internal */
export const heartbeatLoop = (worker: Worker, pool: Pool): Effect.Effect<void> => {
  const leaseMillis = Duration.toMillis(pool.queue.visibilityTimeout)
  // Renewals that fail (the database is unreachable from here) must not let a handler run on past its lease
  // while another worker may already have reclaimed the job: once the lease surely lapsed, the handler stops.
  const expire = Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    for (const entry of [...pool.held]) {
      if (entry.deadline <= now) yield* lose(worker, pool, entry, "it could not be renewed in time")
    }
  })
  const beat = Effect.gen(function*() {
    yield* expire
    const entries = [...pool.held].filter((entry) => !entry.lost && !entry.stopped)
    if (entries.length === 0) return
    const sentAt = yield* Clock.currentTimeMillis
    const held = new Set(
      yield* worker.store.heartbeat(entries.map((entry) => entry.job.lease), pool.queue.visibilityTimeout)
    )
    const gone: Array<Held> = []
    for (const entry of entries) {
      if (held.has(entry.job.lease.id)) entry.deadline = sentAt + leaseMillis
      else gone.push(entry)
    }
    // A lease is gone because the job was cancelled (stop it as such), or because another worker holds it now.
    yield* stopCancelled(worker, pool, gone)
    for (const entry of gone) {
      if (entry.cancelled !== true) yield* lose(worker, pool, entry, "another worker holds it now")
    }
  }).pipe(Effect.catchAllCause((cause) => log(worker, Effect.logWarning("Could not renew job leases", cause))))
  return Effect.repeat(beat, Schedule.spaced(pool.queue.heartbeatInterval)).pipe(Effect.asVoid)
}
