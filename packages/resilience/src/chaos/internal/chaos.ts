import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Pipeable from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import * as Random from "effect/Random"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Options from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import type * as Chaos from "../Chaos.js"
import { InjectedFaultError } from "./errors.js"

const component = "Chaos"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/Chaos")

/** @internal */
export const StrategyTypeId: unique symbol = Symbol.for("@bulwark/resilience/Chaos/Strategy")

/** @internal */
export const SwitchTypeId: unique symbol = Symbol.for("@bulwark/resilience/Chaos/Switch")

/** @internal */
export const isPolicy = (u: unknown): u is Chaos.Policy<never, unknown, unknown, unknown> => hasProperty(u, TypeId)

/** @internal */
export const isStrategy = (u: unknown): u is Chaos.Strategy<never, unknown, unknown, unknown> =>
  hasProperty(u, StrategyTypeId)

/** @internal */
export const isSwitch = (u: unknown): u is Chaos.Switch => hasProperty(u, SwitchTypeId)

// -----------------------------------------------------------------------------
// Strategies (descriptions; validated by `make`)
// -----------------------------------------------------------------------------

/** @internal */
export const strategy = <I, A, E, R>(
  options: Chaos.StrategyOptions<I, R>,
  action: Chaos.Action<I, A, E, R>,
  checks: ReadonlyArray<Chaos.OptionCheck> = []
): Chaos.Strategy<I, A, E, R> => ({
  [StrategyTypeId]: StrategyTypeId,
  action,
  rate: options.rate,
  enabled: options.enabled ?? true,
  when: options.when,
  phase: options.phase ?? "before",
  checks
})

/** @internal */
export function fault<E, I = unknown, R = never>(
  options: Chaos.FaultOptions<I, E, R>
): Chaos.Strategy<I, never, E, R>
/** @internal */
export function fault<I = unknown, R = never>(
  options: Chaos.StrategyOptions<I, R>
): Chaos.Strategy<I, never, Chaos.InjectedFaultError, R>
export function fault<E, I, R>(
  options: Chaos.FaultOptions<I, E, R> | Chaos.StrategyOptions<I, R>
): Chaos.Strategy<I, never, E, R> | Chaos.Strategy<I, never, Chaos.InjectedFaultError, R> {
  if ("error" in options && options.error !== undefined) {
    const error = options.error
    return strategy<I, never, E, R>(options, { kind: "fault", error: (input) => error(input) })
  }
  return strategy<I, never, Chaos.InjectedFaultError, R>(options, {
    kind: "fault",
    error: (_, policy) => new InjectedFaultError({ policy })
  })
}

/** @internal */
export const latency = <I = unknown, R = never>(
  options: Chaos.LatencyOptions<I, R>
): Chaos.Strategy<I, never, never, R> =>
  strategy<I, never, never, R>(options, { kind: "latency", latency: options.latency })

/** @internal */
export const outcome = <A, E = never, RO = never, I = unknown, R = never>(
  options: Chaos.OutcomeOptions<I, A, E, RO, R>
): Chaos.Strategy<I, A, E, R | RO> => strategy<I, A, E, R | RO>(options, { kind: "outcome", outcome: options.outcome })

/** @internal */
export const behavior = <E = never, RB = never, I = unknown, R = never>(
  options: Chaos.BehaviorOptions<I, E, RB, R>
): Chaos.Strategy<I, never, E, R | RB> =>
  strategy<I, never, E, R | RB>(options, { kind: "behavior", behavior: options.behavior })

// -----------------------------------------------------------------------------
// Validation
// -----------------------------------------------------------------------------

type Delay = { readonly _tag: "Fixed"; readonly duration: Duration.Duration } | {
  readonly _tag: "Between"
  readonly minMillis: number
  readonly maxMillis: number
}

const PHASES: ReadonlyArray<unknown> = ["before", "after"]
const KINDS: ReadonlyArray<unknown> = ["fault", "latency", "outcome", "behavior"]

const isLatencyRange = (
  input: Chaos.Latency
): input is { readonly min: Duration.DurationInput; readonly max: Duration.DurationInput } =>
  typeof input === "object" && input !== null && !Array.isArray(input) && !Duration.isDuration(input)

const checkRate = <R>(field: Options.Field, rate: Chaos.Rate<R>): Options.Check<Chaos.Rate<R>> =>
  Effect.isEffect(rate)
    ? Either.right(rate)
    : Either.map(Options.number(field, rate, { min: 0, max: 1 }), (valid): Chaos.Rate<R> => valid)

const checkEnabled = <R>(field: Options.Field, enabled: Chaos.Enabled<R>): Options.Check<Chaos.Enabled<R>> =>
  typeof enabled === "boolean" || isSwitch(enabled) || Effect.isEffect(enabled)
    ? Either.right(enabled)
    : Either.left(Options.invalid(field, enabled, "a boolean, a Chaos.Switch or an Effect of a boolean"))

const checkDelay = (field: Options.Field, input: Chaos.Latency): Options.Check<Delay> => {
  if (!isLatencyRange(input)) {
    return Either.map(
      Options.duration(field, input, { allowInfinite: true }),
      (duration): Delay => ({ _tag: "Fixed", duration })
    )
  }
  return Either.flatMap(
    Either.all({
      min: Options.duration({ component, option: `${field.option}.min` }, input.min),
      max: Options.duration({ component, option: `${field.option}.max` }, input.max)
    }),
    ({ max, min }): Options.Check<Delay> =>
      Duration.lessThan(max, min)
        ? Either.left(
          Options.invalid({ component, option: `${field.option}.max` }, input.max, `a duration ≥ ${field.option}.min`)
        )
        : Either.right({ _tag: "Between", minMillis: Duration.toMillis(min), maxMillis: Duration.toMillis(max) })
  )
}

/** A strategy as the policy runs it. */
interface Compiled<in I, out A, out E, out R> {
  readonly kind: Chaos.Kind
  /** Whether this call gets the injection: enabled, predicate, then the dice. */
  readonly decide: (input: I) => Effect.Effect<boolean, never, R>
  /** The call with the injection applied. */
  readonly apply: <A0, E0, R0>(
    inner: Effect.Effect<A0, E0, R0>,
    input: I
  ) => Effect.Effect<A0 | A, E0 | E, R0 | R>
}

const NEVER_INJECT: Effect.Effect<boolean> = Effect.succeed(false)
const ALWAYS_INJECT: Effect.Effect<boolean> = Effect.succeed(true)

/** Rate 0 never draws and never injects; rate 1 never draws and always does; NaN counts as 0. */
const roll = (rate: number): Effect.Effect<boolean> =>
  !(rate > 0) ? NEVER_INJECT : rate >= 1 ? ALWAYS_INJECT : Effect.map(Random.next, (draw) => draw < rate)

const readEnabled = <R>(enabled: Chaos.Enabled<R>): Effect.Effect<boolean, never, R> =>
  typeof enabled === "boolean" ? Effect.succeed(enabled) : isSwitch(enabled) ? enabled.isOn : enabled

const sleepFor = (delay: Delay): Effect.Effect<void> => {
  if (delay._tag === "Between") {
    return delay.maxMillis === delay.minMillis
      ? Effect.sleep(Duration.millis(delay.minMillis))
      : Effect.flatMap(Random.next, (draw) => {
        // Whole milliseconds (within the bounds): clocks, the TestClock included, count in them.
        const millis = delay.minMillis + (delay.maxMillis - delay.minMillis) * draw
        return Effect.sleep(Duration.millis(Math.min(delay.maxMillis, Math.max(delay.minMillis, Math.round(millis)))))
      })
  }
  // A hang: never wakes, but stays interruptible so the caller's timeout ends it.
  return Duration.isFinite(delay.duration) ? Effect.sleep(delay.duration) : Effect.never
}

const compile = <I, A, E, R>(
  policy: string,
  index: number,
  candidate: Chaos.Strategy<I, A, E, R>
): Options.Check<Compiled<I, A, E, R>> => {
  const prefix = `strategies[${index}]`
  const field = (option: string): Options.Field => ({ component, option: `${prefix}.${option}` })
  if (!KINDS.includes(candidate.action.kind)) {
    return Either.left(Options.invalid(field("action.kind"), candidate.action.kind, KINDS.join(", ")))
  }
  const failedCheck = candidate.checks.find((check) => !check.valid)
  if (failedCheck !== undefined) {
    return Either.left(Options.invalid(field(failedCheck.option), failedCheck.value, failedCheck.expected))
  }
  if (!PHASES.includes(candidate.phase)) {
    return Either.left(Options.invalid(field("phase"), candidate.phase, `"before" or "after"`))
  }
  if (candidate.when !== undefined && typeof candidate.when !== "function") {
    return Either.left(Options.invalid(field("when"), candidate.when, "a function of the call's input"))
  }
  const action = candidate.action
  const delay: Options.Check<Delay | undefined> = action.kind === "latency"
    ? checkDelay(field("latency"), action.latency)
    : Either.right(undefined)
  return Either.map(
    Either.all({
      rate: checkRate(field("rate"), candidate.rate),
      enabled: checkEnabled(field("enabled"), candidate.enabled),
      delay
    }),
    ({ delay, enabled, rate }) => build(policy, candidate, action, rate, enabled, delay)
  )
}

const build = <I, A, E, R>(
  policy: string,
  candidate: Chaos.Strategy<I, A, E, R>,
  action: Chaos.Action<I, A, E, R>,
  rate: Chaos.Rate<R>,
  enabled: Chaos.Enabled<R>,
  delay: Delay | undefined
): Compiled<I, A, E, R> => {
  const kind = action.kind
  const count = Metric.counter(Metrics.chaosInjections, { policy, kind })
  const announce = Effect.zipRight(
    Effect.sync(() => count()),
    Effect.logDebug(`Chaos policy "${policy}" injected ${kind}`).pipe(
      Effect.annotateLogs({ "chaos.policy": policy, "chaos.kind": kind })
    )
  )
  const when = candidate.when
  const dice: Effect.Effect<boolean, never, R> = typeof rate === "number"
    ? roll(rate)
    : Effect.flatMap(rate, roll)
  const gate = (input: I): Effect.Effect<boolean, never, R> =>
    when === undefined ? dice : Effect.suspend(() => when(input) ? dice : NEVER_INJECT)
  const decide = enabled === true
    ? gate
    : enabled === false
    ? () => NEVER_INJECT
    : (input: I) => Effect.flatMap(readEnabled(enabled), (on) => on ? gate(input) : NEVER_INJECT)

  const before = candidate.phase === "before"
  switch (action.kind) {
    case "fault": {
      const fail = (input: I) =>
        Effect.zipRight(announce, Effect.suspend(() => Effect.fail(action.error(input, policy))))
      return {
        kind,
        decide,
        apply: (inner, input) => before ? fail(input) : Effect.flatMap(inner, () => fail(input))
      }
    }
    case "outcome": {
      const replace = (input: I) => Effect.zipRight(announce, Effect.suspend(() => action.outcome(input)))
      return {
        kind,
        decide,
        apply: (inner, input) => before ? replace(input) : Effect.flatMap(inner, () => replace(input))
      }
    }
    case "latency": {
      const wait = Effect.zipRight(announce, delay === undefined ? Effect.void : sleepFor(delay))
      return {
        kind,
        decide,
        apply: (inner) =>
          before
            ? Effect.zipRight(wait, inner)
            : Effect.flatMap(Effect.exit(inner), (exit) => Effect.zipRight(wait, exit))
      }
    }
    case "behavior": {
      const run = (input: I) => Effect.zipRight(announce, Effect.suspend(() => action.behavior(input)))
      return {
        kind,
        decide,
        apply: (inner, input) =>
          before
            ? Effect.zipRight(run(input), inner)
            : Effect.flatMap(Effect.exit(inner), (exit) => Effect.zipRight(run(input), exit))
      }
    }
  }
}

// -----------------------------------------------------------------------------
// Policy
// -----------------------------------------------------------------------------

class PolicyImpl<in I, out A, out E, out R> extends Pipeable.Class() implements Chaos.Policy<I, A, E, R> {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly kinds: ReadonlyArray<Chaos.Kind>

  constructor(
    readonly name: string,
    private readonly enabled: Chaos.Enabled<R>,
    private readonly strategies: ReadonlyArray<Compiled<I, A, E, R>>
  ) {
    super()
    this.kinds = strategies.map((compiled) => compiled.kind)
  }

  readonly inject = <A0, E0, R0>(
    self: Effect.Effect<A0, E0, R0>,
    input: I
  ): Effect.Effect<A0 | A, E0 | E, R0 | R> => {
    let chaotic: Effect.Effect<A0 | A, E0 | E, R0 | R> = self
    // The first strategy is the outermost: it decides (and acts) first.
    for (let index = this.strategies.length - 1; index >= 0; index--) {
      const compiled = this.strategies[index]
      if (compiled === undefined) continue
      const inner = chaotic
      chaotic = Effect.flatMap(compiled.decide(input), (fire) => fire ? compiled.apply(inner, input) : inner)
    }
    const enabled = this.enabled
    if (enabled === true) return chaotic
    if (enabled === false) return self
    const injected = chaotic
    return Effect.flatMap(readEnabled(enabled), (on) => on ? injected : self)
  }
}

const validate = (
  options: Chaos.Chaos.Options<ReadonlyArray<Chaos.Strategy.Any>, unknown>
): Options.Check<Chaos.Policy<never, unknown, unknown, unknown>> => {
  const name = Options.name({ component, option: "name" }, options.name)
  if (Either.isLeft(name)) return Either.left(name.left)
  const strategies: unknown = options.strategies
  if (!Array.isArray(strategies) || strategies.length === 0) {
    return Either.left(Options.invalid({ component, option: "strategies" }, strategies, "at least one strategy"))
  }
  const compiled: Array<Compiled<never, unknown, unknown, unknown>> = []
  for (const [index, candidate] of options.strategies.entries()) {
    if (!isStrategy(candidate)) {
      return Either.left(
        Options.invalid({ component, option: `strategies[${index}]` }, candidate, "a strategy built by Chaos")
      )
    }
    const checked = compile(name.right, index, candidate)
    if (Either.isLeft(checked)) return Either.left(checked.left)
    compiled.push(checked.right)
  }
  return Either.map(
    checkEnabled({ component, option: "enabled" }, options.enabled ?? true),
    (enabled) => new PolicyImpl(name.right, enabled, compiled)
  )
}

/**
 * The signature types the policy by its strategies: the intersection of their
 * inputs, the unions of their outcomes, errors and requirements. That is a
 * fold over the tuple, which TypeScript cannot check in a body; the body runs
 * every strategy the same way, whatever its types, so it is written once for
 * all of them (the overload's result is a subtype of the body's).
 *
 * @internal
 */
export function make<const S extends ReadonlyArray<Chaos.Strategy.Any>, RP = never>(
  options: Chaos.Chaos.Options<S, RP>
): Effect.Effect<Chaos.Strategy.PolicyOf<S, RP>, InvalidOptionsError>
export function make(
  options: Chaos.Chaos.Options<ReadonlyArray<Chaos.Strategy.Any>, unknown>
): Effect.Effect<Chaos.Policy<never, unknown, unknown, unknown>, InvalidOptionsError> {
  return validate(options)
}

/** @internal */
export function unsafeMake<const S extends ReadonlyArray<Chaos.Strategy.Any>, RP = never>(
  options: Chaos.Chaos.Options<S, RP>
): Chaos.Strategy.PolicyOf<S, RP>
export function unsafeMake(
  options: Chaos.Chaos.Options<ReadonlyArray<Chaos.Strategy.Any>, unknown>
): Chaos.Policy<never, unknown, unknown, unknown> {
  return Either.getOrThrowWith(validate(options), (error) => error)
}

/** @internal */
export const inject = dual(
  2,
  <A, E, R, A2, E2, R2>(
    self: Effect.Effect<A, E, R>,
    policy: Chaos.Policy<void, A2, E2, R2>
  ): Effect.Effect<A | A2, E | E2, R | R2> => policy.inject(self, undefined)
)

/** @internal */
export const injectWith = dual(
  3,
  <A, E, R, I, A2, E2, R2>(
    self: Effect.Effect<A, E, R>,
    policy: Chaos.Policy<I, A2, E2, R2>,
    input: I
  ): Effect.Effect<A | A2, E | E2, R | R2> => policy.inject(self, input)
)
