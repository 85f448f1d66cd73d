import * as Context from "effect/Context"
import type { JobQueue } from "../JobQueue.js"

// Module graph (ESM evaluates a cycle in import order, and a module that reads a binding of one still being
// evaluated crashes with "Cannot access … before initialization"):
// - a public module (JobQueue.ts, SqlJobQueue.ts, JobWorker.ts, DeadLetter.ts) reads its internal modules at load
//   time, so they are imported only by that public module and by one another, never from elsewhere: JobQueue.ts
//   owns jobQueue, config, definition, memoryStore and metrics; SqlJobQueue.ts owns sqlStore; JobWorker.ts owns
//   worker; DeadLetter.ts owns deadLetter;
// - internal modules reach other namespaces through their public modules, touching those values only inside
//   functions, or through shared modules that no public module reads at load time: the leaves (this file,
//   backoff, cursor, status: no value import from this folder) and validate.ts.
// Loading any public module first is tested in test/job-queue/modules.test.ts.

/**
 * The `JobQueue` service tag, defined in a leaf so that no import cycle reaches it.
 *
 * @internal
 */
export const tag = Context.GenericTag<JobQueue>("@bulwark/resilience/JobQueue")
