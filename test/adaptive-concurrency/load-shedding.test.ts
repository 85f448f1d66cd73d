/**
 * Load shedding under real HTTP load: the payments example
 * (`examples/payments/main.ts`, a child process on a scratch PostgreSQL
 * database, the simulated gateway in process) driven by 256 keep-alive
 * connections, each sending `POST /payments` with a new `Idempotency-Key` as
 * soon as its previous answer arrived (`loadgen.ts`).
 *
 * With the adaptive limit (the example's default), overload is answered with
 * fast 503 refusals carrying `Retry-After`, accepted requests keep a bounded
 * latency, and every accepted payment is in the database; at low load
 * nothing is refused. Without it (`LOAD_SHEDDING=false`), the same load is
 * only queued: nothing is refused and latency grows. The bounds are
 * behavioural, with wide margins (this runs on a shared 2-core machine); the
 * targets are measured by `bench/load-shedding.ts`.
 *
 * The clients here honour `Retry-After`, as well-behaved clients (and the
 * demo's) do; a client that asks again at once keeps a Node server's single
 * event loop busy answering refusals, which the benchmark measures too.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import * as Postgres from "../support/postgres.js"
import * as Process from "../support/process.js"
import * as Load from "./loadgen.js"

const READY = /payments listening on (http:\/\/\S+)/

interface Service {
  readonly url: string
  readonly child: Process.Child
  readonly count: () => Promise<number>
}

const start = async (scope: Scope.Scope, env: Record<string, string>): Promise<Service> => {
  const context = await Effect.runPromise(Layer.buildWithScope(Postgres.layer({ maxConnections: 2 }), scope))
  const database = Context.get(context, Postgres.ScratchDatabase)
  const child = Process.startTs("examples/payments/main.ts", [], {
    env: { DATABASE_URL: database.url, PORT: "0", LOG_LEVEL: "Error", ...env }
  })
  const ready = await child.waitFor(READY, { timeoutMillis: 90_000 }).catch((error: unknown) => {
    child.kill("SIGKILL")
    throw error
  })
  const count = () =>
    Effect.runPromise(
      Effect.flatMap(SqlClient.SqlClient, (sql) => sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM payments`)
        .pipe(Effect.map((rows) => rows[0]?.n ?? -1), Effect.provide(context))
    )
  return { url: ready[1] ?? "", child, count }
}

const metric = async (service: Service, name: string): Promise<number> => {
  const text = await (await fetch(`${service.url}/metrics`)).text()
  const line = text.split("\n").find((l) => l.startsWith(`${name}{limiter="payments"}`))
  return line === undefined ? Number.NaN : Number(line.slice(line.lastIndexOf(" ") + 1))
}

const show = (result: Load.LoadResult) => JSON.stringify({ ...result, acceptedIds: result.acceptedIds.length })

const OVERLOAD = { connections: 256, durationMillis: 15_000, honourRetryAfter: true } as const

describe("load shedding on the payments example (PostgreSQL, 256 connections)", () => {
  const scope = Effect.runSync(Scope.make())
  let shedding: Service | undefined
  let queueing: Service | undefined
  let overload: Load.LoadResult | undefined

  beforeAll(async () => {
    shedding = await start(scope, {})
    queueing = await start(scope, { LOAD_SHEDDING: "false" })
  }, 180_000)

  afterAll(async () => {
    await Promise.all([shedding?.child.stop(20_000), queueing?.child.stop(20_000)])
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }, 60_000)

  it("refuses nothing at low load", async () => {
    const service = shedding ?? assert.fail("the service did not start")
    const result = await Load.run({ url: service.url, connections: 4, durationMillis: 4_000 })
    assert.strictEqual(result.refused, 0, show(result))
    assert.isAbove(result.accepted, 10, show(result))
  }, 60_000)

  it(
    "refuses the excess at once with 503 + Retry-After, keeps accepted latency bounded and loses no accepted payment",
    async () => {
      const service = shedding ?? assert.fail("the service did not start")
      const before = await service.count()
      const result = await Load.run({ url: service.url, ...OVERLOAD })
      overload = result
      const detail = show(result)
      assert.deepStrictEqual(
        Object.keys(result.statuses).filter((status) => !["201", "202", "503"].includes(status)),
        [],
        `only 201, 202 and 503 answers: ${detail}`
      )
      assert.deepStrictEqual([result.errors, result.timedOut], [0, 0], detail)
      assert.isAbove(result.refused, 0, `some requests were refused: ${detail}`)
      assert.strictEqual(result.refusedWithoutRetryAfter, 0, detail)
      // Refusals are answered at once, accepted requests in bounded time (wide margins: a shared 2-core machine).
      assert.isBelow(result.refusedP50, 500, detail)
      assert.isBelow(result.p99, 2_500, detail)
      assert.isAbove(result.accepted, 100, detail)
      // Nothing accepted is lost: one row per 2xx answer, each a distinct key, and no row for a refusal.
      assert.strictEqual((await service.count()) - before, result.accepted, detail)
      assert.strictEqual(new Set(result.acceptedIds).size, result.accepted, detail)
      const limit = await metric(service, "bulwark_adaptive_concurrency_limit")
      const rejected = await metric(service, "bulwark_adaptive_concurrency_rejected_total")
      assert.isAtLeast(limit, 8, `the limit stays within [minLimit, maxLimit]: ${limit}`)
      assert.isBelow(limit, 256, `the limit learned less than the offered concurrency: ${limit}`)
      assert.isAtLeast(rejected, result.refused, detail)
      assert.strictEqual(await metric(service, "bulwark_adaptive_concurrency_inflight"), 0)
    },
    120_000
  )

  it(
    "without the limit the same load is only queued: no refusal, and latency grows beyond the shedding one",
    async () => {
      const service = queueing ?? assert.fail("the service did not start")
      const shed = overload ?? assert.fail("the overload test did not run")
      const result = await Load.run({ url: service.url, ...OVERLOAD })
      const detail = `${show(result)}\nwith shedding: ${show(shed)}`
      assert.strictEqual(result.refused, 0, detail)
      assert.isAbove(result.p99, shed.p99 * 1.5, detail)
      assert.isAbove(result.p50, shed.p50, detail)
    },
    120_000
  )
})
