import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Cause from "effect/Cause"
import type * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import type * as Bulkhead from "../../bulkhead/Bulkhead.js"
import * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../../Failure.js"
import type { InvalidOptionsError } from "../../Failure.js"
import { attributes as A } from "../../internal/tracingAttributes.js"
import * as Retry from "../../retry/Retry.js"
import * as Timeout from "../../timeout/Timeout.js"
import type * as ResilientHttpClient from "../ResilientHttpClient.js"
import { resolve, type Resolved } from "./config.js"
import * as Hosts from "./hosts.js"
import { isAnswered, isRepeatable, loggableUrl, outcomeOfExit } from "./outcome.js"

type Response = HttpClientResponse.HttpClientResponse
type Client = ResilientHttpClient.ResilientHttpClient
type CallError = ResilientHttpClient.ResilientHttpClient.Error
type FailureCause = ResilientHttpClient.ResilientHttpClient.FailureCause
type AttemptError = Failure.TransientError<FailureCause> | Failure.TerminalError<FailureCause> | Timeout.TimeoutError

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/ResilientHttpClient")

/** @internal */
export const tag = Context.GenericTag<Client>("@bulwark/resilience/ResilientHttpClient")

/**
 * A breaker's or bulkhead's refusal, boxed on its way through the retry: it
 * is neither transient nor terminal in the box, so `Retry.retry` hands it
 * straight back. An open breaker or a full bulkhead answers at once; waiting
 * to retry into it would only hold the caller.
 */
class Rejected extends Data.TaggedClass("Rejected")<{
  readonly error: CircuitBreaker.CircuitOpenError | Bulkhead.BulkheadFullError
}> {}

/** What one logical call knows across its attempts. */
interface CallState {
  attempts: number
  /** When the previous attempt ended, on the Clock: the next attempt's wait is measured from it. */
  lastEndedAt: number | undefined
}

interface Call {
  readonly request: HttpClientRequest.HttpClientRequest
  readonly url: URL
  /** `METHOD url` without the query string: what logs and error messages may show. */
  readonly label: string
  readonly entry: Hosts.HostEntry
  readonly keyed: boolean
  readonly state: CallState
}

const REPLAYED = "idempotent-replayed"

/**
 * An answer with a status the classifier calls transient becomes a
 * `TransientError` (with the server's `Retry-After`), one it calls terminal a
 * `TerminalError`; both carry the response as their `cause`. A 409 to a keyed
 * request that is not a replay is the server saying the first request with
 * this key is still running: transient (draft-ietf-httpapi-idempotency-key-header).
 */
const checkStatus = (
  response: Response,
  call: Call,
  clock: Clock.Clock
): Effect.Effect<Response, Failure.TransientError<FailureCause> | Failure.TerminalError<FailureCause>> =>
  Effect.flatMap(Failure.CurrentClassifier, (
    classifier
  ): Effect.Effect<Response, Failure.TransientError<FailureCause> | Failure.TerminalError<FailureCause>> => {
    const inFlight = call.keyed && response.status === 409 && response.headers[REPLAYED] === undefined
    const verdict = Failure.classifyResponse(response, {
      classifier: inFlight ? Failure.extend(classifier, { statuses: { 409: "transient" } }) : classifier,
      now: clock.unsafeCurrentTimeMillis(),
      operation: call.label
    })
    if (Option.isNone(verdict)) return Effect.succeed(response)
    const failure = verdict.value
    if (failure._tag === "TerminalError") {
      return Effect.fail(
        new Failure.TerminalError({
          reason: "HttpStatus",
          message: failure.message,
          status: response.status,
          cause: response
        })
      )
    }
    const transient = new Failure.TransientError({
      reason: "HttpStatus",
      message: failure.message,
      status: response.status,
      ...(failure.retryAfter === undefined ? {} : { retryAfter: failure.retryAfter }),
      cause: response
    })
    // The body of an answer that will be retried is read and dropped, so its connection can be reused.
    return Effect.zipRight(Effect.ignore(response.arrayBuffer), Effect.fail(transient))
  })

/** A message without the URL's query string (platform errors quote the full URL). */
const requestErrorMessage = (call: Call) => (error: HttpClientError.HttpClientError): string => {
  const cause = error.cause
  const code = hasProperty(cause, "code") && typeof cause.code === "string" ? ` (${cause.code})` : ""
  return error._tag === "RequestError" && error.reason === "Transport"
    ? `${call.label} got no answer${code}`
    : `${call.label} failed: ${error._tag} ${error.reason}${code}`
}

/** One request on the wire, timed and counted whatever its end. */
const send = (
  base: HttpClient.HttpClient,
  resolved: Resolved,
  call: Call
): Effect.Effect<Response, AttemptError> =>
  Effect.clockWith((clock) => {
    const startedAt = clock.unsafeCurrentTimeMillis()
    const request = base.execute(call.request).pipe(
      Failure.classify<HttpClientError.HttpClientError>({ message: requestErrorMessage(call) }),
      Effect.flatMap((response) => checkStatus(response, call, clock))
    )
    const limited = resolved.attemptTimeout === undefined
      ? request
      : Timeout.timeout(request, resolved.attemptTimeout)
    return Effect.onExit(limited, (exit) =>
      Effect.sync(() => {
        call.entry.record(
          call.request.method,
          outcomeOfExit(exit),
          (clock.unsafeCurrentTimeMillis() - startedAt) / 1000
        )
      }))
  })

const annotateAttempt = (exit: Exit.Exit<Response, AttemptError | Rejected>, call: Call) => {
  const annotations: Record<string, unknown> = {}
  if (Exit.isSuccess(exit)) {
    annotations[A.httpOutcome] = String(exit.value.status)
    annotations["http.response.status_code"] = exit.value.status
    if (call.keyed) annotations[A.idempotencyReplayed] = exit.value.headers[REPLAYED] !== undefined
    return Effect.annotateCurrentSpan(annotations)
  }
  const failure = Option.getOrUndefined(Cause.failureOption(exit.cause))
  const error = failure?._tag === "Rejected" ? failure.error : failure
  annotations[A.httpOutcome] = outcomeOfExit(exit)
  if (error !== undefined) annotations["error.type"] = error._tag
  if (error !== undefined && (error._tag === "TransientError" || error._tag === "TerminalError")) {
    if (error.status !== undefined) annotations["http.response.status_code"] = error.status
    // a stored refusal (a 4xx) is replayed too
    const answer = error.cause
    if (call.keyed && answer !== undefined && !HttpClientError.isHttpClientError(answer)) {
      annotations[A.idempotencyReplayed] = answer.headers[REPLAYED] !== undefined
    }
  }
  const hint = Failure.retryAfterOf(error)
  if (Option.isSome(hint)) annotations[A.retryAfterMs] = Duration.toMillis(hint.value)
  return Effect.annotateCurrentSpan(annotations)
}

/**
 * One attempt: breaker ▸ bulkhead ▸ per-attempt timeout ▸ request, in a span
 * of its own carrying the attempt number, the wait before it, and the
 * breaker's state as this attempt found it.
 */
const attempt = (
  base: HttpClient.HttpClient,
  resolved: Resolved,
  call: Call
): Effect.Effect<Response, AttemptError | Rejected> =>
  Effect.clockWith((clock) => {
    const { entry, state } = call
    const number = ++state.attempts
    const startedAt = clock.unsafeCurrentTimeMillis()
    const spanAttributes: Record<string, unknown> = {
      [A.httpClient]: resolved.name,
      [A.httpHost]: entry.host,
      [A.retryPolicy]: resolved.retry.name,
      [A.retryAttempt]: number,
      [A.idempotencyKeyed]: call.keyed
    }
    if (state.lastEndedAt !== undefined) spanAttributes[A.retryDelayMs] = startedAt - state.lastEndedAt
    if (entry.bulkhead !== undefined) spanAttributes[A.bulkheadName] = entry.bulkhead.name
    if (resolved.attemptTimeout !== undefined) {
      spanAttributes[A.timeoutOperation] = resolved.attemptTimeout.operation
      spanAttributes[A.timeoutLimitMs] = Duration.toMillis(resolved.attemptTimeout.limit)
    }

    const request = send(base, resolved, call)
    const bulkheaded = entry.bulkhead === undefined ? request : entry.bulkhead.protect(request)
    const breaker = entry.breaker
    const guarded = breaker === undefined
      ? bulkheaded
      : Effect.flatMap(breaker.state, (current) =>
        Effect.zipRight(
          Effect.annotateCurrentSpan({
            [A.breakerName]: breaker.name,
            [A.breakerState]: CircuitBreaker.stateLabel(current)
          }),
          breaker.protect(bulkheaded)
        ))

    const refused = (error: CircuitBreaker.CircuitOpenError | Bulkhead.BulkheadFullError) =>
      Effect.suspend(() => {
        entry.record(
          call.request.method,
          error._tag === "CircuitOpenError" ? "circuit_open" : "bulkhead_full",
          undefined
        )
        return Effect.fail(new Rejected({ error }))
      })

    return guarded.pipe(
      Effect.catchTags({ CircuitOpenError: refused, BulkheadFullError: refused }),
      Effect.onExit((exit) =>
        Effect.suspend(() => {
          state.lastEndedAt = clock.unsafeCurrentTimeMillis()
          return annotateAttempt(exit, call)
        })
      ),
      Effect.withSpan("bulwark.http_client.attempt", { attributes: spanAttributes })
    )
  })

/** The logical call: a key fixed once, then retries of attempts, all under the overall timeout. */
const run = (
  base: HttpClient.HttpClient,
  resolved: Resolved,
  request: HttpClientRequest.HttpClientRequest,
  url: URL,
  entry: Hosts.HostEntry,
  state: CallState
): Effect.Effect<Response, CallError> =>
  Effect.gen(function*() {
    const keyedRequest = resolved.attachKey === undefined ? request : yield* resolved.attachKey(request)
    const call: Call = {
      request: keyedRequest,
      url,
      label: `${request.method} ${loggableUrl(url)}`,
      entry,
      keyed: keyedRequest.headers[resolved.keyHeader] !== undefined,
      state
    }
    yield* Effect.annotateCurrentSpan(A.idempotencyKeyed, call.keyed)
    const policy = isRepeatable(keyedRequest, resolved.keyHeader) ? resolved.retry : resolved.once
    const retried = Retry.retry(attempt(base, resolved, call), policy).pipe(
      Effect.catchTag("Rejected", (rejected) => Effect.fail(rejected.error))
    )
    return yield* (resolved.timeout === undefined ? retried : Timeout.timeout(retried, resolved.timeout))
  })

/** A log line and a span per logical call. */
const observed = (
  base: HttpClient.HttpClient,
  resolved: Resolved,
  hosts: Hosts.Hosts,
  request: HttpClientRequest.HttpClientRequest,
  url: URL
): Effect.Effect<Response, CallError> =>
  Effect.clockWith((clock) => {
    const startedAt = clock.unsafeCurrentTimeMillis()
    const state: CallState = { attempts: 0, lastEndedAt: undefined }
    const shownUrl = loggableUrl(url)
    const spanAttributes: Record<string, unknown> = {
      "http.request.method": request.method,
      "server.address": url.hostname,
      "url.path": url.pathname,
      [A.httpClient]: resolved.name,
      [A.httpHost]: url.host
    }
    if (url.port !== "") spanAttributes["server.port"] = Number(url.port)
    return Effect.flatMap(hosts.get(url.host), (entry) => run(base, resolved, request, url, entry, state)).pipe(
      Effect.onExit((exit) => {
        const outcome = outcomeOfExit(exit)
        const durationMs = clock.unsafeCurrentTimeMillis() - startedAt
        const ok = isAnswered(outcome) && Number(outcome) < 500
        const line = `${request.method} ${shownUrl} ${outcome} ${durationMs}ms`
        const failure = Exit.isFailure(exit) ? Option.getOrUndefined(Cause.failureOption(exit.cause)) : undefined
        return Effect.zipRight(
          Effect.annotateCurrentSpan({
            [A.httpOutcome]: outcome,
            [A.retryAttempts]: state.attempts,
            ...(isAnswered(outcome) ? { "http.response.status_code": Number(outcome) } : {}),
            ...(failure === undefined ? {} : { "error.type": failure._tag })
          }),
          (ok ? Effect.logInfo(line) : Effect.logWarning(line)).pipe(
            Effect.annotateLogs({
              "http.client": resolved.name,
              "http.method": request.method,
              "http.url": shownUrl,
              "http.host": url.host,
              "http.status": outcome,
              "http.duration_ms": durationMs,
              "http.attempts": state.attempts
            })
          )
        )
      }),
      Effect.withSpan(`bulwark.http_client ${request.method}`, { attributes: spanAttributes })
    )
  })

const invalidUrl = (request: HttpClientRequest.HttpClientRequest, cause: Error): Effect.Effect<never, CallError> =>
  Effect.fail(
    new Failure.TerminalError({
      reason: "Lifted",
      message: `${request.method} request with an invalid URL`,
      cause: new HttpClientError.RequestError({ request, reason: "InvalidUrl", cause })
    })
  )

const breakerConfig = (resolved: Resolved): CircuitBreaker.RegistryConfig | undefined => {
  if (resolved.breakerDefaults === undefined) return undefined
  const breakers: Record<string, CircuitBreaker.BreakerConfig> = {}
  for (const [host, settings] of resolved.listed ?? []) {
    if (settings.breaker !== undefined) breakers[`${resolved.name}/${host}`] = settings.breaker
  }
  return { defaults: resolved.breakerDefaults, breakers }
}

/** @internal */
export const make = (
  options: ResilientHttpClient.ResilientHttpClient.Options = {}
): Effect.Effect<Client, InvalidOptionsError, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const base = yield* HttpClient.HttpClient
    const config = breakerConfig(resolved)
    // The client's own registry: breakers named `<client>/<host>` are made on first use, creation serialised.
    const breakers = config === undefined
      ? undefined
      : yield* Effect.provide(CircuitBreaker.Registry, CircuitBreaker.layer(config))
    const hosts = yield* Hosts.make(resolved, breakers)

    const execute = (request: HttpClientRequest.HttpClientRequest): Effect.Effect<Response, CallError> =>
      Effect.suspend(() => {
        const url = UrlParams.makeUrl(request.url, request.urlParams, request.hash)
        return Either.isLeft(url) ? invalidUrl(request, url.left) : observed(base, resolved, hosts, request, url.right)
      })

    const client = HttpClient.makeWith(
      (request: Effect.Effect<HttpClientRequest.HttpClientRequest>) => Effect.flatMap(request, execute),
      Effect.succeed
    )

    const status = (entry: Hosts.HostEntry): Effect.Effect<ResilientHttpClient.ResilientHttpClient.HostStatus> =>
      Effect.all({
        breaker: entry.breaker === undefined ? Effect.succeedNone : Effect.asSome(entry.breaker.state),
        bulkhead: entry.bulkhead === undefined ? Effect.succeedNone : Effect.asSome(entry.bulkhead.snapshot)
      }).pipe(Effect.map(({ breaker, bulkhead }) => ({ host: entry.host, breaker, bulkhead })))

    return {
      [TypeId]: TypeId,
      client,
      execute: (request) => client.execute(request),
      get: (url, options) => client.get(url, options),
      head: (url, options) => client.head(url, options),
      post: (url, options) => client.post(url, options),
      patch: (url, options) => client.patch(url, options),
      put: (url, options) => client.put(url, options),
      del: (url, options) => client.del(url, options),
      options: (url, options) => client.options(url, options),
      name: resolved.name,
      hosts: Effect.suspend(() => Effect.forEach(hosts.all(), status)),
      breaker: (host) => Effect.sync(() => Option.fromNullable(hosts.find(host)?.breaker))
    }
  })

/** @internal */
export const layer = (
  options?: ResilientHttpClient.ResilientHttpClient.Options
): Layer.Layer<Client, InvalidOptionsError, HttpClient.HttpClient> => Layer.effect(tag, make(options))
