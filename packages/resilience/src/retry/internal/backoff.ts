import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleInterval from "effect/ScheduleInterval"

/**
 * Backoff arithmetic, pure and in milliseconds. `attempt` is the retry number
 * (1 = the first retry); `u` is a uniform random number in [0, 1).
 *
 * @internal
 */
export type ValidBackoff =
  | { readonly _tag: "Constant"; readonly delay: number }
  | { readonly _tag: "Linear"; readonly base: number; readonly increment: number; readonly cap: number }
  | { readonly _tag: "Exponential"; readonly base: number; readonly factor: number; readonly cap: number }
  | { readonly _tag: "Fibonacci"; readonly base: number; readonly cap: number }

/** @internal */
export type ValidJitter =
  | { readonly _tag: "None" }
  | { readonly _tag: "Full" }
  | { readonly _tag: "Equal" }
  | { readonly _tag: "Decorrelated" }
  | { readonly _tag: "Proportional"; readonly ratio: number }

const fibonacci = (n: number): number => {
  let previous = 0
  let current = 1
  for (let i = 1; i < n && Number.isFinite(current); i++) {
    const next = previous + current
    previous = current
    current = next
  }
  return current
}

/** @internal */
export const baseOf = (backoff: ValidBackoff): number => backoff._tag === "Constant" ? backoff.delay : backoff.base

/** @internal */
export const capOf = (backoff: ValidBackoff): number => backoff._tag === "Constant" ? Infinity : backoff.cap

/**
 * The delay before retry `attempt`, before jitter, capped.
 *
 * @internal
 */
export const rawDelay = (backoff: ValidBackoff, attempt: number): number => {
  switch (backoff._tag) {
    case "Constant":
      return backoff.delay
    case "Linear":
      return Math.min(backoff.cap, backoff.base + backoff.increment * (attempt - 1))
    case "Exponential":
      // factor^(attempt-1) overflows to Infinity for large attempts; min() brings it back to the cap.
      return Math.min(backoff.cap, backoff.base * Math.pow(backoff.factor, attempt - 1))
    case "Fibonacci":
      return Math.min(backoff.cap, backoff.base * fibonacci(attempt))
  }
}

/**
 * Applies jitter to a raw delay `d`:
 * - full: `random(0, d)`
 * - equal: `d/2 + random(0, d/2)`
 * - decorrelated: `min(cap, random(base, previous·3))`, where `previous` is the
 *   last delay actually used (the base before the first retry)
 * - proportional ±r: `d·(1 - r + 2r·u)`, never above the cap
 *
 * @internal
 */
export const jittered = (
  backoff: ValidBackoff,
  jitter: ValidJitter,
  attempt: number,
  previous: number,
  u: number
): number => {
  const d = rawDelay(backoff, attempt)
  switch (jitter._tag) {
    case "None":
      return d
    case "Full":
      return u * d
    case "Equal":
      return d / 2 + u * (d / 2)
    case "Decorrelated": {
      const base = baseOf(backoff)
      const upper = Math.max(base, previous * 3)
      return Math.min(capOf(backoff), base + u * (upper - base))
    }
    case "Proportional":
      return Math.min(capOf(backoff), d * (1 - jitter.ratio + 2 * jitter.ratio * u))
  }
}

interface BackoffState {
  readonly attempt: number
  readonly previous: number
}

const next = (
  backoff: ValidBackoff,
  jitter: ValidJitter,
  now: number,
  state: BackoffState,
  u: number
): readonly [BackoffState, Duration.Duration, ScheduleDecision.ScheduleDecision] => {
  const attempt = state.attempt + 1
  const delay = jittered(backoff, jitter, attempt, state.previous, u)
  return [
    { attempt, previous: delay },
    Duration.millis(delay),
    ScheduleDecision.continueWith(ScheduleInterval.after(now + delay))
  ]
}

/**
 * A `Schedule` of jittered backoff delays that never stops by itself (attempt
 * and time limits belong to the retry policy). Random numbers come from
 * Effect's `Random`, so a seeded `Random` makes it deterministic.
 *
 * @internal
 */
export const schedule = (backoff: ValidBackoff, jitter: ValidJitter): Schedule.Schedule<Duration.Duration> =>
  Schedule.makeWithState<BackoffState, unknown, Duration.Duration>(
    { attempt: 0, previous: baseOf(backoff) },
    (now, _input, state) =>
      jitter._tag === "None"
        ? Effect.succeed(next(backoff, jitter, now, state, 0))
        : Effect.map(Random.next, (u) => next(backoff, jitter, now, state, u))
  )

/**
 * Multiplicative jitter on top of any user schedule. Decorrelated jitter needs
 * a base and a cap, so it is only offered for the built-in backoffs.
 *
 * @internal
 */
export const jitterSchedule = <Out, In, R>(
  self: Schedule.Schedule<Out, In, R>,
  jitter: Exclude<ValidJitter, { readonly _tag: "Decorrelated" }>
): Schedule.Schedule<Out, In, R> => {
  switch (jitter._tag) {
    case "None":
      return self
    case "Full":
      return Schedule.jitteredWith(self, { min: 0, max: 1 })
    case "Equal":
      return Schedule.jitteredWith(self, { min: 0.5, max: 1 })
    case "Proportional":
      return Schedule.jitteredWith(self, { min: 1 - jitter.ratio, max: 1 + jitter.ratio })
  }
}
