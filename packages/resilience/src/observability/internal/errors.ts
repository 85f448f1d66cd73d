/**
 * The Prometheus bridge's errors, in a leaf module: the internals construct
 * them and `PrometheusMetrics.ts` re-exports them unchanged.
 */
import * as Data from "effect/Data"
import { TerminalTypeId } from "../../internal/failureErrors.js"

/**
 * The registry already holds a metric of that name that the bridge did not
 * put there. Terminal: rename one of them.
 *
 * @since 0.1.0
 * @category Errors
 */
export class MetricConflictError extends Data.TaggedError("MetricConflictError")<{
  readonly name: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The prom-client registry already has a metric named "${this.name}" that is not Bulwark's bridge; ` +
      `rename one of them`
  }
}

/**
 * Collecting the registry failed: one of its collectors (usually one of the
 * application's own) threw or rejected.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ScrapeError extends Data.TaggedError("ScrapeError")<{
  readonly cause: unknown
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Collecting the Prometheus metrics failed: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}
