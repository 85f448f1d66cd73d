/**
 * Trip strategies: pure answers to "should the breaker open now?".
 *
 * Each strategy is an immutable window over finished calls plus a check.
 * Invalid strategy options do not throw: the strategy carries the error in
 * `initial`, and `make` reports it as a typed `InvalidOptionsError`.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import * as check from "../../internal/options.js"
import type { RateOptions, RecordedCall, TripReason, TripStrategy, TripWindow, Window } from "../CircuitBreaker.js"
import * as window from "./window.js"

/** @internal */
export const COMPONENT = "CircuitBreaker"

/** @internal */
export const DEFAULT_CONSECUTIVE_FAILURES = 5
/** @internal */
export const DEFAULT_RATE_THRESHOLD = 50
/** @internal */
export const DEFAULT_WINDOW_CALLS = 100
/** @internal */
export const DEFAULT_MINIMUM_CALLS = 10
/** @internal */
export const DEFAULT_BUCKETS = 10

const MAX_WINDOW_CALLS = 100_000
const MAX_BUCKETS = 1_000

const field = (option: string): check.Field => ({ component: COMPONENT, option })

/** @internal */
export const percentage = (option: string, input: number): check.Check<number> =>
  Either.flatMap(
    check.number(field(option), input, { min: 0, max: 100 }),
    (value) =>
      value > 0 ? Either.right(value) : Either.left(check.invalid(field(option), input, "a percentage > 0 and ≤ 100"))
  )

const fromWindow = <S>(
  spec: {
    readonly name: string
    readonly initial: S
    readonly record: (state: S, call: RecordedCall, now: number) => S
    readonly check: (state: S, now: number) => Option.Option<TripReason>
  },
  state: S
): TripWindow => {
  const self: TripWindow = {
    // An unchanged state keeps this window, so the breaker's state need not be copied either.
    record(call, now) {
      const next = spec.record(state, call, now)
      return next === state ? self : fromWindow(spec, next)
    },
    check(now) {
      return spec.check(state, now)
    }
  }
  return self
}

/**
 * Strategies whose windows read neither the Clock's time nor a call's
 * duration: the built-in count-based ones. A breaker whose strategies are all
 * such, with no slow-call duration, need not read the Clock when a call ends.
 */
const timeless = new WeakSet<TripStrategy>()

/** @internal */
export const isTimeless = (strategy: TripStrategy): boolean => timeless.has(strategy)

const markTimeless = (strategy: TripStrategy): TripStrategy => {
  timeless.add(strategy)
  return strategy
}

/** @internal */
export const makeTripStrategy = <S>(options: {
  readonly name: string
  readonly initial: S
  readonly record: (state: S, call: RecordedCall, now: number) => S
  readonly check: (state: S, now: number) => Option.Option<TripReason>
  readonly countsSlowCalls?: boolean
}): TripStrategy => ({
  name: options.name,
  countsSlowCalls: options.countsSlowCalls ?? false,
  initial: Either.right(fromWindow(options, options.initial))
})

const invalidStrategy = (name: string, countsSlowCalls: boolean, error: InvalidOptionsError): TripStrategy => ({
  name,
  countsSlowCalls,
  initial: Either.left(error)
})

/** @internal */
export const consecutiveFailures = (threshold: number = DEFAULT_CONSECUTIVE_FAILURES): TripStrategy => {
  const name = "consecutive-failures"
  const valid = check.number(field("trip.consecutiveFailures"), threshold, { min: 1, integer: true })
  if (Either.isLeft(valid)) return invalidStrategy(name, false, valid.left)
  return markTimeless(makeTripStrategy<number>({
    name,
    initial: 0,
    record: (failures, call) => call.failure ? failures + 1 : 0,
    check: (failures) =>
      failures >= threshold
        ? Option.some({
          strategy: name,
          observed: failures,
          threshold,
          calls: failures,
          description: `${failures} consecutive failure${failures === 1 ? "" : "s"} (threshold ${threshold})`
        })
        : Option.none()
  }))
}

const formatPercent = (value: number): string => `${Math.round(value * 10) / 10}%`

interface ResolvedRate {
  readonly threshold: number
  readonly minimumCalls: number
  readonly window:
    | { readonly _tag: "Count"; readonly size: number }
    | { readonly _tag: "Time"; readonly duration: Duration.Duration; readonly buckets: number }
}

const isCountWindow = (input: Window): input is { readonly calls: number } => "calls" in input

const resolveRate = (prefix: string, options: RateOptions): check.Check<ResolvedRate> =>
  Either.gen(function*() {
    const threshold = yield* percentage(`${prefix}.threshold`, options.threshold ?? DEFAULT_RATE_THRESHOLD)
    const input = options.window ?? { calls: DEFAULT_WINDOW_CALLS }
    if (isCountWindow(input)) {
      const size = yield* check.number(field(`${prefix}.window.calls`), input.calls, {
        min: 1,
        max: MAX_WINDOW_CALLS,
        integer: true
      })
      const minimumCalls = yield* check.number(
        field(`${prefix}.minimumCalls`),
        options.minimumCalls ?? Math.min(DEFAULT_MINIMUM_CALLS, size),
        { min: 1, max: size, integer: true }
      )
      return { threshold, minimumCalls, window: { _tag: "Count", size } } as const
    }
    const duration = yield* check.duration(field(`${prefix}.window.duration`), input.duration, { allowZero: false })
    const buckets = yield* check.number(field(`${prefix}.window.buckets`), input.buckets ?? DEFAULT_BUCKETS, {
      min: 1,
      max: MAX_BUCKETS,
      integer: true
    })
    if (Duration.toMillis(duration) / buckets < 1) {
      return yield* Either.left(
        check.invalid(field(`${prefix}.window.buckets`), buckets, "at most one bucket per millisecond of the window")
      )
    }
    const minimumCalls = yield* check.number(
      field(`${prefix}.minimumCalls`),
      options.minimumCalls ?? DEFAULT_MINIMUM_CALLS,
      { min: 1, integer: true }
    )
    return { threshold, minimumCalls, window: { _tag: "Time", duration, buckets } } as const
  })

const rateStrategy = (
  name: string,
  prefix: string,
  options: RateOptions,
  counted: (totals: window.Totals) => number,
  what: string
): TripStrategy => {
  const countsSlowCalls = name === "slow-call-rate"
  const resolved = resolveRate(prefix, options)
  if (Either.isLeft(resolved)) return invalidStrategy(name, countsSlowCalls, resolved.left)
  const { minimumCalls, threshold } = resolved.right
  const verdict = (totals: window.Totals, over: string): Option.Option<TripReason> => {
    if (totals.calls < minimumCalls) return Option.none()
    const hits = counted(totals)
    // Compared in integers so 1 failure out of 2 calls is exactly 50%.
    if (hits * 100 < threshold * totals.calls) return Option.none()
    const observed = (hits / totals.calls) * 100
    return Option.some({
      strategy: name,
      observed,
      threshold,
      calls: totals.calls,
      description: `${what} ${formatPercent(observed)} ≥ ${formatPercent(threshold)} over ${over}`
    })
  }
  const spec = resolved.right.window
  if (spec._tag === "Count") {
    return markTimeless(makeTripStrategy<window.CountWindow>({
      name,
      countsSlowCalls,
      initial: window.emptyCount(spec.size),
      record: (state, call) => window.recordCount(state, call),
      check: (state) => verdict(state, `the last ${state.calls} calls`)
    }))
  }
  const bucketMillis = Duration.toMillis(spec.duration) / spec.buckets
  const span = Duration.format(spec.duration)
  return makeTripStrategy<window.TimeWindow>({
    name,
    countsSlowCalls,
    initial: window.emptyTime(bucketMillis, spec.buckets),
    record: (state, call, now) => window.recordTime(state, call, now),
    check: (state, now) => {
      const totals = window.totalsAt(state, now)
      return verdict(totals, `${totals.calls} calls in the last ${span}`)
    }
  })
}

/** @internal */
export const failureRate = (options: RateOptions = {}): TripStrategy =>
  rateStrategy("failure-rate", "trip.failureRate", options, (totals) => totals.failures, "failure rate")

/** @internal */
export const slowCallRate = (options: RateOptions = {}): TripStrategy =>
  rateStrategy("slow-call-rate", "trip.slowCallRate", options, (totals) => totals.slow, "slow-call rate")
