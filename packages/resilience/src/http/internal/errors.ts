/**
 * The resilient HTTP client's error, in a leaf module: the internals
 * construct it and `ResilientHttpClient.ts` re-exports it unchanged.
 */
import * as Data from "effect/Data"
import { TerminalTypeId } from "../../internal/failureErrors.js"

/**
 * The client does not take this host: it is not listed in `hosts`, the client
 * already knows `maxHosts` hosts, or the host cannot be a metric label.
 * Terminal: the same request will never be taken.
 *
 * @since 0.1.0
 * @category Errors
 */
export class HostNotAllowedError extends Data.TaggedError("HostNotAllowedError")<{
  readonly client: string
  readonly host: string
  readonly reason: "NotListed" | "TooManyHosts" | "InvalidHost"
  readonly maxHosts: number
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    switch (this.reason) {
      case "NotListed":
        return `HTTP client "${this.client}" does not call host "${this.host}": it is not in its hosts`
      case "TooManyHosts":
        return `HTTP client "${this.client}" already calls ${this.maxHosts} hosts (maxHosts); refused "${this.host}"`
      case "InvalidHost":
        return `HTTP client "${this.client}" cannot call host "${this.host}": not a valid host label`
    }
  }
}
