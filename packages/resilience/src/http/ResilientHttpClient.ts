/**
 * An `@effect/platform` `HttpClient` with Bulwark's defences around every call,
 * provided as a service of its own (the client, its request methods, and the
 * admin functions beside it; see {@link ResilientHttpClient}).
 *
 * ```text
 * call ─▶ Idempotency-Key (POST, PATCH: one per call) ─▶ overall timeout ─▶ retry (transient only, Retry-After)
 *        └▶ per attempt: circuit breaker (per host) ─▶ bulkhead (per host) ─▶ attempt timeout ─▶ request
 * ```
 *
 * - **Per host**: each host gets its own circuit breaker and bulkhead, made on
 *   first use (named `<client>/<host>`, e.g. `http/payments.internal`). The
 *   hosts are bounded: list them in `hosts` (other hosts are refused), or let
 *   the client take the first `maxHosts` (default 32). A host is a metric label
 *   and a breaker for the client's life, so it must never come from input.
 * - **Retries only what is safe**: answers the current `Failure` classifier
 *   calls transient (408, 429, 500, 502, 503, 504 by default), dropped
 *   connections and attempt timeouts are retried with `Retry.retry` (backoff,
 *   jitter, at least the server's `Retry-After`); other answers are not. Only
 *   repeatable requests are retried: idempotent methods (GET, HEAD, OPTIONS,
 *   PUT, DELETE) and requests carrying an `Idempotency-Key`; a streamed body is
 *   sent once.
 * - **Idempotency keys**: POST and PATCH get one `Idempotency-Key` per call
 *   (through `IdempotencyHttpClient.attachKey`), the same on every attempt,
 *   so a server with `IdempotencyHttp` runs the operation once. GET never gets
 *   one; a key the caller set is kept.
 * - **Retry outside the breaker**: every attempt is one call of the host's
 *   breaker (a struggling host opens it after a few requests, not a few logical
 *   calls), and an open breaker or a full bulkhead answers at once with
 *   `CircuitOpenError` / `BulkheadFullError`: they are not retried.
 * - **Typed outcome**: the response for 1xx–3xx; `TerminalError` (its `cause`
 *   the response) for a 4xx or another terminal answer; `RetriesExhausted`
 *   (carrying the last `TransientError` or `TimeoutError`) when transient
 *   failures outlasted the policy; `CircuitOpenError` or `BulkheadFullError`
 *   when a defence refused; `TimeoutError` when the whole call ran out of time;
 *   `HostNotAllowedError` for a host the client does not take.
 * - **Observable**: one log line per call (method, URL without its query
 *   string, status, duration, attempts); `http_client_requests_total{method,host,status}`
 *   and `http_client_request_duration_seconds{method,host}` per attempt; a span
 *   per call and per attempt (see `Tracing`).
 *
 * The timeouts cover a request until its response headers arrive (and the
 * draining of a retried answer's body): read a body you expect to be slow
 * inside a timeout of your own.
 *
 * @example
 * ```ts
 * import { NodeHttpClient } from "@effect/platform-node"
 * import * as HttpBody from "@effect/platform/HttpBody"
 * import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
 * import { Effect, Schema } from "effect"
 * import { ResilientHttpClient } from "@bulwark/resilience"
 *
 * const Charge = Schema.Struct({ id: Schema.String })
 *
 * const charge = Effect.gen(function*() {
 *   const client = yield* ResilientHttpClient.ResilientHttpClient
 *   const response = yield* client.post("https://payments.internal/charges", {
 *     body: HttpBody.unsafeJson({ amount: 1200 })
 *   })
 *   return yield* HttpClientResponse.schemaBodyJson(Charge)(response)
 * })
 *
 * const runnable = charge.pipe(
 *   Effect.provide(ResilientHttpClient.layer({
 *     hosts: { "payments.internal": {} },
 *     retry: { maxAttempts: 3 },
 *     attemptTimeout: "2 seconds",
 *     timeout: "10 seconds"
 *   })),
 *   Effect.provide(NodeHttpClient.layerUndici)
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Bulkhead from "../bulkhead/Bulkhead.js"
import type * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import type { InvalidOptionsError, RetriesExhausted, TerminalError, TransientError } from "../Failure.js"
import type * as IdempotencyHttpClient from "../idempotency/IdempotencyHttpClient.js"
import type * as Retry from "../retry/Retry.js"
import type * as Timeout from "../timeout/Timeout.js"
import * as internal from "./internal/client.js"
import * as config from "./internal/config.js"
import { HostNotAllowedError } from "./internal/errors.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: typeof internal.TypeId = internal.TypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TypeId = typeof TypeId

/**
 * A resilient HTTP client, the service {@link layer} provides: the
 * `HttpClient` itself (`client`, with the typed
 * {@link ResilientHttpClient.Error} channel), its request methods (`get`,
 * `post`, `execute`… are `client`'s), and what an admin route needs.
 *
 * The admin functions sit beside the client, not on it: pipe `client`
 * through any `HttpClient` combinator (`HttpClient.mapRequest`,
 * `HttpClient.filterStatusOk`…) and `hosts` and `breaker` still answer for
 * the client that results.
 *
 * @example
 * ```ts
 * import * as HttpClient from "@effect/platform/HttpClient"
 * import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
 * import { Effect } from "effect"
 * import { ResilientHttpClient } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const resilient = yield* ResilientHttpClient.ResilientHttpClient
 *   const inventory = resilient.client.pipe(HttpClient.mapRequest(HttpClientRequest.prependUrl("http://inventory.internal")))
 *   const response = yield* inventory.get("/items/42")
 *   const hosts = yield* resilient.hosts // the hosts `inventory` called, with their breakers
 *   return { status: response.status, hosts }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface ResilientHttpClient extends
  Pick<
    HttpClient.HttpClient.With<ResilientHttpClient.Error>,
    "execute" | "get" | "head" | "post" | "patch" | "put" | "del" | "options"
  >
{
  readonly [TypeId]: TypeId
  /** The client as an `HttpClient`, to pipe through `HttpClient` combinators. */
  readonly client: HttpClient.HttpClient.With<ResilientHttpClient.Error>
  /** The client's name: the `policy` of its retries, the prefix of its breakers and bulkheads. */
  readonly name: string
  /** Every host used so far, with its breaker's state and its bulkhead's counts. */
  readonly hosts: Effect.Effect<ReadonlyArray<ResilientHttpClient.HostStatus>>
  /** The breaker of a host already used (to `isolate` it during maintenance, say); `None` if not used or disabled. */
  readonly breaker: (host: string) => Effect.Effect<Option.Option<CircuitBreaker.CircuitBreaker>>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace ResilientHttpClient {
  /**
   * What a failure's `cause` holds: the response for an answer, the
   * platform's error for a request that got none.
   *
   * @since 0.1.0
   * @category Models
   */
  export type FailureCause = HttpClientResponse.HttpClientResponse | HttpClientError.HttpClientError

  /**
   * Everything a call can fail with.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Error =
    | TerminalError<FailureCause>
    | RetriesExhausted<TransientError<FailureCause> | Timeout.TimeoutError>
    | CircuitBreaker.CircuitOpenError
    | Bulkhead.BulkheadFullError
    | Timeout.TimeoutError
    | HostNotAllowedError

  /**
   * A bulkhead's limits (see `Bulkhead.make`).
   *
   * @since 0.1.0
   * @category Models
   */
  export interface BulkheadOptions {
    /** Requests to the host at once: an integer ≥ 1. Default 64. */
    readonly maxConcurrent?: number
    /** Requests waiting for a permit: an integer ≥ 0, or `Infinity`. Default 64. */
    readonly maxQueued?: number
    /** How long a request may wait for a permit. Default 1 second. */
    readonly maxWait?: Duration.DurationInput
  }

  /**
   * Settings of one listed host; each field overrides the client-wide one.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface HostOptions {
    readonly breaker?: CircuitBreaker.BreakerConfig
    readonly bulkhead?: BulkheadOptions
  }

  /**
   * Options of {@link make}. Invalid values fail with `InvalidOptionsError`
   * naming the option.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Names the client: 1–64 characters of `A-Z a-z 0-9 _ . : / -`. Default `"http"`. */
    readonly name?: string
    /**
     * The hosts this client calls, keyed as `URL.host` writes them
     * (`api.example.com`, `127.0.0.1:8080`), with their own settings (`{}` for
     * the defaults). A request to another host fails with
     * {@link HostNotAllowedError}. Default: any host, up to `maxHosts`.
     */
    readonly hosts?: Readonly<Record<string, HostOptions>>
    /** With no `hosts` list, the most distinct hosts the client takes: 1–10,000. Default 32. */
    readonly maxHosts?: number
    /** Every host's circuit breaker (see `CircuitBreaker.make`), or `false` for none. Default: the breaker defaults. */
    readonly breaker?: CircuitBreaker.BreakerConfig | false
    /** Every host's bulkhead, or `false` for none. Default 64 at once, 64 queued, 1 second wait. */
    readonly bulkhead?: BulkheadOptions | false
    /**
     * The retry policy (named after the client; see `Retry.make`), or `false`
     * for a single attempt. Default: the retry defaults (4 attempts, exponential
     * backoff from 100 ms, full jitter), and `maxElapsed` = `timeout`.
     */
    readonly retry?: Omit<Retry.Retry.Options, "name"> | false
    /** The limit of each attempt, or `false` for none. Default 10 seconds. */
    readonly attemptTimeout?: Duration.DurationInput | false
    /** The limit of the whole call, retries included, or `false` for none. Default 30 seconds. */
    readonly timeout?: Duration.DurationInput | false
    /** Idempotency keys (see `IdempotencyHttpClient.Options`), or `false` for none. Default: POST and PATCH. */
    readonly idempotency?: IdempotencyHttpClient.Options | false
  }

  /**
   * A host in use, for admin routes and health checks.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface HostStatus {
    /** The `host` label. */
    readonly host: string
    readonly breaker: Option.Option<CircuitBreaker.State>
    readonly bulkhead: Option.Option<Bulkhead.Snapshot>
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { HostNotAllowedError }

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * The service tag of a {@link ResilientHttpClient} provided by {@link layer}.
 *
 * @since 0.1.0
 * @category Services
 */
export const ResilientHttpClient: Context.Tag<ResilientHttpClient, ResilientHttpClient> = internal.tag

/**
 * The defaults of {@link make}.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const defaults: typeof config.defaults = config.defaults

/**
 * Wraps the `HttpClient` in context (configure TLS, agents, base URLs there).
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { ResilientHttpClient } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* ResilientHttpClient.make({
 *     hosts: { "inventory.internal": { breaker: { openDuration: "10 seconds" } } },
 *     bulkhead: { maxConcurrent: 16 }
 *   })
 *   return yield* client.get("http://inventory.internal/items/42")
 * }).pipe(Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  options?: ResilientHttpClient.Options
) => Effect.Effect<ResilientHttpClient, InvalidOptionsError, HttpClient.HttpClient> = internal.make

/**
 * {@link make} as a layer providing {@link ResilientHttpClient}.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  options?: ResilientHttpClient.Options
) => Layer.Layer<ResilientHttpClient, InvalidOptionsError, HttpClient.HttpClient> = internal.layer
