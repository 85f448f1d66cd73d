/**
 * Bulkheads: a cap on how many calls to one dependency run at once, so a slow
 * dependency cannot take every fiber, connection and socket down with it.
 *
 * A bulkhead holds `maxConcurrent` permits. A call takes a permit and gives it
 * back when it ends, however it ends (success, failure, defect,
 * interruption). When no permit is free the call waits in a queue of at most
 * `maxQueued` calls, for at most `maxWait`; beyond that it fails fast with a
 * {@link BulkheadFullError}, a transient *rejection*: retry may try again
 * later, and circuit breakers ignore it, because a full bulkhead says nothing
 * about the health of the dependency.
 *
 * ```text
 * call ──permit free?──yes──▶ run ──▶ permit back (to the oldest waiter, if any)
 *            │no
 *            ├──queue has room──▶ wait (FIFO) ──permit handed over──▶ run
 *            │                      └──maxWait elapsed──▶ BulkheadFullError "MaxWait"
 *            └──queue full──▶ BulkheadFullError "QueueFull"
 * ```
 *
 * The state is plain synchronous state (a count of free permits, an intrusive
 * FIFO of waiters), changed only in single synchronous steps: one synchronous
 * step per decision is atomic, because fibers interleave only between
 * effects, and it costs far less than an STM commit (~2.6 µs, more than the
 * rest of a call). So admission and enqueueing are one atomic step and the
 * queue bound is exact. A freed permit goes straight to the oldest waiter:
 * newcomers never overtake the queue, and each release wakes one fiber.
 *
 * Metrics (label `bulkhead`): `bulwark_bulkhead_active`,
 * `bulwark_bulkhead_queued`, `bulwark_bulkhead_rejected_total`. Traces (with
 * `Tracing.layer`): `bulwark.bulkhead.name` on the call's span, and
 * `bulwark.bulkhead.queued_ms` when the call waited in the queue.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import type * as Failure from "../Failure.js"
import * as internal from "./internal/bulkhead.js"
import * as fromConfig from "./internal/config.js"
import { BulkheadFullError, BulkheadNotFoundError } from "./internal/errors.js"
import * as registry from "./internal/registry.js"
import { Registry } from "./internal/registry.js"

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
 * The limits a bulkhead enforces.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Limits {
  /** Calls that may run at once. */
  readonly maxConcurrent: number
  /** Calls that may wait for a permit; `0` rejects at once when all permits are taken. */
  readonly maxQueued: number
  /** How long a queued call waits before it is rejected; `Duration.infinity` when it waits as long as it is queued. */
  readonly maxWait: Duration.Duration
}

/**
 * A consistent reading of a bulkhead, for admin routes and health checks.
 * `active + available = maxConcurrent`, and `queued > 0` only when
 * `available = 0`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Snapshot extends Limits {
  readonly name: string
  /** Permits held: calls running, or handed a permit and about to run. */
  readonly active: number
  /** Calls waiting for a permit. */
  readonly queued: number
  /** Free permits. */
  readonly available: number
}

/**
 * A bulkhead. Build one with {@link make}, or by name through a {@link Registry}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Bulkhead extends Pipeable {
  readonly [TypeId]: TypeId
  /** The value of the `bulkhead` metric label. */
  readonly name: string
  readonly limits: Limits
  /** Reads the counts in one synchronous step. */
  readonly snapshot: Effect.Effect<Snapshot>
  /** Runs an effect under a permit; see {@link protect}. */
  readonly protect: <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Bulkhead {
  /**
   * Options of {@link make}. Invalid values fail with `InvalidOptionsError`
   * naming the option.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Names the bulkhead in errors and in the `bulkhead` metric label: 1 to 128 of `A-Z a-z 0-9 _ . : / -`. */
    readonly name: string
    /** Calls that may run at once: an integer ≥ 1. */
    readonly maxConcurrent: number
    /** Calls that may wait for a permit: an integer ≥ 0, or `Infinity`. Default `0` (reject at once when full). */
    readonly maxQueued?: number
    /** How long a queued call may wait: a non-negative duration. Default: as long as it is queued. */
    readonly maxWait?: Duration.DurationInput
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * Why a bulkhead refused a call.
 *
 * - `QueueFull`: no permit was free and the queue was full (or the bulkhead does not queue).
 * - `MaxWait`: the call was queued, and no permit came free within `maxWait`.
 *
 * @since 0.1.0
 * @category Models
 */
export type FullReason = "QueueFull" | "MaxWait"

// Declared in `internal/errors.ts`, a leaf the internals import.
export { BulkheadFullError, BulkheadNotFoundError }

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * Builds a bulkhead. Fails with `InvalidOptionsError` when `maxConcurrent` is
 * not an integer ≥ 1, `maxQueued` not an integer ≥ 0 (or `Infinity`),
 * `maxWait` not a non-negative duration, or the name is not a valid label.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * const program = Effect.gen(function*() {
 *   const bulkhead = yield* Bulkhead.make({ name: "payments", maxConcurrent: 8, maxQueued: 16, maxWait: "2 seconds" })
 *   return yield* callPayments.pipe(Bulkhead.protect(bulkhead))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options: Bulkhead.Options) => Effect.Effect<Bulkhead, Failure.InvalidOptionsError> = internal.make

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Runs an effect under one of the bulkhead's permits, waiting in its queue if
 * none is free. Fails with {@link BulkheadFullError} when the queue is full or
 * the wait exceeds `maxWait`. The permit is returned when the effect ends,
 * however it ends; an interrupted queued call leaves the queue.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * declare const bulkhead: Bulkhead.Bulkhead
 * declare const callInventory: Effect.Effect<number, Error>
 *
 * const pipeable = callInventory.pipe(Bulkhead.protect(bulkhead))
 * const dataFirst = Bulkhead.protect(callInventory, bulkhead)
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: {
  (bulkhead: Bulkhead): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>
  <A, E, R>(self: Effect.Effect<A, E, R>, bulkhead: Bulkhead): Effect.Effect<A, E | BulkheadFullError, R>
} = internal.protect

/**
 * Runs an effect under the bulkhead of that name in the {@link Registry}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * const protectedCall = callPayments.pipe(Bulkhead.protectNamed("payments"))
 * const program = protectedCall.pipe(
 *   Effect.provide(Bulkhead.layer({ payments: { maxConcurrent: 8, maxQueued: 16 } }))
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
} = registry.protectNamed

// -----------------------------------------------------------------------------
// Getters and guards
// -----------------------------------------------------------------------------

/**
 * The bulkhead's counts and limits, read in one synchronous step.
 *
 * @since 0.1.0
 * @category Getters
 */
export const snapshot: (self: Bulkhead) => Effect.Effect<Snapshot> = internal.snapshot

/**
 * @since 0.1.0
 * @category Guards
 */
export const isBulkhead: (u: unknown) => u is Bulkhead = internal.isBulkhead

/**
 * @since 0.1.0
 * @category Guards
 */
export const isBulkheadFullError = (u: unknown): u is BulkheadFullError => u instanceof BulkheadFullError

// -----------------------------------------------------------------------------
// Registry
// -----------------------------------------------------------------------------
// Declared in `internal/registry.ts`, which provides it.
export { Registry }

/**
 * A {@link Registry} with one bulkhead per entry, named by its key. Fails with
 * `InvalidOptionsError` (naming the bulkhead and the option) when an entry is
 * invalid.
 *
 * @example
 * ```ts
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * const Bulkheads = Bulkhead.layer({
 *   payments: { maxConcurrent: 8, maxQueued: 16, maxWait: "2 seconds" },
 *   inventory: { maxConcurrent: 32 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (config: Registry.Config) => Layer.Layer<Registry, Failure.InvalidOptionsError> = registry.layer

/**
 * A {@link Registry} whose configuration comes from effect's `Config` (the
 * environment, a file, any `ConfigProvider`), as `CircuitBreaker.layerConfig`
 * reads breakers: every field of {@link Registry.Config} may be a `Config` of
 * its value, at any depth, and an entry may be {@link config}. Missing or
 * malformed configuration fails the layer with a `ConfigError`, invalid values
 * with `InvalidOptionsError` naming the bulkhead and the option (and, for a
 * value read by {@link config}, the variable), before any bulkhead is used.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * // PAYMENTS_MAX_CONCURRENT=8 PAYMENTS_MAX_QUEUED=16 PAYMENTS_MAX_WAIT="2 seconds" INVENTORY_PERMITS=32
 * const Bulkheads = Bulkhead.layerConfig({
 *   payments: Bulkhead.config("payments"),
 *   inventory: { maxConcurrent: Config.integer("INVENTORY_PERMITS") }
 * })
 *
 * const program = callPayments.pipe(Bulkhead.protectNamed("payments"), Effect.provide(Bulkheads))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: (
  config: Config.Config.Wrap<Registry.Config>
) => Layer.Layer<Registry, Failure.InvalidOptionsError | ConfigError.ConfigError> = fromConfig.layerConfig

/**
 * One bulkhead's options read from effect's `Config`, for {@link layerConfig}.
 * Each option is a variable named after the bulkhead's name in CONSTANT_CASE:
 * for `Bulkhead.config("payments")`,
 *
 * | option | variable | when missing |
 * |---|---|---|
 * | `maxConcurrent` | `PAYMENTS_MAX_CONCURRENT` | `defaults.maxConcurrent`, else a `ConfigError` |
 * | `maxQueued` | `PAYMENTS_MAX_QUEUED` | `defaults.maxQueued`, else `0` (no queue) |
 * | `maxWait` | `PAYMENTS_MAX_WAIT` | `defaults.maxWait`, else as long as the call is queued |
 *
 * Counts are integers (`maxQueued` may be `Infinity`); `maxWait` is a duration
 * as effect writes it (`"2 seconds"`), milliseconds, or `Infinity`. The path
 * is built with `Config.nested`, so any `ConfigProvider` works (its path
 * delimiter joins the parts: `_` for the environment, nested objects for
 * `ConfigProvider.fromJson`). The values are checked when the layer is built:
 * one that is not valid (`0` permits, a negative or fractional count, text
 * that is not a duration) fails {@link layerConfig} with `InvalidOptionsError`
 * naming the option and the variable, e.g. `Bulkhead "payments" (config
 * PAYMENTS_MAX_CONCURRENT): option "maxConcurrent" must be an integer ≥ 1 (got "0")`.
 *
 * @example
 * ```ts
 * import { ConfigProvider, Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * declare const callPayments: Effect.Effect<string>
 *
 * // Limits from PAYMENTS_MAX_CONCURRENT, PAYMENTS_MAX_QUEUED and PAYMENTS_MAX_WAIT, 8 permits when unset.
 * const Bulkheads = Bulkhead.layerConfig({ payments: Bulkhead.config("payments", { maxConcurrent: 8 }) })
 *
 * const program = callPayments.pipe(
 *   Bulkhead.protectNamed("payments"),
 *   Effect.provide(Bulkheads),
 *   Effect.withConfigProvider(
 *     ConfigProvider.fromMap(new Map([["PAYMENTS_MAX_CONCURRENT", "4"], ["PAYMENTS_MAX_WAIT", "500 millis"]]), {
 *       pathDelim: "_"
 *     })
 *   )
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const config: (
  name: string,
  defaults?: Partial<Omit<Bulkhead.Options, "name">>
) => Config.Config<Omit<Bulkhead.Options, "name">> = fromConfig.config
