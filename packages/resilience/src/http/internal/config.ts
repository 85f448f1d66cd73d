import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import type { InvalidOptionsError } from "../../Failure.js"
import * as IdempotencyHttpClient from "../../idempotency/IdempotencyHttpClient.js"
import * as Options from "../../internal/options.js"
import * as Retry from "../../retry/Retry.js"
import * as Timeout from "../../timeout/Timeout.js"
import type * as ResilientHttpClient from "../ResilientHttpClient.js"

const component = "ResilientHttpClient"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  name: "http",
  maxHosts: 32,
  attemptTimeout: Duration.seconds(10),
  timeout: Duration.seconds(30),
  bulkhead: { maxConcurrent: 64, maxQueued: 64, maxWait: Duration.seconds(1) },
  idempotentMethods: ["POST", "PATCH"]
} as const

/** A bulkhead's validated limits. */
export interface BulkheadLimits {
  readonly maxConcurrent: number
  readonly maxQueued: number
  readonly maxWait: Duration.Duration
}

/** @internal */
export interface HostSettings {
  readonly breaker: CircuitBreaker.BreakerConfig | undefined
  readonly bulkhead: BulkheadLimits | undefined
}

/** @internal */
export interface Resolved {
  readonly name: string
  /** The hosts the client may call, with their settings; `undefined` when any host may be called. */
  readonly listed: ReadonlyMap<string, HostSettings> | undefined
  readonly maxHosts: number
  /** Settings of hosts not listed. */
  readonly unlisted: HostSettings
  readonly breakerDefaults: CircuitBreaker.BreakerConfig | undefined
  readonly retry: Retry.Policy
  /** For requests that must not be repeated: one attempt, the same typed outcome. */
  readonly once: Retry.Policy
  readonly attemptTimeout: Timeout.Policy | undefined
  readonly timeout: Timeout.Policy | undefined
  /** Sets a fresh key on a request that needs one (`IdempotencyHttpClient.attachKey`); `undefined` when keys are off. */
  readonly attachKey:
    | ((request: HttpClientRequest.HttpClientRequest) => Effect.Effect<HttpClientRequest.HttpClientRequest>)
    | undefined
  /** The lower-cased Idempotency-Key header name. */
  readonly keyHeader: string
}

/** Names of breakers and bulkheads are `<client>/<host>`, timeouts `<client>.attempt`: room is left for both. */
const CLIENT_NAME = /^[A-Za-z0-9_.:/-]{1,64}$/

/** What a host must look like to be a metric label and part of a breaker's name (`URL.host`, IPv6 brackets aside). */
const HOST_LABEL = /^[A-Za-z0-9_.:-]{1,120}$/

/** @internal */
export const hostLabel = (host: string): string | undefined => {
  const label = host.replace(/[[\]]/g, "")
  return HOST_LABEL.test(label) ? label : undefined
}

const validateBulkhead = (
  option: string,
  input: ResilientHttpClient.ResilientHttpClient.BulkheadOptions,
  base: BulkheadLimits
): Options.Check<BulkheadLimits> =>
  Either.all({
    maxConcurrent: Options.number(field(`${option}.maxConcurrent`), input.maxConcurrent ?? base.maxConcurrent, {
      min: 1,
      integer: true
    }),
    maxQueued: Options.number(field(`${option}.maxQueued`), input.maxQueued ?? base.maxQueued, {
      min: 0,
      integer: true,
      allowInfinity: true
    }),
    maxWait: Options.duration(field(`${option}.maxWait`), input.maxWait ?? base.maxWait, { allowInfinite: true })
  })

const validateHosts = (
  hosts: ResilientHttpClient.ResilientHttpClient.Options["hosts"],
  bulkhead: BulkheadLimits | undefined
): Options.Check<ReadonlyMap<string, HostSettings> | undefined> => {
  if (hosts === undefined) return Either.right(undefined)
  const listed = new Map<string, HostSettings>()
  for (const [host, settings] of Object.entries(hosts)) {
    if (hostLabel(host) !== host || host.toLowerCase() !== host) {
      return Either.left(
        Options.invalid(
          field("hosts"),
          host,
          "hosts as URL.host writes them: lower case, host[:port], 1–120 characters"
        )
      )
    }
    let hostBulkhead = bulkhead
    if (settings.bulkhead !== undefined) {
      if (bulkhead === undefined) {
        return Either.left(
          Options.invalid(field(`hosts.${host}.bulkhead`), settings.bulkhead, "left out when bulkhead is false")
        )
      }
      const checked = validateBulkhead(`hosts.${host}.bulkhead`, settings.bulkhead, bulkhead)
      if (Either.isLeft(checked)) return Either.left(checked.left)
      hostBulkhead = checked.right
    }
    listed.set(host, { breaker: settings.breaker, bulkhead: hostBulkhead })
  }
  return Either.right(listed)
}

const optionalTimeout = (
  option: string,
  input: Duration.DurationInput | false | undefined,
  fallback: Duration.Duration,
  operation: string
): Options.Check<Timeout.Policy | undefined> => {
  if (input === false) return Either.right(undefined)
  return Either.flatMap(
    Options.duration(field(option), input ?? fallback, { allowZero: false }),
    (limit) => Either.right(Timeout.unsafeMake({ operation, limit }))
  )
}

/**
 * Validates every option except the breaker settings, which the breaker
 * registry validates when it is built.
 *
 * @internal
 */
export const resolve = (
  options: ResilientHttpClient.ResilientHttpClient.Options
): Effect.Effect<Resolved, InvalidOptionsError> =>
  Effect.gen(function*() {
    const name = options.name ?? defaults.name
    if (typeof name !== "string" || !CLIENT_NAME.test(name)) {
      return yield* Effect.fail(
        Options.invalid(field("name"), name, "1 to 64 characters of A-Z a-z 0-9 _ . : / -")
      )
    }
    const bulkhead = options.bulkhead === false
      ? undefined
      : yield* validateBulkhead("bulkhead", options.bulkhead ?? {}, defaults.bulkhead)
    const listed = yield* validateHosts(options.hosts, bulkhead)
    if (options.breaker === false) {
      for (const [host, settings] of Object.entries(options.hosts ?? {})) {
        if (settings.breaker !== undefined) {
          return yield* Effect.fail(
            Options.invalid(field(`hosts.${host}.breaker`), settings.breaker, "left out when breaker is false")
          )
        }
      }
    }
    const maxHosts = yield* Options.number(field("maxHosts"), options.maxHosts ?? defaults.maxHosts, {
      min: 1,
      max: 10_000,
      integer: true
    })
    const attemptTimeout = yield* optionalTimeout(
      "attemptTimeout",
      options.attemptTimeout,
      defaults.attemptTimeout,
      `${name}.attempt`
    )
    const timeout = yield* optionalTimeout("timeout", options.timeout, defaults.timeout, `${name}.call`)
    const retryOptions = options.retry === false ? { maxAttempts: 1 } : options.retry ?? {}
    // A retry that knows the call's time budget gives up (RetriesExhausted) before a wait would cross it,
    // rather than being cut short by the overall timeout.
    const maxElapsed = retryOptions.maxElapsed ?? timeout?.limit
    const retry = yield* Retry.make({
      ...retryOptions,
      name,
      ...(maxElapsed === undefined ? {} : { maxElapsed })
    })
    const once = yield* Retry.make({ name, maxAttempts: 1 })
    const idempotency = options.idempotency === false
      ? undefined
      : { methods: defaults.idempotentMethods, ...options.idempotency }
    const keyHeader = (idempotency?.header ?? "Idempotency-Key").toLowerCase()
    if (!/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(keyHeader)) {
      return yield* Effect.fail(Options.invalid(field("idempotency.header"), keyHeader, "an HTTP header name"))
    }
    const methods: ReadonlyArray<HttpMethod> = idempotency?.methods ?? []
    if (!methods.every((method) => typeof method === "string" && method.toUpperCase() === method)) {
      return yield* Effect.fail(Options.invalid(field("idempotency.methods"), methods, "upper-case HTTP methods"))
    }
    return {
      name,
      listed,
      maxHosts: listed === undefined ? maxHosts : listed.size,
      unlisted: { breaker: undefined, bulkhead },
      breakerDefaults: options.breaker === false ? undefined : options.breaker ?? {},
      retry,
      once,
      attemptTimeout,
      timeout,
      attachKey: idempotency === undefined ? undefined : IdempotencyHttpClient.attachKey(idempotency),
      keyHeader
    }
  })
