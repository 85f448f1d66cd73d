/**
 * The payments service's side of the gateway: one `ResilientHttpClient`
 * (per-host circuit breaker, bulkhead, attempt timeout) plus Bulwark retry
 * policies that retry **only what cannot have charged**.
 *
 * Why the client's own retry is off for charges: `ResilientHttpClient`
 * retries a POST that carries an `Idempotency-Key` after any transient
 * failure, attempt timeouts included, because a server that honours the key
 * runs it once. This gateway does not deduplicate, and an attempt that timed
 * out may have charged (its answer was just slow). So a charge call is
 * classified here, and the `gateway-charge` policy retries only answers and
 * errors that prove nothing was charged:
 *
 * | what happened | outcome | retried here? |
 * |---|---|---|
 * | 2xx with a charge id | `Charged` | — |
 * | 4xx | `Declined` (the payment fails) | no |
 * | 5xx / 429 answer | not charged (the gateway said so) | yes, then `NotCharged` |
 * | connection refused / host unreachable | not charged (never reached it) | yes, then `NotCharged` |
 * | breaker open, bulkhead full | `NotCharged` (never sent) | no |
 * | attempt timed out, connection dropped mid-request, unreadable 2xx | `Unknown`: may have charged | **no** |
 *
 * An `Unknown` outcome is settled later by looking the payment up at the
 * gateway (`lookup`, a GET: retried freely) before any new charge request.
 *
 * @since 0.1.0
 */
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Failure from "@bulwark/resilience/Failure"
import type { InvalidOptionsError } from "@bulwark/resilience/Failure"
import * as ResilientHttpClient from "@bulwark/resilience/ResilientHttpClient"
import * as Retry from "@bulwark/resilience/Retry"
import * as HttpBody from "@effect/platform/HttpBody"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import { ChargeList } from "./Gateway.js"
import type { Charge } from "./Gateway.js"

/**
 * What one charge call ended with.
 *
 * @since 0.1.0
 * @category Models
 */
export type ChargeOutcome =
  | { readonly _tag: "Charged"; readonly chargeId: string }
  | { readonly _tag: "Declined"; readonly status: number; readonly reason: string }
  | { readonly _tag: "NotCharged"; readonly reason: string; readonly retryAfter: Option.Option<Duration.Duration> }
  | { readonly _tag: "Unknown"; readonly reason: string }

/**
 * The gateway could not answer a lookup.
 *
 * @since 0.1.0
 * @category Errors
 */
export class GatewayUnavailableError extends Failure.TransientTaggedError("GatewayUnavailableError")<{
  readonly reason: string
}> {
  override get message(): string {
    return `The payment gateway is unavailable: ${this.reason}`
  }
}

/**
 * A breaker as the admin routes show it.
 *
 * @since 0.1.0
 * @category Models
 */
export interface BreakerView {
  readonly name: string
  readonly host: string
  /** closed | open | half_open | forced_open | disabled | metrics_only */
  readonly state: string
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface GatewayClientService {
  readonly url: string
  /** One charge, sent with `Idempotency-Key: <paymentId>`. Never fails: every end is an outcome. */
  readonly charge: (request: {
    readonly paymentId: string
    readonly amount: number
    readonly currency: string
  }) => Effect.Effect<ChargeOutcome>
  /** The charges the gateway holds for a payment (reconciliation). */
  readonly lookup: (paymentId: string) => Effect.Effect<ReadonlyArray<Charge>, GatewayUnavailableError>
  readonly breakers: Effect.Effect<ReadonlyArray<BreakerView>>
  /** Forces the gateway's breaker open (`isolate`) or back to closed (`reset`). */
  readonly controlBreaker: (action: "isolate" | "reset") => Effect.Effect<ReadonlyArray<BreakerView>>
}

/**
 * @since 0.1.0
 * @category Tags
 */
export class GatewayClient extends Context.Tag("examples/payments/GatewayClient")<
  GatewayClient,
  GatewayClientService
>() {}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface GatewayClientOptions {
  /** The gateway's base URL (`GATEWAY_URL`). */
  readonly url: string
  /** Per attempt. Default 2 seconds. */
  readonly attemptTimeout?: Duration.DurationInput
  /** Charge attempts in one call (only provably uncharged failures are retried). Default 3. */
  readonly chargeAttempts?: number
  /** Consecutive failures that open the breaker. Default 5. */
  readonly breakerFailures?: number
  /** How long the breaker stays open before probing. Default 10 seconds. */
  readonly breakerOpenDuration?: Duration.DurationInput
  /** Requests to the gateway at once. Default 16. */
  readonly maxConcurrent?: number
  /** Requests waiting for a slot (up to 1 second). Default 32. */
  readonly maxQueued?: number
}

/** A 5xx / 429 answer, or a connection that was never made: nothing was charged, so trying again is safe. */
class NotChargedYet extends Failure.TransientTaggedError("GatewayNotCharged")<{ readonly reason: string }> {}

/** Refused before sending (breaker, bulkhead): not retried here; the job queue comes back later. */
class NotSent extends Data.TaggedError("GatewayNotSent")<{
  readonly reason: string
  readonly retryAfter: Option.Option<Duration.Duration>
}> {}

/** The request may have reached the gateway and charged. Never retried blindly. */
class OutcomeUnknown extends Data.TaggedError("GatewayOutcomeUnknown")<{ readonly reason: string }> {}

class Declined extends Data.TaggedError("GatewayDeclined")<{ readonly status: number; readonly reason: string }> {}

type AttemptError = NotChargedYet | NotSent | OutcomeUnknown | Declined

/** Connection errors that prove the request never reached the server. */
const NEVER_CONNECTED = new Set(["ECONNREFUSED", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"])

const errorCode = (u: unknown, depth = 0): string | undefined => {
  if (depth > 6) return undefined
  if (Predicate.hasProperty(u, "code") && typeof u.code === "string") return u.code
  return Predicate.hasProperty(u, "cause") ? errorCode(u.cause, depth + 1) : undefined
}

const classify = (error: ResilientHttpClient.ResilientHttpClient.Error): AttemptError => {
  switch (error._tag) {
    case "CircuitOpenError":
      return new NotSent({ reason: error.message, retryAfter: Option.some(error.retryAfter) })
    case "BulkheadFullError":
    case "HostNotAllowedError":
      return new NotSent({ reason: error.message, retryAfter: Option.none() })
    case "TerminalError":
      return error.status === undefined
        ? new NotSent({ reason: error.message, retryAfter: Option.none() })
        : new Declined({ status: error.status, reason: error.message })
    case "TimeoutError":
      return new OutcomeUnknown({ reason: error.message })
    case "RetriesExhausted": {
      const last = error.lastFailure
      if (last._tag === "TimeoutError") return new OutcomeUnknown({ reason: last.message })
      if (last.status !== undefined) {
        return new NotChargedYet({
          reason: last.message,
          ...(last.retryAfter === undefined ? {} : { retryAfter: last.retryAfter })
        })
      }
      const code = errorCode(last.cause)
      return code !== undefined && NEVER_CONNECTED.has(code)
        ? new NotChargedYet({ reason: `${last.message} (${code})` })
        : new OutcomeUnknown({ reason: code === undefined ? last.message : `${last.message} (${code})` })
    }
  }
}

const ChargeAnswer = Schema.Struct({ chargeId: Schema.String, paymentId: Schema.String })

/**
 * The gateway client, on the `HttpClient` in context.
 *
 * @example
 * ```ts
 * import { FetchHttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { GatewayClient, layer } from "./GatewayClient.js"
 *
 * const program = Effect.flatMap(GatewayClient, (gateway) =>
 *   gateway.charge({ paymentId: "pay_1", amount: 1200, currency: "EUR" })
 * ).pipe(Effect.provide(layer({ url: "http://127.0.0.1:4010" })), Effect.provide(FetchHttpClient.layer))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (
  options: GatewayClientOptions
): Layer.Layer<GatewayClient, InvalidOptionsError, HttpClient.HttpClient> =>
  Layer.effect(
    GatewayClient,
    Effect.gen(function*() {
      const base = new URL(options.url)
      const client = yield* ResilientHttpClient.make({
        name: "gateway",
        hosts: { [base.host]: {} },
        breaker: {
          trip: CircuitBreaker.consecutiveFailures(options.breakerFailures ?? 5),
          openDuration: options.breakerOpenDuration ?? "10 seconds"
        },
        bulkhead: {
          maxConcurrent: options.maxConcurrent ?? 16,
          maxQueued: options.maxQueued ?? 32,
          maxWait: "1 second"
        },
        // Retries are decided below, per outcome (see the module notes).
        retry: false,
        attemptTimeout: options.attemptTimeout ?? "2 seconds",
        timeout: false
      })
      const chargePolicy = yield* Retry.make({
        name: "gateway-charge",
        backoff: Retry.exponential({ base: "100 millis", cap: "1 second" }),
        jitter: "full",
        maxAttempts: options.chargeAttempts ?? 3
      })
      const lookupPolicy = yield* Retry.make({
        name: "gateway-lookup",
        backoff: Retry.exponential({ base: "100 millis", cap: "1 second" }),
        jitter: "full",
        maxAttempts: 3
      })
      const chargesUrl = new URL("/v1/charges", base).toString()

      const chargeAttempt = (request: {
        readonly paymentId: string
        readonly amount: number
        readonly currency: string
      }): Effect.Effect<string, AttemptError> =>
        client.post(chargesUrl, {
          headers: { "idempotency-key": request.paymentId },
          body: HttpBody.unsafeJson(request)
        }).pipe(
          Effect.mapError(classify),
          Effect.flatMap((response) =>
            HttpClientResponse.schemaBodyJson(ChargeAnswer)(response).pipe(
              Effect.timeout("2 seconds"),
              Effect.mapError(() =>
                new OutcomeUnknown({ reason: `the gateway answered ${response.status} with an unreadable body` })
              )
            )
          ),
          Effect.map((answer) => answer.chargeId)
        )

      const charge: GatewayClientService["charge"] = (request) =>
        chargeAttempt(request).pipe(
          Retry.retry(chargePolicy),
          Effect.match({
            onSuccess: (chargeId): ChargeOutcome => ({ _tag: "Charged", chargeId }),
            onFailure: (error): ChargeOutcome => {
              switch (error._tag) {
                case "GatewayDeclined":
                  return { _tag: "Declined", status: error.status, reason: error.reason }
                case "GatewayNotSent":
                  return { _tag: "NotCharged", reason: error.reason, retryAfter: error.retryAfter }
                case "GatewayOutcomeUnknown":
                  return { _tag: "Unknown", reason: error.reason }
                case "RetriesExhausted":
                  return {
                    _tag: "NotCharged",
                    reason: error.lastFailure.reason,
                    retryAfter: Option.fromNullable(error.lastFailure.retryAfter)
                  }
              }
            }
          })
        )

      const lookup: GatewayClientService["lookup"] = (paymentId) =>
        client.get(chargesUrl, { urlParams: { paymentId } }).pipe(
          Effect.flatMap(HttpClientResponse.schemaBodyJson(ChargeList)),
          // Only what may pass on a second try is retried; an open breaker or a full bulkhead is not waited out.
          Effect.mapError((error) =>
            error._tag === "RetriesExhausted" || error._tag === "TimeoutError" || error._tag === "ResponseError"
              || error._tag === "ParseError"
              ? new GatewayUnavailableError({ reason: error.message })
              : new NotSent({ reason: error.message, retryAfter: Option.none() })
          ),
          Retry.retry(lookupPolicy),
          Effect.map((list) => list.charges),
          Effect.mapError((error) => new GatewayUnavailableError({ reason: error.message }))
        )

      const breakers = Effect.flatMap(client.hosts, (hosts) =>
        Effect.forEach(hosts, (status) =>
          Effect.map(client.breaker(status.host), (breaker): BreakerView => ({
            name: Option.match(breaker, {
              onNone: () =>
                `${client.name}/${status.host}`,
              onSome: (b) => b.name
            }),
            host: status.host,
            state: Option.match(status.breaker, { onNone: () => "disabled", onSome: CircuitBreaker.stateLabel })
          }))))

      const controlBreaker: GatewayClientService["controlBreaker"] = (action) =>
        Effect.gen(function*() {
          // The breaker is made on the first call; a lookup that fails is fine, it only has to exist.
          if (Option.isNone(yield* client.breaker(base.host))) {
            yield* Effect.ignore(lookup("breaker-warm-up"))
          }
          const breaker = yield* client.breaker(base.host)
          if (Option.isSome(breaker)) {
            yield* action === "isolate" ? breaker.value.isolate : breaker.value.reset
          }
          return yield* breakers
        })

      return { url: base.origin, charge, lookup, breakers, controlBreaker }
    })
  )
