/**
 * The Redis store against a real Redis on 127.0.0.1:6379. These tests fail,
 * never skip, when Redis is not there. Every run uses its own key prefix and
 * deletes its keys afterwards.
 */
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { Redis } from "ioredis"
import { createServer } from "node:net"
import { breakerCalls, captureLogs } from "../support/observe.js"
import * as TestRedis from "../support/redis.js"
import { storeContract } from "./conformance.js"

const REDIS = TestRedis.connection
const prefix = TestRedis.prefix("rate-limiter")

let admin: Redis

beforeAll(async () => {
  admin = await TestRedis.connect()
})

afterAll(() => TestRedis.cleanUp(admin, prefix))

const closedPort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })

let counter = 0
const uniqueName = (label: string) => `${label}-${++counter}`

// ---------------------------------------------------------------------------
// the shared contract, driven by TestClock through clock: "local"
// ---------------------------------------------------------------------------

storeContract(
  "redis",
  () => RedisRateLimiter.layer({ redis: REDIS, prefix: `${prefix}contract:`, clock: "local" }),
  { propertyRuns: 100 }
)

// ---------------------------------------------------------------------------
// Redis server time
// ---------------------------------------------------------------------------

describe("RedisRateLimiter on Redis server time", () => {
  const layer = () => RedisRateLimiter.layer({ redis: REDIS, prefix: `${prefix}server:` })

  it.live("limits by the server's clock and lets keys expire once their state no longer matters", () =>
    Effect.gen(function*() {
      const name = uniqueName("server-time")
      const limiter = yield* RateLimiter.make({
        name,
        algorithm: RateLimiter.slidingWindowCounter({ limit: 5, window: "10 seconds" })
      })
      for (let i = 0; i < 5; i++) yield* limiter.consume("user-1")
      const error = yield* Effect.flip(limiter.consume("user-1"))
      assert.strictEqual(error._tag, "RateLimitedError")
      if (error._tag !== "RateLimitedError") return
      assert.isTrue(Duration.greaterThan(error.retryAfter, Duration.zero))
      assert.isTrue(Duration.lessThanOrEqualTo(error.retryAfter, Duration.seconds(20)))
      const keys = yield* Effect.promise(() => admin.keys(`${prefix}server:${name}:*`))
      assert.deepStrictEqual(keys, [`${prefix}server:${name}:swc/5/10000:user-1`])
      const ttl = yield* Effect.promise(() => admin.pttl(keys[0] ?? ""))
      // reset (up to two windows for a counter) plus one second of slack
      assert.isTrue(ttl > 10_000 && ttl <= 21_000, `pttl ${ttl}`)
    }).pipe(Effect.provide(layer())))

  it.live("loads a script with EVAL when Redis has lost it (NOSCRIPT after a flush or failover)", () =>
    Effect.gen(function*() {
      // SCRIPT FLUSH would disturb everyone sharing this Redis; a client whose EVALSHA answers NOSCRIPT does not.
      const client = new Redis({ ...REDIS, lazyConnect: true })
      yield* Effect.acquireRelease(Effect.promise(() => client.connect()), () => Effect.promise(() => client.quit()))
      let lost = 0
      const forgetful = new Proxy(client, {
        get: (target, property, receiver) => {
          const value: unknown = Reflect.get(target, property, receiver)
          if (property !== "evalsha") return value
          return () => {
            lost++
            return Promise.reject(new Error("NOSCRIPT No matching script. Please use EVAL."))
          }
        }
      })
      const limiter = yield* RateLimiter.make({
        name: uniqueName("noscript"),
        algorithm: RateLimiter.tokenBucket({ limit: 2, window: "1 minute" })
      }).pipe(Effect.provide(RedisRateLimiter.layer({ client: forgetful, prefix: `${prefix}noscript:` })))
      yield* limiter.consume("k")
      const decision = yield* limiter.consume("k")
      assert.strictEqual(decision.remaining, 0)
      assert.isFalse(decision.degraded)
      assert.strictEqual(lost, 2)
    }).pipe(Effect.scoped))
})

describe("RedisRateLimiter on the wire", () => {
  it.live("sends a tick's decisions in a few socket writes, each reply settling its own call", () =>
    Effect.gen(function*() {
      const client = new Redis({ ...REDIS, lazyConnect: true })
      yield* Effect.acquireRelease(Effect.promise(() => client.connect()), () => Effect.promise(() => client.quit()))
      const limiter = yield* RateLimiter.make({
        name: uniqueName("wire"),
        algorithm: RateLimiter.fixedWindow({ limit: 30, window: "1 minute" })
      }).pipe(Effect.provide(RedisRateLimiter.layer({ client, prefix: `${prefix}wire:` })))
      yield* limiter.tryConsume("warm-up")
      // Count the socket's writes: `_write` per chunk, `_writev` per batch of corked chunks (the hooks Node's
      // Writable calls; overriding them on the instance leaves the socket's behaviour as it was).
      const socket = client.stream
      const single = socket._write.bind(socket)
      const batch = socket._writev?.bind(socket)
      const writes: Array<number> = []
      socket._write = (chunk, encoding, callback) => {
        writes.push(1)
        single(chunk, encoding, callback)
      }
      socket._writev = (chunks, callback) => {
        writes.push(chunks.length)
        if (batch === undefined) throw new Error("net.Socket has _writev")
        batch(chunks, callback)
      }
      const decisions = yield* Effect.all(
        Array.from({ length: 40 }, () => limiter.tryConsume("k")),
        { concurrency: "unbounded" }
      ).pipe(Effect.ensuring(Effect.sync(() => {
        socket._write = single
        if (batch !== undefined) socket._writev = batch
      })))
      assert.deepStrictEqual(
        decisions.map((d) => d.remaining),
        Array.from({ length: 40 }, (_, i) => Math.max(0, 29 - i))
      )
      assert.strictEqual(decisions.filter((d) => d.outcome === "allowed").length, 30)
      // 40 commands issued in one tick: flushed after 16 and 32, and the last 8 at the end of the tick
      // ([16, 16, 8]; a tick cut short by the scheduler would only split a batch, never add a write per command).
      assert.strictEqual(writes.reduce((sum, n) => sum + n, 0), 40)
      assert.isAtMost(Math.max(...writes), 16)
      assert.isAtMost(writes.length, 4, `writes: ${writes.join(", ")}`)
    }).pipe(Effect.scoped))
})

// ---------------------------------------------------------------------------
// failures
// ---------------------------------------------------------------------------

describe("RedisRateLimiter when Redis fails", () => {
  it.effect("fails open: allows calls, marks them degraded, counts the failures and logs once", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(closedPort)
      const breaker = uniqueName("breaker-open")
      const logs = captureLogs()
      const limiter = yield* RateLimiter.make({
        name: uniqueName("fail-open"),
        algorithm: RateLimiter.fixedWindow({ limit: 1, window: "1 minute" })
      }).pipe(
        Effect.provide(RedisRateLimiter.layer({
          redis: { host: "127.0.0.1", port, retryStrategy: () => 60_000 },
          onFailure: "fail-open",
          circuitBreaker: { name: breaker, failures: 3 }
        }))
      )
      const decisions = yield* Effect.forEach(Array.from({ length: 6 }), () => limiter.consume("k")).pipe(
        Effect.provide(logs.layer)
      )
      assert.isTrue(decisions.every((d) => d.outcome === "allowed" && d.degraded))
      // three calls reached the closed port, then the breaker opened and spared Redis the rest
      assert.strictEqual(yield* breakerCalls(breaker, "failure"), 3)
      assert.strictEqual(yield* breakerCalls(breaker, "rejected"), 3)
      const warnings = logs.lines.filter((line) => line.includes("Rate limiter store unavailable"))
      assert.strictEqual(warnings.length, 1, logs.lines.join("\n"))
      assert.include(warnings[0] ?? "", "fail-open")
    }).pipe(Effect.provide(captureLogs().layer)))

  it.effect("fails closed: refuses calls with StoreUnavailable and the breaker's retry time", () =>
    Effect.gen(function*() {
      const port = yield* Effect.promise(closedPort)
      const breaker = uniqueName("breaker-closed")
      const limiter = yield* RateLimiter.make({
        name: uniqueName("fail-closed"),
        algorithm: RateLimiter.tokenBucket({ limit: 100, window: "1 minute" })
      }).pipe(
        Effect.provide(RedisRateLimiter.layer({
          redis: { host: "127.0.0.1", port, retryStrategy: () => 60_000 },
          onFailure: "fail-closed",
          circuitBreaker: { name: breaker, failures: 2, openDuration: "7 seconds" }
        }))
      )
      const errors = yield* Effect.forEach(Array.from({ length: 3 }), () => Effect.flip(limiter.consume("k")))
      for (const error of errors) {
        assert.strictEqual(error._tag, "RateLimitedError")
        if (error._tag === "RateLimitedError") assert.strictEqual(error.reason, "StoreUnavailable")
      }
      const [first, , third] = errors
      if (first?._tag !== "RateLimitedError" || third?._tag !== "RateLimitedError") return
      assert.strictEqual(Duration.toMillis(first.retryAfter), 1_000)
      assert.strictEqual(Duration.toMillis(third.retryAfter), 7_000)
      assert.strictEqual(yield* breakerCalls(breaker, "failure"), 2)
      const rejected = yield* limiter.tryConsume("k")
      assert.strictEqual(rejected.outcome, "rejected")
      assert.isTrue(rejected.degraded)
    }))

  it.live("recovers after its connection is killed (CLIENT KILL)", () =>
    Effect.gen(function*() {
      const client = new Redis({
        ...REDIS,
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 300
      })
      client.on("error", () => undefined)
      yield* Effect.acquireRelease(Effect.promise(() => client.connect()), () => Effect.sync(() => client.disconnect()))
      const limiter = yield* RateLimiter.make({
        name: uniqueName("killed"),
        algorithm: RateLimiter.gcra({ limit: 10, window: "1 minute" })
      }).pipe(
        Effect.provide(RedisRateLimiter.layer({
          client,
          prefix: `${prefix}kill:`,
          onFailure: "fail-closed",
          circuitBreaker: { name: uniqueName("breaker-kill") }
        }))
      )
      assert.isFalse((yield* limiter.consume("k")).degraded)
      const id = yield* Effect.promise(() => client.client("ID"))
      yield* Effect.promise(() => admin.client("KILL", "ID", String(id)))
      yield* Effect.sleep("50 millis")
      const logs = captureLogs()
      const refused = yield* Effect.flip(limiter.consume("k")).pipe(Effect.provide(logs.layer))
      assert.strictEqual(refused._tag === "RateLimitedError" ? refused.reason : refused._tag, "StoreUnavailable")
      assert.isTrue(logs.lines.some((line) => line.startsWith("WARN") && line.includes("fail-closed")))
      yield* Effect.sleep("700 millis")
      const back = yield* limiter.consume("k")
      assert.isFalse(back.degraded)
      assert.strictEqual(back.remaining, 8)
    }).pipe(Effect.scoped))

  it.effect("rejects invalid options with InvalidOptionsError", () =>
    Effect.gen(function*() {
      const bad = (options: RedisRateLimiter.Options) =>
        Effect.flip(Layer.build(RedisRateLimiter.layer(options))).pipe(Effect.scoped)
      assert.strictEqual((yield* bad({ circuitBreaker: { failures: 0 } })).option, "circuitBreaker.failures")
      assert.strictEqual((yield* bad({ commandTimeout: -1 })).option, "commandTimeout")
      assert.strictEqual((yield* bad({ circuitBreaker: { name: "" } })).option, "circuitBreaker.name")
    }))
})
