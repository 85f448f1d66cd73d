/**
 * In-memory outcomes of an attempt, each fenced by its lease: completion, failure (a retry or the dead-letter
 * queue) and hand-back (the attempt is not counted).
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { JobId } from "../../JobQueue.js"
import type { Completion, FailOutcome, FailRequest, Lease } from "../../JobStore.js"
import { AttemptError } from "../errors.js"
import { bury, clearLease, date, holds, makeReady, type State, wake, withNow } from "./state.js"

/** @internal */
export const complete =
  (state: State) => (completions: ReadonlyArray<Completion>): Effect.Effect<ReadonlyArray<JobId>> =>
    withNow(state, (now) =>
      completions.flatMap((held) => {
        const job = holds(state, held)
        if (job === undefined) return []
        clearLease(state, job)
        job.state = "succeeded"
        job.finishedAt = now
        job.result = held.result ?? Option.none()
        return [held.id]
      }))

/** @internal */
export const fail = (state: State) => (request: FailRequest): Effect.Effect<FailOutcome> =>
  withNow(state, (now): FailOutcome => {
    const job = holds(state, request.lease)
    if (job === undefined) return { _tag: "Rejected" }
    job.errors.push(
      new AttemptError({
        attempt: job.attempt,
        tag: request.error.tag,
        message: request.error.message,
        cause: request.error.cause,
        verdict: request.error.verdict,
        workerId: request.lease.owner,
        startedAt: job.startedAt === null ? null : date(job.startedAt),
        failedAt: date(now)
      })
    )
    if (Option.isNone(request.retryIn)) {
      bury(state, job, request.error.verdict === "terminal" ? "terminal" : "exhausted", now)
      return { _tag: "Dead" }
    }
    job.runAt = now + Duration.toMillis(request.retryIn.value)
    makeReady(state, job, now)
    return { _tag: "Retrying", runAt: date(job.runAt) }
  })

/** @internal */
export const release = (state: State) => (leases: ReadonlyArray<Lease>): Effect.Effect<ReadonlyArray<JobId>> =>
  withNow(state, (now) =>
    leases.flatMap((held) => {
      const job = holds(state, held)
      if (job === undefined) return []
      job.attempt -= 1
      makeReady(state, job, now)
      wake(state, job.queue)
      return [held.id]
    }))
