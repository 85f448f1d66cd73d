/**
 * `bulwark_idempotency_requests_total{scope, result}`: one pre-labelled counter per scope and result, made on the
 * scope's first request and kept in a process-wide cache.
 */
import * as Effect from "effect/Effect"
import { globalValue } from "effect/GlobalValue"
import * as Metric from "../../internal/metric.js"
import * as Metrics from "../../Metrics.js"
import type * as Idempotency from "../Idempotency.js"

/** @internal */
export type Counters = Readonly<Record<Idempotency.MetricResult, () => void>>

/** Scopes are bounded operation names; the cap only guards against a caller putting ids in them. */
const MAX_CACHED_SCOPES = 1_000

// One cache per process, even when the module is loaded twice (two copies of the package): the counters it holds
// update the one registry either way.
const countersByScope = globalValue(
  Symbol.for("@bulwark/resilience/Idempotency/countersByScope"),
  () => new Map<string, Counters>()
)

/** @internal */
export const countersFor = (scope: string): Counters => {
  const cached = countersByScope.get(scope)
  if (cached !== undefined) return cached
  const counter = (result: Idempotency.MetricResult) => Metric.counter(Metrics.idempotencyRequests, { scope, result })
  const made: Counters = {
    executed: counter("executed"),
    replayed: counter("replayed"),
    in_flight_conflict: counter("in_flight_conflict"),
    fingerprint_mismatch: counter("fingerprint_mismatch"),
    missing_key: counter("missing_key"),
    invalid_key: counter("invalid_key")
  }
  if (countersByScope.size < MAX_CACHED_SCOPES) countersByScope.set(scope, made)
  return made
}

/** @internal */
export const recordRequest = (scope: string, result: Idempotency.MetricResult): Effect.Effect<void> =>
  Effect.sync(() => countersFor(scope)[result]())
