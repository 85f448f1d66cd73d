import { NodeHttpServer } from "@effect/platform-node"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import { createServer } from "node:http"
import { Counter, Gauge, Registry } from "prom-client"
import * as Metrics from "../Metrics.js"
import * as PrometheusMetrics from "./PrometheusMetrics.js"

let counter = 0
/** Effect's metric registry is global and never forgets a series: every test writes its own label values. */
const unique = (prefix: string) => `${prefix}-${++counter}`

const linesOf = (text: string) => text.split("\n")

const descriptor = (
  name: string,
  type: Metrics.Descriptor["type"],
  labels: ReadonlyArray<string>,
  buckets: ReadonlyArray<number> = []
): Metrics.Descriptor => ({ name, type, help: `test metric ${name}`, labels, labelValues: {}, buckets })

const scrapeOf = (registry: PrometheusMetrics.AnyRegistry) => Effect.promise(() => registry.metrics())

describe("PrometheusMetrics.register", () => {
  it.effect("exports Bulwark's counters, gauges and histograms beside the registry's own metrics", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const own = new Counter({ name: "app_orders_total", help: "Orders placed", registers: [registry] })
      own.inc(3)
      const registered = yield* PrometheusMetrics.register(registry)
      assert.deepStrictEqual(registered, Metrics.catalog.map((metric) => metric.name))

      const operation = unique("charge")
      const bulkhead = unique("payments")
      const queue = unique("emails")
      yield* Metric.incrementBy(Metric.tagged(Metrics.timeouts, "operation", operation), 2)
      yield* Metric.set(Metric.tagged(Metrics.bulkheadActive, "bulkhead", bulkhead), 4)
      const wait = Metric.tagged(Metrics.jobWait, "queue", queue)
      yield* Metric.update(wait, 0.02)
      yield* Metric.update(wait, 7)

      const lines = linesOf(yield* scrapeOf(registry))
      assert.include(lines, "app_orders_total 3")
      assert.include(lines, "# HELP bulwark_timeouts_total Operations interrupted by a timeout")
      assert.include(lines, "# TYPE bulwark_timeouts_total counter")
      assert.include(lines, `bulwark_timeouts_total{operation="${operation}"} 2`)
      assert.include(lines, "# TYPE bulwark_bulkhead_active gauge")
      assert.include(lines, `bulwark_bulkhead_active{bulkhead="${bulkhead}"} 4`)
      assert.include(lines, "# TYPE bulwark_job_wait_seconds histogram")
      const waitLines = lines.filter((line) => line.includes(`queue="${queue}"`))
      assert.deepStrictEqual(waitLines, [
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="0.01"} 0`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="0.05"} 1`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="0.1"} 1`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="0.5"} 1`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="1"} 1`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="5"} 1`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="10"} 2`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="30"} 2`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="60"} 2`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="300"} 2`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="900"} 2`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="3600"} 2`,
        `bulwark_job_wait_seconds_bucket{queue="${queue}",le="+Inf"} 2`,
        `bulwark_job_wait_seconds_sum{queue="${queue}"} 7.02`,
        `bulwark_job_wait_seconds_count{queue="${queue}"} 2`
      ])
    }))

  it.effect("reads the values at scrape time, not at registration", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      yield* PrometheusMetrics.register(registry)
      const limiter = unique("api")
      const allowed = Metric.tagged(
        Metric.tagged(Metrics.rateLimiterDecisions, "limiter", limiter),
        "decision",
        "allowed"
      )
      yield* Metric.increment(allowed)
      const line = (n: number) => `bulwark_rate_limiter_decisions_total{limiter="${limiter}",decision="allowed"} ${n}`
      assert.include(linesOf(yield* scrapeOf(registry)), line(1))
      yield* Metric.incrementBy(allowed, 4)
      assert.include(linesOf(yield* scrapeOf(registry)), line(5))
    }))

  it.effect("keeps prom-client's default labels and escapes label values", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      registry.setDefaultLabels({ service: "checkout" })
      const name = "bulwark_test_escaping_total"
      yield* PrometheusMetrics.register(registry, { metrics: [descriptor(name, "counter", ["odd_key", "value"])] })
      const escaped = Metric.counter(name, { incremental: true }).pipe(
        Metric.tagged("odd-key", "x"),
        Metric.tagged("value", "a\"b\\c\nd")
      )
      yield* Metric.increment(escaped)
      assert.include(
        linesOf(yield* scrapeOf(registry)),
        `${name}{odd_key="x",value="a\\"b\\\\c\\nd",service="checkout"} 1`
      )
    }))

  it.effect("exports each name under one type: other kinds of metric with that name are left out", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const countName = "bulwark_test_kind_total"
      const upDownName = "bulwark_test_up_down"
      yield* PrometheusMetrics.register(registry, {
        metrics: [descriptor(countName, "counter", ["k"]), descriptor(upDownName, "gauge", ["k"])]
      })
      yield* Metric.increment(Metric.tagged(Metric.counter(countName, { incremental: true }), "k", "counter"))
      yield* Metric.set(Metric.tagged(Metric.gauge(countName), "k", "gauge"), 9)
      // a non-incremental Effect counter can go down: exported as a gauge
      yield* Metric.incrementBy(Metric.tagged(Metric.counter(upDownName), "k", "v"), -2)
      const lines = linesOf(yield* scrapeOf(registry))
      assert.include(lines, `${countName}{k="counter"} 1`)
      assert.isFalse(lines.some((line) => line.startsWith(`${countName}{k="gauge"}`)))
      assert.include(lines, `# TYPE ${upDownName} gauge`)
      assert.include(lines, `${upDownName}{k="v"} -2`)
    }))

  it.effect("renames a histogram tag called le, which Prometheus reserves for buckets", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const name = "bulwark_test_le_seconds"
      yield* PrometheusMetrics.register(registry, { metrics: [descriptor(name, "histogram", [], [1])] })
      yield* Metric.update(Metric.histogram(name, MetricBoundaries.fromIterable([1])).pipe(Metric.tagged("le", "x")), 2)
      const lines = linesOf(yield* scrapeOf(registry))
      assert.include(lines, `${name}_bucket{exported_le="x",le="1"} 0`)
      assert.include(lines, `${name}_bucket{exported_le="x",le="+Inf"} 1`)
      assert.include(lines, `${name}_count{exported_le="x"} 1`)
    }))

  it.effect("is idempotent, and registers nothing when a name is taken by another metric", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      assert.strictEqual((yield* PrometheusMetrics.register(registry)).length, Metrics.catalog.length)
      assert.deepStrictEqual(yield* PrometheusMetrics.register(registry), [])

      const taken = new Registry()
      new Gauge({ name: "bulwark_timeouts_total", help: "someone else's", registers: [taken] })
      const error = yield* Effect.flip(PrometheusMetrics.register(taken))
      assert.strictEqual(error._tag, "MetricConflictError")
      assert.strictEqual(error._tag === "MetricConflictError" ? error.name : "", "bulwark_timeouts_total")
      assert.match(error.message, /already has a metric named "bulwark_timeouts_total"/)
      assert.strictEqual(taken.getMetricsAsArray().length, 1)
    }))

  it.effect("rejects invalid descriptors with InvalidOptionsError and registers nothing", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const cases: ReadonlyArray<Metrics.Descriptor> = [
        descriptor("bad-name_total", "counter", []),
        descriptor("bulwark_test_labels_total", "counter", ["bad-label"]),
        descriptor("bulwark_test_reserved_total", "counter", ["__name"]),
        descriptor("bulwark_test_le_bucket_seconds", "histogram", ["le"], [1]),
        descriptor("bulwark_test_dup_total", "counter", ["a", "a"]),
        descriptor("bulwark_test_buckets_seconds", "histogram", [], [1, 1])
      ]
      for (const invalid of cases) {
        const error = yield* Effect.flip(
          PrometheusMetrics.register(registry, { metrics: [...Metrics.catalog, invalid] })
        )
        assert.strictEqual(error._tag, "InvalidOptionsError", invalid.name)
      }
      const twice = yield* Effect.flip(
        PrometheusMetrics.register(registry, { metrics: [...Metrics.catalog, ...Metrics.catalog] })
      )
      assert.strictEqual(twice._tag, "InvalidOptionsError")
      assert.strictEqual(registry.getMetricsAsArray().length, 0)
    }))

  it.effect("writes counter names once with _total in OpenMetrics", () =>
    Effect.gen(function*() {
      const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>()
      registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
      yield* PrometheusMetrics.register(registry)
      const policy = unique("checkout")
      yield* Metric.increment(Metric.tagged(Metrics.retryAttempts, "policy", policy))
      const text = yield* scrapeOf(registry)
      const lines = linesOf(text)
      assert.include(lines, "# TYPE bulwark_retry_attempts counter")
      assert.include(lines, `bulwark_retry_attempts_total{policy="${policy}"} 1`)
      assert.isTrue(text.endsWith("# EOF\n"))
      // a second scrape is the same (prom-client renames the family in place)
      assert.include(linesOf(yield* scrapeOf(registry)), `bulwark_retry_attempts_total{policy="${policy}"} 1`)
      assert.deepStrictEqual(yield* PrometheusMetrics.register(registry), [])
    }))
})

describe("PrometheusMetrics.layer", () => {
  it.effect("bridges into the given registry and provides it", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      const own = new Counter({ name: "app_logins_total", help: "Logins", registers: [registry] })
      const provided = yield* PrometheusMetrics.PrometheusRegistry.pipe(
        Effect.provide(PrometheusMetrics.layer({ registry }))
      )
      assert.strictEqual(provided, registry)
      assert.strictEqual(registry.getSingleMetric("app_logins_total"), own)
      for (const metric of Metrics.catalog) assert.isDefined(registry.getSingleMetric(metric.name), metric.name)
    }))

  it.effect("serves a new registry by default", () =>
    Effect.gen(function*() {
      const text = yield* PrometheusMetrics.scrape.pipe(Effect.provide(PrometheusMetrics.layer()))
      assert.include(linesOf(text), "# TYPE bulwark_circuit_breaker_state gauge")
    }))

  it.effect("fails to build when a name is taken", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      new Counter({ name: "bulwark_jobs_total", help: "mine", registers: [registry] })
      const error = yield* Effect.flip(Effect.scoped(Layer.build(PrometheusMetrics.layer({ registry }))))
      assert.strictEqual(error._tag, "MetricConflictError")
    }))
})

describe("PrometheusMetrics.route and handler", () => {
  const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })

  const serve = (registry: Registry) =>
    Effect.gen(function*() {
      const app = HttpRouter.empty.pipe(
        HttpRouter.get("/hello", HttpServerResponse.text("hello")),
        PrometheusMetrics.route(),
        HttpRouter.get("/custom/metrics", PrometheusMetrics.handler)
      )
      yield* HttpServer.serveEffect(app).pipe(Effect.provide(PrometheusMetrics.layer({ registry })))
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      return `http://127.0.0.1:${address.port}`
    })

  const fetchText = (url: string) =>
    Effect.promise(async () => {
      const response = await fetch(url)
      return { status: response.status, contentType: response.headers.get("content-type"), body: await response.text() }
    })

  it.live("answers GET /metrics with the exposition and its content type", () =>
    Effect.gen(function*() {
      const base = yield* serve(new Registry())
      const bulkhead = unique("inventory")
      yield* Metric.increment(Metric.tagged(Metrics.bulkheadRejected, "bulkhead", bulkhead))
      for (const path of ["/metrics", "/custom/metrics"]) {
        const reply = yield* fetchText(`${base}${path}`)
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.contentType, "text/plain; version=0.0.4; charset=utf-8")
        assert.include(linesOf(reply.body), `bulwark_bulkhead_rejected_total{bulkhead="${bulkhead}"} 1`)
      }
      assert.strictEqual((yield* fetchText(`${base}/hello`)).body, "hello")
    }).pipe(Effect.provide(ServerLive), Effect.scoped))

  it.live("answers 500 when one of the registry's collectors fails", () =>
    Effect.gen(function*() {
      const registry = new Registry()
      new Gauge({
        name: "app_broken",
        help: "A collector that throws",
        registers: [registry],
        collect() {
          throw new Error("database unreachable")
        }
      })
      const base = yield* serve(registry)
      const reply = yield* fetchText(`${base}/metrics`)
      assert.strictEqual(reply.status, 500)
      assert.strictEqual(reply.body, "metrics collection failed\n")
      const error = yield* Effect.flip(PrometheusMetrics.scrape.pipe(Effect.provideService(
        PrometheusMetrics.PrometheusRegistry,
        registry
      )))
      assert.strictEqual(error._tag, "ScrapeError")
      assert.match(error.message, /database unreachable/)
    }).pipe(Effect.provide(ServerLive), Effect.scoped))
})
