/**
 * The fallback chain: primary ▸ cache ▸ secondary ▸ default.
 *
 * One walk serves `chain`, `optional` and `critical`; they differ only in
 * which failures fall through and in what an exhausted chain fails with.
 * Falling through is decided on the whole `Cause`: a cause holding a defect
 * never falls through, even beside a typed failure (two branches, one of
 * which died), so a fallback cannot hide a bug; nor does an interrupted
 * call (see {@link fallible}).
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as Failure from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Options from "../../internal/options.js"
import * as Trace from "../../internal/trace.js"
import type * as Fallback from "../Fallback.js"
import * as answer from "./answer.js"
import { DependencyUnavailableError, describe } from "./errors.js"

const component = "Fallback"

/** Span attributes of a fallback call. */
const attributes = {
  operation: "bulwark.fallback.operation",
  source: "bulwark.fallback.source"
} as const

// -----------------------------------------------------------------------------
// Failures
// -----------------------------------------------------------------------------

/** @internal */
export const isDependencyDown = (error: unknown, classifier: Failure.Classifier = Failure.defaultClassifier): boolean =>
  Failure.isTransient(error) ||
  Failure.isRetriesExhausted(error) ||
  Option.getOrUndefined(Failure.classifyError(error, classifier)) === "transient"

const tagOf = (error: unknown): string =>
  hasProperty(error, "_tag") && typeof error._tag === "string" ? error._tag : typeof error

/**
 * The typed failure of `cause` when it may fall through: none for a cause
 * holding a defect, or only interruption. Interruptions beside a typed
 * failure are of siblings the failure cancelled (`Effect.all`, a race), so
 * the failure stands. When the chain's own fiber is interrupted, the runtime
 * runs no failure handler at all: no fallback starts behind the caller's back.
 */
const fallible = <E>(cause: Cause.Cause<E>): Option.Option<E> =>
  Cause.isDie(cause) ? Option.none() : Cause.failureOption(cause)

// -----------------------------------------------------------------------------
// Plan
// -----------------------------------------------------------------------------

/** Which failures fall through: a user's predicate, every failure, or the failure model's outages. */
type When<E> = { readonly _tag: "Predicate"; readonly predicate: (error: E) => boolean } | {
  readonly _tag: "Always"
} | { readonly _tag: "DependencyDown" }

interface CachePlan<C, A> {
  readonly store: Fallback.Cache<C> & Fallback.CacheWriter<A>
  readonly key: string
  readonly maxAge: Duration.Duration
}

interface Plan<A, E, A2, E2, R2, A3, R3, C, X> {
  readonly operation: string
  readonly when: When<E | E2>
  readonly cache: CachePlan<C, A> | undefined
  readonly secondary: Effect.Effect<A2, E2, R2> | undefined
  readonly fallbackDefault: Effect.Effect<A3, never, R3> | undefined
  /** How an exhausted chain ends, given its last failure. */
  readonly exhausted: (last: E | E2) => Effect.Effect<never, X>
  readonly count: Counters
}

interface RawOptions<A, E, A2, E2, R2, A3, R3, C> {
  readonly operation: string
  readonly when?: ((error: E | E2) => boolean) | undefined
  readonly cache?: Fallback.CacheOptions<C, A> | undefined
  readonly secondary?: Effect.Effect<A2, E2, R2> | undefined
  readonly default?: A3 | Effect.Effect<A3, never, R3>
}

type Counters = { readonly [S in Fallback.Source]: () => void }

/** One set of series per operation: operation names are chosen in code, so this stays small. */
const countersByOperation = globalValue(
  Symbol.for("@bulwark/resilience/Fallback/countersByOperation"),
  () => new Map<string, Counters>()
)

const countersOf = (operation: string): Counters => {
  const known = countersByOperation.get(operation)
  if (known !== undefined) return known
  const series = (source: Fallback.Source) => Metric.counterSeries("bulwark_fallback_total", { operation, source })
  const made: Counters = {
    primary: series("primary"),
    cache: series("cache"),
    secondary: series("secondary"),
    default: series("default")
  }
  countersByOperation.set(operation, made)
  return made
}

const isEffectOf = <A, R>(u: A | Effect.Effect<A, never, R>): u is Effect.Effect<A, never, R> => Effect.isEffect(u)

const defaultEffect = <A3, R3>(
  options: { readonly default?: A3 | Effect.Effect<A3, never, R3> }
): Effect.Effect<A3, never, R3> | undefined => {
  // Presence, not `undefined`, decides: `default: undefined` is a default value like any other.
  if (!("default" in options)) return undefined
  const fallbackDefault = options.default
  return isEffectOf(fallbackDefault) ? fallbackDefault : Effect.succeed(fallbackDefault)
}

const plan = <A, E, A2, E2, R2, A3, R3, C, X>(
  options: RawOptions<A, E, A2, E2, R2, A3, R3, C>,
  when: When<E | E2>,
  exhausted: (last: E | E2) => Effect.Effect<never, X>
): Either.Either<Plan<A, E, A2, E2, R2, A3, R3, C, X>, Failure.InvalidOptionsError> =>
  Either.gen(function*() {
    const operation = yield* Options.name({ component, option: "operation" }, options.operation)
    let cache: CachePlan<C, A> | undefined
    if (options.cache !== undefined) {
      const maxAge = yield* Options.duration({ component, option: "cache.maxAge" }, options.cache.maxAge, {
        allowInfinite: true
      })
      cache = { store: options.cache.store, key: options.cache.key ?? operation, maxAge }
    }
    return {
      operation,
      when,
      cache,
      secondary: options.secondary,
      fallbackDefault: defaultEffect(options),
      exhausted,
      count: countersOf(operation)
    }
  })

// -----------------------------------------------------------------------------
// The walk
// -----------------------------------------------------------------------------

const fallsThrough = <E>(when: When<E>, error: E): Effect.Effect<boolean> => {
  switch (when._tag) {
    case "Always":
      return Effect.succeed(true)
    case "Predicate":
      return Effect.sync(() => when.predicate(error))
    case "DependencyDown":
      return Effect.map(Failure.CurrentClassifier, (classifier) => isDependencyDown(error, classifier))
  }
}

/** Continues with `next` when `cause` may fall through, else fails with it unchanged. */
const onFailure = <E extends EW, EW, B, X, R>(
  when: When<EW>,
  cause: Cause.Cause<E>,
  next: (error: E) => Effect.Effect<B, X, R>
): Effect.Effect<B, E | X, R> =>
  Option.match(fallible(cause), {
    onNone: (): Effect.Effect<B, E | X, R> => Effect.failCause(cause),
    onSome: (error) =>
      Effect.flatMap(
        fallsThrough(when, error),
        (falls): Effect.Effect<B, E | X, R> => falls ? next(error) : Effect.failCause(cause)
      )
  })

const logDegraded = (operation: string, source: Fallback.Source, cause: unknown): Effect.Effect<void> =>
  Effect.logDebug(`Fallback "${operation}" answered from ${source}`).pipe(
    Effect.annotateLogs({
      "fallback.operation": operation,
      "fallback.source": source,
      "fallback.cause": tagOf(cause)
    })
  )

const cacheProblem = (operation: string, action: string, error: unknown): Effect.Effect<void> =>
  Effect.logWarning(`Fallback "${operation}": cache ${action} failed; going on without it`).pipe(
    Effect.annotateLogs({ "fallback.operation": operation, "fallback.cache_error": describe(error) })
  )

const store = <C, A>(operation: string, cache: CachePlan<C, A>, value: A): Effect.Effect<void> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) =>
    cache.store.set(cache.key, { value, storedAt: now }).pipe(
      Effect.catchAll((error) => cacheProblem(operation, "write", error))
    ))

/** A stored value young enough to serve, with its age. */
const lookup = <C, A>(
  operation: string,
  cache: CachePlan<C, A>
): Effect.Effect<Option.Option<{ readonly entry: Fallback.CacheEntry<C>; readonly age: Duration.Duration }>> =>
  cache.store.get(cache.key).pipe(
    Effect.catchAll((error) => Effect.as(cacheProblem(operation, "read", error), Option.none())),
    Effect.flatMap((found) =>
      Effect.map(Clock.currentTimeMillis, (now) =>
        Option.flatMap(found, (entry) => {
          // A value stored "in the future" (clocks of two processes) is as fresh as it gets.
          const age = Duration.millis(Math.max(0, now - entry.storedAt))
          return Duration.lessThanOrEqualTo(age, cache.maxAge) ? Option.some({ entry, age }) : Option.none()
        }))
    )
  )

const walk = <A, E, R, A2, E2, R2, A3, R3, C, X>(
  self: Effect.Effect<A, E, R>,
  plan: Plan<A, E, A2, E2, R2, A3, R3, C, X>
): Effect.Effect<Fallback.Answer<A | A2 | A3 | C, E | E2>, E | E2 | X, R | R2 | R3> => {
  type Out = Fallback.Answer<A | A2 | A3 | C, E | E2>
  const { count, operation } = plan

  const fromDefault = (last: E | E2): Effect.Effect<Out, X, R3> => {
    if (plan.fallbackDefault === undefined) return plan.exhausted(last)
    return Effect.map(plan.fallbackDefault, (value) => {
      count.default()
      return answer.defaulted<A | A2 | A3 | C, E | E2>({ value, cause: last })
    }).pipe(Effect.tap(() => logDegraded(operation, "default", last)))
  }

  const fromSecondary = (
    primaryFailure: E
  ): Effect.Effect<Out, E2 | X, R2 | R3> => {
    if (plan.secondary === undefined) return fromDefault(primaryFailure)
    return Effect.matchCauseEffect(plan.secondary, {
      onSuccess: (value) => {
        count.secondary()
        return Effect.as(
          logDegraded(operation, "secondary", primaryFailure),
          answer.secondary<A | A2 | A3 | C, E | E2>({ value, cause: primaryFailure })
        )
      },
      onFailure: (cause) => onFailure<E2, E | E2, Out, X, R3>(plan.when, cause, fromDefault)
    })
  }

  const fromCache = (primaryFailure: E): Effect.Effect<Out, E2 | X, R2 | R3> => {
    const cache = plan.cache
    if (cache === undefined) return fromSecondary(primaryFailure)
    return Effect.flatMap(lookup(operation, cache), (found) => {
      if (Option.isNone(found)) return fromSecondary(primaryFailure)
      count.cache()
      const { age, entry } = found.value
      return Effect.as(
        logDegraded(operation, "cache", primaryFailure),
        answer.cached<A | A2 | A3 | C, E | E2>({
          value: entry.value,
          storedAt: DateTime.unsafeMake(entry.storedAt),
          age,
          cause: primaryFailure
        })
      )
    })
  }

  return Effect.matchCauseEffect(self, {
    onSuccess: (value) => {
      const fresh = answer.primary<A | A2 | A3 | C>(value)
      if (plan.cache === undefined) {
        count.primary()
        return Effect.succeed(fresh)
      }
      return Effect.as(
        Effect.tap(store(operation, plan.cache, value), () => count.primary()),
        fresh
      )
    },
    onFailure: (cause) => onFailure<E, E | E2, Out, E2 | X, R2 | R3>(plan.when, cause, fromCache)
  })
}

/** The walk, in a `bulwark.fallback <operation>` span when the fiber traces Bulwark's layers. */
const traced = <A, E, R, A2, E2, R2, A3, R3, C, X>(
  self: Effect.Effect<A, E, R>,
  plan: Plan<A, E, A2, E2, R2, A3, R3, C, X>
): Effect.Effect<Fallback.Answer<A | A2 | A3 | C, E | E2>, E | E2 | X, R | R2 | R3> => {
  const untraced = walk(self, plan)
  let spanned: typeof untraced | undefined
  return Effect.suspend(() =>
    Trace.tracing()
      ? spanned ??= untraced.pipe(
        Effect.tap((answer) => Effect.annotateCurrentSpan(attributes.source, answer.source)),
        Effect.withSpan(`bulwark.fallback ${plan.operation}`, {
          attributes: { [attributes.operation]: plan.operation },
          captureStackTrace: false
        })
      )
      : untraced
  )
}

const build = <A, E, R, A2, E2, R2, A3, R3, C, X>(
  self: Effect.Effect<A, E, R>,
  options: RawOptions<A, E, A2, E2, R2, A3, R3, C>,
  when: When<E | E2>,
  exhausted: (last: E | E2) => Effect.Effect<never, X>
): Effect.Effect<Fallback.Answer<A | A2 | A3 | C, E | E2>, E | E2 | X, R | R2 | R3> =>
  Either.match(plan(options, when, exhausted), {
    // Options are code, not input: a bad one is a bug, reported as a defect naming the option.
    onLeft: (error) => Effect.die(error),
    onRight: (valid) => traced(self, valid)
  })

const whenOf = <E>(predicate: ((error: E) => boolean) | undefined): When<E> =>
  predicate === undefined ? { _tag: "DependencyDown" } : { _tag: "Predicate", predicate }

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

const isDataFirst = (args: IArguments): boolean => Effect.isEffect(args[0])

/** @internal */
export const chain = dual(
  isDataFirst,
  <A, E, R, A2, E2, R2, A3, R3, C>(
    self: Effect.Effect<A, E, R>,
    options: Fallback.Options<A, E, A2, E2, R2, A3, R3, C>
  ): Effect.Effect<Fallback.Answer<A | A2 | A3 | C, E | E2>, E | E2, R | R2 | R3> =>
    build(self, options, whenOf(options.when), (last: E | E2) => Effect.fail(last))
)

/** @internal */
export const optional = dual(
  isDataFirst,
  <A, E, R, A2, E2, R2, A3, R3, C>(
    self: Effect.Effect<A, E, R>,
    options: Fallback.OptionalOptions<A, A2, E2, R2, A3, R3, C>
  ): Effect.Effect<Fallback.Answer<A | A2 | A3 | C, E | E2>, never, R | R2 | R3> =>
    // Every typed failure falls through to a default that cannot fail, so the chain is never exhausted and
    // never fails: only defects and interruption remain, and the error channel says so.
    Effect.catchAll(
      build<A, E, R, A2, E2, R2, A3, R3, C, never>(self, options, { _tag: "Always" }, Effect.die),
      Effect.die
    )
)

/** @internal */
export const critical = dual(
  isDataFirst,
  <A, E, R, A2, E2, R2, C>(
    self: Effect.Effect<A, E, R>,
    options: Fallback.CriticalOptions<A, E, A2, E2, R2, C>
  ): Effect.Effect<
    Fallback.Answer<A | A2 | C, E | E2>,
    E | E2 | DependencyUnavailableError<E | E2>,
    R | R2
  > =>
    build<A, E, R, A2, E2, R2, never, never, C, DependencyUnavailableError<E | E2>>(
      self,
      { operation: options.operation, when: options.when, cache: options.cache, secondary: options.secondary },
      whenOf(options.when),
      (last) => Effect.fail(new DependencyUnavailableError({ dependency: options.operation, cause: last }))
    )
)

/**
 * An overload, because the compiler cannot follow `Effect.all`'s conditional
 * result type for a generic record to the mapped type it is for a concrete one.
 *
 * @internal
 */
export function all<const D extends Fallback.Dependencies>(
  dependencies: D
): Effect.Effect<Fallback.Answers<D>, Effect.Effect.Error<D[keyof D]>, Effect.Effect.Context<D[keyof D]>>
export function all(
  dependencies: Fallback.Dependencies
): Effect.Effect<Record<string, Fallback.Answer<unknown, unknown>>, unknown, unknown> {
  return Effect.all(dependencies, { concurrency: "unbounded" })
}
