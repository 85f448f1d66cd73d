import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import type { BreakerStatus, CircuitBreaker, Options, RegistryConfig, RegistryService } from "../CircuitBreaker.js"
import { makeIn } from "./circuitBreaker.js"
import { resolve } from "./config.js"

/**
 * Named breakers shared across a program, each created once.
 *
 * @since 0.1.0
 * @category Registry
 */
export class Registry extends Context.Tag("@bulwark/resilience/CircuitBreaker/Registry")<
  Registry,
  RegistryService
>() {}

/**
 * A registry's operations over breakers of type `B`.
 *
 * @internal
 */
export interface Service<B> {
  readonly get: (name: string) => Effect.Effect<B, InvalidOptionsError>
  readonly all: Effect.Effect<ReadonlyArray<B>>
  readonly states: Effect.Effect<ReadonlyArray<BreakerStatus>>
}

/** Makes one breaker whose background fibers run in `scope`. @internal */
export type MakeIn<B> = (options: Options, scope: Scope.Scope) => Effect.Effect<B, InvalidOptionsError>

/**
 * Breakers live as long as the registry: their timers run in its scope (the
 * layer's). `statesOf` reads the states of a list of breakers (one STM
 * transaction for STM breakers: a consistent snapshot).
 *
 * @internal
 */
export const makeService = <B extends CircuitBreaker>(
  config: RegistryConfig,
  makeIn: MakeIn<B>,
  statesOf: (breakers: ReadonlyArray<B>) => Effect.Effect<ReadonlyArray<BreakerStatus>>
): Effect.Effect<Service<B>, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const defaults = config.defaults ?? {}
    // Checked up front so a bad default fails the layer, not the first `get` of an unlisted name.
    yield* resolve({ ...defaults, name: "defaults" })
    const breakers = new Map<string, B>()
    for (const [name, options] of Object.entries(config.breakers ?? {})) {
      breakers.set(name, yield* makeIn({ ...defaults, ...options, name }, scope))
    }
    // Creation is serialised so two fibers asking for a new name at once get the same breaker.
    const creating = yield* Effect.makeSemaphore(1)

    const get = (name: string): Effect.Effect<B, InvalidOptionsError> =>
      Effect.suspend(() => {
        const existing = breakers.get(name)
        if (existing !== undefined) return Effect.succeed(existing)
        return creating.withPermits(1)(Effect.suspend(() => {
          const created = breakers.get(name)
          if (created !== undefined) return Effect.succeed(created)
          return Effect.tap(makeIn({ ...defaults, name }, scope), (breaker) => {
            breakers.set(name, breaker)
          })
        }))
      })

    const all = Effect.sync((): ReadonlyArray<B> => Array.from(breakers.values()))

    return { get, all, states: Effect.flatMap(all, statesOf) }
  })

/** @internal */
export const statesOneByOne = (breakers: ReadonlyArray<CircuitBreaker>): Effect.Effect<ReadonlyArray<BreakerStatus>> =>
  Effect.forEach(
    breakers,
    (breaker) => Effect.map(breaker.state, (state): BreakerStatus => ({ name: breaker.name, state }))
  )

const makeRegistry = (config: RegistryConfig): Effect.Effect<RegistryService, InvalidOptionsError, Scope.Scope> =>
  makeService(config, makeIn, statesOneByOne)

/** @internal */
export const layer = (config: RegistryConfig = {}): Layer.Layer<Registry, InvalidOptionsError> =>
  Layer.scoped(Registry, makeRegistry(config))

/** @internal */
export const layerConfig = (
  config: Config.Config.Wrap<RegistryConfig>
): Layer.Layer<Registry, InvalidOptionsError | ConfigError.ConfigError> =>
  Layer.scoped(Registry, Effect.flatMap(Config.unwrap(config), makeRegistry))

/** @internal */
export const named = (name: string): Effect.Effect<CircuitBreaker, InvalidOptionsError, Registry> =>
  Effect.flatMap(Registry, (registry) => registry.get(name))
