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
 * | limit reached | 429 | the same + `Retry-After` | `application/problem+json` (RFC 9457) |
 * | store unreachable, failing closed | 503 | the same + `Retry-After` | `application/problem+json` |
 * | key or cost invalid | 400 | none | `application/problem+json` |
 *
 * Headers follow draft-ietf-httpapi-ratelimit-headers in structured-field
 * syntax, `RateLimit-Policy: "api";q=100;w=60` and `RateLimit: "api";r=42;t=17`,
 * plus the widespread `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
 * `X-RateLimit-Reset` (seconds from now). Seconds are rounded up.
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as internal from "./internal/middleware.js"
import type { Policy, RateLimitedError, RateLimiter } from "./RateLimiter.js"

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
  /** The problem `type` URI of refusals. Default `"about:blank"`. */
  readonly problemType?: string
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
 * its headers and problem body, for servers that limit outside the middleware.
 *
 * @since 0.1.0
 * @category Responses
 */
export const rejectedResponse: (
  limiter: RateLimiter,
  error: RateLimitedError,
  options?: { readonly policyName?: string; readonly problemType?: string }
) => HttpServerResponse.HttpServerResponse = internal.rejectedResponse

/**
 * The rate-limit headers for a decision (lower-case names).
 *
 * @since 0.1.0
 * @category Responses
 */
export const headers: (
  name: string,
  policy: Policy,
  state: { readonly limit: number; readonly remaining: number; readonly reset: Duration.Duration }
) => Record<string, string> = internal.headersOf

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
 * Method and path, without the query: a limit per endpoint.
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
