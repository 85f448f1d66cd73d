/**
 * The options of `Idempotency.run`, checked: the per-call ones (scope, partition, key, fingerprint) on every call,
 * the static ones (durations, limits, flags) once, when the HTTP layer prepares a route's.
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import type * as Exit from "effect/Exit"
import type * as Schema from "effect/Schema"
import { hash } from "node:crypto"
import * as Options from "../../internal/options.js"
import type * as Idempotency from "../Idempotency.js"

const component = "Idempotency"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  lease: Duration.seconds(30),
  ttl: Duration.hours(24),
  storeFailures: "terminal",
  maxStoredBytes: 1_048_576
} as const

/** Leases shorter than this would make the heartbeat spin. */
const MIN_LEASE_MS = 10
const MAX_STORED_BYTES = 64 * 1_048_576

// Control characters (C0 and DEL): invisible in logs, and Postgres text cannot hold NUL.
const hasControl = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}
// Printable ASCII, no leading or trailing space: the scope is a metric label value.
const SCOPE = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/

const text = (value: unknown, min: number, max: number): value is string =>
  typeof value === "string" && value.length >= min && value.length <= max && !hasControl(value)

/** @internal */
export const isValidKey = (key: string): boolean => text(key, 1, 255)

/** @internal */
export const keyHash = (key: string): string => hash("sha256", key, "hex").slice(0, 12)

/**
 * What errors and messages name: the scope and a hash of the key, never the key.
 *
 * @internal
 */
export interface Named {
  readonly scope: string
  readonly keyHash: string
}

/**
 * `run`'s options, checked, with the defaults filled in.
 *
 * @internal
 */
export interface Valid<A, AI, E, EI> extends Named {
  readonly partition: string
  readonly key: string
  readonly fingerprint: string
  readonly success: Schema.Schema<A, AI>
  readonly failure: Schema.Schema<E, EI>
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly wait: Duration.Duration | undefined
  readonly storeFailures: "terminal" | "all"
  readonly shouldStore: ((exit: Exit.Exit<A, E>) => boolean) | undefined
  readonly maxStoredBytes: number
  readonly transactional: boolean
}

const check = <T>(ok: boolean, option: string, value: T, expected: string): Options.Check<T> =>
  ok ? Either.right(value) : Either.left(Options.invalid(field(option), value, expected))

const refuse = (option: string, value: unknown, expected: string): Options.Check<never> =>
  Either.left(Options.invalid(field(option), value, expected))

/** The options that do not change from request to request of one route (see {@link prepare}). */
type StaticOptions = Pick<
  Idempotency.Options<unknown, unknown, unknown, unknown>,
  "lease" | "ttl" | "waitForInFlight" | "storeFailures" | "maxStoredBytes" | "transactional"
>

interface Statics {
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly wait: Duration.Duration | undefined
  readonly storeFailures: "terminal" | "all"
  readonly maxStoredBytes: number
}

/**
 * The static options, checked once. Two results, because `shouldStore` (checked per call) sits between them in the
 * order `validate` reports the first invalid option in.
 *
 * @internal
 */
export interface Prepared {
  readonly statics: Options.Check<Statics>
  readonly transactional: Options.Check<boolean>
}

const checkStatics = (options: StaticOptions): Options.Check<Statics> => {
  const lease = Options.duration(field("lease"), options.lease ?? defaults.lease, { allowZero: false })
  if (Either.isLeft(lease)) return Either.left(lease.left)
  if (Duration.toMillis(lease.right) < MIN_LEASE_MS) {
    return Either.left(Options.invalid(field("lease"), options.lease, `a duration of at least ${MIN_LEASE_MS} ms`))
  }
  const ttl = Options.duration(field("ttl"), options.ttl ?? defaults.ttl, { allowZero: false })
  if (Either.isLeft(ttl)) return Either.left(ttl.left)
  const wait = Options.optionalDuration(field("waitForInFlight"), options.waitForInFlight)
  if (Either.isLeft(wait)) return Either.left(wait.left)
  const storeFailures = check(
    options.storeFailures === undefined || options.storeFailures === "terminal" || options.storeFailures === "all",
    "storeFailures",
    options.storeFailures ?? defaults.storeFailures,
    `"terminal" or "all"`
  )
  if (Either.isLeft(storeFailures)) return Either.left(storeFailures.left)
  const maxStoredBytes = Options.number(
    field("maxStoredBytes"),
    options.maxStoredBytes ?? defaults.maxStoredBytes,
    { min: 1, max: MAX_STORED_BYTES, integer: true }
  )
  if (Either.isLeft(maxStoredBytes)) return Either.left(maxStoredBytes.left)
  return Either.right({
    lease: lease.right,
    ttl: ttl.right,
    wait: wait.right,
    storeFailures: storeFailures.right,
    maxStoredBytes: maxStoredBytes.right
  })
}

/**
 * Checks the options that are the same on every call (durations, limits, flags) once, for {@link runPrepared}: the
 * HTTP layer builds `run`'s options per request from one route's configuration.
 *
 * @internal
 */
export const prepare = (options: StaticOptions): Prepared => ({
  statics: checkStatics(options),
  transactional: check(
    options.transactional === undefined || typeof options.transactional === "boolean",
    "transactional",
    options.transactional ?? false,
    "a boolean"
  )
})

/**
 * Checks the per-call options, in the same order (and with the same errors) as when nothing was prepared.
 *
 * @internal
 */
export const validateWith = <A, AI, E, EI>(
  prepared: Prepared,
  options: Idempotency.Options<A, AI, E, EI>
): Options.Check<Valid<A, AI, E, EI>> => {
  if (!(typeof options.scope === "string" && SCOPE.test(options.scope))) {
    return refuse(
      "scope",
      options.scope,
      "1 to 128 printable ASCII characters, without leading or trailing spaces"
    )
  }
  const scope = options.scope
  const partition = options.partition ?? ""
  if (!text(partition, 0, 255)) {
    return refuse("partition", partition, "at most 255 characters, without control characters")
  }
  const key = options.key
  if (!isValidKey(key)) return refuse("key", key, "1 to 255 characters, without control characters")
  const fingerprint = options.fingerprint
  if (!text(fingerprint, 1, 512)) {
    return refuse("fingerprint", fingerprint, "1 to 512 characters, without control characters")
  }
  if (Either.isLeft(prepared.statics)) return Either.left(prepared.statics.left)
  const shouldStore = options.shouldStore
  if (!(shouldStore === undefined || typeof shouldStore === "function")) {
    return refuse("shouldStore", shouldStore, "a function")
  }
  if (Either.isLeft(prepared.transactional)) return Either.left(prepared.transactional.left)
  const statics = prepared.statics.right
  // The hash is only needed by errors, messages and log annotations: computed on first use, at most once.
  let hashed: string | undefined
  return Either.right({
    scope,
    partition,
    key,
    get keyHash() {
      if (hashed === undefined) hashed = keyHash(key)
      return hashed
    },
    fingerprint,
    success: options.success,
    failure: options.failure,
    lease: statics.lease,
    ttl: statics.ttl,
    wait: statics.wait,
    storeFailures: statics.storeFailures,
    shouldStore,
    maxStoredBytes: statics.maxStoredBytes,
    transactional: prepared.transactional.right
  })
}

/** @internal */
export const validate = <A, AI, E, EI>(
  options: Idempotency.Options<A, AI, E, EI>
): Options.Check<Valid<A, AI, E, EI>> => validateWith(prepare(options), options)
