import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMethod from "@effect/platform/HttpMethod"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as SchemaAST from "effect/SchemaAST"
import * as Failure from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Options from "../../internal/options.js"
import { problem } from "../../internal/problem.js"
import * as Metrics from "../../Metrics.js"
import type * as Idempotency from "../Idempotency.js"
import type { ApiRequest, CommonOptions, HandlerOptions, MiddlewareOptions } from "../IdempotencyHttp.js"
import type { IdempotencyStore } from "../IdempotencyStore.js"
import * as Errors from "./errors.js"
import { fingerprint } from "./httpFingerprint.js"
import { parseKey } from "./httpKey.js"
import { globalKeysWarning } from "./httpPartition.js"
import { buffer, lingerAfterRefusal } from "./httpRequest.js"
import {
  bodyBudget,
  capture,
  excludedHeaders,
  isNotReplayable,
  notReplayable,
  replay,
  StoredResponse
} from "./httpResponse.js"
import { runPrepared } from "./idempotency.js"
import { recordRequest } from "./metrics.js"
import { defaults, prepare } from "./runOptions.js"
import { CurrentExecution } from "./tags.js"

export { canonicalJson, fingerprint } from "./httpFingerprint.js"
export { parseKey } from "./httpKey.js"
export { globalPartition, partitionByHeader } from "./httpPartition.js"

const KEY_HEADER = "idempotency-key"
const REPLAYED = { "idempotent-replayed": "true" } as const
const DEFAULT_METHODS: ReadonlyArray<HttpMethod.HttpMethod> = ["POST", "PATCH"]
const encoder = new TextEncoder()

const DEFAULT_MAX_BODY_BYTES = 1_048_576
// The body is held in memory to be hashed and handed to the handler: larger uploads belong in a stream, not here.
const MAX_BODY_BYTES = 1_073_741_824

/** `result="payload_too_large"`: counted here, as the HTTP layer's own refusal. */
const recordTooLarge = (scope: string): Effect.Effect<void> =>
  Effect.sync(() => Metric.counter(Metrics.idempotencyRequests, { scope, result: "payload_too_large" })())

// -----------------------------------------------------------------------------
// Shared pieces
// -----------------------------------------------------------------------------

/** `"POST /payments/:id"` inside a router, `"POST *"` outside one (the fingerprint still holds the path). */
const scopeOf = (
  request: HttpServerRequest.HttpServerRequest,
  configured: string | undefined
): Effect.Effect<string> =>
  configured !== undefined
    ? Effect.succeed(configured)
    : Effect.map(
      Effect.serviceOption(HttpRouter.RouteContext),
      Option.match({
        onNone: () => `${request.method} *`,
        onSome: (context) => `${request.method} ${context.route.path}`
      })
    )

/** Whole seconds, rounded up and at least 1: a client waiting this long is never early. */
const retryAfterSeconds = (duration: Duration.Duration): number =>
  Math.max(1, Math.ceil(Duration.toMillis(duration) / 1000))

interface Refusal {
  readonly status: number
  readonly title: string
  readonly detail: string
  readonly retryAfter?: Duration.Duration
}

const refusalResponse = (refusal: Refusal, problemType: string): HttpServerResponse.HttpServerResponse =>
  problem(
    refusal.status,
    refusal.title,
    refusal.detail,
    problemType,
    refusal.retryAfter === undefined ? {} : { "retry-after": String(retryAfterSeconds(refusal.retryAfter)) }
  )

/** A repeat of a request whose answer was sent but not stored (too large). */
const notStored: Refusal = {
  status: 500,
  title: "Internal Server Error",
  detail:
    "The request with this Idempotency-Key was processed, but its response was too large to store, so it cannot be replayed."
}

const missingKey = (scope: string): Refusal => ({
  status: 400,
  title: "Bad Request",
  detail: `${scope} requires an Idempotency-Key header.`
})

/**
 * The answer to each error `Idempotency.run` adds. `None` for the errors that
 * are programming mistakes (an invalid scope, a result that does not encode),
 * which become defects.
 */
const refusalOf = (error: Idempotency.RunError): Refusal | undefined => {
  switch (error._tag) {
    case "IdempotencyConflictError":
      return {
        status: 409,
        title: "Conflict",
        detail: error.reason === "InFlight"
          ? "A request with this Idempotency-Key is still being processed; retry after the Retry-After delay."
          : "This request lost its claim on the Idempotency-Key to a newer attempt; retry to get that attempt's answer.",
        retryAfter: error.retryAfter
      }
    case "IdempotencyMismatchError":
      return {
        status: 422,
        title: "Unprocessable Content",
        detail:
          "This Idempotency-Key was already used with a different request (method, path, query or body); use a new key."
      }
    case "IdempotencyStoreError":
      return {
        status: 503,
        title: "Service Unavailable",
        detail: "The idempotency store is unavailable; retry with the same Idempotency-Key.",
        retryAfter: Duration.seconds(1)
      }
    case "StoredResultTooLargeError":
      return notStored
    case "InvalidOptionsError":
      return error.option === "partition"
        ? {
          status: 400,
          title: "Bad Request",
          detail:
            "The request's owner (partition) is not a valid identifier: at most 255 characters, no control characters."
        }
        : undefined
  }
}

const isRunError = (u: unknown): u is Idempotency.RunError =>
  u instanceof Errors.IdempotencyConflictError ||
  u instanceof Errors.IdempotencyMismatchError ||
  u instanceof Errors.IdempotencyStoreError ||
  u instanceof Errors.StoredResultTooLargeError ||
  u instanceof Failure.InvalidOptionsError

/** A status the client should retry (5xx, and what the classifier calls transient: 408, 429). */
const isTransientStatus = (status: number, classifier: Failure.Classifier): boolean =>
  status >= 500 || Failure.classifyStatus(status, classifier) === "transient"

const runOptions = (common: CommonOptions) => ({
  ...(common.lease === undefined ? {} : { lease: common.lease }),
  ...(common.ttl === undefined ? {} : { ttl: common.ttl }),
  ...(common.waitForInFlight === undefined ? {} : { waitForInFlight: common.waitForInFlight }),
  ...(common.maxStoredBytes === undefined ? {} : { maxStoredBytes: common.maxStoredBytes }),
  ...(common.transactional === undefined ? {} : { transactional: common.transactional })
})

// -----------------------------------------------------------------------------
// HttpApp / HttpRouter middleware
// -----------------------------------------------------------------------------

/** What this request's own execution produced, kept beside what `run` stores. */
interface Local<E> {
  /** The app's outcome, answered as the app would have answered it. */
  readonly exit: Exit.Exit<HttpServerResponse.HttpServerResponse, E>
  /** What goes to the client (the app's response, a streamed body possibly replaced by its bytes). */
  readonly sent: HttpServerResponse.HttpServerResponse
  readonly store: boolean
}

const noCapture: StoredResponse = { status: 500, headers: [], body: new Uint8Array(0) }

const contentTooLarge = (scope: string, limit: number, declared: number | undefined): Refusal => ({
  status: 413,
  title: "Content Too Large",
  detail: declared === undefined
    ? `The request body is over the ${limit}-byte limit of ${scope}.`
    : `The request body (${declared} bytes) is over the ${limit}-byte limit of ${scope}.`
})

/** Once per scope at warning, then at debug: a route that streams large answers would log on every request. */
const oversizedLog = () => {
  const warned = new Set<string>()
  return (scope: string, capture: { readonly streamed: boolean; readonly bytes: number }, limit: number) =>
    Effect.suspend(() => {
      const first = !warned.has(scope) && warned.size < 1_000
      if (first) warned.add(scope)
      const what = capture.streamed ? `a streamed answer over ${limit} bytes` : `an answer of ${capture.bytes} bytes`
      const message =
        `Idempotency: ${what} is over maxStoredBytes (${limit}); it went to the caller without being stored: repeats of its key answer 500 until the key expires${
          first ? " (logged once per route at warning, then at debug)" : ""
        }`
      return Effect.logWithLevel(first ? LogLevel.Warning : LogLevel.Debug, message).pipe(
        Effect.annotateLogs({ "idempotency.scope": scope })
      )
    })
}

/** @internal */
export const middleware = <EP = never, RP = never>(options: MiddlewareOptions<EP, RP> = {}) => {
  const methods = new Set(options.methods ?? DEFAULT_METHODS)
  const required = options.required ?? true
  const storeAll = options.storeAll ?? false
  const problemType = options.problemType ?? "about:blank"
  const captureOptions = {
    storeCookies: options.storeCookies ?? false,
    excludeHeaders: excludedHeaders(options.excludeHeaders)
  }
  const partitionOf = options.partition
  const common = runOptions(options)
  // Checked once: every request of this middleware runs with the same lease, ttl, limits and flags.
  const prepared = prepare(common)
  const maxBodyBytes = Options.number(
    { component: "IdempotencyHttp", option: "maxBodyBytes" },
    options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    { min: 0, max: MAX_BODY_BYTES, integer: true }
  )
  const maxStoredBytes = common.maxStoredBytes ?? defaults.maxStoredBytes
  const budget = bodyBudget(maxStoredBytes)
  const warnGlobal = globalKeysWarning(partitionOf)
  const logOversized = oversizedLog()
  const refuse = (refusal: Refusal) => Effect.succeed(refusalResponse(refusal, problemType))

  return <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<E | EP | HttpServerError.RequestError, R | RP | IdempotencyStore> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      if (!methods.has(request.method)) return app
      return Effect.flatMap(scopeOf(request, options.scope), (scope): HttpApp.Default<
        E | EP | HttpServerError.RequestError,
        R | RP | IdempotencyStore
      > => {
        const check = parseKey(request.headers[KEY_HEADER])
        switch (check._tag) {
          case "Missing":
            return Effect.zipRight(
              recordRequest(scope, "missing_key"),
              required ? refuse(missingKey(scope)) : app
            )
          case "Invalid":
            return Effect.zipRight(
              recordRequest(scope, "invalid_key"),
              refuse({ status: 400, title: "Bad Request", detail: check.reason })
            )
          case "Valid":
            break
        }
        const key = check.key
        return Effect.gen(function*() {
          if (Either.isLeft(maxBodyBytes)) return yield* Effect.die(maxBodyBytes.left)
          yield* warnGlobal(scope)
          const partition = partitionOf === undefined ? "" : yield* partitionOf(request)
          const read = yield* buffer(request, maxBodyBytes.right)
          if (read._tag === "TooLarge") {
            // Refused before any claim: nothing is stored, and the key stays free for a request that fits.
            yield* recordTooLarge(scope)
            const refusal = contentTooLarge(scope, read.limit, read.declared)
            // The rest of the body is read into nothing for a bounded time, then the connection is closed.
            yield* lingerAfterRefusal(request)
            return problem(refusal.status, refusal.title, refusal.detail, problemType, {})
          }
          const buffered = read.request
          const classifier = yield* Failure.CurrentClassifier
          // Set by the handler when this request runs the app (a holder: assignments in closures defeat narrowing).
          const local: { current: Local<E> | undefined } = { current: undefined }
          const handler = (execution: Idempotency.Execution) =>
            app.pipe(
              Effect.provideService(HttpServerRequest.HttpServerRequest, buffered),
              Effect.provideService(CurrentExecution, Option.some(execution)),
              Effect.exit,
              Effect.flatMap((exit) =>
                Effect.gen(function*() {
                  const response = Exit.isSuccess(exit)
                    ? exit.value
                    : (yield* HttpServerError.causeResponse(exit.cause))[0]
                  const captured = yield* capture(response, captureOptions, budget)
                  const final = Exit.isSuccess(exit) || Cause.isFailType(exit.cause) &&
                      !Failure.isTransient(exit.cause.error)
                  const interrupted = Exit.isFailure(exit) && Cause.isInterrupted(exit.cause)
                  const store = captured._tag !== "Unstored" && !interrupted &&
                    (storeAll || (final && !isTransientStatus(response.status, classifier)))
                  local.current = { exit, sent: captured.sent, store }
                  switch (captured._tag) {
                    case "Whole":
                      return captured.stored
                    case "Unstored":
                      return noCapture
                    case "Oversized":
                      if (store) yield* logOversized(scope, captured, maxStoredBytes)
                      return notReplayable(captured)
                  }
                })
              )
            )
          const outcome = yield* Effect.either(
            runPrepared(
              prepared,
              {
                scope,
                partition,
                key,
                fingerprint: fingerprint({
                  method: request.method,
                  scope,
                  target: request.originalUrl,
                  contentType: request.headers["content-type"],
                  body: buffered.bytes
                }),
                success: StoredResponse,
                failure: Schema.Never,
                shouldStore: () => local.current?.store ?? false
              },
              handler
            )
          )
          const ran = local.current
          if (ran !== undefined && outcome._tag === "Right" && outcome.right._tag === "Executed") {
            // This request ran the handler: answer it as the app did (its response, or its failure for the
            // server to render and log). `run` answers the first caller also when the answer could not be stored
            // (too large, store down), since the handler's side effects happened.
            return yield* Exit.match(ran.exit, {
              onFailure: (cause) => Effect.failCause(cause),
              onSuccess: () => Effect.succeed(ran.sent)
            })
          }
          if (outcome._tag === "Right") {
            const stored = outcome.right.value
            return isNotReplayable(stored) ? refusalResponse(notStored, problemType) : replay(stored, REPLAYED)
          }
          const refusal = refusalOf(outcome.left)
          if (refusal === undefined) return yield* Effect.die(outcome.left)
          return refusalResponse(refusal, problemType)
        })
      })
    })
}

// -----------------------------------------------------------------------------
// HttpApi handler wrapper
// -----------------------------------------------------------------------------

const statusOfFailure = (failure: Schema.Schema.All, error: unknown): number | undefined => {
  const members = SchemaAST.isUnion(failure.ast) ? failure.ast.types : [failure.ast]
  for (const ast of members) {
    if (Schema.is(Schema.make(ast))(error)) return HttpApiSchema.getStatusErrorAST(ast)
  }
  return undefined
}

/**
 * The body the fingerprint covers, for a request the endpoint has already
 * decoded: binary payloads are the bytes themselves; JSON, form and text
 * bodies were read through the request's cached `text`.
 */
const bodyOf = <Req extends ApiRequest>(
  request: Req,
  custom: ((request: Req) => string | Uint8Array) | undefined
): Effect.Effect<Uint8Array, HttpServerError.RequestError> => {
  if (custom !== undefined) {
    const body = custom(request)
    return Effect.succeed(typeof body === "string" ? encoder.encode(body) : body)
  }
  const server = request.request
  if (!HttpMethod.hasBody(server.method)) return Effect.succeed(new Uint8Array(0))
  if (request.payload instanceof Uint8Array) return Effect.succeed(request.payload)
  const contentType = server.headers["content-type"]?.toLowerCase() ?? ""
  if (contentType.includes("multipart/form-data")) {
    return Effect.dieMessage(
      "IdempotencyHttp.handler: a multipart payload's raw body is consumed by the endpoint; give `fingerprintBody`."
    )
  }
  return Effect.map(server.text, (text) => encoder.encode(text))
}

/** @internal */
export const handler = <A, AI, E, EI, Req extends ApiRequest, R, EP = never, RP = never>(
  options: HandlerOptions<A, AI, E, EI, Req, EP, RP>,
  handle: (request: Req) => Effect.Effect<A, E, R>
) => {
  const required = options.required ?? true
  const storeAll = options.storeAll ?? false
  const problemType = options.problemType ?? "about:blank"
  const common = runOptions(options)
  // Checked once: every request of this endpoint runs with the same lease, ttl, limits and flags.
  const prepared = prepare(common)
  const partitionOf = options.partition
  const warnGlobal = globalKeysWarning(partitionOf)
  // Refusals are not errors the endpoint declares: a response as defect is sent as it is, and not logged.
  const refuse = (refusal: Refusal) => Effect.die(refusalResponse(refusal, problemType))

  return (apiRequest: Req): Effect.Effect<A, E | EP, R | RP | IdempotencyStore> =>
    Effect.gen(function*() {
      const request = apiRequest.request
      const scope = yield* scopeOf(request, options.scope)
      const check = parseKey(request.headers[KEY_HEADER])
      if (check._tag === "Missing") {
        yield* recordRequest(scope, "missing_key")
        if (!required) return yield* handle(apiRequest)
        return yield* refuse(missingKey(scope))
      }
      if (check._tag === "Invalid") {
        yield* recordRequest(scope, "invalid_key")
        return yield* refuse({ status: 400, title: "Bad Request", detail: check.reason })
      }
      yield* warnGlobal(scope)
      const partition = partitionOf === undefined ? "" : yield* partitionOf(apiRequest)
      const body = yield* Effect.orDie(bodyOf(apiRequest, options.fingerprintBody))
      const classifier = yield* Failure.CurrentClassifier
      const shouldStore = (exit: Exit.Exit<A, E>): boolean => {
        if (storeAll || Exit.isSuccess(exit)) return true
        const error = Cause.failureOption(exit.cause)
        if (Option.isNone(error) || Failure.isTransient(error.value)) return false
        if (Failure.isTerminal(error.value)) return true
        const status = statusOfFailure(options.failure, error.value)
        return status !== undefined && status < 500 && !isTransientStatus(status, classifier)
      }
      // Set when this request runs the handler (a holder: assignments in closures defeat narrowing).
      const ran: { started: boolean } = { started: false }
      const outcome = yield* Effect.either(
        runPrepared(
          prepared,
          {
            scope,
            partition,
            key: check.key,
            fingerprint: fingerprint({
              method: request.method,
              scope,
              target: request.originalUrl,
              contentType: request.headers["content-type"],
              body
            }),
            success: options.success,
            failure: options.failure,
            shouldStore
          },
          (execution) =>
            Effect.suspend(() => {
              ran.started = true
              return handle(apiRequest).pipe(Effect.provideService(CurrentExecution, Option.some(execution)))
            })
        )
      )
      if (outcome._tag === "Right") {
        if (outcome.right._tag === "Replayed") yield* markReplayed
        return outcome.right.value
      }
      const error = outcome.left
      if (!isRunError(error)) {
        // The handler's own failure, or a stored one replayed (when this request did not run the handler).
        if (!ran.started) yield* markReplayed
        return yield* Effect.fail(error)
      }
      const refusal = refusalOf(error)
      if (refusal === undefined) return yield* Effect.die(error)
      return yield* refuse(refusal)
    })
}

const markReplayed: Effect.Effect<void> = HttpApp.appendPreResponseHandler((_request, response) =>
  Effect.succeed(HttpServerResponse.setHeaders(response, REPLAYED))
)
