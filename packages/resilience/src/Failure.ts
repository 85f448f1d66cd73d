/**
 * The typed failure model every Bulwark primitive speaks.
 *
 * A failure is either **transient** (safe to retry: timeouts, 5xx, 429, dropped
 * connections, an open breaker, a full bulkhead, a rate limit) or **terminal**
 * (retrying cannot help: validation, auth, 4xx other than 408/429, business
 * rules). The difference is a brand on the error type, so the compiler knows
 * it: `Retry.retry` removes every transient member from the error channel and
 * adds {@link RetriesExhausted} instead, and anything that is neither
 * transient nor terminal passes through untouched and is never retried.
 *
 * Classification is data: a {@link Classifier} maps HTTP statuses, error tags
 * and error codes to a {@link Verdict}; users extend it or swap it for their
 * own through {@link CurrentClassifier}.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as internal from "./internal/failure.js"
import {
  InvalidOptionsError,
  RejectionTypeId,
  RetriesExhausted,
  TerminalError,
  TerminalTaggedError as terminalTaggedError,
  type TerminalTaggedErrorConstructor,
  TerminalTypeId,
  TransientError,
  TransientTaggedError as transientTaggedError,
  type TransientTaggedErrorConstructor,
  TransientTypeId
} from "./internal/failureErrors.js"
import * as retryAfter from "./internal/retryAfter.js"

// -----------------------------------------------------------------------------
// Brands
// -----------------------------------------------------------------------------

// Declared in `internal/failureErrors.ts`, a leaf that any module may import for their values.
export { RejectionTypeId, TerminalTypeId, TransientTypeId }

/**
 * A failure that is safe to retry; a `retryAfter` field holding a `Duration`
 * is read as a server's hint. Declare your own transient errors with
 * {@link TransientTaggedError}. A class that must extend another base (a
 * `Schema.TaggedError`) adds the brand itself, **with the type annotation**:
 * without it TypeScript widens the brand to `symbol` and the error is neither
 * transient nor terminal to the compiler (`Retry.retry` would keep it in the
 * error type while retrying it at run time).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * class GatewayBusy extends Schema.TaggedError<GatewayBusy>()("GatewayBusy", { status: Schema.Number }) {
 *   readonly [Failure.TransientTypeId]: typeof Failure.TransientTypeId = Failure.TransientTypeId
 * }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Transient {
  readonly [TransientTypeId]: TransientTypeId
}

/**
 * A failure that retrying cannot fix. Declare your own terminal errors with
 * {@link TerminalTaggedError} (or, on another base class, add
 * `readonly [Failure.TerminalTypeId]: typeof Failure.TerminalTypeId = Failure.TerminalTypeId`,
 * annotation included).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Terminal {
  readonly [TerminalTypeId]: TerminalTypeId
}

/**
 * A refusal by a local policy. Rejections are transient (the caller may try
 * again later) but say nothing about the health of the dependency, so circuit
 * breakers ignore them by default: a full bulkhead never trips a breaker
 * (the trap of Resilience4j #1657 and opossum's `semaphoreLocked`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Rejection {
  readonly [RejectionTypeId]: RejectionTypeId
}

/**
 * What a classifier says about a failure.
 *
 * @since 0.1.0
 * @category Models
 */
export type Verdict = "transient" | "terminal"

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * Where a generic transient failure came from.
 *
 * - `HttpStatus`: a response whose status the classifier calls transient (408, 429, 500, 502, 503, 504).
 * - `Transport`: the request never got an answer (connection reset, refused, DNS).
 * - `Timeout`: a timeout outside Bulwark's own `Timeout` module.
 * - `Lifted`: a user error lifted into the model by {@link lift} or {@link classify}.
 *
 * @since 0.1.0
 * @category Models
 */
export type TransientReason = "HttpStatus" | "Transport" | "Timeout" | "Lifted"

/**
 * Where a generic terminal failure came from.
 *
 * @since 0.1.0
 * @category Models
 */
export type TerminalReason = "HttpStatus" | "Lifted"

/**
 * Why a retry loop gave up.
 *
 * - `MaxAttempts`: the attempt limit was reached.
 * - `MaxElapsed`: the time budget ran out: the next wait (backoff or the server's `retryAfter`) would have reached it,
 *   or a retry was still running when it was spent (that retry was interrupted; `lastFailure` is the failure before it).
 * - `Budget`: the shared retry budget was spent, so no retry was made (storm protection).
 * - `ScheduleDone`: a custom backoff `Schedule` stopped recurring.
 *
 * @since 0.1.0
 * @category Models
 */
export type ExhaustionReason = "MaxAttempts" | "MaxElapsed" | "Budget" | "ScheduleDone"

// Declared in `internal/failureErrors.ts` (see above).
export { InvalidOptionsError, RetriesExhausted, TerminalError, TransientError }

// Declared in `internal/failureErrors.ts` (see above).
export type { TerminalTaggedErrorConstructor, TransientTaggedErrorConstructor }

/**
 * A base class for your own transient errors, in the style of
 * `Data.TaggedError`: instances have the `_tag`, the fields, and the
 * {@link Transient} brand typed as the unique symbol, so the compiler always
 * reads them as transient (`Retry.retry` removes them from the error channel
 * and adds `RetriesExhausted` instead). Every instance accepts an optional
 * `retryAfter: Duration` (a server's hint, read by {@link retryAfterOf} and by
 * `Retry`); declare `retryAfter` in the fields to make it required. When every
 * field is optional the argument may be left out.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { Failure, Retry } from "@bulwark/resilience"
 *
 * class PaymentGatewayDown extends Failure.TransientTaggedError("PaymentGatewayDown")<{
 *   readonly status: number
 * }> {}
 *
 * declare const charge: Effect.Effect<string, PaymentGatewayDown>
 *
 * const busy = new PaymentGatewayDown({ status: 503, retryAfter: Duration.seconds(2) })
 * const charged = charge.pipe(Retry.retry(Retry.unsafeMake({ name: "gateway" })))
 * // Effect<string, Failure.RetriesExhausted<PaymentGatewayDown>>
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const TransientTaggedError: <Tag extends string>(tag: Tag) => TransientTaggedErrorConstructor<Tag> =
  transientTaggedError

/**
 * A base class for your own terminal errors, in the style of
 * `Data.TaggedError`: instances have the `_tag`, the fields, and the
 * {@link Terminal} brand typed as the unique symbol, so the compiler always
 * reads them as terminal (`Retry.retry` never retries them and keeps them in
 * the error channel). When every field is optional the argument may be left out.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * class CardDeclined extends Failure.TerminalTaggedError("CardDeclined")<{ readonly reason: string }> {}
 *
 * const declined = Effect.fail(new CardDeclined({ reason: "insufficient funds" }))
 * const recovered = declined.pipe(Effect.catchTag("CardDeclined", (e) => Effect.succeed(e.reason)))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const TerminalTaggedError: <Tag extends string>(tag: Tag) => TerminalTaggedErrorConstructor<Tag> =
  terminalTaggedError

// -----------------------------------------------------------------------------
// Guards
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Guards
 */
export const isTransient: (u: unknown) => u is Transient = internal.isTransient

/**
 * @since 0.1.0
 * @category Guards
 */
export const isTerminal: (u: unknown) => u is Terminal = internal.isTerminal

/**
 * @since 0.1.0
 * @category Guards
 */
export const isRejection: (u: unknown) => u is Rejection = internal.isRejection

/**
 * @since 0.1.0
 * @category Guards
 */
export const isRetriesExhausted = (u: unknown): u is RetriesExhausted<unknown> => u instanceof RetriesExhausted

/**
 * The server's `retryAfter` hint carried by a failure, when it carries a `Duration`.
 *
 * @since 0.1.0
 * @category Getters
 */
export const retryAfterOf: (u: unknown) => Option.Option<Duration.Duration> = internal.retryAfterOf

// -----------------------------------------------------------------------------
// Classifier
// -----------------------------------------------------------------------------

/**
 * Classification as data. Lookups, most specific first:
 *
 * - errors already branded transient or terminal keep their brand;
 * - `tags`: an error's `_tag`, refined by its `reason` when present (`"RequestError.Transport"` before `"RequestError"`);
 * - `codes`: an error's string `code` (Node system errors such as `ECONNRESET`, Postgres SQLSTATEs);
 * - `statuses`: an HTTP status; statuses not listed fall back to `otherClientErrors` (4xx) or `otherServerErrors` (5xx).
 *
 * `maxRetryAfter` caps any `Retry-After` a server sends.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Classifier {
  readonly statuses: ReadonlyMap<number, Verdict>
  readonly otherClientErrors: Verdict
  readonly otherServerErrors: Verdict
  readonly tags: ReadonlyMap<string, Verdict>
  readonly codes: ReadonlyMap<string, Verdict>
  readonly maxRetryAfter: Duration.Duration
}

/**
 * The default classification:
 *
 * | input | verdict |
 * |---|---|
 * | 408, 429, 500, 502, 503, 504 | transient |
 * | any other 4xx or 5xx | terminal |
 * | `TimeoutException`, `RequestError.Transport`, `SqlError`'s connection failures via `codes` | transient |
 * | `ECONNRESET`, `ECONNREFUSED`, `ECONNABORTED`, `ETIMEDOUT`, `EPIPE`, `EAI_AGAIN`, `EHOSTUNREACH`, `ENETUNREACH`, `UND_ERR_SOCKET`, `UND_ERR_CONNECT_TIMEOUT` | transient |
 * | Postgres `40001` (serialization), `40P01` (deadlock), `57P01` (admin shutdown), `08000`/`08003`/`08006` (connection) | transient |
 * | `Retry-After` | capped at 60 seconds |
 *
 * @since 0.1.0
 * @category Classifier
 */
export const defaultClassifier: Classifier = internal.defaultClassifier

/**
 * The overrides {@link extend} accepts. Every field is optional and adds to
 * (or replaces entries of) the base classifier.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ClassifierOverrides {
  readonly statuses?: Readonly<Record<number, Verdict>>
  readonly otherClientErrors?: Verdict
  readonly otherServerErrors?: Verdict
  readonly tags?: Readonly<Record<string, Verdict>>
  readonly codes?: Readonly<Record<string, Verdict>>
  readonly maxRetryAfter?: Duration.DurationInput
}

/**
 * A classifier with some entries added or replaced.
 *
 * @example
 * ```ts
 * import { Effect, pipe } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * // This API answers 409 while a resource is being provisioned: retry it.
 * const classifier = pipe(
 *   Failure.defaultClassifier,
 *   Failure.extend({ statuses: { 409: "transient" }, tags: { InventoryLocked: "transient" } })
 * )
 * const program = Effect.void.pipe(Failure.withClassifier(classifier))
 * ```
 *
 * @since 0.1.0
 * @category Classifier
 */
export const extend: {
  (overrides: ClassifierOverrides): (self: Classifier) => Classifier
  (self: Classifier, overrides: ClassifierOverrides): Classifier
} = internal.extend

// Declared in `internal/failure.ts`, beside the default classifier it holds.
export { CurrentClassifier } from "./internal/failure.js"

/**
 * Runs an effect with another classifier.
 *
 * @since 0.1.0
 * @category Classifier
 */
export const withClassifier: {
  (classifier: Classifier): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, classifier: Classifier): Effect.Effect<A, E, R>
} = internal.withClassifier

/**
 * The verdict for an HTTP status: `"success"` below 400, otherwise what the
 * classifier says.
 *
 * @example
 * ```ts
 * import { Failure } from "@bulwark/resilience"
 *
 * Failure.classifyStatus(503, Failure.defaultClassifier) // "transient"
 * Failure.classifyStatus(404, Failure.defaultClassifier) // "terminal"
 * ```
 *
 * @since 0.1.0
 * @category Classifier
 */
export const classifyStatus: (status: number, classifier: Classifier) => Verdict | "success" = internal.classifyStatus

/**
 * The verdict for any error value, if the classifier knows it (see {@link Classifier} for the lookup order).
 *
 * @since 0.1.0
 * @category Classifier
 */
export const classifyError: (error: unknown, classifier: Classifier) => Option.Option<Verdict> = internal.classifyError

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

/**
 * Response headers in any of the usual shapes: a WHATWG `Headers`, or a record
 * (as `@effect/platform`'s `Headers`, or Node's `IncomingHttpHeaders`).
 * Record lookups are case-insensitive.
 *
 * @since 0.1.0
 * @category Models
 */
export type HeadersInput =
  | { readonly get: (name: string) => string | null }
  | Readonly<Record<string, string | ReadonlyArray<string> | undefined>>

/**
 * What {@link fromResponse} needs of a response.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ResponseLike {
  readonly status: number
  readonly headers?: HeadersInput
}

/**
 * Parses a `Retry-After` value, in either form of RFC 9110 §10.2.3:
 * delta-seconds (`"120"`; decimals such as `"1.5"` are accepted) or an
 * HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`, also the obsolete RFC 850 and
 * asctime forms). Returns `None` for anything else (negative numbers, junk,
 * dates without a zone). A date in the past means zero; values above `max`
 * are capped at `max`, never trusted blindly.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * Failure.parseRetryAfter("7", { now: Date.now(), max: Duration.minutes(1) }) // Some(7 seconds)
 * Failure.parseRetryAfter("soon", { now: Date.now(), max: Duration.minutes(1) }) // None
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const parseRetryAfter: (
  value: string,
  options: { readonly now: number; readonly max: Duration.Duration }
) => Option.Option<Duration.Duration> = retryAfter.parseRetryAfter

/**
 * Classifies a response with an explicit classifier and clock reading. Returns
 * `None` for a success, otherwise the typed failure to fail with; transient
 * ones carry the (capped) `Retry-After`.
 *
 * @since 0.1.0
 * @category HTTP
 */
export const classifyResponse: (
  response: ResponseLike,
  options: { readonly classifier: Classifier; readonly now: number; readonly operation?: string }
) => Option.Option<TransientError<never> | TerminalError<never>> = internal.classifyResponse

/**
 * Classifies a response with the {@link CurrentClassifier} and the `Clock`.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * const checked = (response: { status: number; headers: Record<string, string> }) =>
 *   Failure.fromResponse(response, "charge card").pipe(
 *     Effect.flatMap(Option.match({ onNone: () => Effect.succeed(response), onSome: Effect.fail }))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const fromResponse: (
  response: ResponseLike,
  operation?: string
) => Effect.Effect<Option.Option<TransientError<never> | TerminalError<never>>> = internal.fromResponse

// -----------------------------------------------------------------------------
// Lifting
// -----------------------------------------------------------------------------

/**
 * The error channel after lifting: errors already in the model keep their
 * type; every other error `E` becomes `TransientError<E> | TerminalError<E>`.
 *
 * @since 0.1.0
 * @category Models
 */
export type Lifted<E> =
  | Extract<E, Transient | Terminal>
  | TransientError<Exclude<E, Transient | Terminal>>
  | TerminalError<Exclude<E, Transient | Terminal>>

/**
 * Lifts any error type into the model with your own predicate. The original
 * error becomes the `cause`; errors already transient or terminal pass through
 * unchanged.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * class DbError { readonly _tag = "DbError"; constructor(readonly code: string) {} }
 *
 * const query = Effect.fail(new DbError("40001")).pipe(
 *   Failure.lift((error) => (error.code === "40001" ? "transient" : "terminal"))
 * )
 * // Effect<never, TransientError<DbError> | TerminalError<DbError>>
 * ```
 *
 * @since 0.1.0
 * @category Lifting
 */
export const lift: {
  <E>(
    verdict: (error: Exclude<E, Transient | Terminal>) => Verdict,
    options?: LiftOptions<Exclude<E, Transient | Terminal>>
  ): <A, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Lifted<E>, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    verdict: (error: Exclude<E, Transient | Terminal>) => Verdict,
    options?: LiftOptions<Exclude<E, Transient | Terminal>>
  ): Effect.Effect<A, Lifted<E>, R>
} = internal.lift

/**
 * Options of {@link lift} and {@link classify}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface LiftOptions<E> {
  /** A message for the lifted error. Defaults to the original error's `message`, or its tag. */
  readonly message?: (error: E) => string
  /** A server-style hint to carry on transient errors. */
  readonly retryAfter?: (error: E) => Duration.Duration | undefined
}

/**
 * Lifts errors with the {@link CurrentClassifier}'s `tags` and `codes` tables.
 * Errors the classifier does not know get `unknown` (default `"terminal"`:
 * nothing is retried unless someone said it is safe).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * class TimeoutException { readonly _tag = "TimeoutException" }
 * const lifted = Effect.fail(new TimeoutException()).pipe(Failure.classify())
 * // fails with TransientError<TimeoutException>
 * ```
 *
 * @since 0.1.0
 * @category Lifting
 */
export const classify: <E>(
  options?: LiftOptions<Exclude<E, Transient | Terminal>> & { readonly unknown?: Verdict }
) => <A, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Lifted<E>, R> = internal.classify
