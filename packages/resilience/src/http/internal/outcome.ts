/**
 * Pure helpers: the bounded outcome of a request (the `status` metric label,
 * the log's status and the span's `bulwark.http.outcome`), and the URL as
 * logs may show it.
 */
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as Cause from "effect/Cause"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"

/**
 * Outcomes that are not a status code. A request that got an answer is
 * labelled with its three-digit status; one that did not, with one of these.
 *
 * @internal
 */
export type Unanswered =
  | "timeout"
  | "connection_error"
  | "request_error"
  | "circuit_open"
  | "bulkhead_full"
  | "host_not_allowed"
  | "cancelled"
  | "error"

const hasTag = (u: unknown): u is { readonly _tag: string } =>
  typeof u === "object" && u !== null && "_tag" in u && typeof u._tag === "string"

const field = (u: unknown, key: string): unknown => (hasProperty(u, key) ? u[key] : undefined)

/** @internal */
export const outcomeOfError = (error: unknown): string => {
  if (!hasTag(error)) return "error"
  switch (error._tag) {
    case "TimeoutError":
    case "TimeoutException":
      return "timeout"
    case "CircuitOpenError":
      return "circuit_open"
    case "BulkheadFullError":
      return "bulkhead_full"
    case "HostNotAllowedError":
      return "host_not_allowed"
    case "RetriesExhausted":
      return outcomeOfError(field(error, "lastFailure"))
    case "Rejected": // the client's box for a refusal on its way through the retry
      return outcomeOfError(field(error, "error"))
    case "RequestError":
      return field(error, "reason") === "Transport" ? "connection_error" : "request_error"
    case "TransientError":
    case "TerminalError": {
      const status = field(error, "status")
      if (typeof status === "number") return String(status)
      const cause = field(error, "cause")
      return cause === undefined ? "error" : outcomeOfError(cause)
    }
    default:
      return "error"
  }
}

/** @internal */
export const outcomeOfExit = <E>(exit: Exit.Exit<{ readonly status: number }, E>): string => {
  if (Exit.isSuccess(exit)) return String(exit.value.status)
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) return outcomeOfError(failure.value)
  return Cause.isInterruptedOnly(exit.cause) ? "cancelled" : "error"
}

/** Whether an outcome is an answer (a status code). */
export const isAnswered = (outcome: string): boolean => /^[1-5][0-9][0-9]$/.test(outcome)

/**
 * The URL without its query string, fragment or credentials: query strings
 * carry tokens, ids and personal data that logs must not keep.
 *
 * @internal
 */
export const loggableUrl = (url: URL): string => `${url.origin}${url.pathname}`

/** Methods that are idempotent by definition (RFC 9110 §9.2.2): safe to repeat without a key. */
const IDEMPOTENT: ReadonlySet<HttpMethod> = new Set<HttpMethod>(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

/**
 * Whether a request may be sent more than once: an idempotent method, or a
 * request carrying an idempotency key; never a streamed body, which can only
 * be read once.
 *
 * @internal
 */
export const isRepeatable = (request: HttpClientRequest.HttpClientRequest, keyHeader: string): boolean =>
  request.body._tag !== "Stream" && (IDEMPOTENT.has(request.method) || request.headers[keyHeader] !== undefined)
