/**
 * Two OS processes share one Redis-backed limit and, together, never admit
 * more than it. Needs Redis on 127.0.0.1:6379 and fails (never skips) when it
 * is not there.
 *
 * The worker (`worker.ts` beside this file) is spawned by path, not imported.
 */
import { afterAll, assert, beforeAll, describe, it, onTestFinished } from "@effect/vitest"
import type { Redis } from "ioredis"
import { resolve } from "node:path"
import * as Process from "../support/process.js"
import * as TestRedis from "../support/redis.js"

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

describe("a Redis rate limit shared by two processes", () => {
  it("never admits more than the limit between them", async () => {
    const limit = 40
    // A day-long window: no refill, and (almost surely) no window boundary during the test.
    const config = { ...REDIS, prefix, attempts: 150, limit, window: 86_400_000 }
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
  }, 30_000)
})
