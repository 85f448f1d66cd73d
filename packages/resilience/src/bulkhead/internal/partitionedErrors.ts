/**
 * The partitioned bulkhead's error, in a leaf module: the internals construct
 * it and `PartitionedBulkhead.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import { RejectionTypeId, TransientTypeId } from "../../internal/failureErrors.js"
import type { FullLimit, FullReason, Limits } from "../PartitionedBulkhead.js"

/**
 * A partitioned bulkhead refused a call; the call never ran. Transient (try
 * again later) and a rejection (circuit breakers do not count it as a
 * failure of the dependency), like `BulkheadFullError`. Carries the
 * bulkhead's name, why (`reason`), which limit held the call back (`limit`:
 * the key's, the shared total's, or the number of keys) and the limits.
 *
 * It does not carry the key: errors end up in logs, spans and problem
 * bodies, and a key often identifies a customer. The caller has the key at
 * hand where it catches the error.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PartitionedBulkhead } from "@bulwark/resilience"
 *
 * declare const perTenant: PartitionedBulkhead.PartitionedBulkhead
 * declare const runReport: Effect.Effect<string>
 *
 * // This tenant is busy: 429; everyone is: 503.
 * const answer = runReport.pipe(
 *   PartitionedBulkhead.protect(perTenant, "acme"),
 *   Effect.catchTag("PartitionedBulkheadFullError", (error) =>
 *     Effect.succeed(error.limit === "perKey" ? "429 Too Many Requests" : "503 Service Unavailable"))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class PartitionedBulkheadFullError extends Data.TaggedError("PartitionedBulkheadFullError")<{
  readonly bulkhead: string
  readonly reason: FullReason
  readonly limit: FullLimit
  readonly limits: Limits
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

const permits = (n: number): string => `${n} permit${n === 1 ? "" : "s"}`

const queue = (n: number): string => n === 0 ? "no queue" : n === Infinity ? "an unbounded queue" : `a queue of ${n}`

const keys = (n: number): string => `${n} key${n === 1 ? "" : "s"}`

const held = (self: PartitionedBulkheadFullError): string => {
  switch (self.limit) {
    case "perKey":
      return "every permit of its key is in use"
    case "total":
      return `every shared permit is in use (${permits(self.limits.total?.maxConcurrent ?? Infinity)} in all)`
    case "maxKeys":
      return `it holds its maxKeys (${keys(self.limits.maxKeys)}), each with a call running or queued`
  }
}

const fullMessage = (self: PartitionedBulkheadFullError): string => {
  const { perKey } = self.limits
  const limits = `(${permits(perKey.maxConcurrent)} and ${queue(perKey.maxQueued)} per key)`
  const bulkhead = `Partitioned bulkhead "${self.bulkhead}"`
  switch (self.reason) {
    case "TooManyKeys":
      return `${bulkhead} takes no new key: ${held(self)}`
    case "QueueFull":
      return perKey.maxQueued === 0
        ? `${bulkhead} is full: ${held(self)} and it does not queue ${limits}`
        : `${bulkhead} is full: ${held(self)} and the key's queue is full ${limits}`
    case "MaxWait":
      return `${bulkhead} is full: ${held(self)} and no permit came within ${
        Duration.format(perKey.maxWait)
      } of waiting ${limits}`
  }
}
