import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import * as OtlpSerialization from "@effect/opentelemetry/OtlpSerialization"
import * as OtlpTracer from "@effect/opentelemetry/OtlpTracer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import { BatchSpanProcessor, SimpleSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Trace from "../../internal/trace.js"
import type * as Tracing from "../Tracing.js"

const component = "Tracing"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  processor: "batch",
  otlpUrl: "http://localhost:4318/v1/traces",
  exportInterval: Duration.seconds(5),
  shutdownTimeout: Duration.seconds(3)
} as const

/** @internal */
export { attributes } from "../../internal/tracingAttributes.js"

type Attribute = string | number | boolean

interface Resource {
  readonly serviceName: string
  readonly serviceVersion?: string
  readonly attributes?: Readonly<Record<string, Attribute>>
}

type Export =
  | { readonly _tag: "Sdk"; readonly exporters: ReadonlyArray<SpanExporter>; readonly simple: boolean }
  | {
    readonly _tag: "Otlp"
    readonly url: Option.Option<string>
    readonly headers: Readonly<Record<string, string>>
    readonly exportInterval: Duration.Duration
  }

interface Resolved {
  readonly resource: Resource
  readonly export: Export
  readonly shutdownTimeout: Duration.Duration
}

const isExporter = (u: unknown): u is SpanExporter =>
  typeof u === "object" && u !== null && "export" in u && typeof u.export === "function" && "shutdown" in u &&
  typeof u.shutdown === "function"

const validUrl = (option: string, url: string): Options.Check<string> => {
  try {
    const parsed = new URL(url)
    return parsed.protocol === "http:" || parsed.protocol === "https:"
      ? Either.right(url)
      : Either.left(Options.invalid(field(option), url, "an http: or https: URL"))
  } catch {
    return Either.left(Options.invalid(field(option), url, "an http: or https: URL"))
  }
}

const validateExport = (options: Tracing.Options): Options.Check<Export> => {
  if (options.exporter !== undefined && options.otlp !== undefined) {
    return Either.left(
      Options.invalid(field("exporter"), "exporter and otlp", "either an exporter or otlp options, not both")
    )
  }
  if (options.exporter !== undefined) {
    const exporters: ReadonlyArray<unknown> = Array.isArray(options.exporter) ? options.exporter : [options.exporter]
    if (exporters.length === 0 || !exporters.every(isExporter)) {
      return Either.left(
        Options.invalid(
          field("exporter"),
          options.exporter,
          "an OpenTelemetry SpanExporter or a non-empty array of them"
        )
      )
    }
    const processor = options.processor ?? defaults.processor
    if (processor !== "batch" && processor !== "simple") {
      return Either.left(Options.invalid(field("processor"), processor, `"batch" or "simple"`))
    }
    return Either.right({ _tag: "Sdk", exporters: exporters.filter(isExporter), simple: processor === "simple" })
  }
  if (options.processor !== undefined) {
    return Either.left(
      Options.invalid(field("processor"), options.processor, "left out: it applies to an exporter only")
    )
  }
  const otlp = options.otlp ?? {}
  return Either.all({
    url: otlp.url === undefined ? Either.right(Option.none()) : Either.map(validUrl("otlp.url", otlp.url), Option.some),
    exportInterval: Options.duration(field("otlp.exportInterval"), otlp.exportInterval ?? defaults.exportInterval, {
      allowZero: false
    })
  }).pipe(Either.map(({ exportInterval, url }) => ({
    _tag: "Otlp" as const,
    url,
    headers: otlp.headers ?? {},
    exportInterval
  })))
}

const validateResource = (options: Tracing.Options): Options.Check<Resource> => {
  if (typeof options.serviceName !== "string" || options.serviceName.trim() === "") {
    return Either.left(Options.invalid(field("serviceName"), options.serviceName, "a non-empty string"))
  }
  if (options.serviceVersion !== undefined && options.serviceVersion.trim() === "") {
    return Either.left(Options.invalid(field("serviceVersion"), options.serviceVersion, "a non-empty string"))
  }
  return Either.right({
    serviceName: options.serviceName,
    ...(options.serviceVersion === undefined ? {} : { serviceVersion: options.serviceVersion }),
    ...(options.attributes === undefined ? {} : { attributes: options.attributes })
  })
}

/** @internal */
export const validate = (options: Tracing.Options): Options.Check<Resolved> =>
  Either.all({
    resource: validateResource(options),
    export: validateExport(options),
    shutdownTimeout: Options.duration(field("shutdownTimeout"), options.shutdownTimeout ?? defaults.shutdownTimeout)
  })

/**
 * The OTLP endpoint when none is configured: the standard OpenTelemetry
 * environment variables, then the collector's default port on localhost.
 */
const otlpEndpointFromEnv: Effect.Effect<string> = Effect.gen(function*() {
  const traces = yield* Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
  if (Option.isSome(traces)) return traces.value
  const base = yield* Config.option(Config.nonEmptyString("OTEL_EXPORTER_OTLP_ENDPOINT"))
  return Option.match(base, {
    onNone: () => defaults.otlpUrl,
    onSome: (url) => `${url.replace(/\/+$/, "")}/v1/traces`
  })
}).pipe(Effect.orElseSucceed(() => defaults.otlpUrl))

const sdkLayer = (resolved: Resolved, exporters: ReadonlyArray<SpanExporter>, simple: boolean) =>
  NodeSdk.layer(() => ({
    resource: resolved.resource,
    spanProcessor: exporters.map((exporter) =>
      simple ? new SimpleSpanProcessor(exporter) : new BatchSpanProcessor(exporter)
    ),
    shutdownTimeout: resolved.shutdownTimeout
  }))

const otlpLayer = (resolved: Resolved, otlp: Extract<Export, { readonly _tag: "Otlp" }>) =>
  Layer.unwrapEffect(
    Effect.map(
      Option.match(otlp.url, { onNone: () => otlpEndpointFromEnv, onSome: Effect.succeed }),
      (url) =>
        OtlpTracer.layer({
          url,
          resource: resolved.resource,
          headers: otlp.headers,
          exportInterval: otlp.exportInterval,
          shutdownTimeout: resolved.shutdownTimeout
        })
    )
  ).pipe(Layer.provide(Layer.merge(OtlpSerialization.layerJson, FetchHttpClient.layer)))

/** @internal */
export const layerSpans: Layer.Layer<never> = Trace.layer

/** @internal */
export const layer = (options: Tracing.Options): Layer.Layer<never, InvalidOptionsError> =>
  Either.match(validate(options), {
    onLeft: (error) => Layer.fail(error),
    onRight: (resolved) =>
      Layer.merge(
        resolved.export._tag === "Sdk"
          ? Layer.discard(sdkLayer(resolved, resolved.export.exporters, resolved.export.simple))
          : otlpLayer(resolved, resolved.export),
        Trace.layer
      )
  })
