/**
 * Rate limiting for `@effect/platform` HTTP servers.
 *
 * {@link middleware} takes units from a `RateLimiter` for every request,
 * keyed by a {@link KeyFunction} (global, per IP, per API key or user header,
 * per endpoint, or any combination). Allowed requests go on and their
 * responses, error responses included, carry the headers; refused ones are
 * answered at once:
 *
 * | case | status | headers | body |
 * |---|---|---|---|
 * | allowed (or delayed, in wait mode) | the app's | `RateLimit-Policy`, `RateLimit`, `X-RateLimit-*` | the app's |
 * | limit reached | 429 | the same + `Retry-After` | problem `quota-exceeded` (RFC 9457) |
 * | store unreachable, failing closed | 503 | `RateLimit-Policy`, `Retry-After` (no made-up `r`, `t`) | problem `temporary-reduced-capacity` |
 * | key empty, or cost invalid | 400 | none | problem `about:blank` |
 *
 * A key longer than 64 characters (a client's header, a long path) is
 * replaced by its SHA-256 before it reaches the limiter, so no client can make
 * it refuse a request as invalid or hold a huge key.
 *
 * Headers follow draft-ietf-httpapi-ratelimit-headers-10 in structured-field
 * syntax. Each policy is the limiter's sustained quota and window,
 * `RateLimit-Policy: "api";q=100;w=60`, whatever the algorithm; its state is
 * `RateLimit: "api";r=42;t=17`, `r` the units that may go now and `t` the
 * seconds until all of them are free again (for a token bucket or GCRA
 * `r` counts out of its burst; see `RateLimiter.Policy`). Seconds are
 * rounded up.
 *
 * Several limiters on one route (middlewares stacked, or one applied to a
 * router and another to a route) each add their member to both lists, in
 * the order they decided (outermost first); a limiter that runs twice is
 * listed once, with its latest state. The widespread `X-RateLimit-Limit`,
 * `X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds from now)
 * describe the policy that binds first: the fewest units remaining, and
 * among those the latest reset. A refusal carries every policy decided so
 * far, plus `Retry-After`. When a store failed (fail-closed, or fail-open)
 * its numbers are made up, so its policy is listed but it has no `RateLimit`
 * member, and there are no `X-RateLimit-*` headers.
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as headersInternal from "./internal/headers.js"
import * as internal from "./internal/middleware.js"
import type { Decision, Policy, RateLimitedError, RateLimiter } from "./RateLimiter.js"

/**
 * Picks the key a request is limited under.
 *
 * @since 0.1.0
 * @category Models
 */
export interface KeyFunction<R = never> {
  (request: HttpServerRequest.HttpServerRequest): Effect.Effect<string, never, R>
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface MiddlewareOptions<R = never> {
  /** Default {@link byIp}. */
  readonly key?: KeyFunction<R>
  /** Units a request takes. Default 1. */
  readonly cost?: (request: HttpServerRequest.HttpServerRequest) => number
  /** The policy name in the `RateLimit` headers. Default: the limiter's name. */
  readonly policyName?: string
  /**
   * The problem `type` URIs of refusals: one URI for every refusal (e.g.
   * `"about:blank"` for plain RFC 9457 refusals), or one per case. Default
   * {@link problemTypes}: `quotaExceeded` for a 429, `temporaryReducedCapacity`
   * for a 503, and `"about:blank"` for a 400.
   */
  readonly problemType?: string | ProblemTypes
}

/**
 * A problem `type` URI per refusal; each left out keeps its default. The
 * draft's types get the draft's `title`, any other URI the status phrase.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ProblemTypes {
  /** 429. Default {@link problemTypes}`.quotaExceeded`; the body then lists `violated-policies`. */
  readonly limitExceeded?: string
  /** 503, a store failing closed. Default {@link problemTypes}`.temporaryReducedCapacity`. */
  readonly storeUnavailable?: string
  /** 400, an unusable key or cost. Default `"about:blank"`. */
  readonly invalidRequest?: string
}

/**
 * The problem types draft-ietf-httpapi-ratelimit-headers-10 registers
 * (under RFC 9457's registry, `https://iana.org/assignments/http-problem-types`).
 * `abnormalUsageDetected` is for servers that refuse on patterns rather than
 * quotas; the middleware does not use it.
 *
 * @example
 * ```ts
 * import { RateLimiterHttp } from "@bulwark/resilience"
 *
 * // Plain RFC 9457 refusals:
 * const options = { problemType: "about:blank" }
 * // Or only the 429 changed:
 * const custom = { problemType: { limitExceeded: "https://example.com/problems/slow-down" } }
 * RateLimiterHttp.problemTypes.quotaExceeded // "https://iana.org/assignments/http-problem-types#quota-exceeded"
 * ```
 *
 * @since 0.1.0
 * @category Responses
 */
export const problemTypes: {
  readonly quotaExceeded: "https://iana.org/assignments/http-problem-types#quota-exceeded"
  readonly temporaryReducedCapacity: "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity"
  readonly abnormalUsageDetected: "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"
} = internal.problemTypes

/**
 * One policy a response advertises: its name, its quota per window, and
 * what its latest decision left (`state`), absent when unknown (the store's
 * failure policy decided): then the policy has no `RateLimit` member and the
 * response no `X-RateLimit-*` headers. Build one with {@link stateOf}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PolicyState {
  readonly name: string
  readonly policy: Pick<Policy, "quota" | "window">
  readonly state?: { readonly remaining: number; readonly reset: Duration.Duration } | undefined
}

/**
 * The middleware. Apply it with `HttpRouter.use`, `HttpServer.serve` or
 * directly to an app.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { RateLimiter, RateLimiterHttp } from "@bulwark/resilience"
 *
 * const ServerLive = Layer.unwrapEffect(Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "api",
 *     algorithm: RateLimiter.slidingWindowCounter({ limit: 100, window: "1 minute" })
 *   })
 *   return HttpRouter.empty.pipe(
 *     HttpRouter.get("/hello", HttpServerResponse.text("hello")),
 *     HttpRouter.use(RateLimiterHttp.middleware(limiter, { key: RateLimiterHttp.byHeader("x-api-key") })),
 *     HttpServer.serve()
 *   )
 * })).pipe(Layer.provide(RateLimiter.layerMemory()))
 * ```
 *
 * @since 0.1.0
 * @category Middleware
 */
export const middleware: <R = never>(
  limiter: RateLimiter,
  options?: MiddlewareOptions<R>
) => <E, R0>(app: HttpApp.Default<E, R0>) => HttpApp.Default<E, R0 | R> = internal.middleware

/**
 * The 429 (or 503, when the store fails closed) response for a refusal, with
 * its headers and problem body, for servers that limit outside the
 * middleware. `policies` are the other limiters this request passed (see
 * {@link stateOf}), advertised before the refusing one.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "@effect/platform"
 * import { RateLimiter, RateLimiterHttp } from "@bulwark/resilience"
 *
 * declare const perSecond: RateLimiter.RateLimiter
 * declare const hourly: RateLimiter.RateLimiter
 *
 * const handle = (key: string) =>
 *   Effect.gen(function*() {
 *     const first = yield* perSecond.consume(key)
 *     const passed = [RateLimiterHttp.stateOf(perSecond, first)]
 *     return yield* hourly.consume(key).pipe(
 *       Effect.map((second) =>
 *         HttpServerResponse.text("ok", {
 *           headers: RateLimiterHttp.headers([...passed, RateLimiterHttp.stateOf(hourly, second)])
 *         })
 *       ),
 *       Effect.catchTag("RateLimitedError", (error) =>
 *         Effect.succeed(RateLimiterHttp.rejectedResponse(hourly, error, { policies: passed }))
 *       )
 *     )
 *   })
 * ```
 *
 * @since 0.1.0
 * @category Responses
 */
export const rejectedResponse: (
  limiter: RateLimiter,
  error: RateLimitedError,
  options?: {
    readonly policyName?: string
    readonly problemType?: string | ProblemTypes
    readonly policies?: ReadonlyArray<PolicyState>
  }
) => HttpServerResponse.HttpServerResponse = internal.rejectedResponse

/**
 * The rate-limit headers (lower-case names) for several policies, in order,
 * or for one (`name`, `policy`, `state`; `state.limit`
 * is not used, `X-RateLimit-Limit` is the policy's quota).
 *
 * @since 0.1.0
 * @category Responses
 */
export const headers: {
  (policies: ReadonlyArray<PolicyState>): Record<string, string>
  (
    name: string,
    policy: Pick<Policy, "quota" | "window">,
    state: { readonly limit: number; readonly remaining: number; readonly reset: Duration.Duration }
  ): Record<string, string>
} = internal.headers

/**
 * The {@link PolicyState} a decision or a refusal advertises (none of a
 * degraded decision's made-up numbers). `policyName` defaults to the
 * limiter's name.
 *
 * @since 0.1.0
 * @category Responses
 */
export const stateOf: (
  limiter: RateLimiter,
  outcome: Decision | RateLimitedError,
  options?: { readonly policyName?: string | undefined }
) => PolicyState = headersInternal.stateOf

// -----------------------------------------------------------------------------
// Key functions
// -----------------------------------------------------------------------------

/**
 * One key for everyone: a global limit.
 *
 * @since 0.1.0
 * @category Keys
 */
export const global: KeyFunction = internal.global

/**
 * The client's address (`remoteAddress`; behind a proxy, apply
 * `HttpMiddleware.xForwardedHeaders` first). `"unknown"` when there is none.
 *
 * @since 0.1.0
 * @category Keys
 */
export const byIp: KeyFunction = internal.byIp

/**
 * A request header, such as an API key or a user id set by authentication;
 * requests without it fall back to `fallback` (default {@link byIp}).
 *
 * @since 0.1.0
 * @category Keys
 */
export const byHeader: <R = never>(header: string, fallback?: KeyFunction<R>) => KeyFunction<R> = internal.byHeader

/**
 * Method and path, without the query: a limit per endpoint. The path is the
 * concrete one (`/users/1` and `/users/2` are two keys), not the route's
 * pattern: the middleware runs before the router matches.
 *
 * @since 0.1.0
 * @category Keys
 */
export const byEndpoint: KeyFunction = internal.byEndpoint

/**
 * Several keys joined with `|`, e.g. per endpoint and per user.
 *
 * @example
 * ```ts
 * import { RateLimiterHttp } from "@bulwark/resilience"
 *
 * const perUserPerEndpoint = RateLimiterHttp.combine(RateLimiterHttp.byEndpoint, RateLimiterHttp.byHeader("x-user-id"))
 * ```
 *
 * @since 0.1.0
 * @category Keys
 */
export const combine: <R>(...keys: ReadonlyArray<KeyFunction<R>>) => KeyFunction<R> = internal.combine
