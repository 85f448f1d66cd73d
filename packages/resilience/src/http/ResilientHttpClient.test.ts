/**
 * The resilient client over real HTTP: a NodeHttpServer on 127.0.0.1:0 with
 * scripted routes (a status sequence per path; "hang" never answers), called
 * through the platform's fetch client. Waits the client makes (Retry-After,
 * backoff, timeouts) run on the TestClock where a test needs exact times; the
 * network itself is real, so those tests wait for the server's side with
 * short real polls.
 */
import { NodeHttpServer } from "@effect/platform-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as MetricState from "effect/MetricState"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import { createServer } from "node:http"
import * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../Failure.js"
import * as IdempotencyHttp from "../idempotency/IdempotencyHttp.js"
import * as IdempotencyStore from "../idempotency/IdempotencyStore.js"
import * as Metrics from "../Metrics.js"
import * as Tracing from "../observability/Tracing.js"
import * as Retry from "../retry/Retry.js"
import * as ResilientHttpClient from "./ResilientHttpClient.js"

// -----------------------------------------------------------------------------
// A scripted server
// -----------------------------------------------------------------------------

interface Seen {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly key: string | undefined
  readonly traceparent: string | undefined
}

type Reply = { readonly status: number; readonly headers?: Record<string, string>; readonly body?: string } | "hang"

const scriptedServer = (routes: Readonly<Record<string, ReadonlyArray<Reply>>>) =>
  Effect.gen(function*() {
    const seen = yield* Ref.make<ReadonlyArray<Seen>>([])
    const arrivals = yield* Queue.unbounded<Seen>()
    const served = new Map<string, number>()
    const app = Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const url = new URL(request.url, "http://server")
      const entry: Seen = {
        method: request.method,
        path: url.pathname,
        query: url.search,
        key: request.headers["idempotency-key"],
        traceparent: request.headers["traceparent"]
      }
      yield* Ref.update(seen, (list) => [...list, entry])
      yield* Queue.offer(arrivals, entry)
      const script = routes[url.pathname] ?? [{ status: 404, body: "no such route" }]
      const n = served.get(url.pathname) ?? 0
      served.set(url.pathname, n + 1)
      const reply = script[Math.min(n, script.length - 1)] ?? { status: 500 }
      if (reply === "hang") return yield* Effect.never
      return HttpServerResponse.text(reply.body ?? `answer ${n + 1}`, {
        status: reply.status,
        ...(reply.headers === undefined ? {} : { headers: reply.headers })
      })
    })
    yield* HttpServer.serveEffect()(app)
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    const host = `127.0.0.1:${address.port}`
    return {
      host,
      url: (path: string) => `http://${host}${path}`,
      seen: Ref.get(seen),
      count: (path: string) => Effect.map(Ref.get(seen), (list) => list.filter((s) => s.path === path).length),
      /** The next request to reach the server (real IO: waits for it). */
      next: Queue.take(arrivals)
    }
  })

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })
const TestLive = Layer.merge(ServerLive, FetchHttpClient.layer)

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

/** A short real wait: the server and the network run on real time whatever the test's clock. */
const realWait = (millis: number) => Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, millis)))

/** Polls (in real time, up to 5 s) until the TestClock holds a sleep ending at `at`. */
const awaitSleepUntil = (at: number) =>
  Effect.gen(function*() {
    for (let i = 0; i < 1000; i++) {
      const sleeps = yield* TestClock.sleeps()
      if (Chunk.some(sleeps, (wake) => wake === at)) return
      yield* realWait(5)
    }
    const sleeps = yield* TestClock.sleeps()
    return yield* Effect.dieMessage(`no sleep until ${at}ms; pending: ${Chunk.join(Chunk.map(sleeps, String), ", ")}`)
  })

/** The value of a metric series, matched by name and labels in any order. */
const metricValue = (name: string, labels: Readonly<Record<string, string>>) =>
  Effect.sync(() => {
    const pair = Metric.unsafeSnapshot().find((candidate) =>
      candidate.metricKey.name === name &&
      candidate.metricKey.tags.length === Object.keys(labels).length &&
      candidate.metricKey.tags.every((tag) => labels[tag.key] === tag.value)
    )
    if (pair === undefined) return { count: 0, sum: 0 }
    const state = pair.metricState
    if (MetricState.isCounterState(state)) return { count: Number(state.count), sum: 0 }
    if (MetricState.isHistogramState(state)) return { count: state.count, sum: state.sum }
    return { count: Number.NaN, sum: Number.NaN }
  })

const requests = (host: string, method: string, status: string) =>
  Effect.map(metricValue("http_client_requests_total", { method, host, status }), (value) => value.count)

interface Line {
  readonly level: string
  readonly text: string
  readonly annotations: Readonly<Record<string, unknown>>
}

const captureLogs = Effect.gen(function*() {
  const lines = yield* Ref.make<ReadonlyArray<Line>>([])
  const logger = Logger.make(({ annotations, logLevel, message }) => {
    const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
    const record: Record<string, unknown> = {}
    for (const [key, value] of annotations) record[key] = value
    Effect.runSync(Ref.update(lines, (all) => [...all, { level: logLevel.label, text, annotations: record }]))
  })
  return { layer: Logger.replace(Logger.defaultLogger, logger), lines: Ref.get(lines) }
})

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

const fast = { backoff: Retry.constant("10 millis"), jitter: "none", maxAttempts: 3 } as const

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

describe("ResilientHttpClient", () => {
  it.effect("retries a 503 after exactly its Retry-After, returns the 200, and logs the call without its query", () =>
    Effect.gen(function*() {
      const logs = yield* captureLogs
      const server = yield* scriptedServer({
        "/flaky": [{ status: 503, headers: { "retry-after": "2" } }, { status: 200, body: "done" }]
      })
      const client = yield* ResilientHttpClient.make({
        retry: { backoff: Retry.constant("100 millis"), jitter: "none", maxAttempts: 3 }
      })
      const fiber = yield* Effect.fork(
        client.get(server.url("/flaky?token=s3cret&user=42")).pipe(
          Effect.flatMap((response) => Effect.map(response.text, (body) => ({ status: response.status, body }))),
          Effect.provide(logs.layer)
        )
      )
      const first = yield* server.next
      assert.strictEqual(first.query, "?token=s3cret&user=42")
      // the client waits the server's 2 s, not its own 100 ms backoff
      yield* awaitSleepUntil(2000)
      yield* TestClock.adjust("1999 millis")
      yield* realWait(50)
      assert.strictEqual(yield* server.count("/flaky"), 1)
      yield* TestClock.adjust("1 millis")
      yield* server.next
      assert.deepStrictEqual(yield* Fiber.join(fiber), { status: 200, body: "done" })

      // one series per attempt outcome; two durations (real IO takes no TestClock time)
      assert.strictEqual(yield* requests(server.host, "GET", "503"), 1)
      assert.strictEqual(yield* requests(server.host, "GET", "200"), 1)
      const duration = yield* metricValue("http_client_request_duration_seconds", { method: "GET", host: server.host })
      assert.strictEqual(duration.count, 2)

      const lines = yield* logs.lines
      const call = lines.filter((line) => line.annotations["http.client"] === "http")
      assert.deepStrictEqual(call.map((line) => [line.level, line.text]), [
        ["INFO", `GET http://${server.host}/flaky 200 2000ms`]
      ])
      assert.deepStrictEqual(call[0]?.annotations, {
        "http.client": "http",
        "http.method": "GET",
        "http.url": `http://${server.host}/flaky`,
        "http.host": server.host,
        "http.status": "200",
        "http.duration_ms": 2000,
        "http.attempts": 2
      })
      // the retry's own warning is there too, and nothing anywhere shows the query string
      assert.isTrue(lines.some((line) => line.level === "WARN" && line.text.includes("Retrying")))
      for (const line of lines) {
        const everything = `${line.text} ${JSON.stringify(line.annotations)}`
        assert.notInclude(everything, "s3cret")
        assert.notInclude(everything, "token=")
      }
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("answers a 404 with TerminalError at once, its body readable, and never retries it", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/missing": [{ status: 404, body: "no such order" }] })
      const client = yield* ResilientHttpClient.make({ retry: fast })
      const error = yield* Effect.flip(client.get(server.url("/missing")))
      assert.strictEqual(error._tag, "TerminalError")
      if (error._tag !== "TerminalError") return
      assert.strictEqual(error.status, 404)
      assert.isTrue(Failure.isTerminal(error))
      const cause = error.cause
      assert.isTrue(cause !== undefined && "status" in cause && cause.status === 404)
      if (cause === undefined || !("text" in cause)) return
      assert.strictEqual(yield* cause.text, "no such order")
      assert.strictEqual(yield* server.count("/missing"), 1)
      assert.strictEqual(yield* requests(server.host, "GET", "404"), 1)
      // a 4xx says nothing about the host's health: the breaker ignored it
      const breaker = yield* client.breaker(server.host)
      assert.isTrue(Option.isSome(breaker))
      if (Option.isSome(breaker)) assert.strictEqual(yield* breaker.value.state, "Closed")
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("opens a host's breaker after its failures, stops retrying at it, and rejects fast; other hosts go on", () =>
    Effect.gen(function*() {
      const down = yield* scriptedServer({ "/pay": [{ status: 500 }] })
      // a second server, alive until the test's scope closes
      const up = yield* Effect.provide(scriptedServer({ "/pay": [{ status: 200 }] }), yield* Layer.build(ServerLive))
      const client = yield* ResilientHttpClient.make({
        breaker: { trip: CircuitBreaker.consecutiveFailures(2), openDuration: "1 minute" },
        retry: { ...fast, maxAttempts: 4 }
      })
      // attempts 1 and 2 fail and open the breaker; attempt 3 is refused, and the refusal is not retried
      const error = yield* Effect.flip(client.get(down.url("/pay")))
      assert.strictEqual(error._tag, "CircuitOpenError")
      if (error._tag !== "CircuitOpenError") return
      assert.strictEqual(error.breaker, `http/${down.host}`)
      assert.strictEqual(yield* down.count("/pay"), 2)
      // the next call is refused without a request
      const again = yield* Effect.flip(client.get(down.url("/pay")))
      assert.strictEqual(again._tag, "CircuitOpenError")
      assert.strictEqual(yield* down.count("/pay"), 2)
      assert.strictEqual(yield* requests(down.host, "GET", "500"), 2)
      assert.strictEqual(yield* requests(down.host, "GET", "circuit_open"), 2)
      // the other host has its own breaker, closed
      assert.strictEqual((yield* client.get(up.url("/pay"))).status, 200)
      const hosts = yield* client.hosts
      assert.deepStrictEqual(
        hosts.map((status) => [status.host, Option.getOrUndefined(status.breaker)]),
        [[down.host, "Open"], [up.host, "Closed"]]
      )
      assert.deepStrictEqual(
        hosts.map((status) => Option.map(status.bulkhead, (snapshot) => [snapshot.name, snapshot.active])),
        [Option.some([`http/${down.host}`, 0]), Option.some([`http/${up.host}`, 0])]
      )
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.effect("cuts a hung attempt at the attempt timeout and retries it; counts it as a timeout", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/slow": ["hang", { status: 200 }] })
      const client = yield* ResilientHttpClient.make({
        attemptTimeout: "1 second",
        retry: { backoff: Retry.constant("100 millis"), jitter: "none", maxAttempts: 3 }
      })
      const fiber = yield* Effect.fork(client.get(server.url("/slow")))
      yield* server.next
      yield* awaitSleepUntil(1000)
      yield* TestClock.adjust("1 second")
      yield* awaitSleepUntil(1100)
      yield* TestClock.adjust("100 millis")
      yield* server.next
      assert.strictEqual((yield* Fiber.join(fiber)).status, 200)
      assert.strictEqual(yield* requests(server.host, "GET", "timeout"), 1)
      assert.strictEqual(yield* requests(server.host, "GET", "200"), 1)
      const duration = yield* metricValue("http_client_request_duration_seconds", { method: "GET", host: server.host })
      assert.deepStrictEqual(duration, { count: 2, sum: 1 })
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.effect("gives up with RetriesExhausted carrying the TimeoutError when every attempt hangs", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/hang": ["hang"] })
      const client = yield* ResilientHttpClient.make({
        attemptTimeout: "1 second",
        retry: { backoff: Retry.constant("100 millis"), jitter: "none", maxAttempts: 2 }
      })
      const fiber = yield* Effect.fork(Effect.flip(client.get(server.url("/hang"))))
      yield* server.next
      yield* awaitSleepUntil(1000)
      yield* TestClock.adjust("1 second")
      yield* awaitSleepUntil(1100)
      yield* TestClock.adjust("100 millis")
      yield* server.next
      yield* awaitSleepUntil(2100)
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag !== "RetriesExhausted") return
      assert.strictEqual(error.attempts, 2)
      assert.strictEqual(error.lastFailure._tag, "TimeoutError")
      assert.strictEqual(error.policy, "http")
      assert.strictEqual(yield* requests(server.host, "GET", "timeout"), 2)
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.effect("fails with TimeoutError when the whole call outlasts the overall timeout", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/hang": ["hang"] })
      const client = yield* ResilientHttpClient.make({ attemptTimeout: false, timeout: "1500 millis" })
      const fiber = yield* Effect.fork(Effect.flip(client.get(server.url("/hang"))))
      yield* server.next
      yield* awaitSleepUntil(1500)
      yield* TestClock.adjust("1500 millis")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "TimeoutError")
      if (error._tag === "TimeoutError") assert.strictEqual(error.operation, "http.call")
      // the interrupted attempt is counted as cancelled, with its duration
      assert.strictEqual(yield* requests(server.host, "GET", "cancelled"), 1)
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("sends one Idempotency-Key per POST or PATCH, the same on every attempt, and none on GET", () =>
    Effect.gen(function*() {
      const busy = { status: 503, headers: { "retry-after": "0" } }
      const server = yield* scriptedServer({
        "/charges": [busy, { status: 201 }],
        "/orders/1": [busy, { status: 200 }],
        "/items": [busy, { status: 200 }]
      })
      const client = yield* ResilientHttpClient.make({ retry: fast })
      assert.strictEqual((yield* client.post(server.url("/charges"), { body: HttpBody.text("{}") })).status, 201)
      assert.strictEqual((yield* client.patch(server.url("/orders/1"))).status, 200)
      assert.strictEqual((yield* client.get(server.url("/items"))).status, 200)
      const seen = yield* server.seen
      const keysOf = (path: string) => seen.filter((s) => s.path === path).map((s) => s.key)
      const [charge] = keysOf("/charges")
      assert.match(charge ?? "", UUID)
      assert.deepStrictEqual(keysOf("/charges"), [charge, charge])
      const [patch] = keysOf("/orders/1")
      assert.match(patch ?? "", UUID)
      assert.deepStrictEqual(keysOf("/orders/1"), [patch, patch])
      assert.notStrictEqual(patch, charge)
      assert.deepStrictEqual(keysOf("/items"), [undefined, undefined])
      // a caller's own key is kept
      yield* client.post(server.url("/charges"), { headers: { "Idempotency-Key": "caller-key-1" } })
      assert.strictEqual((yield* server.seen).at(-1)?.key, "caller-key-1")
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("never repeats a POST without a key: with keys off, a 503 is one attempt", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/charges": [{ status: 503 }, { status: 201 }] })
      const client = yield* ResilientHttpClient.make({ retry: fast, idempotency: false })
      const error = yield* Effect.flip(client.post(server.url("/charges")))
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag === "RetriesExhausted") assert.strictEqual(error.attempts, 1)
      assert.deepStrictEqual((yield* server.seen).map((s) => s.key), [undefined])
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("labels a refused connection connection_error and retries it; bounds hosts by list or by maxHosts", () =>
    Effect.gen(function*() {
      // port 9 (discard) is closed on loopback here: every attempt is refused
      const bounded = yield* ResilientHttpClient.make({ retry: { ...fast, maxAttempts: 2 }, maxHosts: 1 })
      const refused = yield* Effect.flip(bounded.get("http://127.0.0.1:9/x"))
      assert.strictEqual(refused._tag, "RetriesExhausted")
      if (refused._tag === "RetriesExhausted") {
        assert.strictEqual(refused.attempts, 2)
        const last = refused.lastFailure
        assert.isTrue(last._tag === "TransientError" && last.message.includes("got no answer"))
      }
      assert.strictEqual(yield* requests("127.0.0.1:9", "GET", "connection_error"), 2)
      const second = yield* Effect.flip(bounded.get("http://127.0.0.1:10/x"))
      assert.strictEqual(second._tag, "HostNotAllowedError")
      if (second._tag === "HostNotAllowedError") assert.strictEqual(second.reason, "TooManyHosts")

      const listed = yield* ResilientHttpClient.make({ hosts: { "payments.internal": {} } })
      const unlisted = yield* Effect.flip(listed.get("http://attacker.example/steal?x=1"))
      assert.strictEqual(unlisted._tag, "HostNotAllowedError")
      if (unlisted._tag === "HostNotAllowedError") {
        assert.strictEqual(unlisted.reason, "NotListed")
        assert.isTrue(Failure.isTerminal(unlisted))
      }
      assert.deepStrictEqual(yield* listed.hosts, [])
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.effect("rejects bad options with InvalidOptionsError naming the option", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [ResilientHttpClient.ResilientHttpClient.Options, string]> = [
        [{ name: "" }, "name"],
        [{ maxHosts: 0 }, "maxHosts"],
        [{ attemptTimeout: "-1 seconds" }, "attemptTimeout"],
        [{ timeout: 0 }, "timeout"],
        [{ bulkhead: { maxConcurrent: 0 } }, "bulkhead.maxConcurrent"],
        [{ hosts: { "Bad Host": {} } }, "hosts"],
        [{ hosts: { "a.example": { bulkhead: { maxQueued: -1 } } } }, "hosts.a.example.bulkhead.maxQueued"],
        [{ breaker: false, hosts: { "a.example": { breaker: {} } } }, "hosts.a.example.breaker"],
        [{ retry: { maxAttempts: 0 } }, "maxAttempts"],
        [{ breaker: { openDuration: "-5 seconds" } }, "openDuration"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(ResilientHttpClient.make(options))
        assert.strictEqual(error._tag, "InvalidOptionsError", option)
        assert.strictEqual(error.option, option)
      }
    }).pipe(Effect.provide(FetchHttpClient.layer)))

  it.live("traces a span per call and per attempt, with attempt, delay, breaker state and key attributes", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const server = yield* scriptedServer({
        "/charges": [{ status: 503, headers: { "retry-after": "0" } }, { status: 201 }],
        "/down": [{ status: 500 }]
      })
      const client = yield* ResilientHttpClient.make({
        name: "payments-api",
        retry: { backoff: Retry.constant("30 millis"), jitter: "none", maxAttempts: 3 },
        breaker: { trip: CircuitBreaker.consecutiveFailures(2), openDuration: "1 minute" }
      })
      yield* client.post(server.url("/charges"))
      yield* Effect.flip(client.get(server.url("/down")))

      const spans = exporter.getFinishedSpans()
      const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]))
      const parentOf = (span: ReadableSpan) => byId.get(span.parentSpanContext?.spanId ?? "")
      const attr = (span: ReadableSpan | undefined, key: string) => span?.attributes[key]

      const call = spans.find((span) => span.name === "bulwark.http_client POST")
      assert.isDefined(call)
      assert.strictEqual(attr(call, "bulwark.http.client"), "payments-api")
      assert.strictEqual(attr(call, "bulwark.http.host"), server.host)
      assert.strictEqual(attr(call, "bulwark.retry.attempts"), 2)
      assert.strictEqual(attr(call, "bulwark.http.outcome"), "201")
      assert.strictEqual(attr(call, "http.response.status_code"), 201)
      assert.strictEqual(attr(call, "bulwark.idempotency.keyed"), true)
      assert.strictEqual(attr(call, "url.path"), "/charges")

      const attempts = spans.filter((span) => span.name === "bulwark.http_client.attempt" && parentOf(span) === call)
      assert.deepStrictEqual(attempts.map((span) => attr(span, "bulwark.retry.attempt")), [1, 2])
      const [first, second] = attempts
      assert.strictEqual(attr(first, "bulwark.circuit_breaker.state"), "closed")
      assert.strictEqual(attr(first, "bulwark.circuit_breaker.name"), `payments-api/${server.host}`)
      assert.strictEqual(attr(first, "bulwark.bulkhead.name"), `payments-api/${server.host}`)
      assert.strictEqual(attr(first, "bulwark.http.outcome"), "503")
      assert.strictEqual(attr(first, "bulwark.retry.retry_after_ms"), 0)
      assert.isUndefined(attr(first, "bulwark.retry.delay_ms"))
      assert.strictEqual(attr(second, "bulwark.http.outcome"), "201")
      assert.strictEqual(attr(second, "bulwark.idempotency.keyed"), true)
      assert.strictEqual(attr(second, "bulwark.idempotency.replayed"), false)
      const delay = attr(second, "bulwark.retry.delay_ms")
      assert.isTrue(typeof delay === "number" && delay >= 30, `delay ${String(delay)}`)

      // the platform's own client span sits under each attempt, and its trace reaches the server
      const wire = spans.filter((span) => span.name === "http.client POST")
      assert.deepStrictEqual(wire.map((span) => parentOf(span)), [first, second])
      const traceId = call?.spanContext().traceId ?? ""
      const charges = (yield* server.seen).filter((s) => s.path === "/charges")
      assert.isTrue(charges.every((s) => s.traceparent?.includes(traceId) === true))

      // a refused attempt: the breaker (opened by the second 500) was open when the third attempt came
      const refusedCall = spans.find((span) => span.name === "bulwark.http_client GET")
      const refused = spans.filter((span) =>
        span.name === "bulwark.http_client.attempt" && parentOf(span) === refusedCall
      )
      assert.deepStrictEqual(
        refused.map((span) => [attr(span, "bulwark.circuit_breaker.state"), attr(span, "bulwark.http.outcome")]),
        [["closed", "500"], ["closed", "500"], ["open", "circuit_open"]]
      )
      assert.strictEqual(attr(refusedCall, "error.type"), "CircuitOpenError")
      assert.strictEqual(call?.resource.attributes["service.name"], "http-client-test")
    }).pipe(
      Effect.provide(
        Layer.merge(TestLive, Tracing.layer({ serviceName: "http-client-test", exporter, processor: "simple" }))
      ),
      Effect.scoped
    )
  })

  it.live("retries a keyed POST through a 409 in flight and gets the first answer replayed: the handler runs once", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const release = yield* Deferred.make<void>()
      const app = HttpRouter.empty.pipe(
        HttpRouter.post(
          "/charges",
          Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(runs, (x) => x + 1)
            yield* Deferred.await(release)
            return yield* HttpServerResponse.json({ charge: n }, { status: 201 })
          })
        ),
        HttpRouter.use(IdempotencyHttp.middleware())
      )
      yield* HttpServer.serveEffect()(app)
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      const url = `http://127.0.0.1:${address.port}/charges`
      const client = yield* ResilientHttpClient.make({
        retry: { backoff: Retry.constant("20 millis"), jitter: "none", maxAttempts: 50 }
      })
      // the same key twice: a caller that lost the first answer and asks again
      const charge = client.post(url, { headers: { "Idempotency-Key": "order-7" }, body: HttpBody.text("{}") }).pipe(
        Effect.flatMap((response) =>
          Effect.map(
            response.json,
            (body) => ({ status: response.status, replayed: response.headers["idempotent-replayed"], body })
          )
        )
      )
      const first = yield* Effect.fork(charge)
      yield* Effect.repeat(Ref.get(runs), { until: (n) => n === 1, schedule: Schedule.spaced("10 millis") })
      const second = yield* Effect.fork(charge)
      const conflicts = Metric.value(
        Metric.tagged(
          Metric.tagged(Metrics.idempotencyRequests, "scope", "POST /charges"),
          "result",
          "in_flight_conflict"
        )
      )
      yield* Effect.repeat(conflicts, { until: (state) => state.count >= 1, schedule: Schedule.spaced("10 millis") })
      yield* Deferred.succeed(release, undefined)
      assert.deepStrictEqual(yield* Fiber.join(first), { status: 201, replayed: undefined, body: { charge: 1 } })
      assert.deepStrictEqual(yield* Fiber.join(second), { status: 201, replayed: "true", body: { charge: 1 } })
      assert.strictEqual(yield* Ref.get(runs), 1)

      const spans = exporter.getFinishedSpans()
      const calls = spans.filter((span) => span.name === "bulwark.http_client POST")
      const secondCall = calls.find((span) => span.attributes["bulwark.retry.attempts"] !== 1)
      const attempts = spans.filter((span) =>
        span.name === "bulwark.http_client.attempt" &&
        span.parentSpanContext?.spanId === secondCall?.spanContext().spanId
      )
      const outcomes = attempts.map((span) => span.attributes["bulwark.http.outcome"])
      assert.isAtLeast(outcomes.length, 2)
      assert.deepStrictEqual(new Set(outcomes.slice(0, -1)), new Set(["409"]))
      assert.strictEqual(outcomes.at(-1), "201")
      assert.strictEqual(attempts.at(-1)?.attributes["bulwark.idempotency.replayed"], true)
      assert.strictEqual(attempts.at(-2)?.attributes["bulwark.idempotency.replayed"], false)
    }).pipe(
      Effect.provide(Layer.mergeAll(
        TestLive,
        IdempotencyStore.layerMemory,
        Tracing.layer({ serviceName: "http-client-test", exporter, processor: "simple" })
      )),
      Effect.scoped
    )
  })

  it.live("refuses a request at once when the host's bulkhead is full, without retrying the refusal", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/report": ["hang"], "/other": [{ status: 200 }] })
      const client = yield* ResilientHttpClient.make({ retry: fast, bulkhead: { maxConcurrent: 1, maxQueued: 0 } })
      const holder = yield* Effect.fork(client.get(server.url("/report")))
      yield* server.next
      const error = yield* Effect.flip(client.get(server.url("/other")))
      assert.strictEqual(error._tag, "BulkheadFullError")
      assert.strictEqual(yield* server.count("/other"), 0)
      assert.strictEqual(yield* requests(server.host, "GET", "bulkhead_full"), 1)
      const [status] = yield* client.hosts
      assert.deepStrictEqual(
        Option.map(status?.bulkhead ?? Option.none(), (snapshot) => snapshot.active),
        Option.some(1)
      )
      // a full bulkhead is no failure of the host: its breaker stays closed
      assert.deepStrictEqual(status?.breaker, Option.some("Closed"))
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* requests(server.host, "GET", "cancelled"), 1)
      assert.strictEqual((yield* client.get(server.url("/other"))).status, 200)
    }).pipe(Effect.provide(TestLive), Effect.scoped))

  it.live("is a service of its own: HttpClient combinators on its client keep the defences, and the admin functions", () =>
    Effect.gen(function*() {
      const server = yield* scriptedServer({ "/items/42": [{ status: 503 }, { status: 200, body: "widget" }] })
      const resilient = yield* ResilientHttpClient.ResilientHttpClient
      const inventory = resilient.client.pipe(
        HttpClient.mapRequest(HttpClientRequest.prependUrl(server.url(""))),
        HttpClient.filterStatusOk
      )
      const response = yield* inventory.get("/items/42")
      assert.strictEqual(yield* response.text, "widget")
      // the 503 was retried by the client underneath the combinators
      assert.strictEqual(yield* server.count("/items/42"), 2)
      // the admin functions answer for the host the mapped client called
      const hosts = yield* resilient.hosts
      assert.deepStrictEqual(hosts.map((status) => status.host), [server.host])
      assert.isTrue(Option.isSome(yield* resilient.breaker(server.host)))
      assert.strictEqual(resilient.name, "catalog")
    }).pipe(
      Effect.provide(ResilientHttpClient.layer({ name: "catalog", retry: fast })),
      Effect.provide(TestLive),
      Effect.scoped
    ))
})
