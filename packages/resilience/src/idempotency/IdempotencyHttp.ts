/**
 * Idempotency keys for `@effect/platform` HTTP servers
 * (draft-ietf-httpapi-idempotency-key-header, with Stripe's conventions).
 *
 * A client sends `Idempotency-Key: <key>` with a POST or PATCH; the first
 * request with a key runs, and every repeat of the same request gets the
 * first one's answer again instead of running twice. Built on
 * `Idempotency.run`, so it runs on whatever `IdempotencyStore` is provided
 * (in memory, or PostgreSQL shared by many server processes).
 *
 * **Quick start.** Give every route the key's owner (`partition`), taken from
 * the principal your authentication established, so that a key is never
 * shared between callers (as Stripe scopes keys per account):
 *
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Context, Effect } from "effect"
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * // provided by your authentication middleware (applied after this one, so it runs first)
 * class Principal extends Context.Tag("app/Principal")<Principal, { readonly accountId: string }>() {}
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.post("/payments", Effect.succeed(HttpServerResponse.text("charged", { status: 201 }))),
 *   HttpRouter.use(IdempotencyHttp.middleware({
 *     partition: () => Effect.map(Principal, (principal) => principal.accountId)
 *   }))
 * )
 * ```
 *
 * A route without `partition` has one namespace for every caller: another
 * caller who sends the same key and body receives the first caller's stored
 * answer. Such a route logs one warning, on its first keyed request;
 * `partition: IdempotencyHttp.globalPartition` declares a shared namespace
 * deliberately and silences it.
 *
 * | case | answer |
 * |---|---|
 * | first request with a key | the handler's response (stored when it is final, see below) |
 * | same key, same request, completed | the stored status, headers and body, byte for byte, plus `Idempotent-Replayed: true` |
 * | same key while the first is still running | 409 + `Retry-After` (or, with `waitForInFlight`, wait and replay) |
 * | same key, different request (method, path, query or body) | 422 |
 * | key missing on a route that requires one | 400 |
 * | key empty, longer than 255 characters, or not printable ASCII; a list (sent twice), parameters, an unbalanced quote | 400 |
 * | the store is unreachable | 503 + `Retry-After` |
 * | a request body over `maxBodyBytes` (default 1 MiB) | 413, before any key is claimed; the rest of the body is read into nothing for at most 2 s (lingering close), then the connection closes |
 * | an answer larger than `maxStoredBytes` (default 1 MiB), streamed or not | sent to the first caller as it is, not stored; warning logged once per route |
 * | a repeat of a request whose answer was too large to store (`maxStoredBytes`) | 500 |
 *
 * Refusals are `application/problem+json` (RFC 9457) and are never stored.
 * The request that ran the handler always gets the handler's answer, also
 * when it could not be stored (too large, or the store went away after the
 * handler ran): its side effects happened, and a refusal would only invite a
 * retry that repeats them.
 *
 * **What is stored.** A response is final, stored and replayed, when it is a
 * 2xx, 3xx or a 4xx other than 408 and 429 (what the `Failure` classifier
 * calls terminal). A 5xx, 408 or 429 response, a transient or unclassified
 * failure, a defect and an interruption **release** the key instead: nothing
 * is stored, and the client's retry with the same key runs the handler again
 * (a 503 followed by a successful retry charges once). `storeAll: true`
 * stores every response, 5xx included (Stripe's rule, for handlers whose
 * failures may have had side effects that a re-run must not repeat).
 *
 * **Bounded memory.** A request body is read chunk by chunk up to
 * `maxBodyBytes` (or the server's `HttpIncomingMessage.MaxBodySize`, when
 * smaller): a `Content-Length` over it is answered 413 without reading the
 * body, and a chunked body as soon as it crosses it. A 413 claims no key and
 * is never stored, so the key is free for a request that fits. A response
 * body is read for storing only up to what `maxStoredBytes` can hold: a
 * streamed body that goes on past it is passed through to the first caller as
 * it streams (the part read ahead, then the rest), and the key is completed
 * as "too large" rather than released, because the handler's side effects
 * happened: repeats answer 500 until the key expires, as for any answer over
 * `maxStoredBytes`.
 *
 * **Identity.** A key belongs to `(scope, partition)`: the scope is the bounded
 * route identity (`"POST /accounts/:id/payments"`, also the metric label) and
 * the partition is the key's owner (a tenant or user, from a header or the
 * auth context), so one client can never replay another's answer. The
 * **fingerprint** is a SHA-256 of the method, the scope, the concrete path
 * and query, and the body (canonical JSON for JSON bodies, the raw bytes
 * otherwise).
 *
 * **Stored headers.** Everything the handler set except hop-by-hop headers,
 * `content-length`, `date` and cookies (`Set-Cookie` is replayed only with
 * `storeCookies: true`: a replay goes to whoever holds the key). Headers added
 * by outer middleware are not stored; that middleware adds them again.
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpMethod from "@effect/platform/HttpMethod"
import type * as HttpServerError from "@effect/platform/HttpServerError"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Schema from "effect/Schema"
import type { IdempotencyStore } from "./IdempotencyStore.js"
import * as internal from "./internal/httpMiddleware.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * Picks the key's owner from a request: a tenant or user id. It may fail (an
 * unauthenticated request), and the failure passes through unchanged.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PartitionFunction<Req, E = never, R = never> {
  (request: Req): Effect.Effect<string, E, R>
}

/**
 * Options shared by {@link middleware} and {@link handler}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface CommonOptions {
  /** Whether a request without a key is refused (400). Default `true`; `false` runs it without idempotency. */
  readonly required?: boolean
  /** The scope. Default: the method and the route pattern (`"POST /payments/:id"`), or `"<METHOD> *"` outside a router. */
  readonly scope?: string
  /** How long a claim holds without a heartbeat. Default 30 seconds (`Idempotency.defaults`). */
  readonly lease?: Duration.DurationInput
  /** How long a stored answer is replayed. Default 24 hours. */
  readonly ttl?: Duration.DurationInput
  /** Wait up to this long for an in-flight request with the same key, then replay its answer. Default: 409 at once. */
  readonly waitForInFlight?: Duration.DurationInput
  /** Store every outcome, 5xx and defects included (Stripe's rule). Default `false`. */
  readonly storeAll?: boolean
  /**
   * The largest stored answer in bytes (of its JSON encoding, body in base64). Default 1 MiB. A larger answer is
   * sent to the first caller but not stored, and repeats answer 500; the middleware never buffers more of a
   * response body than fits (a streamed body over it is passed through as it streams).
   */
  readonly maxStoredBytes?: number
  /** The problem `type` URI of refusals. Default `"about:blank"`. */
  readonly problemType?: string
  /**
   * Runs the handler and the stored answer's completion in one transaction of the store's database: the handler's
   * SQL writes commit with the answer (one commit instead of two) and roll back when the answer is not stored (a
   * 5xx, a defect, a lost lease). See `Idempotency.Options.transactional`. Default `false`.
   */
  readonly transactional?: boolean
}

/**
 * Options of {@link middleware}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface MiddlewareOptions<EP = never, RP = never> extends CommonOptions {
  /** The methods that take keys; other requests pass through untouched. Default `["POST", "PATCH"]`. */
  readonly methods?: ReadonlyArray<HttpMethod.HttpMethod>
  /**
   * The key's owner: the authenticated principal (a tenant, account or user), so that a caller never receives
   * another caller's answer. Default: none, one namespace for every caller, reported by a warning on the route's
   * first keyed request; {@link globalPartition} declares that deliberately (no warning).
   */
  readonly partition?: PartitionFunction<HttpServerRequest.HttpServerRequest, EP, RP>
  /**
   * The largest request body read, in bytes, of a keyed request: a larger one is answered 413 (problem+json; the
   * rest is then read into nothing for at most 2 s before the connection closes) before any key is claimed, without being read (a `Content-Length` over the limit) or as
   * soon as it crosses the limit (a chunked body). The server's `HttpIncomingMessage.MaxBodySize`, when smaller,
   * wins. Requests without a key are not read here (with `required: false` they reach the route as they are).
   * Memory held for bodies is at most the keyed uploads in progress × this limit: bound their number in front
   * (a rate limiter or concurrency limit, applied outside this middleware). Default 1 MiB, at most 1 GiB.
   */
  readonly maxBodyBytes?: number
  /** Store and replay cookies (`Set-Cookie`). Default `false`. */
  readonly storeCookies?: boolean
  /** Response headers never stored nor replayed (case-insensitive), on top of the hop-by-hop ones. */
  readonly excludeHeaders?: ReadonlyArray<string>
}

/**
 * What an `HttpApi` handler receives: at least the server request.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ApiRequest {
  readonly request: HttpServerRequest.HttpServerRequest
  readonly payload?: unknown
}

/**
 * Options of {@link handler}: the endpoint's success and error schemas say
 * how an answer is stored (the endpoint encodes the replayed value exactly as
 * it encoded the first one).
 *
 * @since 0.1.0
 * @category Models
 */
export interface HandlerOptions<A, AI, E, EI, Req, EP = never, RP = never> extends CommonOptions {
  /** The endpoint's success schema (or one encoding to the same JSON). */
  readonly success: Schema.Schema<A, AI>
  /** The endpoint's error schema; `Schema.Never` when it declares none. */
  readonly failure: Schema.Schema<E, EI>
  /**
   * The key's owner, e.g. from the user an `HttpApiMiddleware` provided. Default: none (one namespace for every
   * caller, reported by a warning on the endpoint's first keyed request; {@link globalPartition} declares it).
   */
  readonly partition?: PartitionFunction<Req, EP, RP>
  /**
   * What the fingerprint hashes instead of the body. Needed for multipart
   * payloads, whose raw bytes the endpoint has already consumed. Default: the
   * raw body.
   */
  readonly fingerprintBody?: (request: Req) => string | Uint8Array
}

// -----------------------------------------------------------------------------
// Execution
// -----------------------------------------------------------------------------

// Declared in `internal/tags.ts`, a leaf the internals import.
export { CurrentExecution } from "./internal/tags.js"

// -----------------------------------------------------------------------------
// Middleware
// -----------------------------------------------------------------------------

/**
 * The middleware for `HttpRouter` routes and `HttpApp`s. Applied with
 * `HttpRouter.use`, it wraps each route, so the scope is the route pattern.
 * Needs an `IdempotencyStore`.
 *
 * @example
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerRequest, HttpServerResponse } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import { IdempotencyHttp } from "@bulwark/resilience"
 * import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
 *
 * const PaymentRequest = Schema.Struct({ amount: Schema.Number })
 * declare const charge: (request: typeof PaymentRequest.Type) => Effect.Effect<{ readonly id: string }>
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.post("/payments", Effect.gen(function*() {
 *     const body = yield* HttpServerRequest.schemaBodyJson(PaymentRequest)
 *     return yield* HttpServerResponse.json(yield* charge(body), { status: 201 })
 *   })),
 *   HttpRouter.use(IdempotencyHttp.middleware({
 *     partition: IdempotencyHttp.partitionByHeader("x-account-id")
 *   }))
 * )
 * const ServerLive = HttpServer.serve(app).pipe(Layer.provide(SqlIdempotencyStore.layer()))
 * ```
 *
 * @since 0.1.0
 * @category Middleware
 */
export const middleware: <EP = never, RP = never>(
  options?: MiddlewareOptions<EP, RP>
) => <E, R>(
  app: HttpApp.Default<E, R>
) => HttpApp.Default<E | EP | HttpServerError.RequestError, R | RP | IdempotencyStore> = internal.middleware

/**
 * The `HttpApi` variant: wraps one endpoint's handler (read the execution
 * with {@link CurrentExecution}). The handler's typed
 * success and failure are stored with the endpoint's schemas and replayed as
 * values, which the endpoint encodes exactly as the first time; a replay also
 * carries `Idempotent-Replayed: true`. Failures whose status annotation
 * (`HttpApiSchema.annotations({ status })`) is a terminal 4xx, or that carry the
 * terminal brand, are stored; the rest release the key. Refusals (400, 409,
 * 422, 503) are sent as problem responses without being declared errors of
 * the endpoint.
 *
 * @example
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
 * import { Effect, Schema } from "effect"
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * class CardDeclined extends Schema.TaggedError<CardDeclined>()(
 *   "CardDeclined",
 *   { reason: Schema.String },
 *   HttpApiSchema.annotations({ status: 402 }) // a terminal 4xx: stored and replayed
 * ) {}
 * const Amount = Schema.Struct({ amount: Schema.Number })
 * const Payment = Schema.Struct({ id: Schema.String, amount: Schema.Number })
 * const Api = HttpApi.make("api").add(HttpApiGroup.make("payments").add(
 *   HttpApiEndpoint.post("create", "/payments").setPayload(Amount).addSuccess(Payment).addError(CardDeclined)
 * ))
 * declare const charge: (payment: typeof Amount.Type) => Effect.Effect<typeof Payment.Type, CardDeclined>
 *
 * const PaymentsLive = HttpApiBuilder.group(Api, "payments", (handlers) =>
 *   handlers.handle(
 *     "create",
 *     IdempotencyHttp.handler(
 *       { success: Payment, failure: CardDeclined },
 *       ({ payload }) => charge(payload)
 *     )
 *   ))
 * ```
 *
 * @since 0.1.0
 * @category Middleware
 */
export const handler: <A, AI, E, EI, Req extends ApiRequest, R, EP = never, RP = never>(
  options: HandlerOptions<A, AI, E, EI, Req, EP, RP>,
  handle: (request: Req) => Effect.Effect<A, E, R>
) => (request: Req) => Effect.Effect<A, E | EP, R | RP | IdempotencyStore> = internal.handler

// -----------------------------------------------------------------------------
// Partitions
// -----------------------------------------------------------------------------

/**
 * The partition from a request header (e.g. a tenant id set by an
 * authenticating proxy in front of the service); `""` when the header is
 * absent. Only for headers a client cannot set itself: prefer the principal
 * your authentication established (see the module's quick start).
 *
 * @example
 * ```ts
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * // behind a gateway that authenticates the caller and sets x-account-id
 * const idempotent = IdempotencyHttp.middleware({ partition: IdempotencyHttp.partitionByHeader("x-account-id") })
 * ```
 *
 * @since 0.1.0
 * @category Partitions
 */
export const partitionByHeader: (
  header: string
) => PartitionFunction<HttpServerRequest.HttpServerRequest> = internal.partitionByHeader

/**
 * One namespace for every caller, declared: the same key and body from any
 * caller is the same operation (a single-tenant service, or an internal one
 * whose callers share keys on purpose). Without a partition function the
 * keys are global too, but the route is reported by a warning.
 *
 * @example
 * ```ts
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * const idempotent = IdempotencyHttp.middleware({ partition: IdempotencyHttp.globalPartition })
 * ```
 *
 * @since 0.1.0
 * @category Partitions
 */
export const globalPartition: PartitionFunction<unknown> = internal.globalPartition

// -----------------------------------------------------------------------------
// Pieces
// -----------------------------------------------------------------------------

/**
 * The result of reading an `Idempotency-Key` header value.
 *
 * @since 0.1.0
 * @category Keys
 */
export type KeyCheck =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Invalid"; readonly reason: string }
  | { readonly _tag: "Valid"; readonly key: string }

/**
 * Reads an `Idempotency-Key` header value: a bare token or an RFC 8941
 * sf-string (`"…"`), 1 to 255 printable ASCII characters.
 *
 * @example
 * ```ts
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * IdempotencyHttp.parseKey("\"8e03978e-40d5\"") // { _tag: "Valid", key: "8e03978e-40d5" }
 * IdempotencyHttp.parseKey("") // { _tag: "Invalid", reason: "The Idempotency-Key header is empty." }
 * ```
 *
 * @since 0.1.0
 * @category Keys
 */
export const parseKey: (header: string | undefined) => KeyCheck = internal.parseKey

/**
 * The fingerprint of a request: SHA-256 (hex) of the method, the scope, the
 * path and query, and the body (canonical JSON when `contentType` is JSON and
 * the body parses, the raw bytes otherwise).
 *
 * @since 0.1.0
 * @category Fingerprints
 */
export const fingerprint: (input: {
  readonly method: string
  readonly scope: string
  readonly target: string
  readonly contentType: string | undefined
  readonly body: Uint8Array
}) => string = internal.fingerprint

/**
 * Canonical JSON: object members sorted by key, no insignificant whitespace,
 * string escapes normalised, numbers kept digit for digit. Throws on text that
 * is not one JSON value.
 *
 * @example
 * ```ts
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * IdempotencyHttp.canonicalJson(`{ "b": 1, "a": [true, "\\u0041"] }`) // '{"a":[true,"A"],"b":1}'
 * ```
 *
 * @since 0.1.0
 * @category Fingerprints
 */
export const canonicalJson: (text: string) => string = internal.canonicalJson
