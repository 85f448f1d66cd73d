/**
 * The Redis read-through cache in front of the PostgreSQL store: hits skip the store, misses fill the cache, only
 * completed records are cached and never for longer than they live, and with Redis down the store answers alone
 * (counted by the cache's breaker, logged). The same tests run on the Redis at 127.0.0.1:6379 and on a
 * three-master Redis Cluster started for this file; `redis-cache-cluster.test.ts` has what only a cluster shows.
 * Needs PostgreSQL, Redis and redis-server; fails, never skips, without them.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RedisIdempotencyCache from "@bulwark/resilience/RedisIdempotencyCache"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Redis } from "ioredis"
import { createHash } from "node:crypto"
import { createServer } from "node:net"
import * as ScratchPostgres from "../support/postgres.js"
import * as TestRedis from "../support/redis.js"
import * as TestCluster from "../support/redisCluster.js"

const prefix = TestRedis.prefix("idempotency-cache")

let single: Redis | undefined
let cluster: TestCluster.TestCluster | undefined

beforeAll(async () => {
  single = await TestRedis.connect()
  cluster = await TestCluster.start()
}, 60_000)

// Every key the cache wrote to the shared Redis is under `prefix`; the cluster is removed whole.
afterAll(async () => {
  await cluster?.stop()
  await TestRedis.cleanUp(single, prefix)
})

/** What the tests read back from Redis, from a single-node or a Cluster client alike. */
interface Admin {
  readonly pttl: (key: string) => Promise<number>
  readonly exists: (key: string) => Promise<number>
}

/** One deployment the suite runs on: how the cache reaches it, and how a test reads it. */
interface Deployment {
  readonly label: string
  readonly connection: () => RedisIdempotencyCache.Options
  /** Options reaching nothing: a closed port on 127.0.0.1. */
  readonly unreachable: (port: number) => RedisIdempotencyCache.Options
  readonly admin: () => Admin
}

const deployments: ReadonlyArray<Deployment> = [
  {
    label: "Redis",
    connection: () => ({ redis: TestRedis.connection }),
    unreachable: (port) => ({ redis: { host: "127.0.0.1", port } }),
    admin: () => single ?? assert.fail("no Redis connection")
  },
  {
    label: "a Redis Cluster",
    connection: () => ({ cluster: { nodes: cluster?.nodes ?? [] } }),
    unreachable: (port) => ({ cluster: { nodes: [{ host: "127.0.0.1", port }] } }),
    admin: () => cluster?.admin ?? assert.fail("no cluster")
  }
]

const Receipt = Schema.Struct({ id: Schema.String })
const SCOPE = "POST /payments"

const options = (
  key: string,
  overrides: { readonly fingerprint?: string; readonly ttl?: Duration.DurationInput } = {}
) => ({
  scope: SCOPE,
  key,
  fingerprint: overrides.fingerprint ?? "fp",
  success: Receipt,
  failure: Schema.Never,
  ...(overrides.ttl === undefined ? {} : { ttl: overrides.ttl })
})

const redisKeyOf = (key: string) => prefix + createHash("sha256").update(JSON.stringify([SCOPE, "", key])).digest("hex")

/** The SQL store, wrapped to count the claims that reach it, and the cache in front of it. */
const stores = (cacheOptions: RedisIdempotencyCache.Options) =>
  Effect.gen(function*() {
    const sqlStore = yield* SqlIdempotencyStore.make()
    let claims = 0
    const counted: IdempotencyStore.Service = {
      ...sqlStore,
      claim: (request) => Effect.zipRight(Effect.sync(() => claims++), sqlStore.claim(request))
    }
    const cached = yield* RedisIdempotencyCache.make(counted, { prefix, ...cacheOptions })
    return {
      sqlStore,
      claims: () => claims,
      viaCache: Effect.provideService(IdempotencyStore.IdempotencyStore, cached),
      viaStoreOnly: Effect.provideService(IdempotencyStore.IdempotencyStore, sqlStore)
    }
  })

const receipt = (id: string) => () => Effect.succeed({ id })
const mustNotRun = () => Effect.die("must not run")

for (const deployment of deployments) {
  describe(`RedisIdempotencyCache over the PostgreSQL store, on ${deployment.label}`, () => {
    const pttlOf = (key: string) => Effect.promise(() => deployment.admin().pttl(redisKeyOf(key)))
    const exists = (key: string) => Effect.promise(() => deployment.admin().exists(redisKeyOf(key)))

    it.scopedLive("caches a completion and replays it from Redis without reaching the store", () =>
      Effect.gen(function*() {
        const { claims, sqlStore, viaCache } = yield* stores(deployment.connection())
        const first = yield* viaCache(Idempotency.run(options("hit"))(receipt("r-1")))
        assert.strictEqual(first._tag, "Executed")
        assert.strictEqual(claims(), 1)
        const second = yield* viaCache(Idempotency.run(options("hit"))(mustNotRun))
        assert.deepStrictEqual(second, { _tag: "Replayed", value: { id: "r-1" }, attempt: 1 })
        assert.strictEqual(claims(), 1, "the replay came from Redis")
        // Cached for no longer than the record lives (24 h by default), and no longer than the cache's own TTL (1 h).
        const pttl = yield* pttlOf("hit")
        const record = Option.getOrThrow(yield* sqlStore.lookup({ scope: SCOPE, partition: "", key: "hit" }))
        assert.isAbove(pttl, 0)
        assert.isAtMost(pttl, Duration.toMillis(Duration.hours(1)))
        assert.isBelow(pttl, Duration.toMillis(record.expiresIn))
      }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 2 }))))

    it.scopedLive("a miss goes to the store, and what the store says is completed is cached", () =>
      Effect.gen(function*() {
        const { claims, viaCache, viaStoreOnly } = yield* stores(deployment.connection())
        // Completed by another process that does not use the cache.
        yield* viaStoreOnly(Idempotency.run(options("miss"))(receipt("r-2")))
        assert.strictEqual(yield* exists("miss"), 0)
        const second = yield* viaCache(Idempotency.run(options("miss"))(mustNotRun))
        assert.deepStrictEqual(second, { _tag: "Replayed", value: { id: "r-2" }, attempt: 1 })
        assert.strictEqual(claims(), 1)
        assert.strictEqual(yield* exists("miss"), 1)
        yield* viaCache(Idempotency.run(options("miss"))(mustNotRun))
        assert.strictEqual(claims(), 1)
        const mismatch = yield* Effect.flip(
          viaCache(Idempotency.run(options("miss", { fingerprint: "other" }))(mustNotRun))
        )
        assert.instanceOf(mismatch, Idempotency.IdempotencyMismatchError)
        assert.strictEqual(claims(), 1, "the mismatch was found in Redis")
      }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 2 }))))

    it.scopedLive("never caches a record in progress or released, nor one about to expire", () =>
      Effect.gen(function*() {
        const { viaCache } = yield* stores(deployment.connection())
        const started = yield* Deferred.make<void>()
        const gate = yield* Deferred.make<void>()
        const inFlight = yield* Effect.fork(viaCache(
          Idempotency.run(options("flight"))(() =>
            Effect.zipRight(Deferred.succeed(started, undefined), Effect.as(Deferred.await(gate), { id: "r-3" }))
          )
        ))
        yield* Deferred.await(started)
        const conflict = yield* Effect.flip(viaCache(Idempotency.run(options("flight"))(mustNotRun)))
        assert.instanceOf(conflict, Idempotency.IdempotencyConflictError)
        assert.strictEqual(yield* exists("flight"), 0)
        yield* Deferred.succeed(gate, undefined)
        yield* Fiber.join(inFlight)
        assert.strictEqual(yield* exists("flight"), 1)

        const released = yield* Effect.exit(viaCache(Idempotency.run(options("released"))(() => Effect.die("crash"))))
        assert.isTrue(released._tag === "Failure")
        assert.strictEqual(yield* exists("released"), 0)

        // A record with a 5-second TTL is cached for less than 5 seconds; one with under a second left is not cached.
        yield* viaCache(Idempotency.run(options("short", { ttl: "5 seconds" }))(receipt("r-4")))
        const pttl = yield* pttlOf("short")
        assert.isAbove(pttl, 0)
        assert.isAtMost(pttl, 4_000)
        yield* viaCache(Idempotency.run(options("shorter", { ttl: "800 millis" }))(receipt("r-5")))
        assert.strictEqual(yield* exists("shorter"), 0)
      }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 2 }))))

    it.scopedLive("with Redis down, answers from PostgreSQL, counting and logging the failures", () => {
      const warnings: Array<string> = []
      const capture = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
      })
      return Effect.gen(function*() {
        // A port nobody listens on: bind one, then close it.
        const port = yield* Effect.promise(() =>
          new Promise<number>((resolve) => {
            const server = createServer()
            server.listen(0, "127.0.0.1", () => {
              const address = server.address()
              server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 1))
            })
          })
        )
        const breaker = `idempotency.redis.test-${Date.now().toString(36)}`
        const calls = (outcome: string) =>
          Metric.value(
            Metrics.circuitBreakerCalls.pipe(Metric.tagged("breaker", breaker), Metric.tagged("outcome", outcome))
          )
            .pipe(Effect.map((state) => state.count))

        const { claims, viaCache } = yield* stores({
          ...deployment.unreachable(port),
          circuitBreaker: { name: breaker, failures: 3 }
        })
        const first = yield* viaCache(Idempotency.run(options("down"))(receipt("r-6")))
        const second = yield* viaCache(Idempotency.run(options("down"))(mustNotRun))
        const third = yield* viaCache(Idempotency.run(options("down"))(mustNotRun))
        assert.strictEqual(first._tag, "Executed")
        assert.deepStrictEqual(second, { _tag: "Replayed", value: { id: "r-6" }, attempt: 1 })
        assert.deepStrictEqual(third, second)
        assert.strictEqual(claims(), 3, "every request reached PostgreSQL")
        // Reads and writes failed until the breaker opened after 3 failures; then Redis was skipped (rejected).
        assert.strictEqual(yield* calls("failure"), 3)
        assert.isAtLeast(yield* calls("rejected"), 1)
        assert.isTrue(warnings.some((w) => w.includes("Idempotency cache unavailable")), warnings.join("\n"))
        // Throttled: one warning for the whole burst.
        assert.strictEqual(warnings.filter((w) => w.includes("Idempotency cache unavailable")).length, 1)
      }).pipe(
        Effect.provide(ScratchPostgres.layer({ maxConnections: 2 })),
        Effect.provide(Logger.replace(Logger.defaultLogger, capture))
      )
    })
  })
}
