/**
 * IdempotencyHttp on the PostgreSQL store, over real HTTP (127.0.0.1, a free port): the side
 * effects the handlers perform are rows in a table, counted by SQL. Needs PostgreSQL on
 * 127.0.0.1:5432 and fails (never skips) when it is not there.
 */
import { IdempotencyHttp, IdempotencyHttpClient, Retry } from "@bulwark/resilience"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { NodeHttpServer } from "@effect/platform-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import { createServer } from "node:http"
import { connect } from "node:net"
import * as ScratchPostgres from "../support/postgres.js"

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly bytes: Uint8Array
  readonly text: string
}

const send = (url: string, headers: Record<string, string>, body?: string) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, { method: "POST", headers, ...(body === undefined ? {} : { body }) })
    const bytes = new Uint8Array(await response.arrayBuffer())
    return { status: response.status, headers: response.headers, bytes, text: new TextDecoder().decode(bytes) }
  })

const keyed = (key: string) => ({ "idempotency-key": key, "content-type": "application/json" })

/** A raw request line and headers, for header values `fetch` would not send verbatim (a tab). */
const rawStatus = (base: string, head: string) =>
  Effect.async<number>((resume) => {
    const { hostname, port } = new URL(base)
    const socket = connect(Number(port), hostname, () => {
      socket.write(`${head}\r\nHost: ${hostname}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
    })
    let out = ""
    socket.on("data", (chunk: Buffer) => {
      out += chunk.toString("latin1")
    })
    socket.on("close", () => resume(Effect.succeed(Number(out.split(" ")[1]))))
  })

const assertProblem = (reply: Reply, status: number) => {
  assert.strictEqual(reply.status, status)
  assert.strictEqual(reply.headers.get("content-type"), "application/problem+json")
  const body: unknown = JSON.parse(reply.text)
  assert.deepInclude(body, { type: "about:blank", status })
}

const RECEIPT = Uint8Array.from({ length: 512 }, (_, i) => (i * 7) % 256)

const setup = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql`CREATE TABLE IF NOT EXISTS http_charges (
    id bigserial PRIMARY KEY,
    route text NOT NULL,
    idempotency_key text NOT NULL
  )`
  const slowStarted = yield* Deferred.make<void>()
  const slowRelease = yield* Deferred.make<void>()
  const flakyCalls = new Map<string, number>()
  const record = (route: string) =>
    Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) =>
        sql<{ readonly id: number }>`INSERT INTO http_charges (route, idempotency_key)
        VALUES (${route}, ${request.headers["idempotency-key"] ?? ""}) RETURNING id`.pipe(
          Effect.map((rows) => rows[0]?.id ?? -1)
        )
    )
  const app = HttpRouter.empty.pipe(
    HttpRouter.post(
      "/charges",
      Effect.map(record("charges"), (id) => HttpServerResponse.unsafeJson({ id }, { status: 201 }))
    ),
    HttpRouter.post(
      "/flaky",
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const key = request.headers["idempotency-key"] ?? ""
        const calls = (flakyCalls.get(key) ?? 0) + 1
        flakyCalls.set(key, calls)
        // The payment gateway is down on the first call: nothing is charged, and the answer is 503.
        if (calls === 1) {
          return HttpServerResponse.text("gateway down", { status: 503, headers: { "retry-after": "0" } })
        }
        const id = yield* record("flaky")
        return HttpServerResponse.unsafeJson({ id, calls }, { status: 201 })
      })
    ),
    HttpRouter.post(
      "/declined",
      Effect.map(record("declined"), (id) =>
        HttpServerResponse.uint8Array(RECEIPT, {
          status: 402,
          contentType: "application/octet-stream",
          headers: { "x-attempt-row": String(id) }
        }))
    ),
    HttpRouter.post(
      "/slow",
      Effect.gen(function*() {
        const id = yield* record("slow")
        yield* Deferred.succeed(slowStarted, undefined)
        yield* Deferred.await(slowRelease)
        return HttpServerResponse.text(`slow ${id}`)
      })
    ),
    HttpRouter.use(IdempotencyHttp.middleware())
  )
  yield* HttpServer.serveEffect()(app)
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  const rows = (route: string) =>
    Effect.map(
      sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM http_charges WHERE route = ${route}`,
      (result) => result[0]?.n ?? -1
    )
  return { base: `http://127.0.0.1:${address.port}`, rows, slowStarted, slowRelease }
})

const PerTest = Layer.mergeAll(
  NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }),
  SqlIdempotencyStore.layer().pipe(Layer.orDie),
  FetchHttpClient.layer
)

describe("IdempotencyHttp on PostgreSQL", () => {
  // Live services: the server and the database run on real time.
  layer(ScratchPostgres.layer(), { excludeTestServices: true })((it) => {
    it.scoped("answers 422 for a reused key with another body, 400 for missing or invalid keys", () =>
      Effect.gen(function*() {
        const { base, rows } = yield* setup
        const first = yield* send(`${base}/charges`, keyed("pg-mismatch"), `{"amount":1,"currency":"EUR"}`)
        assert.strictEqual(first.status, 201)
        const reordered = yield* send(`${base}/charges`, keyed("pg-mismatch"), `{ "currency": "EUR", "amount": 1 }`)
        assert.deepStrictEqual(reordered.bytes, first.bytes)
        assertProblem(yield* send(`${base}/charges`, keyed("pg-mismatch"), `{"amount":2,"currency":"EUR"}`), 422)
        assertProblem(yield* send(`${base}/charges`, { "content-type": "application/json" }, "{}"), 400)
        for (const key of ["", "k".repeat(256), "\u00fcber"]) {
          assertProblem(yield* send(`${base}/charges`, keyed(key), "{}"), 400)
        }
        assert.strictEqual(yield* rawStatus(base, "POST /charges HTTP/1.1\r\nIdempotency-Key: a\tb"), 400)
        assert.strictEqual(yield* rows("charges"), 1)
      }).pipe(Effect.provide(PerTest)))

    it.scoped("answers 409 with Retry-After while the first request runs, and replays after", () =>
      Effect.gen(function*() {
        const { base, rows, slowRelease, slowStarted } = yield* setup
        const first = yield* Effect.fork(send(`${base}/slow`, keyed("pg-slow")))
        yield* Deferred.await(slowStarted)
        const conflict = yield* send(`${base}/slow`, keyed("pg-slow"))
        assertProblem(conflict, 409)
        const retryAfter = Number(conflict.headers.get("retry-after"))
        assert.isTrue(retryAfter >= 1 && retryAfter <= 30, `Retry-After ${retryAfter}`)
        yield* Deferred.succeed(slowRelease, undefined)
        const done = yield* Fiber.join(first)
        const replay = yield* send(`${base}/slow`, keyed("pg-slow"))
        assert.deepStrictEqual(replay.bytes, done.bytes)
        assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
        assert.strictEqual(yield* rows("slow"), 1)
      }).pipe(Effect.provide(PerTest)))

    it.scoped("a 503 releases the key: the client's retry with the same key runs again, and charges once", () =>
      Effect.gen(function*() {
        const { base, rows } = yield* setup
        const policy = yield* Retry.make({
          name: "pg-http-client",
          backoff: Retry.constant("10 millis"),
          maxAttempts: 3
        })
        const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
        const response = yield* client.post(`${base}/flaky`)
        assert.strictEqual(response.status, 201)
        const body: unknown = yield* response.json
        assert.deepInclude(body, { calls: 2 })
        assert.strictEqual(yield* rows("flaky"), 1)
      }).pipe(Effect.provide(PerTest)))

    it.scoped("stores a terminal 402 and replays it byte for byte, binary body included", () =>
      Effect.gen(function*() {
        const { base, rows } = yield* setup
        const declined = yield* send(`${base}/declined`, keyed("pg-declined"))
        assert.strictEqual(declined.status, 402)
        assert.deepStrictEqual(declined.bytes, RECEIPT)
        const replays = yield* Effect.all(
          Array.from({ length: 3 }, () => send(`${base}/declined`, keyed("pg-declined"))),
          { concurrency: "unbounded" }
        )
        for (const replay of replays) {
          assert.strictEqual(replay.status, 402)
          assert.deepStrictEqual(replay.bytes, declined.bytes)
          assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
          assert.strictEqual(replay.headers.get("content-type"), "application/octet-stream")
          assert.strictEqual(replay.headers.get("x-attempt-row"), declined.headers.get("x-attempt-row"))
        }
        assert.strictEqual(yield* rows("declined"), 1)
      }).pipe(Effect.provide(PerTest)))

    it.scoped("transactional: the handler's INSERT commits with the stored answer, and a 503 rolls it back", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`CREATE TABLE IF NOT EXISTS tx_charges (id bigserial PRIMARY KEY, idempotency_key text NOT NULL)`
        const down = new Set<string>(["tx-down"])
        const insert = Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) => {
            const key = request.headers["idempotency-key"] ?? ""
            return sql`INSERT INTO tx_charges (idempotency_key) VALUES (${key})`.pipe(Effect.as(key))
          }
        )
        const app = HttpRouter.empty.pipe(
          HttpRouter.post(
            "/tx",
            Effect.map(insert, (key) =>
              down.delete(key)
                ? HttpServerResponse.text("gateway down", { status: 503 })
                : HttpServerResponse.unsafeJson({ key }, { status: 201 }))
          ),
          HttpRouter.use(IdempotencyHttp.middleware({ transactional: true }))
        )
        yield* HttpServer.serveEffect()(app)
        const address = (yield* HttpServer.HttpServer).address
        if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
        const base = `http://127.0.0.1:${address.port}`
        const writes = (key: string) =>
          Effect.map(
            sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM tx_charges WHERE idempotency_key = ${key}`,
            (result) => result[0]?.n ?? -1
          )

        const created = yield* send(`${base}/tx`, keyed("tx-ok"), "{}")
        assert.strictEqual(created.status, 201)
        const replay = yield* send(`${base}/tx`, keyed("tx-ok"), "{}")
        assert.deepStrictEqual(replay.bytes, created.bytes)
        assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
        assert.strictEqual(yield* writes("tx-ok"), 1)

        // The 503 is not stored: its INSERT rolls back and the key is released; the retry runs and commits once.
        assert.strictEqual((yield* send(`${base}/tx`, keyed("tx-down"), "{}")).status, 503)
        assert.strictEqual(yield* writes("tx-down"), 0)
        const retried = yield* send(`${base}/tx`, keyed("tx-down"), "{}")
        assert.strictEqual(retried.status, 201)
        assert.strictEqual(retried.headers.get("idempotent-replayed"), null)
        assert.strictEqual(yield* writes("tx-down"), 1)
      }).pipe(Effect.provide(PerTest)))
  })
})
