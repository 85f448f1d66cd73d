/**
 * The pipeline's error, in a leaf module: the internals construct it and
 * `Pipeline.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import { TerminalTypeId } from "../../internal/failureErrors.js"
import type { ConfigIssue } from "../Pipeline.js"

/**
 * The configuration is invalid: every issue names its field. Terminal: the
 * same configuration never works.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * const program = Pipeline.fromConfig({ name: "payments", circuitBreaker: { failureThreshold: -1 } }).pipe(
 *   Effect.catchTag("InvalidPipelineConfigError", (error) => Effect.die(error.message))
 * )
 * // dies with: Invalid pipeline configuration in code:
 * //   circuitBreaker.failureThreshold: expected a positive integer, got -1
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class InvalidPipelineConfigError extends Data.TaggedError("InvalidPipelineConfigError")<{
  /** Where the configuration came from: `"code"`, `"the environment"`, or the file's path. */
  readonly source: string
  readonly issues: ReadonlyArray<ConfigIssue>
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return errorMessage(this.source, this.issues)
  }
}

const errorMessage = (source: string, issues: ReadonlyArray<ConfigIssue>): string => {
  const lines = issues.map((issue) => {
    const where = issue.path === "" ? "(the configuration)" : issue.path
    const variable = issue.variable === undefined ? "" : ` (${issue.variable})`
    return `${where}${variable}: ${issue.message}`
  })
  return `Invalid pipeline configuration in ${source}: ${lines.join("; ")}`
}
