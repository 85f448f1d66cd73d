/**
 * Three OS processes share one breaker (`RedisCircuitBreaker`) in front of a failing dependency: a real HTTP server
 * in this process that counts every call it sees, with its time and caller. Needs Redis on 127.0.0.1:6379 and fails
 * (never skips) when it is not there.
 *
 * Only worker "a" can trip the breaker by itself (3 failures in a row); "b" and "c" would need 10,000, so they open
 * only because "a" did: the time between "a"'s trip and their own opening is the propagation delay. The dependency
 * fails until the first half-open round has reopened the breaker, then recovers: the second round closes it.
 *
 * The worker (`fleet-worker.ts` beside this file) is spawned by path, not imported.
 */
import { afterAll, assert, beforeAll, describe, it, onTestFinished } from "@effect/vitest"
import type { Redis } from "ioredis"
import { createServer, type Server } from "node:http"
import { resolve } from "node:path"
import * as Process from "../support/process.js"
import * as TestRedis from "../support/redis.js"

const worker = resolve(Process.root, "test/circuit-breaker/fleet-worker.ts")
const prefix = TestRedis.prefix("cb-fleet-processes")

let admin: Redis | undefined

beforeAll(async () => {
  admin = await TestRedis.connect()
})

afterAll(() => TestRedis.cleanUp(admin, prefix))

interface Seen {
  readonly at: number
  readonly worker: string
  readonly healthy: boolean
}

interface Transition {
  readonly worker: string
  readonly from: string
  readonly to: string
  readonly reason: string
  readonly at: number
}

/** The dependency: fails (500) until `recover`, counts every call. */
const dependency = async () => {
  const seen: Array<Seen> = []
  let healthy = false
  const server: Server = createServer((request, response) => {
    const caller = request.headers["x-worker"]
    seen.push({ at: Date.now(), worker: typeof caller === "string" ? caller : "?", healthy })
    response.statusCode = healthy ? 200 : 500
    response.end(healthy ? "ok" : "down")
  })
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready))
  const address = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0
  return {
    url: `http://127.0.0.1:${port}/`,
    seen,
    recover: () => {
      healthy = true
      return Date.now()
    },
    close: () => new Promise<void>((done) => server.close(() => done()))
  }
}

const start = (config: object, id: string, transitions: Array<Transition>) => {
  const child = Process.startTs(worker, [JSON.stringify({ ...config, id })], { stdin: "open" })
  onTestFinished(async () => {
    child.kill("SIGKILL")
    await child.exited
  })
  let read = 0
  child.process.stdout.on("data", () => {
    const lines = child.stdout().slice(read).split("\n")
    const complete = lines.slice(0, -1)
    read += complete.reduce((sum, line) => sum + line.length + 1, 0)
    for (const line of complete) {
      if (!line.startsWith("EVENT ")) continue
      const event: unknown = JSON.parse(line.slice(6))
      if (typeof event !== "object" || event === null) continue
      const field = (key: string) => (key in event ? (event as Record<string, unknown>)[key] : undefined)
      transitions.push({
        worker: id,
        from: String(field("from")),
        to: String(field("to")),
        reason: String(field("reason")),
        at: Number(field("at"))
      })
    }
  })
  const ready = child.waitFor(/ready\n/, { timeoutMillis: 20_000 }).then(() => undefined)
  const done = child.exited.then(({ code }) => {
    const line = child.stdout().split("\n").find((l) => l.startsWith("DONE "))
    if (code !== 0 || line === undefined) throw new Error(`worker ${id} exited with ${code}: ${child.output()}`)
    return line.slice(5)
  })
  return { child, ready, done }
}

const until = async (condition: () => boolean, timeoutMillis: number, what: string) => {
  const since = Date.now()
  while (!condition()) {
    if (Date.now() - since > timeoutMillis) throw new Error(`${what}: not within ${timeoutMillis} ms`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

describe("a circuit breaker shared by three processes through Redis", () => {
  it(
    "opens everywhere within a bounded delay, keeps the dependency unbothered while open, and probes N times in all",
    async () => {
      const server = await dependency()
      onTestFinished(() => server.close())
      const transitions: Array<Transition> = []
      const everyMillis = 5
      const permits = 2
      const base = {
        ...TestRedis.connection,
        prefix,
        name: "fleet-processes",
        url: server.url,
        openMillis: 1_000,
        permits,
        everyMillis,
        runMillis: 4_000
      }
      const workers = [
        start({ ...base, failures: 3 }, "a", transitions),
        start({ ...base, failures: 10_000 }, "b", transitions),
        start({ ...base, failures: 10_000 }, "c", transitions)
      ]
      await Promise.all(workers.map((w) => w.ready))
      for (const w of workers) w.child.process.stdin.write("go\n")

      // The first half-open round's probes fail and reopen the breaker; then the dependency recovers.
      await until(() => transitions.some((t) => t.from === "HalfOpen" && t.to === "Open"), 10_000, "a reopening")
      // A probe of that round may still be on its way (another's failure reopened the breaker): let it arrive.
      await new Promise((r) => setTimeout(r, 150))
      const recoveredAt = server.recover()
      const results = await Promise.all(workers.map((w) => w.done))

      const tripped = transitions.find((t) => t.reason === "Tripped")
      assert.isDefined(tripped, JSON.stringify(transitions))
      if (tripped === undefined) return
      assert.strictEqual(tripped.worker, "a", "only a trips by itself")
      const openedAt = (id: string) =>
        transitions.find((t) => t.worker === id && t.from === "Closed" && t.to === "Open")
      const delays = ["b", "c"].map((id) => {
        const opened = openedAt(id)
        assert.isDefined(opened, `${id} opened`)
        assert.strictEqual(opened?.reason, "FleetOpened", `${id} opened because a did`)
        return (opened?.at ?? Infinity) - tripped.at
      })
      const delay = Math.max(...delays)

      // Calls the dependency saw from each instance after the trip and before the first half-open round.
      const firstRound = tripped.at + base.openMillis
      const openWindow = server.seen.filter((s) => s.at > tripped.at && s.at < firstRound - 50)
      const lateCalls = (id: string) => {
        const opened = openedAt(id)?.at ?? Infinity
        // A call on its way when the instance opened arrives a moment later: 20 ms of slack for the loopback.
        return openWindow.filter((s) => s.worker === id && s.at > opened + 20).length
      }
      const whileOpen = openWindow.length
      // Each of b and c calls at most once every `everyMillis` while it does not know yet; a stopped at once.
      const bound = 2 * (Math.ceil(delay / everyMillis) + 2) + 1

      const probes1 = server.seen.filter((s) => s.at >= firstRound - 50 && !s.healthy)
      const reopenedAt = transitions.find((t) => t.from === "HalfOpen" && t.to === "Open")?.at ?? 0
      // Open again for `openMillis`: apart from that round's own probes arriving, the dependency hears nothing.
      const whileReopened = server.seen.filter((s) =>
        s.at > reopenedAt + 100 && s.at < reopenedAt + base.openMillis - 50
      )
      const closedAt = transitions.filter((t) => t.to === "Closed").reduce((min, t) => Math.min(min, t.at), Infinity)
      const probes2 = server.seen.filter((s) => s.healthy && s.at <= closedAt)
      console.log(
        `[fleet-processes] open propagation: ${delays.map((d) => `${d} ms`).join(", ")}; ` +
          `calls after the trip while open: ${whileOpen} (bound ${bound}); ` +
          `half-open probes: round 1 ${probes1.length} (failing), round 2 ${probes2.length} (recovered, closed it); ` +
          `calls in all ${server.seen.length}, after the close ${server.seen.filter((s) => s.at > closedAt).length}`
      )

      assert.isAtMost(delay, 500, "the other instances treat it as open within a bounded delay")
      assert.isAtMost(whileOpen, bound)
      for (const id of ["a", "b", "c"]) assert.strictEqual(lateCalls(id), 0, `${id} called after it knew`)
      assert.isAtLeast(probes1.length, 1)
      assert.isAtMost(probes1.length, permits, "round 1: at most N probes across the three processes")
      assert.strictEqual(whileReopened.length, 0, "nothing reaches the dependency while the breaker is open again")
      assert.isAbove(closedAt, recoveredAt)
      assert.strictEqual(probes2.length, permits, "round 2: N successful probes across the three, which close it")
      // Every instance closed, and traffic came back from each.
      for (const [index, id] of ["a", "b", "c"].entries()) {
        assert.include(results[index], `"state":"Closed"`, id)
        assert.isAbove(server.seen.filter((s) => s.worker === id && s.at > closedAt + 100).length, 10, id)
      }
    },
    60_000
  )
})
