/**
 * Partitioned bulkheads: a concurrency limit per key (a tenant, a host, a
 * customer), a bound on the number of keys held at once, and optionally a
 * shared total across all keys, as effect's `PartitionedSemaphore` shares
 * its permits among partitions.
 *
 * Each key has the limits of a {@link Bulkhead.make} bulkhead: `maxConcurrent`
 * calls at once, a FIFO queue of `maxQueued` calls, `maxWait`. With `total`,
 * every call also needs one of `total.maxConcurrent` permits shared by all
 * keys. A refused call fails with {@link PartitionedBulkheadFullError}, a
 * transient rejection like `BulkheadFullError`, which names the limit that
 * refused it: the key's (`"perKey"`: this tenant is busy), the shared total's
 * (`"total"`: everyone is), or the key table's (`"maxKeys"`).
 *
 * ```text
 * call(key) ──key held? no──▶ maxKeys keys held? ──yes──▶ PartitionedBulkheadFullError "TooManyKeys"
 *              │                     │no: the key is added
 *              ▼                     ▼
 *   key's permit free, nobody of the key queued, a total permit free? ──yes──▶ run
 *              │no
 *              ├──key's queue has room──▶ wait (FIFO per key) ──permit──▶ run
 *              │                            └──maxWait elapsed──▶ "MaxWait"
 *              └──key's queue full──▶ "QueueFull"
 * ```
 *
 * **Fairness.** A call that waits for the shared total (its key has a free
 * permit, the total has none) puts its key in a round-robin ring of keys. A
 * freed total permit goes to the key at the head of the ring, which then goes
 * to the back if it still has calls waiting. The key whose call just ended
 * takes its place at the back like any other, so a hot key with a long queue
 * gets one permit per round and cannot starve a key with one call waiting.
 * Within one key, calls are served in arrival order, and a newcomer never
 * overtakes a queued call of its own key.
 *
 * **Bounded keys.** A key is held while it has a call running or queued, and
 * dropped in the step its last call ends or leaves the queue: the table never
 * holds more than `maxKeys` keys, and idle keys cost nothing, so any number
 * of distinct keys over time uses no more memory than `maxKeys` at once. A
 * call with a new key when `maxKeys` keys are held is refused at once with
 * `"TooManyKeys"` (it does not wait: a full table means that many keys are
 * busy, and waiting for one of them to go idle would be a second queue with no
 * order a caller could reason about). The calls queued across all keys are
 * bounded by `maxKeys × perKey.maxQueued`.
 *
 * Like the fast bulkhead, the state is plain synchronous state changed in
 * single synchronous steps (atomic, because fibers interleave only between
 * effects); a freed permit goes straight to the waiter it is for, waking that
 * fiber alone; an interrupted or timed-out waiter leaves its queue, and a
 * permit handed to it in that very instant is given back, never lost.
 *
 * Metrics are per bulkhead, never per key (label `bulkhead`, as the fast
 * bulkhead's): `bulwark_bulkhead_active` (calls running, all keys),
 * `bulwark_bulkhead_queued` (calls waiting, all keys) and
 * `bulwark_bulkhead_rejected_total`. The number of keys held is in
 * {@link snapshot}. Keys appear in no metric, span or error: they are
 * unbounded, and often identify a customer.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { Pipeable } from "effect/Pipeable"
import type * as Failure from "../Failure.js"
import { BulkheadNotFoundError } from "./internal/errors.js"
import * as internal from "./internal/partitioned.js"
import { PartitionedBulkheadFullError } from "./internal/partitionedErrors.js"
import * as registry from "./internal/partitionedRegistry.js"
import { Registry } from "./internal/partitionedRegistry.js"

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
 * The limits of one key: those of a `Bulkhead`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface KeyLimits {
  /** Calls of one key that may run at once. */
  readonly maxConcurrent: number
  /** Calls of one key that may wait; `0` rejects at once when the call cannot run. */
  readonly maxQueued: number
  /** How long a queued call waits before it is rejected; `Duration.infinity` when it waits as long as it is queued. */
  readonly maxWait: Duration.Duration
}

/**
 * The limits a partitioned bulkhead enforces.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Limits {
  readonly perKey: KeyLimits
  /** The permits shared by every key; `undefined` when only the per-key limits apply. */
  readonly total: { readonly maxConcurrent: number } | undefined
  /** Keys that may be held (with a call running or queued) at once. */
  readonly maxKeys: number
}

/**
 * A consistent reading of a partitioned bulkhead, for admin routes and
 * health checks: `active ≤ total.maxConcurrent`, `keys ≤ maxKeys`, and
 * `keys = 0` exactly when `active = 0` and `queued = 0`.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Snapshot extends Limits {
  readonly name: string
  /** Permits held, all keys: calls running, or handed a permit and about to run. */
  readonly active: number
  /** Calls waiting, all keys. */
  readonly queued: number
  /** Keys held: with a call running or queued. */
  readonly keys: number
}

/**
 * One key's counts; both `0` for a key not held.
 *
 * @since 0.1.0
 * @category Models
 */
export interface KeySnapshot {
  readonly active: number
  readonly queued: number
}

/**
 * A partitioned bulkhead. Build one with {@link make}, or by name through a
 * {@link Registry}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PartitionedBulkhead extends Pipeable {
  readonly [TypeId]: TypeId
  /** The value of the `bulkhead` metric label. */
  readonly name: string
  readonly limits: Limits
  /** Reads the counts in one synchronous step. */
  readonly snapshot: Effect.Effect<Snapshot>
  /** Reads one key's counts; holds no key. */
  readonly snapshotKey: (key: string) => Effect.Effect<KeySnapshot>
  /** Runs an effect under a permit of `key`; see {@link protect}. */
  readonly protect: (
    key: string
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PartitionedBulkheadFullError, R>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace PartitionedBulkhead {
  /**
   * Options of {@link make}. Invalid values fail with `InvalidOptionsError`
   * naming the option (`perKey.maxQueued`, `total.maxConcurrent`…).
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options {
    /** Names the bulkhead in errors and in the `bulkhead` metric label: 1 to 128 of `A-Z a-z 0-9 _ . : / -`. */
    readonly name: string
    /** The limits of each key, as a `Bulkhead`'s options. */
    readonly perKey: {
      /** Calls of one key that may run at once: an integer ≥ 1. */
      readonly maxConcurrent: number
      /** Calls of one key that may wait: an integer ≥ 0, or `Infinity`. Default `0` (reject at once). */
      readonly maxQueued?: number
      /** How long a queued call may wait: a non-negative duration. Default: as long as it is queued. */
      readonly maxWait?: Duration.DurationInput
    }
    /** Permits shared by every key: `maxConcurrent` an integer ≥ 1. Default: none (only the per-key limits). */
    readonly total?: {
      readonly maxConcurrent: number
    }
    /** Keys held at once (running or queued calls): an integer ≥ 1. A new key beyond it is refused. */
    readonly maxKeys: number
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/**
 * Why a partitioned bulkhead refused a call.
 *
 * - `QueueFull`: the call could not run and its key's queue was full (or the bulkhead does not queue).
 * - `MaxWait`: the call was queued, and no permit came within `perKey.maxWait`.
 * - `TooManyKeys`: the key was not held and `maxKeys` keys were.
 *
 * @since 0.1.0
 * @category Models
 */
export type FullReason = "QueueFull" | "MaxWait" | "TooManyKeys"

/**
 * Which limit held the call back when it was refused: its key's permits
 * (`perKey`: that key is busy), the shared total (`total`: every key is), or
 * the number of keys (`maxKeys`, with `TooManyKeys`).
 *
 * @since 0.1.0
 * @category Models
 */
export type FullLimit = "perKey" | "total" | "maxKeys"

// Declared in `internal/partitionedErrors.ts` and `internal/errors.ts`, leaves the internals import.
export { BulkheadNotFoundError, PartitionedBulkheadFullError }

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * Builds a partitioned bulkhead. Fails with `InvalidOptionsError` when a
 * count is not an integer in its range (`perKey.maxConcurrent`,
 * `total.maxConcurrent` and `maxKeys` ≥ 1; `perKey.maxQueued` ≥ 0 or
 * `Infinity`), `perKey.maxWait` is not a non-negative duration, or the name
 * is not a valid label.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PartitionedBulkhead } from "@bulwark/resilience"
 *
 * declare const callReports: (tenant: string) => Effect.Effect<string>
 *
 * const program = Effect.gen(function*() {
 *   const reports = yield* PartitionedBulkhead.make({
 *     name: "reports",
 *     perKey: { maxConcurrent: 2, maxQueued: 4, maxWait: "1 second" },
 *     total: { maxConcurrent: 16 },
 *     maxKeys: 1_000
 *   })
 *   return yield* callReports("acme").pipe(PartitionedBulkhead.protect(reports, "acme"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  options: PartitionedBulkhead.Options
) => Effect.Effect<PartitionedBulkhead, Failure.InvalidOptionsError> = internal.make

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Runs an effect under a permit of `key` (and one of the shared total, when
 * there is one), waiting in the key's queue if it cannot run at once. Fails
 * with {@link PartitionedBulkheadFullError} when the key's queue is full, the
 * wait exceeds `perKey.maxWait`, or the key is new and `maxKeys` keys are
 * held. The permits are returned when the effect ends, however it ends; an
 * interrupted queued call leaves the queue.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PartitionedBulkhead } from "@bulwark/resilience"
 *
 * declare const perHost: PartitionedBulkhead.PartitionedBulkhead
 * declare const fetchPage: (host: string) => Effect.Effect<string, Error>
 *
 * const pipeable = fetchPage("example.com").pipe(PartitionedBulkhead.protect(perHost, "example.com"))
 * const dataFirst = PartitionedBulkhead.protect(fetchPage("example.org"), perHost, "example.org")
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: {
  (
    bulkhead: PartitionedBulkhead,
    key: string
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | PartitionedBulkheadFullError, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    bulkhead: PartitionedBulkhead,
    key: string
  ): Effect.Effect<A, E | PartitionedBulkheadFullError, R>
} = internal.protect

/**
 * Runs an effect under a permit of `key` in the partitioned bulkhead of that
 * name in the {@link Registry}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PartitionedBulkhead } from "@bulwark/resilience"
 *
 * declare const search: (tenant: string) => Effect.Effect<string>
 *
 * const program = search("acme").pipe(
 *   PartitionedBulkhead.protectNamed("search", "acme"),
 *   Effect.provide(PartitionedBulkhead.layer({ search: { perKey: { maxConcurrent: 2 }, maxKeys: 500 } }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protectNamed: {
  (name: string, key: string): <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PartitionedBulkheadFullError | BulkheadNotFoundError, R | Registry>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    name: string,
    key: string
  ): Effect.Effect<A, E | PartitionedBulkheadFullError | BulkheadNotFoundError, R | Registry>
} = registry.protectNamed

// -----------------------------------------------------------------------------
// Getters and guards
// -----------------------------------------------------------------------------

/**
 * The bulkhead's counts (all keys) and limits, read in one synchronous step.
 *
 * @since 0.1.0
 * @category Getters
 */
export const snapshot: (self: PartitionedBulkhead) => Effect.Effect<Snapshot> = internal.snapshot

/**
 * One key's counts, read in one synchronous step; reading does not hold the key.
 *
 * @since 0.1.0
 * @category Getters
 */
export const snapshotKey: {
  (key: string): (self: PartitionedBulkhead) => Effect.Effect<KeySnapshot>
  (self: PartitionedBulkhead, key: string): Effect.Effect<KeySnapshot>
} = internal.snapshotKey

/**
 * @since 0.1.0
 * @category Guards
 */
export const isPartitionedBulkhead: (u: unknown) => u is PartitionedBulkhead = internal.isPartitionedBulkhead

/**
 * @since 0.1.0
 * @category Guards
 */
export const isPartitionedBulkheadFullError = (u: unknown): u is PartitionedBulkheadFullError =>
  u instanceof PartitionedBulkheadFullError

// -----------------------------------------------------------------------------
// Registry
// -----------------------------------------------------------------------------
// Declared in `internal/partitionedRegistry.ts`, which provides it.
export { Registry }

/**
 * A {@link Registry} with one partitioned bulkhead per entry, named by its
 * key. Fails with `InvalidOptionsError` (naming the bulkhead and the option)
 * when an entry is invalid.
 *
 * @example
 * ```ts
 * import { PartitionedBulkhead } from "@bulwark/resilience"
 *
 * const PerTenant = PartitionedBulkhead.layer({
 *   reports: { perKey: { maxConcurrent: 2, maxQueued: 4 }, total: { maxConcurrent: 16 }, maxKeys: 1_000 },
 *   exports: { perKey: { maxConcurrent: 1 }, maxKeys: 10_000 }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (config: Registry.Config) => Layer.Layer<Registry, Failure.InvalidOptionsError> = registry.layer
