/**
 * A pipeline's layers, built from a decoded configuration, and `run`, which
 * stacks them around a call in the documented order (see `Pipeline.ts`):
 * timeout, retry, bulkhead and breaker innermost first, then idempotency,
 * then the rate limiter. Layers that are off are not there at all: a call
 * pays only for the layers it has.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Types from "effect/Types"
import * as Bulkhead from "../../bulkhead/Bulkhead.js"
import * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../../Failure.js"
import * as Idempotency from "../../idempotency/Idempotency.js"
import type { IdempotencyStore } from "../../idempotency/IdempotencyStore.js"
import * as RateLimiter from "../../rate-limiter/RateLimiter.js"
import * as Retry from "../../retry/Retry.js"
import * as RetryBudget from "../../retry/RetryBudget.js"
import * as Timeout from "../../timeout/Timeout.js"
import type * as Pipeline from "../Pipeline.js"
import * as environment from "./environment.js"
import * as schema from "./schema.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/Pipeline")

const covariant = (_: never): never => _

/** The idempotency settings every keyed call of a pipeline uses. */
interface IdempotencySettings {
  readonly scope: string
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly waitForInFlight: Duration.Duration | undefined
  readonly storeAll: boolean
  readonly maxStoredBytes: number
}

/** The layers, `undefined` when off: `run` reads plain fields, no `Option` per call. */
interface Instances {
  readonly limiter: RateLimiter.RateLimiter | undefined
  readonly idempotency: IdempotencySettings
  readonly breaker: CircuitBreaker.CircuitBreaker | undefined
  readonly bulkhead: Bulkhead.Bulkhead | undefined
  readonly retry: Retry.Policy | undefined
  readonly timeout: Timeout.Policy | undefined
}

class PipelineImpl<L extends Pipeline.Layers> implements Pipeline.Pipeline<L> {
  readonly [TypeId]: { readonly _L: Types.Covariant<L> } = { _L: covariant }

  constructor(readonly config: Pipeline.Config, readonly layers: Instances) {}

  get name(): string {
    return this.config.name
  }
  get rateLimiter(): Option.Option<RateLimiter.RateLimiter> {
    return Option.fromNullable(this.layers.limiter)
  }
  get circuitBreaker(): Option.Option<CircuitBreaker.CircuitBreaker> {
    return Option.fromNullable(this.layers.breaker)
  }
  get bulkhead(): Option.Option<Bulkhead.Bulkhead> {
    return Option.fromNullable(this.layers.bulkhead)
  }
  get retry(): Option.Option<Retry.Policy> {
    return Option.fromNullable(this.layers.retry)
  }
  get timeout(): Option.Option<Timeout.Policy> {
    return Option.fromNullable(this.layers.timeout)
  }
}

/** @internal */
export const isPipeline = (u: unknown): u is Pipeline.Pipeline => hasProperty(u, TypeId)

const isImpl = (u: Pipeline.Pipeline<Pipeline.Layers>): u is PipelineImpl<Pipeline.Layers> => u instanceof PipelineImpl

// -----------------------------------------------------------------------------
// Building the layers
// -----------------------------------------------------------------------------

/** Builds one layer; a constructor's refusal names the section's field. */
const building = <A>(
  name: string,
  section: string,
  made: Effect.Effect<A, Failure.InvalidOptionsError>,
  rename?: (option: string) => string
): Effect.Effect<A, Pipeline.InvalidPipelineConfigError> =>
  Effect.mapError(made, (error) => schema.fromOptionsError(`pipeline "${name}"`, section, error, rename))

const rateRule = (rule: Pipeline.RateRule): CircuitBreaker.RateOptions => ({
  threshold: rule.threshold,
  window: rule.windowDuration === undefined
    ? { calls: rule.windowCalls ?? schema.defaults.circuitBreaker.rate.windowCalls }
    : { duration: rule.windowDuration },
  ...(rule.minimumCalls === undefined ? {} : { minimumCalls: rule.minimumCalls })
})

const breakerOptions = (name: string, section: Pipeline.CircuitBreakerConfig): CircuitBreaker.Options => {
  const trip: Array<CircuitBreaker.TripStrategy> = []
  if (section.failureThreshold !== undefined || section.failureRate === undefined) {
    trip.push(
      CircuitBreaker.consecutiveFailures(section.failureThreshold ?? schema.defaults.circuitBreaker.failureThreshold)
    )
  }
  if (section.failureRate !== undefined) trip.push(CircuitBreaker.failureRate(rateRule(section.failureRate)))
  if (section.slowCallRate !== undefined) trip.push(CircuitBreaker.slowCallRate(rateRule(section.slowCallRate)))
  return {
    name,
    trip,
    openDuration: section.openDuration,
    halfOpen: {
      permits: section.halfOpen.permits,
      closeAfter: section.halfOpen.closeAfter ??
        Math.min(schema.defaults.circuitBreaker.halfOpen.closeAfter, section.halfOpen.permits),
      ...(section.halfOpen.maxDuration === undefined ? {} : { maxDuration: section.halfOpen.maxDuration })
    },
    ...(section.slowCallDuration === undefined ? {} : { slowCallDuration: section.slowCallDuration })
  }
}

/** The breaker's option names in the configuration's words. */
const breakerField = (option: string): string =>
  option === "trip.consecutiveFailures"
    ? "failureThreshold"
    : option.replace(".window.calls", ".windowCalls").replace(".window.duration", ".windowDuration")

const backoffOf = (section: Pipeline.RetryConfig): Retry.Backoff => {
  const cap = section.cap ?? Duration.max(schema.defaults.retry.cap, section.base)
  switch (section.backoff) {
    case "constant":
      return Retry.constant(section.base)
    case "linear":
      return Retry.linear({ base: section.base, cap })
    case "exponential":
      return Retry.exponential({ base: section.base, factor: section.factor, cap })
    case "fibonacci":
      return Retry.fibonacci({ base: section.base, cap })
  }
}

const algorithmOf = (section: Pipeline.RateLimitConfig): RateLimiter.Algorithm => {
  const { limit, window } = section
  switch (section.algorithm) {
    case "tokenBucket":
      return RateLimiter.tokenBucket({
        limit,
        window,
        ...(section.burst === undefined ? {} : { burst: section.burst })
      })
    case "fixedWindow":
      return RateLimiter.fixedWindow({ limit, window })
    case "slidingWindowLog":
      return RateLimiter.slidingWindowLog({ limit, window })
    case "slidingWindowCounter":
      return RateLimiter.slidingWindowCounter({ limit, window })
    case "leakyBucket":
      return RateLimiter.leakyBucket({
        limit,
        window,
        ...(section.capacity === undefined ? {} : { capacity: section.capacity })
      })
    case "gcra":
      return RateLimiter.gcra({ limit, window, ...(section.burst === undefined ? {} : { burst: section.burst }) })
  }
}

/** The limiter on the store in context (Redis, say), or on a memory store of its own. */
const makeLimiter = (
  options: RateLimiter.RateLimiter.Options
): Effect.Effect<RateLimiter.RateLimiter, Failure.InvalidOptionsError> =>
  Effect.flatMap(Effect.serviceOption(RateLimiter.RateLimiterStore), (store) =>
    Option.match(store, {
      onSome: (store) => Effect.provideService(RateLimiter.make(options), RateLimiter.RateLimiterStore, store),
      onNone: () => Effect.provide(RateLimiter.make(options), RateLimiter.layerMemory())
    }))

const optionalLayer = <S, A>(
  section: S | undefined,
  build: (section: S) => Effect.Effect<A, Pipeline.InvalidPipelineConfigError>
): Effect.Effect<A | undefined, Pipeline.InvalidPipelineConfigError> =>
  section === undefined ? Effect.succeed(undefined) : build(section)

const instancesOf = (config: Pipeline.Config): Effect.Effect<Instances, Pipeline.InvalidPipelineConfigError> =>
  Effect.gen(function*() {
    const name = config.name
    const limiter = yield* optionalLayer(config.rateLimit, (section) =>
      building(
        name,
        "rateLimit",
        makeLimiter({
          name,
          algorithm: algorithmOf(section),
          onExceeded: section.onExceeded,
          maxWait: section.maxWait
        }),
        (option) => option.replace(/^algorithm\./, "")
      ))
    const breaker = yield* optionalLayer(
      config.circuitBreaker,
      (section) => building(name, "circuitBreaker", CircuitBreaker.make(breakerOptions(name, section)), breakerField)
    )
    const bulkhead = yield* optionalLayer(config.bulkhead, (section) =>
      building(
        name,
        "bulkhead",
        Bulkhead.make({
          name,
          maxConcurrent: section.maxConcurrent,
          maxQueued: section.maxQueued,
          ...(section.maxWait === undefined ? {} : { maxWait: section.maxWait })
        })
      ))
    const retry = yield* optionalLayer(config.retry, (section) =>
      Effect.gen(function*() {
        const budget = yield* optionalLayer(section.budget, (budget) =>
          building(
            name,
            "retry.budget",
            RetryBudget.make({
              name,
              ratio: budget.ratio,
              minRetriesPerSecond: budget.minRetriesPerSecond,
              window: budget.window
            })
          ))
        return yield* building(
          name,
          "retry",
          Retry.make({
            name,
            backoff: backoffOf(section),
            jitter: section.jitter,
            maxAttempts: section.maxAttempts,
            respectRetryAfter: section.respectRetryAfter,
            ...(section.maxElapsed === undefined ? {} : { maxElapsed: section.maxElapsed }),
            ...(budget === undefined ? {} : { budget })
          }),
          (option) => option.replace(/^backoff\.(base|delay|increment)$/, "base").replace(/^backoff\./, "")
        )
      }))
    const timeout = yield* optionalLayer(
      config.timeout,
      (section) =>
        building(
          name,
          "timeout",
          Timeout.make({ operation: name, limit: section.limit, onUninterruptible: section.onUninterruptible })
        )
    )
    const idempotency = config.idempotency
    return {
      limiter,
      idempotency: {
        scope: idempotency?.scope ?? name,
        lease: idempotency?.lease ?? schema.defaults.idempotency.lease,
        ttl: idempotency?.ttl ?? schema.defaults.idempotency.ttl,
        waitForInFlight: idempotency?.waitForInFlight,
        storeAll: idempotency?.storeFailures === "all",
        maxStoredBytes: idempotency?.maxStoredBytes ?? schema.defaults.idempotency.maxStoredBytes
      },
      breaker,
      bulkhead,
      retry,
      timeout
    }
  })

/** @internal */
export const make = <const I extends Pipeline.Input>(
  input: I
): Effect.Effect<Pipeline.Pipeline<Pipeline.LayersOf<I>>, Pipeline.InvalidPipelineConfigError> =>
  Effect.flatMap(
    Effect.suspend(() => schema.decode(input, "code")),
    (config) =>
      Effect.map(
        instancesOf(config),
        // A section is decoded, and its layer built, exactly when `I` has it: the layers are `LayersOf<I>`.
        (instances) => new PipelineImpl<Pipeline.LayersOf<I>>(config, instances)
      )
  )

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

/** Every error a pipeline's layers can add to an operation failing with `E`. */
type Widest<E> =
  | E
  | Timeout.TimeoutError
  | Failure.RetriesExhausted<Extract<E | Timeout.TimeoutError, Failure.Transient>>
  | Bulkhead.BulkheadFullError
  | CircuitBreaker.CircuitOpenError
  | RateLimiter.RateLimitedError
  | Failure.InvalidOptionsError

/**
 * The breaker, bulkhead, retry and timeout around `self`, innermost first.
 * Stacked this way, the bulkhead's `protect` starts a region and the
 * breaker's joins it (see `internal/region.ts`): one mask per call.
 */
const isolated = <A, E, R>(self: Effect.Effect<A, E, R>, layers: Instances): Effect.Effect<A, Widest<E>, R> => {
  const timed: Effect.Effect<A, E | Timeout.TimeoutError, R> = layers.timeout === undefined
    ? self
    : Timeout.timeout(self, layers.timeout)
  const retried: Effect.Effect<A, Widest<E>, R> = layers.retry === undefined ? timed : Retry.retry(timed, layers.retry)
  const bulkheaded = layers.bulkhead === undefined ? retried : layers.bulkhead.protect(retried)
  return layers.breaker === undefined ? bulkheaded : layers.breaker.protect(bulkheaded)
}

/**
 * Stands in, inside `Idempotency.run`, for a failure the call does not store.
 * Neither transient nor terminal, and refused by `shouldStore`, so the key is
 * released; the real failure is handed back outside.
 */
class Passthrough extends Data.TaggedError("PipelineIdempotencyPassthrough")<{}> {}

const isPassthrough = (u: unknown): u is Passthrough => u instanceof Passthrough

/** Never encoded: `shouldStore` refuses every `Passthrough`. */
const PassthroughSchema: Schema.Schema<Passthrough> = Schema.declare(isPassthrough)

const idempotentWith = <A, E, R, AI, X, XI, EF, EFI>(
  inner: Effect.Effect<A, E, R>,
  settings: IdempotencySettings,
  call: Pipeline.IdempotencyOptions<A, AI, EF, EFI>,
  failure: Schema.Schema<X, XI>,
  stores: (error: E) => error is E & X
): Effect.Effect<A, E | X | Idempotency.RunError, R | IdempotencyStore> =>
  Effect.flatMap(Failure.CurrentClassifier, (classifier) =>
    Effect.suspend(() => {
      let passed: Option.Option<E> = Option.none()
      const handler = Effect.catchAll(inner, (error): Effect.Effect<never, X | Passthrough> => {
        if (stores(error)) return Effect.fail(error)
        passed = Option.some(error)
        return Effect.fail(new Passthrough())
      })
      const shouldStore = (exit: Exit.Exit<A, X | Passthrough>): boolean => {
        if (Exit.isSuccess(exit)) return true
        const error = Cause.failureOption(exit.cause)
        if (Option.isNone(error) || isPassthrough(error.value)) return false
        if (settings.storeAll) return true
        const verdict = Failure.classifyError(error.value, classifier)
        return Option.isSome(verdict) && verdict.value === "terminal"
      }
      const run = Idempotency.run(() => handler, {
        scope: settings.scope,
        key: call.key,
        fingerprint: call.fingerprint,
        success: call.success,
        failure: Schema.Union(failure, PassthroughSchema),
        lease: settings.lease,
        ttl: settings.ttl,
        maxStoredBytes: settings.maxStoredBytes,
        shouldStore,
        ...(call.partition === undefined ? {} : { partition: call.partition }),
        ...(settings.waitForInFlight === undefined ? {} : { waitForInFlight: settings.waitForInFlight })
      })
      return run.pipe(
        Effect.map((result) => result.value),
        Effect.catchIf(isPassthrough, () =>
          Option.match(passed, {
            onNone: () => Effect.dieMessage("Pipeline: an idempotent call released its key without a failure"),
            onSome: Effect.fail
          }))
      )
    }))

const idempotent = <A, E, R, AI, EF, EFI>(
  inner: Effect.Effect<A, E, R>,
  settings: IdempotencySettings,
  call: Pipeline.IdempotencyOptions<A, AI, EF, EFI>
): Effect.Effect<A, E | EF | Idempotency.RunError, R | IdempotencyStore> => {
  const failure = call.failure
  if (failure === undefined) return idempotentWith(inner, settings, call, Schema.Never, (_: E): _ is never => false)
  const accepts = Schema.is(failure)
  return idempotentWith(inner, settings, call, failure, (error): error is E & EF => accepts(error))
}

/** The rate limiter's part of a call: its key and cost, when given. */
const limitOptions = (options: Pipeline.RunOptions): { readonly key?: string; readonly cost?: number } => {
  const key = options.rateLimit?.key
  const cost = options.rateLimit?.cost
  return { ...(key === undefined ? {} : { key }), ...(cost === undefined ? {} : { cost }) }
}

/**
 * `run`, data first. The overloads' types hold because the layers a pipeline
 * applies are those its `L` allows (see `make`): each layer changes the error
 * channel as `Failures` says, and idempotency adds its errors and store.
 *
 * @internal
 */
export function runDataFirst<A2 extends A, E, R, L extends Pipeline.Layers, A, AI, EF = never, EFI = never>(
  self: Effect.Effect<A2, E, R>,
  pipeline: Pipeline.Pipeline<L>,
  options: Pipeline.IdempotentRunOptions<A, AI, EF, EFI>
): Effect.Effect<A, Pipeline.Failures<L, E> | EF | Idempotency.RunError, R | IdempotencyStore>
export function runDataFirst<A, E, R, L extends Pipeline.Layers>(
  self: Effect.Effect<A, E, R>,
  pipeline: Pipeline.Pipeline<L>,
  options?: Pipeline.RunOptions
): Effect.Effect<A, Pipeline.Failures<L, E>, R>
export function runDataFirst<A, E, R, AI, EF, EFI>(
  self: Effect.Effect<A, E, R>,
  pipeline: Pipeline.Pipeline,
  options: Pipeline.RunOptions & { readonly idempotency?: Pipeline.IdempotencyOptions<A, AI, EF, EFI> } = {}
): Effect.Effect<A, unknown, unknown> {
  if (!isImpl(pipeline)) return Effect.dieMessage("Pipeline.run: not a pipeline built by Pipeline.make")
  const layers = pipeline.layers
  const inner = isolated(self, layers)
  const call = options.idempotency
  const deduplicated = call === undefined ? inner : idempotent(inner, layers.idempotency, call)
  const limiter = layers.limiter
  return limiter === undefined ? deduplicated : RateLimiter.limit(deduplicated, limiter, limitOptions(options))
}

/** @internal */
export const run = dual<
  {
    <L extends Pipeline.Layers, A, AI, EF = never, EFI = never>(
      pipeline: Pipeline.Pipeline<L>,
      options: Pipeline.IdempotentRunOptions<A, AI, EF, EFI>
    ): <A2 extends A, E, R>(
      self: Effect.Effect<A2, E, R>
    ) => Effect.Effect<A, Pipeline.Failures<L, E> | EF | Idempotency.RunError, R | IdempotencyStore>
    <L extends Pipeline.Layers>(
      pipeline: Pipeline.Pipeline<L>,
      options?: Pipeline.RunOptions
    ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Pipeline.Failures<L, E>, R>
  },
  typeof runDataFirst
>((args) => Effect.isEffect(args[0]), runDataFirst)

// -----------------------------------------------------------------------------
// Layers
// -----------------------------------------------------------------------------

/** @internal */
export const layer = <Id, E = never, R = never>(
  tag: Context.Tag<Id, Pipeline.Pipeline>,
  config: Pipeline.Input | Effect.Effect<Pipeline.Input, E, R>
): Layer.Layer<Id, Pipeline.InvalidPipelineConfigError | E, R> =>
  Layer.effect(tag, Effect.flatMap(Effect.isEffect(config) ? config : Effect.succeed(config), make))

/** @internal */
export const layerConfig = <Id>(
  tag: Context.Tag<Id, Pipeline.Pipeline>,
  name?: string
): Layer.Layer<Id, Pipeline.InvalidPipelineConfigError | ConfigError.ConfigError> =>
  layer(tag, environment.config(name))
