/**
 * Bulkheads read through effect's `Config`.
 *
 * `config(name)` reads one bulkhead's options as text under the name in
 * CONSTANT_CASE (`MAX_CONCURRENT`, `MAX_QUEUED`, `MAX_WAIT`, built with
 * `Config.nested`, so any `ConfigProvider` works). The text is only parsed
 * here, never judged: the registry validates it like any other options, and
 * `layerConfig` then names the variable a rejected value came from. The
 * variables of each value read are kept in a `WeakMap` keyed by the options
 * object, so the options stay plain `Bulkhead.Options`.
 *
 * @internal
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { constantCase, NUMBER } from "../../internal/configText.js"
import { InvalidOptionsError } from "../../internal/failureErrors.js"
import type { Bulkhead } from "../Bulkhead.js"
import { component } from "./bulkhead.js"
import * as registry from "./registry.js"

/** A bulkhead's options without its name, which is its key in a registry. */
type Entry = Omit<Bulkhead.Options, "name">

/** Where a value of an entry was read: the variable, and its text. */
interface Source {
  readonly key: string
  readonly text: string
}

type Sources = Readonly<Partial<Record<keyof Entry, Source>>>

const sources = new WeakMap<Entry, Sources>()

/** The variables, by option, after the bulkhead's name. */
const KEYS = {
  maxConcurrent: "MAX_CONCURRENT",
  maxQueued: "MAX_QUEUED",
  maxWait: "MAX_WAIT"
} as const satisfies Record<keyof Entry, string>

const INFINITY = /^\s*\+?infinity\s*$/i

/** A count as text: a number, or `Infinity`; anything else is `NaN`, which validation rejects. */
const count = (text: string): number => INFINITY.test(text) ? Infinity : NUMBER.test(text) ? Number(text) : NaN

/** A duration as text: milliseconds, `Infinity`, or effect's form (`"2 seconds"`), left for validation to judge. */
const duration = (text: string): Duration.DurationInput =>
  INFINITY.test(text)
    ? Duration.infinity
    : NUMBER.test(text)
    ? Number(text)
    // Not known to be a duration: validation rejects it with the text.
    : text.trim() as Duration.DurationInput

const text = (key: string, required: boolean): Config.Config<Option.Option<string>> =>
  required ? Config.map(Config.string(key), Option.some) : Config.option(Config.string(key))

/** @internal */
export const config = (name: string, defaults: Partial<Entry> = {}): Config.Config<Entry> => {
  const prefix = constantCase(name)
  const read = Config.all({
    maxConcurrent: text(KEYS.maxConcurrent, defaults.maxConcurrent === undefined),
    maxQueued: text(KEYS.maxQueued, false),
    maxWait: text(KEYS.maxWait, false)
  })
  return Config.map(prefix === "" ? read : Config.nested(read, prefix), (texts) => {
    const seen: Partial<Record<keyof Entry, Source>> = {}
    const source = (option: keyof Entry): Option.Option<string> =>
      Option.map(texts[option], (value) => {
        seen[option] = { key: prefix === "" ? KEYS[option] : `${prefix}_${KEYS[option]}`, text: value }
        return value
      })
    const maxConcurrent = Option.match(source("maxConcurrent"), {
      // Required when there is no default, so present when the default is absent.
      onNone: () => defaults.maxConcurrent ?? NaN,
      onSome: count
    })
    const maxQueued = Option.getOrUndefined(Option.map(source("maxQueued"), count)) ?? defaults.maxQueued
    const maxWait = Option.getOrUndefined(Option.map(source("maxWait"), duration)) ?? defaults.maxWait
    const entry: Entry = {
      maxConcurrent,
      ...(maxQueued === undefined ? {} : { maxQueued }),
      ...(maxWait === undefined ? {} : { maxWait })
    }
    sources.set(entry, seen)
    return entry
  })
}

/**
 * Names the variable of a value read by {@link config} that validation
 * rejected: `Bulkhead "payments" (config PAYMENTS_MAX_CONCURRENT)`, with the
 * text as the value.
 */
const attribute = (entries: registry.Registry.Config, error: InvalidOptionsError): InvalidOptionsError => {
  for (const [name, entry] of Object.entries(entries)) {
    if (error.component !== component(name)) continue
    const source = sources.get(entry)?.[error.option as keyof Entry]
    if (source === undefined) return error
    return new InvalidOptionsError({
      component: `${error.component} (config ${source.key})`,
      option: error.option,
      value: source.text,
      expected: error.expected
    })
  }
  return error
}

/**
 * The `layerConfig` of a bulkhead variant: reads the entries, then builds the
 * registry as its `layer` does.
 *
 * @internal
 */
export const layerConfigWith = <I, A extends Bulkhead, B extends A>(variant: registry.Variant<I, A, B>) =>
(
  config: Config.Config.Wrap<registry.Registry.Config>
): Layer.Layer<I, InvalidOptionsError | ConfigError.ConfigError> =>
  Layer.scoped(
    variant.tag,
    Effect.flatMap(
      Config.unwrap(config),
      (entries) => Effect.mapError(registry.makeWith(variant, entries), (error) => attribute(entries, error))
    )
  )

/** @internal */
export const layerConfig: (
  config: Config.Config.Wrap<registry.Registry.Config>
) => Layer.Layer<registry.Registry, InvalidOptionsError | ConfigError.ConfigError> = layerConfigWith(registry.variant)
