/**
 * The brands and the errors of the failure model (see `Failure.ts`, which
 * re-exports every name here). A leaf: for its values it imports only
 * `format.ts`, so any module may use these without loading the classifier.
 */
import type * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import type * as Duration from "effect/Duration"
import * as Inspectable from "effect/Inspectable"
import type { ExhaustionReason, Terminal, TerminalReason, Transient, TransientReason } from "../Failure.js"
import { formatDuration } from "./format.js"

/**
 * The brand carried by every transient failure.
 *
 * @since 0.1.0
 * @category Symbols
 */
export const TransientTypeId: unique symbol = Symbol.for("@bulwark/resilience/Failure/Transient")

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TransientTypeId = typeof TransientTypeId

/**
 * The brand carried by every terminal failure.
 *
 * @since 0.1.0
 * @category Symbols
 */
export const TerminalTypeId: unique symbol = Symbol.for("@bulwark/resilience/Failure/Terminal")

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TerminalTypeId = typeof TerminalTypeId

/**
 * The brand carried by rejections: a local policy (open breaker, full
 * bulkhead, rate limit) refused the call, so the dependency was never called.
 *
 * @since 0.1.0
 * @category Symbols
 */
export const RejectionTypeId: unique symbol = Symbol.for("@bulwark/resilience/Failure/Rejection")

/**
 * @since 0.1.0
 * @category Symbols
 */
export type RejectionTypeId = typeof RejectionTypeId

/**
 * A generic transient failure. `cause` keeps the original error when one was
 * lifted; `retryAfter` is the server's hint, already capped by the classifier.
 *
 * @example
 * ```ts
 * import { Duration, Effect } from "effect"
 * import { Failure } from "@bulwark/resilience"
 *
 * const busy = Effect.fail(new Failure.TransientError({
 *   reason: "HttpStatus",
 *   message: "payment gateway answered 503",
 *   status: 503,
 *   retryAfter: Duration.seconds(2)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Errors
 */
export class TransientError<out Cause = unknown> extends Data.TaggedError("TransientError")<{
  readonly reason: TransientReason
  readonly message: string
  readonly status?: number
  readonly retryAfter?: Duration.Duration
  readonly cause?: Cause
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId
}

/**
 * A generic terminal failure. `cause` keeps the original error when one was lifted.
 *
 * @since 0.1.0
 * @category Errors
 */
export class TerminalError<out Cause = unknown> extends Data.TaggedError("TerminalError")<{
  readonly reason: TerminalReason
  readonly message: string
  readonly status?: number
  readonly cause?: Cause
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId
}

/**
 * A retry loop gave up on a transient failure. It is neither transient nor
 * terminal: this layer already retried, and outer layers decide what it
 * means for them. `lastFailure` is the failure of the final attempt.
 *
 * @since 0.1.0
 * @category Errors
 */
export class RetriesExhausted<out E = unknown> extends Data.TaggedError("RetriesExhausted")<{
  readonly policy: string
  readonly reason: ExhaustionReason
  readonly attempts: number
  readonly elapsed: Duration.Duration
  readonly lastFailure: E
}> {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return exhaustedMessage(this)
  }
}

/**
 * Options given to a Bulwark constructor were invalid. Terminal: the same
 * options will never work. Names the component, the option, what was given
 * and what was expected.
 *
 * @since 0.1.0
 * @category Errors
 */
export class InvalidOptionsError extends Data.TaggedError("InvalidOptionsError")<{
  readonly component: string
  readonly option: string
  readonly value: unknown
  readonly expected: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return invalidOptionsMessage(this)
  }
}

// -----------------------------------------------------------------------------
// Constructors for user-declared errors
// -----------------------------------------------------------------------------

/** An error's fields without the keys the base class owns. */
type Fields<A, Owned extends PropertyKey> = { readonly [P in keyof A as P extends Owned ? never : P]: A[P] }

/** `void` (no argument) when every field is optional, as `new GatewayDown()`. */
type ArgsOf<F> = {} extends F ? void | F : F

/** A transient error may carry a `retryAfter` hint; declaring it in the fields makes it required or keeps it optional. */
type WithRetryAfter<A> = "retryAfter" extends keyof A ? A : A & { readonly retryAfter?: Duration.Duration }

/**
 * What `TransientTaggedError(tag)` returns: a base class whose instances are
 * transient in their type (the brand typed as the unique symbol) and at run
 * time.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TransientTaggedErrorConstructor<Tag extends string> {
  new<A extends object & { readonly retryAfter?: Duration.Duration } = {}>(
    args: ArgsOf<Fields<WithRetryAfter<A>, "_tag" | TransientTypeId>>
  ): Cause.YieldableError & { readonly _tag: Tag } & Transient & Readonly<WithRetryAfter<A>>
}

/**
 * What `TerminalTaggedError(tag)` returns: a base class whose instances are
 * terminal in their type (the brand typed as the unique symbol) and at run
 * time.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TerminalTaggedErrorConstructor<Tag extends string> {
  new<A extends object = {}>(
    args: ArgsOf<Fields<A, "_tag" | TerminalTypeId>>
  ): Cause.YieldableError & { readonly _tag: Tag } & Terminal & Readonly<A>
}

/** @internal */
export const TransientTaggedError = <Tag extends string>(tag: Tag): TransientTaggedErrorConstructor<Tag> => {
  class Base extends Data.TaggedError(tag)<{}> {
    readonly [TransientTypeId]: TransientTypeId = TransientTypeId
  }
  return Base as unknown as TransientTaggedErrorConstructor<Tag>
}

/** @internal */
export const TerminalTaggedError = <Tag extends string>(tag: Tag): TerminalTaggedErrorConstructor<Tag> => {
  class Base extends Data.TaggedError(tag)<{}> {
    readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId
  }
  return Base as unknown as TerminalTaggedErrorConstructor<Tag>
}

const hasProperty = <K extends PropertyKey>(u: unknown, key: K): u is { readonly [P in K]: unknown } =>
  typeof u === "object" && u !== null && key in u

const exhaustedMessage = (self: RetriesExhausted<unknown>): string => {
  const why = {
    MaxAttempts: "attempt limit reached",
    MaxElapsed: "the time budget was spent",
    Budget: "the shared retry budget is spent",
    ScheduleDone: "the backoff schedule ended"
  }[self.reason]
  const failure = self.lastFailure
  const last = hasProperty(failure, "message") && typeof failure.message === "string" && failure.message.length > 0
    ? failure.message
    : hasProperty(failure, "_tag") && typeof failure._tag === "string"
    ? failure._tag
    : Inspectable.toStringUnknown(failure, undefined)
  return `Retry policy "${self.policy}" gave up after ${self.attempts} attempt${self.attempts === 1 ? "" : "s"} ` +
    `in ${formatDuration(self.elapsed)} (${why}); last failure: ${last}`
}

const show = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "bigint") return `${value}n`
  return Inspectable.toStringUnknown(value, undefined)
}

const invalidOptionsMessage = (self: InvalidOptionsError): string =>
  `${self.component}: option "${self.option}" must be ${self.expected} (got ${show(self.value)})`
