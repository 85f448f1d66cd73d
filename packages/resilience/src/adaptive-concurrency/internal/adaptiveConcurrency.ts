import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Pipeable from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import type { InvalidOptionsError } from "../../Failure.js"
import { TransientTypeId } from "../../internal/failureErrors.js"
import * as Metric from "../../internal/metric.js"
import * as Options from "../../internal/options.js"
import * as Region from "../../internal/region.js"
import type * as AdaptiveConcurrency from "../AdaptiveConcurrency.js"
import { ConcurrencyLimitError } from "./errors.js"
import * as Limit from "./limit.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/AdaptiveConcurrency")

/** @internal */
export const defaults = {
  initialLimit: 20,
  minLimit: 4,
  maxLimit: 1000,
  window: Duration.seconds(1),
  minSamples: 10,
  retryAfter: Duration.seconds(1)
} as const

/** @internal */
export const gradient2 = (
  options: Partial<Omit<AdaptiveConcurrency.Gradient2, "_tag">> = {}
): AdaptiveConcurrency.Gradient2 => ({
  _tag: "Gradient2",
  smoothing: options.smoothing ?? 0.2,
  tolerance: options.tolerance ?? 1.5,
  queueSize: options.queueSize ?? 4,
  longWindow: options.longWindow ?? 600
})

/** @internal */
export const vegas = (options: Partial<Omit<AdaptiveConcurrency.Vegas, "_tag">> = {}): AdaptiveConcurrency.Vegas => ({
  _tag: "Vegas",
  smoothing: options.smoothing ?? 1,
  probeMultiplier: options.probeMultiplier ?? 30
})

/** @internal */
export const defaultClassify = (exit: Exit.Exit<unknown, unknown>): AdaptiveConcurrency.Outcome => {
  if (Exit.isSuccess(exit)) return "sample"
  const failure = Cause.failureOption(exit.cause)
  if (Option.isSome(failure)) return hasProperty(failure.value, TransientTypeId) ? "drop" : "sample"
  return Cause.isInterruptedOnly(exit.cause) ? "ignore" : "drop"
}

const ALWAYS = () => true

const millis = (value: number): Option.Option<Duration.Duration> =>
  Number.isFinite(value) ? Option.some(Duration.millis(value)) : Option.none()

/** @internal */
export class AdaptiveConcurrencyImpl extends Pipeable.Class() implements AdaptiveConcurrency.AdaptiveConcurrency {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly snapshot: Effect.Effect<AdaptiveConcurrency.Snapshot>
  // One synchronous step per decision is atomic: fibers interleave only between effects (as the bulkhead's cell).
  private state: Limit.State
  private admitted: number
  private inflight = 0
  private readonly gate: Region.Gate<unknown, unknown, ConcurrencyLimitError>
  private readonly inflightGauge: (delta: number) => void
  private readonly limitGauge: (value: number) => void
  private readonly rejectedCounter: (amount?: number) => void

  constructor(
    readonly name: string,
    readonly algorithm: AdaptiveConcurrency.Algorithm,
    private readonly settings: Limit.Settings,
    private readonly retryAfter: Duration.Duration,
    classify: (exit: Exit.Exit<unknown, unknown>) => AdaptiveConcurrency.Outcome
  ) {
    super()
    this.state = Limit.initial(settings)
    this.admitted = Limit.admitted(this.state)
    this.inflightGauge = Metric.gaugeSeries("bulwark_adaptive_concurrency_inflight", { limiter: name }).modify
    this.limitGauge = Metric.gaugeSeries("bulwark_adaptive_concurrency_limit", { limiter: name }).set
    this.rejectedCounter = Metric.counterSeries("bulwark_adaptive_concurrency_rejected_total", { limiter: name })
    // Registers the series at their current values, so they are exported before the first call.
    this.inflightGauge(0)
    this.limitGauge(this.admitted)
    this.rejectedCounter(0)
    this.gate = this.gateFor(classify)
    this.snapshot = Effect.sync(() => this.unsafeSnapshot())
  }

  unsafeSnapshot(): AdaptiveConcurrency.Snapshot {
    const state = this.state
    return {
      name: this.name,
      limit: this.admitted,
      inflight: this.inflight,
      minLimit: this.settings.minLimit,
      maxLimit: this.settings.maxLimit,
      rtt: millis(state.shortRtt),
      baselineRtt: millis(this.settings.algorithm._tag === "Gradient2" ? state.longRtt : state.minRtt),
      windows: state.windows
    }
  }

  /**
   * The limiter's steps as a gate of an isolation region (see
   * `internal/region.ts`): admission is one comparison and an increment, and
   * the exit, in the same synchronous step as the release, feeds the pure
   * limit. Every call needs its start time: its latency is the signal.
   */
  private gateFor(
    classify: (exit: Exit.Exit<unknown, unknown>) => AdaptiveConcurrency.Outcome
  ): Region.Gate<unknown, unknown, ConcurrencyLimitError> {
    return {
      needsStart: ALWAYS,
      enter: () => {
        if (this.inflight < this.admitted) {
          this.inflight++
          this.inflightGauge(1)
          return 0
        }
        this.rejectedCounter()
        return new Region.Refused(Effect.fail(this.refusal()))
      },
      exitSuccess: (_token, value, span) => {
        this.complete(classify(Exit.succeed(value)), span)
        return undefined
      },
      exitFailure: (_token, cause, span) => {
        this.complete(classify(Exit.failCause(cause)), span)
        return undefined
      }
    }
  }

  private refusal(): ConcurrencyLimitError {
    // Its stack would show only the limiter's own frames, and capturing it was a tenth of a refused request's cost.
    const stackTraceLimit = Error.stackTraceLimit
    Error.stackTraceLimit = 0
    try {
      return new ConcurrencyLimitError({
        limiter: this.name,
        limit: this.admitted,
        inflight: this.inflight,
        retryAfter: this.retryAfter
      })
    } finally {
      Error.stackTraceLimit = stackTraceLimit
    }
  }

  private complete(outcome: AdaptiveConcurrency.Outcome, span: Region.Span): void {
    const inflight = this.inflight
    this.inflight--
    this.inflightGauge(-1)
    if (outcome === "ignore") return
    const now = span.endedAt()
    this.state = Limit.update(
      this.settings,
      this.state,
      { rtt: now - span.startedAt, inflight, dropped: outcome === "drop" },
      now
    )
    const admitted = Limit.admitted(this.state)
    if (admitted !== this.admitted) {
      this.admitted = admitted
      this.limitGauge(admitted)
    }
  }

  protect = <A, E, R>(
    self: Effect.Effect<A, E, R>,
    options?: AdaptiveConcurrency.ProtectOptions
  ): Effect.Effect<A, E | ConcurrencyLimitError, R> =>
    Region.protect(self, options?.classify === undefined ? this.gate : this.gateFor(options.classify))
}

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

type Field = (option: string) => Options.Field

const fraction = (field: Field, option: string, value: number): Options.Check<number> =>
  Options.number(field(option), value, { min: 0, max: 1 }).pipe(
    Either.filterOrLeft((n) => n > 0, (n) => Options.invalid(field(option), n, "a number > 0 and ≤ 1"))
  )

const validateAlgorithm = (
  field: Field,
  algorithm: AdaptiveConcurrency.Algorithm
): Options.Check<Limit.AlgorithmSettings> => {
  if (algorithm._tag === "Vegas") {
    return Either.all({
      _tag: Either.right("Vegas" as const),
      smoothing: fraction(field, "algorithm.smoothing", algorithm.smoothing),
      probeMultiplier: Options.number(field("algorithm.probeMultiplier"), algorithm.probeMultiplier, { min: 0 }).pipe(
        Either.filterOrLeft(
          (n) => n > 0,
          (n) => Options.invalid(field("algorithm.probeMultiplier"), n, "a number > 0")
        )
      )
    })
  }
  return Either.all({
    _tag: Either.right("Gradient2" as const),
    smoothing: fraction(field, "algorithm.smoothing", algorithm.smoothing),
    tolerance: Options.number(field("algorithm.tolerance"), algorithm.tolerance, { min: 1 }),
    queueSize: Options.number(field("algorithm.queueSize"), algorithm.queueSize, { min: 0 }),
    longWindow: Options.number(field("algorithm.longWindow"), algorithm.longWindow, { min: 1, integer: true })
  })
}

interface Validated {
  readonly name: string
  readonly algorithm: AdaptiveConcurrency.Algorithm
  readonly settings: Limit.Settings
  readonly retryAfter: Duration.Duration
}

/** @internal */
export const validate = (options: AdaptiveConcurrency.AdaptiveConcurrency.Options): Options.Check<Validated> =>
  Either.flatMap(Options.name({ component: "AdaptiveConcurrency", option: "name" }, options.name), (name) => {
    const field: Field = (option) => ({ component: `AdaptiveConcurrency "${name}"`, option })
    const algorithm = options.algorithm ?? gradient2()
    return Either.flatMap(
      Either.all({
        algorithm: validateAlgorithm(field, algorithm),
        minLimit: Options.number(field("minLimit"), options.minLimit ?? defaults.minLimit, { min: 1, integer: true }),
        maxLimit: Options.number(field("maxLimit"), options.maxLimit ?? defaults.maxLimit, { min: 1, integer: true }),
        window: Options.duration(field("window"), options.window ?? defaults.window, { allowZero: false }),
        minSamples: Options.number(field("minSamples"), options.minSamples ?? defaults.minSamples, {
          min: 1,
          integer: true
        }),
        retryAfter: Options.duration(field("retryAfter"), options.retryAfter ?? defaults.retryAfter)
      }),
      (checked) => {
        if (checked.maxLimit < checked.minLimit) {
          return Either.left(
            Options.invalid(field("maxLimit"), checked.maxLimit, `an integer ≥ minLimit (${checked.minLimit})`)
          )
        }
        const initialLimit = options.initialLimit ??
          Math.min(checked.maxLimit, Math.max(checked.minLimit, defaults.initialLimit))
        return Either.map(
          Options.number(field("initialLimit"), initialLimit, {
            min: checked.minLimit,
            max: checked.maxLimit,
            integer: true
          }),
          (initial): Validated => ({
            name,
            algorithm,
            retryAfter: checked.retryAfter,
            settings: {
              algorithm: checked.algorithm,
              initialLimit: initial,
              minLimit: checked.minLimit,
              maxLimit: checked.maxLimit,
              window: Duration.toMillis(checked.window),
              minSamples: checked.minSamples
            }
          })
        )
      }
    )
  })

/** @internal */
export const make = (
  options: AdaptiveConcurrency.AdaptiveConcurrency.Options
): Effect.Effect<AdaptiveConcurrency.AdaptiveConcurrency, InvalidOptionsError> =>
  Effect.map(
    validate(options),
    ({ algorithm, name, retryAfter, settings }) =>
      new AdaptiveConcurrencyImpl(name, algorithm, settings, retryAfter, options.classify ?? defaultClassify)
  )

/** @internal */
export const protect = dual<
  (
    limiter: AdaptiveConcurrency.AdaptiveConcurrency,
    options?: AdaptiveConcurrency.ProtectOptions
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | ConcurrencyLimitError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limiter: AdaptiveConcurrency.AdaptiveConcurrency,
    options?: AdaptiveConcurrency.ProtectOptions
  ) => Effect.Effect<A, E | ConcurrencyLimitError, R>
>((args) => Effect.isEffect(args[0]), (self, limiter, options) => limiter.protect(self, options))

/** @internal */
export const snapshot = (self: AdaptiveConcurrency.AdaptiveConcurrency): Effect.Effect<AdaptiveConcurrency.Snapshot> =>
  self.snapshot

/** @internal */
export const isAdaptiveConcurrency = (u: unknown): u is AdaptiveConcurrency.AdaptiveConcurrency =>
  hasProperty(u, TypeId)
