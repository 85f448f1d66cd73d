/**
 * Traces of Bulwark's calls through OpenTelemetry, switched on by one layer.
 *
 * Effect creates spans whether or not anything collects them (`Effect.withSpan`);
 * {@link layer} installs an OpenTelemetry tracer (`@effect/opentelemetry`) so
 * those spans, Bulwark's and yours, are exported: to the OpenTelemetry SDK
 * exporters you give it (through a `NodeTracerProvider` with a batch or simple
 * span processor), or, by default, as OTLP/HTTP JSON to a collector.
 *
 * The layer also switches on the spans of Bulwark's layers: each call
 * protected by a circuit breaker, bulkhead, retry or timeout (or a stack of
 * them) gets ONE span, named after its outermost layer
 * (`bulwark.retry payments`, `bulwark.circuit_breaker payments`,
 * `bulwark.bulkhead …`, `bulwark.timeout …`), carrying every layer's
 * attributes (breaker name and state, bulkhead name and queue wait, retry
 * policy and attempts, timeout operation and limit, the outcome), a `retry`
 * event per retry with its attempt number and delay, and a `timeout` event
 * when a timeout strikes. Without the layer they make no span: the question
 * is asked per call and, while no `Tracing` layer is open in the process,
 * costs one read of a counter.
 *
 * Bulwark names its span attributes with the keys in {@link attributes}
 * (`bulwark.circuit_breaker.state`, `bulwark.retry.attempt`, …) and uses
 * OpenTelemetry's semantic conventions where they exist
 * (`http.request.method`, `http.response.status_code`, `server.address`,
 * `error.type`). `ResilientHttpClient` makes one span per logical call and
 * one per attempt, under which @effect/platform's own `http.client` span sits
 * (with W3C `traceparent` propagation to the server); it records its breaker,
 * bulkhead, retry and timeout on those spans itself, so they make none there.
 * The job worker runs each job in a `bulwark.job <kind>` span.
 *
 * @example
 * ```ts
 * import { NodeHttpClient, NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer } from "effect"
 * import { ResilientHttpClient } from "@bulwark/resilience"
 * import * as Tracing from "@bulwark/resilience/Tracing"
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
 * tracer with the service's resource, exporting to `exporter` or over OTLP,
 * and the spans of Bulwark's layers ({@link layerSpans}), for every fiber of
 * the program, those forked later included. Closing the layer flushes the
 * spans still buffered (up to `shutdownTimeout`).
 *
 * @example
 * ```ts
 * import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
 * import { Effect } from "effect"
 * import * as Tracing from "@bulwark/resilience/Tracing"
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
 * Switches on the spans of Bulwark's layers (circuit breaker, bulkhead,
 * retry, timeout) without installing a tracer: for a program that installs
 * its own (`NodeSdk.layer` of `@effect/opentelemetry`, …). {@link layer}
 * includes it. They are on for every fiber of the program it is provided to
 * (forked later too) while it is open, except where Effect's tracer is
 * disabled (`Effect.withTracerEnabled(false)`).
 *
 * @example
 * ```ts
 * import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
 * import { Layer } from "effect"
 * import * as Tracing from "@bulwark/resilience/Tracing"
 *
 * const Observability = Layer.merge(NodeSdk.layer(() => ({ resource: { serviceName: "checkout" } })), Tracing.layerSpans)
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerSpans: Layer.Layer<never> = internal.layerSpans

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
 * | `bulwark.circuit_breaker.name`, `bulwark.circuit_breaker.state` | the breaker, and its state when the call (its last attempt) was admitted or refused (`closed`, `open`, `half_open`, `forced_open`, `disabled`, `metrics_only`, as in the metrics) |
 * | `bulwark.bulkhead.name`, `bulwark.bulkhead.queued_ms` | the bulkhead, and how long the call waited in its queue (only when it queued) |
 * | `bulwark.retry.policy`, `bulwark.retry.attempt` | the policy, and the attempt number (1 for the first; on a `retry` event, the attempt it announces) |
 * | `bulwark.retry.attempts` | attempts made by a whole call |
 * | `bulwark.retry.delay_ms` | the wait before this attempt: on an HTTP attempt span, from the end of the previous attempt; on a `retry` event, the delay the policy chose (the backoff, or the server's hint when longer) |
 * | `bulwark.retry.retry_after_ms` | a server's `Retry-After` hint on a failed attempt |
 * | `bulwark.timeout.operation`, `bulwark.timeout.limit_ms` | a timeout |
 * | `bulwark.idempotency.keyed`, `bulwark.idempotency.replayed` | a request carried an `Idempotency-Key`; its answer was a replay (`Idempotent-Replayed`) |
 * | `bulwark.idempotency.scope`, `bulwark.idempotency.result` | server side: the scope and result (`executed`, `replayed`, … as in the metrics) |
 * | `bulwark.job.id`, `bulwark.job.queue`, `bulwark.job.kind`, `bulwark.job.attempt` | a job run |
 * | `bulwark.http.client`, `bulwark.http.host`, `bulwark.http.outcome` | `ResilientHttpClient`: its name, the host, and the outcome as in `http_client_requests_total{status}` (a status code, or `timeout`, `connection_error`, `circuit_open`…) |
 * | `bulwark.outcome` | a layer span's outcome: `success`, `failure` (an error of the operation), `circuit_open`, `bulkhead_full`, `timeout`, `retries_exhausted`, `interrupted`, `defect`; `error.type` names the error's tag |
 *
 * @since 0.1.0
 * @category Attributes
 */
export const attributes: typeof internal.attributes = internal.attributes
