/**
 * The span attribute keys of every Bulwark primitive, in one place (see
 * `Tracing.attributes`). A module of its own so that primitives can name
 * attributes without loading the OpenTelemetry SDK that `Tracing.layer` uses.
 *
 * @internal
 */

/** @internal */
export const attributes = {
  breakerName: "bulwark.circuit_breaker.name",
  breakerState: "bulwark.circuit_breaker.state",
  bulkheadName: "bulwark.bulkhead.name",
  bulkheadQueuedMs: "bulwark.bulkhead.queued_ms",
  retryPolicy: "bulwark.retry.policy",
  retryAttempt: "bulwark.retry.attempt",
  retryAttempts: "bulwark.retry.attempts",
  retryDelayMs: "bulwark.retry.delay_ms",
  retryAfterMs: "bulwark.retry.retry_after_ms",
  timeoutOperation: "bulwark.timeout.operation",
  timeoutLimitMs: "bulwark.timeout.limit_ms",
  idempotencyKeyed: "bulwark.idempotency.keyed",
  idempotencyReplayed: "bulwark.idempotency.replayed",
  idempotencyScope: "bulwark.idempotency.scope",
  idempotencyResult: "bulwark.idempotency.result",
  jobId: "bulwark.job.id",
  jobQueue: "bulwark.job.queue",
  jobKind: "bulwark.job.kind",
  jobAttempt: "bulwark.job.attempt",
  httpClient: "bulwark.http.client",
  httpHost: "bulwark.http.host",
  httpOutcome: "bulwark.http.outcome",
  outcome: "bulwark.outcome"
} as const
