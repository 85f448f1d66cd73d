/**
 * What the crash test and its worker processes share: the job definition, the
 * terminal error of poisoned jobs and the queue settings.
 *
 * The leases are short on purpose, and real (they run on Postgres' `now()`
 * across OS processes, where TestClock cannot reach): a killed worker's jobs
 * must be reclaimed within about a second for the test to finish in seconds.
 */
import { TerminalTypeId } from "@bulwark/resilience/Failure"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as Data from "effect/Data"
import * as Schema from "effect/Schema"

export const CrashJob = JobQueue.define({
  kind: "crash-job",
  queue: "crash",
  payload: Schema.Struct({ n: Schema.Number, poison: Schema.Boolean, workMillis: Schema.Number })
})

/** Poisoned jobs fail terminally: straight to the dead-letter queue, no retry. */
export class PoisonError extends Data.TaggedError("PoisonError")<{ readonly n: number }> {
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId
}

export const queueOptions: JobQueue.QueueOptions = {
  concurrency: 8,
  visibilityTimeout: "600 millis",
  heartbeatInterval: "150 millis",
  pollInterval: "100 millis",
  reclaimInterval: "150 millis",
  // Enough attempts that no healthy job can run out of them however often its worker is killed under it.
  retry: { base: "20 millis", cap: "100 millis", maxAttempts: 25 }
}
