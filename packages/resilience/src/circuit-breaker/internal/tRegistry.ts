import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as STM from "effect/STM"
import type { InvalidOptionsError } from "../../Failure.js"
import type { BreakerStatus, RegistryConfig } from "../CircuitBreaker.js"
import type { RegistryService, TCircuitBreaker } from "../TCircuitBreaker.js"
import { makeService } from "./registry.js"
import { makeIn } from "./tCircuitBreaker.js"

/**
 * Named STM breakers shared across a program, each created once.
 *
 * @since 0.1.0
 * @category Registry
 */
export class Registry extends Context.Tag("@bulwark/resilience/TCircuitBreaker/Registry")<
  Registry,
  RegistryService
>() {}

/** Every state read in one transaction: a snapshot no concurrent move can tear. */
const statesAtOnce = (breakers: ReadonlyArray<TCircuitBreaker>): Effect.Effect<ReadonlyArray<BreakerStatus>> =>
  STM.commit(
    STM.forEach(breakers, (breaker) => STM.map(breaker.transactions.state, (state) => ({ name: breaker.name, state })))
  )

const makeRegistry = (config: RegistryConfig) => makeService(config, makeIn, statesAtOnce)

/** @internal */
export const layer = (config: RegistryConfig = {}): Layer.Layer<Registry, InvalidOptionsError> =>
  Layer.scoped(Registry, makeRegistry(config))

/** @internal */
export const layerConfig = (
  config: Config.Config.Wrap<RegistryConfig>
): Layer.Layer<Registry, InvalidOptionsError | ConfigError.ConfigError> =>
  Layer.scoped(Registry, Effect.flatMap(Config.unwrap(config), makeRegistry))

/** @internal */
export const named = (name: string): Effect.Effect<TCircuitBreaker, InvalidOptionsError, Registry> =>
  Effect.flatMap(Registry, (registry) => registry.get(name))
