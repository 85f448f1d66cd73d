/**
 * Rate limiters that reject with a typed, transient error or wait their turn.
 *
 * A limiter has a **name** (the `limiter` metric label), an **algorithm** and
 * a **store**. Every call names a **key** (global, per user, per IP, per API
 * key, per endpoint: whatever string the caller picks) and a **cost**. Each
 * decision reports the limit, the units remaining, when the quota is whole
 * again and, when refused, when to retry, which is all the HTTP layer needs
 * for `RateLimit` / `Retry-After` headers (see `RateLimiterHttp`).
 *
 * | algorithm | state per key | behaviour |
 * |---|---|---|
 * | {@link tokenBucket} | 2 numbers | refills `limit` per `window`, holds up to `burst` |
 * | {@link fixedWindow} | 2 numbers | `limit` per aligned window; up to 2× `limit` across a boundary |
 * | {@link slidingWindowLog} | one entry per admission | exactly `limit` in any window |
 * | {@link slidingWindowCounter} | 5 numbers | weighted previous + current window, O(1), approximate |
 * | {@link leakyBucket} | 2 numbers | a shaper: calls leave at a constant rate, queue bounded by `capacity` |
 * | {@link gcra} | 2 numbers | virtual scheduling; same limits as a token bucket, one timestamp |
 *
 * Two modes: `onExceeded: "reject"` (the default) fails at once with
 * {@link RateLimitedError}; `"wait"` reserves the next free slot and sleeps
 * until then, when that is at most `maxWait` away, and rejects otherwise.
 * {@link admit} always waits (backpressure for a job queue's enqueue). A
 * waiter interrupted before its slot (a timeout, a client gone), including
 * while the store is still deciding, gives the slot back to the next caller,
 * atomically and once, wherever that cannot
 * let more through than the limit: always for the sliding log and counter,
 * when no later waiter queued behind it for the token bucket, GCRA and the
 * leaky bucket, and when it is in the last window holding reservations for
 * the fixed window. Otherwise the slot stays taken (the limiter admits less,
 * never more).
 *
 * ```text
 * consume(key, cost) ──▶ store decides (atomic) ──▶ allowed ──────────────▶ Decision
 *                                               ├─▶ delayed ─▶ sleep ──▶ Decision   (wait mode, ≤ maxWait)
 *                                               └─▶ rejected ─────────▶ RateLimitedError { retryAfter, … }
 * ```
 *
 * Stores: {@link layerMemory} (one process; idle keys are evicted and the
 * number of keys is bounded) and `RedisRateLimiter.layer` (shared by every
 * process; atomic Lua scripts on Redis server time).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../Failure.js"
import type * as Algorithms from "./internal/algorithms.js"
import * as config from "./internal/config.js"
import { RateLimitedError } from "./internal/errors.js"
import * as internal from "./internal/limiter.js"
import * as memoryStore from "./internal/memoryStore.js"
import { RateLimiterStore } from "./internal/store.js"

// -----------------------------------------------------------------------------
// Algorithms
// -----------------------------------------------------------------------------

/**
 * An algorithm with its parameters, as data: validated by {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export type Algorithm =
  | Algorithm.TokenBucket
  | Algorithm.FixedWindow
  | Algorithm.SlidingWindowLog
  | Algorithm.SlidingWindowCounter
  | Algorithm.LeakyBucket
  | Algorithm.Gcra

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Algorithm {
  /**
   * Refill rate `limit` per `window`, capacity `burst` (default `limit`).
   *
   * @since 0.1.0
   * @category Models
   */
  export interface TokenBucket {
    readonly _tag: "TokenBucket"
    /** Units refilled per window: a whole number from 1 to 10^9. */
    readonly limit: number
    /** A whole number of milliseconds, at least 1 ms. */
    readonly window: Duration.DurationInput
    /** The bucket's capacity, the largest burst: a whole number from 1 to 10^9. Default: `limit`. */
    readonly burst?: number
  }
  /**
   * `limit` per window, the windows aligned on multiples of `window`.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface FixedWindow {
    readonly _tag: "FixedWindow"
    readonly limit: number
    readonly window: Duration.DurationInput
  }
  /**
   * Exactly `limit` in any window ending at any instant; keeps one entry per
   * admission (per unit on Redis), so `limit` is at most 100,000.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface SlidingWindowLog {
    readonly _tag: "SlidingWindowLog"
    readonly limit: number
    readonly window: Duration.DurationInput
  }
  /**
   * The previous window's count weighted by how much of it still overlaps the
   * sliding window, plus the current window's count: O(1) per key, and never
   * more than `limit` per aligned window.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface SlidingWindowCounter {
    readonly _tag: "SlidingWindowCounter"
    readonly limit: number
    readonly window: Duration.DurationInput
  }
  /**
   * A shaper: calls leave at `limit` per `window`, evenly spaced, after the
   * ones queued before them; at most `capacity` units (default `limit`) wait.
   * Meant for wait mode; in reject mode only a call finding the bucket empty
   * passes (strict spacing, no burst).
   *
   * @since 0.1.0
   * @category Models
   */
  export interface LeakyBucket {
    readonly _tag: "LeakyBucket"
    readonly limit: number
    readonly window: Duration.DurationInput
    readonly capacity?: number
  }
  /**
   * The generic cell rate algorithm: emission interval `window / limit`,
   * bursts of up to `burst` (default `limit`), one timestamp per key.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Gcra {
    readonly _tag: "Gcra"
    readonly limit: number
    readonly window: Duration.DurationInput
    readonly burst?: number
  }
}

/**
 * @example
 * ```ts
 * import { RateLimiter } from "@bulwark/resilience"
 *
 * // 10 per second on average, bursts of up to 50.
 * const algorithm = RateLimiter.tokenBucket({ limit: 10, window: "1 second", burst: 50 })
 * ```
 *
 * @since 0.1.0
 * @category Algorithms
 */
export const tokenBucket: (options: Omit<Algorithm.TokenBucket, "_tag">) => Algorithm = config.tokenBucket

/**
 * @since 0.1.0
 * @category Algorithms
 */
export const fixedWindow: (options: Omit<Algorithm.FixedWindow, "_tag">) => Algorithm = config.fixedWindow

/**
 * @since 0.1.0
 * @category Algorithms
 */
export const slidingWindowLog: (options: Omit<Algorithm.SlidingWindowLog, "_tag">) => Algorithm =
  config.slidingWindowLog

/**
 * @since 0.1.0
 * @category Algorithms
 */
export const slidingWindowCounter: (options: Omit<Algorithm.SlidingWindowCounter, "_tag">) => Algorithm =
  config.slidingWindowCounter

/**
 * @since 0.1.0
 * @category Algorithms
 */
export const leakyBucket: (options: Omit<Algorithm.LeakyBucket, "_tag">) => Algorithm = config.leakyBucket

/**
 * @since 0.1.0
 * @category Algorithms
 */
export const gcra: (options: Omit<Algorithm.Gcra, "_tag">) => Algorithm = config.gcra

// -----------------------------------------------------------------------------
// Decisions and errors
// -----------------------------------------------------------------------------

/**
 * The advertised policy, the IETF `RateLimit-Policy` item: `quota` units per
 * `window` sustained (`q` and `w`), which is the algorithm's `limit` and
 * `window` whatever the algorithm, and `burst`, the most units free at once
 * (the scale of a decision's `limit` and `remaining`, and the largest cost).
 *
 * For the windowed algorithms `burst` is `quota`. A token bucket or GCRA of
 * 10 per minute with burst 2 is `quota: 10, window: 1 minute, burst: 2`: its
 * decisions count `remaining` out of 2 (what may go now) and `reset` until
 * all 2 are back (12 s); a leaky bucket's `burst` is its capacity.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policy {
  /** Units per window, sustained: the algorithm's `limit`. */
  readonly quota: number
  /** The algorithm's `window`. */
  readonly window: Duration.Duration
  /** The most units free at once: `burst` (token bucket, GCRA), `capacity` (leaky bucket), else `quota`. */
  readonly burst: number
}

/**
 * What a limiter decided for one call.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Decision {
  readonly limiter: string
  /** `allowed` at once, `delayed` (waited `delay`, wait mode), or `rejected` (only from {@link tryConsume}). */
  readonly outcome: "allowed" | "delayed" | "rejected"
  /** The most units free at once: the policy's `burst` (the algorithm's `limit`, or its burst / capacity). */
  readonly limit: number
  /**
   * Units left after this call, out of `limit`: what could go now in reject
   * mode (a leaky bucket passes nothing until it is empty, so 0 there), what
   * could still queue in wait mode.
   */
  readonly remaining: number
  /** Until all `limit` units are free again. */
  readonly reset: Duration.Duration
  /** When rejected: until this call would pass at once, other traffic aside; zero otherwise. */
  readonly retryAfter: Duration.Duration
  /** How long the call waited for its slot. */
  readonly delay: Duration.Duration
  /**
   * `true` when the store was unreachable and its failure policy decided
   * (fail-open or fail-closed): `remaining` and `reset` are then made up, and
   * the HTTP layer does not advertise them.
   */
  readonly degraded: boolean
  readonly policy: Policy
}

/**
 * Why a call was refused: the limit was reached (or, in wait mode, the free
 * slot is further than `maxWait`), or the store was unreachable and its
 * failure policy is fail-closed.
 *
 * @since 0.1.0
 * @category Models
 */
export type RejectionReason = "LimitExceeded" | "StoreUnavailable"

// Declared in `internal/errors.ts`, a leaf the internals import.
export { RateLimitedError }

/**
 * @since 0.1.0
 * @category Guards
 */
export const isRateLimitedError: (u: unknown) => u is RateLimitedError = internal.isRateLimitedError

// -----------------------------------------------------------------------------
// Stores
// -----------------------------------------------------------------------------

/**
 * Where limiters keep their state and decide atomically. Provided by
 * {@link layerMemory} or `RedisRateLimiter.layer`; the state formats are
 * internal, so other implementations are not supported.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Store {
  readonly backend: string
  /** Binds a validated limiter; the result decides for one key. */
  readonly bind: (limiter: config.Config) => Effect.Effect<Binding>
}

/**
 * A limiter bound to a store. Neither function fails: an unreachable store
 * decides with its failure policy (`degraded: true`), and a refund it cannot
 * make leaves the slot taken.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Binding {
  /** Decides for one key: `(key, cost, maxDelayMillis)`, atomically. */
  readonly decide: (key: string, cost: number, maxDelay: number) => Effect.Effect<StoreDecision>
  /**
   * Gives back a delayed decision's slot that its caller will not use (it
   * was interrupted while waiting), atomically and where the algorithm
   * allows it (see the README's per-algorithm table); `true` when something
   * was given back. Call it at most once per decision.
   */
  readonly refund: (key: string, cost: number, reservation: Reservation) => Effect.Effect<boolean>
}

/**
 * What a delayed decision reserved, as the store's state recorded it; only
 * meaningful to the store's refund.
 *
 * @since 0.1.0
 * @category Models
 */
export type Reservation = Algorithms.Reservation

/**
 * A store's raw answer, in milliseconds; `degraded` is set when the store's
 * failure policy decided instead of the store.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StoreDecision extends Algorithms.Decision {
  readonly degraded?: true
}

// Declared in `internal/store.ts`, a leaf the stores import.
export { RateLimiterStore }

/**
 * @since 0.1.0
 * @category Models
 */
export interface MemoryOptions {
  /**
   * Keys kept per limiter. Keys idle past their time-to-live are swept as
   * calls come in; when a new key finds the table full, the least recently
   * used key is evicted even if not idle (its limit starts afresh, as
   * nginx's `limit_req` does). A whole number from 1 to 10^8. Default 100,000.
   */
  readonly maxKeys?: number
}

/**
 * An in-memory store for one process. Each decision is one synchronous
 * read-modify-write on a `Map`, so it is atomic on the JS thread (as an STM
 * commit is), with no journal to allocate.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "api",
 *     algorithm: RateLimiter.slidingWindowCounter({ limit: 100, window: "1 minute" })
 *   })
 *   return yield* limiter.consume("user-42")
 * }).pipe(Effect.provide(RateLimiter.layerMemory()))
 * ```
 *
 * @since 0.1.0
 * @category Stores
 */
export const layerMemory: (options?: MemoryOptions) => Layer.Layer<RateLimiterStore, InvalidOptionsError> =
  memoryStore.layer

// -----------------------------------------------------------------------------
// Limiter
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
 * A limiter bound to a store. Build it with {@link make}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RateLimiter {
  readonly [TypeId]: TypeId
  /** The `limiter` label in metrics, and the name in errors and headers. */
  readonly name: string
  readonly algorithm: Algorithm
  readonly policy: Policy
  readonly onExceeded: "reject" | "wait"
  readonly maxWait: Duration.Duration
  /** Takes `cost` (default 1) units for `key`, waiting in wait mode; see {@link consume}. */
  readonly consume: (key: string, cost?: number) => Effect.Effect<Decision, RateLimitedError | InvalidOptionsError>
  /** Takes the units if they are free now; never waits and never fails on the limit. */
  readonly tryConsume: (key: string, cost?: number) => Effect.Effect<Decision, InvalidOptionsError>
  /** Waits up to `maxWait` (default: the limiter's) for the units; see {@link admit}. */
  readonly admit: (
    key: string,
    cost?: number,
    maxWait?: Duration.DurationInput
  ) => Effect.Effect<Decision, RateLimitedError | InvalidOptionsError>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace RateLimiter {
  /**
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** The `limiter` metric label and the name in errors: 1–128 characters of `A-Z a-z 0-9 _ . : / -`. */
    readonly name: string
    readonly algorithm: Algorithm
    /** `"reject"` fails at once; `"wait"` waits for a slot up to `maxWait`, then fails. Default `"reject"`. */
    readonly onExceeded?: "reject" | "wait"
    /** The longest wait in wait mode and for {@link admit}: whole milliseconds, up to 1 hour. Default 5 seconds. */
    readonly maxWait?: Duration.DurationInput
    /** Longer keys are refused with `InvalidOptionsError`; a whole number from 1 to 4,096. Default 256. */
    readonly maxKeyLength?: number
  }
}

/**
 * Builds a limiter on the {@link RateLimiterStore} in context. Invalid
 * options (zero, negative, fractional or NaN limits, windows below 1 ms,
 * quotas too large to compute exactly, a bad name) fail with
 * `InvalidOptionsError` naming the option.
 *
 * Limiters with the same name and algorithm share state in a store (across
 * processes, on Redis); changing the algorithm's parameters starts afresh.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "search",
 *     algorithm: RateLimiter.tokenBucket({ limit: 5, window: "1 second", burst: 10 }),
 *     onExceeded: "wait",
 *     maxWait: "2 seconds"
 *   })
 *   const decision = yield* limiter.consume("tenant-7", 2)
 *   return decision.remaining
 * }).pipe(Effect.provide(RateLimiter.layerMemory()))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  options: RateLimiter.Options
) => Effect.Effect<RateLimiter, InvalidOptionsError, RateLimiterStore> = internal.make

/**
 * Takes `cost` units (default 1) for `key`. In reject mode it fails at once
 * with {@link RateLimitedError} when they are not free; in wait mode it
 * reserves the next slot and sleeps until then when that is at most `maxWait`
 * away. An empty or too long key, or a cost that is not a whole number from 1
 * to the burst, fails with `InvalidOptionsError`. Counted in
 * `bulwark_rate_limiter_decisions_total{limiter, decision}`.
 *
 * **Interruption.** A call interrupted before its decision starts takes
 * nothing. A decision that has started counts, as any call the store has
 * seen does, even when its caller is interrupted before the answer:
 *
 * - in reject mode (and {@link tryConsume}) the interruption is immediate;
 *   units the store admitted stay taken. In memory the decision is one
 *   synchronous step; on Redis the script already sent still runs.
 * - in wait mode (and {@link admit}) the decision itself is not interruptible
 *   (on Redis it waits for the reply, at most the command timeout), so an
 *   interruption while it is in flight or while the caller sleeps towards
 *   its slot always sees the reservation and gives the slot back, where the
 *   algorithm allows (see the module documentation); units admitted at once
 *   stay taken.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const consume: {
  (key: string, cost?: number): (self: RateLimiter) => Effect.Effect<Decision, RateLimitedError | InvalidOptionsError>
  (self: RateLimiter, key: string, cost?: number): Effect.Effect<Decision, RateLimitedError | InvalidOptionsError>
} = internal.consume

/**
 * Takes the units if they are free now and reports the decision either way
 * (`outcome: "rejected"` instead of an error). Never waits.
 *
 * @since 0.1.0
 * @category Combinators
 */
export const tryConsume: {
  (key: string, cost?: number): (self: RateLimiter) => Effect.Effect<Decision, InvalidOptionsError>
  (self: RateLimiter, key: string, cost?: number): Effect.Effect<Decision, InvalidOptionsError>
} = internal.tryConsume

/**
 * Admission control for producers, e.g. a job queue's enqueue: waits for the
 * units up to `maxWait` (default: the limiter's `maxWait`) whatever the
 * limiter's mode, then fails with {@link RateLimitedError}, which the producer
 * turns into backpressure. Interrupted while it waits, or while the store
 * decides, it gives its slot back as {@link consume} does in wait mode.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 *
 * declare const limiter: RateLimiter.RateLimiter
 * declare const enqueue: (job: string) => Effect.Effect<void>
 *
 * const submit = (tenant: string, job: string) =>
 *   RateLimiter.admit(limiter, tenant, 1).pipe(Effect.zipRight(enqueue(job)))
 * // fails with RateLimitedError when the tenant's slot is more than maxWait away
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const admit: (
  self: RateLimiter,
  key: string,
  cost?: number,
  maxWait?: Duration.DurationInput
) => Effect.Effect<Decision, RateLimitedError | InvalidOptionsError> = internal.admit

/**
 * Runs `self` after taking its units from the limiter (key default
 * `"global"`, cost default 1).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 *
 * declare const limiter: RateLimiter.RateLimiter
 * declare const search: (q: string) => Effect.Effect<ReadonlyArray<string>>
 *
 * const limited = (user: string, q: string) => search(q).pipe(RateLimiter.limit(limiter, { key: user }))
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const limit: {
  (
    limiter: RateLimiter,
    options?: { readonly key?: string; readonly cost?: number }
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | RateLimitedError | InvalidOptionsError, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    limiter: RateLimiter,
    options?: { readonly key?: string; readonly cost?: number }
  ): Effect.Effect<A, E | RateLimitedError | InvalidOptionsError, R>
} = internal.limit
