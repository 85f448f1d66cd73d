/**
 * In-memory enqueue: stores new jobs, a dedup key already held in the queue answering with its job.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { JobId } from "../../JobQueue.js"
import type { NewJob } from "../../JobStore.js"
import { create, dedupSlot, idOf, type State, withNow } from "./state.js"

/** @internal */
export const insert = (state: State) =>
(
  newJobs: ReadonlyArray<NewJob>
): Effect.Effect<ReadonlyArray<{ readonly id: JobId; readonly deduplicated: boolean }>> =>
  withNow(state, (now) =>
    newJobs.map((input) => {
      if (Option.isSome(input.dedupKey)) {
        const existing = state.dedup.get(dedupSlot(input.queue, input.dedupKey.value))
        if (existing !== undefined) return { id: idOf(existing.id), deduplicated: true }
      }
      const runAt = Option.match(input.runAt, {
        onNone: () => now + Duration.toMillis(input.delay),
        onSome: (at) => at.getTime()
      })
      const job = create(state, {
        queue: input.queue,
        kind: input.kind,
        payload: input.payload,
        priority: input.priority,
        maxAttempts: input.maxAttempts,
        dedupKey: Option.getOrNull(input.dedupKey),
        enqueuedAt: now,
        replayOf: null,
        runAt
      }, now)
      if (job.dedupKey !== null) state.dedup.set(dedupSlot(job.queue, job.dedupKey), job)
      return { id: idOf(job.id), deduplicated: false }
    }))
