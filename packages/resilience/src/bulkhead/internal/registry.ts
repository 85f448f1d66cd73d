import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
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
 * const status = Effect.flatMap(Bulkhead.Registry, (bulkheads) => bulkheads.snapshots)
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
  export interface Service extends Named<Bulkhead> {}

  /**
   * Options per bulkhead name.
   *
   * @since 0.1.0
   * @category Registry
   */
  export type Config = Readonly<Record<string, Omit<Bulkhead.Options, "name">>>
}

/**
 * The service of a registry of bulkheads of one variant (`Bulkhead` or
 * `TBulkhead`).
 *
 * @since 0.1.0
 * @category Registry
 */
export interface Named<out B extends Bulkhead> {
  /** The bulkhead of that name. */
  readonly get: (name: string) => Effect.Effect<B, BulkheadNotFoundError>
  /** Every bulkhead, in configuration order. */
  readonly all: ReadonlyArray<B>
  /** A snapshot of every bulkhead, all read at once (one synchronous step, or one transaction). */
  readonly snapshots: Effect.Effect<ReadonlyArray<Snapshot>>
}

/**
 * What a registry needs of a bulkhead variant: its tag, how to build one
 * bulkhead (in the registry's scope, for the variants that run a fiber), and
 * how to read all of them at once. `B` is what the variant builds, `A` what
 * its registry hands out.
 *
 * @internal
 */
export interface Variant<I, A extends Bulkhead, B extends A> {
  readonly tag: Context.Tag<I, Named<A>>
  readonly make: (options: Bulkhead.Options) => Effect.Effect<B, InvalidOptionsError, Scope.Scope>
  readonly snapshots: (all: ReadonlyArray<B>) => Effect.Effect<ReadonlyArray<Snapshot>>
}

/** @internal */
export const makeWith = <I, A extends Bulkhead, B extends A>(
  variant: Variant<I, A, B>,
  config: Registry.Config
): Effect.Effect<Named<B>, InvalidOptionsError, Scope.Scope> =>
  Effect.map(
    Effect.forEach(Object.entries(config), ([name, options]) => variant.make({ ...options, name })),
    (bulkheads) => ({ get: lookup(bulkheads), all: bulkheads, snapshots: variant.snapshots(bulkheads) })
  )

/**
 * A registry's `get`: the bulkhead of that name, or `BulkheadNotFoundError` naming the known ones.
 *
 * @internal
 */
export const lookup = <B extends { readonly name: string }>(
  bulkheads: ReadonlyArray<B>
): (name: string) => Effect.Effect<B, BulkheadNotFoundError> => {
  const byName = new Map(bulkheads.map((bulkhead) => [bulkhead.name, bulkhead]))
  const known = bulkheads.map((bulkhead) => bulkhead.name)
  return (name) => {
    const bulkhead = byName.get(name)
    return bulkhead === undefined ? Effect.fail(new BulkheadNotFoundError({ name, known })) : Effect.succeed(bulkhead)
  }
}

/** A registry's layer: its bulkheads live as long as the layer (their fibers, if any, run in its scope). @internal */
export const layerWith = <I, A extends Bulkhead, B extends A>(
  variant: Variant<I, A, B>
) =>
(config: Registry.Config): Layer.Layer<I, InvalidOptionsError> => Layer.scoped(variant.tag, makeWith(variant, config))

/** @internal */
export const protectNamedWith = <I, A extends Bulkhead>(tag: Context.Tag<I, Named<A>>) =>
  dual<
    (name: string) => <X, E, R>(
      self: Effect.Effect<X, E, R>
    ) => Effect.Effect<X, E | BulkheadFullError | BulkheadNotFoundError, R | I>,
    <X, E, R>(
      self: Effect.Effect<X, E, R>,
      name: string
    ) => Effect.Effect<X, E | BulkheadFullError | BulkheadNotFoundError, R | I>
  >(2, (self, name) =>
    Effect.flatMap(
      tag,
      (registry) => Effect.flatMap(registry.get(name), (bulkhead) => bulkhead.protect(self))
    ))

/** The fast bulkheads: counts read in one synchronous step. @internal */
export const variant: Variant<Registry, Bulkhead, internal.BulkheadImpl> = {
  tag: Registry,
  make: internal.makeImpl,
  snapshots: (bulkheads) => Effect.sync(() => bulkheads.map((bulkhead) => bulkhead.unsafeSnapshot()))
}

/** @internal */
export const layer: (config: Registry.Config) => Layer.Layer<Registry, InvalidOptionsError> = layerWith(variant)

/** @internal */
export const protectNamed = protectNamedWith(Registry)
