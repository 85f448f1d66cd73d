/**
 * Every metric Bulwark emits, declared in one place: the contract between the
 * code, the Grafana dashboards and the alert rules.
 *
 * Names follow Prometheus conventions (base units, `_total` on counters).
 * Counters are monotonic (`incremental: true`), durations are histograms in
 * seconds, and a state is a 0/1 gauge per `state` label. Label values are
 * bounded by construction: a label is either one of a closed set of words
 * (listed in {@link Descriptor.labelValues}) or the name of something built in
 * code (a breaker, bulkhead, limiter, retry policy, operation, queue, scope or
 * host), validated when it is built; never a key, an id or a URL. {@link catalog}
 * lists every metric with its labels, so exporters and dashboard tests can
 * check names against it.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"

/**
 * A metric's name, type, help text, label keys, the closed value sets of its
 * enumerated labels, and (for histograms) its bucket upper bounds.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Descriptor {
  readonly name: string
  readonly type: "counter" | "gauge" | "histogram"
  readonly help: string
  /** Every label key, in a stable order. */
  readonly labels: ReadonlyArray<string>
  /**
   * For each label whose values are a fixed set of words, those words. A label
   * not listed here carries a name chosen in code, validated at construction
   * (1 to 128 characters of `A-Z a-z 0-9 _ . : / -`; an idempotency `scope` is
   * 1 to 128 printable ASCII characters, such as `POST /payments`).
   */
  readonly labelValues: Readonly<Record<string, ReadonlyArray<string>>>
  /** Histogram bucket upper bounds in seconds, ascending (`+Inf` is implied); empty for counters and gauges. */
  readonly buckets: ReadonlyArray<number>
}

type LabelValues = Readonly<Record<string, ReadonlyArray<string>>>

const declared: Array<Descriptor> = []

const counter = (name: string, help: string, labels: ReadonlyArray<string>, labelValues: LabelValues = {}) => {
  declared.push({ name, type: "counter", help, labels, labelValues, buckets: [] })
  return Metric.counter(name, { description: help, incremental: true })
}
const gauge = (name: string, help: string, labels: ReadonlyArray<string>, labelValues: LabelValues = {}) => {
  declared.push({ name, type: "gauge", help, labels, labelValues, buckets: [] })
  return Metric.gauge(name, { description: help })
}
const secondsHistogram = (
  name: string,
  help: string,
  labels: ReadonlyArray<string>,
  buckets: ReadonlyArray<number>,
  labelValues: LabelValues = {}
) => {
  declared.push({ name, type: "histogram", help, labels, labelValues, buckets })
  return Metric.histogram(name, MetricBoundaries.fromIterable(buckets), help)
}

const BREAKER_STATES = ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"]
const HTTP_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]

const CALL_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const JOB_SECONDS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]

// -----------------------------------------------------------------------------
// Circuit breaker
// -----------------------------------------------------------------------------

/**
 * 1 for the breaker's current state, 0 for the others. Labels: `breaker`, `state`
 * (closed, open, half_open, forced_open, disabled, metrics_only).
 *
 * @since 0.1.0
 * @category Circuit breaker
 */
export const circuitBreakerState = gauge(
  "bulwark_circuit_breaker_state",
  "Circuit breaker state (1 = current)",
  ["breaker", "state"],
  { state: BREAKER_STATES }
)

/**
 * Calls through a breaker. Labels: `breaker`, `outcome` (success, failure,
 * slow_success, slow_failure, rejected, ignored).
 *
 * @since 0.1.0
 * @category Circuit breaker
 */
export const circuitBreakerCalls = counter(
  "bulwark_circuit_breaker_calls_total",
  "Calls through a circuit breaker",
  ["breaker", "outcome"],
  { outcome: ["success", "failure", "slow_success", "slow_failure", "rejected", "ignored"] }
)

/**
 * State transitions. Labels: `breaker`, `from`, `to`.
 *
 * @since 0.1.0
 * @category Circuit breaker
 */
export const circuitBreakerTransitions = counter(
  "bulwark_circuit_breaker_transitions_total",
  "Circuit breaker state transitions",
  ["breaker", "from", "to"],
  { from: BREAKER_STATES, to: BREAKER_STATES }
)

/**
 * Whether a shared breaker (`RedisCircuitBreaker`) reaches its store: 1 while
 * it does, 0 while this instance decides alone with its local breaker.
 * Labels: `breaker`.
 *
 * @since 0.1.0
 * @category Circuit breaker
 */
export const circuitBreakerSharedStoreUp = gauge(
  "bulwark_circuit_breaker_shared_store_up",
  "Whether a shared circuit breaker reaches its store (1) or decides alone (0)",
  ["breaker"]
)

// -----------------------------------------------------------------------------
// Retry
// -----------------------------------------------------------------------------

/**
 * Logical calls through a retry policy, by how they ended. Labels: `policy`,
 * `result` (success_first_try, success_after_retry, exhausted, terminal).
 *
 * @example
 * ```promql
 * sum by (policy) (rate(bulwark_retry_calls_total{result="exhausted"}[5m]))
 * ```
 *
 * @since 0.1.0
 * @category Retry
 */
export const retryCalls = counter(
  "bulwark_retry_calls_total",
  "Calls through a retry policy by result",
  ["policy", "result"],
  { result: ["success_first_try", "success_after_retry", "exhausted", "terminal"] }
)

/**
 * Retries made (re-executions after a transient failure; the first attempt is
 * not counted). Labels: `policy`.
 *
 * @since 0.1.0
 * @category Retry
 */
export const retryAttempts = counter("bulwark_retry_attempts_total", "Retries made after a transient failure", [
  "policy"
])

/**
 * Retries a shared retry budget refused. Labels: `policy`.
 *
 * @since 0.1.0
 * @category Retry
 */
export const retryBudgetDenied = counter(
  "bulwark_retry_budget_denied_total",
  "Retries refused because the shared retry budget was spent",
  ["policy"]
)

// -----------------------------------------------------------------------------
// Bulkhead
// -----------------------------------------------------------------------------

/**
 * Calls holding a permit. Labels: `bulkhead`.
 *
 * @since 0.1.0
 * @category Bulkhead
 */
export const bulkheadActive = gauge("bulwark_bulkhead_active", "Calls running inside a bulkhead", ["bulkhead"])

/**
 * Calls waiting for a permit. Labels: `bulkhead`.
 *
 * @since 0.1.0
 * @category Bulkhead
 */
export const bulkheadQueued = gauge("bulwark_bulkhead_queued", "Calls waiting for a bulkhead permit", ["bulkhead"])

/**
 * Calls rejected because the bulkhead and its queue were full, or the wait ran out. Labels: `bulkhead`.
 *
 * @since 0.1.0
 * @category Bulkhead
 */
export const bulkheadRejected = counter("bulwark_bulkhead_rejected_total", "Calls rejected by a full bulkhead", [
  "bulkhead"
])

// -----------------------------------------------------------------------------
// Adaptive concurrency
// -----------------------------------------------------------------------------

/**
 * The concurrency an adaptive limiter admits now, as it learned it from latency. Labels: `limiter`.
 *
 * @since 0.1.0
 * @category Adaptive concurrency
 */
export const adaptiveConcurrencyLimit = gauge(
  "bulwark_adaptive_concurrency_limit",
  "Calls an adaptive concurrency limiter admits at once now",
  ["limiter"]
)

/**
 * Calls running under an adaptive limiter. Labels: `limiter`.
 *
 * @since 0.1.0
 * @category Adaptive concurrency
 */
export const adaptiveConcurrencyInflight = gauge(
  "bulwark_adaptive_concurrency_inflight",
  "Calls running under an adaptive concurrency limiter",
  ["limiter"]
)

/**
 * Calls refused at once because the adaptive limit was reached. Labels: `limiter`.
 *
 * @since 0.1.0
 * @category Adaptive concurrency
 */
export const adaptiveConcurrencyRejected = counter(
  "bulwark_adaptive_concurrency_rejected_total",
  "Calls refused by an adaptive concurrency limiter",
  ["limiter"]
)

// -----------------------------------------------------------------------------
// Rate limiter, timeout, fallback
// -----------------------------------------------------------------------------

/**
 * Decisions of a rate limiter. Labels: `limiter`, `decision` (allowed, delayed, rejected).
 *
 * @since 0.1.0
 * @category Rate limiter
 */
export const rateLimiterDecisions = counter(
  "bulwark_rate_limiter_decisions_total",
  "Rate limiter decisions",
  ["limiter", "decision"],
  { decision: ["allowed", "delayed", "rejected"] }
)

/**
 * Redis answers that show a misconfigured client, not an outage: a
 * single-node client pointed at a Redis Cluster node (`MOVED`, `ASK`,
 * `CROSSSLOT`, or `cluster_enabled:1` found at startup). Any increase is a
 * deployment error. Labels: `component` (rate_limiter, idempotency_cache).
 *
 * @since 0.1.0
 * @category Rate limiter
 */
export const redisConfigErrors = counter(
  "bulwark_redis_config_errors_total",
  "Redis answers showing a misconfigured client (a single-node client on a Redis Cluster)",
  ["component"],
  { component: ["rate_limiter", "idempotency_cache"] }
)

/**
 * Operations that ran out of time. Labels: `operation`.
 *
 * @since 0.1.0
 * @category Timeout
 */
export const timeouts = counter("bulwark_timeouts_total", "Operations interrupted by a timeout", ["operation"])

/**
 * Work a timeout with `onUninterruptible: "abandon"` answered without waiting
 * for, counted when it ends. Labels: `operation`, `result` (succeeded, failed,
 * interrupted: stopped by the timeout's interruption at its first
 * interruptible point).
 *
 * @since 0.1.0
 * @category Timeout
 */
export const timeoutAbandoned = counter(
  "bulwark_timeout_abandoned_total",
  "Timed-out work left to finish in the background, by how it ended",
  ["operation", "result"],
  { result: ["succeeded", "failed", "interrupted"] }
)

/**
 * Which source answered a call with fallbacks. Labels: `operation`, `source`
 * (primary, cache, secondary, default).
 *
 * @since 0.1.0
 * @category Fallback
 */
export const fallbacks = counter(
  "bulwark_fallback_total",
  "Answers by source in a fallback chain",
  ["operation", "source"],
  { source: ["primary", "cache", "secondary", "default"] }
)

// -----------------------------------------------------------------------------
// Idempotency and jobs
// -----------------------------------------------------------------------------

/**
 * Idempotent requests by result. Labels: `scope` (the bounded operation name,
 * e.g. `POST /payments`: 1 to 128 printable ASCII characters; the key and the
 * tenant are never labels), `result` (executed, replayed, in_flight_conflict,
 * fingerprint_mismatch, missing_key, invalid_key, payload_too_large: a body
 * over the HTTP middleware's `maxBodyBytes`, refused with 413).
 *
 * @since 0.1.0
 * @category Idempotency
 */
export const idempotencyRequests = counter(
  "bulwark_idempotency_requests_total",
  "Idempotent requests by result",
  ["scope", "result"],
  {
    result: [
      "executed",
      "replayed",
      "in_flight_conflict",
      "fingerprint_mismatch",
      "missing_key",
      "invalid_key",
      "payload_too_large"
    ]
  }
)

/**
 * Jobs in a queue by state. Labels: `queue`, `state` (ready, scheduled, running).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const jobQueueDepth = gauge("bulwark_job_queue_depth", "Jobs in a queue by state", ["queue", "state"], {
  state: ["ready", "scheduled", "running"]
})

/**
 * Entries in a queue's dead-letter queue. Labels: `queue`.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const deadLetterDepth = gauge("bulwark_dead_letter_depth", "Entries in the dead-letter queue", ["queue"])

/**
 * Dead-letter entries by status, counted in the backend (so replays and
 * discards made by any process, the CLI included, show). Labels: `queue`,
 * `status` (pending, replayed, discarded). Settled entries leave the count
 * when retention prunes them.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const deadLetterEntries = gauge(
  "bulwark_dead_letter_entries",
  "Dead-letter entries by status",
  ["queue", "status"],
  { status: ["pending", "replayed", "discarded"] }
)

/**
 * How long the oldest ready job of a queue has been due, in seconds (0 when
 * none is): the backlog measured against a tier's start-within target.
 * Labels: `queue`.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const jobQueueOldestReady = gauge(
  "bulwark_job_queue_oldest_ready_seconds",
  "Seconds the oldest ready job of a queue has been due",
  ["queue"]
)

/**
 * Whether a queue is paused (1) or not (0). Labels: `queue`.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const jobQueuePaused = gauge("bulwark_job_queue_paused", "Whether a queue is paused (1) or not (0)", ["queue"])

/**
 * Job outcomes. Labels: `queue`, `outcome` (succeeded, retried, dead_lettered, discarded, replayed, cancelled).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const jobs = counter("bulwark_jobs_total", "Job outcomes", ["queue", "outcome"], {
  outcome: ["succeeded", "retried", "dead_lettered", "discarded", "replayed", "cancelled"]
})

/**
 * How long a job ran. Labels: `queue`.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const jobDuration = secondsHistogram(
  "bulwark_job_duration_seconds",
  "Job run time in seconds",
  ["queue"],
  JOB_SECONDS
)

/**
 * How long a job waited from enqueue (or run-at) to start. Labels: `queue`.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const jobWait = secondsHistogram(
  "bulwark_job_wait_seconds",
  "Time from a job being due to its start, in seconds",
  ["queue"],
  JOB_SECONDS
)

// -----------------------------------------------------------------------------
// HTTP client
// -----------------------------------------------------------------------------

/**
 * Outgoing HTTP requests. Labels: `method` (GET, POST, PUT, DELETE, PATCH,
 * HEAD, OPTIONS), `host` (the host of a dependency the code calls: keep it to
 * configured hosts, never a host taken from input), `status` (the response's
 * three-digit status code).
 *
 * @since 0.1.0
 * @category HTTP client
 */
export const httpClientRequests = counter(
  "http_client_requests_total",
  "Outgoing HTTP requests",
  ["method", "host", "status"],
  { method: HTTP_METHODS }
)

/**
 * Outgoing HTTP request duration, in seconds. Labels: `method`, `host` (as
 * for {@link httpClientRequests}).
 *
 * @since 0.1.0
 * @category HTTP client
 */
export const httpClientRequestDuration = secondsHistogram(
  "http_client_request_duration_seconds",
  "Outgoing HTTP request duration in seconds",
  ["method", "host"],
  CALL_SECONDS,
  { method: HTTP_METHODS }
)

// -----------------------------------------------------------------------------
// Chaos
// -----------------------------------------------------------------------------

/**
 * Injections made by chaos policies. Labels: `policy` (the policy's name),
 * `kind` (fault, latency, outcome, behavior).
 *
 * @example
 * ```promql
 * sum by (policy, kind) (rate(bulwark_chaos_injections_total[5m]))
 * ```
 *
 * @since 0.1.0
 * @category Chaos
 */
export const chaosInjections = counter(
  "bulwark_chaos_injections_total",
  "Faults, latency, outcomes and behaviours injected by chaos policies",
  ["policy", "kind"],
  { kind: ["fault", "latency", "outcome", "behavior"] }
)

// -----------------------------------------------------------------------------
// Catalog
// -----------------------------------------------------------------------------

/**
 * Every metric above with its type, help, label keys, enumerated label values
 * and buckets. Dashboards, alert rules and exporters may only use names listed
 * here.
 *
 * @since 0.1.0
 * @category Catalog
 */
export const catalog: ReadonlyArray<Descriptor> = declared
