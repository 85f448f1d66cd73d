/**
 * A Redis read-through cache of **completed** idempotency records, in front of
 * another store (the PostgreSQL one), which stays the source of truth.
 *
 * - A claim first looks in Redis. A cached record with the same fingerprint is
 *   replayed without touching the store; one with another fingerprint is a
 *   mismatch. Anything else goes to the store.
 * - Only completed records are cached: they are immutable until they expire,
 *   and each is cached for at most its remaining life (minus a second of
 *   slack), so Redis can never answer with a record the store no longer has.
 *   In-progress, released and expired records are never cached.
 * - A record is cached when the store answers a claim with it, and when a
 *   completion is written (a fenced completion that was refused is not).
 * - When Redis fails (refused, timed out, unexpected reply), the cache steps
 *   aside: the store answers. Failures are counted by the cache's circuit
 *   breaker (`bulwark_circuit_breaker_calls_total{breaker="idempotency.redis",
 *   outcome="failure"|"rejected"}`) and logged at warning level at most every
 *   10 seconds; while the breaker is open, Redis is skipped altogether.
 *
 * Keys are `prefix + sha256(scope, partition, key)`: client keys never
 * appear in Redis key names.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Redis, RedisOptions } from "ioredis"
import type { InvalidOptionsError } from "../Failure.js"
import type { IdempotencyStore, Service } from "./IdempotencyStore.js"
import * as internal from "./internal/redisCache.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** An ioredis client to use; the cache leaves it open. Default: a client made from {@link Options.redis}. */
  readonly client?: Redis
  /**
   * Options for the client the cache makes (and closes with its scope). The cache's defaults: `lazyConnect`, no
   * offline queue (calls fail fast while disconnected), one retry per request, `commandTimeout`.
   */
  readonly redis?: RedisOptions
  /** Prepended to every key. Default `"bulwark:idem:"`. */
  readonly prefix?: string
  /** The longest a record stays cached (never past its own expiry). Default 1 hour. */
  readonly ttl?: Duration.DurationInput
  /** For a client the cache makes: how long a call may take. Default 500 milliseconds. */
  readonly commandTimeout?: Duration.DurationInput
  /** The breaker guarding Redis. Defaults: name `"idempotency.redis"`, 5 consecutive failures, open 5 seconds. */
  readonly circuitBreaker?: {
    readonly name?: string
    readonly failures?: number
    readonly openDuration?: Duration.DurationInput
  }
}

/**
 * Wraps a store with the cache, in a scope (a client the cache made is closed
 * with it). Redis being down at startup is not an error: the store answers
 * until it connects.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  store: Service,
  options?: Options
) => Effect.Effect<Service, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * The cache as a layer over the `IdempotencyStore` it is given.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import * as RedisIdempotencyCache from "@bulwark/resilience/RedisIdempotencyCache"
 * import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
 *
 * const Pg = PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") })
 * const Store = RedisIdempotencyCache.layer({ redis: { host: "127.0.0.1", port: 6379 } }).pipe(
 *   Layer.provide(SqlIdempotencyStore.layer()),
 *   Layer.provide(Pg)
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (options?: Options) => Layer.Layer<IdempotencyStore, InvalidOptionsError, IdempotencyStore> =
  internal.layer
