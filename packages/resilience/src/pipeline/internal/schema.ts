/**
 * The pipeline's configuration schema, and how its failures become
 * `InvalidPipelineConfigError`s naming the field.
 *
 * Every leaf carries its own message ("expected a positive integer, got -1")
 * that overrides Schema's default, so a message reads the same whatever the
 * source; cross-field rules are filters on their section that point at the
 * field to change. Optional fields are exact (no `| undefined` member), which
 * keeps "Expected undefined" out of the messages.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Inspectable from "effect/Inspectable"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { InvalidOptionsError } from "../../Failure.js"
import type * as Pipeline from "../Pipeline.js"
import { InvalidPipelineConfigError } from "./errors.js"

/** @internal */
export const defaults = {
  rateLimit: { algorithm: "tokenBucket", onExceeded: "reject", maxWait: Duration.seconds(5) },
  idempotency: {
    lease: Duration.seconds(30),
    ttl: Duration.hours(24),
    storeFailures: "terminal",
    maxStoredBytes: 1_048_576
  },
  circuitBreaker: {
    failureThreshold: 5,
    openDuration: Duration.seconds(30),
    halfOpen: { permits: 3, closeAfter: 3 },
    rate: { threshold: 50, windowCalls: 100 }
  },
  bulkhead: { maxQueued: 0 },
  retry: {
    maxAttempts: 4,
    backoff: "exponential",
    base: Duration.millis(100),
    factor: 2,
    cap: Duration.seconds(5),
    jitter: "full",
    respectRetryAfter: true,
    budget: { ratio: 0.2, minRetriesPerSecond: 10, window: Duration.seconds(10) }
  }
} as const

// -----------------------------------------------------------------------------
// Messages
// -----------------------------------------------------------------------------

const MAX_SHOWN = 80

/** A value as a message shows it: strings quoted, long values cut. */
export const show = (value: unknown): string => {
  const text = value === undefined
    ? "nothing"
    : typeof value === "string"
    ? JSON.stringify(value)
    : Duration.isDuration(value)
    ? Duration.format(value)
    : Inspectable.toStringUnknown(value, undefined)
  return text.length > MAX_SHOWN ? `${text.slice(0, MAX_SHOWN - 1)}…` : text
}

/** A leaf's message, used whatever failed inside it. */
const expected = (what: string) => ({
  message: (issue: ParseResult.ParseIssue) => ({
    message: `expected ${what}, got ${show(issue.actual)}`,
    override: true
  })
})

/** A section's message when it is not an object; failures inside it keep their own. */
const anObject = {
  message: (issue: ParseResult.ParseIssue) => `expected an object, got ${show(issue.actual)}`
}

// -----------------------------------------------------------------------------
// Leaves
// -----------------------------------------------------------------------------

const NAME = /^[A-Za-z0-9_.:/-]{1,128}$/
/** What `Idempotency` accepts as a scope. */
const SCOPE = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/

const Name = Schema.String.pipe(Schema.pattern(NAME)).annotations(
  expected("a name of 1 to 128 characters of A-Z a-z 0-9 _ . : / -")
)
const Scope = Schema.String.pipe(Schema.pattern(SCOPE)).annotations(
  expected("1 to 128 printable ASCII characters, without leading or trailing spaces")
)
const PositiveInt = Schema.Number.pipe(Schema.int(), Schema.positive()).annotations(expected("a positive integer"))
const NonNegativeInt = Schema.Number.pipe(Schema.int(), Schema.nonNegative()).annotations(
  expected("an integer ≥ 0")
)
const Percentage = Schema.Number.pipe(Schema.greaterThan(0), Schema.lessThanOrEqualTo(100)).annotations(
  expected("a percentage above 0 and at most 100")
)
const Factor = Schema.Number.pipe(Schema.finite(), Schema.greaterThanOrEqualTo(1)).annotations(
  expected("a number ≥ 1")
)
const Ratio = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1000)).annotations(
  expected("a number from 0 to 1000")
)
const PerSecond = Schema.Number.pipe(Schema.finite(), Schema.between(0, 1_000_000)).annotations(
  expected("a number from 0 to 1000000")
)
const StoredBytes = Schema.Number.pipe(Schema.int(), Schema.between(1, 64 * 1_048_576)).annotations(
  expected("an integer from 1 to 67108864")
)
const Bool = Schema.Boolean.annotations(expected("true or false"))

const oneOf = <const L extends ReadonlyArray<string>>(...values: L) =>
  Schema.Literal(...values).annotations(expected(`one of ${values.map((value) => JSON.stringify(value)).join(", ")}`))

const NEGATIVE = /^\s*-/

/** A duration as written: a string such as "30 seconds", a number of milliseconds, or a Duration. */
const parseDuration = (input: string | number | Duration.Duration): Duration.Duration | undefined => {
  if (Duration.isDuration(input)) return input
  if (typeof input === "number") return Number.isFinite(input) && input >= 0 ? Duration.millis(input) : undefined
  if (NEGATIVE.test(input)) return undefined
  const decoded = Duration.decodeUnknown(input.trim())
  return decoded._tag === "Some" ? decoded.value : undefined
}

const duration = (kind: "positive" | "non-negative") =>
  Schema.transformOrFail(
    Schema.Union(Schema.String, Schema.Number, Schema.DurationFromSelf),
    Schema.DurationFromSelf,
    {
      strict: true,
      decode: (input, _options, ast) => {
        const parsed = parseDuration(input)
        const valid = parsed !== undefined && Duration.isFinite(parsed) &&
          (kind === "non-negative" || !Duration.isZero(parsed))
        return valid ? ParseResult.succeed(parsed) : ParseResult.fail(new ParseResult.Type(ast, input))
      },
      encode: ParseResult.succeed
    }
  ).annotations(
    expected(`a ${kind} duration such as "30 seconds" or "250 millis", or a number of milliseconds`)
  )

const PositiveDuration = duration("positive")
const NonNegativeDuration = duration("non-negative")

const optional = <S extends Schema.Schema.Any>(schema: S) => Schema.optionalWith(schema, { exact: true })

const withDefault = <A, I>(schema: Schema.Schema<A, I>, value: A) =>
  Schema.optionalWith(schema, { exact: true, default: () => value })

// -----------------------------------------------------------------------------
// Sections
// -----------------------------------------------------------------------------

const RateLimitSection = Schema.Struct({
  algorithm: withDefault(
    oneOf("tokenBucket", "fixedWindow", "slidingWindowLog", "slidingWindowCounter", "leakyBucket", "gcra"),
    defaults.rateLimit.algorithm
  ),
  limit: PositiveInt,
  window: PositiveDuration,
  burst: optional(PositiveInt),
  capacity: optional(PositiveInt),
  onExceeded: withDefault(oneOf("reject", "wait"), defaults.rateLimit.onExceeded),
  maxWait: withDefault(NonNegativeDuration, defaults.rateLimit.maxWait)
}).annotations(anObject).pipe(
  Schema.filter((section) =>
    section.burst === undefined || section.algorithm === "tokenBucket" || section.algorithm === "gcra" ||
    { path: ["burst"], message: `applies to "tokenBucket" and "gcra" only (algorithm is "${section.algorithm}")` }
  ),
  Schema.filter((section) =>
    section.capacity === undefined || section.algorithm === "leakyBucket" ||
    { path: ["capacity"], message: `applies to "leakyBucket" only (algorithm is "${section.algorithm}")` }
  )
)

const IdempotencySection = Schema.Struct({
  scope: optional(Scope),
  lease: withDefault(PositiveDuration, defaults.idempotency.lease),
  ttl: withDefault(PositiveDuration, defaults.idempotency.ttl),
  waitForInFlight: optional(NonNegativeDuration),
  storeFailures: withDefault(oneOf("terminal", "all"), defaults.idempotency.storeFailures),
  maxStoredBytes: withDefault(StoredBytes, defaults.idempotency.maxStoredBytes)
}).annotations(anObject).pipe(
  Schema.filter((section) =>
    Duration.toMillis(section.lease) >= 10 ||
    { path: ["lease"], message: `expected at least 10 millis, got ${show(section.lease)}` }
  )
)

const RateRule = Schema.Struct({
  threshold: withDefault(Percentage, defaults.circuitBreaker.rate.threshold),
  minimumCalls: optional(PositiveInt),
  windowCalls: optional(PositiveInt),
  windowDuration: optional(PositiveDuration)
}).annotations(anObject).pipe(
  Schema.filter((section) =>
    section.windowCalls === undefined || section.windowDuration === undefined ||
    { path: ["windowDuration"], message: "expected windowCalls or windowDuration, not both" }
  )
)

const HalfOpenSection = Schema.Struct({
  permits: withDefault(PositiveInt, defaults.circuitBreaker.halfOpen.permits),
  closeAfter: optional(PositiveInt),
  maxDuration: optional(PositiveDuration)
}).annotations(anObject).pipe(
  Schema.filter((section) =>
    section.closeAfter === undefined || section.closeAfter <= section.permits ||
    {
      path: ["closeAfter"],
      message: `expected at most halfOpen.permits (${section.permits}), got ${section.closeAfter}`
    }
  )
)

const CircuitBreakerSection = Schema.Struct({
  failureThreshold: optional(PositiveInt),
  failureRate: optional(RateRule),
  slowCallDuration: optional(PositiveDuration),
  slowCallRate: optional(RateRule),
  openDuration: withDefault(PositiveDuration, defaults.circuitBreaker.openDuration),
  halfOpen: withDefault(HalfOpenSection, { permits: defaults.circuitBreaker.halfOpen.permits })
}).annotations(anObject).pipe(
  Schema.filter((section) =>
    section.slowCallRate === undefined || section.slowCallDuration !== undefined ||
    { path: ["slowCallDuration"], message: "is required when slowCallRate is set" }
  )
)

const BulkheadSection = Schema.Struct({
  maxConcurrent: PositiveInt,
  maxQueued: withDefault(NonNegativeInt, defaults.bulkhead.maxQueued),
  maxWait: optional(NonNegativeDuration)
}).annotations(anObject)

const BudgetSection = Schema.Struct({
  ratio: withDefault(Ratio, defaults.retry.budget.ratio),
  minRetriesPerSecond: withDefault(PerSecond, defaults.retry.budget.minRetriesPerSecond),
  window: withDefault(PositiveDuration, defaults.retry.budget.window)
}).annotations(anObject).pipe(
  Schema.filter((section) => {
    const seconds = Duration.toSeconds(section.window)
    return (Number.isInteger(seconds) && seconds >= 1 && seconds <= 60) ||
      { path: ["window"], message: `expected a whole number of seconds from 1 to 60, got ${show(section.window)}` }
  })
)

const RetrySection = Schema.Struct({
  maxAttempts: withDefault(PositiveInt, defaults.retry.maxAttempts),
  backoff: withDefault(oneOf("exponential", "constant", "linear", "fibonacci"), defaults.retry.backoff),
  base: withDefault(PositiveDuration, defaults.retry.base),
  factor: withDefault(Factor, defaults.retry.factor),
  cap: optional(PositiveDuration),
  jitter: withDefault(oneOf("full", "equal", "decorrelated", "none"), defaults.retry.jitter),
  maxElapsed: optional(PositiveDuration),
  respectRetryAfter: withDefault(Bool, defaults.retry.respectRetryAfter),
  budget: optional(BudgetSection)
}).annotations(anObject).pipe(
  Schema.filter((section) =>
    section.cap === undefined || Duration.greaterThanOrEqualTo(section.cap, section.base) ||
    { path: ["cap"], message: `expected at least retry.base (${show(section.base)}), got ${show(section.cap)}` }
  ),
  Schema.filter((section) =>
    section.jitter !== "decorrelated" || section.backoff !== "constant" ||
    { path: ["jitter"], message: `"decorrelated" needs a growing backoff, not "constant"` }
  )
)

const TimeoutSection = Schema.Struct({
  limit: PositiveDuration,
  onUninterruptible: optional(oneOf("wait", "abandon"))
}).annotations(anObject)

/** @internal */
export const ConfigSchema: Schema.Schema<Pipeline.Config, Pipeline.Input> = Schema.Struct({
  name: Name,
  rateLimit: optional(RateLimitSection),
  idempotency: optional(IdempotencySection),
  circuitBreaker: optional(CircuitBreakerSection),
  bulkhead: optional(BulkheadSection),
  retry: optional(RetrySection),
  timeout: optional(TimeoutSection)
}).annotations({ ...anObject, identifier: "Pipeline.Config" })

// -----------------------------------------------------------------------------
// Decoding
// -----------------------------------------------------------------------------

/** Names a field's path as the source knows it, e.g. an environment variable. */
export type Locate = (path: ReadonlyArray<string>) => string | undefined

const issueOf = (issue: ParseResult.ArrayFormatterIssue, locate: Locate | undefined): Pipeline.ConfigIssue => {
  const path = issue.path.map(String)
  const message = issue._tag === "Missing"
    ? "is required"
    : issue._tag === "Unexpected"
    ? `is not a setting (${issue.message.replace(/^is unexpected, /, "")})`
    : issue.message
  const variable = locate?.(path)
  return variable === undefined ? { path: path.join("."), message } : { path: path.join("."), message, variable }
}

/** @internal */
export const invalid = (source: string, issues: ReadonlyArray<Pipeline.ConfigIssue>) =>
  new InvalidPipelineConfigError({ source, issues })

const decodeConfig = Schema.decodeUnknownEither(ConfigSchema, { errors: "all", onExcessProperty: "error" })

/** @internal */
export const decode = (
  input: unknown,
  source: string,
  locate?: Locate
): Either.Either<Pipeline.Config, InvalidPipelineConfigError> =>
  Either.mapLeft(
    decodeConfig(input),
    (error) => invalid(source, ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => issueOf(issue, locate)))
  )

/** @internal */
export const fromConfig = (input: unknown): Effect.Effect<Pipeline.Config, InvalidPipelineConfigError> =>
  Effect.suspend(() => decode(input, "code"))

/**
 * A constructor's `InvalidOptionsError` as an issue of the section it was
 * built from. The schema checks what it can; this names the field for the
 * rest (a rate limiter's quota too large to compute exactly, say).
 *
 * @internal
 */
export const fromOptionsError = (
  source: string,
  section: string,
  error: InvalidOptionsError,
  rename: (option: string) => string = (option) => option
): InvalidPipelineConfigError =>
  invalid(source, [{
    path: `${section}.${rename(error.option)}`,
    message: `expected ${error.expected}, got ${show(error.value)}`
  }])
