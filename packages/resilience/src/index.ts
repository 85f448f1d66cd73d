/**
 * Bulwark: resilience for Effect programs.
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
 * Bulkheads: max concurrent, bounded FIFO queue, max wait; permits handed to the oldest waiter.
 *
 * @since 0.1.0
 */
export * as Bulkhead from "./bulkhead/Bulkhead.js"

/**
 * Rate limiters (token bucket, fixed window, sliding log and counter, leaky bucket, GCRA) that reject with a typed,
 * transient `RateLimitedError` or wait their turn; per key, with bounded memory.
 *
 * @since 0.1.0
 */
export * as RateLimiter from "./rate-limiter/RateLimiter.js"

/**
 * A Redis store for rate limiters: atomic Lua on Redis time, shared by every process, fail-open or fail-closed.
 *
 * @since 0.1.0
 */
export * as RedisRateLimiter from "./rate-limiter/RedisRateLimiter.js"

/**
 * Rate-limit middleware for @effect/platform: 429 + Retry-After, IETF RateLimit headers, problem+json.
 *
 * @since 0.1.0
 */
export * as RateLimiterHttp from "./rate-limiter/RateLimiterHttp.js"
