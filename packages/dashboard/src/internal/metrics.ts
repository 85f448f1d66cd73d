import * as Metrics from "@bulwark/resilience/Metrics"

const declared = new Map(Metrics.catalog.map((descriptor) => [descriptor.name, descriptor]))

/**
 * A metric name from the catalogue, checked when the dashboards and rules are
 * built: naming an undeclared metric fails the build, not a Grafana panel.
 * (The tests also parse every generated expression and check it again.)
 *
 * @internal
 */
export const metric = (name: string, type?: Metrics.Descriptor["type"]): string => {
  const descriptor = declared.get(name)
  if (descriptor === undefined) throw new Error(`${name} is not declared in Metrics.catalog`)
  if (type !== undefined && descriptor.type !== type) {
    throw new Error(`${name} is a ${descriptor.type} in Metrics.catalog, not a ${type}`)
  }
  return name
}

/** @internal */
export const M = {
  breakerState: metric("bulwark_circuit_breaker_state", "gauge"),
  breakerCalls: metric("bulwark_circuit_breaker_calls_total", "counter"),
  breakerTransitions: metric("bulwark_circuit_breaker_transitions_total", "counter"),
  breakerSharedStoreUp: metric("bulwark_circuit_breaker_shared_store_up", "gauge"),
  retryCalls: metric("bulwark_retry_calls_total", "counter"),
  retryAttempts: metric("bulwark_retry_attempts_total", "counter"),
  retryBudgetDenied: metric("bulwark_retry_budget_denied_total", "counter"),
  bulkheadActive: metric("bulwark_bulkhead_active", "gauge"),
  bulkheadQueued: metric("bulwark_bulkhead_queued", "gauge"),
  bulkheadRejected: metric("bulwark_bulkhead_rejected_total", "counter"),
  adaptiveLimit: metric("bulwark_adaptive_concurrency_limit", "gauge"),
  adaptiveInflight: metric("bulwark_adaptive_concurrency_inflight", "gauge"),
  adaptiveRejected: metric("bulwark_adaptive_concurrency_rejected_total", "counter"),
  rateLimiterDecisions: metric("bulwark_rate_limiter_decisions_total", "counter"),
  redisConfigErrors: metric("bulwark_redis_config_errors_total", "counter"),
  timeouts: metric("bulwark_timeouts_total", "counter"),
  timeoutAbandoned: metric("bulwark_timeout_abandoned_total", "counter"),
  fallbacks: metric("bulwark_fallback_total", "counter"),
  chaosInjections: metric("bulwark_chaos_injections_total", "counter"),
  idempotencyRequests: metric("bulwark_idempotency_requests_total", "counter"),
  jobQueueDepth: metric("bulwark_job_queue_depth", "gauge"),
  deadLetterDepth: metric("bulwark_dead_letter_depth", "gauge"),
  deadLetterEntries: metric("bulwark_dead_letter_entries", "gauge"),
  oldestReady: metric("bulwark_job_queue_oldest_ready_seconds", "gauge"),
  queuePaused: metric("bulwark_job_queue_paused", "gauge"),
  jobs: metric("bulwark_jobs_total", "counter"),
  jobDuration: metric("bulwark_job_duration_seconds", "histogram"),
  jobWait: metric("bulwark_job_wait_seconds", "histogram"),
  httpRequests: metric("http_client_requests_total", "counter"),
  httpDuration: metric("http_client_request_duration_seconds", "histogram")
} as const
