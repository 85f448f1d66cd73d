/**
 * A real program: real Bulwark primitives (circuit breaker, bulkhead, retry
 * with a budget, rate limiters, timeout, idempotency keys and a job queue with
 * a worker and its dead-letter queue, the last two on their in-memory
 * backends) run, then a real NodeHttpServer on
 * 127.0.0.1:0 serves `/metrics` through `PrometheusMetrics.route()` from a
 * prom-client registry that also holds the application's own metrics and
 * Node's default ones. The scrape must pass the real `promtool check metrics`,
 * and every metric the primitives emit must come out with its declared type,
 * help, exact label set and bounded label values.
 *
 * Real time is used (a 10 ms timeout, a 20 ms rate-limit wait, 1 ms retry
 * backoffs): the server and fetch run outside Effect's clock anyway.
 */
import * as AdaptiveConcurrency from "@bulwark/resilience/AdaptiveConcurrency"
import * as Bulkhead from "@bulwark/resilience/Bulkhead"
import * as Chaos from "@bulwark/resilience/Chaos"
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Failure from "@bulwark/resilience/Failure"
import * as Fallback from "@bulwark/resilience/Fallback"
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as PrometheusMetrics from "@bulwark/resilience/PrometheusMetrics"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as Retry from "@bulwark/resilience/Retry"
import * as RetryBudget from "@bulwark/resilience/RetryBudget"
import * as Timeout from "@bulwark/resilience/Timeout"
import { NodeHttpServer } from "@effect/platform-node"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { createServer } from "node:http"
import { collectDefaultMetrics, Counter, Registry } from "prom-client"
import { parse, type Sample } from "./support/exposition.js"
import { promtool } from "./support/promtool.js"

/**
 * Catalogue metrics this test cannot make a running program emit yet, and
 * why. The end-to-end Prometheus test covers them once their emitters exist.
 */
const NOT_DRIVEN_HERE: Readonly<Record<string, string>> = {
  http_client_requests_total: "the resilient HTTP client comes later",
  http_client_request_duration_seconds: "the resilient HTTP client comes later",
  bulwark_circuit_breaker_shared_store_up:
    "needs a RedisCircuitBreaker losing its Redis: proven in test/circuit-breaker/fleet.test.ts",
  bulwark_redis_config_errors_total: "needs a single-node client on a Redis Cluster: proven in " +
    "test/rate-limiter/redis-cluster.test.ts and test/idempotency/redis-cache-cluster.test.ts"
}

/** What option validation allows for a name label (internal/options.ts `name`). */
const NAME_VALUE = /^[A-Za-z0-9_.:/-]{1,128}$/
/** What idempotency allows for a scope: an operation name such as "POST /payments". */
const SCOPE_VALUE = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/
const boundOf = (label: string) => (label === "scope" ? SCOPE_VALUE : NAME_VALUE)

const transient = () => new Failure.TransientError({ reason: "HttpStatus", message: "503 from upstream", status: 503 })
const terminal = () => new Failure.TerminalError({ reason: "HttpStatus", message: "404 from upstream" })

/** Runs every primitive through its paths; returns a fiber holding the bulkhead's only permit. */
const drivePrimitives = Effect.gen(function*() {
  // circuit breaker: two failures open it, the next call is rejected
  const breaker = yield* CircuitBreaker.make({
    name: "obs-payments",
    trip: CircuitBreaker.consecutiveFailures(2),
    openDuration: "1 minute"
  })
  yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(breaker))
  for (let i = 0; i < 2; i++) yield* Effect.flip(Effect.fail(transient()).pipe(CircuitBreaker.protect(breaker)))
  const refused = yield* Effect.flip(Effect.succeed("never runs").pipe(CircuitBreaker.protect(breaker)))
  assert.strictEqual(refused._tag, "CircuitOpenError")

  // retry: first try, after a retry, exhausted, terminal, refused by the budget
  const policy = yield* Retry.make({
    name: "obs-retry",
    backoff: Retry.constant("1 millis"),
    jitter: "none",
    maxAttempts: 3
  })
  yield* Effect.succeed(1).pipe(Retry.retry(policy))
  const failures = yield* Ref.make(0)
  yield* Ref.updateAndGet(failures, (n) => n + 1).pipe(
    Effect.flatMap((n) => (n === 1 ? Effect.fail(transient()) : Effect.succeed(n))),
    Retry.retry(policy)
  )
  yield* Effect.flip(Effect.fail(transient()).pipe(Retry.retry(policy)))
  yield* Effect.flip(Effect.fail(terminal()).pipe(Retry.retry(policy)))
  const budget = yield* RetryBudget.make({ ratio: 0, minRetriesPerSecond: 0.1, window: "10 seconds" })
  const budgeted = yield* Retry.make({
    name: "obs-budgeted",
    budget,
    backoff: Retry.constant("1 millis"),
    jitter: "none",
    maxAttempts: 5
  })
  yield* Effect.flip(Effect.fail(transient()).pipe(Retry.retry(budgeted)))

  // timeout: a call that never answers
  const perCall = yield* Timeout.make({ operation: "obs-charge", limit: "10 millis" })
  yield* Effect.flip(Effect.never.pipe(Timeout.timeout(perCall)))
  // a timeout that abandons uninterruptible work: the fiber that ran it ends (and is joined) once the work has
  const abandoning = yield* Timeout.make({ operation: "obs-flush", limit: "10 millis", onUninterruptible: "abandon" })
  yield* Fiber.join(
    yield* Effect.fork(Effect.flip(
      Effect.uninterruptible(Effect.sleep("30 millis")).pipe(Timeout.timeout(abandoning))
    ))
  )

  // fallback: a primary that fails, answered by the default
  yield* Effect.fail(transient()).pipe(Fallback.chain({ operation: "obs-quote", default: 0 }))

  // chaos: a fault injected into every call
  const drill = yield* Chaos.make({ name: "obs-drill", strategies: [Chaos.fault({ rate: 1 })] })
  yield* Effect.flip(Effect.succeed("ok").pipe(Chaos.inject(drill)))

  // rate limiters: allowed then rejected; allowed then delayed
  const rejecting = yield* RateLimiter.make({
    name: "obs-api",
    algorithm: RateLimiter.tokenBucket({ limit: 1, window: "1 minute" })
  })
  yield* RateLimiter.consume(rejecting, "tenant-1")
  yield* Effect.flip(RateLimiter.consume(rejecting, "tenant-1"))
  const waiting = yield* RateLimiter.make({
    name: "obs-api-wait",
    algorithm: RateLimiter.tokenBucket({ limit: 1, window: "20 millis" }),
    onExceeded: "wait",
    maxWait: "1 second"
  })
  yield* RateLimiter.consume(waiting, "tenant-1")
  yield* RateLimiter.consume(waiting, "tenant-1")

  // idempotency: executed, replayed, the same key with another payload
  const idempotent = (fingerprint: string) =>
    Idempotency.run({
      scope: "POST /obs-orders",
      partition: "tenant-1",
      key: "order-key-1",
      fingerprint,
      success: Schema.Number,
      failure: Schema.Never
    })(() => Effect.succeed(42))
  yield* idempotent("sha256:a")
  yield* idempotent("sha256:a")
  const mismatch = yield* Effect.flip(idempotent("sha256:b"))
  assert.strictEqual(mismatch._tag, "IdempotencyMismatchError")

  // bulkhead: one permit, no queue; the permit stays held during the scrape
  const bulkhead = yield* Bulkhead.make({ name: "obs-inventory", maxConcurrent: 1 })
  const holding = yield* Deferred.make<void>()
  const holder = yield* Effect.fork(
    Deferred.succeed(holding, undefined).pipe(
      Effect.zipRight(Effect.never),
      Bulkhead.protect(bulkhead)
    )
  )
  yield* Deferred.await(holding)
  const full = yield* Effect.flip(Effect.void.pipe(Bulkhead.protect(bulkhead)))
  assert.strictEqual(full._tag, "BulkheadFullError")

  // adaptive concurrency: a limit of 1, held by one call while another is refused, then released
  const shedder = yield* AdaptiveConcurrency.make({ name: "obs-shed", initialLimit: 1, minLimit: 1, maxLimit: 1 })
  const running = yield* Deferred.make<void>()
  const held = yield* Effect.fork(
    Deferred.succeed(running, undefined).pipe(Effect.zipRight(Effect.never), AdaptiveConcurrency.protect(shedder))
  )
  yield* Deferred.await(running)
  const shed = yield* Effect.flip(Effect.void.pipe(AdaptiveConcurrency.protect(shedder)))
  assert.strictEqual(shed._tag, "ConcurrencyLimitError")
  yield* Fiber.interrupt(held)
  return holder
}).pipe(Effect.provide(Layer.merge(RateLimiter.layerMemory(), IdempotencyStore.layerMemory)))

const ObsEmail = JobQueue.define({
  kind: "obs-email",
  queue: "obs-emails",
  payload: Schema.Struct({ n: Schema.Number })
})

/**
 * The in-memory job queue: one job succeeds, one fails transiently once and
 * then succeeds, one fails terminally into the dead-letter queue; then the
 * depth gauges are read from the backend.
 */
const driveJobs = Effect.gen(function*() {
  let flaky = 0
  const worker = yield* JobWorker.make({
    handlers: [
      JobWorker.handler(ObsEmail, ({ n }): Effect.Effect<void, Failure.TransientError | Failure.TerminalError> => {
        if (n === 2 && ++flaky === 1) return Effect.fail(transient())
        return n === 3 ? Effect.fail(terminal()) : Effect.void
      })
    ]
  })
  yield* JobQueue.enqueueMany([1, 2, 3].map((n) => JobQueue.job(ObsEmail, { n })))
  const done = Effect.map(worker.stats, (stats) => stats.succeeded === 2 && stats.deadLettered === 1)
  yield* done.pipe(
    Effect.flatMap((finished) => (finished ? Effect.void : Effect.fail("running"))),
    Effect.retry(Schedule.spaced("10 millis").pipe(Schedule.upTo("10 seconds"))),
    Effect.orDieWith(() => new Error("the jobs did not finish in 10 seconds"))
  )
  yield* JobQueue.reportMetrics({ interval: "1 minute" })
  // the first depth read runs at once in a forked fiber
  yield* Effect.sleep("50 millis")
}).pipe(
  // The worker and the reporter stay in the caller's scope until the scrape: a process that stops reporting sets
  // its queue gauges to 0.
  Effect.provide(JobQueue.layerMemory({
    queues: {
      "obs-emails": {
        pollInterval: "10 millis",
        retry: { base: "10 millis", cap: "10 millis", jitter: 0, maxAttempts: 3 }
      }
    }
  }))
)

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })

const scrapeOverHttp = (registry: Registry) =>
  Effect.gen(function*() {
    const app = HttpRouter.empty.pipe(
      HttpRouter.get("/health", HttpServerResponse.text("ok")),
      PrometheusMetrics.route()
    )
    yield* HttpServer.serveEffect(app).pipe(Effect.provide(PrometheusMetrics.layer({ registry })))
    const address = (yield* HttpServer.HttpServer).address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return yield* Effect.promise(async () => {
      const response = await fetch(`http://127.0.0.1:${address.port}/metrics`)
      return { status: response.status, contentType: response.headers.get("content-type"), body: await response.text() }
    })
  }).pipe(Effect.provide(ServerLive), Effect.scoped)

const labelKeys = (sample: Sample) => Object.keys(sample.labels).sort()

describe("GET /metrics of a running program", () => {
  it.live(
    "passes promtool check metrics and carries every metric the primitives emit, as declared",
    () =>
      Effect.gen(function*() {
        const registry = new Registry()
        collectDefaultMetrics({ register: registry, prefix: "app_" })
        new Counter({ name: "app_orders_total", help: "Orders placed", registers: [registry] }).inc(7)

        yield* driveJobs
        const holder = yield* drivePrimitives
        const reply = yield* scrapeOverHttp(registry)
        yield* Fiber.interrupt(holder)

        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.contentType, "text/plain; version=0.0.4; charset=utf-8")

        // the real promtool, on the real scrape: its only complaints are about prom-client's own default metrics
        // (three gauges named *_total), never about Bulwark's or the application's
        const lint = promtool(["check", "metrics"], reply.body)
        const complaints = lint.output.split("\n").filter((line) => line.trim() !== "")
        assert.deepStrictEqual(complaints, [
          `app_nodejs_active_handles_total non-counter metrics should not have "_total" suffix`,
          `app_nodejs_active_requests_total non-counter metrics should not have "_total" suffix`,
          `app_nodejs_active_resources_total non-counter metrics should not have "_total" suffix`
        ])
        // and Bulwark's exposition alone passes with no complaint at all
        const bulwarkOnly = yield* PrometheusMetrics.scrape.pipe(Effect.provide(PrometheusMetrics.layer()))
        assert.include(bulwarkOnly, `bulwark_timeouts_total{operation="obs-charge"} 1`)
        const strict = promtool(["check", "metrics"], bulwarkOnly)
        assert.strictEqual(strict.code, 0, `promtool check metrics:\n${strict.output}`)
        assert.strictEqual(strict.output.trim(), "")

        const families = parse(reply.body)
        // beside the application's own metrics and Node's default ones
        assert.strictEqual(families.get("app_orders_total")?.samples[0]?.value, 7)
        assert.isDefined(families.get("app_process_cpu_user_seconds_total"))

        const proven: Array<string> = []
        for (const descriptor of Metrics.catalog) {
          const family = families.get(descriptor.name)
          assert.isDefined(family, `${descriptor.name} is registered in the bridge`)
          if (family === undefined) continue
          assert.strictEqual(family.type, descriptor.type, descriptor.name)
          assert.strictEqual(family.help, descriptor.help, descriptor.name)
          if (family.samples.length === 0) continue
          proven.push(descriptor.name)
          for (const sample of family.samples) {
            const expected = [...descriptor.labels, ...(sample.name.endsWith("_bucket") ? ["le"] : [])].sort()
            assert.deepStrictEqual(labelKeys(sample), expected, `labels of ${sample.name}`)
            for (const label of descriptor.labels) {
              const value = sample.labels[label] ?? ""
              const allowed = descriptor.labelValues[label]
              if (allowed !== undefined) assert.include(allowed, value, `${sample.name}{${label}}`)
              else assert.match(value, boundOf(label), `${sample.name}{${label}} is a validated name`)
            }
          }
        }

        // each declared metric is either proven here or listed with the reason it is not
        const catalogNames = Metrics.catalog.map((metric) => metric.name)
        assert.deepStrictEqual(
          [...proven, ...Object.keys(NOT_DRIVEN_HERE)].sort(),
          [...catalogNames].sort(),
          `proven here: ${proven.join(", ")}`
        )

        // and the values are the ones the program produced
        const samples = [...families.values()].flatMap((family) => family.samples)
        const value = (name: string, labels: Readonly<Record<string, string>>) =>
          samples.find((sample) =>
            sample.name === name && Object.entries(labels).every(([key, v]) => sample.labels[key] === v)
          )?.value
        const breaker = { breaker: "obs-payments" }
        assert.strictEqual(value("bulwark_circuit_breaker_state", { ...breaker, state: "open" }), 1)
        assert.strictEqual(value("bulwark_circuit_breaker_state", { ...breaker, state: "closed" }), 0)
        assert.strictEqual(value("bulwark_circuit_breaker_calls_total", { ...breaker, outcome: "success" }), 1)
        assert.strictEqual(value("bulwark_circuit_breaker_calls_total", { ...breaker, outcome: "failure" }), 2)
        assert.strictEqual(value("bulwark_circuit_breaker_calls_total", { ...breaker, outcome: "rejected" }), 1)
        assert.strictEqual(
          value("bulwark_circuit_breaker_transitions_total", { ...breaker, from: "closed", to: "open" }),
          1
        )
        const retry = { policy: "obs-retry" }
        assert.strictEqual(value("bulwark_retry_calls_total", { ...retry, result: "success_first_try" }), 1)
        assert.strictEqual(value("bulwark_retry_calls_total", { ...retry, result: "success_after_retry" }), 1)
        assert.strictEqual(value("bulwark_retry_calls_total", { ...retry, result: "exhausted" }), 1)
        assert.strictEqual(value("bulwark_retry_calls_total", { ...retry, result: "terminal" }), 1)
        assert.strictEqual(value("bulwark_retry_attempts_total", retry), 3)
        assert.strictEqual(value("bulwark_retry_budget_denied_total", { policy: "obs-budgeted" }), 1)
        assert.strictEqual(value("bulwark_timeouts_total", { operation: "obs-charge" }), 1)
        assert.strictEqual(
          value("bulwark_timeout_abandoned_total", { operation: "obs-flush", result: "interrupted" }),
          1
        )
        assert.strictEqual(value("bulwark_chaos_injections_total", { policy: "obs-drill", kind: "fault" }), 1)
        assert.strictEqual(value("bulwark_fallback_total", { operation: "obs-quote", source: "default" }), 1)
        assert.strictEqual(
          value("bulwark_rate_limiter_decisions_total", { limiter: "obs-api", decision: "allowed" }),
          1
        )
        assert.strictEqual(
          value("bulwark_rate_limiter_decisions_total", { limiter: "obs-api", decision: "rejected" }),
          1
        )
        assert.strictEqual(
          value("bulwark_rate_limiter_decisions_total", { limiter: "obs-api-wait", decision: "delayed" }),
          1
        )
        const scope = { scope: "POST /obs-orders" }
        assert.strictEqual(value("bulwark_idempotency_requests_total", { ...scope, result: "executed" }), 1)
        assert.strictEqual(value("bulwark_idempotency_requests_total", { ...scope, result: "replayed" }), 1)
        assert.strictEqual(value("bulwark_idempotency_requests_total", { ...scope, result: "fingerprint_mismatch" }), 1)
        const queue = { queue: "obs-emails" }
        assert.strictEqual(value("bulwark_jobs_total", { ...queue, outcome: "succeeded" }), 2)
        assert.strictEqual(value("bulwark_jobs_total", { ...queue, outcome: "retried" }), 1)
        assert.strictEqual(value("bulwark_jobs_total", { ...queue, outcome: "dead_lettered" }), 1)
        assert.strictEqual(value("bulwark_dead_letter_depth", queue), 1)
        assert.strictEqual(value("bulwark_job_queue_depth", { ...queue, state: "ready" }), 0)
        assert.strictEqual(value("bulwark_job_queue_depth", { ...queue, state: "running" }), 0)
        // four attempts ran (one job twice); each waited and ran for some time
        assert.strictEqual(value("bulwark_job_duration_seconds_count", queue), 4)
        assert.strictEqual(value("bulwark_job_wait_seconds_count", queue), 4)
        assert.strictEqual(value("bulwark_job_wait_seconds_bucket", { ...queue, le: "+Inf" }), 4)
        assert.strictEqual(value("bulwark_bulkhead_active", { bulkhead: "obs-inventory" }), 1)
        assert.strictEqual(value("bulwark_bulkhead_queued", { bulkhead: "obs-inventory" }), 0)
        assert.strictEqual(value("bulwark_bulkhead_rejected_total", { bulkhead: "obs-inventory" }), 1)
        assert.strictEqual(value("bulwark_adaptive_concurrency_limit", { limiter: "obs-shed" }), 1)
        assert.strictEqual(value("bulwark_adaptive_concurrency_inflight", { limiter: "obs-shed" }), 0)
        assert.strictEqual(value("bulwark_adaptive_concurrency_rejected_total", { limiter: "obs-shed" }), 1)
      }).pipe(Effect.scoped),
    20_000
  )

  it("promtool check metrics is a real check: it fails on a counter without _total", () => {
    const lint = promtool(["check", "metrics"], "# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n")
    assert.notStrictEqual(lint.code, 0)
    assert.include(lint.output, `counter metrics should have "_total" suffix`)
  })
})
