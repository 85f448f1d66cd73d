/**
 * Past one Redis and one process.
 *
 * 1. The Redis rate limiter on a three-master Redis Cluster (real `redis-server --cluster-enabled yes` processes on
 *    loopback, started here) against the same limiter on a single node (the machine's Redis on 127.0.0.1:6379) and
 *    against rate-limiter-flexible's `RateLimiterRedis` on the same cluster and on the same single node, in one run.
 *    Every case makes 2,000 decisions per iteration, 32 in flight through `Effect.forEach`, over the same 1,000
 *    keys, through ioredis clients made from the same options. On one machine the three cluster nodes share its
 *    cores with Node: this measures what the cluster path costs, not what a cluster of machines would scale to.
 * 2. The shared (fleet) circuit breaker's per-call overhead against the local breaker it wraps: sequential calls of
 *    a no-op through each, closed, then the fleet breaker with its store lost (local fallback).
 *
 * Needs Redis on 127.0.0.1:6379 and `redis-server` on PATH.
 */
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as RedisCircuitBreaker from "@bulwark/resilience/RedisCircuitBreaker"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Scope from "effect/Scope"
import { Cluster, Redis } from "ioredis"
import { RateLimiterRedis } from "rate-limiter-flexible"
import * as TestRedis from "../test/support/redis.js"
import * as TestCluster from "../test/support/redisCluster.js"
import { type Case, compare } from "./harness.js"

const CALLS = 2_000
const CONCURRENCY = 32
const KEYS = Array.from({ length: 1_000 }, (_, i) => `user-${i}`)
const key = (i: number): string => KEYS[i % KEYS.length] ?? "user-0"
const hour = "1 hour"
const INTERLEAVED_ROUNDS = 25

const concurrent = <E>(call: (i: number) => Effect.Effect<unknown, E>): Effect.Effect<void, E> =>
  Effect.forEach(Array.from({ length: CALLS }, (_, i) => i), call, { concurrency: CONCURRENCY, discard: true })

/** The store's own client defaults, which rate-limiter-flexible's documentation also recommends. */
const CLIENT = { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 1_000 } as const

/** Runs every case for a while before measuring any, so the first measured does not pay for warming the JIT. */
const warmUp = async (cases: ReadonlyArray<Case>): Promise<ReadonlyArray<Case>> => {
  for (const c of cases) {
    const end = Date.now() + 500
    while (Date.now() < end) await c.run()
  }
  return cases
}

/** Deletes the keys under `prefix` on every master of the cluster (SCAN is per node; one key per UNLINK). */
const deleteOnCluster = async (cluster: Cluster, prefix: string): Promise<void> => {
  await Promise.all(
    cluster.nodes("master").map(async (node) => {
      const keys = await TestRedis.keysUnder(node, prefix)
      const pipeline = node.pipeline()
      for (const k of keys) pipeline.unlink(k)
      await pipeline.exec()
    })
  )
}

/**
 * The same cases again, interleaved: each round runs every case once, in an order rotated from round to round,
 * so a change in the machine's load weighs on every case alike. Also prints Node's CPU time per decision (this
 * process: the client side, where the cluster path's extra cost is), much steadier than ops/s on a shared machine;
 * the three cluster nodes' CPU is not counted.
 */
const interleaved = async (
  title: string,
  cases: ReadonlyArray<Case>,
  options: { readonly rounds: number; readonly versus: ReadonlyArray<string> }
): Promise<void> => {
  const totals = cases.map(() => ({ millis: 0, cpu: 0, runs: 0 }))
  for (let round = 0; round < options.rounds; round++) {
    for (let k = 0; k < cases.length; k++) {
      const index = (k + round) % cases.length
      const c = cases[index]
      const total = totals[index]
      if (c === undefined || total === undefined) continue
      const before = process.cpuUsage()
      const start = performance.now()
      await c.run()
      total.millis += performance.now() - start
      const used = process.cpuUsage(before)
      total.cpu += used.user + used.system
      total.runs++
    }
  }
  const rate = (i: number) => {
    const total = totals[i]
    return total === undefined ? Number.NaN : (total.runs * CALLS) / (total.millis / 1000)
  }
  const cpu = (i: number) => {
    const total = totals[i]
    return total === undefined ? Number.NaN : total.cpu / (total.runs * CALLS)
  }
  const width = Math.max(...cases.map((c) => c.name.length))
  const versus = options.versus.map((name) => cases.findIndex((c) => c.name === name))
  console.log(`\n## ${title}\n`)
  console.log(
    [
      "case".padEnd(width),
      "ops/s".padStart(9),
      "Node µs".padStart(8),
      ...options.versus.map((v) => `CPU vs ${v}`)
    ].join("  ")
  )
  cases.forEach((c, i) =>
    console.log(
      [
        c.name.padEnd(width),
        Math.round(rate(i)).toLocaleString("en-US").padStart(9),
        cpu(i).toFixed(2).padStart(8),
        ...versus.map((j, k) => `${(cpu(i) / cpu(j)).toFixed(2)}×`.padStart(`CPU vs ${options.versus[k] ?? ""}`.length))
      ].join("  ")
    )
  )
}

const limiters = async (testCluster: TestCluster.TestCluster) => {
  const prefix = `bulwark-bench:${process.pid}:`
  const single = ManagedRuntime.make(
    RedisRateLimiter.layer({ redis: { ...TestRedis.connection, ...CLIENT }, prefix, circuitBreaker: { name: "a" } })
  )
  const clustered = ManagedRuntime.make(
    RedisRateLimiter.layer({
      cluster: { nodes: testCluster.nodes.map((node) => ({ ...node })), options: { redisOptions: CLIENT } },
      prefix,
      circuitBreaker: { name: "b" }
    })
  )
  const algorithm = RateLimiter.tokenBucket({ limit: 1e8, window: hour })
  const onSingle = await single.runPromise(RateLimiter.make({ name: "single", algorithm }))
  const onCluster = await clustered.runPromise(RateLimiter.make({ name: "cluster", algorithm }))

  const rlfSingleClient = new Redis({ ...TestRedis.connection, ...CLIENT })
  const rlfClusterClient = new Cluster(testCluster.nodes.map((node) => ({ ...node })), {
    lazyConnect: true,
    enableOfflineQueue: false,
    redisOptions: CLIENT
  })
  await Promise.all([rlfSingleClient.connect(), rlfClusterClient.connect()])
  const rlfSingle = new RateLimiterRedis({
    storeClient: rlfSingleClient,
    points: 1e9,
    duration: 3600,
    keyPrefix: `${prefix}rlf`
  })
  const rlfCluster = new RateLimiterRedis({
    storeClient: rlfClusterClient,
    points: 1e9,
    duration: 3600,
    keyPrefix: `${prefix}rlf`
  })

  const rlfClusterName = "RLF RateLimiterRedis, cluster"
  const singleName = "Bulwark token bucket, single node"
  const cases: ReadonlyArray<Case> = [
    { name: singleName, run: () => Effect.runPromise(concurrent((i) => onSingle.consume(key(i)))) },
    {
      name: "Bulwark token bucket, cluster",
      run: () => Effect.runPromise(concurrent((i) => onCluster.consume(key(i))))
    },
    {
      name: "RLF RateLimiterRedis, single node",
      run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => rlfSingle.consume(key(i)))))
    },
    {
      name: rlfClusterName,
      run: () => Effect.runPromise(concurrent((i) => Effect.promise(() => rlfCluster.consume(key(i)))))
    }
  ]
  const rows = await compare(
    `rate limiter on a 3-master Redis Cluster and on one node (${
      CALLS.toLocaleString("en-US")
    } decisions per iteration, ${CONCURRENCY} in flight, 1,000 keys, same client options)`,
    { callsPerIteration: CALLS, time: 3_000, rounds: 3, versus: [rlfClusterName, singleName] },
    await warmUp(cases)
  )
  await interleaved(
    `the same, interleaved (${INTERLEAVED_ROUNDS} rounds): Node CPU time per decision`,
    cases,
    { rounds: INTERLEAVED_ROUNDS, versus: [rlfClusterName, singleName] }
  )

  const admin = await TestRedis.connect()
  await TestRedis.deleteKeys(admin, prefix)
  await admin.quit()
  await deleteOnCluster(testCluster.admin, prefix)
  rlfSingleClient.disconnect()
  rlfClusterClient.disconnect()
  await Promise.all([single.dispose(), clustered.dispose()])
  return rows
}

const BREAKER_CALLS = 1_000

/** `BREAKER_CALLS` sequential runs of `effect`, its failure (an open breaker's refusal) kept as a value. */
const breakerLoop = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<void> =>
  Effect.gen(function*() {
    for (let i = 0; i < BREAKER_CALLS; i++) yield* Effect.either(effect)
  })

/** A port nothing listens on: a store lost from the start. */
const DEAD_REDIS = { host: "127.0.0.1", port: 1 } as const

const breakers = async () => {
  const scope = Effect.runSync(Scope.make())
  const inScope = <A, E>(effect: Effect.Effect<A, E, Scope.Scope>): Promise<A> =>
    Effect.runPromise(Scope.extend(effect, scope))
  const prefix = `bulwark-bench:${process.pid}:cb:`
  const options = { trip: CircuitBreaker.consecutiveFailures(5), openDuration: "1 hour" } as const
  const local = await inScope(CircuitBreaker.makeScoped({ name: "bench-local", ...options }))
  const shared = await inScope(
    RedisCircuitBreaker.make({ name: "bench-shared", ...options, redis: { ...TestRedis.connection }, prefix })
  )
  const lost = await inScope(
    RedisCircuitBreaker.make({ name: "bench-lost", ...options, redis: DEAD_REDIS, prefix })
  )
  const localOpen = await inScope(CircuitBreaker.makeScoped({ name: "bench-local-open", ...options }))
  const sharedOpen = await inScope(
    RedisCircuitBreaker.make({ name: "bench-shared-open", ...options, redis: { ...TestRedis.connection }, prefix })
  )
  // Five failures open each of the two; the shared one announces it to Redis (and to any other instance).
  for (const breaker of [localOpen, sharedOpen]) {
    await Effect.runPromise(breakerLoop(Effect.fail("down").pipe(CircuitBreaker.protect(breaker))))
  }
  const ok = Effect.succeed(1)
  const localName = "local CircuitBreaker, closed"
  const localOpenName = "local CircuitBreaker, open (refusals)"
  const closed = await compare(
    `shared (fleet) circuit breaker vs the local breaker: closed and open (${
      BREAKER_CALLS.toLocaleString("en-US")
    } sequential calls per iteration)`,
    { callsPerIteration: BREAKER_CALLS, rounds: 3, versus: [localName, localOpenName] },
    await warmUp([
      { name: localName, run: () => Effect.runPromise(breakerLoop(ok.pipe(CircuitBreaker.protect(local)))) },
      {
        name: "RedisCircuitBreaker, closed",
        run: () => Effect.runPromise(breakerLoop(ok.pipe(CircuitBreaker.protect(shared))))
      },
      {
        name: "RedisCircuitBreaker, closed, store lost (local fallback)",
        run: () => Effect.runPromise(breakerLoop(ok.pipe(CircuitBreaker.protect(lost))))
      },
      { name: localOpenName, run: () => Effect.runPromise(breakerLoop(ok.pipe(CircuitBreaker.protect(localOpen)))) },
      {
        name: "RedisCircuitBreaker, open (refusals)",
        run: () => Effect.runPromise(breakerLoop(ok.pipe(CircuitBreaker.protect(sharedOpen))))
      }
    ])
  )
  await Effect.runPromise(Scope.close(scope, Exit.void))
  const admin = await TestRedis.connect()
  await TestRedis.deleteKeys(admin, prefix)
  await admin.quit()
  return closed
}

export const run = async () => {
  const testCluster = await TestCluster.start()
  try {
    const limiterRows = await limiters(testCluster)
    const breakerRows = await breakers()
    return { limiterRows, breakerRows }
  } finally {
    await testCluster.stop()
  }
}
