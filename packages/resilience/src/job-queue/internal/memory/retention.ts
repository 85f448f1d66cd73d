/**
 * In-memory retention: deletes, oldest first and up to a limit each, succeeded and cancelled jobs and settled (replayed or
 * discarded) dead-letter entries past their cutoff, a settled entry's dead job with it.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { Pruned, PruneRequest } from "../../JobStore.js"
import { forget, type MemoryEntry, type State, withNow } from "./state.js"

const settledAt = (entry: MemoryEntry): number | null =>
  entry.status === "replayed" ? entry.replayedAt : entry.status === "discarded" ? entry.discardedAt : null

/** @internal */
export const prune = (state: State) => (request: PruneRequest): Effect.Effect<Pruned> =>
  withNow(state, (now): Pruned => {
    const succeededBefore = now - Duration.toMillis(request.keepSucceeded)
    const settledBefore = now - Duration.toMillis(request.keepSettledDeadLetters)
    const finished = (kind: "succeeded" | "cancelled") =>
      [...state.jobs.values()]
        .filter((job) => job.state === kind && job.finishedAt !== null && job.finishedAt < succeededBefore)
        .sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0) || a.id - b.id)
        .slice(0, request.limit)
    const succeeded = finished("succeeded")
    const cancelled = finished("cancelled")
    for (const job of [...succeeded, ...cancelled]) forget(state, job)
    const settled = [...state.deadLetters.values()]
      .flatMap((entry) => {
        const at = settledAt(entry)
        return at !== null && at < settledBefore ? [{ entry, at }] : []
      })
      .sort((a, b) => a.at - b.at || a.entry.job.id - b.entry.job.id)
      .slice(0, request.limit)
    for (const { entry } of settled) {
      state.deadLetters.delete(entry.job.id)
      if (entry.job.state === "dead") forget(state, entry.job)
    }
    return { succeeded: succeeded.length, cancelled: cancelled.length, deadLetters: settled.length }
  })
