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
 * **Redis Cluster.** Pass an ioredis `Cluster` as `client`, or let the cache
 * make one with `cluster: { nodes, options }`. Each call reads or writes one
 * key (a read is `GET` and `PTTL` of that key in one pipeline), so it goes to
 * one node and a `CROSSSLOT` cannot happen. A node or the cluster being down
 * is an outage: the cache steps aside as above. A **single-node client
 * pointed at a cluster node** is a configuration error: `make` fails with
 * `InvalidOptionsError` when the node answers at startup with
 * `cluster_enabled:1`; otherwise each redirected call (`MOVED`, `ASK`) steps
 * aside to the store, is counted in
 * `bulwark_redis_config_errors_total{component="idempotency_cache"}` and
 * logged at error level at most every 10 seconds (the breaker is left alone).
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis"
import type { InvalidOptionsError } from "../Failure.js"
import type { IdempotencyStore, Service } from "./IdempotencyStore.js"
import * as internal from "./internal/redisCache.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /**
   * An ioredis client to use, single-node or `Cluster`; the cache leaves it open. Default: a client made from
   * {@link Options.redis} (or {@link Options.cluster}). Not combined with either.
   */
  readonly client?: Redis | Cluster
  /**
   * Options for the single-node client the cache makes (and closes with its scope). The cache's defaults:
   * `lazyConnect`, no offline queue (calls fail fast while disconnected), one retry per request, `commandTimeout`.
   */
  readonly redis?: RedisOptions
  /**
   * A Redis Cluster for the cache to make (and close with its scope): its seed `nodes` and ioredis' cluster
   * `options`. The cache's defaults: `lazyConnect`, no offline queue, no waiting out `CLUSTERDOWN`
   * (`retryDelayOnClusterDown: 0`), and in `redisOptions` one retry per request and `commandTimeout`.
   */
  readonly cluster?: {
    readonly nodes: ReadonlyArray<ClusterNode>
    readonly options?: ClusterOptions
  }
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
 * until it connects. Invalid options fail with `InvalidOptionsError`, and so
 * does a single-node client whose Redis answers that it is a cluster node.
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
