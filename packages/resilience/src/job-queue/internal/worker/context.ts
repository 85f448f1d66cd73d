/**
 * The job a handler runs, as a service (`JobWorker.JobContext`), in a leaf module: `handler.ts` provides it to every
 * handler, `JobWorker` re-exports it, and code deep inside a handler reaches it, and reports progress through it.
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type { JobContext } from "../../JobWorker.js"

/** @internal */
export const tag = Context.GenericTag<JobContext>("@bulwark/resilience/JobWorker/JobContext")

/** @internal */
export const progress = (value: number, message?: string): Effect.Effect<void, never, JobContext> =>
  Effect.flatMap(tag, (job) => job.progress(value, message))
