/**
 * The Bulwark demo (for now: retry, timeouts and the failure model against a
 * real, flaky HTTP server on 127.0.0.1).
 *
 *   npm run demo
 *
 * A local "payment gateway" answers 503 with `Retry-After` twice, then 200;
 * another route is slow, another answers 404. The client classifies each
 * response into transient / terminal failures and retries only what is safe
 * to retry, honouring the server's hint, with a per-attempt timeout.
 */
import { Failure, Metrics, Retry, Timeout } from "@bulwark/resilience"
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { createServer, type Server } from "node:http"
import type { AddressInfo } from "node:net"

// --- a flaky gateway -------------------------------------------------------

const startGateway = Effect.acquireRelease(
  Effect.async<Server & { readonly url: string }>((resume) => {
    let chargeRequests = 0
    const server = createServer((request, response) => {
      if (request.url === "/charge") {
        chargeRequests++
        if (chargeRequests <= 2) {
          response.writeHead(503, { "retry-after": "1", "content-type": "application/json" })
          response.end(JSON.stringify({ error: "gateway busy" }))
          return
        }
        response.writeHead(200, { "content-type": "application/json" })
        response.end(JSON.stringify({ charged: true, request: chargeRequests }))
        return
      }
      if (request.url === "/slow") {
        setTimeout(() => {
          response.writeHead(200)
          response.end("{}")
        }, 2_000).unref()
        return
      }
      response.writeHead(404, { "content-type": "application/json" })
      response.end(JSON.stringify({ error: "no such route" }))
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed(Object.assign(server, { url: `http://127.0.0.1:${port}` })))
    })
  }),
  (server) =>
    Effect.async<void>((resume) => {
      server.closeAllConnections()
      server.close(() => resume(Effect.void))
    })
)

/** A port nobody listens on: bound, then released. */
const unusedPort = Effect.async<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const { port } = probe.address() as AddressInfo
    probe.close(() => resume(Effect.succeed(port)))
  })
})

// --- a client that speaks the failure model --------------------------------

class FetchFailed extends Data.TaggedError("FetchFailed")<{ readonly cause: unknown; readonly code: string }> {
  override get message() {
    return `fetch failed (${this.code})`
  }
}

const post = (url: string) =>
  Effect.tryPromise({
    try: (signal) => fetch(url, { method: "POST", signal }),
    catch: (cause) =>
      new FetchFailed({
        cause,
        code: cause instanceof Error && cause.cause instanceof Error && "code" in cause.cause
          ? String(cause.cause.code)
          : "UNKNOWN"
      })
  }).pipe(
    // ECONNREFUSED and friends are transient by the default classifier's `codes` table.
    Failure.classify(),
    Effect.flatMap((response) =>
      Failure.fromResponse({ status: response.status, headers: response.headers }, `POST ${new URL(url).pathname}`)
        .pipe(
          Effect.flatMap(Option.match({
            onNone: () => Effect.promise(() => response.json()),
            onSome: Effect.fail
          }))
        )
    )
  )

const show = (label: string) => <A, E, R>(self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.timed,
    Effect.tap(([elapsed, value]) =>
      Console.log(`✔ ${label}: ${JSON.stringify(value)} after ${Math.round(Duration.toMillis(elapsed))}ms`)
    ),
    Effect.tapError((error) => Console.log(`✘ ${label}: ${error instanceof Error ? error.message : String(error)}`)),
    Effect.ignore
  )

const program = Effect.gen(function*() {
  const gateway = yield* startGateway
  yield* Console.log(`gateway listening on ${gateway.url}\n`)

  const policy = yield* Retry.make({
    name: "gateway",
    backoff: Retry.exponential({ base: "200 millis", cap: "2 seconds" }),
    jitter: "full",
    maxAttempts: 4,
    maxElapsed: "10 seconds"
  })
  const perAttempt = yield* Timeout.make({ operation: "gateway-attempt", limit: "500 millis" })

  yield* Console.log("1. a 503 with Retry-After: 1, twice, then success (retried, waiting ≥ 1s each time)")
  yield* post(`${gateway.url}/charge`).pipe(Timeout.timeout(perAttempt), Retry.retry(policy), show("charge"))

  yield* Console.log("\n2. a 404 is terminal: no retry")
  yield* post(`${gateway.url}/missing`).pipe(Timeout.timeout(perAttempt), Retry.retry(policy), show("missing"))

  yield* Console.log("\n3. a slow route: each attempt is interrupted at 500ms, then the policy gives up")
  yield* post(`${gateway.url}/slow`).pipe(Timeout.timeout(perAttempt), Retry.retry(policy), show("slow"))

  yield* Console.log("\n4. nobody listening: connection refused is transient, retried, then exhausted")
  const port = yield* unusedPort
  yield* post(`http://127.0.0.1:${port}/charge`).pipe(Timeout.timeout(perAttempt), Retry.retry(policy), show("refused"))

  yield* Console.log("\nmetrics:")
  for (const result of ["success_first_try", "success_after_retry", "exhausted", "terminal"]) {
    const state = yield* Metric.value(
      Metric.tagged(Metric.tagged(Metrics.retryCalls, "policy", "gateway"), "result", result)
    )
    yield* Console.log(`  bulwark_retry_calls_total{policy="gateway",result="${result}"} ${state.count}`)
  }
  const attempts = yield* Metric.value(Metric.tagged(Metrics.retryAttempts, "policy", "gateway"))
  yield* Console.log(`  bulwark_retry_attempts_total{policy="gateway"} ${attempts.count}`)
  const timeouts = yield* Metric.value(Metric.tagged(Metrics.timeouts, "operation", "gateway-attempt"))
  yield* Console.log(`  bulwark_timeouts_total{operation="gateway-attempt"} ${timeouts.count}`)
})

Effect.runPromise(Effect.scoped(program)).catch((error: unknown) => {
  console.error(error)
  process.exit(1)
})
