/**
 * The payments service: an `@effect/platform` HTTP server on PostgreSQL
 * (embedded PGlite unless `DATABASE_URL` is set), charging a payment gateway
 * through `GatewayClient` (ResilientHttpClient: per-host breaker, bulkhead,
 * attempt timeout; Bulwark retry policies), with durable jobs for pending
 * charges, confirmation emails and webhooks, and a dead-letter queue.
 *
 * | route | what |
 * |---|---|
 * | `POST /payments` | `Idempotency-Key` required. 201 charged, 202 pending (queued), 402 declined, 400 invalid |
 * | `GET /payments/:id` | the payment now: `charged`, `pending`, `failed` or `dead_lettered` |
 * | `GET /metrics` | Prometheus text: Bulwark's metrics |
 * | `GET /healthz` | 200 when the database answers, else 503 |
 * | `GET /admin/breakers` | the gateway breaker's state |
 * | `POST /admin/breakers/isolate`, `/reset` | force the gateway breaker open / closed |
 * | `GET /admin/dead-letters` | dead-letter entries (`?status=all`, `?queue=`), and the pending depth |
 * | `POST /admin/dead-letters/:id/replay` | replay an entry (optional body `{ "payload": … }` to fix it) |
 * | `POST /admin/dead-letters/:id/discard` | drop an entry |
 * | `GET /admin/summary` | payments per status, queue counts, breakers: one call for dashboards |
 *
 * @since 0.1.0
 */
import * as AdaptiveConcurrency from "@bulwark/resilience/AdaptiveConcurrency"
import * as AdaptiveConcurrencyHttp from "@bulwark/resilience/AdaptiveConcurrencyHttp"
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as IdempotencyHttp from "@bulwark/resilience/IdempotencyHttp"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as Database from "../shared/Database.js"
import { quietListenerWarnings } from "../shared/EmbeddedPostgres.js"
import * as GatewayClient from "./GatewayClient.js"
import * as Jobs from "./Jobs.js"
import * as Payments from "./Payments.js"

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/**
 * Options of {@link startPayments}. Every tuning knob has a default.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PaymentsOptions {
  /** The gateway (`GATEWAY_URL`). */
  readonly gatewayUrl: string
  /** A PostgreSQL server (`DATABASE_URL`). Default: an embedded PGlite. */
  readonly databaseUrl?: string | Redacted.Redacted<string> | undefined
  /** Pool size on a server (`DATABASE_POOL_SIZE`). Default 10; the embedded database always uses one connection. */
  readonly databasePoolSize?: number
  /** Default 0: any free port. */
  readonly port?: number
  /** Default 127.0.0.1. */
  readonly host?: string
  readonly gateway?: Omit<GatewayClient.GatewayClientOptions, "url">
  /** Queue tuning; the poll interval defaults to 250 ms embedded, 1 s on a server. */
  readonly queues?: Partial<Jobs.QueueTuning>
  readonly charge?: Partial<Payments.ChargeTuning>
  /** How often pending payments without a job are looked for. Default 10 seconds. */
  readonly sweepInterval?: Duration.DurationInput
  /** How often queue depths are read into the metrics. Default 2 seconds. */
  readonly metricsInterval?: Duration.DurationInput
  /**
   * The adaptive concurrency limit in front of `POST /payments` (`LOAD_SHEDDING`): `false` turns it off, an object
   * tunes it. Default on: Vegas from 32 concurrent requests, between 8 and 512, over 250 ms windows.
   */
  readonly loadShedding?: boolean | Partial<Pick<AdaptiveConcurrency.AdaptiveConcurrency.Options, LimitOption>>
}

type LimitOption = "algorithm" | "initialLimit" | "minLimit" | "maxLimit" | "window" | "minSamples"

/**
 * A running payments service.
 *
 * @since 0.1.0
 * @category Models
 */
export interface PaymentsHandle {
  /** `http://<host>:<port>` */
  readonly url: string
  readonly gatewayUrl: string
  /** Whether it runs on the embedded PGlite. */
  readonly embeddedDatabase: boolean
}

/**
 * The service could not start: its database, its options, or its port.
 *
 * @since 0.1.0
 * @category Errors
 */
export class PaymentsStartError extends Data.TaggedError("PaymentsStartError")<{ readonly cause: unknown }> {
  override get message(): string {
    return `The payments service could not start: ${
      this.cause instanceof Error ? this.cause.message : String(this.cause)
    }`
  }
}

const integerAtLeast = (name: string, min: number, fallback: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `${name} must be an integer ≥ ${min}`, validation: (n) => n >= min }),
    Config.withDefault(fallback)
  )

/**
 * Everything {@link startPayments} takes, from the environment:
 *
 * | variable | default | what |
 * |---|---|---|
 * | `GATEWAY_URL` | (none: `main.ts` starts the simulated gateway) | the payment gateway |
 * | `DATABASE_URL` | (none: embedded PGlite) | a PostgreSQL server |
 * | `DATABASE_POOL_SIZE` | 10 | connections to that server |
 * | `PORT` / `HOST` | 3000 / 127.0.0.1 | where the service listens (`PORT=0`: any free port) |
 * | `GATEWAY_ATTEMPT_TIMEOUT` | 2 seconds | per gateway request |
 * | `GATEWAY_CHARGE_ATTEMPTS` | 3 | attempts per charge call (provably uncharged failures only) |
 * | `BREAKER_FAILURES` / `BREAKER_OPEN_DURATION` | 5 / 10 seconds | gateway breaker trip and open time |
 * | `BULKHEAD_MAX_CONCURRENT` / `BULKHEAD_MAX_QUEUED` | 16 / 32 | gateway bulkhead |
 * | `JOB_POLL_INTERVAL` | 250 millis embedded, 1 second on a server | idle polling of the workers |
 * | `CHARGE_RETRY_BASE` / `CHARGE_RETRY_CAP` / `CHARGE_MAX_ATTEMPTS` | 1 second / 10 seconds / 20 | `charge-payment` backoff |
 * | `NOTIFICATION_MAX_ATTEMPTS` | 3 | email and webhook attempts |
 * | `RECONCILE_DELAY` | 1 second | wait before reconciling an unknown outcome |
 * | `LOAD_SHEDDING` | true | the adaptive concurrency limit on `POST /payments` (503 + `Retry-After` beyond it) |
 *
 * @since 0.1.0
 * @category Configuration
 */
export const configFromEnv: Config.Config<
  Omit<PaymentsOptions, "gatewayUrl"> & {
    readonly gatewayUrl: Option.Option<string>
  }
> = Config.all({
  gatewayUrl: Config.option(
    Config.string("GATEWAY_URL").pipe(
      Config.validate({ message: "GATEWAY_URL must be an http(s) URL", validation: (url) => /^https?:\/\//.test(url) })
    )
  ),
  databaseUrl: Config.option(Config.redacted("DATABASE_URL")).pipe(Config.map(Option.getOrUndefined)),
  databasePoolSize: integerAtLeast("DATABASE_POOL_SIZE", 1, 10),
  port: Config.integer("PORT").pipe(
    Config.validate({ message: "PORT must be 0–65535", validation: (n) => n >= 0 && n <= 65_535 }),
    Config.withDefault(3000)
  ),
  host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1")),
  gateway: Config.all({
    attemptTimeout: Config.duration("GATEWAY_ATTEMPT_TIMEOUT").pipe(Config.withDefault(Duration.seconds(2))),
    chargeAttempts: integerAtLeast("GATEWAY_CHARGE_ATTEMPTS", 1, 3),
    breakerFailures: integerAtLeast("BREAKER_FAILURES", 1, 5),
    breakerOpenDuration: Config.duration("BREAKER_OPEN_DURATION").pipe(Config.withDefault(Duration.seconds(10))),
    maxConcurrent: integerAtLeast("BULKHEAD_MAX_CONCURRENT", 1, 16),
    maxQueued: integerAtLeast("BULKHEAD_MAX_QUEUED", 0, 32)
  }),
  queues: Config.all({
    pollInterval: Config.option(Config.duration("JOB_POLL_INTERVAL")),
    chargeRetryBase: Config.duration("CHARGE_RETRY_BASE").pipe(Config.withDefault(Duration.seconds(1))),
    chargeRetryCap: Config.duration("CHARGE_RETRY_CAP").pipe(Config.withDefault(Duration.seconds(10))),
    chargeMaxAttempts: integerAtLeast("CHARGE_MAX_ATTEMPTS", 1, 20),
    notificationMaxAttempts: integerAtLeast("NOTIFICATION_MAX_ATTEMPTS", 1, 3)
  }).pipe(
    Config.map(({ pollInterval, ...rest }) =>
      Option.match(pollInterval, { onNone: () => rest, onSome: (interval) => ({ ...rest, pollInterval: interval }) })
    )
  ),
  charge: Config.all({
    reconcileDelay: Config.duration("RECONCILE_DELAY").pipe(Config.withDefault(Duration.seconds(1)))
  }),
  loadShedding: Config.boolean("LOAD_SHEDDING").pipe(Config.withDefault(true))
})

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

const problem = (status: number, title: string, detail: string) =>
  HttpServerResponse.unsafeJson(
    { type: "about:blank", title, status, detail },
    { status, contentType: "application/problem+json" }
  )

const view = (payment: Payments.Payment) => ({
  id: payment.id,
  status: payment.status,
  amount: payment.amount,
  currency: payment.currency,
  customer: payment.customer,
  ...(payment.charge_id === null ? {} : { chargeId: payment.charge_id }),
  attempts: payment.gateway_attempts,
  ...(payment.last_error === null || payment.status === "charged" ? {} : { lastError: payment.last_error }),
  ...(payment.charge_job_id === null ? {} : { chargeJobId: payment.charge_job_id }),
  createdAt: payment.created_at.toISOString()
})

const entryView = (entry: DeadLetter.Entry) => {
  const last = entry.errors[entry.errors.length - 1]
  return {
    id: entry.id,
    queue: entry.queue,
    kind: entry.kind,
    payload: entry.payload,
    attempts: entry.attempts,
    maxAttempts: entry.maxAttempts,
    reason: entry.reason,
    status: entry.status,
    lastError: last?.message ?? null,
    errorTag: last?.tag ?? null,
    enqueuedAt: entry.enqueuedAt.toISOString(),
    deadLetteredAt: entry.deadLetteredAt.toISOString(),
    ...Option.match(entry.replayedAs, { onNone: () => ({}), onSome: (job) => ({ replayedAs: job }) }),
    ...Option.match(entry.replayOf, { onNone: () => ({}), onSome: (id) => ({ replayOf: id }) })
  }
}

const Id = Schema.Struct({ id: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(64)) })
const DeadLetterQuery = Schema.Struct({
  status: Schema.optional(Schema.Literal("pending", "replayed", "discarded", "all")),
  queue: Schema.optional(Schema.String),
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.between(1, 10_000)))
})
const ReplayBody = Schema.parseJson(Schema.Struct({ payload: Schema.optional(Schema.Unknown) }))

/** Store and queue failures are transient: a 503 releases the idempotency key, so the client's retry runs again. */
const unavailable = (error: { readonly message: string }) =>
  Effect.as(
    Effect.logWarning(`request failed: ${error.message}`),
    problem(503, "Service Unavailable", "The payment store is unavailable; retry with the same Idempotency-Key.")
  )

const makeRouter = (settings: {
  readonly tuning: Payments.ChargeTuning
  readonly scope: Scope.Scope
  readonly limiter: AdaptiveConcurrency.AdaptiveConcurrency | undefined
}) => {
  /** Outermost on the route: a refused request is answered at once and claims no idempotency key. */
  const shed = <E, R>(app: Effect.Effect<HttpServerResponse.HttpServerResponse, E, R>) =>
    settings.limiter === undefined ? app : AdaptiveConcurrencyHttp.middleware(settings.limiter)(app)

  /** Runs a charge in the service's scope: a client hanging up does not abandon a charge halfway. */
  const detached = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
    Effect.flatMap(Effect.forkIn(effect, settings.scope), Fiber.join)

  const createPayment = Effect.gen(function*() {
    const execution = yield* IdempotencyHttp.CurrentExecution
    if (Option.isNone(execution)) return problem(400, "Bad Request", "An Idempotency-Key header is required.")
    const body = yield* Effect.either(HttpServerRequest.schemaBodyJson(Payments.PaymentRequest))
    if (body._tag === "Left") return problem(400, "Bad Request", `Invalid payment: ${body.left.message}`)
    const request = body.right
    // One payment per key of each account, as the idempotency keys themselves are (the partition is the account).
    const { key, partition } = execution.value
    const payment = yield* Payments.createOrFind(partition === "" ? key : `${partition}/${key}`, request)
    if (
      payment.amount !== request.amount || payment.currency !== request.currency ||
      payment.customer !== request.customer
    ) {
      // Only possible once the idempotency record expired: the key is taken by another payment for good.
      return problem(422, "Unprocessable Content", "This Idempotency-Key belongs to another payment.")
    }
    const result = yield* detached(Payments.chargePayment(payment.id, { tuning: settings.tuning, lastChance: false }))
    const location = { location: `/payments/${payment.id}` }
    switch (result._tag) {
      case "Charged":
        return HttpServerResponse.unsafeJson(view(result.payment), { status: 201, headers: location })
      case "Failed":
        return HttpServerResponse.unsafeJson(view(result.payment), { status: 402, headers: location })
      case "Pending":
      case "Busy": {
        const delay = result._tag === "Pending" ? result.retryAfter : Option.none()
        const job = yield* Payments.enqueueCharge(result.payment, delay)
        const current = Option.getOrElse(yield* Payments.find(payment.id), () => result.payment)
        return HttpServerResponse.unsafeJson(
          { ...view(current), status: "pending", chargeJobId: job.id },
          { status: 202, headers: location }
        )
      }
    }
  }).pipe(Effect.catchTags({ SqlError: unavailable, JobStoreError: unavailable }))

  const getPayment = Effect.gen(function*() {
    const { id } = yield* HttpRouter.schemaPathParams(Id)
    const payment = yield* Payments.find(id)
    return Option.match(payment, {
      onNone: () => problem(404, "Not Found", `No payment ${id}.`),
      onSome: (p) => HttpServerResponse.unsafeJson(view(p))
    })
  })

  const healthz = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const database = yield* Database.Database
    const answered = yield* sql`SELECT 1 AS ok`.pipe(Effect.timeout("2 seconds"), Effect.isSuccess)
    return answered
      ? HttpServerResponse.unsafeJson({ status: "ok", database: database.embedded ? "embedded" : "server" })
      : HttpServerResponse.unsafeJson({ status: "unavailable", database: "not answering" }, { status: 503 })
  })

  const breakers = Effect.map(
    Effect.flatMap(GatewayClient.GatewayClient, (gateway) => gateway.breakers),
    (list) => HttpServerResponse.unsafeJson(list)
  )

  const controlBreaker = (action: "isolate" | "reset") =>
    Effect.map(
      Effect.flatMap(GatewayClient.GatewayClient, (gateway) => gateway.controlBreaker(action)),
      (list) => HttpServerResponse.unsafeJson(list)
    )

  const deadLetterDepth = Effect.map(JobQueue.stats, (stats) => stats.reduce((sum, q) => sum + q.deadLetters, 0))

  /** Every matching entry, newest first, up to `limit` (default 1,000), read page by page. */
  const listDeadLetters = Effect.gen(function*() {
    const query = yield* HttpServerRequest.schemaSearchParams(DeadLetterQuery)
    const limit = query.limit ?? 1_000
    const filter = { status: query.status ?? "pending", ...(query.queue === undefined ? {} : { queue: query.queue }) }
    const entries: Array<DeadLetter.Entry> = []
    let cursor = Option.none<string>()
    do {
      const page = yield* DeadLetter.list({
        ...filter,
        limit: Math.min(limit - entries.length, 1_000),
        ...Option.match(cursor, { onNone: () => ({}), onSome: (next) => ({ cursor: next }) })
      })
      entries.push(...page.entries)
      cursor = page.next
    } while (Option.isSome(cursor) && entries.length < limit)
    return HttpServerResponse.unsafeJson({ items: entries.map(entryView), depth: yield* deadLetterDepth })
  }).pipe(
    Effect.catchTags({
      ParseError: (error) => Effect.succeed(problem(400, "Bad Request", error.message)),
      InvalidOptionsError: (error) => Effect.succeed(problem(400, "Bad Request", error.message))
    })
  )

  const replay = Effect.gen(function*() {
    const { id } = yield* HttpRouter.schemaPathParams(Id)
    const request = yield* HttpServerRequest.HttpServerRequest
    const text = yield* request.text
    const body = text.trim() === "" ? Option.none() : Option.some(yield* Schema.decodeUnknown(ReplayBody)(text))
    const payload = Option.flatMap(body, (b) => Option.fromNullable(b.payload))
    const replayed = yield* DeadLetter.replay(
      id,
      Option.match(payload, { onNone: () => ({}), onSome: (p) => ({ payload: p }) })
    )
    return HttpServerResponse.unsafeJson({
      id: replayed.id,
      queue: replayed.queue,
      job: replayed.job,
      created: replayed.created
    })
  }).pipe(
    Effect.catchTags({
      ParseError: (error) => Effect.succeed(problem(400, "Bad Request", error.message)),
      InvalidPayloadError: (error) => Effect.succeed(problem(400, "Bad Request", error.message)),
      DeadLetterNotFoundError: (error) => Effect.succeed(problem(404, "Not Found", error.message)),
      DeadLetterConflictError: (error) => Effect.succeed(problem(409, "Conflict", error.message))
    })
  )

  const discard = Effect.gen(function*() {
    const { id } = yield* HttpRouter.schemaPathParams(Id)
    const result = yield* DeadLetter.discard(id)
    return HttpServerResponse.unsafeJson({ id: result.id, outcome: result.outcome })
  }).pipe(
    Effect.catchTags({
      DeadLetterNotFoundError: (error) => Effect.succeed(problem(404, "Not Found", error.message)),
      DeadLetterConflictError: (error) => Effect.succeed(problem(409, "Conflict", error.message))
    })
  )

  const summary = Effect.gen(function*() {
    const gateway = yield* GatewayClient.GatewayClient
    const [payments, queues, breakerStates] = yield* Effect.all([
      Payments.countByStatus,
      JobQueue.stats,
      gateway.breakers
    ])
    return HttpServerResponse.unsafeJson({
      payments,
      queues: queues.map((q) => ({
        queue: q.queue,
        ready: q.ready,
        scheduled: q.scheduled,
        retrying: q.retrying,
        running: q.running,
        dead: q.deadLetters
      })),
      breakers: breakerStates
    })
  })

  return HttpRouter.empty.pipe(
    HttpRouter.post(
      "/payments",
      createPayment.pipe(
        IdempotencyHttp.middleware({
          scope: "POST /payments",
          // Keys belong to the caller. In production: the authenticated principal (the account of the API key); this
          // example has no authentication, so it trusts the account an authenticating gateway sets in x-account-id.
          partition: IdempotencyHttp.partitionByHeader("x-account-id")
        }),
        shed
      )
    ),
    HttpRouter.get("/payments/:id", getPayment),
    HttpRouter.get("/healthz", healthz),
    PrometheusMetrics.route(),
    HttpRouter.get("/admin/breakers", breakers),
    HttpRouter.post("/admin/breakers/isolate", controlBreaker("isolate")),
    HttpRouter.post("/admin/breakers/reset", controlBreaker("reset")),
    HttpRouter.get("/admin/dead-letters", listDeadLetters),
    HttpRouter.post("/admin/dead-letters/:id/replay", replay),
    HttpRouter.post("/admin/dead-letters/:id/discard", discard),
    HttpRouter.get("/admin/summary", summary)
  )
}

// -----------------------------------------------------------------------------
// Start
// -----------------------------------------------------------------------------

/**
 * Starts the service for the life of the scope: database (migrated), job
 * workers, the stalled-payment sweep, queue-depth metrics and the HTTP
 * server. Closing the scope shuts it down gracefully.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { startPayments } from "./App.js"
 * import { startGateway } from "./Gateway.js"
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   const gateway = yield* startGateway()
 *   const payments = yield* startPayments({ gatewayUrl: gateway.url })
 *   yield* Effect.log(`payments at ${payments.url}`)
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const startPayments = (
  options: PaymentsOptions
): Effect.Effect<PaymentsHandle, PaymentsStartError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const tuning: Payments.ChargeTuning = { ...Payments.defaultChargeTuning, ...options.charge }

    const DatabaseLive = Database.layer({ url: options.databaseUrl, maxConnections: options.databasePoolSize })
    const JobsLive = Layer.unwrapEffect(Effect.map(Database.Database, (database) =>
      SqlJobQueue.layer(Jobs.queueOptions({
        pollInterval: database.embedded ? "250 millis" : "1 second",
        chargeRetryBase: "1 second",
        chargeRetryCap: "10 seconds",
        chargeMaxAttempts: 20,
        notificationMaxAttempts: 3,
        ...options.queues
      }))))
    const AppLive = Layer.mergeAll(
      JobsLive,
      SqlIdempotencyStore.layer(),
      Layer.effectDiscard(Payments.ensureSchema),
      GatewayClient.layer({ url: options.gatewayUrl, ...options.gateway }).pipe(Layer.provide(FetchHttpClient.layer)),
      PrometheusMetrics.layer(),
      NodeHttpServer.layer(() => createServer(), { port: options.port ?? 0, host: options.host ?? "127.0.0.1" })
    ).pipe(Layer.provideMerge(DatabaseLive))

    const context = yield* Layer.build(AppLive).pipe(Effect.mapError((cause) => new PaymentsStartError({ cause })))
    return yield* Effect.gen(function*() {
      const database = yield* Database.Database
      if (database.embedded) yield* quietListenerWarnings
      yield* JobWorker.make({
        handlers: [Payments.chargeHandler(tuning), ...Payments.notificationHandlers],
        gracePeriod: "5 seconds"
      })
      yield* JobQueue.reportMetrics({ interval: options.metricsInterval ?? "2 seconds" })
      yield* Payments.sweepStalled(options.sweepInterval ?? "10 seconds")
      const shedding = options.loadShedding ?? true
      const limiter = shedding === false ? undefined : yield* AdaptiveConcurrency.make({
        name: "payments",
        algorithm: AdaptiveConcurrency.vegas(),
        initialLimit: 32,
        minLimit: 8,
        maxLimit: 512,
        window: "250 millis",
        ...(shedding === true ? {} : shedding)
      })
      yield* HttpServer.serveEffect(makeRouter({ tuning, scope, limiter }))
      const address = (yield* HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") {
        return yield* new PaymentsStartError({ cause: "the HTTP server is not on a TCP address" })
      }
      return {
        url: `http://${options.host ?? "127.0.0.1"}:${address.port}`,
        gatewayUrl: options.gatewayUrl,
        embeddedDatabase: database.embedded
      }
    }).pipe(
      Effect.provide(context),
      Effect.catchTags({
        InvalidOptionsError: (cause) => new PaymentsStartError({ cause }),
        UnknownQueueError: (cause) => new PaymentsStartError({ cause })
      })
    )
  })
