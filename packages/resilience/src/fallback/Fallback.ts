/**
 * Fallback chains: when a dependency is down, answer from the next source and
 * say so in the type.
 *
 * ```text
 * primary ──falls through──▶ cache (last known good, stale) ──▶ secondary ──▶ default
 * ```
 *
 * - **The answer says who answered.** {@link chain} succeeds with an
 *   {@link Answer}: `Primary`, `Cached` (`stale: true`, when it was stored,
 *   its age), `Secondary` or `Default`; every degraded answer carries the
 *   typed `cause` that made the chain fall through, so callers can log it,
 *   show a banner, or set a header.
 * - **Only outages fall through.** By default a failure falls through when
 *   the failure model says the dependency is down ({@link isDependencyDown}):
 *   transient failures (timeouts, 5xx, 429, dropped connections, an open
 *   breaker, a full bulkhead, a rate limit), `RetriesExhausted`, and errors
 *   the current `Failure` classifier calls transient. Terminal failures (a
 *   validation error, a 404) propagate: a default must not hide a bug. Pass
 *   `when` to decide yourself. Defects and interruption never fall back.
 * - **Last known good.** With `cache`, every primary success is written to
 *   the cache, and an outage is answered with the stored value if it is no
 *   older than `maxAge`. {@link memoryCache} is a bounded in-memory store;
 *   any store with `get` and `set` works (Redis, a table); a store that fails
 *   is logged and treated as a miss, never as the answer's failure.
 * - **Critical and optional dependencies.** {@link optional} always answers
 *   (its error channel is `never`), degrading to stale or default values;
 *   {@link critical} fails with a {@link DependencyUnavailableError} naming the
 *   dependency once its chain is exhausted; {@link all} runs a page's
 *   dependencies concurrently, where a critical failure fails the page and
 *   optional ones degrade.
 * - **Observable.** Every answer counts in
 *   `bulwark_fallback_total{operation, source}`; degraded answers are logged
 *   at debug level with the cause's tag; with `Tracing.layer` each call is a
 *   `bulwark.fallback <operation>` span with `bulwark.fallback.source`.
 *
 * In a stack of defences the fallback is the outermost layer, around the
 * retries, breaker, bulkhead and timeouts of the primary: it answers only
 * once they have given up.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Fallback } from "@bulwark/resilience"
 *
 * declare const fetchRates: Effect.Effect<Record<string, number>, Failure.TransientError | Failure.TerminalError>
 * declare const ratesFromMirror: Effect.Effect<Record<string, number>, Failure.TransientError>
 *
 * const program = Effect.gen(function*() {
 *   const lastGood = yield* Fallback.memoryCache<Record<string, number>>({ capacity: 10 })
 *   const answer = yield* fetchRates.pipe(
 *     Fallback.chain({
 *       operation: "exchange-rates",
 *       cache: { store: lastGood, maxAge: "1 hour" },
 *       secondary: ratesFromMirror,
 *       default: { EUR: 1 }
 *     })
 *   )
 *   if (Fallback.isStale(answer)) yield* Effect.logWarning(`rates from ${answer.age} ago`)
 *   return Fallback.value(answer)
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Failure from "../Failure.js"
import * as answer from "./internal/answer.js"
import { DependencyUnavailableError } from "./internal/errors.js"
import * as internal from "./internal/fallback.js"
import * as memory from "./internal/memoryCache.js"

// -----------------------------------------------------------------------------
// Answers
// -----------------------------------------------------------------------------

/**
 * Which source answered: also the `source` label of `bulwark_fallback_total`.
 *
 * @since 0.1.0
 * @category Models
 */
export type Source = "primary" | "cache" | "secondary" | "default"

/**
 * The primary answered: the value is fresh.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Primary<out A> {
  readonly _tag: "Primary"
  readonly source: "primary"
  readonly value: A
  readonly stale: false
}

/**
 * The primary was down; the cache answered with a value the primary gave
 * earlier, stored at `storedAt`, `age` old when served (never more than the
 * chain's `maxAge`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Cached<out A, out E> {
  readonly _tag: "Cached"
  readonly source: "cache"
  readonly value: A
  readonly stale: true
  readonly storedAt: DateTime.Utc
  readonly age: Duration.Duration
  /** The primary's failure. */
  readonly cause: E
}

/**
 * The primary was down and the cache had nothing fresh enough; the secondary
 * source answered.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Secondary<out A, out E> {
  readonly _tag: "Secondary"
  readonly source: "secondary"
  readonly value: A
  readonly stale: false
  /** The primary's failure. */
  readonly cause: E
}

/**
 * Every other source was down or empty; the safe default answered.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Default<out A, out E> {
  readonly _tag: "Default"
  readonly source: "default"
  readonly value: A
  readonly stale: false
  /** The last failure before the default: the secondary's if it was tried, else the primary's. */
  readonly cause: E
}

/**
 * What a fallback chain answered, and which source it came from. `E` is the
 * type of the failures that made it fall through.
 *
 * @example
 * ```ts
 * import { Fallback } from "@bulwark/resilience"
 *
 * const describe = (answer: Fallback.Answer<ReadonlyArray<string>, Error>): string => {
 *   switch (answer._tag) {
 *     case "Primary":
 *       return `${answer.value.length} fresh items`
 *     case "Cached":
 *       return `stale items from ${answer.age} ago (${answer.cause.message})`
 *     case "Secondary":
 *     case "Default":
 *       return `${answer.source} items`
 *   }
 * }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export type Answer<A, E = never> = Primary<A> | Cached<A, E> | Secondary<A, E> | Default<A, E>

/**
 * @since 0.1.0
 * @category Constructors
 */
export const primary: <A>(value: A) => Primary<A> = answer.primary

/**
 * @since 0.1.0
 * @category Constructors
 */
export const cached: <A, E>(
  fields: { readonly value: A; readonly storedAt: DateTime.Utc; readonly age: Duration.Duration; readonly cause: E }
) => Cached<A, E> = answer.cached

/**
 * @since 0.1.0
 * @category Constructors
 */
export const secondary: <A, E>(fields: { readonly value: A; readonly cause: E }) => Secondary<A, E> = answer.secondary

/**
 * Builds a `Default` answer (named `defaulted` because `default` is a reserved word).
 *
 * @since 0.1.0
 * @category Constructors
 */
export const defaulted: <A, E>(fields: { readonly value: A; readonly cause: E }) => Default<A, E> = answer.defaulted

/**
 * The answer's value, whichever source gave it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Fallback } from "@bulwark/resilience"
 *
 * declare const answer: Effect.Effect<Fallback.Answer<number, Error>>
 * const value = Effect.map(answer, Fallback.value) // Effect<number>
 * ```
 *
 * @since 0.1.0
 * @category Getters
 */
export const value: <A, E>(self: Answer<A, E>) => A = answer.value

/**
 * Which source answered (`"primary"`, `"cache"`, `"secondary"` or `"default"`).
 *
 * @since 0.1.0
 * @category Getters
 */
export const source: <A, E>(self: Answer<A, E>) => Source = answer.source

/**
 * The failure that made the chain fall through, `None` for a primary answer.
 *
 * @since 0.1.0
 * @category Getters
 */
export const cause: <A, E>(self: Answer<A, E>) => Option.Option<E> = answer.cause

/**
 * @since 0.1.0
 * @category Guards
 */
export const isPrimary: <A, E>(self: Answer<A, E>) => self is Primary<A> = answer.isPrimary

/**
 * Whether the cache answered: the value is an older answer of the primary.
 *
 * @since 0.1.0
 * @category Guards
 */
export const isStale: <A, E>(self: Answer<A, E>) => self is Cached<A, E> = answer.isStale

/**
 * @since 0.1.0
 * @category Guards
 */
export const isSecondary: <A, E>(self: Answer<A, E>) => self is Secondary<A, E> = answer.isSecondary

/**
 * @since 0.1.0
 * @category Guards
 */
export const isDefault: <A, E>(self: Answer<A, E>) => self is Default<A, E> = answer.isDefault

/**
 * Whether anything but the primary answered.
 *
 * @since 0.1.0
 * @category Guards
 */
export const isDegraded: <A, E>(self: Answer<A, E>) => self is Cached<A, E> | Secondary<A, E> | Default<A, E> =
  answer.isDegraded

/**
 * Folds an answer by its source.
 *
 * @example
 * ```ts
 * import { Fallback } from "@bulwark/resilience"
 *
 * const banner = Fallback.match(Fallback.primary(42), {
 *   onPrimary: () => undefined,
 *   onCached: (cached) => `Showing data from ${cached.age} ago`,
 *   onSecondary: () => "Showing data from the mirror",
 *   onDefault: () => "Live data is unavailable"
 * })
 * ```
 *
 * @since 0.1.0
 * @category Pattern matching
 */
export const match: {
  <A, E, B, C = B, D = B, F = B>(cases: {
    readonly onPrimary: (answer: Primary<A>) => B
    readonly onCached: (answer: Cached<A, E>) => C
    readonly onSecondary: (answer: Secondary<A, E>) => D
    readonly onDefault: (answer: Default<A, E>) => F
  }): (self: Answer<A, E>) => B | C | D | F
  <A, E, B, C = B, D = B, F = B>(self: Answer<A, E>, cases: {
    readonly onPrimary: (answer: Primary<A>) => B
    readonly onCached: (answer: Cached<A, E>) => C
    readonly onSecondary: (answer: Secondary<A, E>) => D
    readonly onDefault: (answer: Default<A, E>) => F
  }): B | C | D | F
} = answer.match

// -----------------------------------------------------------------------------
// Cache
// -----------------------------------------------------------------------------

/**
 * A value a {@link Cache} holds, and when it was stored (epoch milliseconds of
 * Effect's `Clock`).
 *
 * @since 0.1.0
 * @category Cache
 */
export interface CacheEntry<out A> {
  readonly value: A
  readonly storedAt: number
}

/**
 * Where a chain keeps the primary's last good values, by key. Any store
 * works: a failing `get` is a miss and a failing `set` is skipped (both are
 * logged), so a cache outage never fails a call. `set` runs on every primary
 * success before the answer is returned: keep it fast.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { Fallback } from "@bulwark/resilience"
 *
 * declare const redisGet: (key: string) => Effect.Effect<string | null, Error>
 * declare const redisSet: (key: string, json: string) => Effect.Effect<void, Error>
 *
 * const Entry = Schema.parseJson(Schema.Struct({ value: Schema.Number, storedAt: Schema.Number }))
 *
 * const redisCache: Fallback.Cache<number> = {
 *   get: (key) =>
 *     Effect.flatMap(redisGet(key), (json) =>
 *       json === null ? Effect.succeedNone : Effect.asSome(Schema.decode(Entry)(json))),
 *   set: (key, entry) => Effect.flatMap(Schema.encode(Entry)(entry), (json) => redisSet(key, json))
 * }
 * ```
 *
 * @since 0.1.0
 * @category Cache
 */
export interface Cache<in out A> extends CacheWriter<A> {
  readonly get: (key: string) => Effect.Effect<Option.Option<CacheEntry<A>>, unknown>
}

/**
 * The writing half of a {@link Cache}.
 *
 * @since 0.1.0
 * @category Cache
 */
export interface CacheWriter<in A> {
  readonly set: (key: string, entry: CacheEntry<A>) => Effect.Effect<void, unknown>
}

/**
 * Options of {@link memoryCache}.
 *
 * @since 0.1.0
 * @category Cache
 */
export interface MemoryCacheOptions {
  /** The most keys kept: an integer ≥ 1. The least recently used key is dropped first. Default 1,000. */
  readonly capacity?: number
}

/**
 * A bounded in-memory last-known-good cache: at most `capacity` keys, least
 * recently used dropped first. Per process: every process keeps its own.
 * Invalid options fail with `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Fallback } from "@bulwark/resilience"
 *
 * const lastGood = Fallback.memoryCache<ReadonlyArray<string>>({ capacity: 10_000 })
 * // Effect<Fallback.Cache<ReadonlyArray<string>>, InvalidOptionsError>
 * ```
 *
 * @since 0.1.0
 * @category Cache
 */
export const memoryCache: <A>(options?: MemoryCacheOptions) => Effect.Effect<Cache<A>, Failure.InvalidOptionsError> =
  memory.make

/**
 * Like {@link memoryCache}, for module-level constants: throws the `InvalidOptionsError`.
 *
 * @since 0.1.0
 * @category Cache
 */
export const unsafeMemoryCache: <A>(options?: MemoryCacheOptions) => Cache<A> = memory.unsafeMake

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/**
 * How a chain uses a cache. The store holds values of type `A`; the
 * primary's values (`In`) must fit in it (a `Cache<ReadonlyArray<Item>>`
 * takes the `Array<Item>` a primary answers).
 *
 * @since 0.1.0
 * @category Models
 */
export interface CacheOptions<A, In = A> {
  /** The store; written on every primary success, read when the primary is down. */
  readonly store: Cache<A> & CacheWriter<In>
  /** The key of this call's value, e.g. a product id. Default: the operation's name (one value per chain). */
  readonly key?: string | undefined
  /**
   * How old a stored value may be and still be served: a non-negative
   * duration, or `Duration.infinity`. Older values are not served. Required:
   * how stale is acceptable is a product decision, not a library's.
   */
  readonly maxAge: Duration.DurationInput
}

/**
 * Options of {@link chain}. Invalid options (a bad operation name, a negative
 * `maxAge`) are a bug in the calling code: the chain dies with
 * `InvalidOptionsError`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options<A, E, A2 = never, E2 = never, R2 = never, A3 = never, R3 = never, C = never> {
  /**
   * Names the call in `bulwark_fallback_total{operation}`, logs and spans:
   * 1 to 128 characters of `A-Z a-z 0-9 _ . : / -`, chosen in code.
   */
  readonly operation: string
  /**
   * Which failures fall through to the next source. Default
   * {@link isDependencyDown} with the current `Failure` classifier. Defects
   * and interruption never fall through.
   */
  readonly when?: ((error: E | E2) => boolean) | undefined
  /** The last-known-good cache, tried first. */
  readonly cache?: CacheOptions<C, A> | undefined
  /** Another source of the same data (a mirror, a replica), tried after the cache. */
  readonly secondary?: Effect.Effect<A2, E2, R2> | undefined
  /**
   * The safe default, tried last: a value, or an effect that cannot fail
   * (run only when needed). Without one, an exhausted chain fails with the
   * last failure. Present means present: `default: undefined` answers
   * `undefined`.
   */
  readonly default?: A3 | Effect.Effect<A3, never, R3>
}

/**
 * Options of {@link optional}: those of {@link chain} with a required
 * `default` and no `when` (every failure falls through).
 *
 * @since 0.1.0
 * @category Models
 */
export interface OptionalOptions<A, A2 = never, E2 = never, R2 = never, A3 = never, R3 = never, C = never> {
  /** See {@link Options.operation}. */
  readonly operation: string
  /** See {@link Options.cache}. */
  readonly cache?: CacheOptions<C, A> | undefined
  /** See {@link Options.secondary}. */
  readonly secondary?: Effect.Effect<A2, E2, R2> | undefined
  /** The value to show when every other source is down. */
  readonly default: A3 | Effect.Effect<A3, never, R3>
}

/**
 * Options of {@link critical}: those of {@link chain} without a `default`.
 * The operation names the dependency in {@link DependencyUnavailableError}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface CriticalOptions<A, E, A2 = never, E2 = never, R2 = never, C = never> {
  /** See {@link Options.operation}; also the `dependency` of {@link DependencyUnavailableError}. */
  readonly operation: string
  /** See {@link Options.when}. */
  readonly when?: ((error: E | E2) => boolean) | undefined
  /** See {@link Options.cache}. */
  readonly cache?: CacheOptions<C, A> | undefined
  /** See {@link Options.secondary}. */
  readonly secondary?: Effect.Effect<A2, E2, R2> | undefined
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { DependencyUnavailableError }

/**
 * @since 0.1.0
 * @category Guards
 */
export const isDependencyUnavailableError = (u: unknown): u is DependencyUnavailableError<unknown> =>
  u instanceof DependencyUnavailableError

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Whether a failure looks like its dependency being down, the default `when`:
 * a transient failure (timeouts, 5xx, 429, dropped connections, an open
 * breaker, a full bulkhead, a rate limit), `RetriesExhausted`, a
 * {@link DependencyUnavailableError}, or an error `classifier` calls
 * transient (by its tag or code). Terminal and unknown failures are not.
 *
 * @example
 * ```ts
 * import { Failure, Fallback } from "@bulwark/resilience"
 *
 * Fallback.isDependencyDown(new Failure.TransientError({ reason: "Transport", message: "ECONNRESET" })) // true
 * Fallback.isDependencyDown(new Failure.TerminalError({ reason: "HttpStatus", message: "404", status: 404 })) // false
 * ```
 *
 * @since 0.1.0
 * @category Predicates
 */
export const isDependencyDown: (error: unknown, classifier?: Failure.Classifier) => boolean = internal.isDependencyDown

/**
 * Runs `self`; when it fails in a way that falls through (see `when`), tries
 * the cache, then the secondary, then the default, and answers with the first
 * that gives a value, tagged with its source. Without a source that answers,
 * fails with the last failure. Failures that do not fall through, defects and
 * interruption propagate at once.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Fallback } from "@bulwark/resilience"
 *
 * declare const quote: Effect.Effect<number, Failure.TransientError | Failure.TerminalError>
 *
 * const pipeable = quote.pipe(Fallback.chain({ operation: "quote", default: 0 }))
 * // Effect<Fallback.Answer<number, TransientError | TerminalError>, TransientError | TerminalError>
 * const dataFirst = Fallback.chain(quote, { operation: "quote", default: Effect.succeed(0) })
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const chain: {
  <A, E, A2 = never, E2 = never, R2 = never, A3 = never, R3 = never, C = never>(
    options: Options<NoInfer<A>, NoInfer<E>, A2, E2, R2, A3, R3, C>
  ): <R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<
    Answer<A | NoInfer<A2 | A3 | C>, E | NoInfer<E2>>,
    E | NoInfer<E2>,
    R | NoInfer<R2 | R3>
  >
  <A, E, R, A2 = never, E2 = never, R2 = never, A3 = never, R3 = never, C = never>(
    self: Effect.Effect<A, E, R>,
    options: Options<NoInfer<A>, NoInfer<E>, A2, E2, R2, A3, R3, C>
  ): Effect.Effect<Answer<A | NoInfer<A2 | A3 | C>, E | NoInfer<E2>>, E | NoInfer<E2>, R | NoInfer<R2 | R3>>
} = internal.chain

/**
 * An optional dependency: it degrades, it never fails the caller. Every
 * failure falls through (not only outages: a malformed answer from a
 * recommendations service must not break the page) to the cache, the
 * secondary, and at last the required `default`. Defects and interruption
 * still propagate.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Fallback } from "@bulwark/resilience"
 *
 * declare const recommendations: Effect.Effect<ReadonlyArray<string>, Error>
 * declare const popular: Effect.Effect<ReadonlyArray<string>>
 *
 * const shown = recommendations.pipe(Fallback.optional({ operation: "recommendations", default: popular }))
 * // Effect<Fallback.Answer<ReadonlyArray<string>, Error>, never>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const optional: {
  <A, A2 = never, E2 = never, R2 = never, A3 = never, R3 = never, C = never>(
    options: OptionalOptions<NoInfer<A>, A2, E2, R2, A3, R3, C>
  ): <E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<Answer<A | NoInfer<A2 | A3 | C>, E | NoInfer<E2>>, never, R | NoInfer<R2 | R3>>
  <A, E, R, A2 = never, E2 = never, R2 = never, A3 = never, R3 = never, C = never>(
    self: Effect.Effect<A, E, R>,
    options: OptionalOptions<NoInfer<A>, A2, E2, R2, A3, R3, C>
  ): Effect.Effect<Answer<A | NoInfer<A2 | A3 | C>, E | NoInfer<E2>>, never, R | NoInfer<R2 | R3>>
} = internal.optional

/**
 * A critical dependency: its chain (cache, secondary) may answer, and when it
 * is exhausted the call fails with {@link DependencyUnavailableError} naming
 * the dependency. Failures that do not fall through (by default: terminal
 * ones, such as a validation error) propagate unchanged.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Fallback } from "@bulwark/resilience"
 *
 * declare const loadProduct: Effect.Effect<{ readonly name: string }, Failure.TransientError>
 *
 * const product = loadProduct.pipe(Fallback.critical({ operation: "product-db" }))
 * // Effect<Answer<…>, TransientError | DependencyUnavailableError<TransientError>>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const critical: {
  <A, E, A2 = never, E2 = never, R2 = never, C = never>(
    options: CriticalOptions<NoInfer<A>, NoInfer<E>, A2, E2, R2, C>
  ): <R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<
    Answer<A | NoInfer<A2 | C>, E | NoInfer<E2>>,
    E | NoInfer<E2> | DependencyUnavailableError<E | NoInfer<E2>>,
    R | NoInfer<R2>
  >
  <A, E, R, A2 = never, E2 = never, R2 = never, C = never>(
    self: Effect.Effect<A, E, R>,
    options: CriticalOptions<NoInfer<A>, NoInfer<E>, A2, E2, R2, C>
  ): Effect.Effect<
    Answer<A | NoInfer<A2 | C>, E | NoInfer<E2>>,
    E | NoInfer<E2> | DependencyUnavailableError<E | NoInfer<E2>>,
    R | NoInfer<R2>
  >
} = internal.critical

/**
 * The dependencies of one page or request, by name: each an effect answering
 * with an {@link Answer} (usually made by {@link critical} or {@link optional}).
 *
 * @since 0.1.0
 * @category Models
 */
export type Dependencies = Readonly<Record<string, Effect.Effect<Answer<unknown, unknown>, unknown, unknown>>>

/**
 * The answers of {@link all}, by name.
 *
 * @since 0.1.0
 * @category Models
 */
export type Answers<D extends Dependencies> = { -readonly [K in keyof D]: Effect.Effect.Success<D[K]> }

/**
 * Runs the dependencies of one page concurrently and answers with all their
 * answers. Optional dependencies degrade; the first critical failure fails
 * the whole and interrupts the others (nothing is left running).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Failure, Fallback } from "@bulwark/resilience"
 *
 * declare const loadProduct: Effect.Effect<{ readonly name: string }, Failure.TransientError>
 * declare const loadRecommendations: Effect.Effect<ReadonlyArray<string>, Error>
 *
 * const page = Fallback.all({
 *   product: Fallback.critical(loadProduct, { operation: "product-db" }),
 *   recommendations: Fallback.optional(loadRecommendations, { operation: "recommendations", default: [] })
 * })
 * // Effect<{ product: Answer<…>; recommendations: Answer<…> }, TransientError | DependencyUnavailableError<…>>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const all: <const D extends Dependencies>(
  dependencies: D
) => Effect.Effect<Answers<D>, Effect.Effect.Error<D[keyof D]>, Effect.Effect.Context<D[keyof D]>> = internal.all

/**
 * The names of the degraded answers of {@link all}, for a header or a banner.
 *
 * @example
 * ```ts
 * import { Fallback } from "@bulwark/resilience"
 *
 * Fallback.degraded({ product: Fallback.primary(1), recommendations: Fallback.defaulted({ value: [], cause: "down" }) })
 * // ["recommendations"]
 * ```
 *
 * @since 0.1.0
 * @category Getters
 */
export const degraded: (answers: Readonly<Record<string, Answer<unknown, unknown>>>) => ReadonlyArray<string> =
  answer.degraded
