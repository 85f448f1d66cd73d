import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../../Failure.js"
import type { Bulkhead, Snapshot } from "../Bulkhead.js"
import * as internal from "./bulkhead.js"
import { type BulkheadFullError, BulkheadNotFoundError } from "./errors.js"

/**
 * Named bulkheads, one per dependency, built from configuration.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Bulkhead } from "@bulwark/resilience"
 *
 * // An admin route: every bulkhead with its counts.
 * const status = Effect.flatMap(Registry, (bulkheads) => bulkheads.snapshots)
 * ```
 *
 * @since 0.1.0
 * @category Registry
 */
export class Registry extends Context.Tag("@bulwark/resilience/Bulkhead/Registry")<Registry, Registry.Service>() {}

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
    /** The bulkhead of that name. */
    readonly get: (name: string) => Effect.Effect<Bulkhead, BulkheadNotFoundError>
    /** Every bulkhead, in configuration order. */
    readonly all: ReadonlyArray<Bulkhead>
    /** A snapshot of every bulkhead, all read in one synchronous step. */
    readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
  }

  /**
   * Options per bulkhead name.
   *
   * @since 0.1.0
   * @category Registry
   */
  export type Config = Readonly<Record<string, Omit<Bulkhead.Options, "name">>>
}

/** @internal */
export const make = (config: Registry.Config): Effect.Effect<Registry.Service, InvalidOptionsError> =>
  Effect.map(
    Effect.forEach(Object.entries(config), ([name, options]) => internal.makeImpl({ ...options, name })),
    (bulkheads) => {
      const byName = new Map(bulkheads.map((bulkhead) => [bulkhead.name, bulkhead]))
      const known = bulkheads.map((bulkhead) => bulkhead.name)
      return {
        get: (name) => {
          const bulkhead = byName.get(name)
          return bulkhead === undefined
            ? Effect.fail(new BulkheadNotFoundError({ name, known }))
            : Effect.succeed(bulkhead)
        },
        all: bulkheads,
        snapshots: Effect.sync(() => bulkheads.map((bulkhead) => bulkhead.unsafeSnapshot()))
      }
    }
  )

/** @internal */
export const layer = (config: Registry.Config): Layer.Layer<Registry, InvalidOptionsError> =>
  Layer.effect(Registry, make(config))

/** @internal */
export const protectNamed = dual<
  (name: string) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | BulkheadFullError | BulkheadNotFoundError, R | Registry>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    name: string
  ) => Effect.Effect<A, E | BulkheadFullError | BulkheadNotFoundError, R | Registry>
>(2, (self, name) =>
  Effect.flatMap(
    Registry,
    (registry) => Effect.flatMap(registry.get(name), (bulkhead) => bulkhead.protect(self))
  ))
