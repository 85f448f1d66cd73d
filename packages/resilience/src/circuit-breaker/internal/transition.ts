/**
 * Circuit breaker state machine (pure: no Effect runtime, no Clock, no mutation).
 *
 *   transition(state, signal, now, settings) -> [state, events]
 *
 * The shell keeps the state in one mutable cell and drives it with exactly one
 * synchronous `transition` call per step (read, compute, write back). That is
 * atomic on JavaScript's single thread, because fibers interleave only between
 * effects: no other fiber can see or change the state in between. A step that
 * changes nothing returns the same state object and, when it has nothing to
 * report, a shared empty event array, so the closed happy path allocates little.
 *
 *                       a trip strategy fires
 *        ┌──────────┐ ─────────────────────────▶ ┌────────┐
 *        │  Closed  │                            │  Open  │ ◀─────────────────────┐
 *        └──────────┘ ◀───┐                      └────────┘                       │
 *                         │                          │ open duration elapsed,     │ a probe fails, or every
 *      `closeAfter` probe │                          │ at a tick, call or read    │ probe ended without
 *      successes          │                          ▼                            │ `closeAfter` successes
 *                         │                     ┌──────────┐                      │
 *                         └──────────────────── │ HalfOpen │ ─────────────────────┘
 *                                               └──────────┘
 *
 * The machine itself has no timer. Time-driven moves (Open to HalfOpen at
 * `halfOpenAt`, a half-open period running out at `expiresAt`) happen on the
 * first signal at or after the due time: a call, a state read, or the tick
 * (`TICK`, the same as `Observe`) that a scoped breaker's timer sends at
 * `deadline(state)`. Whoever comes first moves the state; the others find it
 * moved, so the move happens exactly once.
 *
 *   Operator signals move any state to ForcedOpen, Closed, Disabled,
 *   MetricsOnly, or a fresh Closed (Reset). Nothing else leaves those states.
 *
 *   Fleet signals (a breaker shared through Redis, `fleet.ts`) carry what
 *   another instance decided: `FleetOpen` moves Closed or HalfOpen to Open
 *   until a given time (or moves an Open breaker's `halfOpenAt` there),
 *   `FleetClose` moves Open or HalfOpen to a fresh Closed. They never touch
 *   the operator states, so an operator's choice wins over the fleet's.
 *
 * ## Closed
 * Every call is permitted. A recorded outcome is folded into every trip
 * window; the first window whose check fires opens the breaker ("Tripped",
 * with the strategy's reason). Ignored outcomes touch no window.
 *
 * ## Open
 * Calls are rejected with the time left until `halfOpenAt`. The first call,
 * state read or tick at or after `halfOpenAt` moves to HalfOpen; a call doing
 * so takes the first probe permit.
 *
 * ## HalfOpen
 * At most `permits` probe permits are issued per half-open period; extra
 * calls are rejected with `retryAfter` zero. A probe success counts towards
 * `closeAfter` (then Closed, windows empty, openings forgotten). A probe
 * failure counts towards `failureLimit` (then Open again, with the next open
 * duration). When every permit has been used and neither count was reached,
 * the breaker reopens. An ignored or interrupted probe returns its permit.
 * With a time limit (`halfOpenMaxMillis`), the first call, state read or
 * tick at or after `expiresAt` reopens the breaker ("ProbesTimedOut"), so a
 * probe that never completes cannot keep it half-open.
 *
 * ## ForcedOpen, Disabled, MetricsOnly
 * ForcedOpen rejects everything. Disabled permits everything and counts
 * nothing. MetricsOnly behaves like Closed but reports a firing strategy as
 * "ThresholdExceeded" and starts its windows again instead of opening.
 *
 * ## Epochs
 * Entering any state starts a new epoch, and a permit carries the epoch it was
 * issued in. An outcome from an older epoch is reported (metrics) but changes
 * nothing: a straggler from before an opening cannot close the breaker or use
 * up a probe slot.
 *
 * ## Openings
 * `openings` counts the openings since the breaker last closed; the open
 * duration of the n-th opening is `settings.openDurationMillis(n, now)`, drawn
 * when it opens, which is how a Schedule backs off across openings (and
 * jitters each one) and restarts after a clean close.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type {
  InitialState,
  Outcome,
  RecordedCall,
  State,
  TransitionReason,
  TripReason,
  TripWindow
} from "../CircuitBreaker.js"

/** @internal */
export interface Settings {
  /** The empty trip windows, one per strategy. */
  readonly windows: ReadonlyArray<TripWindow>
  /**
   * The open duration of the n-th consecutive opening (n ≥ 1), which happens
   * at `now`. Called exactly once per opening, when it happens: a jittered
   * schedule draws each opening's duration then (so this one input may be
   * impure; the machine never calls it for anything but an opening).
   * `epoch` is the new Open state's epoch, unique to this opening in the
   * breaker's life: a shell that may compute one step more than once (an STM
   * transaction run again) draws once per epoch.
   */
  readonly openDurationMillis: (opening: number, now: number, epoch: number) => number
  /** What a forced-open breaker tells callers to wait: the first open duration. */
  readonly forcedOpenRetryAfterMillis: number
  readonly permits: number
  readonly closeAfter: number
  /** Failed probes that reopen the breaker. */
  readonly failureLimit: number
  /** Whether a slow probe counts as a failed probe. */
  readonly slowProbeFails: boolean
  /** How long a half-open period may last before the breaker opens again; `Infinity` for no limit. */
  readonly halfOpenMaxMillis: number
}

interface Epoch {
  readonly epoch: number
  readonly openings: number
}

/** @internal */
export interface Closed extends Epoch {
  readonly _tag: "Closed"
  readonly windows: ReadonlyArray<TripWindow>
}

/** @internal */
export interface Open extends Epoch {
  readonly _tag: "Open"
  readonly halfOpenAt: number
}

/** @internal */
export interface HalfOpen extends Epoch {
  readonly _tag: "HalfOpen"
  /** Permits issued and not handed back: probes in flight plus probes recorded. */
  readonly issued: number
  readonly successes: number
  readonly failures: number
  /** When this half-open period runs out (`Infinity` without a limit). */
  readonly expiresAt: number
}

/** @internal */
export interface ForcedOpen extends Epoch {
  readonly _tag: "ForcedOpen"
}

/** @internal */
export interface Disabled extends Epoch {
  readonly _tag: "Disabled"
}

/** @internal */
export interface MetricsOnly extends Epoch {
  readonly _tag: "MetricsOnly"
  readonly windows: ReadonlyArray<TripWindow>
}

/** @internal */
export type MachineState = Closed | Open | HalfOpen | ForcedOpen | Disabled | MetricsOnly

/** @internal */
export type Signal =
  | { readonly _tag: "Acquire" }
  | { readonly _tag: "Record"; readonly epoch: number; readonly call: RecordedCall }
  | { readonly _tag: "Release"; readonly epoch: number; readonly durationMillis: number }
  | { readonly _tag: "Observe" }
  | { readonly _tag: "ForceOpen" }
  | { readonly _tag: "Close" }
  | { readonly _tag: "Disable" }
  | { readonly _tag: "MetricsOnly" }
  | { readonly _tag: "Reset" }
  /** The fleet is open until `until` (this instance's Clock); `until ≤ now`: it is half-open. */
  | { readonly _tag: "FleetOpen"; readonly until: number }
  /** The fleet's probes closed it. */
  | { readonly _tag: "FleetClose" }

type CallSignal = Extract<Signal, { readonly _tag: "Acquire" | "Record" | "Release" | "Observe" }>

/** @internal */
export type RejectingState = "Open" | "HalfOpen" | "ForcedOpen"

/** @internal */
export type MachineEvent =
  | { readonly _tag: "Permitted"; readonly epoch: number }
  | { readonly _tag: "Rejected"; readonly state: RejectingState; readonly retryAfterMillis: number }
  | { readonly _tag: "Recorded"; readonly outcome: Exclude<Outcome, "rejected">; readonly durationMillis: number }
  | { readonly _tag: "Transitioned"; readonly from: State; readonly to: State; readonly reason: TransitionReason }
  | { readonly _tag: "ThresholdExceeded"; readonly trip: TripReason }
  | { readonly _tag: "Reset" }

/** @internal */
export type Step = readonly [MachineState, ReadonlyArray<MachineEvent>]

/** @internal */
export const ACQUIRE: Signal = { _tag: "Acquire" }
/** @internal */
export const OBSERVE: Signal = { _tag: "Observe" }
/**
 * The timer's signal: time has passed, no call is made. It is `Observe`, so a
 * tick and a state read can never disagree.
 *
 * @internal
 */
export const TICK: Signal = OBSERVE

/**
 * When the state moves by itself, with no call: `halfOpenAt` of an Open
 * breaker, `expiresAt` of a half-open period with a time limit; `Infinity`
 * for states that wait for calls or an operator. A `TICK` at or after it
 * makes the move; one before it changes nothing.
 *
 * @internal
 */
export const deadline = (state: MachineState): number => {
  switch (state._tag) {
    case "Open":
      return state.halfOpenAt
    case "HalfOpen":
      return state.expiresAt
    case "Closed":
    case "ForcedOpen":
    case "Disabled":
    case "MetricsOnly":
      return Infinity
  }
}

const NO_EVENTS: ReadonlyArray<MachineEvent> = []

/** @internal */
export const initial = (state: InitialState, settings: Settings): MachineState => {
  switch (state) {
    case "Closed":
    case "MetricsOnly":
      return { _tag: state, epoch: 0, openings: 0, windows: settings.windows }
    case "ForcedOpen":
    case "Disabled":
      return { _tag: state, epoch: 0, openings: 0 }
  }
}

/** @internal */
export const outcomeOf = (call: RecordedCall): Exclude<Outcome, "rejected" | "ignored"> =>
  call.failure ? (call.slow ? "slow_failure" : "failure") : (call.slow ? "slow_success" : "success")

const recorded = (call: RecordedCall): MachineEvent => ({
  _tag: "Recorded",
  outcome: outcomeOf(call),
  durationMillis: call.durationMillis
})

const ignored = (durationMillis: number): MachineEvent => ({ _tag: "Recorded", outcome: "ignored", durationMillis })

/** Calls that never change this state: only the metrics see them. */
const reportOnly = (state: MachineState, signal: CallSignal): Step => {
  switch (signal._tag) {
    case "Record":
      return [state, [recorded(signal.call)]]
    case "Release":
      return [state, [ignored(signal.durationMillis)]]
    case "Acquire":
    case "Observe":
      return [state, NO_EVENTS]
  }
}

const transitioned = (from: MachineState, to: MachineState, reason: TransitionReason): MachineEvent => ({
  _tag: "Transitioned",
  from: from._tag,
  to: to._tag,
  reason
})

const open = (
  from: MachineState,
  now: number,
  settings: Settings,
  reason: (openFor: Duration.Duration) => TransitionReason,
  events: Array<MachineEvent>
): Step => {
  const openings = from.openings + 1
  const epoch = from.epoch + 1
  const openFor = settings.openDurationMillis(openings, now, epoch)
  const next: Open = { _tag: "Open", epoch, openings, halfOpenAt: now + openFor }
  events.push(transitioned(from, next, reason(Duration.millis(openFor))))
  return [next, events]
}

const freshClosed = (from: MachineState, settings: Settings): Closed => ({
  _tag: "Closed",
  epoch: from.epoch + 1,
  openings: 0,
  windows: settings.windows
})

const firstTrip = (windows: ReadonlyArray<TripWindow>, now: number): Option.Option<TripReason> => {
  for (const window of windows) {
    const verdict = window.check(now)
    if (Option.isSome(verdict)) return verdict
  }
  return Option.none()
}

/** The same array when no window changed (a success on a clean `consecutiveFailures` window, say). */
const recordAll = (
  windows: ReadonlyArray<TripWindow>,
  call: RecordedCall,
  now: number
): ReadonlyArray<TripWindow> => {
  let changed: Array<TripWindow> | undefined
  for (let i = 0; i < windows.length; i++) {
    const window = windows[i]
    if (window === undefined) continue
    const next = window.record(call, now)
    if (next !== window) (changed ??= windows.slice())[i] = next
  }
  return changed ?? windows
}

const withWindows = <S extends Closed | MetricsOnly>(state: S, windows: ReadonlyArray<TripWindow>): S =>
  windows === state.windows ? state : { ...state, windows }

/**
 * The epoch of the permit `transition(state, ACQUIRE)` issues when that is all
 * it does (the very same state, and no event but `Permitted`); `undefined`
 * when the full transition must run. The shell's shortcut for the happy path,
 * which then allocates nothing; a test checks it against `transition`.
 *
 * @internal
 */
export const quickPermit = (state: MachineState): number | undefined => {
  switch (state._tag) {
    case "Closed":
    case "MetricsOnly":
    case "Disabled":
      return state.epoch
    case "Open":
    case "HalfOpen":
    case "ForcedOpen":
      return undefined
  }
}

/**
 * The state `transition(state, { _tag: "Record", epoch, call }, now)` moves to
 * when its only event is `Recorded` (no trip, no state change other than the
 * windows); `undefined` when the full transition must run. The shell's
 * shortcut for the happy path, which then builds no step and no event; a test
 * checks it against `transition`.
 *
 * @internal
 */
export const quickRecord = (
  state: MachineState,
  epoch: number,
  call: RecordedCall,
  now: number
): MachineState | undefined => {
  switch (state._tag) {
    case "Closed":
    case "MetricsOnly": {
      if (epoch !== state.epoch) return state
      const windows = recordAll(state.windows, call, now)
      return Option.isNone(firstTrip(windows, now)) ? withWindows(state, windows) : undefined
    }
    case "Open":
    case "ForcedOpen":
    case "Disabled":
      return state
    case "HalfOpen":
      // Its time limit needs the real time: the full transition reads it.
      return undefined
  }
}

const onClosed = (state: Closed, signal: CallSignal, now: number, settings: Settings): Step => {
  switch (signal._tag) {
    case "Acquire":
      return [state, [{ _tag: "Permitted", epoch: state.epoch }]]
    case "Record": {
      if (signal.epoch !== state.epoch) return reportOnly(state, signal)
      const windows = recordAll(state.windows, signal.call, now)
      const trip = firstTrip(windows, now)
      if (Option.isNone(trip)) return [withWindows(state, windows), [recorded(signal.call)]]
      return open(state, now, settings, (openFor) => ({ _tag: "Tripped", trip: trip.value, openFor }), [
        recorded(signal.call)
      ])
    }
    case "Release":
    case "Observe":
      return reportOnly(state, signal)
  }
}

const enterHalfOpen = (state: Open, issued: number, now: number, settings: Settings): HalfOpen => ({
  _tag: "HalfOpen",
  epoch: state.epoch + 1,
  openings: state.openings,
  issued,
  successes: 0,
  failures: 0,
  expiresAt: now + settings.halfOpenMaxMillis
})

const onOpen = (state: Open, signal: CallSignal, now: number, settings: Settings): Step => {
  switch (signal._tag) {
    case "Acquire": {
      if (now < state.halfOpenAt) {
        return [state, [{ _tag: "Rejected", state: "Open", retryAfterMillis: state.halfOpenAt - now }]]
      }
      const next = enterHalfOpen(state, 1, now, settings)
      return [next, [transitioned(state, next, { _tag: "OpenElapsed" }), { _tag: "Permitted", epoch: next.epoch }]]
    }
    case "Observe": {
      if (now < state.halfOpenAt) return [state, NO_EVENTS]
      const next = enterHalfOpen(state, 0, now, settings)
      return [next, [transitioned(state, next, { _tag: "OpenElapsed" })]]
    }
    case "Record":
    case "Release":
      return reportOnly(state, signal)
  }
}

const onHalfOpen = (state: HalfOpen, signal: CallSignal, now: number, settings: Settings): Step => {
  switch (signal._tag) {
    case "Acquire": {
      if (state.issued >= settings.permits) {
        return [state, [{ _tag: "Rejected", state: "HalfOpen", retryAfterMillis: 0 }]]
      }
      return [{ ...state, issued: state.issued + 1 }, [{ _tag: "Permitted", epoch: state.epoch }]]
    }
    case "Release": {
      if (signal.epoch !== state.epoch) return reportOnly(state, signal)
      return [{ ...state, issued: state.issued - 1 }, [ignored(signal.durationMillis)]]
    }
    case "Record": {
      if (signal.epoch !== state.epoch) return reportOnly(state, signal)
      const failed = signal.call.failure || (signal.call.slow && settings.slowProbeFails)
      const successes = state.successes + (failed ? 0 : 1)
      const failures = state.failures + (failed ? 1 : 0)
      const events: Array<MachineEvent> = [recorded(signal.call)]
      if (successes >= settings.closeAfter) {
        const next = freshClosed(state, settings)
        events.push(transitioned(state, next, { _tag: "ProbesSucceeded", successes }))
        return [next, events]
      }
      if (failures >= settings.failureLimit || successes + failures >= settings.permits) {
        return open(state, now, settings, (openFor) => ({ _tag: "ProbesFailed", successes, failures, openFor }), events)
      }
      return [{ ...state, successes, failures }, events]
    }
    case "Observe":
      return reportOnly(state, signal)
  }
}

/**
 * The half-open period ran out before its probes decided: the breaker opens
 * again (the next opening, as for failed probes), and then the signal is
 * taken as the open breaker takes it. Probes still running belong to the
 * half-open epoch: their outcomes are reported and change nothing.
 */
const expire = (state: HalfOpen, signal: CallSignal, now: number, settings: Settings): Step => {
  const [opened, events] = open(state, now, settings, (openFor) => ({
    _tag: "ProbesTimedOut",
    successes: state.successes,
    failures: state.failures,
    waited: Duration.millis(settings.halfOpenMaxMillis),
    openFor
  }), [])
  const [next, more] = transition(opened, signal, now, settings)
  return [next, more.length === 0 ? events : [...events, ...more]]
}

const onForcedOpen = (state: ForcedOpen, signal: CallSignal, settings: Settings): Step =>
  signal._tag === "Acquire"
    ? [state, [{ _tag: "Rejected", state: "ForcedOpen", retryAfterMillis: settings.forcedOpenRetryAfterMillis }]]
    : reportOnly(state, signal)

const onDisabled = (state: Disabled, signal: CallSignal): Step =>
  signal._tag === "Acquire" ? [state, [{ _tag: "Permitted", epoch: state.epoch }]] : reportOnly(state, signal)

const onMetricsOnly = (state: MetricsOnly, signal: CallSignal, now: number, settings: Settings): Step => {
  switch (signal._tag) {
    case "Acquire":
      return [state, [{ _tag: "Permitted", epoch: state.epoch }]]
    case "Record": {
      if (signal.epoch !== state.epoch) return reportOnly(state, signal)
      const windows = recordAll(state.windows, signal.call, now)
      const trip = firstTrip(windows, now)
      if (Option.isNone(trip)) return [withWindows(state, windows), [recorded(signal.call)]]
      return [{ ...state, windows: settings.windows }, [recorded(signal.call), {
        _tag: "ThresholdExceeded",
        trip: trip.value
      }]]
    }
    case "Release":
    case "Observe":
      return reportOnly(state, signal)
  }
}

const manual = (from: MachineState, to: MachineState, reason: TransitionReason): Step =>
  from._tag === to._tag ? [from, NO_EVENTS] : [to, [transitioned(from, to, reason)]]

/**
 * Another instance opened the shared breaker until `until`. An Open breaker
 * only moves its `halfOpenAt` (the same opening, so no event); a half-open one
 * whose fleet is half-open too (`until ≤ now`) keeps its probes.
 */
const fleetOpen = (state: MachineState, until: number, now: number): Step => {
  switch (state._tag) {
    case "Open":
      return state.halfOpenAt === until ? [state, NO_EVENTS] : [{ ...state, halfOpenAt: until }, NO_EVENTS]
    case "HalfOpen":
      return until <= now ? [state, NO_EVENTS] : openedByFleet(state, until, now)
    case "Closed":
      return openedByFleet(state, until, now)
    case "ForcedOpen":
    case "Disabled":
    case "MetricsOnly":
      return [state, NO_EVENTS]
  }
}

const openedByFleet = (state: Closed | HalfOpen, until: number, now: number): Step => {
  const next: Open = { _tag: "Open", epoch: state.epoch + 1, openings: state.openings + 1, halfOpenAt: until }
  const openFor = Duration.millis(Math.max(0, until - now))
  return [next, [transitioned(state, next, { _tag: "FleetOpened", openFor })]]
}

const fleetClose = (state: MachineState, settings: Settings): Step => {
  switch (state._tag) {
    case "Open":
    case "HalfOpen": {
      const next = freshClosed(state, settings)
      return [next, [transitioned(state, next, { _tag: "FleetClosed" })]]
    }
    case "Closed":
    case "ForcedOpen":
    case "Disabled":
    case "MetricsOnly":
      return [state, NO_EVENTS]
  }
}

/** @internal */
export const transition = (state: MachineState, signal: Signal, now: number, settings: Settings): Step => {
  switch (signal._tag) {
    case "FleetOpen":
      return fleetOpen(state, signal.until, now)
    case "FleetClose":
      return fleetClose(state, settings)
    case "ForceOpen":
      return manual(state, { _tag: "ForcedOpen", epoch: state.epoch + 1, openings: state.openings }, {
        _tag: "Manual"
      })
    case "Close":
      return manual(state, freshClosed(state, settings), { _tag: "Manual" })
    case "Disable":
      return manual(state, { _tag: "Disabled", epoch: state.epoch + 1, openings: state.openings }, {
        _tag: "Manual"
      })
    case "MetricsOnly":
      return manual(
        state,
        { _tag: "MetricsOnly", epoch: state.epoch + 1, openings: state.openings, windows: settings.windows },
        { _tag: "Manual" }
      )
    case "Reset": {
      const next = freshClosed(state, settings)
      const events: Array<MachineEvent> = state._tag === "Closed"
        ? []
        : [transitioned(state, next, { _tag: "Reset" })]
      events.push({ _tag: "Reset" })
      return [next, events]
    }
  }
  switch (state._tag) {
    case "Closed":
      return onClosed(state, signal, now, settings)
    case "Open":
      return onOpen(state, signal, now, settings)
    case "HalfOpen":
      if (now >= state.expiresAt) return expire(state, signal, now, settings)
      return onHalfOpen(state, signal, now, settings)
    case "ForcedOpen":
      return onForcedOpen(state, signal, settings)
    case "Disabled":
      return onDisabled(state, signal)
    case "MetricsOnly":
      return onMetricsOnly(state, signal, now, settings)
  }
}
