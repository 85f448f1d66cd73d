import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual, identity } from "effect/Function"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Options from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import type * as RateLimiter from "../RateLimiter.js"
import type { Binding, Decision, StoreDecision } from "../RateLimiter.js"
import type { Config } from "./config.js"
import { validate, wholeMillis } from "./config.js"
import { RateLimitedError } from "./errors.js"
import { RateLimiterStore } from "./store.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/RateLimiter")

/** @internal */
export const isRateLimitedError = (u: unknown): u is RateLimitedError => u instanceof RateLimitedError

/** @internal */
export const isRateLimiter = (u: unknown): u is RateLimiter.RateLimiter =>
  typeof u === "object" && u !== null && TypeId in u

const millis = (ms: number): Duration.Duration => (ms === 0 ? Duration.zero : Duration.millis(ms))

/** @internal */
export const build = (
  config: Config,
  algorithm: RateLimiter.Algorithm,
  binding: Binding
): RateLimiter.RateLimiter => {
  const { maxKeyLength, name, quota } = config
  const counted = {
    allowed: Metric.counter(Metrics.rateLimiterDecisions, { limiter: name, decision: "allowed" }),
    delayed: Metric.counter(Metrics.rateLimiterDecisions, { limiter: name, decision: "delayed" }),
    rejected: Metric.counter(Metrics.rateLimiterDecisions, { limiter: name, decision: "rejected" })
  }
  const policy: RateLimiter.Policy = {
    quota: config.spec.limit,
    window: Duration.millis(config.spec.window),
    burst: quota
  }
  // A leaky bucket lets a call through at once only when it is empty: with no wait allowed, nothing is left.
  const drainsFirst = config.spec._tag === "LeakyBucket"
  const remainingOf = (raw: StoreDecision, maxDelay: number): number =>
    drainsFirst && maxDelay === 0 ? 0 : raw.remaining
  const component = `RateLimiter "${name}"`
  const modeDelay = config.onExceeded === "wait" ? config.maxWait : 0

  const invalidInput = (key: string, cost: number): InvalidOptionsError | undefined => {
    if (typeof key !== "string" || key.length === 0 || key.length > maxKeyLength) {
      // Never the key itself: keys are user data, and may be huge.
      const value = typeof key === "string" ? { length: key.length } : typeof key
      return Options.invalid(
        { component, option: "key" },
        value,
        `a non-empty string of at most ${maxKeyLength} characters`
      )
    }
    if (!(Number.isInteger(cost) && cost >= 1 && cost <= quota)) {
      return Options.invalid({ component, option: "cost" }, cost, `a whole number from 1 to ${quota} (the quota)`)
    }
    return undefined
  }

  const decisionOf = (raw: StoreDecision, outcome: Decision["outcome"], maxDelay: number): Decision => ({
    limiter: name,
    outcome,
    limit: quota,
    remaining: remainingOf(raw, maxDelay),
    reset: millis(raw.reset),
    retryAfter: millis(raw.retryAfter),
    delay: millis(raw.delay),
    degraded: raw.degraded === true,
    policy
  })

  const settle = (
    key: string,
    cost: number,
    maxDelay: number,
    raw: StoreDecision,
    restore: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ): Effect.Effect<Decision, RateLimitedError> => {
    if (!raw.allowed) {
      counted.rejected()
      return Effect.fail(
        new RateLimitedError({
          limiter: name,
          reason: raw.degraded === true ? "StoreUnavailable" : "LimitExceeded",
          retryAfter: millis(raw.retryAfter),
          limit: quota,
          remaining: remainingOf(raw, maxDelay),
          reset: millis(raw.reset)
        })
      )
    }
    if (raw.delay === 0) {
      counted.allowed()
      return Effect.succeed(decisionOf(raw, "allowed", maxDelay))
    }
    counted.delayed()
    const waited = restore(Effect.as(Effect.sleep(Duration.millis(raw.delay)), decisionOf(raw, "delayed", maxDelay)))
    const reservation = raw.reservation
    if (reservation === undefined) return waited
    // A waiter interrupted before its slot gives the slot back; the finalizer runs once, so at most one refund.
    return Effect.onInterrupt(waited, () => binding.refund(key, cost, reservation))
  }

  const run = (
    key: string,
    cost: number,
    maxDelay: number
  ): Effect.Effect<Decision, RateLimitedError | InvalidOptionsError> => {
    const invalid = invalidInput(key, cost)
    if (invalid !== undefined) return Effect.fail(invalid)
    // No reservation without a wait: an interrupted caller leaves at once, and what the store took stays taken.
    if (maxDelay === 0) {
      return Effect.flatMap(binding.decide(key, cost, 0), (raw) => settle(key, cost, 0, raw, identity))
    }
    // With one, the decision is not interruptible: a reservation made for a caller interrupted while the store
    // decided is then seen, and the interruption lands on the sleep, whose finalizer gives the slot back.
    return Effect.uninterruptibleMask((restore) =>
      Effect.flatMap(binding.decide(key, cost, maxDelay), (raw) => settle(key, cost, maxDelay, raw, restore))
    )
  }

  const tryConsume = (key: string, cost = 1): Effect.Effect<Decision, InvalidOptionsError> => {
    const invalid = invalidInput(key, cost)
    if (invalid !== undefined) return Effect.fail(invalid)
    return Effect.map(binding.decide(key, cost, 0), (raw) => {
      if (raw.allowed) {
        counted.allowed()
        return decisionOf(raw, "allowed", 0)
      }
      counted.rejected()
      return decisionOf(raw, "rejected", 0)
    })
  }

  const admit = (
    key: string,
    cost = 1,
    maxWait?: Duration.DurationInput
  ): Effect.Effect<Decision, RateLimitedError | InvalidOptionsError> => {
    if (maxWait === undefined) return run(key, cost, config.maxWait)
    const valid = wholeMillis("maxWait", maxWait, { min: 0, max: 3_600_000 })
    return Either.isLeft(valid) ? Effect.fail(valid.left) : run(key, cost, valid.right)
  }

  return {
    [TypeId]: TypeId,
    name,
    algorithm,
    policy,
    onExceeded: config.onExceeded,
    maxWait: Duration.millis(config.maxWait),
    consume: (key, cost = 1) => run(key, cost, modeDelay),
    tryConsume,
    admit
  }
}

/** @internal */
export const make = (
  options: RateLimiter.RateLimiter.Options
): Effect.Effect<RateLimiter.RateLimiter, InvalidOptionsError, RateLimiterStore> =>
  Effect.flatMap(
    validate(options),
    (config) =>
      Effect.flatMap(
        RateLimiterStore,
        (store) => Effect.map(store.bind(config), (binding) => build(config, options.algorithm, binding))
      )
  )

/** @internal */
export const consume = dual<
  (
    key: string,
    cost?: number
  ) => (self: RateLimiter.RateLimiter) => Effect.Effect<Decision, RateLimitedError | InvalidOptionsError>,
  (
    self: RateLimiter.RateLimiter,
    key: string,
    cost?: number
  ) => Effect.Effect<Decision, RateLimitedError | InvalidOptionsError>
>((args) => isRateLimiter(args[0]), (self, key, cost) => self.consume(key, cost))

/** @internal */
export const tryConsume = dual<
  (key: string, cost?: number) => (self: RateLimiter.RateLimiter) => Effect.Effect<Decision, InvalidOptionsError>,
  (self: RateLimiter.RateLimiter, key: string, cost?: number) => Effect.Effect<Decision, InvalidOptionsError>
>((args) => isRateLimiter(args[0]), (self, key, cost) => self.tryConsume(key, cost))

/** @internal */
export const admit = (
  self: RateLimiter.RateLimiter,
  key: string,
  cost?: number,
  maxWait?: Duration.DurationInput
): Effect.Effect<Decision, RateLimitedError | InvalidOptionsError> => self.admit(key, cost, maxWait)

/** @internal */
export const limit = dual<
  (
    limiter: RateLimiter.RateLimiter,
    options?: { readonly key?: string; readonly cost?: number }
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RateLimitedError | InvalidOptionsError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limiter: RateLimiter.RateLimiter,
    options?: { readonly key?: string; readonly cost?: number }
  ) => Effect.Effect<A, E | RateLimitedError | InvalidOptionsError, R>
>(
  (args) => Effect.isEffect(args[0]),
  (self, limiter, options) => Effect.zipRight(limiter.consume(options?.key ?? "global", options?.cost ?? 1), self)
)
