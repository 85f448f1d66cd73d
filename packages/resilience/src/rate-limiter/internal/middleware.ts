import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import { problem } from "../../internal/problem.js"
import type { Decision, Policy, RateLimitedError, RateLimiter } from "../RateLimiter.js"
import type { KeyFunction, MiddlewareOptions } from "../RateLimiterHttp.js"

/** Whole seconds, rounded up: a client waiting this long is never early. */
const seconds = (duration: Duration.Duration): number => Math.ceil(Duration.toMillis(duration) / 1000)

/** An sf-string (RFC 8941 §3.3.3): printable ASCII with `\` and `"` escaped. */
const sfString = (value: string): string => `"${value.replace(/[^\x20-\x7e]/g, "").replace(/[\\"]/g, "\\$&")}"`

/**
 * `RateLimit-Policy` (draft-ietf-httpapi-ratelimit-headers): quota `q` per window `w` seconds.
 *
 * @internal
 */
export const policyHeader = (name: string, policy: Policy): string =>
  `${sfString(name)};q=${policy.quota};w=${seconds(policy.window)}`

/**
 * `RateLimit`: remaining units `r` and seconds `t` until the quota is whole again.
 *
 * @internal
 */
export const rateLimitHeader = (name: string, remaining: number, reset: Duration.Duration): string =>
  `${sfString(name)};r=${remaining};t=${seconds(reset)}`

/** @internal */
export const headersOf = (
  name: string,
  policy: Policy,
  state: { readonly limit: number; readonly remaining: number; readonly reset: Duration.Duration }
): Record<string, string> => ({
  "ratelimit-policy": policyHeader(name, policy),
  "ratelimit": rateLimitHeader(name, state.remaining, state.reset),
  "x-ratelimit-limit": String(state.limit),
  "x-ratelimit-remaining": String(state.remaining),
  "x-ratelimit-reset": String(seconds(state.reset))
})

/** @internal */
export const rejectedResponse = (
  limiter: RateLimiter,
  error: RateLimitedError,
  options: { readonly policyName?: string; readonly problemType?: string } = {}
): HttpServerResponse.HttpServerResponse => {
  const name = options.policyName ?? limiter.name
  const problemType = options.problemType ?? "about:blank"
  const retryAfter = Math.max(1, seconds(error.retryAfter))
  const headers = {
    ...headersOf(name, limiter.policy, error),
    "retry-after": String(retryAfter)
  }
  return error.reason === "StoreUnavailable"
    ? problem(
      503,
      "Service Unavailable",
      `The rate limiter "${error.limiter}" cannot reach its store; retry after ${retryAfter} s.`,
      problemType,
      headers
    )
    : problem(
      429,
      "Too Many Requests",
      `Rate limit "${error.limiter}" exceeded: ${limiter.policy.quota} per ${
        seconds(limiter.policy.window)
      } s; retry after ${retryAfter} s.`,
      problemType,
      headers
    )
}

const invalidResponse = (error: InvalidOptionsError, problemType: string): HttpServerResponse.HttpServerResponse =>
  problem(400, "Bad Request", error.message, problemType, {})

/** @internal */
export const middleware = <R = never>(limiter: RateLimiter, options: MiddlewareOptions<R> = {}) => {
  const name = options.policyName ?? limiter.name
  const keyOf: KeyFunction<R> = options.key ?? byIp
  const costOf = options.cost
  const problemType = options.problemType ?? "about:blank"
  const refusal = { policyName: name, problemType }
  const addHeaders = (decision: Decision): Effect.Effect<void> => {
    const headers = headersOf(name, limiter.policy, decision)
    return HttpApp.appendPreResponseHandler((_request, response) =>
      Effect.succeed(HttpServerResponse.setHeaders(response, headers))
    )
  }
  return <E, R0>(app: HttpApp.Default<E, R0>): HttpApp.Default<E, R0 | R> =>
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) =>
        Effect.flatMap(keyOf(request), (key) =>
          Effect.matchEffect(limiter.consume(key, costOf === undefined ? 1 : costOf(request)), {
            // Headers go on through a pre-response handler, so that error responses made later carry them too.
            onSuccess: (decision) =>
              Effect.zipRight(addHeaders(decision), app),
            onFailure: (error) =>
              Effect.succeed(
                error._tag === "RateLimitedError"
                  ? rejectedResponse(limiter, error, refusal)
                  : invalidResponse(error, problemType)
              )
          }))
    )
}

// -----------------------------------------------------------------------------
// Key functions
// -----------------------------------------------------------------------------

/** @internal */
export const global: KeyFunction = () => Effect.succeed("global")

/** @internal */
export const byIp: KeyFunction = (request) => Effect.succeed(Option.getOrElse(request.remoteAddress, () => "unknown"))

/** @internal */
export const byHeader = <R = never>(header: string, fallback: KeyFunction<R> = byIp): KeyFunction<R> => {
  const name = header.toLowerCase()
  return (request) => {
    const value = request.headers[name]
    return value === undefined || value.length === 0 ? fallback(request) : Effect.succeed(value)
  }
}

/** @internal */
export const byEndpoint: KeyFunction = (request) => {
  const url = request.url
  const query = url.indexOf("?")
  return Effect.succeed(`${request.method} ${query === -1 ? url : url.slice(0, query)}`)
}

/** @internal */
export const combine = <R>(...keys: ReadonlyArray<KeyFunction<R>>): KeyFunction<R> => (request) =>
  Effect.map(Effect.all(keys.map((key) => key(request))), (parts) => parts.join("|"))
