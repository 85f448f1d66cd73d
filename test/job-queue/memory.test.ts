/**
 * The job-queue conformance suite on the in-memory backend.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import { it } from "@effect/vitest"
import { conformance } from "./conformance.js"

conformance({
  name: "memory",
  test: it.live,
  layer: (options) => JobQueue.layerMemory(options)
})
