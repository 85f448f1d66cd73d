import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import { createHash } from "node:crypto"
import type { InvalidOptionsError } from "../../Failure.js"
import { problem } from "../../internal/problem.js"
import type { Policy, RateLimitedError, RateLimiter } from "../RateLimiter.js"
import type { KeyFunction, MiddlewareOptions, PolicyState, ProblemTypes } from "../RateLimiterHttp.js"
import { currentStates, render, renderOnto, seconds, stateOf, upsert } from "./headers.js"

/** @internal */
export const problemTypes = {
  quotaExceeded: "https://iana.org/assignments/http-problem-types#quota-exceeded",
  temporaryReducedCapacity: "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity",
  abnormalUsageDetected: "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"
} as const

/** The titles the draft registers with its types; any other type gets the status phrase. */
const TITLES: Readonly<Record<string, string>> = {
  [problemTypes.quotaExceeded]: "Request cannot be satisfied as assigned quota has been exceeded",
  [problemTypes.temporaryReducedCapacity]: "Request cannot be satisfied due to temporary server capacity constraints",
  [problemTypes.abnormalUsageDetected]: "Request not satisfied due to detection of abnormal request pattern"
}

type Resolved = { readonly [K in keyof ProblemTypes]-?: string }

const resolveTypes = (option: string | ProblemTypes | undefined): Resolved =>
  typeof option === "string"
    ? { limitExceeded: option, storeUnavailable: option, invalidRequest: option }
    : {
      limitExceeded: option?.limitExceeded ?? problemTypes.quotaExceeded,
      storeUnavailable: option?.storeUnavailable ?? problemTypes.temporaryReducedCapacity,
      invalidRequest: option?.invalidRequest ?? "about:blank"
    }

/** @internal */
export const headers: {
  (states: ReadonlyArray<PolicyState>): Record<string, string>
  (
    name: string,
    policy: Pick<Policy, "quota" | "window">,
    state: { readonly limit: number; readonly remaining: number; readonly reset: Duration.Duration }
  ): Record<string, string>
} = (
  first: string | ReadonlyArray<PolicyState>,
  policy?: Pick<Policy, "quota" | "window">,
  state?: { readonly remaining: number; readonly reset: Duration.Duration }
): Record<string, string> =>
  typeof first === "string"
    ? render(policy === undefined ? [] : [{ name: first, policy, state }])
    : render(first)

/** The refusal's problem: its headers other than the rate-limit ones are the caller's. */
const refusal = (
  limiter: RateLimiter,
  error: RateLimitedError,
  name: string,
  types: Resolved,
  extra: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse => {
  const retryAfter = Math.max(1, seconds(error.retryAfter))
  const headers = { ...extra, "retry-after": String(retryAfter) }
  if (error.reason === "StoreUnavailable") {
    const type = types.storeUnavailable
    return problem(
      503,
      TITLES[type] ?? "Service Unavailable",
      `The rate limiter "${error.limiter}" cannot reach its store; retry after ${retryAfter} s.`,
      type,
      headers
    )
  }
  const type = types.limitExceeded
  return problem(
    429,
    TITLES[type] ?? "Too Many Requests",
    `Rate limit "${error.limiter}" exceeded: ${limiter.policy.quota} per ${
      seconds(limiter.policy.window)
    } s; retry after ${retryAfter} s.`,
    type,
    headers,
    // The draft's extension member: the policies whose quota was exceeded.
    type === problemTypes.quotaExceeded ? { "violated-policies": [name] } : undefined
  )
}

/** @internal */
export const rejectedResponse = (
  limiter: RateLimiter,
  error: RateLimitedError,
  options: {
    readonly policyName?: string
    readonly problemType?: string | ProblemTypes
    readonly policies?: ReadonlyArray<PolicyState>
  } = {}
): HttpServerResponse.HttpServerResponse => {
  const state = stateOf(limiter, error, options)
  return refusal(
    limiter,
    error,
    state.name,
    resolveTypes(options.problemType),
    render(upsert(options.policies ?? [], state))
  )
}

const invalidResponse = (error: InvalidOptionsError, problemType: string): HttpServerResponse.HttpServerResponse =>
  problem(400, "Bad Request", error.message, problemType, {})

/** Renders every state the request recorded onto whatever response goes out, error responses included. */
const renderStates: HttpApp.PreResponseHandler = (_request, response) =>
  Effect.map(
    FiberRef.get(currentStates),
    (states) => HttpServerResponse.setHeaders(response, renderOnto(response, states))
  )

/**
 * Records a limiter's state for this request; the first one also installs
 * the handler that renders them all.
 */
const record = (state: PolicyState): Effect.Effect<void> =>
  Effect.flatMap(
    FiberRef.modify(currentStates, (states) => [states.length === 0, upsert(states, state)] as const),
    (first) => (first ? HttpApp.appendPreResponseHandler(renderStates) : Effect.void)
  )

/** Keys up to this length are used as they are; see {@link limiterKey}. */
const PLAIN_KEY_LENGTH = 64

/**
 * The limiter's key for a request's key. Request keys come from the client (a header, a path): a long one is
 * replaced by its SHA-256, so that no client can make the limiter refuse a request as invalid (its keys are at most
 * `maxKeyLength` long, 256 by default) or make it hold a huge key.
 *
 * @internal
 */
export const limiterKey = (key: string): string =>
  key.length <= PLAIN_KEY_LENGTH ? key : `sha256:${createHash("sha256").update(key).digest("base64url")}`

/** @internal */
export const middleware = <R = never>(limiter: RateLimiter, options: MiddlewareOptions<R> = {}) => {
  const name = options.policyName ?? limiter.name
  const keyOf: KeyFunction<R> = options.key ?? byIp
  const costOf = options.cost
  const types = resolveTypes(options.problemType)
  const named = { policyName: name }
  return <E, R0>(app: HttpApp.Default<E, R0>): HttpApp.Default<E, R0 | R> =>
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) =>
        Effect.flatMap(keyOf(request), (key) =>
          Effect.matchEffect(limiter.consume(limiterKey(key), costOf === undefined ? 1 : costOf(request)), {
            // Recorded now, rendered by a pre-response handler: error responses made later, and refusals by
            // limiters further in, carry every policy decided for the request.
            onSuccess: (decision) =>
              Effect.zipRight(record(stateOf(limiter, decision, named)), app),
            onFailure: (error) =>
              error._tag === "RateLimitedError"
                ? Effect.as(
                  record(stateOf(limiter, error, named)),
                  refusal(limiter, error, name, types, {})
                )
                : Effect.succeed(invalidResponse(error, types.invalidRequest))
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
