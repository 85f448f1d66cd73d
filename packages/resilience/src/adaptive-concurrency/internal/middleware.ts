import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { problem } from "../../internal/problem.js"
import type * as AdaptiveConcurrency from "../AdaptiveConcurrency.js"
import type { MiddlewareOptions } from "../AdaptiveConcurrencyHttp.js"
import { ConcurrencyLimitError } from "./errors.js"

/** @internal */
export const temporaryReducedCapacity = "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"

const TITLE = "Request cannot be satisfied due to temporary server capacity constraints"

/** @internal */
export const isOverload = (response: HttpServerResponse.HttpServerResponse): boolean => response.status >= 500

/** @internal */
export const rejectedResponse = (
  limiter: AdaptiveConcurrency.AdaptiveConcurrency,
  retryAfter: Duration.Duration,
  options: { readonly problemType?: string | undefined } = {}
): HttpServerResponse.HttpServerResponse => {
  const seconds = Math.max(1, Math.ceil(Duration.toSeconds(retryAfter)))
  const type = options.problemType ?? temporaryReducedCapacity
  return problem(
    503,
    type === temporaryReducedCapacity ? TITLE : "Service Unavailable",
    `The service is at its concurrency limit ("${limiter.name}"); retry after ${seconds} s.`,
    type,
    { "retry-after": String(seconds) }
  )
}

const isRefusal = (u: unknown): u is ConcurrencyLimitError => u instanceof ConcurrencyLimitError

/** @internal */
export const middleware = (limiter: AdaptiveConcurrency.AdaptiveConcurrency, options: MiddlewareOptions = {}) => {
  const overload = options.isOverload ?? isOverload
  const classify = (exit: Exit.Exit<unknown, unknown>): AdaptiveConcurrency.Outcome => {
    if (Exit.isSuccess(exit)) {
      return HttpServerResponse.isServerResponse(exit.value) && overload(exit.value) ? "drop" : "sample"
    }
    // A client that hung up says nothing about the service; an error the app did not answer is a 500.
    return Cause.isInterruptedOnly(exit.cause) ? "ignore" : "drop"
  }
  // Built once: a refusal must cost as little as possible, since refusing is what the service does when overloaded.
  let refused: HttpServerResponse.HttpServerResponse | undefined
  const refusal = (error: ConcurrencyLimitError) =>
    Effect.succeed(refused ??= rejectedResponse(limiter, error.retryAfter, options))
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    limiter.protect(app, { classify }).pipe(
      Effect.catchIf(isRefusal, refusal)
    )
}
