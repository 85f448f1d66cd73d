import { NodeHttpServer } from "@effect/platform-node"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { createServer } from "node:http"
import * as AdaptiveConcurrency from "./AdaptiveConcurrency.js"
import * as AdaptiveConcurrencyHttp from "./AdaptiveConcurrencyHttp.js"

let counter = 0
const uniqueName = (prefix: string) => `test.adaptive-http.${prefix}.${++counter}`

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })

const post = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { method: "POST", body: "{}" })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

describe("AdaptiveConcurrencyHttp.middleware", () => {
  it.live("answers beyond the limit with a 503 problem and Retry-After, at once, without running the handler", () =>
    Effect.gen(function*() {
      const limiter = yield* AdaptiveConcurrency.make({
        name: uniqueName("refuse"),
        initialLimit: 1,
        minLimit: 1,
        retryAfter: "1500 millis"
      })
      const entered = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let handled = 0
      const slow = Effect.gen(function*() {
        handled++
        yield* Deferred.succeed(entered, undefined)
        yield* Deferred.await(release)
        return HttpServerResponse.text("done", { status: 201 })
      })
      yield* HttpServer.serveEffect(HttpRouter.empty.pipe(
        HttpRouter.post("/work", slow.pipe(AdaptiveConcurrencyHttp.middleware(limiter))),
        HttpRouter.get("/healthz", HttpServerResponse.text("ok"))
      ))
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      const url = `http://127.0.0.1:${address.port}`
      const first = yield* Effect.fork(post(`${url}/work`))
      yield* Deferred.await(entered)
      const refused = yield* post(`${url}/work`)
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(refused.headers.get("retry-after"), "2")
      assert.strictEqual(refused.headers.get("content-type"), "application/problem+json")
      const problem: unknown = JSON.parse(refused.body)
      assert.deepInclude(problem, {
        type: AdaptiveConcurrencyHttp.problemType,
        status: 503,
        title: "Request cannot be satisfied due to temporary server capacity constraints"
      })
      assert.strictEqual(handled, 1, "the refused request never reached the handler")
      // Routes outside the middleware are not limited.
      assert.strictEqual((yield* Effect.promise(() => fetch(`${url}/healthz`))).status, 200)
      yield* Deferred.succeed(release, undefined)
      const done = yield* Fiber.await(first)
      assert.isTrue(Exit.isSuccess(done) && done.value.status === 201)
      assert.strictEqual((yield* post(`${url}/work`)).status, 201)
      assert.strictEqual((yield* limiter.snapshot).inflight, 0)
    }).pipe(Effect.provide(ServerLive), Effect.scoped))

  it.live("counts a 5xx answer of the app as a drop, and other answers as samples", () =>
    Effect.gen(function*() {
      const limiter = yield* AdaptiveConcurrency.make({
        name: uniqueName("drops"),
        initialLimit: 50,
        minLimit: 1,
        maxLimit: 50,
        window: 1,
        minSamples: 1,
        algorithm: AdaptiveConcurrency.vegas()
      })
      yield* HttpServer.serveEffect(HttpRouter.empty.pipe(
        HttpRouter.post(
          "/fail",
          HttpServerResponse.text("down", { status: 503 }).pipe(
            Effect.delay(2),
            AdaptiveConcurrencyHttp.middleware(limiter)
          )
        ),
        HttpRouter.post(
          "/ok",
          HttpServerResponse.text("fine").pipe(Effect.delay(2), AdaptiveConcurrencyHttp.middleware(limiter))
        )
      ))
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      const url = `http://127.0.0.1:${address.port}`
      for (let i = 0; i < 3; i++) assert.strictEqual((yield* post(`${url}/ok`)).status, 200)
      assert.strictEqual((yield* limiter.snapshot).limit, 50, "samples of a lightly used limit leave it alone")
      for (let i = 0; i < 10; i++) assert.strictEqual((yield* post(`${url}/fail`)).status, 503)
      assert.isBelow((yield* limiter.snapshot).limit, 50, "drops shrink it")
    }).pipe(Effect.provide(ServerLive), Effect.scoped))
})
