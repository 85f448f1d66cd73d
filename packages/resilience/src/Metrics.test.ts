import { assert, describe, it } from "@effect/vitest"
import * as Metrics from "./Metrics.js"

/**
 * DESIGN §4, the contract between code, dashboards and alerts, copied here so
 * a change to either side is a decision. Deliberate additions: the
 * `metrics_only` breaker state (shadow mode exists in the breaker),
 * `bulwark_retry_budget_denied_total` (retry budgets exist),
 * `bulwark_chaos_injections_total` (chaos policies exist), and the queue
 * gauges `bulwark_dead_letter_entries` (entries by status, from the table),
 * `bulwark_job_queue_oldest_ready_seconds` (the backlog's age, for the
 * start-within alerts) and `bulwark_job_queue_paused` (pausing exists), and
 * for the Redis-backed policies `bulwark_circuit_breaker_shared_store_up` (a
 * shared breaker that lost its store decides alone) and
 * `bulwark_redis_config_errors_total` (a single-node client on a Redis
 * Cluster, a deployment error), and `bulwark_timeout_abandoned_total` (work a
 * timeout answered without waiting for).
 */
const DESIGN: ReadonlyArray<readonly [name: string, type: Metrics.Descriptor["type"], labels: ReadonlyArray<string>]> =
  [
    ["bulwark_circuit_breaker_state", "gauge", ["breaker", "state"]],
    ["bulwark_circuit_breaker_calls_total", "counter", ["breaker", "outcome"]],
    ["bulwark_circuit_breaker_transitions_total", "counter", ["breaker", "from", "to"]],
    ["bulwark_circuit_breaker_shared_store_up", "gauge", ["breaker"]],
    ["bulwark_retry_calls_total", "counter", ["policy", "result"]],
    ["bulwark_retry_attempts_total", "counter", ["policy"]],
    ["bulwark_retry_budget_denied_total", "counter", ["policy"]],
    ["bulwark_bulkhead_active", "gauge", ["bulkhead"]],
    ["bulwark_bulkhead_queued", "gauge", ["bulkhead"]],
    ["bulwark_bulkhead_rejected_total", "counter", ["bulkhead"]],
    ["bulwark_adaptive_concurrency_limit", "gauge", ["limiter"]],
    ["bulwark_adaptive_concurrency_inflight", "gauge", ["limiter"]],
    ["bulwark_adaptive_concurrency_rejected_total", "counter", ["limiter"]],
    ["bulwark_rate_limiter_decisions_total", "counter", ["limiter", "decision"]],
    ["bulwark_redis_config_errors_total", "counter", ["component"]],
    ["bulwark_timeouts_total", "counter", ["operation"]],
    ["bulwark_timeout_abandoned_total", "counter", ["operation", "result"]],
    ["bulwark_fallback_total", "counter", ["operation", "source"]],
    ["bulwark_idempotency_requests_total", "counter", ["scope", "result"]],
    ["bulwark_job_queue_depth", "gauge", ["queue", "state"]],
    ["bulwark_dead_letter_depth", "gauge", ["queue"]],
    ["bulwark_dead_letter_entries", "gauge", ["queue", "status"]],
    ["bulwark_job_queue_oldest_ready_seconds", "gauge", ["queue"]],
    ["bulwark_job_queue_paused", "gauge", ["queue"]],
    ["bulwark_jobs_total", "counter", ["queue", "outcome"]],
    ["bulwark_job_duration_seconds", "histogram", ["queue"]],
    ["bulwark_job_wait_seconds", "histogram", ["queue"]],
    ["http_client_requests_total", "counter", ["method", "host", "status"]],
    ["http_client_request_duration_seconds", "histogram", ["method", "host"]],
    ["bulwark_chaos_injections_total", "counter", ["policy", "kind"]]
  ]

const DESIGN_VALUES: Readonly<Record<string, Readonly<Record<string, ReadonlyArray<string>>>>> = {
  bulwark_circuit_breaker_state: {
    state: ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"]
  },
  bulwark_circuit_breaker_calls_total: {
    outcome: ["success", "failure", "slow_success", "slow_failure", "rejected", "ignored"]
  },
  bulwark_retry_calls_total: { result: ["success_first_try", "success_after_retry", "exhausted", "terminal"] },
  bulwark_rate_limiter_decisions_total: { decision: ["allowed", "delayed", "rejected"] },
  bulwark_redis_config_errors_total: { component: ["rate_limiter", "idempotency_cache"] },
  bulwark_timeout_abandoned_total: { result: ["succeeded", "failed", "interrupted"] },
  bulwark_fallback_total: { source: ["primary", "cache", "secondary", "default"] },
  bulwark_idempotency_requests_total: {
    result: [
      "executed",
      "replayed",
      "in_flight_conflict",
      "fingerprint_mismatch",
      "missing_key",
      "invalid_key",
      "payload_too_large"
    ]
  },
  bulwark_job_queue_depth: { state: ["ready", "scheduled", "running"] },
  bulwark_dead_letter_entries: { status: ["pending", "replayed", "discarded"] },
  bulwark_jobs_total: { outcome: ["succeeded", "retried", "dead_lettered", "discarded", "replayed", "cancelled"] },
  bulwark_chaos_injections_total: { kind: ["fault", "latency", "outcome", "behavior"] }
}

describe("Metrics.catalog", () => {
  it("declares exactly the metrics of DESIGN §4, with their types and labels", () => {
    assert.deepStrictEqual(
      Metrics.catalog.map((metric) => [metric.name, metric.type, metric.labels]),
      DESIGN.map(([name, type, labels]) => [name, type, labels])
    )
  })

  it("declares the closed value sets of DESIGN §4", () => {
    for (const metric of Metrics.catalog) {
      for (const [label, values] of Object.entries(DESIGN_VALUES[metric.name] ?? {})) {
        assert.deepStrictEqual(metric.labelValues[label], values, `${metric.name}{${label}}`)
      }
    }
    const transitions = Metrics.catalog.find((metric) => metric.name === "bulwark_circuit_breaker_transitions_total")
    assert.deepStrictEqual(transitions?.labelValues["from"], DESIGN_VALUES["bulwark_circuit_breaker_state"]?.["state"])
    assert.deepStrictEqual(transitions?.labelValues["to"], DESIGN_VALUES["bulwark_circuit_breaker_state"]?.["state"])
  })

  it("follows Prometheus naming: _total counters, _seconds histograms, valid names, help on everything", () => {
    for (const metric of Metrics.catalog) {
      assert.match(metric.name, /^[a-z][a-z0-9_]*$/, metric.name)
      assert.isAbove(metric.help.length, 5, metric.name)
      if (metric.type === "counter") assert.match(metric.name, /_total$/, metric.name)
      else assert.notMatch(metric.name, /_total$/, metric.name)
      if (metric.type === "histogram") {
        assert.match(metric.name, /_seconds$/, metric.name)
        assert.isAbove(metric.buckets.length, 5, metric.name)
        assert.isTrue(metric.buckets.every((bound, i) => i === 0 || bound > (metric.buckets[i - 1] ?? 0)), metric.name)
      } else {
        assert.deepStrictEqual(metric.buckets, [], metric.name)
      }
      for (const label of metric.labels) assert.match(label, /^[a-z][a-z_]*$/, `${metric.name}{${label}}`)
      for (const label of Object.keys(metric.labelValues)) assert.include(metric.labels, label, metric.name)
      assert.notInclude(metric.labels, "le", metric.name)
    }
  })

  it("never labels by key, id, tenant or URL", () => {
    const unbounded = /key|id$|^id|tenant|user|url|path|partition|fingerprint/
    for (const metric of Metrics.catalog) {
      for (const label of metric.labels) assert.notMatch(label, unbounded, `${metric.name}{${label}}`)
    }
  })
})
