/**
 * A server process for `http-multiprocess.test.ts`:
 *
 * ```sh
 * node --import tsx test/idempotency/http-server.worker.ts '{"url":"postgres://…"}'
 * ```
 *
 * Serves `POST /charges` on 127.0.0.1 (a free port) behind `IdempotencyHttp.middleware`, on the
 * PostgreSQL idempotency store at `url`, and prints `ready <port>`. Each execution inserts one row
 * into `http_side_effects` (the side effect the test counts) and answers with values no other
 * execution could produce (the row id, this process id, a random nonce), so byte-identical answers
 * for a key can only come from one execution. Runs until it is killed.
 */
import { IdempotencyHttp } from "@bulwark/resilience"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
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
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"

const Config = Schema.parseJson(Schema.Struct({ url: Schema.String }))
const config = Schema.decodeUnknownSync(Config)(process.argv[2])

const Charge = Schema.Struct({ amount: Schema.Number })

const charge = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const request = yield* HttpServerRequest.HttpServerRequest
  const { amount } = yield* HttpServerRequest.schemaBodyJson(Charge)
  // Long enough that the duplicates of a key overlap with the execution.
  yield* Effect.sleep("25 millis")
  const rows = yield* sql<{ readonly id: number }>`
    INSERT INTO http_side_effects (idempotency_key, pid, amount)
    VALUES (${request.headers["idempotency-key"] ?? ""}, ${process.pid}, ${amount})
    RETURNING id`
  return HttpServerResponse.unsafeJson(
    { charge: rows[0]?.id ?? -1, amount, executedBy: process.pid, nonce: randomUUID() },
    { status: 201, headers: { "x-executed-by": String(process.pid) } }
  )
})

const app = HttpRouter.empty.pipe(
  HttpRouter.post("/charges", charge),
  // Both processes serve the same clients: one namespace, on purpose.
  HttpRouter.use(
    IdempotencyHttp.middleware({ waitForInFlight: "20 seconds", partition: IdempotencyHttp.globalPartition })
  )
)

const Pg = PgClient.layer({ url: Redacted.make(config.url), maxConnections: 10 })

const main = Effect.gen(function*() {
  yield* HttpServer.serveEffect()(app)
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  process.stdout.write(`ready ${address.port}\n`)
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(
    NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }),
    SqlIdempotencyStore.layer().pipe(Layer.provide(Pg)),
    Pg
  ))
)

NodeRuntime.runMain(main)
