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
