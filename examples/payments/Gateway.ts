/**
 * A simulated payment gateway: a separate HTTP server on 127.0.0.1 that the
 * payments service reaches through `GATEWAY_URL`, so a real gateway can take
 * its place by configuration. Faults are switched on over HTTP
 * (`PUT /admin/faults`), which is how the demo and the tests break it.
 *
 * It does **not** deduplicate: every charge request that gets past the faults
 * is a new charge, recorded with the `Idempotency-Key` it carried. A double
 * charge by the service is therefore visible in `GET /v1/charges`.
 *
 * | fault | effect on `POST /v1/charges` | charged? |
 * |---|---|---|
 * | `outage` | the connection is dropped without an answer (also for `GET /v1/charges`) | no |
 * | `errorRate` | that share of requests answers 503 | no |
 * | `timeoutRate` | that share of requests never answers (until the client gives up) | no |
 * | `latencyMs` | the charge is made at once, the answer comes `latencyMs` later | **yes** |
 *
 * `latencyMs` longer than the client's timeout is the "timed out, but charged"
 * case the service must reconcile rather than charge again.
 *
 * Run it alone: `npx tsx --conditions=bulwark-source examples/payments/Gateway.ts` (port from
 * `GATEWAY_PORT`, unset: any free port); it prints its URL.
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

/**
 * The faults in force.
 *
 * @since 0.1.0
 * @category Models
 */
export class Faults extends Schema.Class<Faults>("Faults")({
  outage: Schema.Boolean,
  errorRate: Schema.Number.pipe(Schema.between(0, 1)),
  timeoutRate: Schema.Number.pipe(Schema.between(0, 1)),
  latencyMs: Schema.Number.pipe(Schema.int(), Schema.between(0, 600_000))
}) {}

/**
 * No faults.
 *
 * @since 0.1.0
 * @category Constants
 */
export const healthy: Faults = Faults.make({ outage: false, errorRate: 0, timeoutRate: 0, latencyMs: 0 })

/**
 * What `PUT /admin/faults` takes: any subset of the faults.
 *
 * @since 0.1.0
 * @category Models
 */
export const FaultsUpdate = Schema.partialWith(Schema.Struct(Faults.fields), { exact: true })

/**
 * The body of `POST /v1/charges`.
 *
 * @since 0.1.0
 * @category Models
 */
export const ChargeRequest = Schema.Struct({
  paymentId: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(128)),
  amount: Schema.Number.pipe(Schema.int(), Schema.positive()),
  currency: Schema.String.pipe(Schema.pattern(/^[A-Z]{3}$/))
})

/**
 * One charge the gateway made.
 *
 * @since 0.1.0
 * @category Models
 */
export const Charge = Schema.Struct({
  chargeId: Schema.String,
  paymentId: Schema.String,
  idempotencyKey: Schema.NullOr(Schema.String),
  amount: Schema.Number,
  currency: Schema.String,
  at: Schema.String
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Charge = typeof Charge.Type

/**
 * The answer of `GET /v1/charges`.
 *
 * @since 0.1.0
 * @category Models
 */
export const ChargeList = Schema.Struct({ charges: Schema.Array(Charge), total: Schema.Number })

/**
 * The answer of `GET /admin/stats`: charge requests received, charges made,
 * and requests that got a fault or a 400 instead.
 *
 * @since 0.1.0
 * @category Models
 */
export const Stats = Schema.Struct({ requests: Schema.Number, charged: Schema.Number, failed: Schema.Number })

/**
 * A running gateway.
 *
 * @since 0.1.0
 * @category Models
 */
export interface GatewayHandle {
  /** `http://127.0.0.1:<port>` */
  readonly url: string
  readonly port: number
}

/**
 * The gateway's HTTP server could not listen.
 *
 * @since 0.1.0
 * @category Errors
 */
export class GatewayStartError extends Data.TaggedError("GatewayStartError")<{ readonly cause: unknown }> {
  override get message(): string {
    return `The simulated gateway could not start: ${String(this.cause)}`
  }
}

const problem = (status: number, detail: string) =>
  HttpServerResponse.unsafeJson({ title: "gateway error", status, detail }, { status })

const makeApp = Effect.gen(function*() {
  const faults = yield* Ref.make(healthy)
  const charges = yield* Ref.make<ReadonlyArray<Charge>>([])
  const stats = yield* Ref.make({ requests: 0, charged: 0, failed: 0 })
  let sequence = 0

  const failed = Ref.update(stats, (s) => ({ ...s, failed: s.failed + 1 }))

  /** An outage: the connection drops without a word, the way an unreachable host looks to a client. */
  const dropConnection = Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) =>
    Effect.sync(() => {
      NodeHttpServerRequest.toIncomingMessage(request).socket.destroy()
      return HttpServerResponse.empty({ status: 503 })
    }))

  const record = (request: typeof ChargeRequest.Type, idempotencyKey: string | undefined) =>
    Effect.gen(function*() {
      sequence += 1
      const charge: Charge = {
        chargeId: `ch_${String(sequence).padStart(6, "0")}`,
        paymentId: request.paymentId,
        idempotencyKey: idempotencyKey ?? null,
        amount: request.amount,
        currency: request.currency,
        at: new Date().toISOString()
      }
      yield* Ref.update(charges, (all) => [...all, charge])
      yield* Ref.update(stats, (s) => ({ ...s, charged: s.charged + 1 }))
      return charge
    })

  const charge = Effect.gen(function*() {
    yield* Ref.update(stats, (s) => ({ ...s, requests: s.requests + 1 }))
    const current = yield* Ref.get(faults)
    if (current.outage) return yield* Effect.zipRight(failed, dropConnection)
    if (current.errorRate > 0 && (yield* Random.next) < current.errorRate) {
      return yield* Effect.as(failed, problem(503, "the gateway is temporarily unavailable"))
    }
    if (current.timeoutRate > 0 && (yield* Random.next) < current.timeoutRate) {
      // Never answers: the client's timeout ends it (and the interruption of this handler).
      return yield* Effect.zipRight(failed, Effect.never)
    }
    const request = yield* HttpServerRequest.HttpServerRequest
    const body = yield* Effect.either(HttpServerRequest.schemaBodyJson(ChargeRequest))
    if (body._tag === "Left") return yield* Effect.as(failed, problem(400, body.left.message))
    // The charge is made before the (slow) answer, and survives the client hanging up.
    const made = yield* Effect.uninterruptible(record(body.right, request.headers["idempotency-key"]))
    if (current.latencyMs > 0) yield* Effect.sleep(current.latencyMs)
    return HttpServerResponse.unsafeJson({ chargeId: made.chargeId, paymentId: made.paymentId }, { status: 201 })
  })

  const list = Effect.gen(function*() {
    if ((yield* Ref.get(faults)).outage) return yield* dropConnection
    const query = yield* HttpServerRequest.schemaSearchParams(
      Schema.Struct({ paymentId: Schema.optional(Schema.String) })
    ).pipe(Effect.orElseSucceed(() => ({ paymentId: undefined })))
    const all = yield* Ref.get(charges)
    const selected = query.paymentId === undefined ? all : all.filter((c) => c.paymentId === query.paymentId)
    return HttpServerResponse.unsafeJson({ charges: selected, total: selected.length })
  })

  const putFaults = Effect.gen(function*() {
    const update = yield* Effect.either(HttpServerRequest.schemaBodyJson(FaultsUpdate))
    if (update._tag === "Left") return problem(400, update.left.message)
    const next = yield* Ref.updateAndGet(faults, (current) => Faults.make({ ...current, ...update.right }))
    yield* Effect.logInfo(`gateway faults: ${JSON.stringify(next)}`)
    return HttpServerResponse.unsafeJson(next)
  })

  const reset = Effect.gen(function*() {
    yield* Ref.set(faults, healthy)
    yield* Ref.set(charges, [])
    yield* Ref.set(stats, { requests: 0, charged: 0, failed: 0 })
    return HttpServerResponse.unsafeJson({ reset: true })
  })

  return HttpRouter.empty.pipe(
    HttpRouter.post("/v1/charges", charge),
    HttpRouter.get("/v1/charges", list),
    HttpRouter.get("/admin/faults", Effect.map(Ref.get(faults), (f) => HttpServerResponse.unsafeJson(f))),
    HttpRouter.put("/admin/faults", putFaults),
    HttpRouter.get("/admin/stats", Effect.map(Ref.get(stats), (s) => HttpServerResponse.unsafeJson(s))),
    HttpRouter.post("/admin/reset", reset),
    HttpRouter.get("/healthz", HttpServerResponse.unsafeJson({ status: "ok" }))
  )
})

/**
 * Options of {@link startGateway}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface GatewayOptions {
  /** Default 0: any free port. */
  readonly port?: number
}

/**
 * Starts the simulated gateway on 127.0.0.1 for the life of the scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { startGateway } from "./Gateway.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const gateway = yield* startGateway()
 *   yield* Effect.log(`gateway at ${gateway.url}`)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const startGateway = (
  options: GatewayOptions = {}
): Effect.Effect<GatewayHandle, GatewayStartError, Scope.Scope> =>
  Effect.gen(function*() {
    const app = yield* makeApp
    const server = yield* NodeHttpServer.make(() => createServer(), { port: options.port ?? 0, host: "127.0.0.1" })
      .pipe(Effect.mapError((cause) => new GatewayStartError({ cause })))
    yield* HttpServer.serveEffect(app).pipe(
      Effect.provideService(HttpServer.HttpServer, server)
    )
    const address = server.address
    if (address._tag !== "TcpAddress") {
      return yield* new GatewayStartError({ cause: "the server is not on a TCP address" })
    }
    return { url: `http://127.0.0.1:${address.port}`, port: address.port }
  })

const isMain = process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href

if (isMain) {
  const main = Effect.gen(function*() {
    const port = yield* Config.option(Config.port("GATEWAY_PORT"))
    const gateway = yield* startGateway(Option.isSome(port) ? { port: port.value } : {})
    yield* Effect.sync(() => process.stdout.write(`gateway listening on ${gateway.url}\n`))
    return yield* Effect.never
  })
  NodeRuntime.runMain(Effect.scoped(main))
}
