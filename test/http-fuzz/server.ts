/**
 * The application the fuzzer hits: a real Node HTTP server on 127.0.0.1 (a free port) with the same routes twice,
 * behind the same stack of middlewares on two sets of backends:
 *
 * | prefix | idempotency store | rate-limiter store | idempotency partition |
 * |---|---|---|---|
 * | `/mem` | in memory (claims counted by a wrapper) | in memory | none |
 * | `/pg` | PostgreSQL (scratch database, rows counted by SQL) | Redis (a test prefix, deleted afterwards) | `X-Tenant` |
 * | `/down` | one that cannot be reached (every operation fails) | in memory | none |
 *
 * The stack, outermost first: adaptive concurrency (a small limit, so concurrent requests are shed) ▸ rate limit
 * (per `X-Api-Key`, falling back to the address, and endpoint; cost from `X-Cost`) ▸ idempotency ▸ chaos
 * (synthetic answers chosen by `X-Chaos`) ▸ the route. Every answer a route or
 * the chaos policy makes carries `X-Route` / `X-Chaos`, so a test tells them apart from the middlewares' own
 * refusals. The server logs every response through `HttpMiddleware.logger` into a logger that keeps each line's
 * level and whether its cause holds a defect.
 */
import {
  AdaptiveConcurrency,
  AdaptiveConcurrencyHttp,
  Chaos,
  IdempotencyHttp,
  IdempotencyStore,
  RateLimiter,
  RateLimiterHttp
} from "@bulwark/resilience"
import * as Failure from "@bulwark/resilience/Failure"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { NodeHttpServer } from "@effect/platform-node"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Runtime from "effect/Runtime"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import * as ScratchPostgres from "../support/postgres.js"
import * as TestRedis from "../support/redis.js"

// -----------------------------------------------------------------------------
// Log capture
// -----------------------------------------------------------------------------

export interface LogLine {
  readonly level: string
  readonly text: string
  /** The line's cause, or its message when that is a cause, holds a defect. */
  readonly defect: boolean
}

const hasDefect = (u: unknown): boolean => Cause.isCause(u) && Cause.isDie(u)

const captureLogs = () => {
  const lines: Array<LogLine> = []
  const logger = Logger.make(({ cause, logLevel, message }) => {
    const messages: ReadonlyArray<unknown> = Array.isArray(message) ? message : [message]
    lines.push({
      level: logLevel.label,
      text: messages.map((part) => (Cause.isCause(part) ? Cause.pretty(part) : String(part))).join(" "),
      defect: hasDefect(cause) || messages.some(hasDefect)
    })
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** Lines at error level or above, or carrying a defect. */
export const alarming = (lines: ReadonlyArray<LogLine>): ReadonlyArray<LogLine> =>
  lines.filter((line) => line.defect || line.level === "ERROR" || line.level === "FATAL")

// -----------------------------------------------------------------------------
// Routes
// -----------------------------------------------------------------------------

/** A business refusal: terminal, so an idempotent request stores and replays it. */
class Declined extends Data.TaggedError("Declined")<{ readonly route: string }>
  implements HttpServerRespondable.Respondable
{
  [HttpServerRespondable.symbol]() {
    return HttpServerResponse.json(
      { type: "about:blank", title: "Payment Required", status: 402, detail: "declined" },
      { status: 402, contentType: "application/problem+json", headers: { "x-route": this.route } }
    )
  }
  readonly [Failure.TerminalTypeId]: Failure.TerminalTypeId = Failure.TerminalTypeId
}

/** A dependency outage: transient, so an idempotent request releases its key. */
class Unavailable extends Data.TaggedError("Unavailable")<{ readonly route: string }>
  implements HttpServerRespondable.Respondable
{
  [HttpServerRespondable.symbol]() {
    return HttpServerResponse.json(
      { type: "about:blank", title: "Service Unavailable", status: 503, detail: "gateway down" },
      { status: 503, contentType: "application/problem+json", headers: { "x-route": this.route, "retry-after": "1" } }
    )
  }
  readonly [Failure.TransientTypeId]: Failure.TransientTypeId = Failure.TransientTypeId
}

const Payment = Schema.Struct({ amount: Schema.Number })

const echo = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
  Effect.map(
    Effect.orElseSucceed(request.arrayBuffer, () => new ArrayBuffer(0)),
    (body) =>
      HttpServerResponse.uint8Array(new Uint8Array(body), {
        contentType: "application/octet-stream",
        headers: { "x-route": "echo", "x-method": request.method }
      })
  ))

const fail = Effect.flatMap(
  HttpServerRequest.HttpServerRequest,
  (request): Effect.Effect<HttpServerResponse.HttpServerResponse, Declined | Unavailable> =>
    request.headers["x-fail"] === "unavailable"
      ? Effect.fail(new Unavailable({ route: "fail" }))
      : Effect.fail(new Declined({ route: "fail" }))
)

const json = HttpServerRequest.schemaBodyJson(Payment).pipe(
  Effect.map((payment) =>
    HttpServerResponse.unsafeJson({ charged: payment.amount }, { status: 201, headers: { "x-route": "json" } })
  ),
  Effect.catchAll(() =>
    Effect.succeed(
      HttpServerResponse.unsafeJson(
        { type: "about:blank", title: "Bad Request", status: 400, detail: "the body is not a payment" },
        { status: 400, contentType: "application/problem+json", headers: { "x-route": "json" } }
      )
    )
  )
)

const routes = (prefix: `/${string}`) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(`${prefix}/echo`, echo),
    HttpRouter.patch(`${prefix}/echo`, echo),
    HttpRouter.get(`${prefix}/echo`, echo),
    HttpRouter.del(`${prefix}/echo`, echo),
    HttpRouter.post(`${prefix}/fail`, fail),
    HttpRouter.post(`${prefix}/json`, json)
  )

// -----------------------------------------------------------------------------
// Middlewares
// -----------------------------------------------------------------------------

const INJECTED = { "x-chaos": "injected" } as const

/** Synthetic answers on demand: `X-Chaos: 503 | 429 | 409 | 204 | after | slow`. */
const chaosPolicy = Chaos.make({
  name: "http-fuzz",
  strategies: [
    Chaos.latency<HttpServerRequest.HttpServerRequest>({
      rate: 1,
      latency: "5 millis",
      when: (request) => request.headers["x-chaos"] === "slow"
    }),
    Chaos.serverResponse({
      rate: 1,
      status: 503,
      headers: { ...INJECTED, "retry-after": "1" },
      when: (request) => request.headers["x-chaos"] === "503"
    }),
    Chaos.serverResponse({ rate: 1, status: 429, headers: INJECTED, when: (r) => r.headers["x-chaos"] === "429" }),
    Chaos.serverResponse({
      rate: 1,
      status: 409,
      body: "conflict (injected)",
      headers: INJECTED,
      when: (request) => request.headers["x-chaos"] === "409"
    }),
    Chaos.serverResponse({ rate: 1, status: 204, headers: INJECTED, when: (r) => r.headers["x-chaos"] === "204" }),
    Chaos.serverResponse({
      rate: 1,
      status: 502,
      phase: "after",
      headers: INJECTED,
      when: (request) => request.headers["x-chaos"] === "after"
    })
  ]
})

/** `X-Cost` as a number (so `0`, `-1`, `1.5`, `abc`, `1e9` reach the limiter); 1 without the header. */
const costOf = (request: HttpServerRequest.HttpServerRequest): number => {
  const raw = request.headers["x-cost"]
  return raw === undefined ? 1 : Number(raw)
}

/** A quota small enough that the fuzzer's few API keys run into it. */
export const QUOTA = 25

const limited = (name: string) =>
  Effect.flatMap(
    RateLimiter.make({ name, algorithm: RateLimiter.fixedWindow({ limit: QUOTA, window: "1 minute" }) }),
    (limiter) =>
      Effect.succeed(
        RateLimiterHttp.middleware(limiter, {
          key: RateLimiterHttp.combine(RateLimiterHttp.byHeader("x-api-key"), RateLimiterHttp.byEndpoint),
          cost: costOf
        })
      )
  )

/** A store whose database is gone: every operation fails. */
const unreachable: IdempotencyStore.Service = (() => {
  const down = (operation: IdempotencyStore.Operation) =>
    Effect.fail(
      new IdempotencyStore.IdempotencyStoreError({ backend: "down", operation, cause: new Error("connection refused") })
    )
  return {
    backend: "down",
    claim: () => down("claim"),
    heartbeat: () => down("heartbeat"),
    complete: () => down("complete"),
    release: () => down("release"),
    lookup: () => down("lookup"),
    deleteExpired: () => down("deleteExpired")
  }
})()

/** Records which keys a store handed out claims for: the in-memory store's records. */
const counting = (store: IdempotencyStore.Service, keys: Set<string>): IdempotencyStore.Service => ({
  ...store,
  claim: (request) =>
    Effect.tap(store.claim(request), (result) => {
      if (result._tag === "Claimed") keys.add(JSON.stringify([request.scope, request.partition, request.key]))
    })
})

// -----------------------------------------------------------------------------
// The fixture
// -----------------------------------------------------------------------------

export interface Fixture {
  readonly port: number
  readonly logs: Array<LogLine>
  /** Rows in the PostgreSQL idempotency table. */
  readonly pgRecords: () => Promise<number>
  /** Records the in-memory store created. */
  readonly memRecords: () => number
}

export class FuzzServer extends Context.Tag("test/http-fuzz/FuzzServer")<FuzzServer, Fixture>() {}

const fixture = Effect.gen(function*() {
  const capture = captureLogs()
  const chaos = yield* chaosPolicy
  const memoryKeys = new Set<string>()
  const memoryStore = counting(yield* IdempotencyStore.makeMemory, memoryKeys)
  const sqlStore = yield* SqlIdempotencyStore.make()
  const redisPrefix = yield* TestRedis.scopedPrefix("http-fuzz")
  const redisStore = yield* RedisRateLimiter.make({ prefix: redisPrefix, redis: TestRedis.connection })

  const memoryLimiters = RateLimiter.layerMemory()
  const memLimit = yield* limited("fuzz-mem").pipe(Effect.provide(memoryLimiters))
  const downLimit = yield* limited("fuzz-down").pipe(Effect.provide(memoryLimiters))
  const pgLimit = yield* limited("fuzz-pg").pipe(Effect.provideService(RateLimiter.RateLimiterStore, redisStore))
  // Small enough that a burst of concurrent requests is shed with 503.
  const shed = (name: string) =>
    Effect.map(
      AdaptiveConcurrency.make({ name, initialLimit: 2, minLimit: 1, maxLimit: 4 }),
      (limiter) => AdaptiveConcurrencyHttp.middleware(limiter)
    )

  const mem = routes("/mem").pipe(
    HttpRouter.use(Chaos.middleware(chaos)),
    HttpRouter.use(IdempotencyHttp.middleware()),
    HttpRouter.use(memLimit),
    HttpRouter.use(yield* shed("fuzz-mem")),
    HttpRouter.provideService(IdempotencyStore.IdempotencyStore, memoryStore)
  )
  const pg = routes("/pg").pipe(
    HttpRouter.use(Chaos.middleware(chaos)),
    HttpRouter.use(IdempotencyHttp.middleware({ partition: IdempotencyHttp.partitionByHeader("x-tenant") })),
    HttpRouter.use(pgLimit),
    HttpRouter.use(yield* shed("fuzz-pg")),
    HttpRouter.provideService(IdempotencyStore.IdempotencyStore, sqlStore)
  )
  const down = routes("/down").pipe(
    HttpRouter.use(Chaos.middleware(chaos)),
    HttpRouter.use(IdempotencyHttp.middleware()),
    HttpRouter.use(downLimit),
    HttpRouter.use(yield* shed("fuzz-down")),
    HttpRouter.provideService(IdempotencyStore.IdempotencyStore, unreachable)
  )
  yield* HttpServer.serveEffect(HttpMiddleware.logger)(HttpRouter.concat(HttpRouter.concat(mem, pg), down)).pipe(
    Effect.provide(capture.layer),
    Logger.withMinimumLogLevel(LogLevel.All)
  )
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")

  const sql = yield* SqlClient.SqlClient
  const runtime = yield* Effect.runtime<never>()
  const countRows = sql<{ readonly n: number }>`SELECT count(*)::int AS n FROM bulwark_idempotency_keys`.pipe(
    Effect.map((rows) => rows[0]?.n ?? -1),
    Effect.orDie
  )
  return {
    port: address.port,
    logs: capture.lines,
    pgRecords: () => Runtime.runPromise(runtime)(countRows),
    memRecords: () => memoryKeys.size
  }
})

/** The server, on a scratch PostgreSQL database and the test Redis; everything is gone when the layer closes. */
export const layer: Layer.Layer<FuzzServer> = Layer.scoped(FuzzServer, fixture).pipe(
  Layer.provide(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
  Layer.provide(ScratchPostgres.layer({ maxConnections: 4 })),
  Layer.orDie
)
