/**
 * Adaptive concurrency limits: load shedding instead of unbounded queueing.
 *
 * A limiter admits at most `limit` calls at once and refuses the rest at
 * once with a {@link ConcurrencyLimitError} (transient, a rejection, with a
 * `retryAfter` hint). Unlike a bulkhead's fixed permits, the limit is
 * learned: each completed call reports its latency, and the limit grows
 * while latency stays flat and the limit is in use, and shrinks when latency
 * rises (calls are queueing somewhere: a connection pool, a CPU, a
 * dependency) or calls fail transiently. So a service keeps the concurrency
 * it can sustain with the latency it has at low load, and answers the excess
 * with a fast refusal instead of a slow success.
 *
 * ```text
 * call ──inflight < floor(limit)?──yes──▶ inflight + 1 ──▶ run ──▶ inflight − 1, sample(latency, outcome) ──▶ limit'
 *                  │no
 *                  └──▶ ConcurrencyLimitError at once (no queue), bulwark_adaptive_concurrency_rejected_total + 1
 * ```
 *
 * The algorithms follow Netflix's concurrency-limits library
 * (github.com/Netflix/concurrency-limits): {@link gradient2} (the default,
 * `Gradient2Limit`: a long-term average RTT against the current window's,
 * `limit × gradient + queueSize`, smoothed) and {@link vegas} (`VegasLimit`:
 * queue estimated from the no-load RTT, TCP Vegas' alpha/beta thresholds),
 * over windows of samples as its `WindowedLimit` gathers them. Envoy's
 * adaptive concurrency filter is the same idea (a gradient over a sampled
 * minimum RTT). The arithmetic is a pure function in
 * `internal/limit.ts`, documented there and tested without a runtime.
 *
 * Only calls that ran feed the limit. A success is a sample; a transient
 * failure (a timeout, a 503 from a dependency, a full bulkhead inside) is a
 * *drop*, which shrinks the limit as congestion control treats a lost
 * packet; any other failure is a sample (the call did its work and said
 * no); an interrupted call is ignored. `classify` changes this.
 *
 * There is no queue, on purpose: a queue in front of a limit that is already
 * the concurrency the service sustains only adds waiting time, which is what
 * the limit removes; the caller (or its retry, honouring `retryAfter`)
 * decides whether to wait.
 *
 * The state is plain synchronous state (a counter of calls in flight and the
 * pure limit state), changed in single synchronous steps as the bulkhead's
 * is: admission and release are exact under any number of fibers.
 *
 * Metrics (label `limiter`): `bulwark_adaptive_concurrency_limit`,
 * `bulwark_adaptive_concurrency_inflight`,
 * `bulwark_adaptive_concurrency_rejected_total`. For HTTP servers, see
 * `AdaptiveConcurrencyHttp`.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Option from "effect/Option"
import type { Pipeable } from "effect/Pipeable"
import type * as Failure from "../Failure.js"
import * as internal from "./internal/adaptiveConcurrency.js"
import { ConcurrencyLimitError } from "./internal/errors.js"

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
 * Netflix's Gradient2: the limit follows `longRtt / shortRtt`, the ratio of
 * a long-term average latency to the current window's. Build it with
 * {@link gradient2}.
 *
 * @since 0.1.0
 * @category Algorithms
 */
export interface Gradient2 {
  readonly _tag: "Gradient2"
  /** How much of each new estimate is taken: 0 < smoothing ≤ 1. */
  readonly smoothing: number
  /** How far the current latency may exceed the long-term one before the limit shrinks: ≥ 1. */
  readonly tolerance: number
  /** How much the estimate may grow each window while latency is flat: ≥ 0. */
  readonly queueSize: number
  /** Windows in the long-term average: an integer ≥ 1. */
  readonly longWindow: number
}

/**
 * Netflix's Vegas: the calls queued at the current limit estimated from the
 * no-load latency. Build it with {@link vegas}.
 *
 * @since 0.1.0
 * @category Algorithms
 */
export interface Vegas {
  readonly _tag: "Vegas"
  /** How much of each new estimate is taken: 0 < smoothing ≤ 1. */
  readonly smoothing: number
  /** The no-load latency is measured again every `probeMultiplier × limit` windows: > 0. */
  readonly probeMultiplier: number
}

/**
 * @since 0.1.0
 * @category Algorithms
 */
export type Algorithm = Gradient2 | Vegas

/**
 * What a completed call tells the limit: a latency `sample`, a `drop`
 * (overload: shrink), or nothing (`ignore`).
 *
 * @since 0.1.0
 * @category Models
 */
export type Outcome = "sample" | "drop" | "ignore"

/**
 * A consistent reading of a limiter, for admin routes and tests.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Snapshot {
  readonly name: string
  /** Calls admitted at once now. */
  readonly limit: number
  /** Calls running. */
  readonly inflight: number
  readonly minLimit: number
  readonly maxLimit: number
  /** The last window's latency (Gradient2: its average; Vegas: its minimum); none before the first window. */
  readonly rtt: Option.Option<Duration.Duration>
  /** What it is compared with (Gradient2: the long-term average; Vegas: the no-load latency). */
  readonly baselineRtt: Option.Option<Duration.Duration>
  /** Windows of samples the limit learned from. */
  readonly windows: number
}

/**
 * An adaptive concurrency limiter. Build one with {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface AdaptiveConcurrency extends Pipeable {
  readonly [TypeId]: TypeId
  /** The value of the `limiter` metric label. */
  readonly name: string
  readonly algorithm: Algorithm
  /** Reads the limit and counts in one synchronous step. */
  readonly snapshot: Effect.Effect<Snapshot>
  /** Runs an effect under the limit; see {@link protect}. */
  readonly protect: <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options?: ProtectOptions
  ) => Effect.Effect<A, E | ConcurrencyLimitError, R>
}

/**
 * @since 0.1.0
 * @category Models
 */
export interface ProtectOptions {
  /** What an ended call tells the limit; default the limiter's `classify`. */
  readonly classify?: ((exit: Exit.Exit<unknown, unknown>) => Outcome) | undefined
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace AdaptiveConcurrency {
  /**
   * Options of {@link make}. Invalid values fail with `InvalidOptionsError`
   * naming the option.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Names the limiter in errors and in the `limiter` metric label: 1 to 128 of `A-Z a-z 0-9 _ . : / -`. */
    readonly name: string
    /** Default {@link gradient2}`()`. */
    readonly algorithm?: Algorithm
    /** The limit before anything is learned: an integer in `[minLimit, maxLimit]`. Default 20 (clamped). */
    readonly initialLimit?: number
    /** The limit never goes below: an integer ≥ 1. Default 4. */
    readonly minLimit?: number
    /** The limit never goes above: an integer ≥ `minLimit`. Default 1000. */
    readonly maxLimit?: number
    /** The shortest window of samples the limit is updated from: a positive duration. Default 1 second. */
    readonly window?: Duration.DurationInput
    /** The fewest samples a window needs: an integer ≥ 1. Default 10. */
    readonly minSamples?: number
    /** The `retryAfter` of a refusal: a non-negative duration. Default 1 second. */
    readonly retryAfter?: Duration.DurationInput
    /** What an ended call tells the limit. Default {@link defaultClassify}. */
    readonly classify?: (exit: Exit.Exit<unknown, unknown>) => Outcome
  }
}

// Declared in `internal/errors.ts`, a leaf the internals import.
export { ConcurrencyLimitError }

// -----------------------------------------------------------------------------
// Algorithms
// -----------------------------------------------------------------------------

/**
 * Gradient2 with Netflix's defaults: `smoothing` 0.2, `tolerance` 1.5,
 * `queueSize` 4, `longWindow` 600 windows.
 *
 * @example
 * ```ts
 * import { AdaptiveConcurrency } from "@bulwark/resilience"
 *
 * // Shrink as soon as latency exceeds its long-term average, and grow by up to 8 a window.
 * const strict = AdaptiveConcurrency.gradient2({ tolerance: 1, queueSize: 8 })
 * ```
 *
 * @since 0.1.0
 * @category Algorithms
 */
export const gradient2: (options?: Partial<Omit<Gradient2, "_tag">>) => Gradient2 = internal.gradient2

/**
 * Vegas with Netflix's defaults: `smoothing` 1, `probeMultiplier` 30.
 *
 * @example
 * ```ts
 * import { AdaptiveConcurrency } from "@bulwark/resilience"
 *
 * const algorithm = AdaptiveConcurrency.vegas({ smoothing: 0.5 })
 * ```
 *
 * @since 0.1.0
 * @category Algorithms
 */
export const vegas: (options?: Partial<Omit<Vegas, "_tag">>) => Vegas = internal.vegas

/**
 * The default `classify`: a success is a sample; a transient failure (see
 * `Failure.isTransient`) or a defect is a drop; any other failure is a
 * sample; an interruption is ignored.
 *
 * @since 0.1.0
 * @category Classifiers
 */
export const defaultClassify: (exit: Exit.Exit<unknown, unknown>) => Outcome = internal.defaultClassify

// -----------------------------------------------------------------------------
// Constructors and combinators
// -----------------------------------------------------------------------------

/**
 * Builds a limiter. Fails with `InvalidOptionsError` when an option is out of
 * range (see {@link AdaptiveConcurrency.Options}).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AdaptiveConcurrency } from "@bulwark/resilience"
 *
 * declare const query: Effect.Effect<string>
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* AdaptiveConcurrency.make({ name: "search", initialLimit: 32, minLimit: 8, maxLimit: 256 })
 *   return yield* query.pipe(AdaptiveConcurrency.protect(limiter))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  options: AdaptiveConcurrency.Options
) => Effect.Effect<AdaptiveConcurrency, Failure.InvalidOptionsError> = internal.make

/**
 * Runs an effect under the limit, or fails at once with
 * {@link ConcurrencyLimitError} when `limit` calls are already running. Its
 * latency and outcome then update the limit.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { AdaptiveConcurrency } from "@bulwark/resilience"
 *
 * declare const limiter: AdaptiveConcurrency.AdaptiveConcurrency
 * declare const lookup: Effect.Effect<number, Error>
 *
 * const pipeable = lookup.pipe(AdaptiveConcurrency.protect(limiter))
 * const dataFirst = AdaptiveConcurrency.protect(lookup, limiter)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: {
  (
    limiter: AdaptiveConcurrency,
    options?: ProtectOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ConcurrencyLimitError, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limiter: AdaptiveConcurrency,
    options?: ProtectOptions
  ): Effect.Effect<A, E | ConcurrencyLimitError, R>
} = internal.protect

// -----------------------------------------------------------------------------
// Getters and guards
// -----------------------------------------------------------------------------

/**
 * The limit and counts, read in one synchronous step.
 *
 * @since 0.1.0
 * @category Getters
 */
export const snapshot: (self: AdaptiveConcurrency) => Effect.Effect<Snapshot> = internal.snapshot

/**
 * @since 0.1.0
 * @category Guards
 */
export const isAdaptiveConcurrency: (u: unknown) => u is AdaptiveConcurrency = internal.isAdaptiveConcurrency

/**
 * @since 0.1.0
 * @category Guards
 */
export const isConcurrencyLimitError = (u: unknown): u is ConcurrencyLimitError => u instanceof ConcurrencyLimitError
