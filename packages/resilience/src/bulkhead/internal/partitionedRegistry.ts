import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../../Failure.js"
import type { PartitionedBulkhead, Snapshot } from "../PartitionedBulkhead.js"
import type { BulkheadNotFoundError } from "./errors.js"
import * as internal from "./partitioned.js"
import type { PartitionedBulkheadFullError } from "./partitionedErrors.js"
import { lookup } from "./registry.js"

/**
 * Named partitioned bulkheads, built from configuration, as
 * `Bulkhead.Registry` holds bulkheads. A name it does not hold fails with
 * `BulkheadNotFoundError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PartitionedBulkhead } from "@bulwark/resilience"
 *
 * // An admin route: every partitioned bulkhead with its counts and keys held.
 * const status = Effect.flatMap(PartitionedBulkhead.Registry, (bulkheads) => bulkheads.snapshots)
 * ```
 *
 * @since 0.1.0
 * @category Registry
 */
export class Registry extends Context.Tag("@bulwark/resilience/PartitionedBulkhead/Registry")<
  Registry,
  Registry.Service
>() {}

/**
 * @since 0.1.0
 * @category Registry
 */
export declare namespace Registry {
  /**
   * @since 0.1.0
   * @category Registry
   */
  export interface Service {
    /** The partitioned bulkhead of that name. */
    readonly get: (name: string) => Effect.Effect<PartitionedBulkhead, BulkheadNotFoundError>
    /** Every partitioned bulkhead, in configuration order. */
    readonly all: ReadonlyArray<PartitionedBulkhead>
    /** A snapshot of every partitioned bulkhead, all read in one synchronous step. */
    readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
  }

  /**
   * Options per bulkhead name.
   *
   * @since 0.1.0
   * @category Registry
   */
  export type Config = Readonly<Record<string, Omit<PartitionedBulkhead.Options, "name">>>
}

/** @internal */
export const make = (config: Registry.Config): Effect.Effect<Registry.Service, InvalidOptionsError> =>
  Effect.map(
    Effect.forEach(Object.entries(config), ([name, options]) => internal.makeImpl({ ...options, name })),
    (bulkheads) => ({
      get: lookup(bulkheads),
      all: bulkheads,
      snapshots: Effect.sync(() => bulkheads.map((bulkhead) => bulkhead.unsafeSnapshot()))
    })
  )

/** @internal */
export const layer = (config: Registry.Config): Layer.Layer<Registry, InvalidOptionsError> =>
  Layer.effect(Registry, make(config))

/** @internal */
export const protectNamed = dual<
  (name: string, key: string) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | PartitionedBulkheadFullError | BulkheadNotFoundError, R | Registry>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    name: string,
    key: string
  ) => Effect.Effect<A, E | PartitionedBulkheadFullError | BulkheadNotFoundError, R | Registry>
>(3, (self, name, key) =>
  Effect.flatMap(
    Registry,
    (registry) => Effect.flatMap(registry.get(name), (bulkhead) => bulkhead.protect(key)(self))
  ))
