/**
 * Requests per second of one HTTP endpoint (POST, a small JSON body, one
 * `INSERT` into PostgreSQL), served by `NodeHttpServer` on 127.0.0.1 and
 * driven by `CONCURRENCY` fetch callers (keep-alive) in this process, the same
 * client for every row:
 *
 * - bare: the endpoint alone;
 * - new key: behind `IdempotencyHttp.middleware` on the PostgreSQL store, a
 *   fresh key per request: two store round trips (the claim function, the
 *   complete function) around the endpoint's `INSERT`: three commits;
 * - new key, transactional: the same with `transactional: true`: the
 *   endpoint's `INSERT` and the completion in one transaction, two commits
 *   (the claim's, and the transaction's) in five round trips;
 * - replay: the same, replaying 1,000 stored keys: one round trip, a read
 *   that takes no lock and writes nothing (no handler, no commit to flush);
 * - replay, Redis: replays through `RedisIdempotencyCache` in front of the
 *   PostgreSQL store (a Redis GET; PostgreSQL is not touched);
 * - memory store: the middleware on the in-memory store, new keys and
 *   replays: what the middleware itself costs, without a database.
 *
 * The cases run in `ROUNDS` short rounds, each in a rotated order, and the
 * summary gives each case's median ratio to bare over the rounds: on a shared
 * machine the load drifts while cases run one after another.
 *
 * Targets: new key ≥ 0.5× bare, replay ≥ 1× bare. Every answer is checked
 * (201; replays marked `Idempotent-Replayed`, new keys not), so no row can win
 * by failing fast.
 *
 * Needs PostgreSQL on 127.0.0.1:5432 (a scratch database is created in it and
 * dropped) and Redis on 127.0.0.1:6379.
 */
import { IdempotencyHttp, IdempotencyStore } from "@bulwark/resilience"
import * as Migrations from "@bulwark/resilience/Migrations"
import * as RedisIdempotencyCache from "@bulwark/resilience/RedisIdempotencyCache"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { NodeHttpServer } from "@effect/platform-node"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as TestRedis from "../test/support/redis.js"
import { type Case, compare, type Row } from "./harness.js"

const SERVER_URL = process.env["BULWARK_BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test"
const REDIS = TestRedis.connection
const CONCURRENCY = 32
const REQUESTS = 128
const ROUNDS = 5
const REPLAY_KEYS = 1_000
const BARE = "bare endpoint (1 INSERT)"
const NEW_KEY = "idempotent, new key per request"
const NEW_KEY_TX = "idempotent, new key, transactional"
const REPLAY = "idempotent, replay (PostgreSQL)"
const REPLAY_REDIS = "idempotent, replay (Redis cache)"
const NEW_KEY_MEMORY = "idempotent, new key (memory store)"
const REPLAY_MEMORY = "idempotent, replay (memory store)"

const database = `bulwark_bench_idem_${process.pid}`
const withDatabase = (url: string, name: string): string => {
  const parsed = new URL(url)
  parsed.pathname = `/${name}`
  return parsed.toString()
}
const redisPrefix = `bulwark-bench:idem:${process.pid}:`

const admin = (statement: string) =>
  Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(statement)).pipe(
    Effect.provide(PgClient.layer({ url: Redacted.make(SERVER_URL), maxConnections: 1 }))
  )

const Amount = Schema.Struct({ amount: Schema.Number })

const charge = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const { amount } = yield* HttpServerRequest.schemaBodyJson(Amount)
  const rows = yield* sql<{ readonly id: string }>`INSERT INTO bench_charges (amount) VALUES (${amount}) RETURNING id`
  return HttpServerResponse.unsafeJson({ id: rows[0]?.id ?? "", amount }, { status: 201 })
})

/** A fixed pool of callers, each sending its share of requests back to back. */
const pool = async (requests: number, call: (i: number) => Promise<void>): Promise<void> => {
  let next = 0
  const caller = async () => {
    while (next < requests) await call(next++)
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, caller))
}

const body = JSON.stringify({ amount: 42 })

const post = async (url: string, key: string | undefined, replayed: boolean | undefined): Promise<void> => {
  const response = await fetch(url, {
    method: "POST",
    headers: key === undefined
      ? { "content-type": "application/json" }
      : { "content-type": "application/json", "idempotency-key": key },
    body
  })
  await response.arrayBuffer()
  if (response.status !== 201) throw new Error(`${url} answered ${response.status}`)
  if (replayed !== undefined && (response.headers.get("idempotent-replayed") === "true") !== replayed) {
    throw new Error(`${url}: expected ${replayed ? "a replay" : "an execution"}`)
  }
}

/** Runs every case for a while before measuring any, so the first one measured does not pay for warming up. */
const warmUp = async (cases: ReadonlyArray<Case>): Promise<ReadonlyArray<Case>> => {
  for (const c of cases) {
    const end = Date.now() + 2_000
    while (Date.now() < end) await c.run()
  }
  return cases
}

const bench = Effect.gen(function*() {
  yield* Effect.acquireRelease(
    admin(`CREATE DATABASE ${database}`),
    () => Effect.ignore(admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`))
  )
  const redisAdmin = yield* Effect.promise(() => TestRedis.connect())
  yield* Effect.addFinalizer(() => Effect.promise(() => TestRedis.cleanUp(redisAdmin, redisPrefix)))

  const pg = PgClient.layer({ url: Redacted.make(withDatabase(SERVER_URL, database)), maxConnections: 20 })
  return yield* Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Migrations.run
    yield* sql`CREATE TABLE bench_charges (id bigserial PRIMARY KEY, amount numeric NOT NULL)`
    const sqlStore = yield* SqlIdempotencyStore.make()
    const cachedStore = yield* RedisIdempotencyCache.make(sqlStore, { redis: REDIS, prefix: redisPrefix })
    const memoryStore = yield* IdempotencyStore.makeMemory
    const behind = (path: HttpRouter.PathInput, store: IdempotencyStore.Service, transactional = false) =>
      HttpRouter.empty.pipe(
        HttpRouter.post(path, charge),
        HttpRouter.use(IdempotencyHttp.middleware({ transactional })),
        HttpRouter.provideService(IdempotencyStore.IdempotencyStore, store)
      )
    const app = HttpRouter.empty.pipe(
      HttpRouter.post("/bare", charge),
      HttpRouter.concat(behind("/idem", sqlStore)),
      HttpRouter.concat(behind("/idem-tx", sqlStore, true)),
      HttpRouter.concat(behind("/cached", cachedStore)),
      HttpRouter.concat(behind("/memory", memoryStore))
    )
    yield* HttpServer.serveEffect()(app)
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    const base = `http://127.0.0.1:${address.port}`

    let fresh = 0
    const replayKey = (i: number) => `replay-${i % REPLAY_KEYS}`
    yield* Effect.promise(() =>
      pool(REPLAY_KEYS, async (i) => {
        await post(`${base}/idem`, replayKey(i), false)
        await post(`${base}/cached`, replayKey(i), false)
        await post(`${base}/memory`, replayKey(i), false)
      })
    )
    let replayCursor = 0
    const cases: ReadonlyArray<Case> = [
      { name: BARE, run: () => pool(REQUESTS, () => post(`${base}/bare`, undefined, undefined)) },
      { name: NEW_KEY, run: () => pool(REQUESTS, () => post(`${base}/idem`, `new-${fresh++}`, false)) },
      { name: NEW_KEY_TX, run: () => pool(REQUESTS, () => post(`${base}/idem-tx`, `new-${fresh++}`, false)) },
      { name: REPLAY, run: () => pool(REQUESTS, () => post(`${base}/idem`, replayKey(replayCursor++), true)) },
      { name: REPLAY_REDIS, run: () => pool(REQUESTS, () => post(`${base}/cached`, replayKey(replayCursor++), true)) },
      { name: NEW_KEY_MEMORY, run: () => pool(REQUESTS, () => post(`${base}/memory`, `new-${fresh++}`, false)) },
      { name: REPLAY_MEMORY, run: () => pool(REQUESTS, () => post(`${base}/memory`, replayKey(replayCursor++), true)) }
    ]
    // The machine is shared: load drifts while the cases run one after another. Several short rounds, each in a
    // rotated order, and the median of each round's ratio keep a drift from favouring whichever case ran first.
    // (tinybench runs at least 64 iterations per case whatever `time` says: a round takes about 64 × 128 requests
    // per case.)
    const rounds = yield* Effect.promise(async () => {
      await warmUp(cases)
      const all: Array<ReadonlyArray<Row>> = []
      for (let round = 0; round < ROUNDS; round++) {
        const rotated = cases.map((_, i) => cases[(i + round) % cases.length]).filter((c) => c !== undefined)
        all.push(
          await compare(
            `idempotency over HTTP on PostgreSQL, round ${
              round + 1
            } of ${ROUNDS} (${REQUESTS} POSTs per iteration, ${CONCURRENCY} concurrent keep-alive callers)`,
            { callsPerIteration: REQUESTS, time: 1_000, versus: [BARE] },
            rotated
          )
        )
      }
      return all
    })
    const rateIn = (rows: ReadonlyArray<Row>, name: string) =>
      rows.find((row) => row.name === name)?.opsPerSecond ?? Number.NaN
    const median = (values: ReadonlyArray<number>) => {
      const sorted = [...values].sort((a, b) => a - b)
      const middle = Math.floor(sorted.length / 2)
      return sorted.length % 2 === 1
        ? sorted[middle] ?? Number.NaN
        : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
    }
    const ratios = (name: string) => rounds.map((rows) => rateIn(rows, name) / rateIn(rows, BARE))
    const nameWidth = Math.max(...cases.map((c) => c.name.length))
    console.log(`\n## idempotency over HTTP on PostgreSQL: median of ${ROUNDS} rounds\n`)
    console.log(`${"case".padEnd(nameWidth)}  ${"ops/s".padStart(8)}  ${"vs bare".padStart(8)}  per round`)
    for (const c of cases) {
      const rates = rounds.map((rows) => rateIn(rows, c.name))
      console.log(
        `${c.name.padEnd(nameWidth)}  ${Math.round(median(rates)).toLocaleString("en-US").padStart(8)}  ${
          `${median(ratios(c.name)).toFixed(2)}×`.padStart(8)
        }  ${ratios(c.name).map((r) => `${r.toFixed(2)}×`).join(" ")}`
      )
    }
    const verdict = (name: string, target: number) => {
      const value = median(ratios(name))
      return `${name}: ${value.toFixed(2)}× bare (median; target ≥ ${target.toFixed(2)}×) ${
        value >= target ? "met" : "MISSED"
      }`
    }
    console.log(
      `\n${verdict(NEW_KEY, 0.5)}\n${verdict(NEW_KEY_TX, 0.5)}\n${verdict(REPLAY, 1)}\n${verdict(REPLAY_REDIS, 1)}`
    )
    return rounds
  }).pipe(
    Effect.provide(Layer.mergeAll(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }), pg)),
    Effect.orDie
  )
})

export const run = () => Effect.runPromise(Effect.scoped(bench))
