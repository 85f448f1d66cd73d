/**
 * A circuit breaker shared by a fleet of instances through Redis: when one
 * instance opens it, every instance treats it as open; in half-open, the
 * fleet lets `halfOpen.permits` probe calls through **in total**, not per
 * instance. Opt-in; the result is a plain `CircuitBreaker` (`protect`,
 * events, metrics, logs and the registry work as for a local breaker).
 *
 * ```text
 *   instance A trips ──open (Lua: state + PUBLISH)──▶ Redis ──message──▶ B, C: Open until the same deadline
 *   deadline passed: each call asks for a probe permit ──▶ at most N granted per round, fleet-wide
 *   probes report ──▶ closeAfter successes: closed for all │ a failure: reopened for all
 * ```
 *
 * - **Closed costs what a local breaker costs.** Each instance counts its
 *   own failures with its own trip strategies; no Redis command is sent per
 *   call. Only transitions and half-open calls talk to Redis.
 * - **Propagation.** Opening writes the fleet's state and publishes it in one
 *   script; instances subscribed on a connection of their own apply it at once
 *   (about a millisecond on loopback). A lost message is caught by a read of
 *   the state every `syncInterval`, after every (re)subscription and whenever
 *   the local breaker half-opens. Every state carries a generation; older
 *   answers and messages are ignored.
 * - **Time** is Redis server time: the open deadline is the same for every
 *   instance whatever its clock.
 * - **Half-open across the fleet.** Once the deadline has passed, a call needs
 *   one of the round's `halfOpen.permits` permits; an instance refused one
 *   refuses its calls (`CircuitOpenError`, state `HalfOpen`) without asking
 *   again for up to `syncInterval`. Probe outcomes are counted in Redis with
 *   the local rule (`closeAfter` successes close the fleet; a failure, or
 *   `failureRateThreshold`, reopens it for the open duration of the instance
 *   whose probe decided). A round that has not decided within `probeTimeout`
 *   (its probes died with their instance) starts again with fresh permits.
 * - **Losing Redis.** An instance whose commands fail decides alone with its
 *   local breaker (same options, local half-open rules), logs one warning per
 *   outage (at most one every 10 seconds) and sets
 *   `bulwark_circuit_breaker_shared_store_up{breaker}` to 0. When Redis
 *   answers again (the periodic read notices), an opening it made alone is
 *   shared, then it follows the fleet again.
 * - Operator controls (`isolate`, `close`, `disable`, `metricsOnly`, `reset`)
 *   act on this instance only, and the fleet's messages never override them.
 *
 * Keys: `<prefix>{<name>}:state` (a hash: generation, state, deadline, probe
 * counts; kept a day after its last write), channel `<prefix>{<name>}:events`.
 * One hash tag per breaker: Redis Cluster keeps its keys in one slot, so its
 * scripts run on the node owning that slot, and their `PUBLISH` reaches the
 * instances' pub/sub connections (a `duplicate()` of the Cluster, listening on
 * one node, subscribed again after that node returns) through the cluster bus.
 * While the breaker's node is down (or the cluster is, `CLUSTERDOWN`), every
 * instance decides alone, as when Redis is lost.
 *
 * @since 0.1.0
 */
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Cluster, ClusterNode, ClusterOptions, Redis, RedisOptions } from "ioredis"
import type { InvalidOptionsError } from "../Failure.js"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import * as internal from "./internal/redisFleet.js"

/**
 * How to reach Redis: at most one of `client`, `redis`, `cluster` (none: a
 * client for 127.0.0.1:6379). The breaker opens one more connection, for
 * pub/sub (`client.duplicate()`), and closes it with its scope.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ConnectionOptions {
  /**
   * An ioredis client to use, single-node or `Cluster`; it is left open.
   * Default: a client made from {@link ConnectionOptions.redis} (or
   * {@link ConnectionOptions.cluster}).
   */
  readonly client?: Redis | Cluster
  /**
   * Options for the single-node client the breaker makes. Its defaults:
   * `lazyConnect`, no offline queue (commands fail fast while disconnected, so
   * the breaker falls back to deciding alone at once), one retry per request,
   * `commandTimeout`.
   */
  readonly redis?: RedisOptions
  /**
   * A Redis Cluster for the breaker to make: its seed `nodes` and ioredis'
   * cluster `options` (with the same fail-fast defaults). Every script of a
   * breaker touches one key, in one slot (see the keys above).
   */
  readonly cluster?: {
    readonly nodes: ReadonlyArray<ClusterNode>
    readonly options?: ClusterOptions
  }
}

/**
 * How the state is shared.
 *
 * @since 0.1.0
 * @category Models
 */
export interface SharingOptions extends ConnectionOptions {
  /** Prepended to every key and channel: at most 128 characters, no `{` or `}`. Default `"bulwark:cb:"`. */
  readonly prefix?: string
  /**
   * How often each instance reads the fleet's state, whatever the messages
   * said: the longest a lost message can go unnoticed, and how soon a return
   * of Redis is noticed. Default: 1 second.
   */
  readonly syncInterval?: Duration.DurationInput
  /**
   * How long a half-open round's probe permits stay taken when the round has
   * not decided (its probes were lost with their instance); then a new round
   * starts. Default: 30 seconds.
   */
  readonly probeTimeout?: Duration.DurationInput
  /** For a client the breaker makes: how long a command may take. Default: 1 second. */
  readonly commandTimeout?: Duration.DurationInput
}

/**
 * The options of {@link make}: those of `CircuitBreaker.make` (each instance
 * should be given the same), and how to share.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options<in E = unknown, in A = unknown> extends CircuitBreaker.Options<E, A>, SharingOptions {}

/**
 * The configuration of {@link layer}: the registry's breakers, all shared
 * through one client and one pub/sub connection.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RegistryConfig extends CircuitBreaker.RegistryConfig, SharingOptions {}

/**
 * Makes a shared breaker in a scope: its timer, its subscription and its
 * reader run in the scope, and a client it made is closed with it. It starts
 * in the fleet's state when Redis answers; Redis being down at startup is not
 * an error (it decides alone until Redis answers). Invalid options fail with
 * `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 * import * as RedisCircuitBreaker from "@bulwark/resilience/RedisCircuitBreaker"
 *
 * declare const chargeCard: Effect.Effect<string, Error>
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const breaker = yield* RedisCircuitBreaker.make({
 *     name: "payments",
 *     trip: CircuitBreaker.consecutiveFailures(5),
 *     openDuration: "30 seconds",
 *     halfOpen: { permits: 2, closeAfter: 2 }, // 2 probes across the whole fleet
 *     redis: { host: "127.0.0.1", port: 6379 }
 *   })
 *   return yield* chargeCard.pipe(CircuitBreaker.protect(breaker))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <E = unknown, A = unknown>(
  options: Options<E, A>
) => Effect.Effect<CircuitBreaker.CircuitBreaker<E, A>, InvalidOptionsError, Scope.Scope> = internal.make

/**
 * A `CircuitBreaker.Registry` whose breakers are shared, all through one
 * client and one pub/sub connection; `CircuitBreaker.named` reads it.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { CircuitBreaker } from "@bulwark/resilience"
 * import * as RedisCircuitBreaker from "@bulwark/resilience/RedisCircuitBreaker"
 *
 * const Breakers = RedisCircuitBreaker.layer({
 *   redis: { host: "127.0.0.1", port: 6379 },
 *   breakers: { payments: { trip: CircuitBreaker.consecutiveFailures(3) } }
 * })
 *
 * const program = Effect.gen(function*() {
 *   const payments = yield* CircuitBreaker.named("payments")
 *   return yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(payments))
 * }).pipe(Effect.provide(Breakers))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (config?: RegistryConfig) => Layer.Layer<CircuitBreaker.Registry, InvalidOptionsError> =
  internal.layer
