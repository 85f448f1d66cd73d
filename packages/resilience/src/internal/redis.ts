/**
 * The ioredis client of Bulwark's Redis-backed parts (the rate-limiter store, the idempotency cache): made the same
 * way for both, so that a Redis outage, or a misconfiguration, looks the same to both.
 *
 * A client is a single node (`Redis`) or a Redis Cluster (`Cluster`). Both parts send one key per command (or
 * per script), so every call hashes to one slot and a `CROSSSLOT` cannot happen by construction; a Cluster client
 * follows `MOVED` / `ASK` redirections itself. Such an answer reaching a part therefore means a single-node client
 * was pointed at a cluster node: a configuration error, not an outage (see {@link isMisconfiguration}).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { identity } from "effect/Function"
import type * as Scope from "effect/Scope"
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import { createHash } from "node:crypto"
import type { InvalidOptionsError } from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Metric from "./metric.js"
import * as Options from "./options.js"

/** A single node or a Redis Cluster. */
export type Client = Redis | Cluster

/** A cluster the part makes itself: its seed nodes and ioredis' cluster options. */
export interface ClusterConfig {
  readonly nodes: ReadonlyArray<ClusterNode>
  readonly options?: ClusterOptions | undefined
}

/** How a part reaches Redis: at most one of the three (none: a client made from `{}`, i.e. 127.0.0.1:6379). */
export interface Connection {
  readonly client?: Client | undefined
  readonly redis?: RedisOptions | undefined
  readonly cluster?: ClusterConfig | undefined
}

/** ioredis' own flag (`instanceof` would miss a client from a second copy of ioredis). */
export const isCluster = (client: Client): client is Cluster => client.isCluster

/** An error's message, or the value as text. */
export const messageOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : String(cause)

/** A Lua script and its SHA-1, for `EVALSHA` (with `EVAL` when Redis has lost it: see {@link isNoScript}). */
export interface Script {
  readonly lua: string
  readonly sha: string
}

/** The script with its SHA-1. */
export const script = (lua: string): Script => ({ lua, sha: createHash("sha1").update(lua).digest("hex") })

/** Redis no longer has the script (after `SCRIPT FLUSH`, a restart or a failover): send it whole with `EVAL`. */
export const isNoScript = (error: unknown): boolean => messageOf(error).startsWith("NOSCRIPT")

/**
 * Redis answered with a cluster redirection or a cross-slot refusal. A Cluster client handles `MOVED` / `ASK`
 * itself (after too many it reports "Too many Cluster redirections", an outage), and every command here uses one
 * key: so this answer means a single-node client talks to a cluster node.
 */
export const isMisconfiguration = (cause: unknown): boolean => {
  const message = messageOf(cause)
  return message.startsWith("MOVED ") || message.startsWith("ASK ") || message.startsWith("CROSSSLOT")
}

/** `client`, `redis` and `cluster` exclude each other; `cluster.nodes` names at least one node. */
export const validateConnection = (component: string, connection: Connection): Options.Check<void> => {
  const given = (["client", "redis", "cluster"] as const).filter((option) => connection[option] !== undefined)
  const [first, second] = given
  if (first !== undefined && second !== undefined) {
    return Either.left(
      Options.invalid({ component, option: second }, `both "${first}" and "${second}"`, `not combined with "${first}"`)
    )
  }
  const cluster = connection.cluster
  if (cluster !== undefined && (!Array.isArray(cluster.nodes) || cluster.nodes.length === 0)) {
    return Either.left(
      Options.invalid({ component, option: "cluster.nodes" }, cluster.nodes, "a non-empty array of cluster nodes")
    )
  }
  return Either.right(undefined)
}

/** Reports the misconfiguration metric for one part; `component` is a closed label value (see `Metrics.ts`). */
const misconfigurationCounter = (component: "rate_limiter" | "idempotency_cache"): () => void =>
  Metric.counter(Metrics.redisConfigErrors, { component })

/** What the log says about a misconfiguration, for the part named `what`. */
const misconfigurationMessage = (what: string, detail: string): string =>
  `${what}: Redis answered "${detail}": the client is a single-node client pointed at a Redis Cluster node; ` +
  `pass an ioredis Cluster as "client" or use the "cluster" option`

/**
 * A single-node client talking to a cluster node, found before the first call: `INFO cluster` says
 * `cluster_enabled:1`. `None` when it says otherwise, the client is a Cluster, or Redis does not answer within
 * `timeoutMs` (then `isMisconfiguration` catches the first redirected call instead).
 */
const clusterNodeBehindSingleClient = (
  client: Client,
  timeoutMs: number
): Effect.Effect<string | undefined> =>
  isCluster(client) ? Effect.succeed(undefined) : Effect.tryPromise(() => client.info("cluster")).pipe(
    Effect.timeout(timeoutMs),
    Effect.map((info) =>
      /^cluster_enabled:1\s*$/m.test(info)
        ? `${client.options.host ?? "127.0.0.1"}:${client.options.port ?? 6379} has cluster_enabled:1`
        : undefined
    ),
    Effect.orElseSucceed(() => undefined)
  )

/**
 * Loads scripts up front where Redis is there: on every master of a cluster (each node keeps its own script
 * cache). Best effort: `EVALSHA` falls back to `EVAL` (per node, on the key's node) after a flush or failover.
 */
export const loadScripts = (client: Client, scripts: ReadonlyArray<string>): Effect.Effect<void> =>
  Effect.forEach(
    isCluster(client) ? client.nodes("master") : [client],
    (node) => Effect.forEach(scripts, (lua) => Effect.tryPromise(() => node.script("LOAD", lua)), { discard: true }),
    { discard: true, concurrency: "unbounded" }
  ).pipe(Effect.ignore)

const singleClient = (redis: RedisOptions | undefined, commandTimeoutMs: number): Redis =>
  new Redis({
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: Math.max(commandTimeoutMs, 1_000),
    ...redis
  })

/**
 * The same fail-fast stance for a cluster: no offline queue (a call while the cluster is not ready fails at once),
 * no waiting out a `CLUSTERDOWN` (the failure policy decides during an outage), and each node's commands bounded
 * by the command timeout. Redirections (`MOVED` / `ASK`, during resharding or a failover) are still followed.
 */
const clusterClient = (cluster: ClusterConfig, commandTimeoutMs: number): Cluster =>
  new Cluster([...cluster.nodes], {
    lazyConnect: true,
    enableOfflineQueue: false,
    retryDelayOnClusterDown: 0,
    ...cluster.options,
    redisOptions: {
      maxRetriesPerRequest: 1,
      commandTimeout: commandTimeoutMs,
      connectTimeout: Math.max(commandTimeoutMs, 1_000),
      ...cluster.options?.redisOptions
    }
  })

/**
 * The caller's client (left alone), or one made for the scope and closed with it: lazily connected, failing fast
 * while disconnected (no offline queue, one retry per request) so the caller's own failure policy takes over at once.
 * A failed (or, past the connect timeout, pending) first connection is logged with `unreachable`'s text; ioredis
 * keeps connecting.
 */
export const acquireClient = (
  options: Connection & {
    readonly commandTimeoutMs: number
    readonly unreachable: (message: string) => string
  }
): Effect.Effect<Client, never, Scope.Scope> => {
  const given = options.client
  if (given !== undefined) return Effect.succeed(given)
  return Effect.acquireRelease(
    Effect.sync((): Client => {
      const client = options.cluster === undefined
        ? singleClient(options.redis, options.commandTimeoutMs)
        : clusterClient(options.cluster, options.commandTimeoutMs)
      // Connection errors surface through the calls (counted, logged, breaker); keep ioredis from printing them.
      client.on("error", () => undefined)
      return client
    }),
    (client) => Effect.promise(() => client.quit().then(() => undefined, () => client.disconnect()))
  ).pipe(
    Effect.tap((client) =>
      // The client's own error, not Effect's UnknownException wrapper: its message goes into the log line.
      Effect.tryPromise({ try: () => client.connect(), catch: identity }).pipe(
        // A cluster that answers but is down (`cluster_state:fail`) keeps `connect` pending until it is ok again;
        // a single node's `connect` settles within its connect timeout.
        isCluster(client)
          ? Effect.timeoutFail({
            duration: Math.max(2 * options.commandTimeoutMs, 2_000),
            onTimeout: () => new Error("the cluster is not ready")
          })
          : identity,
        Effect.catchAll((cause) => Effect.logWarning(options.unreachable(messageOf(cause))))
      )
    )
  )
}

/** Fails `make` with the misconfiguration found at startup (see {@link clusterNodeBehindSingleClient}). */
const misconfiguredAtStartup = (
  component: string,
  connection: Connection,
  detail: string
): InvalidOptionsError =>
  Options.invalid(
    { component, option: connection.client !== undefined ? "client" : "redis" },
    detail,
    `an ioredis Cluster (or the "cluster" option) for a Redis Cluster node`
  )

/** Misconfigurations are logged at most this often (each one is counted). */
const LOG_MISCONFIGURATION_EVERY_MS = 10_000

/**
 * How one Redis part (the limiter store, the idempotency cache) meets a single-node client pointed at a cluster node:
 * the same check, metric and log line for both.
 */
export interface Misconfiguration {
  /** Before the first call: counted, logged at error level, and `make` fails with `InvalidOptionsError`. */
  readonly checkAtStartup: (client: Client, timeoutMs: number) => Effect.Effect<void, InvalidOptionsError>
  /**
   * A redirected answer at run time: counted, and logged at error level at most every 10 seconds with how many came
   * since the last line (`countAnnotation`); `consequence` says what the part does about it.
   */
  readonly report: (
    cause: unknown,
    consequence: string,
    annotations: Readonly<Record<string, unknown>>
  ) => Effect.Effect<void>
}

/** The {@link Misconfiguration} of the part named `what` (its options component `component`, metric `label`). */
export const misconfiguration = (options: {
  readonly what: string
  readonly component: string
  readonly label: "rate_limiter" | "idempotency_cache"
  readonly connection: Connection
  readonly countAnnotation: string
}): Misconfiguration => {
  const count = misconfigurationCounter(options.label)
  let since = 0
  let loggedAt = -Infinity
  return {
    checkAtStartup: (client, timeoutMs) =>
      Effect.flatMap(clusterNodeBehindSingleClient(client, timeoutMs), (clusterNode) => {
        if (clusterNode === undefined) return Effect.void
        count()
        return Effect.zipRight(
          Effect.logError(misconfigurationMessage(options.what, clusterNode)),
          Effect.fail(misconfiguredAtStartup(options.component, options.connection, clusterNode))
        )
      }),
    report: (cause, consequence, annotations) =>
      Effect.clockWith((clock) => {
        count()
        since++
        const now = clock.unsafeCurrentTimeMillis()
        if (now - loggedAt < LOG_MISCONFIGURATION_EVERY_MS) return Effect.void
        loggedAt = now
        const reported = since
        since = 0
        return Effect.logError(`${misconfigurationMessage(options.what, messageOf(cause))}; ${consequence}`).pipe(
          Effect.annotateLogs({ ...annotations, [options.countAnnotation]: reported })
        )
      })
  }
}
