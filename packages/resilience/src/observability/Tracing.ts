/**
 * Traces of Bulwark's calls through OpenTelemetry, switched on by one layer.
 *
 * Effect creates spans whether or not anything collects them (`Effect.withSpan`);
 * {@link layer} installs an OpenTelemetry tracer (`@effect/opentelemetry`) so
 * those spans, Bulwark's and yours, are exported: to the OpenTelemetry SDK
 * exporters you give it (through a `NodeTracerProvider` with a batch or simple
 * span processor), or, by default, as OTLP/HTTP JSON to a collector.
 *
 * Bulwark names its span attributes with the keys in {@link attributes}
 * (`bulwark.circuit_breaker.state`, `bulwark.retry.attempt`, …) and uses
 * OpenTelemetry's semantic conventions where they exist
 * (`http.request.method`, `http.response.status_code`, `server.address`).
 * `ResilientHttpClient` makes one span per logical call and one per attempt,
 * under which @effect/platform's own `http.client` span sits (with W3C
 * `traceparent` propagation to the server).
 *
 * @example
 * ```ts
 * import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { ResilientHttpClient, Tracing } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const client = yield* ResilientHttpClient.ResilientHttpClient
 *   yield* client.get("https://inventory.internal/items/42")
 * }).pipe(Effect.withSpan("checkout"))
 *
 * program.pipe(
 *   Effect.provide(ResilientHttpClient.layer({ hosts: { "inventory.internal": {} } })),
 *   Effect.provide(NodeHttpClient.layerUndici),
 *   // OTLP/HTTP to $OTEL_EXPORTER_OTLP_ENDPOINT, else http://localhost:4318/v1/traces
 *   Effect.provide(Tracing.layer({ serviceName: "checkout" })),
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * @since 0.1.0
 */
import type { SpanExporter } from "@opentelemetry/sdk-trace-base"
import type * as Duration from "effect/Duration"
import type * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../Failure.js"
import * as internal from "./internal/tracing.js"

/**
 * Options of {@link layer}. Invalid values fail the layer with
 * `InvalidOptionsError` naming the option.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** `service.name` of the resource: a non-empty string. */
  readonly serviceName: string
  /** `service.version` of the resource. */
  readonly serviceVersion?: string
  /** More resource attributes (`deployment.environment`, …). */
  readonly attributes?: Readonly<Record<string, string | number | boolean>>
  /**
   * OpenTelemetry SDK span exporters (`@opentelemetry/sdk-trace-base`'s
   * `InMemorySpanExporter`, `ConsoleSpanExporter`, an OTLP exporter package…).
   * When given, spans go through a `NodeTracerProvider` to these exporters.
   * Default: none, and spans go to {@link otlp}.
   */
  readonly exporter?: SpanExporter | ReadonlyArray<SpanExporter>
  /**
   * The span processor in front of each exporter: `"batch"` (the default:
   * spans are buffered and exported in the background) or `"simple"` (each
   * span is exported as it ends: for tests and debugging).
   */
  readonly processor?: "batch" | "simple"
  /**
   * Used when no `exporter` is given: spans are sent as OTLP/HTTP JSON by
   * `@effect/opentelemetry`'s own exporter (no extra package). `url` defaults to
   * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` +
   * `/v1/traces`, else `http://localhost:4318/v1/traces`; `exportInterval`
   * to 5 seconds.
   */
  readonly otlp?: {
    readonly url?: string
    readonly headers?: Readonly<Record<string, string>>
    readonly exportInterval?: Duration.DurationInput
  }
  /** How long closing the layer waits to flush the last spans. Default 3 seconds. */
  readonly shutdownTimeout?: Duration.DurationInput
}

/**
 * Switches tracing on for everything it is provided to: an OpenTelemetry
 * tracer with the service's resource, exporting to `exporter` or over OTLP.
 * Closing the layer flushes the spans still buffered (up to
 * `shutdownTimeout`).
 *
 * @example
 * ```ts
 * import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
 * import { Effect } from "effect"
 * import { Tracing } from "@bulwark/resilience"
 *
 * const exporter = new InMemorySpanExporter()
 * const traced = Effect.void.pipe(
 *   Effect.withSpan("work"),
 *   Effect.provide(Tracing.layer({ serviceName: "test", exporter, processor: "simple" }))
 * )
 * // after running it: exporter.getFinishedSpans() holds the "work" span
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (options: Options) => Layer.Layer<never, InvalidOptionsError> = internal.layer

/**
 * The defaults of {@link layer}.
 *
 * @since 0.1.0
 * @category Layers
 */
export const defaults: typeof internal.defaults = internal.defaults

/**
 * The span attribute keys Bulwark uses, one vocabulary for every primitive:
 *
 * | key | value |
 * |---|---|
 * | `bulwark.circuit_breaker.name`, `bulwark.circuit_breaker.state` | the breaker, and its state when the call was admitted or refused (`closed`, `open`, `half_open`, `forced_open`, `disabled`, `metrics_only`, as in the metrics) |
 * | `bulwark.bulkhead.name` | the bulkhead |
 * | `bulwark.retry.policy`, `bulwark.retry.attempt` | the policy, and the attempt number (1 for the first) |
 * | `bulwark.retry.attempts` | attempts made by a whole call |
 * | `bulwark.retry.delay_ms` | the wait before this attempt (from the end of the previous one) |
 * | `bulwark.retry.retry_after_ms` | a server's `Retry-After` hint on a failed attempt |
 * | `bulwark.timeout.operation`, `bulwark.timeout.limit_ms` | a timeout |
 * | `bulwark.idempotency.keyed`, `bulwark.idempotency.replayed` | a request carried an `Idempotency-Key`; its answer was a replay (`Idempotent-Replayed`) |
 * | `bulwark.idempotency.scope`, `bulwark.idempotency.result` | server side: the scope and result (`executed`, `replayed`, … as in the metrics) |
 * | `bulwark.job.id`, `bulwark.job.queue`, `bulwark.job.kind`, `bulwark.job.attempt` | a job run |
 * | `bulwark.http.client`, `bulwark.http.host`, `bulwark.http.outcome` | `ResilientHttpClient`: its name, the host, and the outcome as in `http_client_requests_total{status}` (a status code, or `timeout`, `connection_error`, `circuit_open`…) |
 *
 * @since 0.1.0
 * @category Attributes
 */
export const attributes: typeof internal.attributes = internal.attributes
