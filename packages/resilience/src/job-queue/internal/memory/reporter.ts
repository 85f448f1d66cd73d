/**
 * What the in-memory store gives the queue metrics reporter (`JobQueue.reportMetrics`, workers): dead-letter
 * entries counted by queue and status, and a reporter lock that is always held (a store lives in one process, whose
 * reporters already share one reader).
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type * as DeadLetter from "../../DeadLetter.js"
import type { DeadLetterCount, ReporterLock } from "../../JobStore.js"
import { type State, withNow } from "./state.js"

/** @internal */
export const deadLetterCounts = (state: State): Effect.Effect<ReadonlyArray<DeadLetterCount>> =>
  withNow(state, () => {
    const counts = new Map<string, { queue: string; status: DeadLetter.EntryStatus; count: number }>()
    for (const entry of state.deadLetters.values()) {
      const key = `${entry.job.queue}\u0000${entry.status}`
      const found = counts.get(key)
      if (found === undefined) counts.set(key, { queue: entry.job.queue, status: entry.status, count: 1 })
      else found.count += 1
    }
    return [...counts.values()]
  })

/** @internal */
export const reporterLock: Effect.Effect<ReporterLock, never, Scope.Scope> = Effect.succeed({
  held: () => Effect.succeed(true)
})
