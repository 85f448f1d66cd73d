import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
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

/** How many delays of an open-duration schedule are computed up front. */
const SCHEDULE_DELAYS = 64
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

const scheduleDelays = (
  schedule: Schedule.Schedule<unknown, number>,
  field: check.Field
): Effect.Effect<ReadonlyArray<number>, InvalidOptionsError> =>
  Effect.gen(function*() {
    const delays: Array<number> = []
    let state: unknown = schedule.initial
    let now = 0
    for (let opening = 1; opening <= SCHEDULE_DELAYS; opening++) {
      const step: readonly [unknown, unknown, ScheduleDecision.ScheduleDecision] = yield* schedule.step(
        now,
        opening,
        state
      )
      const decision = step[2]
      if (ScheduleDecision.isDone(decision)) break
      const delay = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
      delays.push(delay)
      state = step[0]
      now += delay
    }
    if (delays.length === 0) {
      return yield* Effect.fail(check.invalid(field, "Schedule", "a schedule that recurs at least once"))
    }
    return delays
  })

const openDurationMillis = (
  input: Duration.DurationInput | Schedule.Schedule<unknown, number> | undefined
): Effect.Effect<(opening: number) => number, InvalidOptionsError> => {
  const field = { component: trip.COMPONENT, option: "openDuration" }
  if (input !== undefined && Schedule.isSchedule(input)) {
    return Effect.map(scheduleDelays(input, field), (delays) => (opening) => {
      const index = Math.min(opening, delays.length) - 1
      return delays[index] ?? 0
    })
  }
  return Effect.map(
    check.duration(field, input ?? DEFAULT_OPEN_DURATION, { allowZero: false }),
    (duration) => {
      const millis = Duration.toMillis(duration)
      return () => millis
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
    const openDuration = yield* openDurationMillis(options.openDuration)
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
        openDurationMillis: openDuration,
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
