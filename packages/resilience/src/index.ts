/**
 * Bulwark: resilience for Effect programs.
 *
 * The root entry loads only the core peers (`effect`, `@effect/platform`). Integrations that need an optional peer
 * are reached by their own subpath, so an application that does not use them does not install them:
 *
 * | subpath | optional peers |
 * | --- | --- |
 * | `@bulwark/resilience/Migrations` | `@effect/sql` |
 * | `@bulwark/resilience/SqlJobQueue`, `/SqlIdempotencyStore` | `@effect/sql`, `@effect/sql-pg` |
 * | `@bulwark/resilience/SqlJobSchedule` | `@effect/sql` |
 * | `@bulwark/resilience/RedisRateLimiter`, `/RedisIdempotencyCache` | `ioredis` |
 * | `@bulwark/resilience/PrometheusMetrics` | `prom-client` |
 * | `@bulwark/resilience/Tracing` | `@effect/opentelemetry`, `@opentelemetry/*` |
 * | `@bulwark/resilience/Cli` and the `bulwark` bin | `@effect/cli`, `@effect/platform-node`, `@effect/sql`, `@effect/sql-pg` |
 * | `Pipeline.fromFile` on a `.yaml` file | `yaml` (loaded when first needed) |
 *
 * @since 0.1.0
 */

/**
 * The typed failure model: transient vs terminal failures, classifiers, `Retry-After`.
 *
 * @since 0.1.0
 */
export * as Failure from "./Failure.js"

/**
 * Every metric Bulwark emits.
 *
 * @since 0.1.0
 */
export * as Metrics from "./Metrics.js"

/**
 * An HttpClient with per-host breakers and bulkheads, retries of transient answers (Retry-After), timeouts,
 * idempotency keys, a log line, metrics and spans per call.
 *
 * @since 0.1.0
 */
export * as ResilientHttpClient from "./http/ResilientHttpClient.js"

/**
 * Retry policies on `Schedule`: backoff, jitter, attempt and time budgets, `Retry-After`.
 *
 * @since 0.1.0
 */
export * as Retry from "./retry/Retry.js"

/**
 * A retry budget shared across calls, against retry storms.
 *
 * @since 0.1.0
 */
export * as RetryBudget from "./retry/RetryBudget.js"

/**
 * Per-attempt and overall timeouts with a typed, transient `TimeoutError`.
 *
 * @since 0.1.0
 */
export * as Timeout from "./timeout/Timeout.js"

/**
 * Circuit breakers: consecutive / rate / slow-call trips, half-open probes, registry, events.
 *
 * @since 0.1.0
 */
export * as CircuitBreaker from "./circuit-breaker/CircuitBreaker.js"

/**
 * STM circuit breakers: the same breaker with its state in a `TRef`, its steps `STM` values that compose with other
 * transactions (a bulkhead permit and a breaker probe, both or neither).
 *
 * @since 0.1.0
 */
export * as TCircuitBreaker from "./circuit-breaker/TCircuitBreaker.js"

/**
 * Bulkheads: max concurrent, bounded FIFO queue, max wait; permits handed to the oldest waiter.
 *
 * @since 0.1.0
 */
export * as Bulkhead from "./bulkhead/Bulkhead.js"

/**
 * STM bulkheads: the bulkhead's permits in a `TSemaphore`, so acquiring, releasing and reading them compose with your
 * own transactions.
 *
 * @since 0.1.0
 */
export * as TBulkhead from "./bulkhead/TBulkhead.js"

/**
 * Partitioned bulkheads: a concurrency limit per key (tenant, host) with a bound on the keys held and an optional
 * shared total served round-robin across keys; metrics per bulkhead, never per key.
 *
 * @since 0.1.0
 */
export * as PartitionedBulkhead from "./bulkhead/PartitionedBulkhead.js"

/**
 * Rate limiters (token bucket, fixed window, sliding log and counter, leaky bucket, GCRA) that reject with a typed,
 * transient `RateLimitedError` or wait their turn; per key, with bounded memory.
 *
 * @since 0.1.0
 */
export * as RateLimiter from "./rate-limiter/RateLimiter.js"

/**
 * Rate-limit middleware for @effect/platform: 429 + Retry-After, IETF RateLimit headers, problem+json.
 *
 * @since 0.1.0
 */
export * as RateLimiterHttp from "./rate-limiter/RateLimiterHttp.js"

/**
 * Adaptive concurrency limits (Netflix's Gradient2 and Vegas): the concurrency a service sustains, learned from
 * latency; the excess is refused at once with a typed, transient `ConcurrencyLimitError`.
 *
 * @since 0.1.0
 */
export * as AdaptiveConcurrency from "./adaptive-concurrency/AdaptiveConcurrency.js"

/**
 * Load-shedding middleware for @effect/platform: an adaptive concurrency limit, 503 + Retry-After, problem+json.
 *
 * @since 0.1.0
 */
export * as AdaptiveConcurrencyHttp from "./adaptive-concurrency/AdaptiveConcurrencyHttp.js"

/**
 * Durable background jobs: Schema-typed payloads, deduplicated confirmed enqueue, queue tiers, admission control.
 *
 * @since 0.1.0
 */
export * as JobQueue from "./job-queue/JobQueue.js"

/**
 * The job queue's backend contract: the store service a queue runs on (in memory, PostgreSQL, or your own), its
 * statements' inputs and results, and their errors.
 *
 * @since 0.1.0
 */
export * as JobStore from "./job-queue/JobStore.js"

/**
 * Pull workers for the job queue: leases, heartbeats, retries with backoff, graceful shutdown.
 *
 * @since 0.1.0
 */
export * as JobWorker from "./job-queue/JobWorker.js"

/**
 * The dead-letter queue: inspect, replay and discard jobs that failed for good.
 *
 * @since 0.1.0
 */
export * as DeadLetter from "./job-queue/DeadLetter.js"

/**
 * Recurring jobs: cron schedules (time zones, a backfill window) whose ticks are enqueued exactly once however many
 * processes run them.
 *
 * @since 0.1.0
 */
export * as JobSchedule from "./job-queue/JobSchedule.js"

/**
 * Idempotency keys: run an effect at most once per (scope, key), replay the stored result, typed conflicts and
 * mismatches, leases with heartbeats, fencing, recovery after crashes.
 *
 * @since 0.1.0
 */
export * as Idempotency from "./idempotency/Idempotency.js"

/**
 * Where idempotency records live: the store service, an in-memory store, and cleanup of expired records.
 *
 * @since 0.1.0
 */
export * as IdempotencyStore from "./idempotency/IdempotencyStore.js"

/**
 * Idempotency-Key middleware for @effect/platform (HttpRouter / HttpApp, and an HttpApi handler wrapper): replays
 * byte for byte, 409 in flight, 422 on a different request, 400 problem+json for missing or invalid keys.
 *
 * @since 0.1.0
 */
export * as IdempotencyHttp from "./idempotency/IdempotencyHttp.js"

/**
 * An HttpClient wrapper that sends one Idempotency-Key per logical operation and reuses it across retries.
 *
 * @since 0.1.0
 */
export * as IdempotencyHttpClient from "./idempotency/IdempotencyHttpClient.js"

/**
 * Fallback chains (primary ▸ last-known-good cache ▸ secondary ▸ default) whose answer says which source answered;
 * critical and optional dependencies.
 *
 * @since 0.1.0
 */
export * as Fallback from "./fallback/Fallback.js"

/**
 * Every layer of defence around a call in one documented order (rate limit ▸ idempotency ▸ circuit breaker ▸
 * bulkhead ▸ retry ▸ timeout), built from one configuration decoded from code, the environment, JSON or YAML.
 *
 * @since 0.1.0
 */
export * as Pipeline from "./pipeline/Pipeline.js"

/**
 * Chaos: fault, latency, outcome and behaviour injection at a rate, behind a runtime switch, for effects, HttpClients
 * and HttpApps; deterministic under a seeded Random and the TestClock.
 *
 * @since 0.1.0
 */
export * as Chaos from "./chaos/Chaos.js"
