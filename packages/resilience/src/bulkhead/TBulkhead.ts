/**
 * STM bulkheads: the bulkhead of {@link Bulkhead.make}, with its permits in a
 * `TSemaphore`, so that taking a permit, giving it back and reading the counts
 * are `STM` values you compose with your own transactional state, as effect
 * splits `Semaphore` and `TSemaphore`.
 *
 * A `TBulkhead` is a `Bulkhead`: the same options, limits, errors
 * (`BulkheadFullError` with reason `"QueueFull"` or `"MaxWait"`), metrics and
 * registry shape; `Bulkhead.protect` and every consumer of a bulkhead take it.
 * What it adds are the transactions: {@link acquire}, {@link tryAcquire},
 * {@link release} and {@link snapshot}. For example, taking a permit of two
 * bulkheads at once, or none:
 *
 * ```text
 * STM.commit(STM.zip(TBulkhead.tryAcquire(a), TBulkhead.tryAcquire(b)))   both permits, or neither
 * ```
 *
 * {@link protect} behaves as `Bulkhead.protect`, with one difference: the
 * queue is not FIFO. A queued call waits in a transaction that retries until
 * a permit is free; a freed permit is free (for a snapshot too: `queued > 0`
 * with `available > 0` for that instant) until a waiting transaction, or a
 * newcomer, takes it, whichever runs first. `maxQueued` and `maxWait` bound
 * the queue and the wait exactly as in the fast bulkhead. When you need no
 * transaction, choose {@link Bulkhead.make}: it is FIFO, and its steps are
 * synchronous instead of commits.
 *
 * Metrics (label `bulkhead`): `bulwark_bulkhead_active`,
 * `bulwark_bulkhead_queued`, `bulwark_bulkhead_rejected_total`, the series of
 * the fast bulkhead. `protect` moves them right after its own commits. A
 * permit taken or given back by your transaction ({@link acquire},
 * {@link tryAcquire}, {@link release}) cannot move a gauge inside the
 * transaction: it records the move, and a fiber running in the scope of
 * {@link make} applies it once the transaction has committed, so at rest
 * `bulwark_bulkhead_active` equals `maxConcurrent - available`. A
 * {@link tryAcquire} refusal is yours to handle, and is not counted.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type * as STM from "effect/STM"
import type * as Failure from "../Failure.js"
import type * as Bulkhead from "./Bulkhead.js"
import * as fromConfig from "./internal/config.js"
import { BulkheadFullError, BulkheadNotFoundError } from "./internal/errors.js"
import * as registry from "./internal/registry.js"
import * as internal from "./internal/tBulkhead.js"
import { Registry } from "./internal/tBulkhead.js"

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
 * An STM bulkhead: a `Bulkhead` whose permits live in a `TSemaphore`. Build
 * one with {@link make}, or by name through a {@link Registry}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TBulkhead extends Bulkhead.Bulkhead {
  readonly [TypeId]: TypeId
  /** The bulkhead's steps as transactions; the module's functions ({@link acquire}, …) return them. */
  readonly transactions: TBulkhead.Transactions
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace TBulkhead {
  /**
   * Options of {@link make}: those of `Bulkhead.make`, checked the same way.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Options = Bulkhead.Bulkhead.Options

  /**
   * The transactions of a bulkhead, built once with it.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Transactions {
    /** See {@link acquire}. */
    readonly acquire: STM.STM<void>
    /** See {@link tryAcquire}. */
    readonly tryAcquire: STM.STM<void, BulkheadFullError>
    /** See {@link release}. */
    readonly release: STM.STM<void>
    /** See {@link snapshot}. */
    readonly snapshot: STM.STM<Bulkhead.Snapshot>
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// The bulkhead's errors, the same classes as `Bulkhead`'s.
export { BulkheadFullError, BulkheadNotFoundError }

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * Builds an STM bulkhead. Fails with `InvalidOptionsError` naming the option
 * as `Bulkhead.make` does. Scoped: the fiber that moves the active gauge for
 * your own transactions runs until the scope closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * const program = Effect.scoped(
 *   Effect.gen(function*() {
 *     const bulkhead = yield* TBulkhead.make({ name: "payments", maxConcurrent: 8, maxQueued: 16, maxWait: "2 seconds" })
 *     return yield* callPayments.pipe(TBulkhead.protect(bulkhead))
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options: TBulkhead.Options) => Effect.Effect<TBulkhead, Failure.InvalidOptionsError, Scope.Scope> =
  internal.make

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Runs an effect under one of the bulkhead's permits, as `Bulkhead.protect`:
 * a free permit, else a place in the queue (up to `maxQueued`, for up to
 * `maxWait`), else a {@link BulkheadFullError}. One commit to enter and one to
 * leave. The permit comes back however the effect ends; an interrupted queued
 * call leaves the queue. The queue is not FIFO (see the module's notes).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const bulkhead: TBulkhead.TBulkhead
 * declare const callInventory: Effect.Effect<number, Error>
 *
 * const pipeable = callInventory.pipe(TBulkhead.protect(bulkhead))
 * const dataFirst = TBulkhead.protect(callInventory, bulkhead)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: {
  (bulkhead: TBulkhead): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, bulkhead: TBulkhead): Effect.Effect<A, E | BulkheadFullError, R>
} = internal.protect

/**
 * Runs an effect under the STM bulkhead of that name in the {@link Registry}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * const protectedCall = callPayments.pipe(TBulkhead.protectNamed("payments"))
 * const program = protectedCall.pipe(
 *   Effect.provide(TBulkhead.layer({ payments: { maxConcurrent: 8, maxQueued: 16 } }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protectNamed: {
  (name: string): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | BulkheadFullError | BulkheadNotFoundError, R | Registry>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    name: string
  ): Effect.Effect<A, E | BulkheadFullError | BulkheadNotFoundError, R | Registry>
} = registry.protectNamedWith(Registry)

// -----------------------------------------------------------------------------
// Transactions
// -----------------------------------------------------------------------------

/**
 * Takes a permit, waiting until one is free (the transaction retries). The
 * permit is yours to give back with {@link release}. It does not count as
 * queued, and ignores `maxQueued` and `maxWait`: bound the wait yourself (for
 * example with `Effect.timeout` around the commit).
 *
 * @example
 * ```ts
 * import { Effect, STM, TRef } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const bulkhead: TBulkhead.TBulkhead
 * declare const inFlight: TRef.TRef<number>
 *
 * // The permit and the bookkeeping, in one transaction.
 * const start = STM.commit(STM.zipRight(TBulkhead.acquire(bulkhead), TRef.update(inFlight, (n) => n + 1)))
 * const finish = STM.commit(STM.zipRight(TBulkhead.release(bulkhead), TRef.update(inFlight, (n) => n - 1)))
 * const call = (work: Effect.Effect<void>) => Effect.acquireUseRelease(start, () => work, () => finish)
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const acquire = (self: TBulkhead): STM.STM<void> => self.transactions.acquire

/**
 * Takes a free permit, or fails with a {@link BulkheadFullError} of reason
 * `"QueueFull"` when none is free; it never waits. Composed with other
 * transactions, it takes its permit only if the whole transaction commits.
 *
 * @example
 * ```ts
 * import { STM } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const payments: TBulkhead.TBulkhead
 * declare const ledger: TBulkhead.TBulkhead
 *
 * // A permit of each, or of neither.
 * const both = STM.commit(STM.zip(TBulkhead.tryAcquire(payments), TBulkhead.tryAcquire(ledger)))
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const tryAcquire = (self: TBulkhead): STM.STM<void, BulkheadFullError> => self.transactions.tryAcquire

/**
 * Gives one permit back, taken with {@link acquire} or {@link tryAcquire}.
 * Giving back a permit when every permit is free is a defect: the bulkhead
 * never holds more than `maxConcurrent` permits.
 *
 * @example
 * ```ts
 * import { Effect, STM } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const bulkhead: TBulkhead.TBulkhead
 * declare const work: Effect.Effect<void>
 *
 * const call = Effect.acquireUseRelease(
 *   STM.commit(TBulkhead.acquire(bulkhead)),
 *   () => work,
 *   () => STM.commit(TBulkhead.release(bulkhead))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const release = (self: TBulkhead): STM.STM<void> => self.transactions.release

/**
 * The bulkhead's counts and limits, read in the transaction: consistent with
 * everything else the transaction reads.
 *
 * @example
 * ```ts
 * import { STM } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const bulkhead: TBulkhead.TBulkhead
 *
 * const available = STM.commit(STM.map(TBulkhead.snapshot(bulkhead), (snapshot) => snapshot.available))
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const snapshot = (self: TBulkhead): STM.STM<Bulkhead.Snapshot> => self.transactions.snapshot

// -----------------------------------------------------------------------------
// Guards
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Guards
 */
export const isTBulkhead: (u: unknown) => u is TBulkhead = internal.isTBulkhead

// -----------------------------------------------------------------------------
// Registry
// -----------------------------------------------------------------------------
// Declared in `internal/tBulkhead.ts`, which provides it.
export { Registry }

/**
 * A {@link Registry} with one STM bulkhead per entry, named by its key, as
 * `Bulkhead.layer` builds fast ones; the bulkheads' fibers run in the layer's
 * scope. Fails with `InvalidOptionsError` (naming the bulkhead and the option)
 * when an entry is invalid.
 *
 * @example
 * ```ts
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * const Bulkheads = TBulkhead.layer({
 *   payments: { maxConcurrent: 8, maxQueued: 16, maxWait: "2 seconds" },
 *   inventory: { maxConcurrent: 32 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (config: Registry.Config) => Layer.Layer<Registry, Failure.InvalidOptionsError> = registry
  .layerWith(internal.variant)

/**
 * A {@link Registry} whose configuration comes from effect's `Config`, read
 * as `Bulkhead.layerConfig` reads it: every field may be a `Config` of its
 * value, and an entry may be {@link config}. Missing or malformed
 * configuration fails the layer with a `ConfigError`, invalid values with
 * `InvalidOptionsError` naming the bulkhead, the option and the variable.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * // PAYMENTS_MAX_CONCURRENT=8 PAYMENTS_MAX_QUEUED=16 INVENTORY_PERMITS=32
 * const Bulkheads = TBulkhead.layerConfig({
 *   payments: TBulkhead.config("payments"),
 *   inventory: { maxConcurrent: Config.integer("INVENTORY_PERMITS") }
 * })
 *
 * const program = callPayments.pipe(TBulkhead.protectNamed("payments"), Effect.provide(Bulkheads))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: (
  config: Config.Config.Wrap<Registry.Config>
) => Layer.Layer<Registry, Failure.InvalidOptionsError | ConfigError.ConfigError> = fromConfig.layerConfigWith(
  internal.variant
)

/**
 * One bulkhead's options read from effect's `Config`, for {@link layerConfig}:
 * `Bulkhead.config`, the same variables (`PAYMENTS_MAX_CONCURRENT`,
 * `PAYMENTS_MAX_QUEUED`, `PAYMENTS_MAX_WAIT` for `"payments"`) and defaults.
 *
 * @example
 * ```ts
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * // 8 permits unless PAYMENTS_MAX_CONCURRENT says otherwise.
 * const Bulkheads = TBulkhead.layerConfig({ payments: TBulkhead.config("payments", { maxConcurrent: 8 }) })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const config: (
  name: string,
  defaults?: Partial<Omit<TBulkhead.Options, "name">>
) => Config.Config<Omit<TBulkhead.Options, "name">> = fromConfig.config
