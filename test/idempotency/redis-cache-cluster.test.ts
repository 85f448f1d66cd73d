/**
 * What only a Redis Cluster shows of the idempotency cache (the common tests run on a cluster in
 * `redis-cache.test.ts`): a single-node client pointed at a cluster node is a configuration error (make fails,
 * or each redirected call is counted and logged at error level while the store answers), and a node killed
 * mid-run leaves the store answering until the node is back and the cache serves again. Needs PostgreSQL and
 * redis-server; fails, never skips, without them.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RedisIdempotencyCache from "@bulwark/resilience/RedisIdempotencyCache"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { createHash } from "node:crypto"
import { breakerCalls, captureLogs } from "../support/observe.js"
import * as ScratchPostgres from "../support/postgres.js"
import * as TestCluster from "../support/redisCluster.js"

// The cluster is this file's alone and removed afterwards.
const prefix = "bulwark-test:idem-cluster:"
let cluster: TestCluster.TestCluster

beforeAll(async () => {
  cluster = await TestCluster.start()
}, 60_000)

afterAll(() => cluster?.stop())

const SCOPE = "POST /payments"
const Receipt = Schema.Struct({ id: Schema.String })
const options = (key: string) => ({ scope: SCOPE, key, fingerprint: "fp", success: Receipt, failure: Schema.Never })
const receipt = (id: string) => () => Effect.succeed({ id })

const redisKeyOf = (key: string) => prefix + createHash("sha256").update(JSON.stringify([SCOPE, "", key])).digest("hex")

/** A fresh client key whose cache entry lives on node `node`. */
let candidate = 0
const keyOnNode = async (node: number): Promise<string> => {
  for (let i = 0; i < 1_000; i++) {
    const key = `key-${++candidate}`
    if (await cluster.nodeOf(redisKeyOf(key)) === node) return key
  }
  return assert.fail(`no key on node ${node}`)
}

const misconfigurations = Effect.map(
  Metric.value(Metric.tagged(Metrics.redisConfigErrors, "component", "idempotency_cache")),
  (state) => state.count
)

/** The SQL store counting the claims that reach it, and the cache in front of it. */
const stores = (cacheOptions: RedisIdempotencyCache.Options) =>
  Effect.gen(function*() {
    const sqlStore = yield* SqlIdempotencyStore.make()
    let claims = 0
    const counted: IdempotencyStore.Service = {
      ...sqlStore,
      claim: (request) => Effect.zipRight(Effect.sync(() => claims++), sqlStore.claim(request))
    }
    const cached = yield* RedisIdempotencyCache.make(counted, { prefix, ...cacheOptions })
    return { claims: () => claims, viaCache: Effect.provideService(IdempotencyStore.IdempotencyStore, cached) }
  })

let breakers = 0
const breakerName = () => `idempotency.redis.cluster-${++breakers}`

describe("RedisIdempotencyCache with a single-node client on a cluster node", () => {
  it.scopedLive("fails to start when the node says cluster_enabled:1: InvalidOptionsError, logged and counted", () =>
    Effect.gen(function*() {
      const logs = captureLogs()
      const before = yield* misconfigurations
      const node = cluster.nodes[2] ?? assert.fail("no node")
      const error = yield* Effect.flip(stores({ redis: node }).pipe(Effect.provide(logs.layer)))
      assert.strictEqual(error._tag, "InvalidOptionsError")
      if (error._tag !== "InvalidOptionsError") return
      assert.strictEqual(error.option, "redis")
      assert.include(error.message, "cluster_enabled:1")
      assert.strictEqual((yield* misconfigurations) - before, 1)
      const errors = logs.lines.filter((line) => line.startsWith("ERROR"))
      assert.strictEqual(errors.length, 1, logs.lines.join("\n"))
      assert.include(errors[0] ?? "", "Idempotency cache")
    }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 2 }))))

  it.scopedLive("each redirected call (MOVED) steps aside to the store, counted and logged once at error level", () =>
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
      const breaker = breakerName()
      const logs = captureLogs()
      const before = yield* misconfigurations
      const { claims, viaCache } = yield* stores({ client: noInfo, circuitBreaker: { name: breaker, failures: 2 } })
      const home = yield* Effect.promise(() => keyOnNode(0))
      const away = yield* Effect.promise(() => keyOnNode(1))
      const run = (key: string) => viaCache(Idempotency.run(options(key))(receipt(`r-${key}`)))

      // The node's own slots: cached as usual, the replay comes from Redis.
      assert.strictEqual((yield* run(home))._tag, "Executed")
      assert.strictEqual((yield* run(home))._tag, "Replayed")
      assert.strictEqual(claims(), 1)
      assert.strictEqual((yield* misconfigurations) - before, 0)

      // Another node's slot: the read and the write are both redirected; the store answers, rightly.
      const results = yield* Effect.all([run(away), run(away), run(away)]).pipe(Effect.provide(logs.layer))
      assert.deepStrictEqual(results.map((result) => result._tag), ["Executed", "Replayed", "Replayed"])
      assert.strictEqual(claims(), 4, "every claim of the redirected key reached PostgreSQL")
      assert.strictEqual((yield* misconfigurations) - before, 6)
      const errors = logs.lines.filter((line) => line.startsWith("ERROR"))
      assert.strictEqual(errors.length, 1, logs.lines.join("\n"))
      assert.include(errors[0] ?? "", "MOVED")
      assert.include(errors[0] ?? "", "single-node client pointed at a Redis Cluster node")
      // Not an outage: the breaker saw no failure, and the node's own keys are still served from Redis.
      assert.strictEqual(yield* breakerCalls(breaker, "failure"), 0)
      assert.strictEqual((yield* run(home))._tag, "Replayed")
      assert.strictEqual(claims(), 4)
    }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 2 }))))
})

describe("RedisIdempotencyCache when a cluster node dies", () => {
  it.scopedLive(
    "the store answers while the node is down, and the cache serves again once it is back",
    () =>
      Effect.gen(function*() {
        const logs = captureLogs()
        const before = yield* misconfigurations
        const { claims, viaCache } = yield* stores({
          cluster: { nodes: cluster.nodes },
          commandTimeout: "300 millis",
          circuitBreaker: { name: breakerName(), failures: 2, openDuration: "200 millis" }
        })
        const key = yield* Effect.promise(() => keyOnNode(1))
        const run = viaCache(Idempotency.run(options(key))(receipt("r-kill")))
        assert.strictEqual((yield* run)._tag, "Executed")
        assert.strictEqual((yield* run)._tag, "Replayed")
        assert.strictEqual(claims(), 1, "cached")

        yield* Effect.promise(() => cluster.kill(1))
        const down: ReadonlyArray<Idempotency.Result<unknown>> = yield* Effect.all([run, run, run]).pipe(
          Effect.provide(logs.layer)
        )
        assert.deepStrictEqual(
          down,
          Array.from({ length: 3 }, () => ({ _tag: "Replayed", value: { id: "r-kill" }, attempt: 1 }))
        )
        assert.strictEqual(claims(), 4, "the store answered while the node was down")
        assert.isTrue(
          logs.lines.some((line) => line.startsWith("WARN") && line.includes("Idempotency cache unavailable"))
        )

        yield* Effect.promise(() => cluster.restart(1))
        // The restarted node is empty: one replay from the store fills it again, then replays skip the store.
        let served = false
        for (let attempt = 0; attempt < 200 && !served; attempt++) {
          const claimed = claims()
          assert.strictEqual((yield* run)._tag, "Replayed")
          served = claims() === claimed
          if (!served) yield* Effect.sleep("50 millis")
        }
        assert.isTrue(served, "the cache served a replay again")
        assert.strictEqual((yield* misconfigurations) - before, 0, "an outage is not a misconfiguration")
      }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 2 }))),
    60_000
  )
})
