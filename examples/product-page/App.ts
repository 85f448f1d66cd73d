/**
 * The product page: an `@effect/platform` HTTP service whose page needs two
 * dependencies of different weight.
 *
 * - **The product** (critical) comes from PostgreSQL (embedded PGlite unless
 *   `DATABASE_URL` is set): a per-attempt timeout, a short retry, then
 *   `Fallback.critical`. Missing → 404; the database down → 503 naming it.
 * - **Recommendations** (optional) come from a separate recommendations
 *   service over HTTP (`RECOMMENDATIONS_URL`), through `ResilientHttpClient`
 *   (breaker, bulkhead, retries, timeouts) and `Fallback.optional`: when the
 *   service is down, the page still loads, with the product's last good
 *   recommendations (`"source": "cache"`) or, for a product not seen yet,
 *   the most popular products from the database (`"source": "default"`),
 *   both marked `"stale": true`.
 *
 * Both run at once (`Fallback.all`): the page takes as long as the slower.
 *
 * | route | what |
 * |---|---|
 * | `GET /products/:id` | `{ "product", "recommendations": { "source", "stale", "items", … }, "degraded": [...] }`; 404 unknown product; 503 database down |
 * | `GET /metrics` | Prometheus text: `bulwark_fallback_total{operation,source}`, the client's breaker and request metrics… |
 * | `GET /healthz` | 200 when the database answers (whatever recommendations do: they are optional), else 503 |
 *
 * @since 0.1.0
 */
import { CircuitBreaker, Failure, Fallback, ResilientHttpClient, Retry, Timeout } from "@bulwark/resilience"
import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as Database from "../shared/Database.js"
import * as Catalog from "./Catalog.js"
import { RecommendationList } from "./Recommendations.js"

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/**
 * How the page treats the recommendations service.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecommendationsTuning {
  /** Per request. Default 300 millis. */
  readonly attemptTimeout?: Duration.DurationInput
  /** The whole call, its retry included. Default 1 second. */
  readonly timeout?: Duration.DurationInput
  /** Consecutive failures that open the breaker. Default 5. */
  readonly breakerFailures?: number
  /** How long the breaker stays open before probing. Default 10 seconds. */
  readonly breakerOpenDuration?: Duration.DurationInput
  /** How old a product's last good recommendations may be and still be shown. Default 10 minutes. */
  readonly cacheMaxAge?: Duration.DurationInput
  /** How often the popular products (the last resort) are read again. Default 30 seconds. */
  readonly popularRefresh?: Duration.DurationInput
}

/**
 * Options of {@link startProductPage}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ProductPageOptions {
  /** The recommendations service (`RECOMMENDATIONS_URL`). */
  readonly recommendationsUrl: string
  /** A PostgreSQL server (`DATABASE_URL`). Default: an embedded PGlite. */
  readonly databaseUrl?: string | Redacted.Redacted<string> | undefined
  /** Default 0: any free port. */
  readonly port?: number
  /** Default 127.0.0.1. */
  readonly host?: string
  readonly recommendations?: RecommendationsTuning
}

/**
 * A running product page.
 *
 * @since 0.1.0
 * @category Models
 */
export interface ProductPageHandle {
  /** `http://<host>:<port>` */
  readonly url: string
  readonly recommendationsUrl: string
  /** Whether it runs on the embedded PGlite. */
  readonly embeddedDatabase: boolean
}

/**
 * The page could not start: its database, its options, or its port.
 *
 * @since 0.1.0
 * @category Errors
 */
export class ProductPageStartError extends Data.TaggedError("ProductPageStartError")<{ readonly cause: unknown }> {
  override get message(): string {
    return `The product page could not start: ${this.cause instanceof Error ? this.cause.message : String(this.cause)}`
  }
}

/**
 * Everything {@link startProductPage} takes, from the environment:
 *
 * | variable | default | what |
 * |---|---|---|
 * | `RECOMMENDATIONS_URL` | (none: `main.ts` starts the simulated service) | the recommendations service |
 * | `DATABASE_URL` | (none: embedded PGlite) | a PostgreSQL server |
 * | `PORT` / `HOST` | 3100 / 127.0.0.1 | where the page listens (`PORT=0`: any free port) |
 * | `RECOMMENDATIONS_ATTEMPT_TIMEOUT` / `RECOMMENDATIONS_TIMEOUT` | 300 millis / 1 second | per request / per call |
 * | `RECOMMENDATIONS_BREAKER_FAILURES` / `RECOMMENDATIONS_BREAKER_OPEN` | 5 / 10 seconds | breaker trip and open time |
 * | `RECOMMENDATIONS_CACHE_MAX_AGE` | 10 minutes | how stale shown recommendations may be |
 *
 * @since 0.1.0
 * @category Configuration
 */
export const configFromEnv: Config.Config<
  Omit<ProductPageOptions, "recommendationsUrl"> & { readonly recommendationsUrl: Option.Option<string> }
> = Config.all({
  recommendationsUrl: Config.option(
    Config.string("RECOMMENDATIONS_URL").pipe(
      Config.validate({
        message: "RECOMMENDATIONS_URL must be an http(s) URL",
        validation: (url) => /^https?:\/\/[^/]+/.test(url)
      })
    )
  ),
  databaseUrl: Config.option(Config.redacted("DATABASE_URL")).pipe(Config.map(Option.getOrUndefined)),
  port: Config.integer("PORT").pipe(
    Config.validate({ message: "PORT must be 0–65535", validation: (n) => n >= 0 && n <= 65_535 }),
    Config.withDefault(3100)
  ),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  recommendations: Config.all({
    attemptTimeout: Config.duration("RECOMMENDATIONS_ATTEMPT_TIMEOUT").pipe(Config.withDefault(Duration.millis(300))),
    timeout: Config.duration("RECOMMENDATIONS_TIMEOUT").pipe(Config.withDefault(Duration.seconds(1))),
    breakerFailures: Config.integer("RECOMMENDATIONS_BREAKER_FAILURES").pipe(
      Config.validate({ message: "RECOMMENDATIONS_BREAKER_FAILURES must be ≥ 1", validation: (n) => n >= 1 }),
      Config.withDefault(5)
    ),
    breakerOpenDuration: Config.duration("RECOMMENDATIONS_BREAKER_OPEN").pipe(Config.withDefault(Duration.seconds(10))),
    cacheMaxAge: Config.duration("RECOMMENDATIONS_CACHE_MAX_AGE").pipe(Config.withDefault(Duration.minutes(10)))
  })
})

// -----------------------------------------------------------------------------
// Dependencies
// -----------------------------------------------------------------------------

/** The product: a per-attempt timeout, a short retry of outages, nothing else to fall back to. */
const productLoader = Effect.gen(function*() {
  const perAttempt = yield* Timeout.make({ operation: "product-db", limit: "1 second" })
  const policy = yield* Retry.make({
    name: "product-db",
    backoff: Retry.exponential({ base: "50 millis", cap: "200 millis" }),
    maxAttempts: 3,
    maxElapsed: "2 seconds"
  })
  return (id: number) =>
    Catalog.findProduct(id).pipe(
      Failure.lift(Catalog.verdictOf),
      Timeout.timeout(perAttempt),
      Retry.retry(policy),
      Fallback.critical({ operation: "product-db" })
    )
})

/** Recommendations shown on a page. */
const SHOWN = 3
/** Popular products kept for the last resort: enough to show {@link SHOWN} besides the page's own. */
const POPULAR_KEPT = SHOWN + 1

/** Recommendations: the resilient client, the last good answer per product, popular products as the last resort. */
const recommendationsLoader = (url: string, tuning: RecommendationsTuning) =>
  Effect.gen(function*() {
    const base = new URL(url)
    const client = yield* ResilientHttpClient.make({
      name: "recommendations",
      hosts: { [base.host]: {} },
      breaker: {
        trip: CircuitBreaker.consecutiveFailures(tuning.breakerFailures ?? 5),
        openDuration: tuning.breakerOpenDuration ?? "10 seconds"
      },
      bulkhead: { maxConcurrent: 32, maxQueued: 64, maxWait: "200 millis" },
      retry: { maxAttempts: 2, backoff: Retry.exponential({ base: "50 millis", cap: "200 millis" }) },
      attemptTimeout: tuning.attemptTimeout ?? "300 millis",
      timeout: tuning.timeout ?? "1 second"
    })
    const lastGood = yield* Fallback.memoryCache<ReadonlyArray<Catalog.Item>>({ capacity: 10_000 })

    // The last resort must not fail: popular products are read at start (the page does not start without them)
    // and refreshed in the background, keeping the previous list when the database does not answer.
    const popular = yield* Ref.make(yield* Catalog.popularProducts(POPULAR_KEPT))
    yield* Catalog.popularProducts(POPULAR_KEPT).pipe(
      Effect.flatMap((items) => Ref.set(popular, items)),
      Effect.catchAll((error) => Effect.logWarning(`popular products not refreshed: ${error.message}`)),
      Effect.repeat(Schedule.spaced(tuning.popularRefresh ?? "30 seconds")),
      Effect.delay(tuning.popularRefresh ?? "30 seconds"),
      Effect.forkScoped
    )

    const load = (id: number) =>
      client.get(new URL(`/recommendations/${id}`, base).toString()).pipe(
        Effect.flatMap(HttpClientResponse.schemaBodyJson(RecommendationList)),
        Effect.map((list) => list.items),
        Fallback.optional({
          operation: "recommendations",
          cache: { store: lastGood, key: String(id), maxAge: tuning.cacheMaxAge ?? "10 minutes" },
          // The most popular products but the one on the page.
          default: Effect.map(Ref.get(popular), (items) => items.filter((item) => item.id !== id).slice(0, SHOWN))
        })
      )

    const breakerState = Effect.map(client.hosts, (hosts) =>
      Option.match(
        Option.flatMap(Option.fromNullable(hosts[0]), (host) => host.breaker),
        {
          onNone: () => "unused",
          onSome: (state) => state.replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase()
        }
      ))

    return { load, breakerState }
  })

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

const problem = (status: number, title: string, detail: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.unsafeJson(
    { type: "about:blank", title, status, detail },
    { status, contentType: "application/problem+json", headers }
  )

const describe = (error: unknown): string =>
  error instanceof Error && error.message !== "" ? error.message : String(error)

/** The recommendations part of the page: which source answered, and how stale it is. */
const recommendationsView = (answer: Fallback.Answer<ReadonlyArray<Catalog.Item>, unknown>) => ({
  source: answer.source,
  // Anything but the live service is not this visitor's fresh recommendations.
  stale: !Fallback.isPrimary(answer),
  items: answer.value,
  ...(Fallback.isStale(answer)
    ? {
      storedAt: DateTime.formatIso(answer.storedAt),
      ageSeconds: Math.round(Duration.toMillis(answer.age) / 100) / 10
    }
    : {}),
  ...(Fallback.isDegraded(answer) ? { reason: describe(answer.cause) } : {})
})

const ProductId = Schema.Struct({ id: Schema.NumberFromString.pipe(Schema.int(), Schema.positive()) })

const makeRouter = (dependencies: {
  readonly product: Effect.Effect.Success<typeof productLoader>
  readonly recommendations: Effect.Effect.Success<ReturnType<typeof recommendationsLoader>>
  readonly database: Database.DatabaseInfo
}) => {
  const productPage = Effect.gen(function*() {
    const params = yield* Effect.either(HttpRouter.schemaPathParams(ProductId))
    if (params._tag === "Left") return problem(404, "Not Found", "Product ids are positive integers.")
    const { id } = params.right
    const page = yield* Fallback.all({
      product: dependencies.product(id),
      recommendations: dependencies.recommendations.load(id)
    })
    if (Option.isNone(page.product.value)) return problem(404, "Not Found", `No product ${id}.`)
    const degraded = Fallback.degraded(page)
    return HttpServerResponse.unsafeJson(
      { product: page.product.value.value, recommendations: recommendationsView(page.recommendations), degraded },
      { headers: degraded.length === 0 ? {} : { "x-degraded": degraded.join(", ") } }
    )
  }).pipe(
    Effect.catchTags({
      DependencyUnavailableError: (error) =>
        Effect.as(
          Effect.logWarning(error.message),
          problem(503, "Service Unavailable", error.message, { "retry-after": "5" })
        ),
      // Falls through to DependencyUnavailableError above; listed because the type says it may arrive.
      RetriesExhausted: (error) => Effect.succeed(problem(503, "Service Unavailable", error.message)),
      TerminalError: (error) =>
        Effect.as(
          Effect.logError(`product query failed: ${error.message}`),
          problem(500, "Internal Server Error", "The product could not be read.")
        )
    })
  )

  const healthz = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const answered = yield* sql`SELECT 1 AS ok`.pipe(Effect.timeout("2 seconds"), Effect.isSuccess)
    const recommendations = yield* dependencies.recommendations.breakerState
    const database = dependencies.database.embedded ? "embedded" : "server"
    return answered
      ? HttpServerResponse.unsafeJson({ status: "ok", database, recommendationsBreaker: recommendations })
      : HttpServerResponse.unsafeJson(
        { status: "unavailable", database: "not answering", recommendationsBreaker: recommendations },
        { status: 503 }
      )
  })

  return HttpRouter.empty.pipe(
    HttpRouter.get("/products/:id", productPage),
    HttpRouter.get("/healthz", healthz),
    PrometheusMetrics.route()
  )
}

// -----------------------------------------------------------------------------
// Start
// -----------------------------------------------------------------------------

/**
 * Starts the page for the life of the scope: database (catalogue created and
 * seeded), the recommendations client, and the HTTP server.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { startProductPage } from "./App.js"
 * import { startRecommendations } from "./Recommendations.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const recommendations = yield* startRecommendations()
 *   const page = yield* startProductPage({ recommendationsUrl: recommendations.url })
 *   yield* Effect.log(`product page at ${page.url}/products/1`)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const startProductPage = (
  options: ProductPageOptions
): Effect.Effect<ProductPageHandle, ProductPageStartError, Scope.Scope> =>
  Effect.gen(function*() {
    const host = options.host ?? "127.0.0.1"
    const AppLive = Layer.mergeAll(
      Layer.effectDiscard(Effect.zipRight(Catalog.createTable, Catalog.insertSeed)),
      PrometheusMetrics.layer(),
      NodeHttpServer.layer(() => createServer(), { port: options.port ?? 0, host }),
      FetchHttpClient.layer
    ).pipe(Layer.provideMerge(Database.layer({ url: options.databaseUrl })))
    const context = yield* Layer.build(AppLive).pipe(Effect.mapError((cause) => new ProductPageStartError({ cause })))

    return yield* Effect.gen(function*() {
      const database = yield* Database.Database
      const product = yield* productLoader
      const recommendations = yield* recommendationsLoader(options.recommendationsUrl, options.recommendations ?? {})
      yield* HttpServer.serveEffect(makeRouter({ product, recommendations, database }))
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") {
        return yield* new ProductPageStartError({ cause: "the HTTP server is not on a TCP address" })
      }
      return {
        url: `http://${host}:${address.port}`,
        recommendationsUrl: options.recommendationsUrl,
        embeddedDatabase: database.embedded
      }
    }).pipe(
      Effect.provide(context),
      Effect.mapError((cause) => cause instanceof ProductPageStartError ? cause : new ProductPageStartError({ cause }))
    )
  })
