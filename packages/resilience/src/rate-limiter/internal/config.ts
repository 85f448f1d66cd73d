import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Options from "../../internal/options.js"
import type * as RateLimiter from "../RateLimiter.js"
import type { Spec } from "./algorithms.js"
import { quotaOf } from "./algorithms.js"

const component = "RateLimiter"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  onExceeded: "reject",
  maxWait: Duration.seconds(5),
  maxKeyLength: 256,
  maxKeys: 100_000
} as const

/**
 * Bounds that keep every intermediate value of the algorithms an exact
 * integer in a double (below 2^53, with room for sums of a few of them).
 */
const MAX_UNITS = 1e9
const MAX_WINDOW_MS = 1e10
const MAX_PRODUCT = 1e15
const MAX_LOG_LIMIT = 100_000
const MAX_WAIT_MS = 3_600_000

/**
 * A validated limiter.
 *
 * @internal
 */
export interface Config {
  readonly name: string
  readonly spec: Spec
  /** `name` plus the algorithm's parameters: identifies the state in a store. */
  readonly id: string
  /** The most units free at once (see `quotaOf`): the largest cost. */
  readonly quota: number
  readonly onExceeded: "reject" | "wait"
  /** Whole milliseconds. */
  readonly maxWait: number
  readonly maxKeyLength: number
}

/** @internal */
export const tokenBucket = (options: Omit<RateLimiter.Algorithm.TokenBucket, "_tag">): RateLimiter.Algorithm => ({
  _tag: "TokenBucket",
  ...options
})

/** @internal */
export const fixedWindow = (options: Omit<RateLimiter.Algorithm.FixedWindow, "_tag">): RateLimiter.Algorithm => ({
  _tag: "FixedWindow",
  ...options
})

/** @internal */
export const slidingWindowLog = (
  options: Omit<RateLimiter.Algorithm.SlidingWindowLog, "_tag">
): RateLimiter.Algorithm => ({ _tag: "SlidingWindowLog", ...options })

/** @internal */
export const slidingWindowCounter = (
  options: Omit<RateLimiter.Algorithm.SlidingWindowCounter, "_tag">
): RateLimiter.Algorithm => ({ _tag: "SlidingWindowCounter", ...options })

/** @internal */
export const leakyBucket = (options: Omit<RateLimiter.Algorithm.LeakyBucket, "_tag">): RateLimiter.Algorithm => ({
  _tag: "LeakyBucket",
  ...options
})

/** @internal */
export const gcra = (options: Omit<RateLimiter.Algorithm.Gcra, "_tag">): RateLimiter.Algorithm => ({
  _tag: "Gcra",
  ...options
})

const units = (option: string, value: number, max = MAX_UNITS): Options.Check<number> =>
  Options.number(field(option), value, { min: 1, max, integer: true })

/** @internal */
export const wholeMillis = (
  option: string,
  input: Duration.DurationInput,
  range: { readonly min: number; readonly max: number }
): Options.Check<number> =>
  Either.flatMap(Options.duration(field(option), input, { allowZero: range.min === 0 }), (duration) => {
    const millis = Duration.toMillis(duration)
    return Number.isInteger(millis) && millis >= range.min && millis <= range.max
      ? Either.right(millis)
      : Either.left(
        Options.invalid(field(option), input, `a whole number of milliseconds from ${range.min} to ${range.max}`)
      )
  })

const product = (option: string, value: number, a: number, b: number): Options.Check<number> =>
  a * b <= MAX_PRODUCT
    ? Either.right(value)
    : Either.left(Options.invalid(field(option), value, `small enough that it × the window in ms is at most 10^15`))

const TAGS = new Set(["TokenBucket", "FixedWindow", "SlidingWindowLog", "SlidingWindowCounter", "LeakyBucket", "Gcra"])

/** @internal */
export const validateAlgorithm = (algorithm: RateLimiter.Algorithm): Options.Check<Spec> => {
  if (typeof algorithm !== "object" || algorithm === null || !TAGS.has(algorithm._tag)) {
    return Either.left(
      Options.invalid(field("algorithm"), algorithm, "one of RateLimiter.tokenBucket, fixedWindow, … (an Algorithm)")
    )
  }
  return Either.flatMap(
    Either.all({
      limit: units(
        "algorithm.limit",
        algorithm.limit,
        algorithm._tag === "SlidingWindowLog" ? MAX_LOG_LIMIT : MAX_UNITS
      ),
      window: wholeMillis("algorithm.window", algorithm.window, { min: 1, max: MAX_WINDOW_MS })
    }),
    ({ limit, window }): Options.Check<Spec> => {
      const check = Either.map(product("algorithm.limit", limit, limit, window), () => ({ limit, window }))
      switch (algorithm._tag) {
        case "TokenBucket":
        case "Gcra": {
          const tag = algorithm._tag
          return Either.flatMap(
            check,
            () =>
              Either.flatMap(
                units("algorithm.burst", algorithm.burst ?? limit),
                (burst) =>
                  Either.map(product("algorithm.burst", burst, burst, window), (): Spec => ({
                    _tag: tag,
                    limit,
                    window,
                    burst
                  }))
              )
          )
        }
        case "LeakyBucket":
          return Either.flatMap(
            check,
            () =>
              Either.flatMap(
                units("algorithm.capacity", algorithm.capacity ?? limit),
                (capacity) =>
                  Either.map(product("algorithm.capacity", capacity, capacity, window), (): Spec => ({
                    _tag: "LeakyBucket",
                    limit,
                    window,
                    capacity
                  }))
              )
          )
        case "FixedWindow":
        case "SlidingWindowLog":
        case "SlidingWindowCounter": {
          const tag = algorithm._tag
          return Either.map(check, (): Spec => ({ _tag: tag, limit, window }))
        }
      }
    }
  )
}

/**
 * The algorithm's short name and parameters, e.g. `tb/100/60000/20`.
 *
 * @internal
 */
export const fingerprint = (spec: Spec): string => {
  switch (spec._tag) {
    case "TokenBucket":
      return `tb/${spec.limit}/${spec.window}/${spec.burst}`
    case "FixedWindow":
      return `fw/${spec.limit}/${spec.window}`
    case "SlidingWindowLog":
      return `swl/${spec.limit}/${spec.window}`
    case "SlidingWindowCounter":
      return `swc/${spec.limit}/${spec.window}`
    case "LeakyBucket":
      return `lb/${spec.limit}/${spec.window}/${spec.capacity}`
    case "Gcra":
      return `gcra/${spec.limit}/${spec.window}/${spec.burst}`
  }
}

/** @internal */
export const validate = (options: RateLimiter.RateLimiter.Options): Options.Check<Config> =>
  Either.map(
    Either.all({
      name: Options.name(field("name"), options.name),
      spec: validateAlgorithm(options.algorithm),
      onExceeded: options.onExceeded === undefined || options.onExceeded === "reject" || options.onExceeded === "wait"
        ? Either.right(options.onExceeded ?? defaults.onExceeded)
        : Either.left(Options.invalid(field("onExceeded"), options.onExceeded, `"reject" or "wait"`)),
      maxWait: wholeMillis("maxWait", options.maxWait ?? defaults.maxWait, { min: 0, max: MAX_WAIT_MS }),
      maxKeyLength: Options.number(field("maxKeyLength"), options.maxKeyLength ?? defaults.maxKeyLength, {
        min: 1,
        max: 4096,
        integer: true
      })
    }),
    ({ maxKeyLength, maxWait, name, onExceeded, spec }): Config => ({
      name,
      spec,
      id: `${name}:${fingerprint(spec)}`,
      quota: quotaOf(spec),
      onExceeded,
      maxWait,
      maxKeyLength
    })
  )

/** @internal */
export const validateMaxKeys = (maxKeys: number | undefined): Options.Check<number> =>
  Options.number({ component: "RateLimiter.layerMemory", option: "maxKeys" }, maxKeys ?? defaults.maxKeys, {
    min: 1,
    max: 1e8,
    integer: true
  })
