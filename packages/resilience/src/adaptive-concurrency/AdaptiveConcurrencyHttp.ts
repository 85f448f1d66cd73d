/**
 * Load shedding for `@effect/platform` HTTP servers: an
 * `AdaptiveConcurrency` limiter in front of an app or a route.
 *
 * {@link middleware} runs each request under the limiter. While fewer
 * requests than the current limit are running, a request goes on, and its
 * latency teaches the limit; beyond it the request is answered at once,
 * before the app reads its body or claims anything:
 *
 * | case | status | headers | body |
 * |---|---|---|---|
 * | admitted | the app's | the app's | the app's |
 * | limit reached | 503 | `Retry-After` (whole seconds, at least 1) | problem `temporary-reduced-capacity` (RFC 9457) |
 *
 * A response of the app with status 5xx (or what `isOverload` says) counts
 * as a drop and shrinks the limit; an error the app did not turn into a
 * response counts as a drop too; a request whose client went away is not
 * counted. Put it outermost on the routes it protects (before idempotency,
 * so a refused request claims no key), and leave cheap routes (health,
 * metrics) outside it.
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import type { AdaptiveConcurrency } from "./AdaptiveConcurrency.js"
import * as internal from "./internal/middleware.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface MiddlewareOptions {
  /**
   * The problem `type` URI of a refusal. Default {@link problemType}, the
   * draft-ietf-httpapi-ratelimit-headers type for capacity constraints.
   */
  readonly problemType?: string | undefined
  /** Whether a response of the app shows overload (a drop). Default: status ≥ 500. */
  readonly isOverload?: ((response: HttpServerResponse.HttpServerResponse) => boolean) | undefined
}

/**
 * `https://iana.org/assignments/http-problem-types#temporary-reduced-capacity`.
 *
 * @since 0.1.0
 * @category Responses
 */
export const problemType: "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity" =
  internal.temporaryReducedCapacity

/**
 * The middleware. Apply it to a route's handler, with `HttpRouter.use`, or
 * to a whole app.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer } from "effect"
 * import { AdaptiveConcurrency, AdaptiveConcurrencyHttp } from "@bulwark/resilience"
 *
 * const ServerLive = Layer.unwrapEffect(Effect.gen(function*() {
 *   const limiter = yield* AdaptiveConcurrency.make({ name: "orders", initialLimit: 32, minLimit: 8, maxLimit: 256 })
 *   const createOrder = Effect.as(Effect.sleep("20 millis"), HttpServerResponse.text("created", { status: 201 }))
 *   return HttpRouter.empty.pipe(
 *     HttpRouter.post("/orders", createOrder.pipe(AdaptiveConcurrencyHttp.middleware(limiter))),
 *     HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
 *     HttpServer.serve()
 *   )
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Middleware
 */
export const middleware: (
  limiter: AdaptiveConcurrency,
  options?: MiddlewareOptions
) => <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R> = internal.middleware

/**
 * The 503 refusal the middleware answers, for servers that call
 * `AdaptiveConcurrency.protect` themselves.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { HttpServerResponse } from "@effect/platform"
 * import { AdaptiveConcurrency, AdaptiveConcurrencyHttp } from "@bulwark/resilience"
 *
 * declare const limiter: AdaptiveConcurrency.AdaptiveConcurrency
 * declare const render: Effect.Effect<HttpServerResponse.HttpServerResponse>
 *
 * const page = render.pipe(
 *   AdaptiveConcurrency.protect(limiter),
 *   Effect.catchTag("ConcurrencyLimitError", (error) =>
 *     Effect.succeed(AdaptiveConcurrencyHttp.rejectedResponse(limiter, error.retryAfter)))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Responses
 */
export const rejectedResponse: (
  limiter: AdaptiveConcurrency,
  retryAfter: Duration.Duration,
  options?: { readonly problemType?: string | undefined }
) => HttpServerResponse.HttpServerResponse = internal.rejectedResponse
