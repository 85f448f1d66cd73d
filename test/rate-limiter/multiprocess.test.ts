/**
 * Two OS processes share one Redis-backed limit and, together, never admit
 * more than it: on the Redis at 127.0.0.1:6379, and on a three-master Redis
 * Cluster started for this file. Fails (never skips) when either is missing.
 *
 * The worker (`worker.ts` beside this file) is spawned by path, not imported.
 */
import { afterAll, assert, beforeAll, describe, it, onTestFinished } from "@effect/vitest"
import type { Redis } from "ioredis"
import { resolve } from "node:path"
import * as Process from "../support/process.js"
import * as TestRedis from "../support/redis.js"
import * as TestCluster from "../support/redisCluster.js"

const worker = resolve(Process.root, "test/rate-limiter/worker.ts")
const REDIS = TestRedis.connection
const prefix = TestRedis.prefix("rate-limiter-multiprocess")

let admin: Redis | undefined

beforeAll(async () => {
  admin = await TestRedis.connect()
})

afterAll(() => TestRedis.cleanUp(admin, prefix))

interface Worker {
  readonly child: Process.Child
  readonly ready: Promise<void>
  readonly result: Promise<Record<string, number>>
}

/** A worker process, SIGKILLed when the test finishes (it has exited by then unless the test failed). */
const start = (config: object): Worker => {
  const child = Process.startTs(worker, [JSON.stringify(config)], { stdin: "open" })
  onTestFinished(async () => {
    child.kill("SIGKILL")
    await child.exited
  })
  const ready = child.waitFor(/ready\n/).then(() => undefined)
  const result = child.exited.then(({ code }) => {
    const out = child.stdout()
    if (code !== 0) throw new Error(`worker exited with ${code}: ${child.stderr()}`)
    const line = out.split("\n").find((l) => l.startsWith("{"))
    if (line === undefined) throw new Error(`worker printed no result: ${out} ${child.stderr()}`)
    const parsed: unknown = JSON.parse(line)
    if (typeof parsed !== "object" || parsed === null) throw new Error(`bad result: ${line}`)
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, Number(v)]))
  })
  return { child, ready, result }
}

/** Two workers race for one limit per algorithm; together they take each limit exactly once. */
const sharedLimit = async (connection: { readonly host: string; readonly port: number; readonly cluster: boolean }) => {
  const limit = 40
  // A day-long window: no refill, and (almost surely) no window boundary during the test.
  const config = { ...connection, prefix, attempts: 150, limit, window: 86_400_000 }
  const workers = [start(config), start(config)]
  await Promise.all(workers.map((w) => w.ready))
  for (const w of workers) w.child.process.stdin.write("go\n")
  const [a, b] = await Promise.all(workers.map((w) => w.result))
  if (a === undefined || b === undefined) return assert.fail("missing results")
  const total = (name: string) => (a[name] ?? 0) + (b[name] ?? 0)
  // Each process alone would take the whole limit; together they take it exactly once.
  for (const name of ["token-bucket", "fixed-window", "sliding-log", "sliding-counter", "gcra"]) {
    assert.strictEqual(total(name), limit, `${name}: ${a[name]} + ${b[name]}`)
  }
  // In reject mode the shaper lets one call through per emission interval (36 minutes here).
  assert.strictEqual(total("leaky-bucket"), 1)
  // Both processes really took part: Redis decided every call of each (none answered degraded). Which one
  // got the admissions depends on scheduling (on a loaded machine one may start after the other took them all).
  assert.strictEqual(a["decided"], 6 * config.attempts)
  assert.strictEqual(b["decided"], 6 * config.attempts)
}

describe("a Redis rate limit shared by two processes", () => {
  it("never admits more than the limit between them", () => sharedLimit({ ...REDIS, cluster: false }), 30_000)
})

describe("a Redis Cluster rate limit shared by two processes", () => {
  let cluster: TestCluster.TestCluster | undefined
  beforeAll(async () => {
    cluster = await TestCluster.start()
  }, 60_000)
  afterAll(() => cluster?.stop())

  it("never admits more than the limit between them, each limit's state one key on the node owning it", async () => {
    const running = cluster ?? assert.fail("the cluster did not start")
    // One seed node: the workers discover the other two from it.
    await sharedLimit({ ...(running.nodes[1] ?? assert.fail("no node")), cluster: true })
    const perNode = await Promise.all([0, 1, 2].map((i) => running.node(i).keys(`${prefix}*`)))
    assert.strictEqual(perNode.flat().length, 6, perNode.flat().join(", "))
    for (const [i, keys] of perNode.entries()) {
      for (const key of keys) assert.strictEqual(await running.nodeOf(key), i, key)
    }
  }, 30_000)
})
