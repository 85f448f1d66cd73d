/**
 * The job-queue conformance suite on the in-memory backend: workers on the live clock, the store's own time
 * (leases lapsing, heartbeats, retention cutoffs) on TestClock.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import { it } from "@effect/vitest"
import * as TestClock from "effect/TestClock"
import { conformanceCancel } from "./conformance.cancel.js"
import { conformanceDedup } from "./conformance.dedup.js"
import { conformance } from "./conformance.js"
import { conformancePause } from "./conformance.pause.js"

const backend = {
  name: "memory",
  test: it.live,
  clocked: it.effect,
  advance: TestClock.adjust,
  layer: (options: Parameters<typeof JobQueue.layerMemory>[0]) => JobQueue.layerMemory(options)
}

conformance(backend)
conformanceDedup(backend)
conformanceCancel(backend)
conformancePause(backend)
