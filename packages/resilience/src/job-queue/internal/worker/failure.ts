/**
 * A failed attempt: what it was (tag, message, cause and verdict, from the typed failure, the classifier or the
 * queue's `unclassified` verdict) and how it is written (a retry with backoff, the dead-letter queue, or the lease
 * handed back when shutdown interrupted it).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import type { Verdict } from "../../../Failure.js"
import * as Failure from "../../../Failure.js"
import { retryDelay } from "../backoff.js"
import { MAX_CAUSE, truncate } from "../status.js"
import { type Held, log, persist, type Pool, type Worker } from "./pool.js"

const errorTag = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    if ("_tag" in error && typeof error._tag === "string") return error._tag
    if (error instanceof Error) return error.name
  }
  return "Error"
}

const errorMessage = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string") {
    return error.message
  }
  return String(error)
}

/**
 * What a failed attempt was: the first typed failure decides (branded
 * errors keep their brand, then the classifier, then the queue's
 * `unclassified` verdict); a defect or a stray interruption is `unclassified`.
 */
const describeFailure = (
  cause: Cause.Cause<unknown>,
  classifier: Failure.Classifier,
  unclassified: Verdict
): { tag: string; message: string; cause: string; verdict: Verdict } => {
  const pretty = truncate(Cause.pretty(cause), MAX_CAUSE)
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    const verdict: Verdict = Failure.isTerminal(error)
      ? "terminal"
      : Failure.isTransient(error)
      ? "transient"
      : Option.getOrElse(Failure.classifyError(error, classifier), () => unclassified)
    return { tag: errorTag(error), message: truncate(errorMessage(error), 2048), cause: pretty, verdict }
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    return {
      tag: "Defect",
      message: truncate(errorMessage(defect.value), 2048),
      cause: pretty,
      verdict: unclassified
    }
  }
  return { tag: "Interrupted", message: "the handler was interrupted", cause: pretty, verdict: unclassified }
}

/** A cancelled job's handler stopped: the backend holds the outcome already, and would refuse another. @internal */
export const reportCancelled = (worker: Worker, entry: Held): Effect.Effect<void> =>
  Effect.suspend(() => {
    entry.phase = "reporting"
    worker.counters.cancelled += 1
    return log(worker, Effect.logDebug(`Job ${entry.job.lease.id} (${entry.job.kind}) was cancelled; it stopped`))
  })

/** Failures and hand-backs, written while the slot is still taken. @internal */
export const reportFailure = (
  worker: Worker,
  pool: Pool,
  entry: Held,
  exit: Exit.Failure<void, unknown>,
  ms: number
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const job = entry.job
    entry.phase = "reporting"
    if (entry.cancelled === true) return yield* reportCancelled(worker, entry)
    if (entry.stopped && Cause.isInterruptedOnly(exit.cause)) {
      const released = yield* persist(worker, pool, "hand back a lease", worker.store.release([job.lease]))
      if (Option.isSome(released) && released.value.length > 0) worker.counters.released += 1
      return
    }
    if (entry.lost && Cause.isInterruptedOnly(exit.cause)) {
      worker.counters.leasesLost += 1
      return
    }
    pool.duration(ms / 1000)
    const failure = describeFailure(exit.cause, worker.classifier, pool.queue.unclassified)
    const exhausted = job.lease.attempt >= job.maxAttempts
    const retryIn = failure.verdict === "terminal" || exhausted
      ? Option.none()
      : Option.some(retryDelay(pool.queue.retry, job.lease.attempt, yield* Random.next))
    const outcome = yield* persist(
      worker,
      pool,
      "record a failed job",
      worker.store.fail({ lease: job.lease, error: failure, retryIn })
    )
    if (Option.isNone(outcome)) return
    switch (outcome.value._tag) {
      case "Retrying":
        worker.counters.retried += 1
        pool.retried()
        return
      case "Dead":
        worker.counters.deadLettered += 1
        pool.deadLettered()
        yield* log(
          worker,
          Effect.logWarning(
            `Job ${job.lease.id} (${job.kind}) moved to the dead-letter queue after attempt ${job.lease.attempt}: ` +
              `${failure.tag}: ${failure.message}`
          )
        )
        return
      case "Rejected":
        worker.counters.lateOutcomesRejected += 1
        yield* log(worker, Effect.logWarning(`Failure of job ${job.lease.id} rejected: its lease was lost`))
        return
    }
  })
