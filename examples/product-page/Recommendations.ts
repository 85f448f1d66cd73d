/**
 * A simulated recommendations service: a separate HTTP server on 127.0.0.1
 * that the product page reaches through `RECOMMENDATIONS_URL`, so a real one
 * can take its place by configuration. Faults are switched on over HTTP
 * (`PUT /admin/faults`), which is how you and the tests break it.
 *
 * | route | what |
 * |---|---|
 * | `GET /recommendations/:productId` | `{ "productId", "items": [{ "id", "name", "priceCents" }] }`; 404 for an unknown product |
 * | `GET /admin/faults`, `PUT /admin/faults` | the faults in force; `PUT` takes any subset of them |
 * | `GET /admin/stats` | `{ "requests", "served", "failed" }` |
 * | `GET /healthz` | 200 `{ "status": "ok" }` (even during an outage: it is the switch) |
 *
 * | fault | effect on `GET /recommendations/:productId` |
 * |---|---|
 * | `outage` | the connection is dropped without an answer, the way an unreachable host looks |
 * | `errorRate` | that share of requests answers 500 |
 * | `latencyMs` | every answer comes that much later |
 *
 * Run it alone: `npx tsx --conditions=bulwark-source examples/product-page/Recommendations.ts` (port
 * from `RECOMMENDATIONS_PORT`, unset: any free port); it prints its URL.
 *
 * @since 0.1.0
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import * as Catalog from "./Catalog.js"

/**
 * The faults in force.
 *
 * @since 0.1.0
 * @category Models
 */
export class Faults extends Schema.Class<Faults>("Faults")({
  outage: Schema.Boolean,
  errorRate: Schema.Number.pipe(Schema.between(0, 1)),
  latencyMs: Schema.Number.pipe(Schema.int(), Schema.between(0, 600_000))
}) {}

/**
 * No faults.
 *
 * @since 0.1.0
 * @category Constants
 */
export const healthy: Faults = Faults.make({ outage: false, errorRate: 0, latencyMs: 0 })

/**
 * What `PUT /admin/faults` takes: any subset of the faults.
 *
 * @since 0.1.0
 * @category Models
 */
export const FaultsUpdate = Schema.partialWith(Schema.Struct(Faults.fields), { exact: true })

/**
 * The answer of `GET /recommendations/:productId`.
 *
 * @since 0.1.0
 * @category Models
 */
export const RecommendationList = Schema.Struct({ productId: Schema.Number, items: Schema.Array(Catalog.Item) })

/**
 * The answer of `GET /admin/stats`.
 *
 * @since 0.1.0
 * @category Models
 */
export const Stats = Schema.Struct({ requests: Schema.Number, served: Schema.Number, failed: Schema.Number })

/**
 * A running recommendations service.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecommendationsHandle {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
}

/**
 * The service's HTTP server could not listen.
 *
 * @since 0.1.0
 * @category Errors
 */
export class RecommendationsStartError extends Data.TaggedError("RecommendationsStartError")<{
  readonly cause: unknown
}> {
  override get message(): string {
    return `The simulated recommendations service could not start: ${String(this.cause)}`
  }
}

/**
 * "Customers who looked at this also looked at": three other products,
 * the same ones every time for a product.
 *
 * @since 0.1.0
 * @category Models
 */
export const recommendFor = (productId: number): Option.Option<ReadonlyArray<Catalog.Item>> => {
  const index = Catalog.seed.findIndex((p) => p.id === productId)
  if (index < 0) return Option.none()
  const size = Catalog.seed.length
  return Option.some(
    [1, 3, 5].map((step) => Catalog.seed[(index + step) % size]).filter((p) => p !== undefined).map((p) => ({
      id: p.id,
      name: p.name,
      priceCents: p.priceCents
    }))
  )
}

const problem = (status: number, detail: string) =>
  HttpServerResponse.unsafeJson({ title: "recommendations error", status, detail }, { status })

const ProductId = Schema.Struct({ productId: Schema.NumberFromString.pipe(Schema.int()) })

const makeApp = Effect.gen(function*() {
  const faults = yield* Ref.make(healthy)
  const stats = yield* Ref.make({ requests: 0, served: 0, failed: 0 })
  const failed = Ref.update(stats, (s) => ({ ...s, failed: s.failed + 1 }))

  /** An outage: the connection drops without a word. */
  const dropConnection = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.sync(() => {
      NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
      return HttpServerResponse.empty({ status: 503 })
    }))

  const recommend = Effect.gen(function*() {
    yield* Ref.update(stats, (s) => ({ ...s, requests: s.requests + 1 }))
    const current = yield* Ref.get(faults)
    if (current.latencyMs > 0) yield* Effect.sleep(current.latencyMs)
    if (current.outage) return yield* Effect.zipRight(failed, dropConnection)
    if (current.errorRate > 0 && (yield* Random.next) < current.errorRate) {
      return yield* Effect.as(failed, problem(500, "the recommender crashed"))
    }
    const params = yield* Effect.either(HttpRouter.schemaPathParams(ProductId))
    if (params._tag === "Left") return yield* Effect.as(failed, problem(404, "no such product"))
    const items = recommendFor(params.right.productId)
    if (Option.isNone(items)) return yield* Effect.as(failed, problem(404, "no such product"))
    yield* Ref.update(stats, (s) => ({ ...s, served: s.served + 1 }))
    return HttpServerResponse.unsafeJson({ productId: params.right.productId, items: items.value })
  })

  const putFaults = Effect.gen(function*() {
    const update = yield* Effect.either(HttpServerRequest.schemaBodyJson(FaultsUpdate))
    if (update._tag === "Left") return problem(400, update.left.message)
    const next = yield* Ref.updateAndGet(faults, (current) => Faults.make({ ...current, ...update.right }))
    yield* Effect.logInfo(`recommendations faults: ${JSON.stringify(next)}`)
    return HttpServerResponse.unsafeJson(next)
  })

  return HttpRouter.empty.pipe(
    HttpRouter.get("/recommendations/:productId", recommend),
    HttpRouter.get("/admin/faults", Effect.map(Ref.get(faults), (f) => HttpServerResponse.unsafeJson(f))),
    HttpRouter.put("/admin/faults", putFaults),
    HttpRouter.get("/admin/stats", Effect.map(Ref.get(stats), (s) => HttpServerResponse.unsafeJson(s))),
    HttpRouter.get("/healthz", HttpServerResponse.unsafeJson({ status: "ok" }))
  )
})

/**
 * Options of {@link startRecommendations}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface RecommendationsOptions {
  /** Default 0: any free port. */
  readonly port?: number
}

/**
 * Starts the simulated recommendations service on 127.0.0.1 for the life of the scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { startRecommendations } from "./Recommendations.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const recommendations = yield* startRecommendations()
 *   yield* Effect.log(`recommendations at ${recommendations.url}`)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const startRecommendations = (
  options: RecommendationsOptions = {}
): Effect.Effect<RecommendationsHandle, RecommendationsStartError, Scope.Scope> =>
  Effect.gen(function*() {
    const app = yield* makeApp
    const server = yield* NodeHttpServer.make(() => createServer(), { port: options.port ?? 0, host: "127.0.0.1" })
      .pipe(Effect.mapError((cause) => new RecommendationsStartError({ cause })))
    yield* HttpServer.serveEffect(app).pipe(Effect.provideService(HttpServer.HttpServer, server))
    const address = server.address
    if (address._tag !== "TcpAddress") {
      return yield* new RecommendationsStartError({ cause: "the server is not on a TCP address" })
    }
    return { url: `http://127.0.0.1:${address.port}`, port: address.port }
  })

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href

if (isMain) {
  const main = Effect.gen(function*() {
    const port = yield* Config.option(Config.port("RECOMMENDATIONS_PORT"))
    const started = yield* startRecommendations(Option.isSome(port) ? { port: port.value } : {})
    yield* Effect.sync(() => process.stdout.write(`recommendations listening on ${started.url}\n`))
    return yield* Effect.never
  })
  NodeRuntime.runMain(Effect.scoped(main))
}
