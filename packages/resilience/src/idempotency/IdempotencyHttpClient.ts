/**
 * Idempotency keys for `@effect/platform` HTTP clients.
 *
 * A key names one **logical operation**, not one network attempt: the client
 * makes it once (a `crypto.randomUUID()`), sends it in `Idempotency-Key`,
 * and sends the very same key on every retry of that operation, so that a
 * server with {@link IdempotencyHttp} runs the operation once however many
 * attempts reach it. A key the caller set on the request is never replaced.
 *
 * The key must therefore be made **outside** the retry loop:
 *
 * - {@link retry} does both: one key per `execute`, then Bulwark's
 *   `Retry.retry` inside it, retrying transient answers (408, 429, 5xx, a 409
 *   "still in flight" to a keyed request) and transport errors with the same
 *   key, honouring `Retry-After`.
 * - {@link withKeys} only adds the key; put retries inside it, on the client it
 *   wraps (`HttpClient.retryTransient`), never around the wrapped client's
 *   calls: an outer retry re-runs `execute`, which is a new operation with a
 *   new key.
 * - {@link attachKey} sets the key on a request value; every execution of that
 *   request, retries included, carries it.
 *
 * @since 0.1.0
 */
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import type * as Effect from "effect/Effect"
import type { Lifted, TransientError } from "../Failure.js"
import type { Policy, Retried } from "../retry/Retry.js"
import * as internal from "./internal/httpClient.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** Methods that get a key. Default `["POST", "PATCH"]` (the methods that are not idempotent by definition). */
  readonly methods?: ReadonlyArray<HttpMethod>
  /** The header. Default `"Idempotency-Key"`. */
  readonly header?: string
  /** Makes a key. Default `crypto.randomUUID()` (122 random bits: keys must not be guessable). */
  readonly generateKey?: Effect.Effect<string>
}

/**
 * The error channel of a client wrapped by {@link retry}: the client's own
 * errors lifted into the failure model (transport errors transient, others
 * terminal), transient ones replaced by `RetriesExhausted`, which carries the
 * last failure (for a transient status, a `TransientError` whose `cause` is
 * the last response).
 *
 * @since 0.1.0
 * @category Models
 */
export type RetryError<E> = Retried<Lifted<E> | TransientError<HttpClientResponse.HttpClientResponse>>

/**
 * Sets a fresh key on a request whose method is listed, unless it already
 * has one. Run it once per logical operation, outside any retry.
 *
 * @example
 * ```ts
 * import { HttpClient, HttpClientRequest } from "@effect/platform"
 * import { Effect } from "effect"
 * import { IdempotencyHttpClient } from "@bulwark/resilience"
 *
 * const charge = Effect.gen(function*() {
 *   const client = yield* HttpClient.HttpClient
 *   const request = yield* HttpClientRequest.post("https://api.example.com/charges").pipe(
 *     HttpClientRequest.bodyUnsafeJson({ amount: 100 }),
 *     IdempotencyHttpClient.attachKey()
 *   )
 *   // every retry executes the same request value, hence sends the same key
 *   return yield* client.execute(request).pipe(Effect.retry({ times: 3 }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Requests
 */
export const attachKey: (
  options?: Options
) => (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<HttpClientRequest.HttpClientRequest> =
  internal.attachKey

/**
 * A client that gives each `execute` (each logical operation) one key.
 * Retries belong inside, on the wrapped client.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { IdempotencyHttpClient } from "@bulwark/resilience"
 *
 * const client = Effect.map(
 *   HttpClient.HttpClient,
 *   (client) => client.pipe(HttpClient.retryTransient({ times: 3 }), IdempotencyHttpClient.withKeys())
 * )
 * ```
 *
 * @since 0.1.0
 * @category Clients
 */
export const withKeys: (
  options?: Options
) => <E, R>(self: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<E, R> = internal.withKeys

/**
 * A client that gives each `execute` one key and retries it with Bulwark's
 * `Retry.retry` under `policy`, the key unchanged across attempts. Keyed
 * requests and idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are
 * retried; a request that is neither gets one attempt. Transient answers
 * (408, 429, 5xx per the current classifier, and 409 to a keyed request
 * unless it is a replay) and transport errors are retried; other answers,
 * 4xx included, are returned as responses.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { IdempotencyHttpClient, Retry } from "@bulwark/resilience"
 *
 * const payments = Effect.gen(function*() {
 *   const policy = yield* Retry.make({ name: "payments", maxAttempts: 3 })
 *   const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
 *   return yield* client.post("https://api.example.com/charges")
 * })
 * ```
 *
 * @since 0.1.0
 * @category Clients
 */
export const retry: (
  policy: Policy,
  options?: Options
) => <E, R>(self: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<RetryError<E>, R> = internal.retry
