import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as Effect from "effect/Effect"
import { randomUUID } from "node:crypto"
import * as Failure from "../../Failure.js"
import type { Lifted } from "../../Failure.js"
import * as Retry from "../../retry/Retry.js"
import type { Options, RetryError } from "../IdempotencyHttpClient.js"

const DEFAULT_METHODS: ReadonlyArray<HttpMethod> = ["POST", "PATCH"]

/** Methods that are idempotent by definition (RFC 9110 §9.2.2): safe to retry without a key. */
const IDEMPOTENT: ReadonlySet<HttpMethod> = new Set<HttpMethod>(["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])

const defaultKey: Effect.Effect<string> = Effect.sync(() => randomUUID())

interface Resolved {
  readonly methods: ReadonlySet<HttpMethod>
  readonly header: string
  readonly generateKey: Effect.Effect<string>
}

const resolve = (options: Options = {}): Resolved => ({
  methods: new Set(options.methods ?? DEFAULT_METHODS),
  header: (options.header ?? "Idempotency-Key").toLowerCase(),
  generateKey: options.generateKey ?? defaultKey
})

const keyed = (resolved: Resolved) => (request: HttpClientRequest.HttpClientRequest) =>
  !resolved.methods.has(request.method) || request.headers[resolved.header] !== undefined
    ? Effect.succeed(request)
    : Effect.map(resolved.generateKey, (key) => HttpClientRequest.setHeader(request, resolved.header, key))

/** @internal */
export const attachKey = (
  options?: Options
): (request: HttpClientRequest.HttpClientRequest) => Effect.Effect<HttpClientRequest.HttpClientRequest> =>
  keyed(resolve(options))

/**
 * Builds a client whose `execute` fixes the request (key included) once and
 * then runs `operation` on it: everything `operation` repeats (retries) reuses
 * that request, hence that key.
 */
const around = <E, R, E2, R2>(
  self: HttpClient.HttpClient.With<E, R>,
  resolved: Resolved,
  operation: (
    attempt: Effect.Effect<HttpClientResponse.HttpClientResponse, E, R>,
    request: HttpClientRequest.HttpClientRequest
  ) => Effect.Effect<HttpClientResponse.HttpClientResponse, E2, R2>
): HttpClient.HttpClient.With<E2, R2> => {
  const attach = keyed(resolved)
  return HttpClient.makeWith(
    (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) =>
      request.pipe(
        Effect.flatMap(attach),
        Effect.flatMap((fixed) => operation(self.execute(fixed), fixed))
      ),
    Effect.succeed
  )
}

/** @internal */
export const withKeys = (options?: Options) => <E, R>(self: HttpClient.HttpClient.With<E, R>) =>
  around(self, resolve(options), (attempt) => attempt)

/**
 * The verdict on one attempt's response: transient answers become a
 * `TransientError` carrying the response (and the server's `Retry-After`).
 * A 409 to a keyed request is the server saying the first request with this
 * key is still running (draft-ietf-httpapi-idempotency-key-header §2.7: "no
 * correction is needed, just retry"), unless it is itself a replayed answer.
 */
const checkStatus = (
  response: HttpClientResponse.HttpClientResponse,
  keyedRequest: boolean
): Effect.Effect<
  HttpClientResponse.HttpClientResponse,
  Failure.TransientError<HttpClientResponse.HttpClientResponse>
> =>
  Effect.flatMap(Failure.CurrentClassifier, (classifier) => {
    const inFlight = keyedRequest && response.status === 409 &&
      response.headers["idempotent-replayed"] === undefined
    const effective = inFlight ? Failure.extend(classifier, { statuses: { 409: "transient" } }) : classifier
    return Effect.flatMap(Effect.clock, (clock) => {
      const verdict = Failure.classifyResponse(response, {
        classifier: effective,
        now: clock.unsafeCurrentTimeMillis()
      })
      if (verdict._tag === "None" || verdict.value._tag === "TerminalError") return Effect.succeed(response)
      const failure = verdict.value
      return Effect.fail(
        new Failure.TransientError({
          reason: "HttpStatus",
          message: `${response.request.method} ${response.request.url} answered HTTP ${response.status}`,
          status: response.status,
          ...(failure.retryAfter === undefined ? {} : { retryAfter: failure.retryAfter }),
          cause: response
        })
      )
    })
  })

/** @internal */
export const retry = (policy: Retry.Policy, options?: Options) => {
  const resolved = resolve(options)
  // A request that must not be repeated (a method outside `methods`, so no key, and not idempotent) gets one
  // attempt with the same typed outcome.
  const once = Retry.unsafeMake({ name: policy.name, maxAttempts: 1 })
  return <E, R>(self: HttpClient.HttpClient.With<E, R>): HttpClient.HttpClient.With<RetryError<E>, R> =>
    around(self, resolved, (attempt, request) => {
      const keyedRequest = request.headers[resolved.header] !== undefined
      const checked: Effect.Effect<
        HttpClientResponse.HttpClientResponse,
        Lifted<E> | Failure.TransientError<HttpClientResponse.HttpClientResponse>,
        R
      > = attempt.pipe(
        Failure.classify<E>(),
        Effect.flatMap((response) => checkStatus(response, keyedRequest))
      )
      return Retry.retry(checked, keyedRequest || IDEMPOTENT.has(request.method) ? policy : once)
    })
}
