import { NodeHttpServer } from "@effect/platform-node"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as RateLimiter from "./RateLimiter.js"
import * as RateLimiterHttp from "./RateLimiterHttp.js"

let counter = 0
const uniqueName = (prefix: string) => `${prefix}-${++counter}`

/** Serves the routes behind the middleware on 127.0.0.1, on a free port; returns the base URL. */
const serve = <R = never>(limiter: RateLimiter.RateLimiter, options?: RateLimiterHttp.MiddlewareOptions<R>) =>
  Effect.gen(function*() {
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/hello", HttpServerResponse.text("hello")),
      HttpRouter.get("/boom", Effect.die("boom")),
      HttpRouter.use(RateLimiterHttp.middleware(limiter, options))
    )
    yield* HttpServer.serveEffect(app)
    const server = yield* HttpServer.HttpServer
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  })

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, { headers })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const withServer = <A, E>(
  effect: Effect.Effect<A, E, RateLimiter.RateLimiterStore | HttpServer.HttpServer | Scope.Scope>,
  store: Layer.Layer<RateLimiter.RateLimiterStore> = RateLimiter.layerMemory().pipe(Layer.orDie)
) => effect.pipe(Effect.provide(Layer.merge(ServerLive, store)), Effect.scoped)

/** A store that cannot reach its backend and fails closed. */
const unavailable: RateLimiter.Binding = {
  decide: () =>
    Effect.succeed({ allowed: false, delay: 0, remaining: 0, reset: 2_500, retryAfter: 2_500, degraded: true }),
  refund: () => Effect.succeed(false)
}

describe("RateLimiterHttp.middleware over a real server", () => {
  it.live("puts the rate-limit headers on allowed responses and answers 429 with Retry-After and a problem", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: "api",
        // not a fixed window: on the real clock, a window boundary could fall between the requests
        algorithm: RateLimiter.slidingWindowLog({ limit: 2, window: "1 minute" })
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.global })
      const first = yield* get(`${base}/hello`)
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.body, "hello")
      assert.strictEqual(first.headers.get("ratelimit-policy"), `"api";q=2;w=60`)
      assert.match(first.headers.get("ratelimit") ?? "", /^"api";r=1;t=([1-5]?[0-9]|60)$/)
      assert.strictEqual(first.headers.get("x-ratelimit-limit"), "2")
      assert.strictEqual(first.headers.get("x-ratelimit-remaining"), "1")
      assert.isNull(first.headers.get("retry-after"))
      const second = yield* get(`${base}/hello`)
      assert.strictEqual(second.headers.get("x-ratelimit-remaining"), "0")
      const refused = yield* get(`${base}/hello`)
      assert.strictEqual(refused.status, 429)
      const retryAfter = Number(refused.headers.get("retry-after"))
      assert.isTrue(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
      assert.strictEqual(refused.headers.get("x-ratelimit-remaining"), "0")
      assert.strictEqual(refused.headers.get("ratelimit-policy"), `"api";q=2;w=60`)
      assert.match(refused.headers.get("ratelimit") ?? "", /^"api";r=0;t=\d+$/)
      assert.strictEqual(refused.headers.get("content-type"), "application/problem+json")
      const body: unknown = JSON.parse(refused.body)
      assert.deepStrictEqual(body, {
        type: "about:blank",
        title: "Too Many Requests",
        status: 429,
        detail: `Rate limit "api" exceeded: 2 per 60 s; retry after ${retryAfter} s.`
      })
    })))

  it.live("limits each key on its own, and carries the headers on the app's error responses", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("keys"),
        algorithm: RateLimiter.tokenBucket({ limit: 1, window: "1 minute" })
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.byHeader("x-api-key"), policyName: "per-key" })
      const boom = yield* get(`${base}/boom`, { "x-api-key": "alpha" })
      assert.strictEqual(boom.status, 500)
      assert.strictEqual(boom.headers.get("ratelimit-policy"), `"per-key";q=1;w=60`)
      assert.strictEqual(boom.headers.get("x-ratelimit-remaining"), "0")
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": "alpha" })).status, 429)
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": "beta" })).status, 200)
      // no header: falls back to the client's address
      assert.strictEqual((yield* get(`${base}/hello`)).status, 200)
      assert.strictEqual((yield* get(`${base}/hello`)).status, 429)
    })))

  it.live("answers 503 with Retry-After when the store is down and fails closed", () =>
    withServer(
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "guarded",
          algorithm: RateLimiter.gcra({ limit: 10, window: "1 second" })
        })
        const base = yield* serve(limiter)
        const reply = yield* get(`${base}/hello`)
        assert.strictEqual(reply.status, 503)
        assert.strictEqual(reply.headers.get("retry-after"), "3")
        const body: unknown = JSON.parse(reply.body)
        assert.deepInclude(body, { title: "Service Unavailable", status: 503 })
      }),
      Layer.succeed(RateLimiter.RateLimiterStore, {
        backend: "down",
        bind: () => Effect.succeed(unavailable)
      })
    ))

  it.live("answers 400 when the key function yields no usable key, and charges per-request costs", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("cost"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 5, window: "1 minute" })
      })
      const base = yield* serve(limiter, {
        key: (request) => Effect.succeed(request.headers["x-tenant"] ?? ""),
        cost: (request) => (request.url.includes("bulk") ? 3 : 1)
      })
      const missing = yield* get(`${base}/hello`)
      assert.strictEqual(missing.status, 400)
      assert.strictEqual(missing.headers.get("content-type"), "application/problem+json")
      assert.include(missing.body, "\"title\":\"Bad Request\"")
      const bulk = yield* get(`${base}/hello?bulk=1`, { "x-tenant": "t1" })
      assert.strictEqual(bulk.headers.get("x-ratelimit-remaining"), "2")
      const reset = Number(bulk.headers.get("x-ratelimit-reset"))
      assert.strictEqual(reset, Duration.toSeconds(Duration.minutes(1)))
    })))
})

describe("RateLimiterHttp key functions", () => {
  it("combine joins keys; headers round up to whole seconds", () => {
    const headers = RateLimiterHttp.headers("p", { quota: 10, window: Duration.millis(1_500) }, {
      limit: 10,
      remaining: 3,
      reset: Duration.millis(200)
    })
    assert.deepStrictEqual(headers, {
      "ratelimit-policy": `"p";q=10;w=2`,
      "ratelimit": `"p";r=3;t=1`,
      "x-ratelimit-limit": "10",
      "x-ratelimit-remaining": "3",
      "x-ratelimit-reset": "1"
    })
  })
})
