/**
 * The job-queue conformance suite on the in-memory backend: workers on the live clock, the store's own time
 * (leases lapsing, heartbeats, retention cutoffs) on TestClock.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import { it } from "@effect/vitest"
import * as TestClock from "effect/TestClock"
import { conformance } from "./conformance.js"

conformance({
  name: "memory",
  test: it.live,
  clocked: it.effect,
  advance: TestClock.adjust,
  layer: (options) => JobQueue.layerMemory(options)
})
