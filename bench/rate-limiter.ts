/**
 * Rate-limiter decisions per second, in memory and on Redis, against
 * rate-limiter-flexible (RLF) wrapped in `Effect.promise` (the way an Effect
 * user would adopt it), and the Redis path against the raw Redis ceiling: an
 * ioredis `EVALSHA` loop of the same script at the same concurrency, with no
 * Effect, breaker or parsing around it.
 *
 * Limits are high enough that nothing is refused (RLF rejects with a thrown
 * object, which would measure exceptions instead of decisions); keys rotate
 * over 1,000 users. RLF's Redis limiter is a fixed window (`INCRBY` + `PTTL`),
 * its memory limiter a fixed window on a `Map`.
 *
 * Needs Redis on 127.0.0.1:6379.
 */
import { RateLimiter, RedisRateLimiter } from "@bulwark/resilience"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis } from "ioredis"
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible"
// The raw ceiling runs the very script the Redis store runs, so it is taken from the internals on purpose.
import { scripts } from "../packages/resilience/src/rate-limiter/internal/redisStore.js"
import { type Case, compare } from "./harness.js"

const MEMORY_CALLS = 1_000
const REDIS_CALLS = 2_000
const CONCURRENCY = 32
const KEYS = Array.from({ length: 1_000 }, (_, i) => `user-${i}`)
const key = (i: number): string => KEYS[i % KEYS.length] ?? "user-0"
const REDIS = { host: "127.0.0.1", port: 6379 } as const

const sequential = <E>(call: (i: number) => Effect.Effect<unknown, E>): Effect.Effect<void, E> =>
  Effect.gen(function*() {
    for (let i = 0; i < MEMORY_CALLS; i++) yield* call(i)
  })

const concurrent = <E>(call: (i: number) => Effect.Effect<unknown, E>): Effect.Effect<void, E> =>
  Effect.forEach(Array.from({ length: REDIS_CALLS }, (_, i) => i), call, {
    concurrency: CONCURRENCY,
    discard: true
  })

/** A plain promise pool: `CONCURRENCY` callers, each issuing its share of calls back to back. */
const promisePool = async (call: (i: number) => Promise<unknown>): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < REDIS_CALLS) await call(next++)
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
}

const hour = "1 hour"

/**
 * Runs every case for a while before measuring any: the cases share Effect's runtime code, so without this
 * the first case measured would pay for warming the JIT up for the others.
 */
const warmUp = async (cases: ReadonlyArray<Case>): Promise<ReadonlyArray<Case>> => {
  for (const c of cases) {
    const end = Date.now() + 500
    while (Date.now() < end) await c.run()
  }
  return cases
}

const memory = async () => {
  const runtime = ManagedRuntime.make(RateLimiter.layerMemory({ maxKeys: 10_000 }))
  const make = (name: string, algorithm: RateLimiter.Algorithm) =>
    runtime.runPromise(RateLimiter.make({ name, algorithm }))
  const tokenBucket = await make("bench-tb", RateLimiter.tokenBucket({ limit: 1e8, window: hour }))
  const counter = await make("bench-swc", RateLimiter.slidingWindowCounter({ limit: 1e8, window: hour }))
  const log = await make("bench-swl", RateLimiter.slidingWindowLog({ limit: 100_000, window: "1 second" }))
  const rlf = new RateLimiterMemory({ points: 1e9, duration: 3600 })

  const rows = await compare(
    `rate limiter in memory (${MEMORY_CALLS.toLocaleString("en-US")} sequential decisions per iteration, 1,000 keys)`,
    { callsPerIteration: MEMORY_CALLS, versus: ["RLF RateLimiterMemory in Effect.promise"] },
    await warmUp([
      { name: "Bulwark token bucket", run: () => Effect.runPromise(sequential((i) => tokenBucket.consume(key(i)))) },
      {
        name: "Bulwark sliding window counter",
        run: () => Effect.runPromise(sequential((i) => counter.consume(key(i))))
      },
      { name: "Bulwark sliding window log", run: () => Effect.runPromise(sequential((i) => log.consume(key(i)))) },
      {
        name: "RLF RateLimiterMemory in Effect.promise",
        run: () => Effect.runPromise(sequential((i) => Effect.promise(() => rlf.consume(key(i)))))
      }
    ])
  )
  await runtime.dispose()
  return rows
}

const redis = async () => {
  const prefix = `bulwark-bench:${process.pid}:`
  const runtime = ManagedRuntime.make(
    RedisRateLimiter.layer({ redis: REDIS, prefix, circuitBreaker: { name: "bench-redis" } })
  )
  const make = (name: string, algorithm: RateLimiter.Algorithm) =>
    runtime.runPromise(RateLimiter.make({ name, algorithm }))
  const tokenBucket = await make("tb", RateLimiter.tokenBucket({ limit: 1e8, window: hour }))
  const counter = await make("swc", RateLimiter.slidingWindowCounter({ limit: 1e8, window: hour }))
  const log = await make("swl", RateLimiter.slidingWindowLog({ limit: 100_000, window: "1 second" }))

  const rlfClient = new Redis({ ...REDIS, enableOfflineQueue: true })
  const rlf = new RateLimiterRedis({ storeClient: rlfClient, points: 1e9, duration: 3600, keyPrefix: `${prefix}rlf` })
  const rawClient = new Redis(REDIS)
  const { lua, sha } = scripts.TokenBucket
  await rawClient.script("LOAD", lua)
  // The same arguments the store sends for the token bucket above: server time, cost 1, no wait.
  const raw = (i: number) => rawClient.evalsha(sha, 1, `${prefix}raw:${key(i)}`, -1, 1, 0, 1e8, 3_600_000, 1e8, 1_000)

  const rows = await compare(
    `rate limiter on Redis (${
      REDIS_CALLS.toLocaleString("en-US")
    } decisions per iteration, ${CONCURRENCY} in flight, 1,000 keys)`,
    {
      callsPerIteration: REDIS_CALLS,
      time: 3_000,
      versus: ["RLF RateLimiterRedis in Effect.promise", "raw ioredis EVALSHA (token bucket script)"]
    },
    await warmUp([
      { name: "Bulwark token bucket", run: () => Effect.runPromise(concurrent((i) => tokenBucket.consume(key(i)))) },
      {
        name: "Bulwark sliding window counter",
        run: () => Effect.runPromise(concurrent((i) => counter.consume(key(i))))
      },
      { name: "Bulwark sliding window log", run: () => Effect.runPromise(concurrent((i) => log.consume(key(i)))) },
      {
        name: "RLF RateLimiterRedis in Effect.promise",
        run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => rlf.consume(key(i)))))
      },
      { name: "raw ioredis EVALSHA (token bucket script)", run: () => promisePool(raw) }
    ])
  )

  let cursor = "0"
  do {
    const [next, keys] = await rawClient.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
    if (keys.length > 0) await rawClient.del(...keys)
    cursor = next
  } while (cursor !== "0")
  await Promise.all([rlfClient.quit(), rawClient.quit(), runtime.dispose()])
  return rows
}

export const run = async () => {
  const inMemory = await memory()
  const onRedis = await redis()
  return { inMemory, onRedis }
}
