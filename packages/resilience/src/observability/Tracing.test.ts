import { NodeHttpServer } from "@effect/platform-node"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Queue from "effect/Queue"
import { createServer } from "node:http"
import * as Tracing from "./Tracing.js"

/** A collector stand-in: a real HTTP server that keeps every OTLP/HTTP JSON body posted to /v1/traces. */
const otlpReceiver = Effect.gen(function*() {
  const bodies = yield* Queue.unbounded<{ readonly path: string; readonly body: unknown }>()
  yield* HttpServer.serveEffect()(
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const body = yield* request.json
      yield* Queue.offer(bodies, { path: new URL(request.url, "http://x").pathname, body })
      return HttpServerResponse.empty({ status: 200 })
    }).pipe(Effect.orDie)
  )
  const address = (yield* HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  return { base: `http://127.0.0.1:${address.port}`, next: Queue.take(bodies) }
})

/** The receiver's server lives as long as the test's scope (a provided layer would close it when `provide` ends). */
const startReceiver = Effect.flatMap(
  Layer.build(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })),
  (server) => Effect.provide(otlpReceiver, server)
)

/** Span names and service names found in an OTLP JSON export. */
const readExport = (body: unknown) => {
  const text = JSON.stringify(body)
  const names = [...text.matchAll(/"name":"([^"]+)"/g)].map((match) => match[1])
  const service = /"key":"service\.name","value":\{"stringValue":"([^"]+)"\}/.exec(text)?.[1]
  return { names, service }
}

describe("Tracing.layer", () => {
  it.effect("exports every span to the given exporter, with the service's resource and nesting kept", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      yield* Effect.void.pipe(
        Effect.withSpan("inner", { attributes: { "bulwark.retry.attempt": 1 } }),
        Effect.withSpan("outer")
      )
      const spans = exporter.getFinishedSpans()
      assert.deepStrictEqual(spans.map((span) => span.name), ["inner", "outer"])
      const [inner, outer] = spans
      assert.strictEqual(inner?.parentSpanContext?.spanId, outer?.spanContext().spanId)
      assert.strictEqual(inner?.attributes[Tracing.attributes.retryAttempt], 1)
      assert.strictEqual(outer?.resource.attributes["service.name"], "orders")
      assert.strictEqual(outer?.resource.attributes["service.version"], "1.2.3")
      assert.strictEqual(outer?.resource.attributes["deployment.environment"], "test")
    }).pipe(Effect.provide(Tracing.layer({
      serviceName: "orders",
      serviceVersion: "1.2.3",
      attributes: { "deployment.environment": "test" },
      exporter,
      processor: "simple"
    })))
  })

  it.live("flushes batched spans when the layer closes", () => {
    // InMemorySpanExporter forgets its spans on shutdown, which closing the layer does: this one keeps them
    const exported: Array<ReadableSpan> = []
    let shutdown = false
    const exporter: SpanExporter = {
      export: (spans, done) => {
        exported.push(...spans)
        done({ code: 0 }) // ExportResultCode.SUCCESS
      },
      shutdown: () => {
        shutdown = true
        return Promise.resolve()
      }
    }
    return Effect.gen(function*() {
      yield* Effect.withSpan(Effect.void, "batched").pipe(
        Effect.provide(Tracing.layer({ serviceName: "batch", exporter }))
      )
      // the batch processor had not exported it yet; closing the layer did, then shut the exporter down
      assert.deepStrictEqual(exported.map((span) => span.name), ["batched"])
      assert.isTrue(shutdown)
    })
  })

  it.live("sends OTLP/HTTP JSON to the configured collector when no exporter is given", () =>
    Effect.gen(function*() {
      const receiver = yield* startReceiver
      yield* Effect.scoped(
        Effect.withSpan(Effect.void, "shipped").pipe(
          Effect.provide(Tracing.layer({
            serviceName: "otlp-service",
            otlp: { url: `${receiver.base}/v1/traces`, exportInterval: "50 millis" }
          }))
        )
      )
      const posted = yield* receiver.next
      assert.strictEqual(posted.path, "/v1/traces")
      const { names, service } = readExport(posted.body)
      assert.include(names, "shipped")
      assert.strictEqual(service, "otlp-service")
    }).pipe(Effect.scoped))

  it.live("finds the collector through OTEL_EXPORTER_OTLP_ENDPOINT", () =>
    Effect.gen(function*() {
      const receiver = yield* startReceiver
      const config = Layer.setConfigProvider(
        ConfigProvider.fromMap(new Map([["OTEL_EXPORTER_OTLP_ENDPOINT", `${receiver.base}/`]]))
      )
      yield* Effect.scoped(
        Effect.withSpan(Effect.void, "from-env").pipe(
          Effect.provide(Tracing.layer({ serviceName: "env-service" }).pipe(Layer.provide(config)))
        )
      )
      const posted = yield* receiver.next
      assert.strictEqual(posted.path, "/v1/traces")
      assert.include(readExport(posted.body).names, "from-env")
    }).pipe(Effect.scoped))

  it.effect("rejects bad options with InvalidOptionsError naming the option", () =>
    Effect.gen(function*() {
      const exporter = new InMemorySpanExporter()
      const cases: ReadonlyArray<readonly [Tracing.Options, string]> = [
        [{ serviceName: " " }, "serviceName"],
        [{ serviceName: "a", exporter, otlp: {} }, "exporter"],
        [{ serviceName: "a", exporter: [] }, "exporter"],
        [{ serviceName: "a", processor: "simple" }, "processor"],
        [{ serviceName: "a", otlp: { url: "ftp://collector" } }, "otlp.url"],
        [{ serviceName: "a", otlp: { exportInterval: 0 } }, "otlp.exportInterval"],
        [{ serviceName: "a", shutdownTimeout: "-1 seconds" }, "shutdownTimeout"]
      ]
      for (const [options, option] of cases) {
        const error = yield* Effect.flip(Effect.scoped(Layer.build(Tracing.layer(options))))
        assert.strictEqual(error._tag, "InvalidOptionsError", option)
        assert.strictEqual(error.option, option)
      }
    }))
})
