/**
 * In-memory pause and resume: a paused queue is skipped by claims (claim.ts) and listed by stats (stats.ts).
 * Each is one synchronous step, like a claim, so a claim is wholly before or wholly after a pause.
 */
import type * as Effect from "effect/Effect"
import { type State, wake, withNow } from "./state.js"

/** @internal */
export const pause = (state: State) => (queue: string): Effect.Effect<boolean> =>
  withNow(state, (now) => {
    if (state.paused.has(queue)) return false
    state.paused.set(queue, now)
    return true
  })

/** Resumes a queue and wakes its workers, which claim its due jobs at once. @internal */
export const resume = (state: State) => (queue: string): Effect.Effect<boolean> =>
  withNow(state, () => {
    if (!state.paused.delete(queue)) return false
    wake(state, queue)
    return true
  })
