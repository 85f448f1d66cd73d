import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Bulkhead from "../Bulkhead.js"
import * as internal from "./bulkhead.js"

/** @internal */
export const make = (config: Bulkhead.Registry.Config): Effect.Effect<Bulkhead.Registry.Service, InvalidOptionsError> =>
  Effect.map(
    Effect.forEach(Object.entries(config), ([name, options]) => internal.makeImpl({ ...options, name })),
    (bulkheads) => {
      const byName = new Map(bulkheads.map((bulkhead) => [bulkhead.name, bulkhead]))
      const known = bulkheads.map((bulkhead) => bulkhead.name)
      return {
        get: (name) => {
          const bulkhead = byName.get(name)
          return bulkhead === undefined
            ? Effect.fail(new Bulkhead.BulkheadNotFoundError({ name, known }))
            : Effect.succeed(bulkhead)
        },
        all: bulkheads,
        snapshots: Effect.sync(() => bulkheads.map((bulkhead) => bulkhead.unsafeSnapshot()))
      }
    }
  )

/** @internal */
export const layer = (config: Bulkhead.Registry.Config): Layer.Layer<Bulkhead.Registry, InvalidOptionsError> =>
  Layer.effect(Bulkhead.Registry, make(config))

/** @internal */
export const protectNamed = dual<
  (name: string) => <A, E, R>(
    self: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | Bulkhead.BulkheadFullError | Bulkhead.BulkheadNotFoundError, R | Bulkhead.Registry>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    name: string
  ) => Effect.Effect<A, E | Bulkhead.BulkheadFullError | Bulkhead.BulkheadNotFoundError, R | Bulkhead.Registry>
>(2, (self, name) =>
  Effect.flatMap(
    Bulkhead.Registry,
    (registry) => Effect.flatMap(registry.get(name), (bulkhead) => bulkhead.protect(self))
  ))

/** @internal */
export const notFoundMessage = (self: Bulkhead.BulkheadNotFoundError): string =>
  `No bulkhead named "${self.name}" in the registry (known: ${
    self.known.length === 0 ? "none" : self.known.map((name) => `"${name}"`).join(", ")
  })`
