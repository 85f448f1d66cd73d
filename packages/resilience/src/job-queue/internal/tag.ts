/**
 * The identity of the `JobQueue` service: its type id and its tag. A leaf, read by every internal module that
 * finds the job queue in context.
 */
import * as Context from "effect/Context"
import type { JobQueue } from "../JobQueue.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/JobQueue")

/** @internal */
export const tag = Context.GenericTag<JobQueue>("@bulwark/resilience/JobQueue")
