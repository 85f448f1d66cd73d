/**
 * The Redis store on a real three-master Redis Cluster started for this file (`../support/redisCluster.ts`): the
 * store contract, where each script's key lands, scripts reloaded per node, a node killed mid-run (the failure
 * policy, then recovery), and a single-node client pointed at a cluster node (a configuration error, never a
 * silent fail-open). Fails, never skips, without redis-server.
 */
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import { Cluster, Redis } from "ioredis"
import { validate } from "../../packages/resilience/src/rate-limiter/internal/config.js"
import { scripts } from "../../packages/resilience/src/rate-limiter/internal/redisStore.js"
import { breakerCalls, captureLogs } from "../support/observe.js"
import * as TestCluster from "../support/redisCluster.js"
import { storeContract } from "./conformance.js"

// The cluster is this file's alone (and removed afterwards), so keys need no cleanup; the prefix keeps tests apart.
const prefix = "bulwark-test:rl-cluster:"
let cluster: TestCluster.TestCluster

beforeAll(async () => {
  cluster = await TestCluster.start()
}, 60_000)

afterAll(() => cluster?.stop())

let counter = 0
const uniqueName = (label: string) => `${label}-${++counter}`

/** The Redis key of `key` for a limiter, as the store names it. */
const redisKeyOf = (keyPrefix: string, name: string, algorithm: RateLimiter.Algorithm, key: string) =>
  Either.match(validate({ name, algorithm }), {
    onLeft: (error) => assert.fail(error.message),
    onRight: (config) => `${keyPrefix}${config.id}:${key}`
  })

/** `count` keys whose state lives on node `node`, by asking the cluster where each candidate hashes. */
const keysOnNode = async (
  node: number,
  count: number,
  toRedisKey: (key: string) => string
): Promise<ReadonlyArray<string>> => {
  const found: Array<string> = []
  for (let i = 0; found.length < count; i++) {
    if (i > 1_000) assert.fail(`no key on node ${node}`)
    if (await cluster.nodeOf(toRedisKey(`k${i}`)) === node) found.push(`k${i}`)
  }
  return found
}

const misconfigurations = Effect.map(
  Metric.value(Metric.tagged(Metrics.redisConfigErrors, "component", "rate_limiter")),
  (state) => state.count
)

/** A Cluster client for a test, closed with its scope. */
const clusterClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Cluster(cluster.nodes.map((node) => ({ ...node })), { lazyConnect: true })
    client.on("error", () => undefined)
    await client.connect()
    return client
  }),
  (client) => Effect.sync(() => client.disconnect())
)

/** A store whose client lives as long as the test's scope (a layer provided to `make` alone closes at once). */
const storeFor = (options: RedisRateLimiter.Options) => Layer.build(RedisRateLimiter.layer(options))

/** Runs `attempt` until `done` holds for its answer (a real cluster changes state in its own time), bounded. */
const eventually = <A, E>(what: string, attempt: Effect.Effect<A, E>, done: (a: A) => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (Date.now() < deadline) {
      const answer = yield* attempt
      if (done(answer)) return answer
      yield* Effect.sleep("50 millis")
    }
    return assert.fail(`never: ${what}`)
  })

// ---------------------------------------------------------------------------
// the shared contract, driven by TestClock through clock: "local"
// ---------------------------------------------------------------------------

storeContract(
  "redis cluster",
  () => RedisRateLimiter.layer({ cluster: { nodes: cluster.nodes }, prefix: `${prefix}contract:`, clock: "local" }),
  { propertyRuns: 50 }
)

// ---------------------------------------------------------------------------
// keys, scripts, a given client
// ---------------------------------------------------------------------------

const everyAlgorithm: ReadonlyArray<RateLimiter.Algorithm> = [
  RateLimiter.tokenBucket({ limit: 5, window: "1 minute" }),
  RateLimiter.fixedWindow({ limit: 5, window: "1 minute" }),
  RateLimiter.slidingWindowLog({ limit: 5, window: "1 minute" }),
  RateLimiter.slidingWindowCounter({ limit: 5, window: "1 minute" }),
  RateLimiter.leakyBucket({ limit: 5, window: "1 minute" }),
  RateLimiter.gcra({ limit: 5, window: "1 minute" })
]

describe("RedisRateLimiter on a Redis Cluster", () => {
  it.scopedLive("keeps each decision's state in one key, on the node owning its slot, spread over every node", () =>
    Effect.gen(function*() {
      const keyPrefix = `${prefix}slots:`
      const store = yield* storeFor({ cluster: { nodes: cluster.nodes }, prefix: keyPrefix })
      const limiters = yield* Effect.forEach(everyAlgorithm, (algorithm) =>
        Effect.map(
          RateLimiter.make({ name: uniqueName("slots"), algorithm }),
          (limiter) => ({ limiter, algorithm })
        )).pipe(Effect.provide(store))
      const keys = Array.from({ length: 12 }, (_, i) => `user-${i}`)
      const expected: Array<string> = []
      for (const { algorithm, limiter } of limiters) {
        for (const key of keys) {
          const decision = yield* limiter.consume(key)
          assert.isFalse(decision.degraded)
          expected.push(redisKeyOf(keyPrefix, limiter.name, algorithm, key))
        }
      }
      // Each node holds exactly the keys whose slot it owns: one key per decision, never split over nodes.
      const perNode = yield* Effect.forEach(
        [0, 1, 2],
        (i) => Effect.promise(() => cluster.node(i).keys(`${keyPrefix}*`))
      )
      assert.deepStrictEqual(perNode.flat().sort(), [...expected].sort())
      for (const [i, held] of perNode.entries()) {
        assert.isAbove(held.length, 0, `node ${i} holds some keys`)
        for (const key of held) assert.strictEqual(yield* Effect.promise(() => cluster.nodeOf(key)), i, key)
      }
    }))

  it.scopedLive("loads its scripts on every node, and reloads them per node after SCRIPT FLUSH (NOSCRIPT → EVAL)", () =>
    Effect.gen(function*() {
      const algorithm = RateLimiter.tokenBucket({ limit: 3, window: "1 minute" })
      const keyPrefix = `${prefix}noscript:`
      const store = yield* storeFor({ cluster: { nodes: cluster.nodes }, prefix: keyPrefix })
      const limiter = yield* RateLimiter.make({ name: uniqueName("noscript"), algorithm }).pipe(Effect.provide(store))
      const sha = scripts.redis.TokenBucket.decide.sha
      const loaded = () =>
        Effect.forEach(
          [0, 1, 2],
          (i) => Effect.promise((): Promise<unknown> => cluster.node(i).call("SCRIPT", "EXISTS", sha))
        )
      assert.deepStrictEqual(yield* loaded(), [[1], [1], [1]], "loaded on every master at startup")
      yield* Effect.forEach([0, 1, 2], (i) => Effect.promise(() => cluster.node(i).script("FLUSH")))
      assert.deepStrictEqual(yield* loaded(), [[0], [0], [0]])
      // One key per node: each node answers NOSCRIPT once and gets the script through EVAL.
      for (const node of [0, 1, 2]) {
        const [key] = yield* Effect.promise(() =>
          keysOnNode(node, 1, (k) => redisKeyOf(keyPrefix, limiter.name, algorithm, k))
        )
        const first = yield* limiter.consume(key ?? "")
        const second = yield* limiter.consume(key ?? "")
        assert.isFalse(first.degraded || second.degraded)
        assert.deepStrictEqual([first.remaining, second.remaining], [2, 1])
      }
      assert.deepStrictEqual(yield* loaded(), [[1], [1], [1]], "EVAL cached the script on each node")
    }))

  it.scopedLive("takes a Cluster client, decides concurrent calls exactly, and leaves the client open", () =>
    Effect.gen(function*() {
      const client = yield* clusterClient
      yield* Effect.scoped(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: uniqueName("given"),
          algorithm: RateLimiter.fixedWindow({ limit: 30, window: "1 minute" })
        }).pipe(Effect.provide(yield* storeFor({ client, prefix: `${prefix}given:` })))
        // Many calls in one tick over three nodes (a single-node client would cork its socket here).
        const keys = ["a", "b", "c", "d"]
        const decisions = yield* Effect.all(
          keys.flatMap((key) =>
            Array.from({ length: 40 }, () => Effect.map(limiter.tryConsume(key), (d) => [key, d] as const))
          ),
          { concurrency: "unbounded" }
        )
        for (const key of keys) {
          const mine = decisions.filter(([k]) => k === key).map(([, d]) => d)
          assert.strictEqual(mine.filter((d) => d.outcome === "allowed").length, 30, key)
          assert.isTrue(mine.every((d) => !d.degraded), key)
        }
      }))
      assert.strictEqual(client.status, "ready")
      assert.strictEqual(yield* Effect.promise(() => client.ping()), "PONG")
    }))

  it.effect("rejects combined connection options with InvalidOptionsError", () =>
    Effect.gen(function*() {
      const bad = (options: RedisRateLimiter.Options) =>
        Effect.flip(Layer.build(RedisRateLimiter.layer(options))).pipe(Effect.scoped)
      const both = yield* bad({ redis: { port: 1 }, cluster: { nodes: [{ port: 2 }] } })
      assert.strictEqual(both.option, "cluster")
      assert.include(both.message, `not combined with "redis"`)
      assert.strictEqual((yield* bad({ cluster: { nodes: [] } })).option, "cluster.nodes")
    }))
})

// ---------------------------------------------------------------------------
// a single-node client pointed at a cluster node
// ---------------------------------------------------------------------------

describe("RedisRateLimiter with a single-node client on a cluster node", () => {
  it.scopedLive("fails to start when the node says cluster_enabled:1: InvalidOptionsError, logged and counted", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const before = yield* misconfigurations
      const node = cluster.nodes[0] ?? assert.fail("no node")
      const made = yield* Effect.flip(
        Layer.build(RedisRateLimiter.layer({ redis: node, prefix: `${prefix}single:` })).pipe(
          Effect.provide(logs.layer)
        )
      )
      assert.strictEqual(made._tag, "InvalidOptionsError")
      assert.strictEqual(made.option, "redis")
      assert.include(made.message, "cluster_enabled:1")
      assert.include(made.message, "Cluster")
      const given = new Redis({ ...node, lazyConnect: true })
      yield* Effect.addFinalizer(() => Effect.sync(() => given.disconnect()))
      const passed = yield* Effect.flip(
        Layer.build(RedisRateLimiter.layer({ client: given })).pipe(
          Effect.provide(logs.layer)
        )
      )
      assert.strictEqual(passed.option, "client")
      assert.strictEqual((yield* misconfigurations) - before, 2)
      const errors = logs.lines.filter((line) => line.startsWith("ERROR"))
      assert.strictEqual(errors.length, 2, logs.lines.join("\n"))
      assert.include(errors[0] ?? "", "single-node client pointed at a Redis Cluster node")
    }))

  it.scopedLive("refuses the calls the node redirects (MOVED) whatever the policy, logs once at error, counts each", () =>
    Effect.gen(function*() {
      const node = cluster.nodes[0] ?? assert.fail("no node")
      // A managed Redis may refuse INFO (renamed or disabled): then only the first redirected call can tell.
      const client = new Redis({ ...node, lazyConnect: true })
      yield* Effect.acquireRelease(Effect.promise(() => client.connect()), () => Effect.sync(() => client.disconnect()))
      const noInfo = new Proxy(client, {
        get: (target, property, receiver) => {
          const value: unknown = Reflect.get(target, property, receiver)
          return property === "info" ? () => Promise.reject(new Error("ERR unknown command 'INFO'")) : value
        }
      })
      const keyPrefix = `${prefix}moved:`
      const breaker = uniqueName("breaker-moved")
      const algorithm = RateLimiter.gcra({ limit: 2, window: "1 minute" })
      const logs = captureLogs()
      const before = yield* misconfigurations
      const limiter = yield* RateLimiter.make({ name: uniqueName("moved"), algorithm }).pipe(
        Effect.provide(
          yield* storeFor({
            client: noInfo,
            prefix: keyPrefix,
            onFailure: "fail-open",
            circuitBreaker: { name: breaker, failures: 2 }
          })
        )
      )
      const toRedisKey = (key: string) => redisKeyOf(keyPrefix, limiter.name, algorithm, key)
      const [home] = yield* Effect.promise(() => keysOnNode(0, 1, toRedisKey))
      const away = yield* Effect.promise(() =>
        Promise.all([1, 2].map((i) => keysOnNode(i, 1, toRedisKey).then(([key]) => key ?? "")))
      )
      const decisions = yield* Effect.forEach(
        [home ?? "", ...away, ...away, ...away],
        (key) => Effect.map(limiter.tryConsume(key), (decision) => ({ key, decision }))
      ).pipe(Effect.provide(logs.layer))
      // The node's own keys are decided by Redis; every other one is refused, never "allowed (degraded)".
      const [own, ...redirected] = decisions
      assert.strictEqual(own?.decision.outcome, "allowed")
      assert.isFalse(own?.decision.degraded)
      for (const { decision } of redirected) {
        assert.strictEqual(decision.outcome, "rejected")
        assert.isTrue(decision.degraded)
      }
      const refused = yield* Effect.flip(limiter.consume(away[0] ?? ""))
      assert.strictEqual(refused._tag === "RateLimitedError" ? refused.reason : refused._tag, "StoreUnavailable")
      assert.strictEqual((yield* misconfigurations) - before, 7)
      const errors = logs.lines.filter((line) => line.startsWith("ERROR"))
      assert.strictEqual(errors.length, 1, logs.lines.join("\n"))
      assert.include(errors[0] ?? "", "MOVED")
      assert.include(errors[0] ?? "", "refusing calls whatever the failure policy")
      // Not an outage: the breaker saw no failure and stays closed for the node's own keys.
      assert.strictEqual(yield* breakerCalls(breaker, "failure"), 0)
      assert.isFalse((yield* limiter.tryConsume(home ?? "")).degraded)
    }))
})

// ---------------------------------------------------------------------------
// a node killed mid-run
// ---------------------------------------------------------------------------

describe("RedisRateLimiter when a cluster node dies", () => {
  it.scopedLive(
    "fails open or closed as configured while the node is down, and recovers once it is back",
    () =>
      Effect.gen(function*() {
        const keyPrefix = `${prefix}kill:`
        const name = uniqueName("kill")
        const algorithm = RateLimiter.tokenBucket({ limit: 1_000, window: "1 minute" })
        const before = yield* misconfigurations
        const limiterFor = (onFailure: "fail-open" | "fail-closed") =>
          Effect.flatMap(
            storeFor({
              cluster: { nodes: cluster.nodes },
              prefix: keyPrefix,
              onFailure,
              commandTimeout: "300 millis",
              circuitBreaker: { name: uniqueName(`breaker-${onFailure}`), failures: 2, openDuration: "200 millis" }
            }),
            (store) => RateLimiter.make({ name, algorithm }).pipe(Effect.provide(store))
          )
        const open = yield* limiterFor("fail-open")
        const closed = yield* limiterFor("fail-closed")
        const toRedisKey = (key: string) => redisKeyOf(keyPrefix, name, algorithm, key)
        const [doomed] = yield* Effect.promise(() => keysOnNode(1, 1, toRedisKey))
        const [survivor] = yield* Effect.promise(() => keysOnNode(0, 1, toRedisKey))
        const keys = [doomed ?? "", survivor ?? ""]
        const both = (key: string) => Effect.all([open.tryConsume(key), closed.tryConsume(key)])
        for (const key of keys) {
          const [a, b] = yield* both(key)
          assert.isFalse(a.degraded || b.degraded)
        }

        // Connected now, first used once the cluster is down.
        const fresh = yield* limiterFor("fail-closed")
        yield* Effect.promise(() => cluster.kill(1))
        // The dead node's keys: fail-open allows, fail-closed refuses, both marked degraded.
        const [allowed, refused] = yield* eventually(
          "the dead node's key degrades",
          both(doomed ?? ""),
          ([a, b]) => a.degraded && b.degraded
        )
        assert.strictEqual(allowed.outcome, "allowed")
        assert.strictEqual(refused.outcome, "rejected")
        // Once the cluster marks the node failed, every slot is down (CLUSTERDOWN): an outage for every key.
        yield* Effect.promise(() => cluster.waitForState("fail"))
        const [allowedToo, refusedToo] = yield* eventually(
          "a live node's key degrades",
          both(survivor ?? ""),
          ([a, b]) => a.degraded && b.degraded
        )
        assert.strictEqual(allowedToo.outcome, "allowed")
        assert.strictEqual(refusedToo.outcome, "rejected")
        // A store whose breaker has seen nothing yet meets the cluster's own answer, an outage like any other.
        const logs = captureLogs()
        const down = yield* fresh.tryConsume(survivor ?? "").pipe(Effect.provide(logs.layer))
        assert.strictEqual(down.outcome, "rejected")
        assert.isTrue(down.degraded)
        assert.isTrue(
          logs.lines.some((line) => line.startsWith("WARN") && line.includes("CLUSTERDOWN")),
          logs.lines.join("\n")
        )
        // A store made while the cluster is down starts anyway (its client connects later) and fails open meanwhile.
        const late = yield* limiterFor("fail-open")
        const meanwhile = yield* late.tryConsume(survivor ?? "")
        assert.isTrue(meanwhile.outcome === "allowed" && meanwhile.degraded)

        yield* Effect.promise(() => cluster.restart(1))
        for (const key of keys) {
          const [a, b, c] = yield* eventually(
            `${key} is decided by Redis again`,
            Effect.all([open.tryConsume(key), closed.tryConsume(key), late.tryConsume(key)]),
            (decisions) => decisions.every((d) => !d.degraded)
          )
          assert.isTrue([a, b, c].every((d) => d.outcome === "allowed"))
        }
        // An outage is not a misconfiguration.
        assert.strictEqual((yield* misconfigurations) - before, 0)
      }),
    60_000
  )
})

// ---------------------------------------------------------------------------
// many decisions at once, coalesced per node, through a node's death
// ---------------------------------------------------------------------------

describe("RedisRateLimiter coalescing its commands per cluster node", () => {
  it.scopedLive(
    "answers every one of many concurrent decisions over all three nodes, through a node's death and return, and leaves no socket corked",
    () =>
      Effect.gen(function*() {
        const keyPrefix = `${prefix}coalesce:`
        const limit = 5
        const algorithm = RateLimiter.tokenBucket({ limit, window: "1 hour" })
        // The store's own fail-fast settings, on a client the test can look into.
        const client = yield* Effect.acquireRelease(
          Effect.promise(async () => {
            const made = new Cluster(cluster.nodes.map((node) => ({ ...node })), {
              lazyConnect: true,
              enableOfflineQueue: false,
              retryDelayOnClusterDown: 0,
              redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 300 }
            })
            made.on("error", () => undefined)
            await made.connect()
            return made
          }),
          (made) => Effect.sync(() => made.disconnect())
        )
        const store = yield* storeFor({
          client,
          prefix: keyPrefix,
          commandTimeout: "300 millis",
          circuitBreaker: { name: uniqueName("breaker-coalesce"), failures: 3, openDuration: "200 millis" }
        })
        const limiterNamed = (name: string) => RateLimiter.make({ name, algorithm }).pipe(Effect.provide(store))
        const masters = () => client.nodes("master")
        const streams = masters().map((node) => node.stream)
        assert.strictEqual(streams.length, 3)
        /** The socket node `i` of the test cluster had at the start. */
        const streamOf = (i: number) =>
          masters().find((node) => node.options.port === cluster.nodes[i]?.port)?.stream ?? assert.fail(`no node ${i}`)
        const first = streamOf(1)
        // Counts the corks of each node's socket: coalescing is on, on every node.
        const corks = streams.map(() => 0)
        streams.forEach((stream, i) => {
          const cork = stream.cork.bind(stream)
          stream.cork = () => {
            corks[i] = (corks[i] ?? 0) + 1
            cork()
          }
        })
        const allUncorked = (all: ReadonlyArray<Redis["stream"]>) =>
          Effect.sync(() => all.every((stream) => stream.writableCorked === 0))

        /** Each key `limit + 3` times, the keys of the three nodes interleaved, all at once: exactly `limit` pass. */
        const exactly = (name: string, keys: ReadonlyArray<string>) =>
          Effect.gen(function*() {
            const limiter = yield* limiterNamed(name)
            const calls = Array.from({ length: limit + 3 }, () => keys).flat()
            const decisions = yield* Effect.forEach(
              calls,
              (key) => Effect.map(limiter.tryConsume(key), (decision) => ({ key, decision })),
              { concurrency: "unbounded" }
            )
            assert.strictEqual(decisions.length, calls.length)
            for (const key of keys) {
              const mine = decisions.filter((d) => d.key === key).map((d) => d.decision)
              assert.isTrue(mine.every((d) => !d.degraded), key)
              assert.strictEqual(mine.filter((d) => d.outcome === "allowed").length, limit, key)
            }
          })

        const name = uniqueName("coalesce")
        const toRedisKey = (key: string) => redisKeyOf(keyPrefix, name, algorithm, key)
        const perNode = yield* Effect.promise(() => Promise.all([0, 1, 2].map((i) => keysOnNode(i, 10, toRedisKey))))
        // Interleaved: node 0's key, node 1's, node 2's, …
        const keys = Array.from({ length: 10 }, (_, i) => perNode.map((onNode) => onNode[i] ?? "")).flat()
        yield* exactly(name, keys)
        for (const [i, count] of corks.entries()) assert.isAbove(count, 0, `node ${i}'s socket was corked`)
        assert.isTrue(yield* allUncorked(streams), "every socket uncorked once the tick is over")

        // Under load while node 1 dies: every wave of calls is answered (by Redis, or by the failure policy).
        const loaded = yield* limiterNamed(uniqueName("coalesce-load"))
        let waves = 0
        const load = yield* Effect.fork(Effect.forever(
          Effect.zipRight(
            Effect.forEach(keys, (key) => loaded.tryConsume(key), { concurrency: "unbounded", discard: true }),
            Effect.sync(() => waves++)
          )
        ))
        const moreWaves = (what: string) =>
          Effect.flatMap(
            Effect.sync(() => waves),
            (since) => eventually(what, Effect.sync(() => waves), (n) => n >= since + 3)
          )
        yield* Effect.promise(() => cluster.kill(1))
        yield* moreWaves("waves answered while node 1 is dead")
        yield* Effect.promise(() => cluster.waitForState("fail"))
        yield* moreWaves("waves answered while the cluster is down")
        yield* Effect.promise(() => cluster.restart(1))
        yield* eventually(
          "every node decides again",
          Effect.forEach(keys, (key) => loaded.tryConsume(key), { concurrency: "unbounded" }),
          (decisions) => decisions.every((d) => !d.degraded)
        )
        yield* moreWaves("waves answered after the restart")
        yield* Fiber.interrupt(load)

        // After the restart (node 1 has a new socket): still exact on every node, nothing left corked, old or new.
        const again = uniqueName("coalesce-after")
        const toRedisKeyAgain = (key: string) => redisKeyOf(keyPrefix, again, algorithm, key)
        const perNodeAgain = yield* Effect.promise(() =>
          Promise.all([0, 1, 2].map((i) => keysOnNode(i, 10, toRedisKeyAgain)))
        )
        yield* exactly(
          again,
          Array.from({ length: 10 }, (_, i) => perNodeAgain.map((onNode) => onNode[i] ?? "")).flat()
        )
        const now = masters().map((node) => node.stream)
        assert.isFalse(now.includes(first), "node 1 reconnected: a new socket")
        assert.isTrue(yield* allUncorked([...streams, ...now]))
      }),
    60_000
  )
})
