/**
 * The program the end-to-end test runs as a child process and points a real
 * Prometheus at. It uses the real primitives, continuously, so every metric
 * of the catalogue moves while Prometheus scrapes `/metrics`:
 *
 * - a ResilientHttpClient ("e2e-http") calling two local upstream servers: a
 *   healthy one (200s, a 503 + Retry-After every other call, a 404, a POST
 *   with an idempotency key, a slow route cut by the attempt timeout) and a
 *   broken one (always 500), whose per-host breaker opens and then rejects;
 * - a circuit breaker "e2e-payments" tripped by failures (it stays open: the
 *   breaker alert must fire for it) and "e2e-inventory", always closed (it must
 *   not);
 * - retry policies with and without a spent retry budget, a bulkhead whose only
 *   permit is held, two rate limiters, idempotent runs (executed, replayed,
 *   fingerprint mismatch);
 * - a job queue (memory backend) with a worker: email jobs succeed, fail once
 *   and are retried, or are poison and dead-lettered; some dead letters are
 *   replayed, some discarded. Queue "e2e-reports" never dead-letters (the DLQ
 *   alert must not fire for it).
 *
 * - a fallback chain ("e2e-quote") whose primary fails every other round and is
 *   then answered from its last-known-good cache; a chaos policy slows some of
 *   the inventory breaker's calls.
 *
 * Prints `READY <metrics port>` once `/metrics` is served; runs until killed.
 */
import * as AdaptiveConcurrency from "@bulwark/resilience/AdaptiveConcurrency"
import * as Bulkhead from "@bulwark/resilience/Bulkhead"
import * as Chaos from "@bulwark/resilience/Chaos"
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as Failure from "@bulwark/resilience/Failure"
import * as Fallback from "@bulwark/resilience/Fallback"
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as ResilientHttpClient from "@bulwark/resilience/ResilientHttpClient"
import * as Retry from "@bulwark/resilience/Retry"
import * as RetryBudget from "@bulwark/resilience/RetryBudget"
import * as Timeout from "@bulwark/resilience/Timeout"
import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"

const transient = () => new Failure.TransientError({ reason: "HttpStatus", message: "503 from upstream", status: 503 })
const terminal = () => new Failure.TerminalError({ reason: "HttpStatus", message: "422 from upstream", status: 422 })

/** Serves an app on 127.0.0.1, an ephemeral port, for as long as the program's scope; returns the port. */
const serve = <E, R>(app: HttpRouter.HttpRouter<E, R>) =>
  Effect.gen(function*() {
    const server = yield* Layer.build(NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" }))
    return yield* Effect.gen(function*() {
      yield* HttpServer.serveEffect(app)
      const address = (yield* HttpServer.HttpServer).address
      return address._tag === "TcpAddress" ? address.port : yield* Effect.dieMessage("expected a TCP address")
    }).pipe(Effect.provide(server))
  })

const upstreams = Effect.gen(function*() {
  let flaky = 0
  const healthy = yield* serve(
    HttpRouter.empty.pipe(
      HttpRouter.get("/ok", HttpServerResponse.text("ok")),
      HttpRouter.get(
        "/flaky",
        Effect.sync(() =>
          ++flaky % 2 === 1
            ? HttpServerResponse.text("busy", { status: 503, headers: { "retry-after": "0" } })
            : HttpServerResponse.text("ok")
        )
      ),
      HttpRouter.get("/missing", HttpServerResponse.text("no such item", { status: 404 })),
      HttpRouter.post("/charges", HttpServerResponse.text("created", { status: 201 })),
      HttpRouter.get("/slow", Effect.as(Effect.sleep("1 second"), HttpServerResponse.text("late")))
    )
  )
  const broken = yield* serve(HttpRouter.empty.pipe(HttpRouter.get("/down", HttpServerResponse.empty({ status: 500 }))))
  return { healthy: new URL(`http://127.0.0.1:${healthy}`), broken: new URL(`http://127.0.0.1:${broken}`) }
})

const Email = JobQueue.define({
  kind: "e2e-email",
  queue: "e2e-emails",
  payload: Schema.Struct({ n: Schema.Number, mode: Schema.Literal("ok", "flaky", "poison") })
})

const Report = JobQueue.define({
  kind: "e2e-report",
  queue: "e2e-reports",
  payload: Schema.Struct({ n: Schema.Number })
})

const JobsLive = JobQueue.layerMemory({
  queues: {
    "e2e-emails": {
      pollInterval: "20 millis",
      retry: { base: "10 millis", cap: "10 millis", jitter: 0, maxAttempts: 2 }
    },
    "e2e-reports": { pollInterval: "20 millis" }
  },
  jobs: [Email, Report]
})

const program = Effect.gen(function*() {
  const urls = yield* upstreams

  const http = yield* ResilientHttpClient.make({
    name: "e2e-http",
    // the healthy upstream's breaker must never open (the test counts open breakers), however slow this machine is
    hosts: {
      [urls.healthy.host]: { breaker: { trip: CircuitBreaker.consecutiveFailures(1_000) } },
      [urls.broken.host]: { breaker: { trip: CircuitBreaker.consecutiveFailures(3) } }
    },
    breaker: { openDuration: "10 minutes" },
    retry: { backoff: Retry.constant("5 millis"), jitter: "none", maxAttempts: 2 },
    attemptTimeout: "250 millis",
    timeout: "5 seconds"
  })

  // breakers: one tripped for good, one healthy
  const payments = yield* CircuitBreaker.make({
    name: "e2e-payments",
    trip: CircuitBreaker.consecutiveFailures(2),
    openDuration: "10 minutes"
  })
  for (let i = 0; i < 2; i++) yield* Effect.ignore(Effect.fail(transient()).pipe(CircuitBreaker.protect(payments)))
  const inventory = yield* CircuitBreaker.make({ name: "e2e-inventory" })
  // A chaos drill on the inventory calls: every other call is slowed (a real sleep; this program runs on live time).
  const drill = yield* Chaos.make({
    name: "e2e-chaos",
    strategies: [Chaos.latency({ rate: 0.5, latency: "1 millis" })]
  })

  // retries
  const policy = yield* Retry.make({ name: "e2e-retry", backoff: Retry.constant("1 millis"), jitter: "none" })
  const budget = yield* RetryBudget.make({ ratio: 0, minRetriesPerSecond: 0.1, window: "10 seconds" })
  const budgeted = yield* Retry.make({
    name: "e2e-budgeted",
    budget,
    backoff: Retry.constant("1 millis"),
    jitter: "none",
    maxAttempts: 5
  })

  // a bulkhead whose only permit is held for the program's life
  const bulkhead = yield* Bulkhead.make({ name: "e2e-reports-db", maxConcurrent: 1 })
  yield* Effect.forkScoped(Effect.never.pipe(Bulkhead.protect(bulkhead)))

  // an adaptive concurrency limit of one whose only slot is held for the program's life: every other call is shed
  const shedder = yield* AdaptiveConcurrency.make({ name: "e2e-shed", initialLimit: 1, minLimit: 1, maxLimit: 1 })
  yield* Effect.forkScoped(Effect.never.pipe(AdaptiveConcurrency.protect(shedder)))

  // a timeout that answers at its limit and leaves uninterruptible work to finish in the background
  const abandoning = yield* Timeout.make({ operation: "e2e-flush", limit: "5 millis", onUninterruptible: "abandon" })

  // rate limiters: one rejects, one makes callers wait
  const rejecting = yield* RateLimiter.make({
    name: "e2e-api",
    algorithm: RateLimiter.tokenBucket({ limit: 2, window: "1 second" })
  })
  const waiting = yield* RateLimiter.make({
    name: "e2e-api-wait",
    algorithm: RateLimiter.tokenBucket({ limit: 1, window: "20 millis" }),
    onExceeded: "wait",
    maxWait: "1 second"
  })

  // jobs
  yield* JobWorker.make({
    handlers: [
      JobWorker.handler(Email, (payload, job): Effect.Effect<void, Failure.TransientError | Failure.TerminalError> => {
        if (payload.mode === "flaky" && job.attempt === 1) return Effect.fail(transient())
        if (payload.mode === "poison") return Effect.fail(terminal())
        return Effect.sleep("5 millis")
      }),
      JobWorker.handler(Report, () => Effect.sleep("5 millis"))
    ]
  })
  yield* JobQueue.reportMetrics({ interval: "1 second" })

  // the metrics endpoint, last: once it answers, everything above exists
  const metricsPort = yield* serve(HttpRouter.empty.pipe(PrometheusMetrics.route())).pipe(
    Effect.provide(PrometheusMetrics.layer())
  )

  const idempotent = (key: string, fingerprint: string) =>
    Idempotency.run({
      scope: "POST /e2e-orders",
      partition: "tenant-1",
      key,
      fingerprint,
      success: Schema.Number,
      failure: Schema.Never
    })(() => Effect.succeed(42))

  const quotes = yield* Fallback.memoryCache<number>()
  const quote = (n: number) => {
    const primary: Effect.Effect<number, Failure.TransientError> = n % 2 === 0
      ? Effect.fail(transient())
      : Effect.succeed(n)
    return primary.pipe(Fallback.chain({ operation: "e2e-quote", cache: { store: quotes, maxAge: "1 hour" } }))
  }

  const round = (n: number) =>
    Effect.gen(function*() {
      // HTTP: every status the client labels (200, 201, 404, 503 then a retried 200, two attempt timeouts; 500 then
      // circuit_open on the broken host); the query string never reaches a label or a log
      yield* Effect.ignore(http.get(`${urls.healthy.origin}/slow`))
      yield* Effect.ignore(http.get(`${urls.healthy.origin}/ok?session=secret-${n}`))
      yield* Effect.ignore(http.get(`${urls.healthy.origin}/flaky`))
      yield* Effect.ignore(http.get(`${urls.healthy.origin}/missing`))
      yield* Effect.ignore(http.post(`${urls.healthy.origin}/charges`, { body: HttpBody.text(`{"n":${n}}`) }))
      yield* Effect.ignore(http.get(`${urls.broken.origin}/down`))

      yield* Effect.ignore(Effect.succeed("ok").pipe(CircuitBreaker.protect(payments)))
      yield* Effect.ignore(Effect.succeed("ok").pipe(Chaos.inject(drill), CircuitBreaker.protect(inventory)))

      let attempt = 0
      yield* Effect.ignore(Effect.succeed(1).pipe(Retry.retry(policy)))
      yield* Effect.ignore(
        Effect.suspend(() => (++attempt === 1 ? Effect.fail(transient()) : Effect.succeed(attempt))).pipe(
          Retry.retry(policy)
        )
      )
      yield* Effect.ignore(Effect.fail(transient()).pipe(Retry.retry(policy)))
      yield* Effect.ignore(Effect.fail(terminal()).pipe(Retry.retry(policy)))
      yield* Effect.ignore(Effect.fail(transient()).pipe(Retry.retry(budgeted)))

      yield* Effect.ignore(Effect.void.pipe(Bulkhead.protect(bulkhead)))
      yield* Effect.ignore(Effect.void.pipe(AdaptiveConcurrency.protect(shedder)))
      yield* Effect.ignore(Effect.uninterruptible(Effect.sleep("20 millis")).pipe(Timeout.timeout(abandoning)))

      for (let i = 0; i < 3; i++) yield* Effect.ignore(RateLimiter.consume(rejecting, "tenant-1"))
      yield* Effect.ignore(RateLimiter.consume(waiting, "tenant-1"))
      yield* Effect.ignore(RateLimiter.consume(waiting, "tenant-1"))

      yield* Effect.ignore(idempotent(`order-${n}`, "sha256:a"))
      yield* Effect.ignore(idempotent(`order-${n}`, "sha256:a"))
      yield* Effect.ignore(idempotent(`order-${n}`, "sha256:b"))

      yield* Effect.ignore(quote(n))

      yield* JobQueue.enqueueMany([
        JobQueue.job(Email, { n, mode: "ok" }),
        JobQueue.job(Email, { n, mode: "flaky" }),
        JobQueue.job(Email, { n, mode: "poison" }),
        JobQueue.job(Report, { n })
      ])
      if (n % 3 === 2) {
        const page = yield* DeadLetter.list({ queue: "e2e-emails", order: "oldest", limit: 2 })
        const [replay, discard] = page.entries
        if (replay !== undefined) yield* DeadLetter.replay(replay.id)
        if (discard !== undefined) yield* DeadLetter.discard(discard.id)
      }
    }).pipe(Effect.catchAllCause((cause) => Effect.logError("round failed", cause)))

  yield* Effect.sync(() => process.stdout.write(`READY ${metricsPort}\n`))
  let n = 0
  return yield* Effect.forever(Effect.zipRight(Effect.suspend(() => round(n++)), Effect.sleep("200 millis")))
}).pipe(
  Effect.scoped,
  Effect.provide(Layer.mergeAll(
    FetchHttpClient.layer,
    RateLimiter.layerMemory(),
    IdempotencyStore.layerMemory,
    JobsLive
  )),
  // the test reads stdout for READY; keep the program's own logs to errors
  Logger.withMinimumLogLevel(LogLevel.Error),
  Effect.tapErrorCause((cause) => Effect.sync(() => process.stderr.write(`e2e program failed: ${String(cause)}\n`)))
)

NodeRuntime.runMain(program)
