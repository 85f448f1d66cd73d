/**
 * A pipeline puts every layer of defence around a call, in one fixed,
 * documented order, built from one configuration value that operators can
 * change without touching code.
 *
 * ```text
 *   call ─▶ rate limit ─▶ idempotency ─▶ circuit breaker ─▶ bulkhead ─▶ retry ─▶ timeout ─▶ operation
 *                                                                        (backoff+jitter)  (per attempt)
 *   fallback (cache ▸ secondary ▸ default) goes around all of it, on typed failures only:
 *   operation.pipe(Pipeline.run(pipeline), Fallback.chain({ … }))
 * ```
 *
 * Why this order (the mistake Resilience4j users keep making, #1657, is to
 * leave it to chance: its annotations apply `Retry(CircuitBreaker(RateLimiter(
 * TimeLimiter(Bulkhead(call)))))` unless told otherwise, so retries inflate
 * the breaker's counts and bulkhead rejections trip it):
 *
 * - **Rate limit first.** It is the cheapest refusal and protects everything
 *   behind it, including the idempotency store. It counts calls, not
 *   attempts: a call's retries happen further in and spend no extra quota.
 * - **Idempotency before the breaker.** A repeat of a completed request is
 *   replayed from the store: it never reaches the dependency, never counts in
 *   the breaker, and is answered even while the breaker is open.
 * - **Breaker outside the retry.** The breaker sees one outcome per call, so
 *   a call retried four times counts once (no retry storm in its window), and
 *   an open breaker refuses the call before any retry loop starts, instead of
 *   each retry knocking on it.
 * - **Bulkhead inside the breaker.** A call the breaker refuses never takes a
 *   permit, and a full bulkhead (a rejection, not a failure of the
 *   dependency) never trips the breaker. The permit is held for the whole
 *   call, retries included, so each call has at most one attempt in flight:
 *   the bulkhead caps the dependency's concurrency exactly.
 * - **Retry outside the timeout.** The timeout limits each attempt, so a slow
 *   attempt is cut off and retried; the retry's `maxElapsed` bounds the whole.
 * - **Fallback outermost, on typed failures only.** It answers once every
 *   other layer has given up; defects and interruption are never hidden.
 *
 * Each layer is on when its section is present in the {@link Config} and off
 * when it is absent. The configuration is one value decoded with `Schema`:
 * from code ({@link make}, {@link fromConfig}), from the environment through
 * effect's `Config` ({@link config}), or from a JSON or YAML file
 * ({@link fromFile}). Invalid configuration fails at startup with
 * {@link InvalidPipelineConfigError}, whose message names every bad field
 * (`circuitBreaker.failureThreshold: expected a positive integer, got -1`).
 *
 * Idempotency is the exception: it is a promise to a client ("this request
 * runs once"), not a tuning knob, so it applies to every call that passes an
 * idempotency key, with the `idempotency` section's settings or the
 * defaults; see {@link IdempotencyOptions}.
 *
 * The breaker and the bulkhead of a pipeline run as one protected region (one
 * interruption mask per call, see the `CircuitBreaker` docs), exactly as when
 * they are stacked by hand: a pipeline costs what the same layers cost.
 *
 * Metrics, logs and errors name every layer after the pipeline's `name`: the
 * breaker, the bulkhead, the retry policy, the timeout's operation and the
 * rate limiter are all called `payments` for a pipeline named `payments`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Pipeline } from "@bulwark/resilience"
 *
 * declare const charge: Effect.Effect<string, Failure.TransientError | Failure.TerminalError>
 *
 * const program = Effect.gen(function*() {
 *   const payments = yield* Pipeline.make({
 *     name: "payments",
 *     circuitBreaker: { failureThreshold: 5, openDuration: "30 seconds" },
 *     bulkhead: { maxConcurrent: 16 },
 *     retry: { maxAttempts: 4, base: "100 millis", cap: "2 seconds" },
 *     timeout: { limit: "2 seconds" }
 *   })
 *   return yield* charge.pipe(Pipeline.run(payments))
 *   // Effect<string, TerminalError | RetriesExhausted<TransientError | TimeoutError>
 *   //               | CircuitOpenError | BulkheadFullError, never>
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as PlatformError from "@effect/platform/Error"
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as ConfigError from "effect/ConfigError"
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import type * as Types from "effect/Types"
import type * as Bulkhead from "../bulkhead/Bulkhead.js"
import type * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import type { InvalidOptionsError } from "../Failure.js"
import type * as Idempotency from "../idempotency/Idempotency.js"
import type { IdempotencyStore } from "../idempotency/IdempotencyStore.js"
import type * as RateLimiter from "../rate-limiter/RateLimiter.js"
import type * as Retry from "../retry/Retry.js"
import type * as Timeout from "../timeout/Timeout.js"
import * as environment from "./internal/environment.js"
import { InvalidPipelineConfigError } from "./internal/errors.js"
import * as file from "./internal/file.js"
import * as internal from "./internal/pipeline.js"
import * as schema from "./internal/schema.js"

// -----------------------------------------------------------------------------
// Configuration
// -----------------------------------------------------------------------------

/**
 * A pipeline's configuration, decoded: every default filled in, durations as
 * `Duration`. A section that is absent turns its layer off.
 *
 * In the encoded form ({@link Input}: code, JSON, YAML, the environment) a
 * duration is a string such as `"30 seconds"`, `"250 millis"` or
 * `"1.5 minutes"` (units: nanos, micros, millis, seconds, minutes, hours,
 * days, weeks), a number of milliseconds, or a `Duration`.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface Config {
  /**
   * Names every layer in metrics, logs and errors: 1 to 128 characters of
   * `A-Z a-z 0-9 _ . : / -`. Bounded: a dependency's name, never a user id.
   */
  readonly name: string
  /** The outermost layer. */
  readonly rateLimit?: RateLimitConfig
  /** Settings for calls made with an idempotency key; see {@link IdempotencyOptions}. */
  readonly idempotency?: IdempotencyConfig
  readonly circuitBreaker?: CircuitBreakerConfig
  readonly bulkhead?: BulkheadConfig
  readonly retry?: RetryConfig
  /** The timeout of each attempt. */
  readonly timeout?: TimeoutConfig
}

/**
 * The rate limiter (see `RateLimiter`): `limit` calls per `window` for each
 * key a call names (`"global"` when it names none).
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RateLimitConfig {
  /** Default `"tokenBucket"`. */
  readonly algorithm:
    | "tokenBucket"
    | "fixedWindow"
    | "slidingWindowLog"
    | "slidingWindowCounter"
    | "leakyBucket"
    | "gcra"
  /** Calls per window: a positive integer. Required. */
  readonly limit: number
  /** Required. */
  readonly window: Duration.Duration
  /** The largest burst (`tokenBucket` and `gcra` only). Default: `limit`. */
  readonly burst?: number
  /** The calls that may wait (`leakyBucket` only). Default: `limit`. */
  readonly capacity?: number
  /** `"reject"` fails at once with `RateLimitedError`; `"wait"` waits up to `maxWait` for a slot. Default `"reject"`. */
  readonly onExceeded: "reject" | "wait"
  /** The longest wait in `"wait"` mode. Default 5 seconds. */
  readonly maxWait: Duration.Duration
}

/**
 * How calls made with an idempotency key are stored (see `Idempotency`).
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface IdempotencyConfig {
  /** The operation's bounded name, e.g. `"POST /payments"`. Default: the pipeline's name. */
  readonly scope?: string
  /** How long a claim holds without a heartbeat. Default 30 seconds. */
  readonly lease: Duration.Duration
  /** How long a stored result is replayed. Default 24 hours. */
  readonly ttl: Duration.Duration
  /** How long a repeat waits for the same key in flight elsewhere before a conflict. Default: no wait. */
  readonly waitForInFlight?: Duration.Duration
  /** Which failures the call's `failure` schema accepts are stored: `"terminal"` ones, or `"all"`. Default `"terminal"`. */
  readonly storeFailures: "terminal" | "all"
  /** The largest stored result, in bytes of JSON. Default 1,048,576 (1 MiB). */
  readonly maxStoredBytes: number
}

/**
 * The circuit breaker (see `CircuitBreaker`). It opens when any of its trip
 * rules fires: `failureThreshold` failures in a row (default 5 when no
 * `failureRate` is given), a `failureRate`, a `slowCallRate`.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface CircuitBreakerConfig {
  /** Consecutive failed calls that open the breaker. Default 5, unless `failureRate` is set. */
  readonly failureThreshold?: number
  /** Opens when the percentage of failed calls in a window reaches a threshold. */
  readonly failureRate?: RateRule
  /** Calls slower than this are slow. Required by `slowCallRate`. */
  readonly slowCallDuration?: Duration.Duration
  /** Opens when the percentage of slow calls in a window reaches a threshold. */
  readonly slowCallRate?: RateRule
  /** How long the breaker stays open before probing. Default 30 seconds. */
  readonly openDuration: Duration.Duration
  readonly halfOpen: HalfOpenConfig
}

/**
 * A trip rule over a window of calls: the last `windowCalls` calls (default
 * 100), or the calls of the last `windowDuration`.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RateRule {
  /** A percentage above 0 and at most 100. Default 50. */
  readonly threshold: number
  /** Calls the window must hold before the rate counts. Default: 10, at most the window's size. */
  readonly minimumCalls?: number
  readonly windowCalls?: number
  readonly windowDuration?: Duration.Duration
}

/**
 * Probe calls while the breaker is half-open.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface HalfOpenConfig {
  /** Probe calls let through. Default 3. */
  readonly permits: number
  /** Successful probes that close the breaker: at most `permits`. Default 3, at most `permits`. */
  readonly closeAfter?: number
  /** The longest a half-open period lasts before the breaker opens again. Default: no limit. */
  readonly maxDuration?: Duration.Duration
}

/**
 * The bulkhead (see `Bulkhead`).
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface BulkheadConfig {
  /** Calls that run at once: a positive integer. Required. */
  readonly maxConcurrent: number
  /** Calls that may wait for a permit. Default 0 (reject at once when full). */
  readonly maxQueued: number
  /** How long a queued call waits. Default: as long as it is queued. */
  readonly maxWait?: Duration.Duration
}

/**
 * The retry policy (see `Retry`): transient failures are retried after a
 * backoff with jitter (and at least a failure's `retryAfter`).
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RetryConfig {
  /** Attempts in all, the first one included. Default 4. */
  readonly maxAttempts: number
  /** Default `"exponential"` (`base · factor^(n-1)`); `"constant"` waits `base`; `"linear"` adds `base`. */
  readonly backoff: "exponential" | "constant" | "linear" | "fibonacci"
  /** The first delay. Default 100 milliseconds. */
  readonly base: Duration.Duration
  /** The growth of an exponential backoff: a number ≥ 1. Default 2. */
  readonly factor: number
  /** The longest delay, before jitter: at least `base`. Default 5 seconds, or `base` when that is longer. */
  readonly cap?: Duration.Duration
  /** Default `"full"` (AWS full jitter: a random delay from 0 to the backoff). */
  readonly jitter: "full" | "equal" | "decorrelated" | "none"
  /** Gives up before a wait would take the call past this. Default: no limit. */
  readonly maxElapsed?: Duration.Duration
  /** Waits at least a failure's `retryAfter` hint. Default `true`. */
  readonly respectRetryAfter: boolean
  /** A retry budget (see `RetryBudget`) for this pipeline's calls, against retry storms. Default: none. */
  readonly budget?: RetryBudgetConfig
}

/**
 * A retry budget: retries stay below `ratio` of the calls, plus
 * `minRetriesPerSecond`, over `window`.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RetryBudgetConfig {
  /** Default 0.2. */
  readonly ratio: number
  /** Default 10. */
  readonly minRetriesPerSecond: number
  /** A whole number of seconds from 1 to 60. Default 10 seconds. */
  readonly window: Duration.Duration
}

/**
 * The timeout of each attempt (see `Timeout`).
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface TimeoutConfig {
  /** A positive duration. Required. */
  readonly limit: Duration.Duration
  /**
   * `"wait"` (default) for work that does not stop at once at the limit, or
   * `"abandon"` it to the background and answer at the limit (see `Timeout`).
   */
  readonly onUninterruptible?: "wait" | "abandon"
}

/**
 * A duration in the encoded configuration: `"30 seconds"`, `"250 millis"`, a
 * number of milliseconds, or a `Duration`.
 *
 * @since 0.1.0
 * @category Configuration
 */
export type DurationInput = string | number | Duration.Duration

/**
 * The encoded configuration, as written in code, JSON or YAML: every field
 * with a default is optional, durations are {@link DurationInput}s. A decoded
 * {@link Config} is an `Input` too.
 *
 * @example
 * ```ts
 * import { Pipeline } from "@bulwark/resilience"
 *
 * const input: Pipeline.Input = {
 *   name: "inventory",
 *   circuitBreaker: { failureRate: { threshold: 50, windowDuration: "1 minute", minimumCalls: 20 } },
 *   retry: { maxAttempts: 3, maxElapsed: "5 seconds" },
 *   timeout: { limit: 800 }
 * }
 * ```
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface Input {
  readonly name: string
  readonly rateLimit?: {
    readonly algorithm?: RateLimitConfig["algorithm"]
    readonly limit: number
    readonly window: DurationInput
    readonly burst?: number
    readonly capacity?: number
    readonly onExceeded?: "reject" | "wait"
    readonly maxWait?: DurationInput
  }
  readonly idempotency?: {
    readonly scope?: string
    readonly lease?: DurationInput
    readonly ttl?: DurationInput
    readonly waitForInFlight?: DurationInput
    readonly storeFailures?: "terminal" | "all"
    readonly maxStoredBytes?: number
  }
  readonly circuitBreaker?: {
    readonly failureThreshold?: number
    readonly failureRate?: RateRuleInput
    readonly slowCallDuration?: DurationInput
    readonly slowCallRate?: RateRuleInput
    readonly openDuration?: DurationInput
    readonly halfOpen?: {
      readonly permits?: number
      readonly closeAfter?: number
      readonly maxDuration?: DurationInput
    }
  }
  readonly bulkhead?: {
    readonly maxConcurrent: number
    readonly maxQueued?: number
    readonly maxWait?: DurationInput
  }
  readonly retry?: {
    readonly maxAttempts?: number
    readonly backoff?: RetryConfig["backoff"]
    readonly base?: DurationInput
    readonly factor?: number
    readonly cap?: DurationInput
    readonly jitter?: RetryConfig["jitter"]
    readonly maxElapsed?: DurationInput
    readonly respectRetryAfter?: boolean
    readonly budget?: {
      readonly ratio?: number
      readonly minRetriesPerSecond?: number
      readonly window?: DurationInput
    }
  }
  readonly timeout?: {
    readonly limit: DurationInput
    readonly onUninterruptible?: "wait" | "abandon"
  }
}

/**
 * A {@link RateRule} as written.
 *
 * @since 0.1.0
 * @category Configuration
 */
export interface RateRuleInput {
  readonly threshold?: number
  readonly minimumCalls?: number
  readonly windowCalls?: number
  readonly windowDuration?: DurationInput
}

/**
 * The configuration's schema: decodes an {@link Input} into a {@link Config},
 * rejecting unknown fields.
 *
 * @since 0.1.0
 * @category Configuration
 */
export const ConfigSchema: Schema.Schema<Config, Input> = schema.ConfigSchema

/**
 * The defaults the schema fills in.
 *
 * @since 0.1.0
 * @category Configuration
 */
export const defaults: typeof schema.defaults = schema.defaults

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * One invalid field: its path in the configuration (`circuitBreaker.halfOpen.permits`,
 * `""` for the whole), what was wrong, and, for the environment, the variable
 * it was read from.
 *
 * @since 0.1.0
 * @category Errors
 */
export interface ConfigIssue {
  readonly path: string
  readonly message: string
  /** The environment variable (`PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD`), when read from the environment. */
  readonly variable?: string
}

// Declared in `internal/errors.ts`, a leaf the internals import.
export { InvalidPipelineConfigError }

// -----------------------------------------------------------------------------
// Decoders
// -----------------------------------------------------------------------------

/**
 * Decodes a configuration written in code (or parsed from anywhere).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const config = yield* Pipeline.fromConfig({ name: "search", retry: {}, timeout: { limit: "500 millis" } })
 *   // config.retry.maxAttempts === 4 (the default)
 *   return yield* Pipeline.make(config)
 * })
 * ```
 *
 * @since 0.1.0
 * @category Decoders
 */
export const fromConfig: (input: unknown) => Effect.Effect<Config, InvalidPipelineConfigError> = schema.fromConfig

/**
 * Reads a configuration from effect's `Config` (by default the environment).
 * Each field is a variable named by its path in CONSTANT_CASE after the
 * pipeline's name: for `Pipeline.config("payments")`,
 *
 * | field | variable |
 * |---|---|
 * | `circuitBreaker.failureThreshold` | `PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD` |
 * | `circuitBreaker.halfOpen.permits` | `PAYMENTS_CIRCUIT_BREAKER_HALF_OPEN_PERMITS` |
 * | `retry.maxAttempts` | `PAYMENTS_RETRY_MAX_ATTEMPTS` |
 * | `timeout.limit` | `PAYMENTS_TIMEOUT_LIMIT` |
 * | `timeout.onUninterruptible` | `PAYMENTS_TIMEOUT_ON_UNINTERRUPTIBLE` |
 *
 * A section is present (its layer on) when any of its variables is set.
 * Durations are written as in a file (`"30 seconds"`, or milliseconds), and so
 * are numbers and `true`/`false`. Without a name, the variables have no prefix
 * and the name comes from `NAME`. The path is built with `Config.nested`, so
 * any `ConfigProvider` works (its path delimiter joins the parts: `_` for the
 * environment). Invalid values fail with {@link InvalidPipelineConfigError}
 * naming the field and the variable; unknown variables are not looked at.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * const config = Pipeline.config("payments").pipe(
 *   Effect.withConfigProvider(
 *     ConfigProvider.fromMap(
 *       new Map([
 *         ["PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "3"],
 *         ["PAYMENTS_RETRY_MAX_ATTEMPTS", "5"],
 *         ["PAYMENTS_TIMEOUT_LIMIT", "2 seconds"]
 *       ]),
 *       { pathDelim: "_" }
 *     )
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category Decoders
 */
export const config: (
  name?: string
) => Effect.Effect<Config, InvalidPipelineConfigError | ConfigError.ConfigError> = environment.config

/**
 * Reads a configuration file: JSON (`.json`) or YAML (`.yaml`, `.yml`), the
 * whole document being one pipeline's configuration. A syntax error or an
 * invalid field fails with {@link InvalidPipelineConfigError} (naming the
 * file); a file that cannot be read fails with the platform's error.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Effect } from "effect"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * // payments.yaml:
 * //   name: payments
 * //   circuitBreaker: { failureThreshold: 5, openDuration: 30 seconds }
 * //   retry: { maxAttempts: 4, base: 100 millis, cap: 2 seconds }
 * //   timeout: { limit: 2 seconds }
 * const payments = Pipeline.fromFile("payments.yaml").pipe(
 *   Effect.flatMap(Pipeline.make),
 *   Effect.provide(NodeFileSystem.layer)
 * )
 * ```
 *
 * @since 0.1.0
 * @category Decoders
 */
export const fromFile: (
  path: string
) => Effect.Effect<Config, InvalidPipelineConfigError | PlatformError.PlatformError, FileSystem.FileSystem> =
  file.fromFile

// -----------------------------------------------------------------------------
// Pipeline
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
 * Which layers a pipeline may apply: `true` (always), `false` (never) or
 * `boolean` (it depends on the configuration, as for one read from the
 * environment or a file). The error type of {@link run} follows from it.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Layers {
  readonly rateLimit: boolean
  readonly circuitBreaker: boolean
  readonly bulkhead: boolean
  readonly retry: boolean
  readonly timeout: boolean
}

/**
 * The {@link Layers} of a configuration's type: a section that is present is
 * `true`, absent `false`, optional `boolean`.
 *
 * @since 0.1.0
 * @category Models
 */
export type LayersOf<I> = { readonly [K in keyof Layers]: LayerOf<I, K> }

/**
 * @since 0.1.0
 * @category Models
 */
export type LayerOf<I, K extends PropertyKey> = K extends keyof I
  ? [Exclude<I[K], undefined>] extends [never] ? false : undefined extends I[K] ? boolean : true
  : false

/**
 * The error channel of a call run through a pipeline with layers `L`, for an
 * operation failing with `E`: the timeout adds `TimeoutError`; the retry
 * takes the transient errors out and adds `RetriesExhausted`; the breaker
 * adds `CircuitOpenError`, the bulkhead `BulkheadFullError`, the rate limiter
 * `RateLimitedError` (and `InvalidOptionsError` for an invalid key or cost).
 * A layer that may be off leaves what it would have removed.
 *
 * @since 0.1.0
 * @category Models
 */
export type Failures<L extends Layers, E> =
  | AfterRetry<L, AfterTimeout<L, E>>
  | (L["circuitBreaker"] extends false ? never : CircuitBreaker.CircuitOpenError)
  | (L["bulkhead"] extends false ? never : Bulkhead.BulkheadFullError)
  | (L["rateLimit"] extends false ? never : RateLimiter.RateLimitedError | InvalidOptionsError)

type AfterTimeout<L extends Layers, E> = L["timeout"] extends false ? E : E | Timeout.TimeoutError

type AfterRetry<L extends Layers, E> = L["retry"] extends false ? E
  : L["retry"] extends true ? Retry.Retried<E>
  : E | Retry.Retried<E>

/**
 * A pipeline: the instances its configuration asked for, each `None` when its
 * layer is off (the breaker for an admin route or a health check, the
 * bulkhead for its counts). Build it with {@link make}; run calls with {@link run}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Pipeline<out L extends Layers = Layers> {
  readonly [TypeId]: { readonly _L: Types.Covariant<L> }
  readonly name: string
  /** The configuration it was built from, decoded (defaults filled in). */
  readonly config: Config
  readonly rateLimiter: Option.Option<RateLimiter.RateLimiter>
  readonly circuitBreaker: Option.Option<CircuitBreaker.CircuitBreaker>
  readonly bulkhead: Option.Option<Bulkhead.Bulkhead>
  readonly retry: Option.Option<Retry.Policy>
  readonly timeout: Option.Option<Timeout.Policy>
}

/**
 * Builds the layers a configuration asks for: the breaker, the bulkhead, the
 * retry policy (and its budget), the timeout and the rate limiter, all named
 * after the configuration's `name`. Nothing forks, so no `Scope` is needed.
 * The rate limiter uses the `RateLimiterStore` in context when there is one
 * (`RedisRateLimiter.layer` to share limits across processes), a store of its
 * own in memory otherwise.
 *
 * Given the configuration literally in code, the pipeline's type knows which
 * layers it has, and so does the error type of {@link run}. A configuration
 * read from the environment or a file may have any layer: its calls' error
 * type lists every layer's errors.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * const fromCode = Pipeline.make({ name: "search", retry: { maxAttempts: 3 }, timeout: { limit: "1 second" } })
 * // Effect<Pipeline<{ retry: true; timeout: true; circuitBreaker: false; … }>, InvalidPipelineConfigError>
 *
 * const fromEnvironment = Effect.flatMap(Pipeline.config("search"), Pipeline.make)
 * // Effect<Pipeline<{ retry: boolean; … }>, InvalidPipelineConfigError | ConfigError>
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <const I extends Input>(config: I) => Effect.Effect<
  Pipeline<LayersOf<I>>,
  InvalidPipelineConfigError
> = internal.make

/**
 * @since 0.1.0
 * @category Guards
 */
export const isPipeline: (u: unknown) => u is Pipeline = internal.isPipeline

// -----------------------------------------------------------------------------
// Running
// -----------------------------------------------------------------------------

/**
 * Per-call options of {@link run}.
 *
 * @since 0.1.0
 * @category Running
 */
export interface RunOptions {
  /**
   * Which bucket of the rate limiter the call draws from (a user, a tenant, an
   * API key: never part of a metric) and how many units it takes. Default:
   * key `"global"`, cost 1.
   */
  readonly rateLimit?: { readonly key?: string | undefined; readonly cost?: number | undefined } | undefined
}

/**
 * Makes a call idempotent (see `Idempotency`): it runs at most once per
 * `(scope, partition, key)`, and every repeat is answered with the stored
 * result, without going through the breaker, the bulkhead or the dependency.
 * Needs an `IdempotencyStore` in context. The scope and the lease, TTL and
 * wait come from the pipeline's `idempotency` section (or the defaults).
 *
 * A success is stored and replayed with `success`. A failure is stored when
 * `failure` accepts it (`Schema.is`) and the section's `storeFailures` rule
 * says so (by default: when it is terminal, such as a declined card); every
 * other outcome (a transient failure, `RetriesExhausted`, an open breaker, a
 * defect, an interruption) releases the key, so the client's retry with the
 * same key runs again.
 *
 * @since 0.1.0
 * @category Running
 */
export interface IdempotencyOptions<A, AI, E, EI> {
  /** The client's key: 1 to 255 characters, no control characters. */
  readonly key: string
  /** A hash of the request: a key used with another fingerprint fails with `IdempotencyMismatchError`. */
  readonly fingerprint: string
  /** A tenant or user id, part of the key's identity. Default `""`. */
  readonly partition?: string | undefined
  /** How a success is stored and replayed (JSON). */
  readonly success: Schema.Schema<A, AI>
  /** The failures that may be stored and replayed (JSON). Default: none. */
  readonly failure?: Schema.Schema<E, EI> | undefined
}

/**
 * {@link RunOptions} with an idempotency key.
 *
 * @since 0.1.0
 * @category Running
 */
export interface IdempotentRunOptions<A, AI, E, EI> extends RunOptions {
  readonly idempotency: IdempotencyOptions<A, AI, E, EI>
}

/**
 * Runs an operation through the pipeline's layers, in the documented order
 * (rate limit ▸ idempotency ▸ circuit breaker ▸ bulkhead ▸ retry ▸ timeout ▸
 * operation). The error type is the operation's as each layer changes it
 * (see {@link Failures}): after a retry, transient errors are gone and
 * `RetriesExhausted` carries the last of them.
 *
 * A fallback goes around the result, outermost, and catches typed failures
 * only: `op.pipe(Pipeline.run(pipeline), Fallback.chain({ … }))`.
 *
 * Build the protected effect once when the operation does not change: the
 * layers are assembled when `run` is called, not when the effect runs.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Failure, Fallback, IdempotencyStore, Pipeline } from "@bulwark/resilience"
 *
 * const Receipt = Schema.Struct({ id: Schema.String })
 * declare const charge: Effect.Effect<typeof Receipt.Type, Failure.TransientError | Failure.TerminalError>
 *
 * const program = Effect.gen(function*() {
 *   const payments = yield* Pipeline.make({
 *     name: "payments",
 *     rateLimit: { limit: 100, window: "1 second" },
 *     circuitBreaker: {},
 *     retry: { maxAttempts: 3 },
 *     timeout: { limit: "2 seconds" }
 *   })
 *   return yield* charge.pipe(
 *     Pipeline.run(payments, {
 *       rateLimit: { key: "merchant-7" },
 *       idempotency: { key: "order-42", fingerprint: "sha256:…", success: Receipt }
 *     }),
 *     Fallback.chain({ operation: "payments", default: { id: "pending" } })
 *   )
 * }).pipe(Effect.provide(IdempotencyStore.layerMemory))
 * ```
 *
 * @since 0.1.0
 * @category Running
 */
export const run: {
  <L extends Layers, A, AI, EF = never, EFI = never>(
    pipeline: Pipeline<L>,
    options: IdempotentRunOptions<A, AI, EF, EFI>
  ): <A2 extends A, E, R>(
    self: Effect.Effect<A2, E, R>
  ) => Effect.Effect<A, Failures<L, E> | EF | Idempotency.RunError, R | IdempotencyStore>
  <L extends Layers>(
    pipeline: Pipeline<L>,
    options?: RunOptions
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, Failures<L, E>, R>
  <A2 extends A, E, R, L extends Layers, A, AI, EF = never, EFI = never>(
    self: Effect.Effect<A2, E, R>,
    pipeline: Pipeline<L>,
    options: IdempotentRunOptions<A, AI, EF, EFI>
  ): Effect.Effect<A, Failures<L, E> | EF | Idempotency.RunError, R | IdempotencyStore>
  <A, E, R, L extends Layers>(
    self: Effect.Effect<A, E, R>,
    pipeline: Pipeline<L>,
    options?: RunOptions
  ): Effect.Effect<A, Failures<L, E>, R>
} = internal.run

// -----------------------------------------------------------------------------
// Layers
// -----------------------------------------------------------------------------

/**
 * A layer providing a pipeline under your own tag, from a configuration in
 * code or from an effect that reads one ({@link config}, {@link fromFile}).
 * Invalid configuration fails the layer, so the program never starts with it.
 *
 * @example
 * ```ts
 * import { Context, Effect, Layer } from "effect"
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * class Payments extends Context.Tag("app/Payments")<Payments, Pipeline.Pipeline>() {}
 *
 * const PaymentsLive = Pipeline.layer(Payments, Pipeline.fromFile("config/payments.yaml")).pipe(
 *   Layer.provide(NodeFileSystem.layer)
 * )
 *
 * const charge = (call: Effect.Effect<string>) => Effect.flatMap(Payments, (payments) => Pipeline.run(call, payments))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: {
  <Id, E = never, R = never>(
    tag: Context.Tag<Id, Pipeline>,
    config: Input | Effect.Effect<Input, E, R>
  ): Layer.Layer<Id, InvalidPipelineConfigError | E, R>
} = internal.layer

/**
 * A layer providing a pipeline under your own tag, configured from effect's
 * `Config` (the environment) as {@link config} reads it.
 *
 * @example
 * ```ts
 * import { Context } from "effect"
 * import { Pipeline } from "@bulwark/resilience"
 *
 * class Payments extends Context.Tag("app/Payments")<Payments, Pipeline.Pipeline>() {}
 *
 * // PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD=5 PAYMENTS_RETRY_MAX_ATTEMPTS=4 PAYMENTS_TIMEOUT_LIMIT="2 seconds"
 * const PaymentsLive = Pipeline.layerConfig(Payments, "payments")
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: <Id>(
  tag: Context.Tag<Id, Pipeline>,
  name?: string
) => Layer.Layer<Id, InvalidPipelineConfigError | ConfigError.ConfigError> = internal.layerConfig
