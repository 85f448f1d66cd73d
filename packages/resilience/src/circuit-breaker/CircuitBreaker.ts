/**
 * A circuit breaker stops calling a dependency that keeps failing, gives it
 * time to recover, then lets a few probe calls test it before traffic returns.
 *
 * ```text
 *   Closed ──trip strategy fires──▶ Open ──open duration elapsed──▶ HalfOpen
 *   HalfOpen ──`closeAfter` probe successes──▶ Closed
 *   HalfOpen ──a probe fails──▶ Open (the next open duration of the schedule)
 *   ForcedOpen, Disabled, MetricsOnly: set and left only by an operator
 * ```
 *
 * What counts, by default: transient failures and defects are failures,
 * terminal failures (a 404, a validation error) and rejections by other
 * policies (a full bulkhead, a rate limit, another open breaker) are ignored,
 * interrupted calls are ignored and hand back their half-open permit.
 *
 * State lives in one synchronous cell: taking a permit and recording an
 * outcome are each one synchronous step of a pure state machine (read,
 * compute, write back). Fibers interleave only between effects, so each step
 * is atomic and thousands of concurrent fibers see exactly `permits` half-open
 * probes, without the cost of an STM transaction. Time comes from Effect's
 * `Clock`. A breaker from {@link makeScoped} (and every breaker of the
 * {@link layer} registry) runs a timer fiber in its scope, so an idle breaker
 * half-opens when its open duration ends (Resilience4j's automatic
 * transition): gauges, transition counters, logs and events are true without
 * traffic. A breaker from {@link make} has no fiber and needs no `Scope`: it
 * makes the same move lazily, on the first call or state read after the open
 * duration. Either way the move happens once, whoever comes first.
 *
 * Defaults: 5 consecutive failures open the breaker for 30 seconds; then 3
 * probe calls are let through and 3 successes close it again.
 *
 * Traces: with `Tracing.layer`, each call gets one span (shared with the
 * bulkhead, retry and timeout layers of the same stack) with
 * `bulwark.circuit_breaker.name` and `.state`: the state that admitted the
 * call, or that refused it (`open`, …, with outcome `circuit_open`).
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Either from "effect/Either"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Queue from "effect/Queue"
import type * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type * as Stream from "effect/Stream"
import type * as Failure from "../Failure.js"
import * as internal from "./internal/circuitBreaker.js"
import { CircuitOpenError } from "./internal/errors.js"
import * as registry from "./internal/registry.js"
import { Registry } from "./internal/registry.js"
import { STATE_LABELS } from "./internal/report.js"
import * as trip from "./internal/trip.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: typeof internal.TypeId = internal.TypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TypeId = typeof TypeId

/**
 * The state of a breaker.
 *
 * - `Closed`: calls run; outcomes feed the trip strategies.
 * - `Open`: calls fail fast with {@link CircuitOpenError} until the open duration has elapsed.
 * - `HalfOpen`: a fixed number of probe calls run; the rest fail fast.
 * - `ForcedOpen`: an operator isolated the dependency; every call fails fast.
 * - `Disabled`: an operator took the breaker out of the path; every call runs and nothing can open it.
 * - `MetricsOnly`: every call runs and is counted; a tripped strategy is reported, never acted on (shadow mode).
 *
 * @since 0.1.0
 * @category Models
 */
export type State = "Closed" | "Open" | "HalfOpen" | "ForcedOpen" | "Disabled" | "MetricsOnly"

/**
 * A state as metrics, spans, logs and admin endpoints spell it: the `state` label of
 * `bulwark_circuit_breaker_state` (`"half_open"` for `"HalfOpen"`…).
 *
 * @since 0.1.0
 * @category Models
 */
export type StateLabel = "closed" | "open" | "half_open" | "forced_open" | "disabled" | "metrics_only"

/**
 * The label of a state, as metrics and spans spell it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const breaker = yield* CircuitBreaker.make({ name: "payments" })
 *   return CircuitBreaker.stateLabel(yield* breaker.state) // "closed"
 * })
 * ```
 *
 * @since 0.1.0
 * @category Getters
 */
export const stateLabel = (state: State): StateLabel => STATE_LABELS[state]

/**
 * The states a breaker may start in.
 *
 * @since 0.1.0
 * @category Models
 */
export type InitialState = "Closed" | "ForcedOpen" | "Disabled" | "MetricsOnly"

/**
 * How a call ended, as counted by `bulwark_circuit_breaker_calls_total`.
 * `slow_*` calls took longer than `slowCallDuration`; `ignored` calls count
 * neither way (terminal errors, rejections by other policies, interruptions);
 * `rejected` calls never ran because the breaker refused them.
 *
 * @since 0.1.0
 * @category Models
 */
export type Outcome = "success" | "failure" | "slow_success" | "slow_failure" | "rejected" | "ignored"

/**
 * A breaker protecting calls whose errors are `E` and whose values are `A`
 * (the types its predicates accept; `unknown` when it has none).
 *
 * @since 0.1.0
 * @category Models
 */
export interface CircuitBreaker<in E = unknown, in A = unknown> {
  readonly [TypeId]: {
    readonly _E: (error: E) => void
    readonly _A: (value: A) => void
  }
  /** The name used in metrics, logs, events and errors. */
  readonly name: string
  /** The current state. Reading it applies a due Open → HalfOpen transition. */
  readonly state: Effect.Effect<State>
  /** Runs an effect through the breaker; see {@link protect}. */
  readonly protect: <A2 extends A, E2 extends E, R>(
    self: Effect.Effect<A2, E2, R>
  ) => Effect.Effect<A2, E2 | CircuitOpenError, R>
  /** Transitions and call outcomes, from the moment the stream starts. Slow consumers lose the oldest events. */
  readonly events: Stream.Stream<Event>
  /** A subscription to {@link events}, live as soon as this effect completes; ends with the scope. */
  readonly subscribe: Effect.Effect<Queue.Dequeue<Event>, never, Scope.Scope>
  /** Forces the breaker open: every call fails fast until {@link close}, {@link reset} or another manual state. */
  readonly isolate: Effect.Effect<void>
  /** Closes the breaker: empty windows, past openings forgotten. A no-op when it is already closed. */
  readonly close: Effect.Effect<void>
  /** Lets every call through; nothing can open the breaker until an operator changes the state. */
  readonly disable: Effect.Effect<void>
  /** Lets every call through and counts it; a tripped strategy emits {@link ThresholdExceeded} instead of opening. */
  readonly metricsOnly: Effect.Effect<void>
  /** Back to a fresh `Closed` breaker: empty windows, no past openings. Emits a {@link Reset} event. */
  readonly reset: Effect.Effect<void>
}

/**
 * The options of {@link make}. Everything but `name` has a default.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options<in E = unknown, in A = unknown> {
  /** Names the breaker in metrics, logs and errors: 1–128 characters of `A-Z a-z 0-9 _ . : / -`. */
  readonly name: string
  /**
   * When to open. Any strategy firing opens the breaker. Default:
   * `consecutiveFailures(5)`.
   */
  readonly trip?: TripStrategy | ReadonlyArray<TripStrategy>
  /**
   * How long the breaker stays open before it half-opens. A duration, or a
   * `Schedule` whose successive delays are used for consecutive openings
   * (backoff while the dependency stays down); the sequence restarts after the
   * breaker closes. Each opening steps the schedule when it happens, so a
   * jittered schedule draws a new duration for every opening, from the
   * `Random` of the fiber that made the breaker (reproducible under
   * `TestRandom` or a seeded `Random`). Openings after the schedule ends reuse
   * its last delay. The schedule's steps must be synchronous (pure, or using
   * `Random`/`Clock`): a step that sleeps or fails keeps the previous
   * duration. A forced-open breaker's `retryAfter` is the schedule's first
   * delay. Default: 30 seconds.
   */
  readonly openDuration?: Duration.DurationInput | Schedule.Schedule<unknown, number>
  /** Probe calls in the half-open state. */
  readonly halfOpen?: HalfOpenOptions
  /**
   * Calls that take longer than this are slow (outcome `slow_success` or
   * `slow_failure`). Required by {@link slowCallRate}. When a strategy counts
   * slow calls, a slow probe also counts as a failed probe. Default: none.
   */
  readonly slowCallDuration?: Duration.DurationInput
  /** Errors for which this returns `true` count as failures, even terminal errors and rejections. */
  readonly recordError?: (error: E) => boolean
  /** Errors for which this returns `true` are ignored. Wins over `recordError`. */
  readonly ignoreError?: (error: E) => boolean
  /** Successful values for which this returns `true` count as failures (an HTTP 503 returned as a value). */
  readonly recordResult?: (value: A) => boolean
  /**
   * Count rejections by other policies (`Failure.isRejection`: a full
   * bulkhead, a rate limit, another open breaker) as failures. A
   * `RetriesExhausted` whose last failure is a rejection (however many retry
   * layers wrap it) is a rejection too. Default: `false`, they say nothing
   * about the dependency's health.
   */
  readonly countRejections?: boolean
  /** Default: `"Closed"`. */
  readonly initialState?: InitialState
}

/**
 * The half-open probe rules.
 *
 * `permits` probe calls are let through (extra calls fail fast, however many
 * arrive at once). The breaker closes after `closeAfter` successful probes. It
 * reopens on the first failed probe, or, when `failureRateThreshold` is set,
 * once the failed probes reach that percentage of `permits`. It also reopens
 * when every probe has completed without `closeAfter` successes. An ignored or
 * interrupted probe hands its permit back.
 *
 * @since 0.1.0
 * @category Models
 */
export interface HalfOpenOptions {
  /** Probe calls let through. An integer ≥ 1. Default: 3. */
  readonly permits?: number
  /** Successful probes that close the breaker. An integer from 1 to `permits`. Default: 3 (capped at `permits`). */
  readonly closeAfter?: number
  /** Reopen once this percentage (0 < p ≤ 100) of `permits` has failed. Default: reopen on the first failure. */
  readonly failureRateThreshold?: number
  /**
   * The longest a half-open period may last: once it has run out and the
   * probes have not decided, the next call or state read opens the breaker
   * again ("ProbesTimedOut", as the next opening). A probe that never
   * completes cannot keep the breaker half-open. A positive duration.
   * Default: no limit (Resilience4j's `maxWaitDurationInHalfOpenState`).
   */
  readonly maxDuration?: Duration.DurationInput
}

/**
 * A finished call as the trip strategies see it.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecordedCall {
  readonly failure: boolean
  readonly slow: boolean
  readonly durationMillis: number
}

/**
 * Why a strategy fired: the "why did it open" diagnostic carried by events and logs.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TripReason {
  /** The strategy's name, e.g. `"consecutive-failures"`. */
  readonly strategy: string
  /** What was observed: a count, or a percentage for rates. */
  readonly observed: number
  /** The configured threshold, in the same unit. */
  readonly threshold: number
  /** Calls in the window when it fired. */
  readonly calls: number
  /** One human sentence, e.g. `"failure rate 60% ≥ 50% over the last 20 calls"`. */
  readonly description: string
}

/**
 * When to open. A strategy is pure: an immutable window that records finished
 * calls and says whether it trips. Build your own with {@link makeTripStrategy}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TripStrategy {
  readonly name: string
  /** Whether the strategy looks at slow calls (then `slowCallDuration` is required). */
  readonly countsSlowCalls: boolean
  /** The empty window, or why the strategy's options are invalid (reported by {@link make}). */
  readonly initial: Either.Either<TripWindow, Failure.InvalidOptionsError>
}

/**
 * The immutable state of one trip strategy.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TripWindow {
  readonly record: (call: RecordedCall, now: number) => TripWindow
  readonly check: (now: number) => Option.Option<TripReason>
}

/**
 * Which calls a rate is computed over: the last `calls` calls, or the calls of
 * the last `duration`, kept in `buckets` buckets (default 10) that expire one
 * by one as the Clock moves.
 *
 * @since 0.1.0
 * @category Models
 */
export type Window =
  | { readonly calls: number }
  | { readonly duration: Duration.DurationInput; readonly buckets?: number }

/**
 * The options of {@link failureRate} and {@link slowCallRate}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RateOptions {
  /** Percentage (0 < p ≤ 100) at or above which the strategy fires. Default: 50. */
  readonly threshold?: number
  /** Default: the last 100 calls. */
  readonly window?: Window
  /** Calls the window must hold before the rate is considered. Default: 10 (at most the window's size). */
  readonly minimumCalls?: number
}

/**
 * Why a breaker changed state.
 *
 * @since 0.1.0
 * @category Models
 */
export type TransitionReason =
  | { readonly _tag: "Tripped"; readonly trip: TripReason; readonly openFor: Duration.Duration }
  | { readonly _tag: "OpenElapsed" }
  | { readonly _tag: "ProbesSucceeded"; readonly successes: number }
  | {
    readonly _tag: "ProbesFailed"
    readonly successes: number
    readonly failures: number
    readonly openFor: Duration.Duration
  }
  | {
    readonly _tag: "ProbesTimedOut"
    readonly successes: number
    readonly failures: number
    /** The half-open time limit that ran out. */
    readonly waited: Duration.Duration
    readonly openFor: Duration.Duration
  }
  | { readonly _tag: "Manual" }
  | { readonly _tag: "Reset" }
  /** Another instance sharing the breaker (`RedisCircuitBreaker`) opened it, or its probes failed. */
  | { readonly _tag: "FleetOpened"; readonly openFor: Duration.Duration }
  /** The probes of the instances sharing the breaker (`RedisCircuitBreaker`) closed it. */
  | { readonly _tag: "FleetClosed" }

// -----------------------------------------------------------------------------
// Events
// -----------------------------------------------------------------------------

/**
 * The breaker moved from one state to another. `at` is the Clock time in milliseconds.
 *
 * @since 0.1.0
 * @category Events
 */
export interface StateChanged {
  readonly _tag: "StateChanged"
  readonly breaker: string
  readonly from: State
  readonly to: State
  readonly reason: TransitionReason
  readonly at: number
}

/**
 * A call that ran through the breaker finished.
 *
 * @since 0.1.0
 * @category Events
 */
export interface CallRecorded {
  readonly _tag: "CallRecorded"
  readonly breaker: string
  readonly outcome: Exclude<Outcome, "rejected">
  readonly duration: Duration.Duration
  readonly at: number
}

/**
 * A call was refused.
 *
 * @since 0.1.0
 * @category Events
 */
export interface CallRejected {
  readonly _tag: "CallRejected"
  readonly breaker: string
  readonly state: CircuitOpenError["state"]
  readonly retryAfter: Duration.Duration
  readonly at: number
}

/**
 * In `MetricsOnly` state, a strategy fired: the breaker would have opened. Its windows start again empty.
 *
 * @since 0.1.0
 * @category Events
 */
export interface ThresholdExceeded {
  readonly _tag: "ThresholdExceeded"
  readonly breaker: string
  readonly trip: TripReason
  readonly at: number
}

/**
 * An operator reset the breaker.
 *
 * @since 0.1.0
 * @category Events
 */
export interface Reset {
  readonly _tag: "Reset"
  readonly breaker: string
  readonly at: number
}

/**
 * Everything a breaker reports.
 *
 * @since 0.1.0
 * @category Events
 */
export type Event = StateChanged | CallRecorded | CallRejected | ThresholdExceeded | Reset

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { CircuitOpenError }

/**
 * @since 0.1.0
 * @category Guards
 */
export const isCircuitOpenError: (u: unknown) => u is CircuitOpenError = internal.isCircuitOpenError

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * Makes a breaker. Invalid options fail with `InvalidOptionsError` naming the
 * option (thresholds outside 0–100 %, empty windows, zero probes, `closeAfter`
 * above `permits`, negative or NaN durations, a bad name).
 *
 * @example
 * ```ts
 * import { Effect, Schedule } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function* () {
 *   const breaker = yield* CircuitBreaker.make({
 *     name: "payments",
 *     trip: [
 *       CircuitBreaker.consecutiveFailures(5),
 *       CircuitBreaker.failureRate({ threshold: 50, window: { duration: "1 minute" }, minimumCalls: 20 })
 *     ],
 *     // 10 s, 20 s, 40 s … while the dependency stays down, never more than 5 minutes
 *     openDuration: Schedule.exponential("10 seconds").pipe(Schedule.either(Schedule.spaced("5 minutes"))),
 *     halfOpen: { permits: 5, closeAfter: 3 }
 *   })
 *   return yield* Effect.succeed("charged").pipe(CircuitBreaker.protect(breaker))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <E = unknown, A = unknown>(
  options: Options<E, A>
) => Effect.Effect<CircuitBreaker<E, A>, Failure.InvalidOptionsError> = internal.make

/**
 * Makes a breaker, as {@link make}, with a timer fiber in the current scope:
 * when the open duration ends (or a half-open `maxDuration` runs out) the
 * breaker moves at that time, with no call or state read, so the state
 * gauge, the transition counter, the log and the `StateChanged` event are
 * on time for an idle breaker too. A call arriving at the same instant finds
 * the move made (or makes it, and the timer finds it made): it happens once.
 * When the scope closes the timer stops and the breaker goes on lazily, as
 * one from {@link make}. Breakers of the {@link layer} registry are made this
 * way, in the layer's scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const breaker = yield* CircuitBreaker.makeScoped({ name: "payments", openDuration: "30 seconds" })
 *   return yield* Effect.succeed("charged").pipe(CircuitBreaker.protect(breaker))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeScoped: <E = unknown, A = unknown>(
  options: Options<E, A>
) => Effect.Effect<CircuitBreaker<E, A>, Failure.InvalidOptionsError, Scope.Scope> = internal.makeScoped

// -----------------------------------------------------------------------------
// Trip strategies
// -----------------------------------------------------------------------------

/**
 * Opens after `threshold` failures in a row (default 5); any success resets
 * the count. Simple to reason about at low traffic, where rates mislead.
 *
 * @since 0.1.0
 * @category Trip strategies
 */
export const consecutiveFailures: (threshold?: number) => TripStrategy = trip.consecutiveFailures

/**
 * Opens when the percentage of failed calls in the window reaches `threshold`,
 * once the window holds `minimumCalls` calls.
 *
 * @example
 * ```ts
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * // Half of the last 50 calls failed, with at least 20 calls seen.
 * CircuitBreaker.failureRate({ threshold: 50, window: { calls: 50 }, minimumCalls: 20 })
 * // Half of the calls of the last minute (6 buckets of 10 s), with at least 20 calls seen.
 * CircuitBreaker.failureRate({ window: { duration: "1 minute", buckets: 6 }, minimumCalls: 20 })
 * ```
 *
 * @since 0.1.0
 * @category Trip strategies
 */
export const failureRate: (options?: RateOptions) => TripStrategy = trip.failureRate

/**
 * Opens when the percentage of slow calls (slower than the breaker's
 * `slowCallDuration`, successful or not) reaches `threshold`, once the window
 * holds `minimumCalls` calls.
 *
 * @since 0.1.0
 * @category Trip strategies
 */
export const slowCallRate: (options?: RateOptions) => TripStrategy = trip.slowCallRate

/**
 * A custom trip strategy from a pure state type: `record` folds in a finished
 * call, `check` says whether to open.
 *
 * @example
 * ```ts
 * import { Option } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * // Opens after 3 calls in a row slower than 2 seconds, failed or not.
 * const consecutiveSlow = CircuitBreaker.makeTripStrategy({
 *   name: "consecutive-slow",
 *   initial: 0,
 *   record: (count, call) => (call.durationMillis > 2000 ? count + 1 : 0),
 *   check: (count) =>
 *     count >= 3
 *       ? Option.some({ strategy: "consecutive-slow", observed: count, threshold: 3, calls: count, description: `${count} slow calls in a row` })
 *       : Option.none()
 * })
 * ```
 *
 * @since 0.1.0
 * @category Trip strategies
 */
export const makeTripStrategy: <S>(options: {
  readonly name: string
  readonly initial: S
  readonly record: (state: S, call: RecordedCall, now: number) => S
  readonly check: (state: S, now: number) => Option.Option<TripReason>
  readonly countsSlowCalls?: boolean
}) => TripStrategy = trip.makeTripStrategy

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Runs an effect through a breaker: fails fast with {@link CircuitOpenError}
 * when the breaker refuses the call, otherwise runs it and records how it
 * ended. Interrupting the call hands back its permit and counts nothing.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * declare const breaker: CircuitBreaker.CircuitBreaker
 * declare const chargeCard: Effect.Effect<string, Error>
 *
 * const charged = chargeCard.pipe(CircuitBreaker.protect(breaker))
 * // Effect<string, Error | CircuitOpenError>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: {
  <E0, A0>(
    breaker: CircuitBreaker<E0, A0>
  ): <A extends A0, E extends E0, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpenError, R>
  <A extends A0, E extends E0, R, E0, A0>(
    self: Effect.Effect<A, E, R>,
    breaker: CircuitBreaker<E0, A0>
  ): Effect.Effect<A, E | CircuitOpenError, R>
} = internal.protect

/**
 * Answers refused calls with a fallback: `CircuitOpenError` leaves the error
 * channel, every other error passes through.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * declare const breaker: CircuitBreaker.CircuitBreaker
 * declare const recommendations: Effect.Effect<ReadonlyArray<string>, Error>
 *
 * const shown = recommendations.pipe(
 *   CircuitBreaker.protect(breaker),
 *   CircuitBreaker.orElseIfOpen(() => Effect.succeed([]))
 * )
 * // Effect<ReadonlyArray<string>, Error>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const orElseIfOpen: {
  <A2, E2, R2>(
    fallback: (error: CircuitOpenError) => Effect.Effect<A2, E2, R2>
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A | A2, Exclude<E, CircuitOpenError> | E2, R | R2>
  <A, E, R, A2, E2, R2>(
    self: Effect.Effect<A, E, R>,
    fallback: (error: CircuitOpenError) => Effect.Effect<A2, E2, R2>
  ): Effect.Effect<A | A2, Exclude<E, CircuitOpenError> | E2, R | R2>
} = internal.orElseIfOpen

// -----------------------------------------------------------------------------
// Registry
// -----------------------------------------------------------------------------

/**
 * Per-breaker options in a registry: everything but the name, which is the key.
 *
 * @since 0.1.0
 * @category Registry
 */
export type BreakerConfig = Omit<Options, "name">

/**
 * The configuration of {@link layer}: named breakers, and the options of
 * breakers created on demand (also the base every named entry extends).
 *
 * @since 0.1.0
 * @category Registry
 */
export interface RegistryConfig {
  readonly breakers?: Readonly<Record<string, BreakerConfig>>
  readonly defaults?: BreakerConfig
}

/**
 * A breaker's name and state, as listed by a registry.
 *
 * @since 0.1.0
 * @category Registry
 */
export interface BreakerStatus {
  readonly name: string
  readonly state: State
}

/**
 * The registry's operations.
 *
 * @since 0.1.0
 * @category Registry
 */
export interface RegistryService {
  /** The breaker with this name, created with the defaults the first time it is asked for. */
  readonly get: (name: string) => Effect.Effect<CircuitBreaker, Failure.InvalidOptionsError>
  /** Every breaker created so far, in creation order. */
  readonly all: Effect.Effect<ReadonlyArray<CircuitBreaker>>
  /** Every breaker's current state, for admin routes and health checks. */
  readonly states: Effect.Effect<ReadonlyArray<BreakerStatus>>
}

// Declared in `internal/registry.ts`, which provides it.
export { Registry }

/**
 * A {@link Registry} with the configured breakers created up front; invalid
 * configuration fails the layer with `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * const Breakers = CircuitBreaker.layer({
 *   defaults: { openDuration: "10 seconds" },
 *   breakers: { payments: { trip: CircuitBreaker.consecutiveFailures(3) } }
 * })
 *
 * const program = Effect.gen(function* () {
 *   const payments = yield* CircuitBreaker.named("payments")
 *   return yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(payments))
 * }).pipe(Effect.provide(Breakers))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (config?: RegistryConfig) => Layer.Layer<Registry, Failure.InvalidOptionsError> = registry.layer

/**
 * A {@link Registry} whose configuration comes from effect's `Config` (the
 * environment, a file, any `ConfigProvider`): every field of
 * {@link RegistryConfig} may be a `Config` of its value, at any depth.
 * Missing or malformed configuration fails the layer with a `ConfigError`,
 * invalid values with `InvalidOptionsError`, before any breaker is used.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 *
 * // PAYMENTS_BREAKER_FAILURES=3 PAYMENTS_BREAKER_OPEN_FOR="20 seconds"
 * const Breakers = CircuitBreaker.layerConfig({
 *   breakers: {
 *     payments: {
 *       trip: Config.map(Config.integer("PAYMENTS_BREAKER_FAILURES"), CircuitBreaker.consecutiveFailures),
 *       openDuration: Config.duration("PAYMENTS_BREAKER_OPEN_FOR"),
 *       halfOpen: { permits: Config.withDefault(Config.integer("PAYMENTS_BREAKER_PROBES"), 3) }
 *     }
 *   }
 * })
 *
 * const program = Effect.gen(function* () {
 *   const payments = yield* CircuitBreaker.named("payments")
 *   return yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(payments))
 * }).pipe(Effect.provide(Breakers))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: (
  config: Config.Config.Wrap<RegistryConfig>
) => Layer.Layer<Registry, Failure.InvalidOptionsError | ConfigError.ConfigError> = registry.layerConfig

/**
 * The registry's breaker with this name, created with the defaults if new.
 *
 * @since 0.1.0
 * @category Registry
 */
export const named: (name: string) => Effect.Effect<CircuitBreaker, Failure.InvalidOptionsError, Registry> =
  registry.named
