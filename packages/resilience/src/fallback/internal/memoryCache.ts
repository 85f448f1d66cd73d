/**
 * The in-memory last-known-good cache: a `Map` in insertion order used as an
 * LRU list (a read or write moves the key to the end; the first key is the
 * least recently used).
 *
 * No STM here: every operation is one synchronous step (`Effect.sync`), and
 * fibers only interleave between effects, so no check-then-act spans two
 * steps.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import type { Cache, CacheEntry, MemoryCacheOptions } from "../Fallback.js"

/** @internal */
export const defaults = { capacity: 1_000 } as const

const validate = (options: MemoryCacheOptions): Options.Check<number> =>
  Options.number({ component: "Fallback.memoryCache", option: "capacity" }, options.capacity ?? defaults.capacity, {
    min: 1,
    integer: true
  })

const build = <A>(capacity: number): Cache<A> => {
  const entries = new Map<string, CacheEntry<A>>()
  return {
    get: (key) =>
      Effect.sync(() => {
        const entry = entries.get(key)
        if (entry === undefined) return Option.none()
        entries.delete(key)
        entries.set(key, entry)
        return Option.some(entry)
      }),
    set: (key, entry) =>
      Effect.sync(() => {
        entries.delete(key)
        entries.set(key, entry)
        if (entries.size > capacity) {
          const oldest = entries.keys().next()
          if (oldest.done !== true) entries.delete(oldest.value)
        }
      })
  }
}

/** @internal */
export const make = <A>(options: MemoryCacheOptions = {}): Effect.Effect<Cache<A>, InvalidOptionsError> =>
  Effect.map(validate(options), (capacity) => build<A>(capacity))

/** @internal */
export const unsafeMake = <A>(options: MemoryCacheOptions = {}): Cache<A> =>
  build<A>(Either.getOrThrowWith(validate(options), (error) => error))
