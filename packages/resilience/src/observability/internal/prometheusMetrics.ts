import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import { Registry } from "prom-client"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import type * as PrometheusMetrics from "../PrometheusMetrics.js"
import * as Bridge from "./bridge.js"
import { MetricConflictError, ScrapeError } from "./errors.js"

/**
 * The prom-client registry that `/metrics` serves, with Bulwark's metrics
 * bridged into it. Provided by {@link layer}.
 *
 * @since 0.1.0
 * @category Services
 */
export class PrometheusRegistry extends Context.Tag("@bulwark/resilience/PrometheusMetrics/PrometheusRegistry")<
  PrometheusRegistry,
  PrometheusMetrics.AnyRegistry
>() {}

const component = "PrometheusMetrics"
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const invalid = (value: unknown, expected: string): Either.Either<never, InvalidOptionsError> =>
  Either.left(Options.invalid({ component, option: "metrics" }, value, expected))

const validateDescriptor = (descriptor: Metrics.Descriptor): Options.Check<Metrics.Descriptor> => {
  const { buckets, labels, name, type } = descriptor
  if (typeof name !== "string" || !METRIC_NAME.test(name)) {
    return invalid(name, "metric names matching [a-zA-Z_:][a-zA-Z0-9_:]*")
  }
  if (type !== "counter" && type !== "gauge" && type !== "histogram") {
    return invalid(type, `"counter", "gauge" or "histogram" as the type of ${name}`)
  }
  for (const label of labels) {
    if (!LABEL_NAME.test(label) || label.startsWith("__") || (type === "histogram" && label === "le")) {
      return invalid(label, `label names of ${name} matching [a-zA-Z_][a-zA-Z0-9_]*, not starting with __, not le`)
    }
  }
  if (new Set(labels).size !== labels.length) return invalid(labels, `distinct label names for ${name}`)
  if (buckets.some((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= (buckets[i - 1] ?? -Infinity)))) {
    return invalid(buckets, `finite, strictly ascending buckets for ${name}`)
  }
  return Either.right(descriptor)
}

const validate = (
  metrics: Iterable<Metrics.Descriptor>
): Options.Check<ReadonlyArray<Metrics.Descriptor>> => {
  const valid: Array<Metrics.Descriptor> = []
  const names = new Set<string>()
  for (const descriptor of metrics) {
    const checked = validateDescriptor(descriptor)
    if (Either.isLeft(checked)) return Either.left(checked.left)
    if (names.has(descriptor.name)) return invalid(descriptor.name, "each metric name once")
    names.add(descriptor.name)
    valid.push(descriptor)
  }
  return Either.right(valid)
}

/** @internal */
export const register = (
  registry: PrometheusMetrics.AnyRegistry,
  options: PrometheusMetrics.Options = {}
): Effect.Effect<ReadonlyArray<string>, InvalidOptionsError | PrometheusMetrics.MetricConflictError> =>
  Effect.suspend((): Effect.Effect<
    ReadonlyArray<string>,
    InvalidOptionsError | PrometheusMetrics.MetricConflictError
  > => {
    const checked = validate(options.metrics ?? Metrics.catalog)
    if (Either.isLeft(checked)) return Effect.fail(checked.left)
    // every check before the first write, so a failure registers nothing
    const missing: Array<Metrics.Descriptor> = []
    for (const descriptor of checked.right) {
      const existing = registry.getSingleMetric(descriptor.name)
      if (existing === undefined) missing.push(descriptor)
      else if (Bridge.bridgedName(existing) !== descriptor.name) {
        return Effect.fail(new MetricConflictError({ name: descriptor.name }))
      }
    }
    const collectors = missing.map(Bridge.make)
    for (const collector of collectors) registry.registerMetric(collector)
    return Effect.succeed(missing.map((descriptor) => descriptor.name))
  })

/**
 * The collectors stay in the registry after the layer is released: they only
 * read Effect's registry, and removing them would leave `/metrics` empty for
 * a server that outlives the layer (e.g. `serveEffect(app).pipe(Effect.provide(layer))`).
 *
 * @internal
 */
export const layer = (
  options: PrometheusMetrics.LayerOptions = {}
): Layer.Layer<PrometheusMetrics.PrometheusRegistry, InvalidOptionsError | PrometheusMetrics.MetricConflictError> =>
  Layer.effect(
    PrometheusRegistry,
    Effect.suspend(() => {
      const registry: PrometheusMetrics.AnyRegistry = options.registry ?? new Registry()
      return Effect.as(register(registry, options), registry)
    })
  )

const scrapeRegistry = (
  registry: PrometheusMetrics.AnyRegistry
): Effect.Effect<string, PrometheusMetrics.ScrapeError> =>
  Effect.tryPromise({
    try: () => registry.metrics(),
    catch: (cause) => new ScrapeError({ cause })
  })

/** @internal */
export const scrape: Effect.Effect<string, PrometheusMetrics.ScrapeError, PrometheusMetrics.PrometheusRegistry> = Effect
  .suspend(() => Effect.flatMap(PrometheusRegistry, scrapeRegistry))

/** @internal */
export const handler: Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  never,
  PrometheusMetrics.PrometheusRegistry
> = Effect.suspend(() =>
  Effect.flatMap(PrometheusRegistry, (registry) =>
    scrapeRegistry(registry).pipe(
      Effect.map((body) => HttpServerResponse.text(body, { contentType: registry.contentType })),
      Effect.catchAll((error) =>
        Effect.logError(`Serving /metrics failed: ${error.message}`).pipe(
          Effect.as(HttpServerResponse.text("metrics collection failed\n", { status: 500 }))
        )
      )
    ))
)

/** @internal */
export const route = (
  path: HttpRouter.PathInput = "/metrics"
): <E, R>(self: HttpRouter.HttpRouter<E, R>) => HttpRouter.HttpRouter<E, R | PrometheusMetrics.PrometheusRegistry> =>
  HttpRouter.get(path, handler)
