import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import { InvalidOptionsError } from "../../internal/failureErrors.js"
import * as check from "../../internal/options.js"
import type { InitialState, Options, TripStrategy } from "../CircuitBreaker.js"
import type { Settings } from "./transition.js"
import * as trip from "./trip.js"

/** @internal */
export const DEFAULT_OPEN_DURATION = Duration.seconds(30)
/** @internal */
export const DEFAULT_PERMITS = 3
/** @internal */
export const DEFAULT_CLOSE_AFTER = 3

const MAX_PERMITS = 1_000_000

/** @internal */
export interface Resolved<E, A> {
  readonly name: string
  readonly settings: Settings
  /** `Infinity` when no slow-call duration is configured. */
  readonly slowCallMillis: number
  /**
   * Whether every finished call's end time and duration are needed (a
   * slow-call duration, or a strategy that reads time or durations); when
   * not, they are read only for events and trips.
   */
  readonly measureEveryCall: boolean
  readonly recordError: ((error: E) => boolean) | undefined
  readonly ignoreError: ((error: E) => boolean) | undefined
  readonly recordResult: ((value: A) => boolean) | undefined
  readonly countRejections: boolean
  readonly initialState: InitialState
}

interface OpenDuration {
  /** Draws the open duration of the n-th consecutive opening (n ≥ 1), which happens at `now`. */
  readonly draw: (opening: number, now: number) => number
  /** The first opening's duration as the breaker was made: the `retryAfter` of a forced-open breaker. */
  readonly first: number
}

const delayOf = (decision: ScheduleDecision.ScheduleDecision, now: number): number | undefined =>
  ScheduleDecision.isDone(decision) ? undefined : Math.max(0, ScheduleIntervals.start(decision.intervals) - now)

/**
 * Steps the schedule once per opening, at the time of the opening, so a
 * jittered schedule draws a new duration for every opening (from the Random
 * service, and the Clock, of the fiber that made the breaker). The first
 * opening after a close starts the schedule again. Openings after the
 * schedule ends, or whose step is not synchronous or fails, keep the last
 * duration.
 */
const scheduleDriver = (
  schedule: Schedule.Schedule<unknown, number>,
  field: check.Field
): Effect.Effect<OpenDuration, InvalidOptionsError> =>
  Effect.gen(function*() {
    const random = yield* Effect.random
    const clock = yield* Effect.clock
    const checked: readonly [unknown, unknown, ScheduleDecision.ScheduleDecision] = yield* schedule.step(
      0,
      1,
      schedule.initial
    )
    const first = delayOf(checked[2], 0)
    if (first === undefined) {
      return yield* Effect.fail(check.invalid(field, "Schedule", "a schedule that recurs at least once"))
    }
    let state: unknown = schedule.initial
    let last = first
    let done = false
    const draw = (opening: number, now: number): number => {
      if (opening <= 1) {
        state = schedule.initial
        done = false
      }
      if (done) return last
      const exit = Effect.runSyncExit(
        Effect.withClock(Effect.withRandom(schedule.step(now, opening, state), random), clock)
      )
      if (Exit.isFailure(exit)) return last
      const delay = delayOf(exit.value[2], now)
      if (delay === undefined) {
        done = true
        return last
      }
      state = exit.value[0]
      last = delay
      return delay
    }
    return { draw, first }
  })

const openDurationOf = (
  input: Duration.DurationInput | Schedule.Schedule<unknown, number> | undefined
): Effect.Effect<OpenDuration, InvalidOptionsError> => {
  const field = { component: trip.COMPONENT, option: "openDuration" }
  if (input !== undefined && Schedule.isSchedule(input)) return scheduleDriver(input, field)
  return Effect.map(
    check.duration(field, input ?? DEFAULT_OPEN_DURATION, { allowZero: false }),
    (duration) => {
      const millis = Duration.toMillis(duration)
      return { draw: () => millis, first: millis }
    }
  )
}

const strategiesOf = (input: Options["trip"]): ReadonlyArray<TripStrategy> =>
  input === undefined ? [trip.consecutiveFailures()] : "name" in input ? [input] : input

const withComponent = (error: InvalidOptionsError, component: string): InvalidOptionsError =>
  new InvalidOptionsError({ component, option: error.option, value: error.value, expected: error.expected })

/** @internal */
export const resolve = <E, A>(options: Options<E, A>): Effect.Effect<Resolved<E, A>, InvalidOptionsError> => {
  const base = { component: trip.COMPONENT, option: "name" }
  const validated = Effect.gen(function*() {
    const name = yield* check.name(base, options.name)
    const field = (option: string): check.Field => ({ component: trip.COMPONENT, option })
    const strategies = strategiesOf(options.trip)
    if (strategies.length === 0) {
      return yield* Effect.fail(check.invalid(field("trip"), strategies, "at least one trip strategy"))
    }
    const windows = yield* Effect.forEach(strategies, (strategy) => strategy.initial)
    const slowCall = yield* check.optionalDuration(field("slowCallDuration"), options.slowCallDuration)
    const countsSlowCalls = strategies.some((strategy) => strategy.countsSlowCalls)
    if (countsSlowCalls && slowCall === undefined) {
      return yield* Effect.fail(
        check.invalid(field("slowCallDuration"), undefined, "a duration when a trip strategy counts slow calls")
      )
    }
    const halfOpen = options.halfOpen ?? {}
    const permits = yield* check.number(field("halfOpen.permits"), halfOpen.permits ?? DEFAULT_PERMITS, {
      min: 1,
      max: MAX_PERMITS,
      integer: true
    })
    const closeAfter = yield* check.number(
      field("halfOpen.closeAfter"),
      halfOpen.closeAfter ?? Math.min(DEFAULT_CLOSE_AFTER, permits),
      { min: 1, max: permits, integer: true }
    )
    const failureLimit = halfOpen.failureRateThreshold === undefined
      ? 1
      : Math.max(
        1,
        Math.ceil(
          ((yield* trip.percentage("halfOpen.failureRateThreshold", halfOpen.failureRateThreshold)) * permits) / 100
        )
      )
    const halfOpenMax = yield* check.optionalDuration(field("halfOpen.maxDuration"), halfOpen.maxDuration, {
      allowZero: false
    })
    const openDuration = yield* openDurationOf(options.openDuration)
    const initialState = options.initialState ?? "Closed"
    if (!["Closed", "ForcedOpen", "Disabled", "MetricsOnly"].includes(initialState)) {
      return yield* Effect.fail(
        check.invalid(field("initialState"), initialState, "one of Closed, ForcedOpen, Disabled, MetricsOnly")
      )
    }
    const resolved: Resolved<E, A> = {
      name,
      settings: {
        windows,
        openDurationMillis: openDuration.draw,
        forcedOpenRetryAfterMillis: openDuration.first,
        permits,
        closeAfter,
        failureLimit,
        slowProbeFails: countsSlowCalls,
        halfOpenMaxMillis: halfOpenMax === undefined ? Infinity : Duration.toMillis(halfOpenMax)
      },
      slowCallMillis: slowCall === undefined ? Infinity : Duration.toMillis(slowCall),
      measureEveryCall: slowCall !== undefined || !strategies.every(trip.isTimeless),
      recordError: options.recordError,
      ignoreError: options.ignoreError,
      recordResult: options.recordResult,
      countRejections: options.countRejections ?? false,
      initialState
    }
    return resolved
  })
  return Effect.mapError(
    validated,
    (error) => error.option === "name" ? error : withComponent(error, `${trip.COMPONENT} "${options.name}"`)
  )
}
