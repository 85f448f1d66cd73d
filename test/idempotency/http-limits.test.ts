/**
 * IdempotencyHttp's bounded buffering, over real HTTP (127.0.0.1, free ports): request bodies over `maxBodyBytes`
 * are refused with 413 before any key is claimed, without being read (a Content-Length over the limit) or as soon as
 * they cross it (chunked); response bodies are read for storing only up to what `maxStoredBytes` can hold, and a
 * larger streamed one is passed through as it streams.
 *
 * The flood tests run the server in its own OS process (`http-limits.worker.ts`) so that its memory (RSS, and the
 * peak `VmHWM`) can be read from `/proc/<pid>/status`; they need Linux.
 */
import { IdempotencyHttp, IdempotencyStore, Metrics } from "@bulwark/resilience"
import { NodeHttpServer } from "@effect/platform-node"
import * as HttpIncomingMessage from "@effect/platform/HttpIncomingMessage"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { readFileSync } from "node:fs"
import { Agent, request as httpRequest } from "node:http"
import { createServer } from "node:http"
import { resolve } from "node:path"
import * as Process from "../support/process.js"

// -----------------------------------------------------------------------------
// A client that can send what fetch will not: a declared length it then exceeds, a chunked body of any size
// -----------------------------------------------------------------------------

interface Answer {
  readonly status: number
  readonly headers: Record<string, string | Array<string> | undefined>
  readonly body: Buffer
  /** From sending the request to the answer's last byte. */
  readonly millis: number
}

/** A fresh connection per request: a refused upload closes its connection. */
const agent = new Agent({ keepAlive: false, maxSockets: Infinity })

/**
 * POSTs `body` with its Content-Length, or (`chunked`) in 64 KiB chunks without one. The server may answer and close
 * before the body is sent; the write errors that follow (EPIPE, ECONNRESET) are expected and ignored, an answer is
 * all that counts. Resolves with status 0 when there is no answer.
 */
const post = (
  port: number,
  path: string,
  body: Uint8Array,
  options: { readonly chunked?: boolean; readonly headers?: Record<string, string> } = {}
): Promise<Answer & { readonly error?: string }> =>
  new Promise((done) => {
    const started = Date.now()
    const request = httpRequest({
      host: "127.0.0.1",
      port,
      path,
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        ...(options.chunked ? {} : { "content-length": String(body.length) }),
        ...options.headers
      }
    }, (response) => {
      const chunks: Array<Buffer> = []
      response.on("data", (chunk: Buffer) => chunks.push(chunk))
      response.on("end", () =>
        done({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: Buffer.concat(chunks),
          millis: Date.now() - started
        }))
      response.on("error", (error) =>
        done({ status: 0, headers: {}, body: Buffer.alloc(0), millis: Date.now() - started, error: error.message }))
    })
    request.on("error", (error: NodeJS.ErrnoException) => {
      // After an answer this is the refused rest of the upload; before one, there is no answer.
      done({ status: 0, headers: {}, body: Buffer.alloc(0), millis: Date.now() - started, error: error.code ?? "" })
    })
    if (!options.chunked) {
      request.end(body)
      return
    }
    let offset = 0
    const write = () => {
      while (offset < body.length) {
        const chunk = body.subarray(offset, offset + 65_536)
        offset += chunk.length
        if (!request.write(chunk)) {
          request.once("drain", write)
          return
        }
      }
      request.end()
    }
    write()
  })

const json = (value: unknown) => new TextEncoder().encode(JSON.stringify(value))
const keyed = (key: string, extra: Record<string, string> = {}) => ({ "idempotency-key": key, ...extra })

const problemOf = (answer: Answer) => {
  assert.strictEqual(answer.headers["content-type"], "application/problem+json")
  return Schema.decodeUnknownSync(Schema.parseJson(Schema.Struct({
    type: Schema.String,
    title: Schema.String,
    status: Schema.Number,
    detail: Schema.String
  })))(answer.body.toString())
}

// -----------------------------------------------------------------------------
// In process: the rules
// -----------------------------------------------------------------------------

const MiB = 1_048_576
const LIMIT = 64 * 1024

const tooLargeCount = (scope: string) =>
  Metric.value(
    Metric.tagged(Metric.tagged(Metrics.idempotencyRequests, "scope", scope), "result", "payload_too_large")
  ).pipe(Effect.map((state) => state.count))

const makeApp = (calls: { count: number }, gate?: Deferred.Deferred<void>) =>
  HttpRouter.empty.pipe(
    HttpRouter.post(
      "/charges",
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const body = yield* request.arrayBuffer
        calls.count++
        return HttpServerResponse.unsafeJson({ bytes: body.byteLength, call: calls.count }, { status: 201 })
      })
    ),
    HttpRouter.post(
      "/export",
      Effect.gen(function*() {
        const { status, kib } = yield* HttpServerRequest.schemaSearchParams(Schema.Struct({
          status: Schema.NumberFromString,
          kib: Schema.NumberFromString
        }))
        calls.count++
        const call = calls.count
        const chunk = (i: number) => new TextEncoder().encode(`${call}:${i}:`.padEnd(1024, "."))
        // The first 16 KiB, then (with a gate) nothing more until the test has seen the answer begin.
        const head = Stream.range(1, Math.min(kib, 16)).pipe(Stream.map(chunk))
        const tail = Stream.range(17, kib).pipe(Stream.map(chunk))
        const body = gate === undefined
          ? Stream.concat(head, tail)
          : Stream.concat(head, Stream.concat(Stream.fromEffect(Deferred.await(gate)).pipe(Stream.drain), tail))
        return HttpServerResponse.stream(body, { status, contentType: "text/plain" })
      })
    )
  )

const serve = (
  calls: { count: number },
  options: IdempotencyHttp.MiddlewareOptions,
  extra: { readonly gate?: Deferred.Deferred<void>; readonly serverMaxBodySize?: number } = {}
) =>
  Effect.gen(function*() {
    const app = makeApp(calls, extra.gate).pipe(HttpRouter.use(IdempotencyHttp.middleware(options)))
    yield* HttpServer.serveEffect()(
      extra.serverMaxBodySize === undefined
        ? app
        : HttpIncomingMessage.withMaxBodySize(app, Option.some(extra.serverMaxBodySize))
    )
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return address.port
  })

const withServer = <A, E>(
  effect: Effect.Effect<A, E, HttpServer.HttpServer | IdempotencyStore.IdempotencyStore | Scope.Scope>
) =>
  effect.pipe(
    Effect.provide(Layer.merge(
      NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }),
      IdempotencyStore.layerMemory
    )),
    Effect.scoped
  )

const global = { partition: IdempotencyHttp.globalPartition }

describe("IdempotencyHttp bounded request bodies (in process)", () => {
  it.live("refuses a Content-Length over maxBodyBytes with a 413 problem, runs nothing, and claims no key", () =>
    withServer(Effect.gen(function*() {
      const calls = { count: 0 }
      const port = yield* serve(calls, { ...global, maxBodyBytes: LIMIT })
      const before = yield* tooLargeCount("POST /charges")
      const refused = yield* Effect.promise(() =>
        post(port, "/charges", new Uint8Array(4 * MiB), { headers: keyed("k") })
      )
      assert.strictEqual(refused.status, 413)
      assert.strictEqual(refused.headers["connection"], "close")
      assert.deepStrictEqual(problemOf(refused), {
        type: "about:blank",
        title: "Content Too Large",
        status: 413,
        detail: `The request body (${4 * MiB} bytes) is over the ${LIMIT}-byte limit of POST /charges.`
      })
      assert.strictEqual(calls.count, 0)
      assert.strictEqual((yield* tooLargeCount("POST /charges")) - before, 1)
      // The key is free: the same key with a body that fits runs.
      const fits = yield* Effect.promise(() => post(port, "/charges", new Uint8Array(LIMIT), { headers: keyed("k") }))
      assert.strictEqual(fits.status, 201)
      assert.strictEqual(fits.body.toString(), `{"bytes":${LIMIT},"call":1}`)
    })))

  it.live("reads a chunked body up to the limit: exactly the limit runs, one byte more is a 413", () =>
    withServer(Effect.gen(function*() {
      const calls = { count: 0 }
      const port = yield* serve(calls, { ...global, maxBodyBytes: LIMIT })
      const send = (bytes: number, key: string, chunked: boolean) =>
        Effect.promise(() => post(port, "/charges", new Uint8Array(bytes), { chunked, headers: keyed(key) }))
      const atLimit = yield* send(LIMIT, "at", true)
      assert.strictEqual(atLimit.status, 201)
      assert.strictEqual(atLimit.body.toString(), `{"bytes":${LIMIT},"call":1}`)
      const over = yield* send(LIMIT + 1, "over", true)
      assert.strictEqual(over.status, 413)
      assert.strictEqual(problemOf(over).detail, `The request body is over the ${LIMIT}-byte limit of POST /charges.`)
      const declaredOver = yield* send(LIMIT + 1, "declared", false)
      assert.strictEqual(declaredOver.status, 413)
      // A large chunked body is refused too, and the server still serves the next request.
      assert.strictEqual((yield* send(8 * MiB, "large", true)).status, 413)
      assert.strictEqual((yield* send(10, "next", true)).status, 201)
      assert.strictEqual(calls.count, 2)
    })))

  it.live("honours the server's MaxBodySize when it is smaller than maxBodyBytes", () =>
    withServer(Effect.gen(function*() {
      const calls = { count: 0 }
      const port = yield* serve(calls, { ...global, maxBodyBytes: LIMIT }, { serverMaxBodySize: 1_000 })
      const over = yield* Effect.promise(() => post(port, "/charges", new Uint8Array(1_001), { headers: keyed("m") }))
      assert.strictEqual(over.status, 413)
      assert.include(problemOf(over).detail, "over the 1000-byte limit")
      const fits = yield* Effect.promise(() => post(port, "/charges", new Uint8Array(1_000), { headers: keyed("m") }))
      assert.strictEqual(fits.status, 201)
    })))
})

describe("IdempotencyHttp.middleware maxBodyBytes validation", () => {
  it.live("treats an invalid maxBodyBytes as a defect: the keyed request fails with a 500 and runs nothing", () =>
    withServer(Effect.gen(function*() {
      const calls = { count: 0 }
      const port = yield* serve(calls, { ...global, maxBodyBytes: 1.5 })
      const answer = yield* Effect.promise(() => post(port, "/charges", json({ amount: 1 }), { headers: keyed("v") }))
      assert.strictEqual(answer.status, 500)
      assert.strictEqual(calls.count, 0)
    })))
})

describe("IdempotencyHttp bounded response capture (in process)", () => {
  it.live("passes a streamed answer over maxStoredBytes through as it streams, and repeats answer 500", () => {
    const warnings: Array<string> = []
    const debugs: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      const text = Array.isArray(message) ? message.join(" ") : String(message)
      if (!text.includes("over maxStoredBytes")) return
      if (logLevel._tag === "Warning") warnings.push(text)
      if (logLevel._tag === "Debug") debugs.push(text)
    })
    return withServer(Effect.gen(function*() {
      const calls = { count: 0 }
      const gate = yield* Deferred.make<void>()
      // maxStoredBytes 8 KiB: a 6 KiB budget for the body; the route sends 16 KiB, then waits for the gate.
      const port = yield* serve(calls, { ...global, maxStoredBytes: 8 * 1024 }, { gate })
      const started = Date.now()
      const first = yield* Effect.async<{ readonly status: number; readonly body: string }>((resume) => {
        const request = httpRequest({
          host: "127.0.0.1",
          port,
          path: "/export?status=200&kib=256",
          method: "POST",
          agent,
          headers: keyed("big")
        }, (response) => {
          // The answer began before the stream ended: nothing waited for the whole body.
          Deferred.unsafeDone(gate, Effect.void)
          const chunks: Array<Buffer> = []
          response.on("data", (chunk: Buffer) => chunks.push(chunk))
          response.on(
            "end",
            () => resume(Effect.succeed({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }))
          )
        })
        request.end()
      }).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.body.length, 256 * 1024)
      assert.isTrue(first.body.startsWith("1:1:"))
      assert.include(first.body, "1:256:")
      assert.isBelow(Date.now() - started, 10_000)
      const repeat = yield* Effect.promise(() =>
        post(port, "/export?status=200&kib=256", new Uint8Array(0), { headers: keyed("big") })
      )
      assert.strictEqual(repeat.status, 500)
      assert.include(problemOf(repeat).detail, "too large to store")
      assert.strictEqual(calls.count, 1)
      // Another key on the route: logged again, at debug (a route that streams large answers would flood the log).
      const other = yield* Effect.promise(() =>
        post(port, "/export?status=200&kib=64", new Uint8Array(0), { headers: keyed("o") })
      )
      assert.strictEqual(other.body.length, 64 * 1024)
      assert.strictEqual(warnings.length, 1)
      assert.include(warnings[0], "a streamed answer over 8192 bytes is over maxStoredBytes")
      assert.strictEqual(debugs.length, 1)
      // A small streamed answer is still stored and replayed byte for byte.
      const small = yield* Effect.promise(() =>
        post(port, "/export?status=200&kib=4", new Uint8Array(0), { headers: keyed("s") })
      )
      const smallAgain = yield* Effect.promise(() =>
        post(port, "/export?status=200&kib=4", new Uint8Array(0), { headers: keyed("s") })
      )
      assert.strictEqual(smallAgain.headers["idempotent-replayed"], "true")
      assert.deepStrictEqual(smallAgain.body, small.body)
      assert.strictEqual(calls.count, 3)
    })).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)), Logger.withMinimumLogLevel(LogLevel.All))
  })

  it.live("releases the key when an oversized streamed answer is a 503, so the retry runs again", () =>
    withServer(Effect.gen(function*() {
      const calls = { count: 0 }
      const port = yield* serve(calls, { ...global, maxStoredBytes: 8 * 1024 })
      const send = () =>
        Effect.promise(() => post(port, "/export?status=503&kib=64", new Uint8Array(0), { headers: keyed("u") }))
      const first = yield* send()
      const retry = yield* send()
      assert.deepStrictEqual([first.status, retry.status], [503, 503])
      assert.strictEqual(first.body.length, 64 * 1024)
      assert.isTrue(retry.body.toString().startsWith("2:1:"))
      assert.strictEqual(calls.count, 2)
    })))
})

// -----------------------------------------------------------------------------
// A server process, flooded
// -----------------------------------------------------------------------------

const worker = resolve(Process.root, "test/idempotency/http-limits.worker.ts")

/** This process' resident memory now and at its peak (`VmHWM`), in MiB. */
const memoryOf = (pid: number) => {
  const status = readFileSync(`/proc/${pid}/status`, "utf8")
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? NaN) / 1024
  return { rss: field("VmRSS"), peak: field("VmHWM") }
}

const Stats = Schema.parseJson(Schema.Struct({ executions: Schema.Number, bytesRead: Schema.Number }))

const stats = (port: number) =>
  Effect.promise(() =>
    fetch(`http://127.0.0.1:${port}/stats`).then((response) => response.text()).then(Schema.decodeUnknownSync(Stats))
  )

const startWorker = Effect.gen(function*() {
  const child = yield* Process.scopedTs(worker, [
    JSON.stringify({ maxBodyBytes: 512 * 1024, maxStoredBytes: 64 * 1024 })
  ])
  const port = yield* Effect.promise(() => child.waitFor(/ready (\d+)\n/).then((match) => Number(match[1])))
  const pid = child.process.pid
  if (pid === undefined) return yield* Effect.dieMessage("the worker has no pid")
  // Warm up (module loading, JIT), so that the baseline is the serving process'.
  for (let i = 0; i < 20; i++) {
    const warm = yield* Effect.promise(() => post(port, "/charges", json({ amount: i }), { headers: keyed(`w${i}`) }))
    assert.strictEqual(warm.status, 201)
  }
  return { child, port, pid }
})

describe("IdempotencyHttp under an upload flood (a server process)", () => {
  it.scoped(
    "refuses a 64 MiB body at once, declared or chunked, holding none of it",
    () =>
      Effect.gen(function*() {
        const { pid, port } = yield* startWorker
        const big = new Uint8Array(64 * MiB)
        for (const chunked of [false, true]) {
          const baseline = memoryOf(pid)
          const answer = yield* Effect.promise(() => post(port, "/charges", big, { chunked, headers: keyed("big") }))
          assert.strictEqual(answer.status, 413, `chunked: ${chunked}`)
          // The refused rest is read into nothing (a lingering close), never held: 64 MiB were sent.
          const growth = memoryOf(pid).peak - baseline.rss
          assert.isBelow(growth, 32, `chunked: ${chunked}, peak growth ${growth} MiB`)
        }
        assert.strictEqual((yield* stats(port)).executions, 20)
      }),
    60_000
  )

  it.scoped(
    "answers 1,000 concurrent 1 MiB uploads over a 512 KiB limit with 413s, its memory bounded, then serves the next",
    () =>
      Effect.gen(function*() {
        const { pid, port } = yield* startWorker
        const baseline = memoryOf(pid)
        const body = new Uint8Array(MiB)
        const answers = yield* Effect.promise(() =>
          Promise.all(
            Array.from(
              { length: 1_000 },
              (_, i) => post(port, "/charges", body, { chunked: i % 2 === 1, headers: keyed(`flood-${i}`) })
            )
          )
        )
        const after = memoryOf(pid)
        const statuses = new Map<number, number>()
        for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
        assert.deepStrictEqual([...statuses], [[413, 1_000]])
        const slowest = Math.max(...answers.map((answer) => answer.millis))
        const growth = after.peak - baseline.rss
        console.log(
          `1,000 × 1 MiB over a 512 KiB limit: slowest answer ${slowest} ms; server RSS ${
            baseline.rss.toFixed(0)
          } MiB` +
            ` → peak ${after.peak.toFixed(0)} MiB (+${growth.toFixed(0)} MiB)`
        )
        // Before the limit, the issue saw 153 of 201 requests unanswered after 30 s: here every one is answered.
        assert.isBelow(slowest, 30_000)
        // At most 500 chunked bodies × 512 KiB are held below the limit at once (250 MiB); measured: +80 to +140 MiB on 2 busy cores.
        assert.isBelow(growth, 300, `peak growth ${growth} MiB`)
        const next = yield* Effect.promise(() =>
          post(port, "/charges", json({ amount: 7 }), { headers: keyed("next") })
        )
        assert.strictEqual(next.status, 201)
        assert.strictEqual((yield* stats(port)).executions, 21)
      }),
    120_000
  )

  it.scoped(
    "streams a 64 MiB answer through without holding it, and answers its repeat with a 500",
    () =>
      Effect.gen(function*() {
        const { child, pid, port } = yield* startWorker
        const baseline = memoryOf(pid)
        const first = yield* Effect.promise(() =>
          post(port, "/export?mib=64", new Uint8Array(0), { headers: keyed("e") })
        )
        assert.strictEqual(first.status, 200)
        assert.strictEqual(first.body.length, 64 * MiB)
        const growth = memoryOf(pid).peak - baseline.rss
        assert.isBelow(growth, 32, `peak growth ${growth} MiB`)
        const repeat = yield* Effect.promise(() =>
          post(port, "/export?mib=64", new Uint8Array(0), { headers: keyed("e") })
        )
        assert.strictEqual(repeat.status, 500)
        assert.strictEqual((yield* stats(port)).executions, 21)
        assert.strictEqual(
          child.output().match(/a streamed answer over 65536 bytes is over maxStoredBytes/g)?.length,
          1
        )
      }),
    60_000
  )
})
