/**
 * Two OS processes share one Redis-backed limit and, together, never admit
 * more than it. Needs Redis on 127.0.0.1:6379 and fails (never skips) when it
 * is not there.
 *
 * The worker lives beside the Redis store
 * (`packages/resilience/src/rate-limiter/RedisRateLimiter.worker.ts`), where
 * it can import the store's modules; it is spawned by path, not imported.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { Redis } from "ioredis"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath } from "node:url"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const tsx = resolve(root, "node_modules/tsx/dist/cli.mjs")
const worker = resolve(root, "packages/resilience/src/rate-limiter/RedisRateLimiter.worker.ts")
const REDIS = { host: "127.0.0.1", port: 6379 } as const
const prefix = `bulwark-test:multiprocess:${process.pid}:${Date.now().toString(36)}:`

let admin: Redis

beforeAll(async () => {
  admin = new Redis({ ...REDIS, lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false })
  admin.on("error", () => undefined)
  try {
    await admin.connect()
    await admin.ping()
  } catch (cause) {
    throw new Error(`This test needs Redis on ${REDIS.host}:${REDIS.port} and could not reach it: ${String(cause)}`)
  }
})

afterAll(async () => {
  let cursor = "0"
  do {
    const [next, keys] = await admin.scan(cursor, "MATCH", `${prefix}*`, "COUNT", 1000)
    if (keys.length > 0) await admin.del(...keys)
    cursor = next
  } while (cursor !== "0")
  await admin.quit()
})

interface Worker {
  readonly child: ChildProcessWithoutNullStreams
  readonly ready: Promise<void>
  readonly result: Promise<Record<string, number>>
}

const start = (config: object): Worker => {
  const child = spawn(process.execPath, [tsx, worker, JSON.stringify(config)], { cwd: root })
  let out = ""
  let err = ""
  let markReady: () => void = () => undefined
  const ready = new Promise<void>((resolveReady) => {
    markReady = resolveReady
  })
  child.stdout.on("data", (chunk: Buffer) => {
    out += chunk.toString()
    if (out.includes("ready\n")) markReady()
  })
  child.stderr.on("data", (chunk: Buffer) => {
    err += chunk.toString()
  })
  const result = new Promise<Record<string, number>>((resolveResult, reject) => {
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`worker exited with ${code}: ${err}`))
      const line = out.split("\n").find((l) => l.startsWith("{"))
      if (line === undefined) return reject(new Error(`worker printed no result: ${out} ${err}`))
      const parsed: unknown = JSON.parse(line)
      if (typeof parsed !== "object" || parsed === null) return reject(new Error(`bad result: ${line}`))
      resolveResult(Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, Number(v)])))
    })
  })
  return { child, ready, result }
}

describe("a Redis rate limit shared by two processes", () => {
  it("never admits more than the limit between them", async () => {
    const limit = 40
    // A day-long window: no refill, and (almost surely) no window boundary during the test.
    const config = { ...REDIS, prefix, attempts: 150, limit, window: 86_400_000 }
    const workers = [start(config), start(config)]
    await Promise.all(workers.map((w) => w.ready))
    for (const w of workers) w.child.stdin.write("go\n")
    const [a, b] = await Promise.all(workers.map((w) => w.result))
    if (a === undefined || b === undefined) return assert.fail("missing results")
    const total = (name: string) => (a[name] ?? 0) + (b[name] ?? 0)
    // Each process alone would take the whole limit; together they take it exactly once.
    for (const name of ["token-bucket", "fixed-window", "sliding-log", "sliding-counter", "gcra"]) {
      assert.strictEqual(total(name), limit, `${name}: ${a[name]} + ${b[name]}`)
    }
    // In reject mode the shaper lets one call through per emission interval (36 minutes here).
    assert.strictEqual(total("leaky-bucket"), 1)
    // Both processes really took part.
    assert.isAbove(Object.values(a).reduce((x, y) => x + y, 0), 0)
    assert.isAbove(Object.values(b).reduce((x, y) => x + y, 0), 0)
  }, 30_000)
})
