import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import type * as Retry from "../Retry.js"
import * as Backoff from "./backoff.js"

const component = "Retry"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  name: "default",
  backoff: { _tag: "Exponential", base: "100 millis", factor: 2, cap: "5 seconds" },
  jitter: "full",
  maxAttempts: 4,
  cap: Duration.seconds(30)
} as const

const millis = (duration: Duration.Duration): number => Duration.toMillis(duration)

const validateCap = (option: string, base: number, cap: Duration.DurationInput | undefined) =>
  Either.flatMap(
    Options.duration(field(option), cap ?? defaults.cap, { allowZero: false }),
    (valid) =>
      millis(valid) >= base
        ? Either.right(millis(valid))
        : Either.left(Options.invalid(field(option), cap, `a duration at least the base delay (${base}ms)`))
  )

/** @internal */
export const validateBackoff = (backoff: Retry.Backoff): Options.Check<Backoff.ValidBackoff> => {
  switch (backoff._tag) {
    case "Constant":
      return Either.map(Options.duration(field("backoff.delay"), backoff.delay), (delay) => ({
        _tag: "Constant",
        delay: millis(delay)
      }))
    case "Linear":
      return Either.flatMap(Options.duration(field("backoff.base"), backoff.base), (base) =>
        Either.flatMap(
          Options.duration(field("backoff.increment"), backoff.increment ?? base),
          (increment) =>
            Either.map(validateCap("backoff.cap", millis(base), backoff.cap), (cap) => ({
              _tag: "Linear",
              base: millis(base),
              increment: millis(increment),
              cap
            }))
        ))
    case "Exponential":
      return Either.flatMap(Options.duration(field("backoff.base"), backoff.base), (base) =>
        Either.flatMap(
          Options.number(field("backoff.factor"), backoff.factor ?? 2, { min: 1 }),
          (factor) =>
            Either.map(validateCap("backoff.cap", millis(base), backoff.cap), (cap) => ({
              _tag: "Exponential",
              base: millis(base),
              factor,
              cap
            }))
        ))
    case "Fibonacci":
      return Either.flatMap(
        Options.duration(field("backoff.base"), backoff.base),
        (base) =>
          Either.map(validateCap("backoff.cap", millis(base), backoff.cap), (cap) => ({
            _tag: "Fibonacci",
            base: millis(base),
            cap
          }))
      )
  }
}

/** @internal */
export const validateJitter = (jitter: Retry.Jitter): Options.Check<Backoff.ValidJitter> => {
  switch (jitter) {
    case "none":
      return Either.right({ _tag: "None" })
    case "full":
      return Either.right({ _tag: "Full" })
    case "equal":
      return Either.right({ _tag: "Equal" })
    case "decorrelated":
      return Either.right({ _tag: "Decorrelated" })
    default:
      if (typeof jitter === "object" && jitter !== null && "proportional" in jitter) {
        return Either.map(
          Options.number(field("jitter.proportional"), jitter.proportional, { min: 0, max: 1 }),
          (ratio) => ({ _tag: "Proportional", ratio })
        )
      }
      return Either.left(
        Options.invalid(field("jitter"), jitter, `"none", "full", "equal", "decorrelated" or { proportional: 0..1 }`)
      )
  }
}

const isBackoff = (u: Retry.Backoff | Schedule.Schedule<unknown, unknown>): u is Retry.Backoff =>
  !Schedule.isSchedule(u)

const validateSchedule = (
  backoff: Retry.Backoff | Schedule.Schedule<unknown, unknown>,
  jitter: Retry.Jitter
): Options.Check<Schedule.Schedule<unknown, unknown>> =>
  Either.flatMap(validateJitter(jitter), (validJitter) => {
    if (isBackoff(backoff)) {
      return Either.flatMap(validateBackoff(backoff), (validBackoff) =>
        validBackoff._tag === "Constant" && validJitter._tag === "Decorrelated"
          ? Either.left(
            Options.invalid(field("jitter"), jitter, "not \"decorrelated\" with a constant backoff (it needs a cap)")
          )
          : Either.right(Backoff.schedule(validBackoff, validJitter)))
    }
    if (validJitter._tag === "Decorrelated") {
      return Either.left(
        Options.invalid(
          field("jitter"),
          jitter,
          "not \"decorrelated\" with a custom Schedule (it needs a base and cap)"
        )
      )
    }
    return Either.right(Backoff.jitterSchedule(backoff, validJitter))
  })

/** @internal */
export const validate = (options: Retry.Retry.Options): Options.Check<Retry.Policy> =>
  Either.map(
    Either.all({
      name: Options.name(field("name"), options.name ?? defaults.name),
      schedule: validateSchedule(options.backoff ?? defaults.backoff, options.jitter ?? defaults.jitter),
      maxAttempts: Options.number(field("maxAttempts"), options.maxAttempts ?? defaults.maxAttempts, {
        min: 1,
        integer: true,
        allowInfinity: true
      }),
      maxElapsed: Options.optionalDuration(field("maxElapsed"), options.maxElapsed, { allowZero: false })
    }),
    (valid): Retry.Policy => ({
      name: valid.name,
      schedule: valid.schedule,
      maxAttempts: valid.maxAttempts,
      maxElapsed: Option.fromNullable(valid.maxElapsed),
      budget: Option.fromNullable(options.budget),
      respectRetryAfter: options.respectRetryAfter ?? true
    })
  )

/** @internal */
export const make = (options: Retry.Retry.Options = {}): Effect.Effect<Retry.Policy, InvalidOptionsError> =>
  validate(options)

/** @internal */
export const unsafeMake = (options: Retry.Retry.Options = {}): Retry.Policy =>
  Either.getOrThrowWith(validate(options), (error) => error)

/** @internal */
export const schedule = (
  backoff: Retry.Backoff,
  jitter: Retry.Jitter = defaults.jitter
): Effect.Effect<Schedule.Schedule<Duration.Duration>, InvalidOptionsError> =>
  Either.flatMap(
    validateBackoff(backoff),
    (validBackoff) => Either.map(validateJitter(jitter), (validJitter) => Backoff.schedule(validBackoff, validJitter))
  )

/** @internal */
export const constant = (delay: Duration.DurationInput): Retry.Backoff => ({ _tag: "Constant", delay })

/** @internal */
export const linear = (options: Omit<Retry.Backoff.Linear, "_tag">): Retry.Backoff => ({ _tag: "Linear", ...options })

/** @internal */
export const exponential = (options: Omit<Retry.Backoff.Exponential, "_tag">): Retry.Backoff => ({
  _tag: "Exponential",
  ...options
})

/** @internal */
export const fibonacci = (options: Omit<Retry.Backoff.Fibonacci, "_tag">): Retry.Backoff => ({
  _tag: "Fibonacci",
  ...options
})
