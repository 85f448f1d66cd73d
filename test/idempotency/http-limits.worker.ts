/**
 * A server process for `http-limits.test.ts`, so that the test can read this process' memory (RSS) from
 * `/proc/<pid>/status` while it is flooded:
 *
 * ```sh
 * node --import tsx test/idempotency/http-limits.worker.ts '{"maxBodyBytes":524288,"maxStoredBytes":65536}'
 * ```
 *
 * Serves on 127.0.0.1 (a free port), behind `IdempotencyHttp.middleware` on the in-memory store, and prints
 * `ready <port>`:
 * - `POST /charges`: reads `{ "amount": n }`, counts an execution, answers 201;
 * - `POST /export?mib=n`: streams n MiB (64 KiB chunks), counts an execution;
 * - `GET /stats`: executions, and the bytes the server read from its sockets.
 *
 * Runs until it is killed.
 */
import { IdempotencyHttp, IdempotencyStore } from "@bulwark/resilience"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { createServer, type Server } from "node:http"
import type { Socket } from "node:net"

const Config = Schema.parseJson(Schema.Struct({ maxBodyBytes: Schema.Number, maxStoredBytes: Schema.Number }))
const config = Schema.decodeUnknownSync(Config)(process.argv[2])

const Charge = Schema.Struct({ amount: Schema.Number })
const Export = Schema.Struct({ mib: Schema.NumberFromString })
const CHUNK = new Uint8Array(64 * 1024).fill(120)

const stats = { executions: 0, closedBytesRead: 0 }
const sockets = new Set<Socket>()

const server: Server = createServer()
server.on("connection", (socket) => {
  sockets.add(socket)
  socket.on("close", () => {
    stats.closedBytesRead += socket.bytesRead
    sockets.delete(socket)
  })
})

const bytesRead = () => {
  let open = 0
  for (const socket of sockets) open += socket.bytesRead
  return stats.closedBytesRead + open
}

const app = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/charges",
    Effect.gen(function*() {
      const { amount } = yield* HttpServerRequest.schemaBodyJson(Charge)
      stats.executions++
      return HttpServerResponse.unsafeJson({ amount, execution: stats.executions }, { status: 201 })
    })
  ),
  HttpRouter.post(
    "/export",
    Effect.gen(function*() {
      const { mib } = yield* HttpServerRequest.schemaSearchParams(Export)
      stats.executions++
      const body = Stream.range(1, mib * 16).pipe(Stream.map(() => CHUNK))
      return HttpServerResponse.stream(body, { contentType: "application/octet-stream" })
    })
  ),
  HttpRouter.use(IdempotencyHttp.middleware({
    maxBodyBytes: config.maxBodyBytes,
    maxStoredBytes: config.maxStoredBytes,
    partition: IdempotencyHttp.partitionByHeader("x-account-id")
  })),
  HttpRouter.get(
    "/stats",
    Effect.sync(() => HttpServerResponse.unsafeJson({ executions: stats.executions, bytesRead: bytesRead() }))
  )
)

const main = Effect.gen(function*() {
  yield* HttpServer.serveEffect()(app)
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  process.stdout.write(`ready ${address.port}\n`)
  return yield* Effect.never
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(
    NodeHttpServer.layer(() => server, { port: 0, host: "127.0.0.1" }),
    IdempotencyStore.layerMemory
  ))
)

NodeRuntime.runMain(main)
