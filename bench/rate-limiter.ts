/**
 * Rate-limiter decisions per second, in memory and on Redis, against
 * rate-limiter-flexible (RLF) wrapped in `Effect.promise` (the way an Effect
 * user would adopt it), and the Redis path against the raw Redis ceiling: an
 * ioredis `EVALSHA` loop of the store's own token-bucket script, with no
 * breaker, parsing or decision around it.
 *
 * On Redis every case has the same shape: 2,000 calls per iteration driven by
 * `Effect.forEach` with 32 in flight, over the same 1,000 keys, through ioredis
 * clients made from the same options (`CLIENT`). The raw ceiling comes three
 * ways: plain, with the socket corked per tick as the store does, and in a
 * plain promise pool without Effect (the driver's own cost). RLF comes plain
 * and on a client with `enableAutoPipelining`, ioredis' own way of sending a
 * tick's commands in one write. A second table runs the same cases again in
 * interleaved rounds (load drift on a shared machine then weighs on all of
 * them alike) and shows CPU time per decision on both sides.
 *
 * Limits are high enough that nothing is refused (RLF rejects with a thrown
 * object, which would measure exceptions instead of decisions); keys rotate
 * over 1,000 users. RLF's Redis limiter is a fixed window (`INCRBY` + `PTTL`
 * in one script), its memory limiter a fixed window on a `Map`.
 *
 * Needs Redis on 127.0.0.1:6379.
 */
// Subpath imports: the bench needs only these modules, not the whole barrel.
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import * as Effect from "effect/Effect"
import * as ManagedRuntime from "effect/ManagedRuntime"
import { Redis } from "ioredis"
import { RateLimiterMemory, RateLimiterRedis } from "rate-limiter-flexible"
import * as TestRedis from "../test/support/redis.js"
// The raw ceiling runs the very script the Redis store runs, and its write coalescing, so both are taken from
// the internals on purpose.
import { coalescer, scripts } from "../packages/resilience/src/rate-limiter/internal/redisStore.js"
import { type Case, compare } from "./harness.js"

const MEMORY_CALLS = 1_000
const REDIS_CALLS = 2_000
const CONCURRENCY = 32
const KEYS = Array.from({ length: 1_000 }, (_, i) => `user-${i}`)
const key = (i: number): string => KEYS[i % KEYS.length] ?? "user-0"
const REDIS = TestRedis.connection

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

const redisCpuMicros = async (admin: Redis): Promise<number> => {
  const info = await admin.info("cpu")
  const seconds = (field: string) => Number(new RegExp(`${field}:([0-9.]+)`).exec(info)?.[1] ?? Number.NaN)
  return (seconds("used_cpu_user") + seconds("used_cpu_sys")) * 1e6
}

/**
 * The same cases again, interleaved: each round runs every case once, in an order rotated from round to
 * round, so that a change in the machine's load (it is shared) weighs on every case alike, where the
 * sequential table above lets it fall on whichever case runs at the time. Also measures CPU time per
 * decision on both sides: Node's (this process) and Redis' (`INFO cpu`, which counts any other client of
 * that Redis too).
 */
const interleaved = async (
  title: string,
  admin: Redis,
  cases: ReadonlyArray<Case>,
  options: { readonly rounds: number; readonly versus: ReadonlyArray<string> }
) => {
  const totals = cases.map(() => ({ millis: 0, node: 0, redis: 0, runs: 0 }))
  for (let round = 0; round < options.rounds; round++) {
    for (let k = 0; k < cases.length; k++) {
      const index = (k + round) % cases.length
      const c = cases[index]
      const total = totals[index]
      if (c === undefined || total === undefined) continue
      const redisBefore = await redisCpuMicros(admin)
      const nodeBefore = process.cpuUsage()
      const start = performance.now()
      await c.run()
      total.millis += performance.now() - start
      const node = process.cpuUsage(nodeBefore)
      total.node += node.user + node.system
      total.redis += (await redisCpuMicros(admin)) - redisBefore
      total.runs++
    }
  }
  const rate = (i: number) => {
    const total = totals[i]
    return total === undefined ? Number.NaN : (total.runs * REDIS_CALLS) / (total.millis / 1000)
  }
  const width = Math.max(...cases.map((c) => c.name.length))
  const versus = options.versus.map((name) => cases.findIndex((c) => c.name === name))
  console.log(`\n## ${title}\n`)
  console.log(
    [
      "case".padEnd(width),
      "ops/s".padStart(9),
      ...options.versus.map((v) => `vs ${v}`.slice(0, 28).padStart(28)),
      "Node µs".padStart(8),
      "Redis µs".padStart(9)
    ].join("  ")
  )
  cases.forEach((c, i) => {
    const total = totals[i]
    if (total === undefined) return
    const perDecision = (micros: number) => (micros / (total.runs * REDIS_CALLS)).toFixed(2)
    console.log(
      [
        c.name.padEnd(width),
        Math.round(rate(i)).toLocaleString("en-US").padStart(9),
        ...versus.map((j) => `${(rate(i) / rate(j)).toFixed(2)}×`.padStart(28)),
        perDecision(total.node).padStart(8),
        perDecision(total.redis).padStart(9)
      ].join("  ")
    )
  })
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

/**
 * Every Redis client here is made from these options: the store's own defaults (no offline queue, one retry,
 * a command timeout), which rate-limiter-flexible's documentation also recommends for its clients.
 */
const CLIENT = {
  ...REDIS,
  lazyConnect: true,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 1_000
} as const

const redis = async () => {
  const prefix = `bulwark-bench:${process.pid}:`
  const runtime = ManagedRuntime.make(
    RedisRateLimiter.layer({ redis: CLIENT, prefix, circuitBreaker: { name: "bench-redis" } })
  )
  const make = (name: string, algorithm: RateLimiter.Algorithm) =>
    runtime.runPromise(RateLimiter.make({ name, algorithm }))
  const tokenBucket = await make("tb", RateLimiter.tokenBucket({ limit: 1e8, window: hour }))
  const counter = await make("swc", RateLimiter.slidingWindowCounter({ limit: 1e8, window: hour }))
  const log = await make("swl", RateLimiter.slidingWindowLog({ limit: 100_000, window: "1 second" }))

  const rlfClient = new Redis(CLIENT)
  const rlf = new RateLimiterRedis({ storeClient: rlfClient, points: 1e9, duration: 3600, keyPrefix: `${prefix}rlf` })
  // ioredis' own answer to one syscall per command: it queues commands until setImmediate and sends them as one
  // pipeline, with one pipeline in flight at a time.
  const rlfAutoClient = new Redis({ ...CLIENT, enableAutoPipelining: true })
  const rlfAuto = new RateLimiterRedis({
    storeClient: rlfAutoClient,
    points: 1e9,
    duration: 3600,
    keyPrefix: `${prefix}rlfauto`
  })
  const rawClient = new Redis(CLIENT)
  const admin = new Redis(CLIENT)
  const { lua, sha } = scripts.redis.TokenBucket.decide
  await Promise.all([rlfClient.connect(), rlfAutoClient.connect(), rawClient.connect(), admin.connect()])
  await rawClient.script("LOAD", lua)
  // The same arguments the store sends for the token bucket above: server time, cost 1, no wait.
  const raw = (i: number) => rawClient.evalsha(sha, 1, `${prefix}raw:${key(i)}`, 1, 0, 1e8, 3_600_000, 1e8)
  // The same, with the store's write coalescing (corked socket, flushed every few commands and per tick).
  const coalesce = coalescer(rawClient)
  const rawCorked = (i: number) => {
    let reply: Promise<unknown> = Promise.resolve()
    coalesce(() => {
      reply = raw(i)
    })
    return reply
  }

  const rlfName = "RLF RateLimiterRedis"
  const rawName = "raw EVALSHA (token bucket script)"
  const cases: ReadonlyArray<Case> = [
    { name: "Bulwark token bucket", run: () => Effect.runPromise(concurrent((i) => tokenBucket.consume(key(i)))) },
    {
      name: "Bulwark sliding window counter",
      run: () => Effect.runPromise(concurrent((i) => counter.consume(key(i))))
    },
    { name: "Bulwark sliding window log", run: () => Effect.runPromise(concurrent((i) => log.consume(key(i)))) },
    {
      name: rlfName,
      run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => rlf.consume(key(i)))))
    },
    {
      name: `${rlfName}, auto-pipelining client`,
      run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => rlfAuto.consume(key(i)))))
    },
    { name: rawName, run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => raw(i)))) },
    {
      name: `${rawName}, corked writes`,
      run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => rawCorked(i))))
    },
    { name: `${rawName}, promise pool without Effect`, run: () => promisePool(raw) }
  ]
  const shape = `${
    REDIS_CALLS.toLocaleString("en-US")
  } decisions per iteration, ${CONCURRENCY} in flight through Effect.forEach, 1,000 keys, same client options`
  const rows = await compare(
    `rate limiter on Redis (${shape})`,
    { callsPerIteration: REDIS_CALLS, time: 2_000, versus: [rlfName, rawName] },
    await warmUp(cases)
  )
  await interleaved(`rate limiter on Redis, interleaved rounds (${shape})`, admin, cases, {
    rounds: 30,
    versus: [rlfName, rawName]
  })

  await TestRedis.deleteKeys(rawClient, prefix)
  await Promise.all([rlfClient.quit(), rlfAutoClient.quit(), rawClient.quit(), admin.quit(), runtime.dispose()])
  return rows
}

export const run = async () => {
  const inMemory = await memory()
  const onRedis = await redis()
  return { inMemory, onRedis }
}
