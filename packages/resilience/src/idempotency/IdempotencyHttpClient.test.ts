import { NodeHttpServer } from "@effect/platform-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import { createServer } from "node:http"
import * as Failure from "../Failure.js"
import * as Retry from "../retry/Retry.js"
import * as IdempotencyHttp from "./IdempotencyHttp.js"
import * as IdempotencyHttpClient from "./IdempotencyHttpClient.js"
import * as IdempotencyStore from "./IdempotencyStore.js"

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

interface Seen {
  readonly method: string
  readonly key: string | undefined
}

/**
 * A server that records each request's method and key and answers with the
 * next status of `script` (the last one repeats). 409s can be marked as
 * replays.
 */
const scriptedServer = (script: ReadonlyArray<number>, options: { readonly replayed409?: boolean } = {}) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<Seen>>([])
    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const all = yield* Ref.updateAndGet(seen, (list) => [
        ...list,
        { method: request.method, key: request.headers["idempotency-key"] }
      ])
      const status = script[Math.min(all.length, script.length) - 1] ?? 200
      const headers: Record<string, string> = status === 409 || status === 503 ? { "retry-after": "0" } : {}
      if (status === 409 && options.replayed409) headers["idempotent-replayed"] = "true"
      return HttpServerResponse.text(`answer ${all.length}`, { status, headers })
    })
    yield* HttpServer.serveEffect()(app)
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return { url: `http://127.0.0.1:${address.port}/op`, seen: Ref.get(seen) }
  })

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })
const TestLive = Layer.mergeAll(ServerLive, FetchHttpClient.layer, IdempotencyStore.layerMemory)

const policy = Retry.unsafeMake({
  name: "idempotency-client-test",
  backoff: Retry.constant("5 millis"),
  maxAttempts: 3
})

const keysOf = (seen: ReadonlyArray<Seen>) => seen.map((s) => s.key)

describe("IdempotencyHttpClient.retry", () => {
  it.live("sends one generated key on every attempt of an operation, and a new key per operation", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer([503, 503, 201])
      const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
      const response = yield* client.post(server.url)
      assert.strictEqual(response.status, 201)
      const first = yield* server.seen
      assert.strictEqual(first.length, 3)
      const [key] = keysOf(first)
      assert.match(key ?? "", UUID)
      assert.deepStrictEqual(keysOf(first), [key, key, key])
      // the next operation gets its own key
      yield* client.post(server.url)
      const next = (yield* server.seen)[3]
      assert.match(next?.key ?? "", UUID)
      assert.notStrictEqual(next?.key, key)
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("never replaces a caller's key, and PATCH is keyed too", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer([503, 200])
      const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
      yield* client.post(server.url, { headers: { "Idempotency-Key": "mine-1" } })
      yield* client.patch(server.url)
      const seen = yield* server.seen
      assert.deepStrictEqual(keysOf(seen).slice(0, 2), ["mine-1", "mine-1"])
      assert.match(seen[2]?.key ?? "", UUID)
      assert.strictEqual(seen[2]?.method, "PATCH")
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("gives up with RetriesExhausted carrying the last response; returns terminal answers as responses", () =>
    Effect.gen(function*() {
      const busy = yield* scriptedServer([503])
      const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
      const error = yield* Effect.flip(client.post(busy.url))
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag !== "RetriesExhausted") return
      assert.strictEqual(error.attempts, 3)
      const last = error.lastFailure
      assert.isTrue(last instanceof Failure.TransientError && last.status === 503)
      assert.strictEqual(new Set(keysOf(yield* busy.seen)).size, 1)
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("returns a 402 at once, retries a 409 in flight, and not a replayed 409", () =>
    Effect.gen(function*() {
      const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
      const declined = yield* scriptedServer([402, 200])
      assert.strictEqual((yield* client.post(declined.url)).status, 402)
      assert.strictEqual((yield* declined.seen).length, 1)
      yield* Effect.scoped(
        Effect.gen(function*() {
          const inFlight = yield* scriptedServer([409, 201])
          assert.strictEqual((yield* client.post(inFlight.url)).status, 201)
          assert.strictEqual((yield* inFlight.seen).length, 2)
        }).pipe(Effect.provide(ServerLive))
      )
      yield* Effect.scoped(
        Effect.gen(function*() {
          const replayed = yield* scriptedServer([409, 201], { replayed409: true })
          assert.strictEqual((yield* client.post(replayed.url)).status, 409)
          assert.strictEqual((yield* replayed.seen).length, 1)
        }).pipe(Effect.provide(ServerLive))
      )
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("retries idempotent methods without a key, and tries a request that is neither once", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer([503, 200])
      const onlyPatch = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy, { methods: ["PATCH"] }))
      assert.strictEqual((yield* onlyPatch.put(server.url)).status, 200)
      const seen = yield* server.seen
      assert.deepStrictEqual(seen.map((s) => [s.method, s.key]), [["PUT", undefined], ["PUT", undefined]])
      yield* Effect.scoped(
        Effect.gen(function*() {
          const once = yield* scriptedServer([503, 200])
          const error = yield* Effect.flip(onlyPatch.post(once.url))
          assert.strictEqual(error._tag === "RetriesExhausted" ? error.attempts : -1, 1)
          assert.deepStrictEqual(keysOf(yield* once.seen), [undefined])
        }).pipe(Effect.provide(ServerLive))
      )
    }).pipe(Effect.provide(TestLive), Effect.scoped))
})

describe("IdempotencyHttpClient.attachKey and withKeys", () => {
  it.live("attachKey outside Retry.retry: three attempts carry the same key", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer([503, 503, 200])
      const client = yield* HttpClient.HttpClient
      const request = yield* HttpClientRequest.post(server.url).pipe(IdempotencyHttpClient.attachKey())
      const attempt = client.execute(request).pipe(
        Effect.flatMap((response) =>
          response.status >= 500
            ? Effect.fail(new Failure.TransientError({ reason: "HttpStatus", message: "5xx", status: response.status }))
            : Effect.succeed(response)
        )
      )
      const response = yield* Retry.retry(attempt, policy)
      assert.strictEqual(response.status, 200)
      const keys = keysOf(yield* server.seen)
      assert.strictEqual(keys.length, 3)
      assert.match(keys[0] ?? "", UUID)
      assert.deepStrictEqual(keys, [keys[0], keys[0], keys[0]])
      // a request that is not POST or PATCH is left alone
      const get = yield* IdempotencyHttpClient.attachKey()(HttpClientRequest.get(server.url))
      assert.isUndefined(get.headers["idempotency-key"])
      const custom = yield* IdempotencyHttpClient.attachKey({
        header: "X-Request-Id",
        generateKey: Effect.succeed("fixed")
      })(HttpClientRequest.post(server.url))
      assert.strictEqual(custom.headers["x-request-id"], "fixed")
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("withKeys: retries inside the wrapped client reuse the key; a retry around the call is a new operation", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer([503, 200, 503, 200])
      const base = yield* HttpClient.HttpClient
      const inside = base.pipe(
        HttpClient.filterStatusOk,
        HttpClient.retryTransient({ times: 2 }),
        IdempotencyHttpClient.withKeys()
      )
      yield* inside.post(server.url)
      const [a, b] = keysOf(yield* server.seen)
      assert.match(a ?? "", UUID)
      assert.strictEqual(a, b)
      const outside = base.pipe(HttpClient.filterStatusOk, IdempotencyHttpClient.withKeys())
      yield* outside.post(server.url).pipe(Effect.retry({ times: 2 }))
      const [, , c, d] = keysOf(yield* server.seen)
      assert.notStrictEqual(c, d)
    }).pipe(Effect.provide(TestLive), Effect.scoped))
})

describe("IdempotencyHttpClient against IdempotencyHttp", () => {
  it.live("a 503 is retried with the same key, runs again, and charges once", () =>
    Effect.gen(function*() {
      let calls = 0
      let charges = 0
      const app = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/charges",
          Effect.sync(() => {
            calls++
            if (calls === 1) return HttpServerResponse.text("busy", { status: 503, headers: { "retry-after": "0" } })
            charges++
            return HttpServerResponse.unsafeJson({ charge: charges }, { status: 201 })
          })
        ),
        HttpRouter.use(IdempotencyHttp.middleware())
      )
      yield* HttpServer.serveEffect()(app)
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      const client = (yield* HttpClient.HttpClient).pipe(IdempotencyHttpClient.retry(policy))
      const response = yield* client.post(`http://127.0.0.1:${address.port}/charges`)
      assert.strictEqual(response.status, 201)
      assert.strictEqual(yield* response.text, `{"charge":1}`)
      assert.strictEqual(calls, 2)
      assert.strictEqual(charges, 1)
    }).pipe(Effect.provide(TestLive), Effect.scoped))
})
