/**
 * Bulwark's metrics in Prometheus text format, through prom-client.
 *
 * Bulwark records its metrics with Effect's `Metric` API (see `Metrics`). This
 * module bridges them into a prom-client `Registry` — yours, so they sit beside
 * your own metrics and Node's default ones, or a new one — and serves that
 * registry on `/metrics` for @effect/platform HTTP servers.
 *
 * The bridge is a prom-client collector per metric name that reads Effect's
 * metric registry at scrape time: nothing is copied on the hot path, and a
 * scrape sees one consistent snapshot of every Bulwark metric. Counters come out
 * as Prometheus counters (their names already end in `_total`), gauges as
 * gauges, and histograms as `_bucket{le}` / `_sum` / `_count` with cumulative
 * buckets in seconds. Label values are escaped by prom-client.
 *
 * @example
 * ```ts
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import * as HttpRouter from "@effect/platform/HttpRouter"
 * import * as HttpServer from "@effect/platform/HttpServer"
 * import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
 * import { Layer } from "effect"
 * import { createServer } from "node:http"
 * import { collectDefaultMetrics, Registry } from "prom-client"
 * import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
 *
 * const registry = new Registry()
 * collectDefaultMetrics({ register: registry }) // Node's process metrics beside Bulwark's
 *
 * const app = HttpRouter.empty.pipe(
 *   HttpRouter.get("/hello", HttpServerResponse.text("hello")),
 *   PrometheusMetrics.route() // GET /metrics
 * )
 *
 * HttpServer.serve(app).pipe(
 *   Layer.provide(PrometheusMetrics.layer({ registry })),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
 *   Layer.launch,
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as HttpRouter from "@effect/platform/HttpRouter"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type { Registry, RegistryContentType } from "prom-client"
import type { InvalidOptionsError } from "../Failure.js"
import type * as Metrics from "../Metrics.js"
import { MetricConflictError, ScrapeError } from "./internal/errors.js"
import * as internal from "./internal/prometheusMetrics.js"
import { PrometheusRegistry } from "./internal/prometheusMetrics.js"

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

// Declared in `internal/prometheusMetrics.ts`, which provides it.
export { PrometheusRegistry }

/**
 * A prom-client registry in either exposition format (Prometheus text, the
 * default, or OpenMetrics).
 *
 * @since 0.1.0
 * @category Models
 */
export type AnyRegistry = Registry<RegistryContentType>

/**
 * Options of {@link register} and {@link layer}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /**
   * The Effect metrics to bridge. Default: `Metrics.catalog`, every metric
   * Bulwark emits. Add descriptors of your own Effect metrics to export them
   * too: a `counter` reads an incremental Effect counter, a `gauge` reads an
   * Effect gauge (or a non-incremental counter, which can go down), a
   * `histogram` reads an Effect histogram. Series of another kind under the same
   * name are left out rather than exported under the wrong type.
   */
  readonly metrics?: Iterable<Metrics.Descriptor> | undefined
}

/**
 * Options of {@link layer}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface LayerOptions extends Options {
  /**
   * The registry to bridge into and serve. Default: a new `Registry`. Pass
   * your own (or prom-client's global `register`) to serve your metrics and
   * Bulwark's on one endpoint.
   */
  readonly registry?: AnyRegistry | undefined
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { MetricConflictError, ScrapeError }

// -----------------------------------------------------------------------------
// Bridge
// -----------------------------------------------------------------------------

/**
 * Registers Bulwark's metrics (or `options.metrics`) in a prom-client
 * registry, as collectors read at scrape time. Idempotent: metrics the bridge
 * already registered there are kept. Nothing is registered when any name is
 * invalid (`InvalidOptionsError`) or already taken by another metric
 * (`MetricConflictError`). Succeeds with the names it registered.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { register as defaultRegistry } from "prom-client"
 * import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
 *
 * // Bulwark's metrics on the registry an Express app already serves
 * const program = PrometheusMetrics.register(defaultRegistry)
 * ```
 *
 * @since 0.1.0
 * @category Bridge
 */
export const register: (
  registry: AnyRegistry,
  options?: Options
) => Effect.Effect<ReadonlyArray<string>, InvalidOptionsError | MetricConflictError> = internal.register

/**
 * Provides {@link PrometheusRegistry}: `options.registry` (or a new one) with
 * Bulwark's metrics bridged into it (see {@link register}).
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (
  options?: LayerOptions
) => Layer.Layer<PrometheusRegistry, InvalidOptionsError | MetricConflictError> = internal.layer

// -----------------------------------------------------------------------------
// Scraping and HTTP
// -----------------------------------------------------------------------------

/**
 * The registry's exposition text (Prometheus 0.0.4, or OpenMetrics when the
 * registry was set to it).
 *
 * @since 0.1.0
 * @category Scraping
 */
export const scrape: Effect.Effect<string, ScrapeError, PrometheusRegistry> = internal.scrape

/**
 * The `/metrics` handler, for any @effect/platform router or server: 200 with
 * the exposition and the registry's content type
 * (`text/plain; version=0.0.4; charset=utf-8` by default); 500 with a short
 * text when a collector fails (the failure is logged).
 *
 * @example
 * ```ts
 * import * as HttpRouter from "@effect/platform/HttpRouter"
 * import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
 *
 * const admin = HttpRouter.empty.pipe(HttpRouter.get("/internal/metrics", PrometheusMetrics.handler))
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const handler: Effect.Effect<HttpServerResponse.HttpServerResponse, never, PrometheusRegistry> = internal.handler

/**
 * Adds `GET path` (default `/metrics`) serving {@link handler} to a router.
 *
 * @since 0.1.0
 * @category HTTP
 */
export const route: (
  path?: HttpRouter.PathInput
) => <E, R>(self: HttpRouter.HttpRouter<E, R>) => HttpRouter.HttpRouter<E, R | PrometheusRegistry> = internal.route
