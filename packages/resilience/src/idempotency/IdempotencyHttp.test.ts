import { NodeHttpServer } from "@effect/platform-node"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import fc from "fast-check"
import { createServer } from "node:http"
import { connect } from "node:net"
import * as Metrics from "../Metrics.js"
import * as IdempotencyHttp from "./IdempotencyHttp.js"
import * as IdempotencyStore from "./IdempotencyStore.js"

// -----------------------------------------------------------------------------
// Harness: real HTTP on 127.0.0.1, a free port, the in-memory store
// -----------------------------------------------------------------------------

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })

const baseUrl = Effect.gen(function*() {
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  return `http://127.0.0.1:${address.port}`
})

const serve = <E, R>(app: HttpApp.Default<E, R>) => Effect.zipRight(HttpServer.serveEffect()(app), baseUrl)

const withServer = <A, E>(
  effect: Effect.Effect<A, E, IdempotencyStore.IdempotencyStore | HttpServer.HttpServer | Scope.Scope>
) => effect.pipe(Effect.provide(Layer.merge(ServerLive, IdempotencyStore.layerMemory)), Effect.scoped)

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly bytes: Uint8Array
  readonly text: string
}

const send = (
  url: string,
  init: { readonly method?: string; readonly headers?: Record<string, string>; readonly body?: string | Uint8Array } =
    {}
) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, {
      method: init.method ?? "POST",
      headers: init.headers ?? {},
      ...(init.body === undefined ? {} : { body: init.body })
    })
    const bytes = new Uint8Array(await response.arrayBuffer())
    return { status: response.status, headers: response.headers, bytes, text: new TextDecoder().decode(bytes) }
  })

const json = (key: string | undefined, body: unknown, extra: Record<string, string> = {}) => ({
  headers: { "content-type": "application/json", ...(key === undefined ? {} : { "idempotency-key": key }), ...extra },
  body: JSON.stringify(body)
})

/** Sends raw bytes on a socket: the only way to put a tab or latin-1 bytes into a header value verbatim. */
const rawRequest = (base: string, head: string) =>
  Effect.async<{ readonly status: number; readonly body: string }>((resume) => {
    const { hostname, port } = new URL(base)
    const socket = connect(Number(port), hostname, () => {
      socket.write(
        Buffer.from(`${head}\r\nHost: ${hostname}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`, "latin1")
      )
    })
    let out = ""
    socket.on("data", (chunk: Buffer) => {
      out += chunk.toString("latin1")
    })
    socket.on("close", () => {
      const [statusLine = ""] = out.split("\r\n")
      const body = out.slice(out.indexOf("\r\n\r\n") + 4)
      resume(Effect.succeed({ status: Number(statusLine.split(" ")[1]), body }))
    })
  })

const problemOf = (reply: Reply): { readonly type: string; readonly title: string; readonly status: number } => {
  assert.strictEqual(reply.headers.get("content-type"), "application/problem+json")
  const body: unknown = JSON.parse(reply.text)
  const parsed = Schema.decodeUnknownSync(Schema.Struct({
    type: Schema.String,
    title: Schema.String,
    status: Schema.Number,
    detail: Schema.String
  }))(body)
  assert.strictEqual(parsed.status, reply.status)
  return parsed
}

const requestCounter = (scope: string, result: string) =>
  Metric.value(Metric.tagged(Metric.tagged(Metrics.idempotencyRequests, "scope", scope), "result", result)).pipe(
    Effect.map((state) => state.count)
  )

// -----------------------------------------------------------------------------
// The application under test
// -----------------------------------------------------------------------------

class OutOfStock extends Data.TaggedError("OutOfStock") implements HttpServerRespondable.Respondable {
  [HttpServerRespondable.symbol]() {
    return Effect.succeed(HttpServerResponse.unsafeJson({ error: "out of stock" }, { status: 409 }))
  }
}

class Principal extends Context.Tag("test/Principal")<Principal, { readonly accountId: string }>() {}

const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i)

const makeState = Effect.gen(function*() {
  return {
    charges: 0,
    calls: 0,
    booms: 0,
    flakyFailures: 1,
    slowStarted: yield* Deferred.make<void>(),
    slowRelease: yield* Deferred.make<void>()
  }
})
type State = Effect.Effect.Success<typeof makeState>

const Amount = Schema.Struct({ amount: Schema.Number })

const routes = (state: State) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/payments",
      Effect.gen(function*() {
        const { amount } = yield* HttpServerRequest.schemaBodyJson(Amount)
        state.charges++
        return HttpServerResponse.unsafeJson({ id: `ch_${state.charges}`, amount }, {
          status: 201,
          headers: { "x-charge-id": `ch_${state.charges}`, "connection": "keep-alive" }
        }).pipe(HttpServerResponse.unsafeSetCookie("session", `s${state.charges}`))
      })
    ),
    HttpRouter.post(
      "/accounts/:id/payments",
      Effect.sync(() => HttpServerResponse.text(`charge ${++state.charges}`))
    ),
    HttpRouter.post(
      "/declined",
      Effect.sync(() => {
        state.calls++
        return HttpServerResponse.unsafeJson({ error: "card_declined", attempt: state.calls }, { status: 402 })
      })
    ),
    HttpRouter.post(
      "/flaky",
      Effect.sync(() => {
        state.calls++
        if (state.calls <= state.flakyFailures) {
          return HttpServerResponse.text("gateway unavailable", { status: 503, headers: { "retry-after": "0" } })
        }
        state.charges++
        return HttpServerResponse.unsafeJson({ charge: state.charges }, { status: 201 })
      })
    ),
    HttpRouter.post(
      "/binary",
      Effect.sync(() => {
        state.calls++
        return HttpServerResponse.uint8Array(ALL_BYTES, { status: 200, contentType: "image/x-test" })
      })
    ),
    HttpRouter.post(
      "/stream",
      Effect.sync(() => {
        state.calls++
        return HttpServerResponse.stream(
          Stream.make("chunk-1 ", "chunk-2 ", `call-${state.calls}`).pipe(Stream.encodeText),
          {
            contentType: "text/plain"
          }
        )
      })
    ),
    HttpRouter.post(
      "/slow",
      Effect.gen(function*() {
        state.calls++
        yield* Deferred.succeed(state.slowStarted, undefined)
        yield* Deferred.await(state.slowRelease)
        return HttpServerResponse.text(`slow ${state.calls}`)
      })
    ),
    HttpRouter.post(
      "/boom",
      Effect.suspend(() => {
        state.booms++
        return state.booms === 1 ? Effect.die("boom") : Effect.succeed(HttpServerResponse.text(`ok ${state.booms}`))
      })
    ),
    HttpRouter.post(
      "/out-of-stock",
      Effect.suspend(() => {
        state.calls++
        return Effect.fail(new OutOfStock())
      })
    ),
    HttpRouter.post(
      "/execution",
      Effect.gen(function*() {
        const execution = yield* IdempotencyHttp.CurrentExecution
        yield* HttpApp.appendPreResponseHandler((_request, response) =>
          Effect.succeed(HttpServerResponse.setHeader(response, "x-pre-response", "added"))
        )
        return HttpServerResponse.unsafeJson(Option.getOrNull(execution))
      })
    ),
    HttpRouter.get("/payments", Effect.sync(() => HttpServerResponse.text("listing")))
  )

const serveApp = (state: State, options: IdempotencyHttp.MiddlewareOptions = {}) =>
  serve(routes(state).pipe(HttpRouter.use(IdempotencyHttp.middleware(options))))

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

describe("IdempotencyHttp.middleware over a real server (memory store)", () => {
  it.live("runs the first request and replays its status, headers and body byte for byte", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const executedBefore = yield* requestCounter("POST /payments", "executed")
      const replayedBefore = yield* requestCounter("POST /payments", "replayed")
      const first = yield* send(`${base}/payments`, json("key-1", { amount: 100 }))
      assert.strictEqual(first.status, 201)
      assert.strictEqual(first.text, `{"id":"ch_1","amount":100}`)
      assert.isNull(first.headers.get("idempotent-replayed"))
      assert.strictEqual(first.headers.get("set-cookie"), "session=s1")
      const second = yield* send(`${base}/payments`, json("key-1", { amount: 100 }))
      assert.strictEqual(second.status, 201)
      assert.deepStrictEqual(second.bytes, first.bytes)
      assert.strictEqual(second.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(second.headers.get("x-charge-id"), "ch_1")
      assert.strictEqual(second.headers.get("content-type"), "application/json")
      // cookies are not stored by default, and hop-by-hop headers never are
      assert.isNull(second.headers.get("set-cookie"))
      assert.strictEqual(state.charges, 1)
      assert.strictEqual((yield* requestCounter("POST /payments", "executed")) - executedBefore, 1)
      assert.strictEqual((yield* requestCounter("POST /payments", "replayed")) - replayedBefore, 1)
      // another key is another operation
      const other = yield* send(`${base}/payments`, json("key-2", { amount: 100 }))
      assert.strictEqual(other.text, `{"id":"ch_2","amount":100}`)
    })))

  it.live("stores cookies only when asked to", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state, { storeCookies: true, excludeHeaders: ["X-Charge-Id"] })
      yield* send(`${base}/payments`, json("cookie-key", { amount: 5 }))
      const replay = yield* send(`${base}/payments`, json("cookie-key", { amount: 5 }))
      assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(replay.headers.get("set-cookie"), "session=s1")
      assert.isNull(replay.headers.get("x-charge-id"))
    })))

  it.live("replays a binary body and a streamed body byte for byte", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const body = Uint8Array.from([0, 255, 1, 254])
      const headers = { "idempotency-key": "bin", "content-type": "application/octet-stream" }
      const first = yield* send(`${base}/binary`, { headers, body })
      const replay = yield* send(`${base}/binary`, { headers, body })
      assert.deepStrictEqual(first.bytes, ALL_BYTES)
      assert.deepStrictEqual(replay.bytes, ALL_BYTES)
      assert.strictEqual(replay.headers.get("content-type"), "image/x-test")
      assert.strictEqual(replay.headers.get("content-length"), "256")
      assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
      // a different binary body is a different request
      const changed = yield* send(`${base}/binary`, { headers, body: Uint8Array.from([0, 255, 1, 253]) })
      assert.strictEqual(changed.status, 422)

      const streamed = yield* send(`${base}/stream`, { headers: { "idempotency-key": "stream" } })
      const streamedReplay = yield* send(`${base}/stream`, { headers: { "idempotency-key": "stream" } })
      assert.strictEqual(streamed.text, "chunk-1 chunk-2 call-2")
      assert.deepStrictEqual(streamedReplay.bytes, streamed.bytes)
      assert.strictEqual(streamedReplay.headers.get("content-type"), "text/plain")
      assert.strictEqual(state.calls, 2)
    })))

  it.live("answers 422 with a problem for the same key on a different request, and matches canonical JSON", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const mismatchBefore = yield* requestCounter("POST /payments", "fingerprint_mismatch")
      yield* send(`${base}/payments`, {
        headers: { "idempotency-key": "k", "content-type": "application/json" },
        body: `{"amount":100,"note":{"b":2,"a":"\\u0041"}}`
      })
      // same JSON, other key order, whitespace and escapes: the same request
      const same = yield* send(`${base}/payments`, {
        headers: { "idempotency-key": "k", "content-type": "application/json; charset=utf-8" },
        body: ` { "note" : { "a" : "A", "b" : 2 } ,\n "amount" : 100 } `
      })
      assert.strictEqual(same.headers.get("idempotent-replayed"), "true")
      const different = yield* send(`${base}/payments`, json("k", { amount: 101, note: { a: "A", b: 2 } }))
      assert.strictEqual(different.status, 422)
      const problem = problemOf(different)
      assert.strictEqual(problem.title, "Unprocessable Content")
      assert.strictEqual(problem.type, "about:blank")
      // the same key on another route is another request too (and another scope)
      const otherRoute = yield* send(`${base}/accounts/1/payments`, json("k", { amount: 100 }))
      assert.strictEqual(otherRoute.status, 200)
      // path parameters are part of the request
      const account2 = yield* send(`${base}/accounts/2/payments`, json("k", { amount: 100 }))
      assert.strictEqual(account2.status, 422)
      assert.strictEqual(state.charges, 2)
      assert.strictEqual((yield* requestCounter("POST /payments", "fingerprint_mismatch")) - mismatchBefore, 1)
    })))

  it.live("answers 400 with a problem for a missing, empty, too long, non-ASCII or control-character key", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const missingBefore = yield* requestCounter("POST /payments", "missing_key")
      const invalidBefore = yield* requestCounter("POST /payments", "invalid_key")
      const missing = yield* send(`${base}/payments`, json(undefined, { amount: 1 }))
      assert.strictEqual(missing.status, 400)
      assert.include(problemOf(missing).title, "Bad Request")
      assert.include(missing.text, "requires an Idempotency-Key")
      for (const key of ["", "x".repeat(256), "caf\u00e9"]) {
        const reply = yield* send(`${base}/payments`, json(key, { amount: 1 }))
        assert.strictEqual(reply.status, 400, JSON.stringify(key))
        problemOf(reply)
      }
      const tab = yield* rawRequest(base, "POST /payments HTTP/1.1\r\nIdempotency-Key: ab\tcd")
      assert.strictEqual(tab.status, 400)
      assert.include(tab.body, "control character (0x09)")
      const latin1 = yield* rawRequest(base, "POST /payments HTTP/1.1\r\nIdempotency-Key: caf\u00e9")
      assert.strictEqual(latin1.status, 400)
      assert.include(latin1.body, "non-ASCII")
      assert.strictEqual(state.charges, 0)
      // 255 printable characters are fine, and an sf-string names the same key as the bare token
      const longest = yield* send(`${base}/payments`, json("~".repeat(255), { amount: 1 }))
      assert.strictEqual(longest.status, 201)
      yield* send(`${base}/payments`, json("token-7", { amount: 1 }))
      const quoted = yield* send(`${base}/payments`, json(`"token-7"`, { amount: 1 }))
      assert.strictEqual(quoted.headers.get("idempotent-replayed"), "true")
      assert.strictEqual((yield* requestCounter("POST /payments", "missing_key")) - missingBefore, 1)
      assert.strictEqual((yield* requestCounter("POST /payments", "invalid_key")) - invalidBefore, 5)
    })))

  it.live("passes requests without a key through when keys are optional, and other methods always", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state, { required: false })
      assert.strictEqual((yield* send(`${base}/payments`, json(undefined, { amount: 1 }))).status, 201)
      assert.strictEqual((yield* send(`${base}/payments`, json(undefined, { amount: 1 }))).status, 201)
      assert.strictEqual(state.charges, 2)
      const listing = yield* send(`${base}/payments`, { method: "GET" })
      assert.strictEqual(listing.text, "listing")
    })))

  it.live("answers 409 with Retry-After while the first request runs, then replays", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const conflictsBefore = yield* requestCounter("POST /slow", "in_flight_conflict")
      const first = yield* Effect.fork(send(`${base}/slow`, { headers: { "idempotency-key": "slow" } }))
      yield* Deferred.await(state.slowStarted)
      const conflict = yield* send(`${base}/slow`, { headers: { "idempotency-key": "slow" } })
      assert.strictEqual(conflict.status, 409)
      assert.strictEqual(conflict.headers.get("retry-after"), "1")
      assert.strictEqual(problemOf(conflict).title, "Conflict")
      yield* Deferred.succeed(state.slowRelease, undefined)
      const done = yield* Fiber.join(first)
      assert.strictEqual(done.text, "slow 1")
      const replay = yield* send(`${base}/slow`, { headers: { "idempotency-key": "slow" } })
      assert.strictEqual(replay.text, "slow 1")
      assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(state.calls, 1)
      assert.strictEqual((yield* requestCounter("POST /slow", "in_flight_conflict")) - conflictsBefore, 1)
    })))

  it.live("with waitForInFlight, waits for the first request and replays its answer", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      // Completed when the duplicate polls the store for the key in flight: only `waitForInFlight` looks keys up.
      const waiting = yield* Deferred.make<void>()
      const memory = yield* IdempotencyStore.makeMemory
      const store: IdempotencyStore.Service = {
        ...memory,
        lookup: (key) => Effect.zipRight(Deferred.succeed(waiting, undefined), memory.lookup(key))
      }
      const base = yield* serve(
        routes(state).pipe(
          HttpRouter.use(IdempotencyHttp.middleware({ waitForInFlight: "5 seconds" })),
          HttpRouter.provideService(IdempotencyStore.IdempotencyStore, store)
        )
      )
      const first = yield* Effect.fork(send(`${base}/slow`, { headers: { "idempotency-key": "wait" } }))
      yield* Deferred.await(state.slowStarted)
      const second = yield* Effect.fork(send(`${base}/slow`, { headers: { "idempotency-key": "wait" } }))
      // The first request is held until the duplicate waits for it; a duplicate that answers without waiting fails.
      yield* Effect.raceFirst(
        Deferred.await(waiting),
        Effect.flatMap(Fiber.join(second), (reply) =>
          Effect.zipRight(
            Deferred.succeed(state.slowRelease, undefined), // lets the server shut down
            Effect.dieMessage(`the duplicate answered ${reply.status} without waiting for the first request`)
          ))
      )
      yield* Deferred.succeed(state.slowRelease, undefined)
      const [a, b] = [yield* Fiber.join(first), yield* Fiber.join(second)]
      assert.strictEqual(a.text, "slow 1")
      assert.strictEqual(b.text, "slow 1")
      assert.strictEqual(b.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(state.calls, 1)
    })))

  it.live("releases the key on a 503, so the retry with the same key runs again and charges once", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const failed = yield* send(`${base}/flaky`, { headers: { "idempotency-key": "flaky" } })
      assert.strictEqual(failed.status, 503)
      assert.strictEqual(failed.text, "gateway unavailable")
      const retried = yield* send(`${base}/flaky`, { headers: { "idempotency-key": "flaky" } })
      assert.strictEqual(retried.status, 201)
      assert.isNull(retried.headers.get("idempotent-replayed"))
      const replayed = yield* send(`${base}/flaky`, { headers: { "idempotency-key": "flaky" } })
      assert.deepStrictEqual(replayed.bytes, retried.bytes)
      assert.strictEqual(replayed.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(state.calls, 2)
      assert.strictEqual(state.charges, 1)
    })))

  it.live("stores terminal 4xx answers and replays them byte for byte", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const declined = yield* send(`${base}/declined`, { headers: { "idempotency-key": "d" } })
      const again = yield* send(`${base}/declined`, { headers: { "idempotency-key": "d" } })
      assert.strictEqual(declined.status, 402)
      assert.strictEqual(again.status, 402)
      assert.deepStrictEqual(again.bytes, declined.bytes)
      assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
      // a failure the app turns into a 409 response is an answer too
      const outOfStock = yield* send(`${base}/out-of-stock`, { headers: { "idempotency-key": "o" } })
      const outOfStockAgain = yield* send(`${base}/out-of-stock`, { headers: { "idempotency-key": "o" } })
      assert.strictEqual(outOfStock.status, 409)
      assert.strictEqual(outOfStock.text, `{"error":"out of stock"}`)
      assert.deepStrictEqual(outOfStockAgain.bytes, outOfStock.bytes)
      assert.strictEqual(outOfStockAgain.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(state.calls, 2)
    })))

  it.live("releases the key on a defect", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const boom = yield* send(`${base}/boom`, { headers: { "idempotency-key": "b" } })
      assert.strictEqual(boom.status, 500)
      const after = yield* send(`${base}/boom`, { headers: { "idempotency-key": "b" } })
      assert.strictEqual(after.text, "ok 2")
    })))

  it.live("with storeAll, stores 5xx answers and defects too (Stripe's rule)", () =>
    withServer(Effect.gen(function*() {
      const strict = yield* makeState
      const strictBase = yield* serveApp(strict, { storeAll: true })
      const failed = yield* send(`${strictBase}/flaky`, { headers: { "idempotency-key": "s" } })
      const replayed = yield* send(`${strictBase}/flaky`, { headers: { "idempotency-key": "s" } })
      assert.strictEqual(replayed.status, 503)
      assert.deepStrictEqual(replayed.bytes, failed.bytes)
      assert.strictEqual(replayed.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(replayed.headers.get("retry-after"), "0")
      const boomStored = yield* send(`${strictBase}/boom`, { headers: { "idempotency-key": "s2" } })
      const boomReplayed = yield* send(`${strictBase}/boom`, { headers: { "idempotency-key": "s2" } })
      assert.strictEqual(boomStored.status, 500)
      assert.strictEqual(boomReplayed.status, 500)
      assert.strictEqual(boomReplayed.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(strict.calls, 1)
      assert.strictEqual(strict.booms, 1)
    })))

  it.live("answers 503 when the store is down, and the first client still gets its answer when only storing fails", () =>
    withServer(Effect.gen(function*() {
      const memory = yield* IdempotencyStore.makeMemory
      const down = (operation: IdempotencyStore.Operation) =>
        Effect.fail(new IdempotencyStore.IdempotencyStoreError({ backend: "test", operation, cause: "down" }))
      let claimDown = true
      const store: IdempotencyStore.Service = {
        ...memory,
        claim: (request) => (claimDown ? down("claim") : memory.claim(request)),
        complete: () => down("complete")
      }
      const state = yield* makeState
      const base = yield* serve(
        routes(state).pipe(
          HttpRouter.use(IdempotencyHttp.middleware()),
          HttpRouter.provideService(IdempotencyStore.IdempotencyStore, store)
        )
      )
      const refused = yield* send(`${base}/payments`, json("down", { amount: 3 }))
      assert.strictEqual(refused.status, 503)
      assert.strictEqual(refused.headers.get("retry-after"), "1")
      assert.strictEqual(problemOf(refused).title, "Service Unavailable")
      assert.strictEqual(state.charges, 0)
      claimDown = false
      const answered = yield* send(`${base}/payments`, json("down", { amount: 3 }))
      assert.strictEqual(answered.status, 201)
      assert.strictEqual(answered.text, `{"id":"ch_1","amount":3}`)
      // the completion was not written: the key is still claimed, so a repeat is told to wait
      assert.strictEqual((yield* send(`${base}/payments`, json("down", { amount: 3 }))).status, 409)
    })))

  it.live("answers a response too large to store once, then 500 on repeats", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state, { maxStoredBytes: 200 })
      const headers = { "idempotency-key": "big", "content-type": "application/octet-stream" }
      const first = yield* send(`${base}/binary`, { headers })
      assert.deepStrictEqual(first.bytes, ALL_BYTES)
      const repeat = yield* send(`${base}/binary`, { headers })
      assert.strictEqual(repeat.status, 500)
      assert.include(problemOf(repeat).title, "Internal Server Error")
      assert.strictEqual(state.calls, 1)
    })))

  it.live("keeps each partition's keys apart", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state, { partition: IdempotencyHttp.partitionByHeader("X-Tenant") })
      const a = yield* send(`${base}/payments`, json("shared", { amount: 1 }, { "x-tenant": "a" }))
      const b = yield* send(`${base}/payments`, json("shared", { amount: 1 }, { "x-tenant": "b" }))
      const aAgain = yield* send(`${base}/payments`, json("shared", { amount: 1 }, { "x-tenant": "a" }))
      assert.strictEqual(a.text, `{"id":"ch_1","amount":1}`)
      assert.strictEqual(b.text, `{"id":"ch_2","amount":1}`)
      assert.strictEqual(aAgain.text, a.text)
      assert.strictEqual(state.charges, 2)
    })))

  it.live("keeps the keys of two authenticated principals apart: the same key and body run once for each", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      // An outer "authentication" middleware provides the principal the partition reads.
      const authenticate = HttpMiddleware.make((app) =>
        Effect.flatMap(
          HttpServerRequest.HttpServerRequest,
          (request) =>
            Effect.provideService(app, Principal, { accountId: request.headers["authorization"] ?? "anonymous" })
        )
      )
      const base = yield* serve(
        routes(state).pipe(
          HttpRouter.use(IdempotencyHttp.middleware({
            partition: () => Effect.map(Principal, (principal) => principal.accountId)
          })),
          HttpRouter.use(authenticate)
        )
      )
      const alice = yield* send(`${base}/payments`, json("same", { amount: 9 }, { authorization: "alice" }))
      const mallory = yield* send(`${base}/payments`, json("same", { amount: 9 }, { authorization: "mallory" }))
      const aliceAgain = yield* send(`${base}/payments`, json("same", { amount: 9 }, { authorization: "alice" }))
      assert.strictEqual(alice.text, `{"id":"ch_1","amount":9}`)
      // not alice's stored answer: mallory's own execution
      assert.strictEqual(mallory.text, `{"id":"ch_2","amount":9}`)
      assert.isNull(mallory.headers.get("idempotent-replayed"))
      assert.strictEqual(aliceAgain.text, alice.text)
      assert.strictEqual(aliceAgain.headers.get("idempotent-replayed"), "true")
      assert.strictEqual(state.charges, 2)
    })))

  it.live("warns once per route whose keys are global, and never for a partitioned or declared global route", () => {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (logLevel._tag === "Warning" && text.includes("are global")) warnings.push(text)
    })
    return Effect.gen(function*() {
      yield* withServer(Effect.gen(function*() {
        const state = yield* makeState
        const global = yield* serveApp(state)
        yield* send(`${global}/payments`, json("w1", { amount: 1 }))
        yield* send(`${global}/payments`, json("w2", { amount: 1 }))
        yield* send(`${global}/binary`, { headers: { "idempotency-key": "w3" } })
      }))
      assert.strictEqual(warnings.length, 2)
      assert.include(warnings[0], `Idempotency keys of "POST /payments" are global`)
      assert.include(warnings[0], "IdempotencyHttp.globalPartition")
      assert.include(warnings[1], `Idempotency keys of "POST /binary" are global`)
      yield* withServer(Effect.gen(function*() {
        const state = yield* makeState
        const partitioned = yield* serveApp(state, { partition: IdempotencyHttp.partitionByHeader("x-tenant") })
        yield* send(`${partitioned}/payments`, json("w4", { amount: 1 }, { "x-tenant": "t" }))
      }))
      yield* withServer(Effect.gen(function*() {
        const state = yield* makeState
        const declared = yield* serveApp(state, { partition: IdempotencyHttp.globalPartition })
        const first = yield* send(`${declared}/payments`, json("w5", { amount: 1 }))
        const replay = yield* send(`${declared}/payments`, json("w5", { amount: 1 }))
        assert.strictEqual(replay.text, first.text)
        assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
      }))
      assert.strictEqual(warnings.length, 2)
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.live("tells the handler its execution, and keeps the handler's pre-response handlers", () =>
    withServer(Effect.gen(function*() {
      const state = yield* makeState
      const base = yield* serveApp(state)
      const reply = yield* send(`${base}/execution`, { headers: { "idempotency-key": "e" } })
      assert.deepStrictEqual(JSON.parse(reply.text), {
        scope: "POST /execution",
        partition: "",
        key: "e",
        attempt: 1,
        recovery: false
      })
      assert.strictEqual(reply.headers.get("x-pre-response"), "added")
    })))
})

// -----------------------------------------------------------------------------
// HttpApi
// -----------------------------------------------------------------------------

class CardDeclined extends Schema.TaggedError<CardDeclined>()(
  "CardDeclined",
  { reason: Schema.String },
  HttpApiSchema.annotations({ status: 402 })
) {}

class GatewayBusy extends Schema.TaggedError<GatewayBusy>()(
  "GatewayBusy",
  {},
  HttpApiSchema.annotations({ status: 503 })
) {}

const Payment = Schema.Struct({ id: Schema.String, amount: Schema.Number, attempt: Schema.Number })

const Api = HttpApi.make("api").add(
  HttpApiGroup.make("payments").add(
    HttpApiEndpoint.post("create", "/payments")
      .setPayload(Amount)
      .addSuccess(Payment, { status: 201 })
      .addError(CardDeclined)
      .addError(GatewayBusy)
  )
)

const apiServer = (
  state: State,
  setup: {
    readonly store?: Layer.Layer<IdempotencyStore.IdempotencyStore>
    readonly maxStoredBytes?: number
  } = {}
) => {
  const PaymentsLive = HttpApiBuilder.group(Api, "payments", (handlers) =>
    handlers.handle(
      "create",
      IdempotencyHttp.handler(
        {
          success: Payment,
          failure: Schema.Union(CardDeclined, GatewayBusy),
          ...(setup.maxStoredBytes === undefined ? {} : { maxStoredBytes: setup.maxStoredBytes })
        },
        ({ payload }) =>
          Effect.gen(function*() {
            state.calls++
            const execution = yield* IdempotencyHttp.CurrentExecution
            const attempt = Option.match(execution, { onNone: () => 0, onSome: (e) => e.attempt })
            if (payload.amount === 13 && state.flakyFailures-- > 0) return yield* new GatewayBusy()
            if (payload.amount > 1000) return yield* new CardDeclined({ reason: "limit" })
            state.charges++
            return { id: `ch_${state.charges}`, amount: payload.amount, attempt }
          })
      )
    ))
  return HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(PaymentsLive))),
    Layer.provideMerge(ServerLive),
    Layer.provide(setup.store ?? IdempotencyStore.layerMemory)
  )
}

describe("IdempotencyHttp.handler in an HttpApi (memory store)", () => {
  it.live("replays successes and terminal errors, re-runs after a transient error, refuses with problems", () =>
    Effect.gen(function*() {
      const state = yield* makeState
      yield* Effect.provide(apiChecks(state), apiServer(state))
    }))

  it.live("answers the first request with the handler's answer when it is too large to store, then 500", () =>
    Effect.gen(function*() {
      const state = yield* makeState
      yield* Effect.provide(
        Effect.gen(function*() {
          const base = yield* baseUrl
          const first = yield* send(`${base}/payments`, json("big", { amount: 10 }))
          assert.strictEqual(first.status, 201)
          assert.strictEqual(first.text, `{"id":"ch_1","amount":10,"attempt":1}`)
          const repeat = yield* send(`${base}/payments`, json("big", { amount: 10 }))
          assert.strictEqual(repeat.status, 500)
          problemOf(repeat)
          assert.strictEqual(state.calls, 1)
        }),
        apiServer(state, { maxStoredBytes: 10 })
      )
    }))

  it.live("answers the first request with the handler's answer when its completion cannot be written", () =>
    Effect.gen(function*() {
      const state = yield* makeState
      const store = Layer.effect(
        IdempotencyStore.IdempotencyStore,
        Effect.map(IdempotencyStore.makeMemory, (memory): IdempotencyStore.Service => ({
          ...memory,
          complete: () =>
            Effect.fail(
              new IdempotencyStore.IdempotencyStoreError({ backend: "test", operation: "complete", cause: "down" })
            )
        }))
      )
      yield* Effect.provide(
        Effect.gen(function*() {
          const base = yield* baseUrl
          const first = yield* send(`${base}/payments`, json("lost", { amount: 10 }))
          assert.strictEqual(first.status, 201)
          assert.strictEqual(first.text, `{"id":"ch_1","amount":10,"attempt":1}`)
          // nothing was stored: the key stays claimed until its lease lapses
          assert.strictEqual((yield* send(`${base}/payments`, json("lost", { amount: 10 }))).status, 409)
          assert.strictEqual(state.calls, 1)
        }),
        apiServer(state, { store })
      )
    }))
})

const apiChecks = (state: State) =>
  Effect.gen(function*() {
    const base = yield* baseUrl
    const first = yield* send(`${base}/payments`, json("a1", { amount: 10 }))
    assert.strictEqual(first.status, 201)
    assert.strictEqual(first.text, `{"id":"ch_1","amount":10,"attempt":1}`)
    const replay = yield* send(`${base}/payments`, json("a1", { amount: 10 }))
    assert.strictEqual(replay.status, 201)
    assert.deepStrictEqual(replay.bytes, first.bytes)
    assert.strictEqual(replay.headers.get("idempotent-replayed"), "true")
    assert.isNull(first.headers.get("idempotent-replayed"))

    // a declared 402 is terminal: stored, and replayed as the same encoded error
    const declined = yield* send(`${base}/payments`, json("d1", { amount: 2000 }))
    const declinedAgain = yield* send(`${base}/payments`, json("d1", { amount: 2000 }))
    assert.strictEqual(declined.status, 402)
    assert.deepStrictEqual(declinedAgain.bytes, declined.bytes)
    assert.strictEqual(declinedAgain.status, 402)
    assert.strictEqual(declinedAgain.headers.get("idempotent-replayed"), "true")
    assert.isNull(declined.headers.get("idempotent-replayed"))

    // a declared 503 releases the key: the retry runs as attempt 2
    const busy = yield* send(`${base}/payments`, json("t1", { amount: 13 }))
    assert.strictEqual(busy.status, 503)
    const retried = yield* send(`${base}/payments`, json("t1", { amount: 13 }))
    assert.strictEqual(retried.status, 201)
    assert.strictEqual(retried.text, `{"id":"ch_2","amount":13,"attempt":2}`)

    const mismatch = yield* send(`${base}/payments`, json("a1", { amount: 11 }))
    assert.strictEqual(mismatch.status, 422)
    problemOf(mismatch)
    const missing = yield* send(`${base}/payments`, json(undefined, { amount: 10 }))
    assert.strictEqual(missing.status, 400)
    assert.include(problemOf(missing).title, "Bad Request")
    const invalid = yield* send(`${base}/payments`, json("x".repeat(256), { amount: 10 }))
    assert.strictEqual(invalid.status, 400)
    problemOf(invalid)
    assert.strictEqual(state.charges, 2)
    assert.strictEqual(state.calls, 4)
  })

// -----------------------------------------------------------------------------
// Pure pieces
// -----------------------------------------------------------------------------

describe("IdempotencyHttp keys and fingerprints", () => {
  it("parses bare tokens and sf-strings, and refuses everything else", () => {
    assert.deepStrictEqual(IdempotencyHttp.parseKey(undefined), { _tag: "Missing" })
    assert.deepStrictEqual(IdempotencyHttp.parseKey("abc"), { _tag: "Valid", key: "abc" })
    assert.deepStrictEqual(IdempotencyHttp.parseKey(`"a \\"b\\" \\\\c"`), { _tag: "Valid", key: `a "b" \\c` })
    assert.deepStrictEqual(IdempotencyHttp.parseKey("x".repeat(255)), { _tag: "Valid", key: "x".repeat(255) })
    assert.deepStrictEqual(IdempotencyHttp.parseKey(`"k-1, k-2"`), { _tag: "Valid", key: "k-1, k-2" })
    assert.deepStrictEqual(IdempotencyHttp.parseKey(":YWJj:"), { _tag: "Valid", key: ":YWJj:" })
    for (
      const bad of [
        "",
        `""`,
        "x".repeat(256),
        `"${"x".repeat(256)}"`,
        "a\u0001b",
        "a\u007fb",
        "\u00e9",
        "\u{1F600}",
        `"a\\nb"`,
        `"a"b"`,
        // found by fuzzing: each used to be read as a key of its own
        "k-1, k-2", // a header sent twice, joined by Node
        `"k-1";a=1`,
        "k-1;a=1",
        `"abc`,
        `("a" "b")`,
        "a b",
        "a\\b"
      ]
    ) {
      assert.strictEqual(IdempotencyHttp.parseKey(bad)._tag, "Invalid", JSON.stringify(bad))
    }
  })

  it("canonical JSON sorts members, drops whitespace, normalises escapes and keeps numbers exact", () => {
    assert.strictEqual(
      IdempotencyHttp.canonicalJson(` {"b" : [1, 2.50, -0, 1e3], "a": {"y": null, "x": true}} `),
      `{"a":{"x":true,"y":null},"b":[1,2.50,-0,1e3]}`
    )
    assert.strictEqual(IdempotencyHttp.canonicalJson(`"\\u00e9\\/"`), `"é/"`)
    assert.strictEqual(IdempotencyHttp.canonicalJson(`{"a":1,"a":2}`), `{"a":2}`)
    assert.notStrictEqual(
      IdempotencyHttp.canonicalJson("12345678901234567890"),
      IdempotencyHttp.canonicalJson("12345678901234567891")
    )
    for (const bad of ["", "{", "[1,]", "{\"a\" 1}", "01", "tru", "\"\u0001\"", "1 2", "{\"a\":1,}"]) {
      assert.throws(() => IdempotencyHttp.canonicalJson(bad), undefined, undefined, bad)
    }
  })

  it("canonical JSON is the same for any serialisation of the same value, and differs for different values", () => {
    const shuffle = (value: unknown, seed: number): unknown => {
      if (Array.isArray(value)) return value.map((item) => shuffle(item, seed + 1))
      if (typeof value === "object" && value !== null) {
        const entries = Object.entries(value)
        if (seed % 2 === 1) entries.reverse()
        return Object.fromEntries(entries.map(([k, v]) => [k, shuffle(v, seed + 1)]))
      }
      return value
    }
    fc.assert(fc.property(fc.jsonValue(), fc.nat(), (value, seed) => {
      const compact = JSON.stringify(value)
      const spaced = JSON.stringify(shuffle(value, seed), null, seed % 4)
      const canonical = IdempotencyHttp.canonicalJson(compact)
      assert.strictEqual(IdempotencyHttp.canonicalJson(spaced), canonical)
      assert.deepStrictEqual(JSON.parse(canonical), JSON.parse(compact))
    }))
    fc.assert(fc.property(fc.jsonValue(), fc.jsonValue(), (a, b) => {
      fc.pre(JSON.stringify(a) !== JSON.stringify(b))
      const same = IdempotencyHttp.canonicalJson(JSON.stringify(a)) === IdempotencyHttp.canonicalJson(JSON.stringify(b))
      // equal canonical forms only for values that are equal up to member order
      if (same) assert.deepStrictEqual(JSON.parse(JSON.stringify(a)), JSON.parse(JSON.stringify(b)))
    }))
  })

  it("fingerprints cover the method, scope, path and body", () => {
    const base = {
      method: "POST",
      scope: "POST /payments",
      target: "/payments",
      contentType: "application/json",
      body: new TextEncoder().encode(`{"a":1,"b":2}`)
    }
    const hash = IdempotencyHttp.fingerprint(base)
    assert.match(hash, /^[0-9a-f]{64}$/)
    assert.strictEqual(
      IdempotencyHttp.fingerprint({ ...base, body: new TextEncoder().encode(`{ "b": 2, "a": 1 }`) }),
      hash
    )
    assert.notStrictEqual(IdempotencyHttp.fingerprint({ ...base, method: "PATCH" }), hash)
    assert.notStrictEqual(IdempotencyHttp.fingerprint({ ...base, target: "/payments?x=1" }), hash)
    assert.notStrictEqual(IdempotencyHttp.fingerprint({ ...base, scope: "POST /other" }), hash)
    assert.notStrictEqual(IdempotencyHttp.fingerprint({ ...base, contentType: "text/plain" }), hash)
    // fields are length-prefixed: moving a character across a boundary changes the hash
    assert.notStrictEqual(
      IdempotencyHttp.fingerprint({ ...base, scope: "POST /payments/", target: "payments" }),
      IdempotencyHttp.fingerprint({ ...base, scope: "POST /payments", target: "/payments" })
    )
  })
})
