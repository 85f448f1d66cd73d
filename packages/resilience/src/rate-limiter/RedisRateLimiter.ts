/**
 * A Redis store for `RateLimiter`: one limit shared by every process.
 *
 * Each decision is one atomic Lua script (`EVALSHA`) running the same
 * algorithm, formula for formula, as the in-memory store, on **Redis server
 * time** (`TIME`), so application hosts with skewed clocks still agree.
 * Keys are `prefix + name + ":" + algorithm parameters + ":" + key` and expire
 * once their state no longer matters.
 *
 * When Redis fails (refused, timed out, unexpected reply), the store does not
 * fail the call: its **failure policy** decides, `"fail-open"` (allow,
 * the default: a limiter should not take the service down with it) or
 * `"fail-closed"` (refuse with `RateLimitedError`, reason `"StoreUnavailable"`).
 * A circuit breaker guards Redis: after `failures` consecutive failures it
 * opens and calls skip Redis for `openDuration`, then one probe call tests it.
 * Failures are counted by the breaker's metrics
 * (`bulwark_circuit_breaker_calls_total{breaker, outcome="failure"|"rejected"}`)
 * and logged at warning level at most every 10 seconds; decisions made by the
 * policy carry `degraded: true`. While Redis answers, calls bypass the
 * breaker's bookkeeping (a run of successes counts as one for a
 * consecutive-failure breaker), so its `success` count is not a call count.
 *
 * Commands issued in the same tick leave in a few socket writes rather than
 * one each (the store corks the client's socket, and flushes it every 16
 * commands and at the end of the tick), while each reply settles its own call
 * as soon as it arrives; this applies to a single-node client passed in too.
 * On a Redis Cluster, where ioredis picks each command's node, the store does
 * the same per node: from a tick's second command on, every ready master's
 * socket is corked, flushed every 16 commands per node and at the end of the
 * tick.
 *
 * **Redis Cluster.** Pass an ioredis `Cluster` as `client`, or let the store
 * make one with `cluster: { nodes, options }`. Every script takes exactly one
 * key, so each decision runs on the one node owning that key's slot and a
 * `CROSSSLOT` cannot happen by construction; `EVALSHA` falls back to `EVAL` on
 * the key's node when that node lacks the script. A node or the cluster being
 * down (`CLUSTERDOWN`, refused connections) is an outage: the failure policy
 * decides, behind the breaker. A **single-node client pointed at a cluster
 * node** is a configuration error, never a silent fail-open: `make` fails with
 * `InvalidOptionsError` when the node answers at startup with
 * `cluster_enabled:1`, and otherwise every call the node redirects (`MOVED`,
 * `ASK`) is refused with `StoreUnavailable` whatever `onFailure` says, counted
 * in `bulwark_redis_config_errors_total{component="rate_limiter"}` and logged
 * at error level at most every 10 seconds.
 * A waiter interrupted before its slot gives the slot back with a refund
 * script, where the algorithm allows it; if Redis cannot be reached the slot
 * stays taken.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis"
import type { InvalidOptionsError } from "../Failure.js"
import * as internal from "./internal/redisStore.js"
import type { RateLimiterStore, Store } from "./RateLimiter.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /**
   * An ioredis client to use, single-node or `Cluster`; the store leaves it
   * open. Default: a client made from {@link Options.redis} (or
   * {@link Options.cluster}). Not combined with either.
   */
  readonly client?: Redis | Cluster
  /**
   * Options for the single-node client the store makes (and closes with its
   * scope). The store's defaults: `lazyConnect`, no offline queue (calls fail
   * fast while disconnected), one retry per request, `commandTimeout`.
   */
  readonly redis?: RedisOptions
  /**
   * A Redis Cluster for the store to make (and close with its scope): its
   * seed `nodes` and ioredis' cluster `options`. The store's defaults:
   * `lazyConnect`, no offline queue, no waiting out `CLUSTERDOWN`
   * (`retryDelayOnClusterDown: 0`), and in `redisOptions` one retry per
   * request and `commandTimeout`.
   */
  readonly cluster?: {
    readonly nodes: ReadonlyArray<ClusterNode>
    readonly options?: ClusterOptions
  }
  /** Prepended to every key. Default `"bulwark:rl:"`. */
  readonly prefix?: string
  /** What to decide when Redis cannot. Default `"fail-open"`. */
  readonly onFailure?: "fail-open" | "fail-closed"
  /**
   * `"redis"` (the default) reads Redis server time inside the script;
   * `"local"` sends the Effect `Clock`'s time instead, for tests under
   * `TestClock` or hosts whose clocks are known to agree.
   */
  readonly clock?: "redis" | "local"
  /** For a client the store makes: how long a call may take. Default 1 second. */
  readonly commandTimeout?: Duration.DurationInput
  /** The breaker guarding Redis. Defaults: name `"rate-limiter.redis"`, 5 consecutive failures, open 5 seconds. */
  readonly circuitBreaker?: {
    readonly name?: string
    readonly failures?: number
    readonly openDuration?: Duration.DurationInput
  }
}

/**
 * Makes a Redis store in a scope (a client it made is closed with it).
 * Redis being down at startup is not an error: the failure policy decides
 * until it connects. Invalid options fail with `InvalidOptionsError`, and so
 * does a single-node client whose Redis answers that it is a cluster node.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options?: Options) => Effect.Effect<Store, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * The Redis store as a layer for `RateLimiter.make`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 * import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
 *
 * const program = Effect.gen(function*() {
 *   const limiter = yield* RateLimiter.make({
 *     name: "api",
 *     algorithm: RateLimiter.gcra({ limit: 100, window: "1 minute", burst: 20 })
 *   })
 *   return yield* limiter.consume("api-key-123")
 * }).pipe(
 *   Effect.provide(RedisRateLimiter.layer({ redis: { host: "127.0.0.1", port: 6379 }, onFailure: "fail-closed" }))
 * )
 * ```
 *
 * @example
 * ```ts
 * // On a Redis Cluster: the store makes the ioredis Cluster from its seed nodes.
 * import { Effect } from "effect"
 * import { RateLimiter } from "@bulwark/resilience"
 * import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
 *
 * const ClusterStore = RedisRateLimiter.layer({
 *   cluster: { nodes: [{ host: "10.0.0.1", port: 6379 }, { host: "10.0.0.2", port: 6379 }] },
 *   onFailure: "fail-open"
 * })
 * const program = Effect.flatMap(
 *   RateLimiter.make({ name: "api", algorithm: RateLimiter.tokenBucket({ limit: 100, window: "1 minute" }) }),
 *   (limiter) => limiter.consume("api-key-123")
 * ).pipe(Effect.provide(ClusterStore))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (options?: Options) => Layer.Layer<RateLimiterStore, InvalidOptionsError> = internal.layer
