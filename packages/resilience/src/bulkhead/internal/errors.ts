/**
 * The bulkhead's errors, in a leaf module: the internals construct them and
 * `Bulkhead.ts` re-exports them unchanged.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import { RejectionTypeId, TerminalTypeId, TransientTypeId } from "../../internal/failureErrors.js"
import type { FullReason } from "../Bulkhead.js"

/**
 * A bulkhead refused a call; the call never ran. Transient (try again later)
 * and a rejection (circuit breakers do not count it as a failure of the
 * dependency). Carries the bulkhead's name and limits.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * declare const bulkhead: Bulkhead.Bulkhead
 * declare const callPayments: Effect.Effect<string>
 *
 * const answer = callPayments.pipe(
 *   Bulkhead.protect(bulkhead),
 *   Effect.catchTag("BulkheadFullError", (error) => Effect.succeed(`busy (${error.reason})`))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class BulkheadFullError extends Data.TaggedError("BulkheadFullError")<{
  readonly bulkhead: string
  readonly reason: FullReason
  readonly maxConcurrent: number
  readonly maxQueued: number
  readonly maxWait: Duration.Duration
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  readonly [RejectionTypeId]: RejectionTypeId = RejectionTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return fullMessage(this)
  }
}

/**
 * A {@link Registry} has no bulkhead by that name. Terminal: it is a
 * configuration mistake. Lists the names it has.
 *
 * @since 0.1.0
 * @category Errors
 */
export class BulkheadNotFoundError extends Data.TaggedError("BulkheadNotFoundError")<{
  readonly name: string
  readonly known: ReadonlyArray<string>
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return notFoundMessage(this)
  }
}

const permits = (n: number): string => `${n} permit${n === 1 ? "" : "s"}`

const queue = (n: number): string => n === 0 ? "no queue" : n === Infinity ? "an unbounded queue" : `a queue of ${n}`

const fullMessage = (self: BulkheadFullError): string => {
  const limits = `(${permits(self.maxConcurrent)}, ${queue(self.maxQueued)})`
  return self.reason === "QueueFull"
    ? self.maxQueued === 0
      ? `Bulkhead "${self.bulkhead}" is full: every permit is in use and it does not queue ${limits}`
      : `Bulkhead "${self.bulkhead}" is full: every permit is in use and the queue is full ${limits}`
    : `Bulkhead "${self.bulkhead}" is full: no permit came free within ${
      Duration.format(self.maxWait)
    } of waiting ${limits}`
}

const notFoundMessage = (self: BulkheadNotFoundError): string =>
  `No bulkhead named "${self.name}" in the registry (known: ${
    self.known.length === 0 ? "none" : self.known.map((name) => `"${name}"`).join(", ")
  })`
