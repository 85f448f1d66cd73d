/**
 * Spans of the primitives (circuit breaker, bulkhead, retry, timeout) and of the job worker, read back from an
 * OpenTelemetry in-memory exporter behind `Tracing.layer`; time on the TestClock. And the other half: without the
 * switch, the primitives make no span at all, even with a tracer installed and another program tracing.
 */
import * as Bulkhead from "@bulwark/resilience/Bulkhead"
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Failure from "@bulwark/resilience/Failure"
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as Retry from "@bulwark/resilience/Retry"
import * as TBulkhead from "@bulwark/resilience/TBulkhead"
import * as TCircuitBreaker from "@bulwark/resilience/TCircuitBreaker"
import * as Timeout from "@bulwark/resilience/Timeout"
import * as Tracing from "@bulwark/resilience/Tracing"
import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Tracer from "effect/Tracer"

const A = Tracing.attributes

const tracing = (exporter: InMemorySpanExporter) =>
  Tracing.layer({ serviceName: "primitives", exporter, processor: "simple" })

const unavailable = new Failure.TransientError({ reason: "HttpStatus", message: "503", status: 503 })

class Declined extends Data.TaggedError("Declined")<{ readonly message: string }> {}

/** Spans by name, with their parents and events, from what the exporter holds. */
const read = (exporter: InMemorySpanExporter) => {
  const spans = exporter.getFinishedSpans()
  const byId = new Map(spans.map((span) => [span.spanContext().spanId, span]))
  return {
    spans,
    names: spans.map((span) => span.name),
    named: (name: string): ReadonlyArray<ReadableSpan> => spans.filter((span) => span.name === name),
    parentOf: (span: ReadableSpan | undefined) => byId.get(span?.parentSpanContext?.spanId ?? "")
  }
}

const eventsOf = (span: ReadableSpan | undefined, name: string) =>
  (span?.events ?? []).filter((event) => event.name === name).map((event) => event.attributes ?? {})

/** A tracer that remembers the name of every span made through it. */
const recordingTracer = (names: Array<string>): Tracer.Tracer => {
  const native = Tracer.make({
    span: (name, parent, context, links, startTime, kind) => {
      names.push(name)
      return nativeTracer.span(name, parent, context, links, startTime, kind)
    },
    context: (f) => f()
  })
  return native
}

const nativeTracer: Tracer.Tracer = Effect.runSync(Effect.tracerWith(Effect.succeed))

const Task = JobQueue.define({ kind: "send-mail", queue: "mail", payload: Schema.Struct({ to: Schema.String }) })

describe("spans of the primitives", () => {
  it.effect("a retry ▸ breaker ▸ bulkhead ▸ timeout stack makes one span per call, with every layer's attributes and each retry's delay", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "payments", trip: CircuitBreaker.consecutiveFailures(5) })
      const bulkhead = yield* Bulkhead.make({ name: "payments-pool", maxConcurrent: 4 })
      const policy = yield* Retry.make({
        name: "payments-retry",
        backoff: Retry.constant("100 millis"),
        jitter: "none",
        maxAttempts: 5
      })
      const attemptTimeout = yield* Timeout.make({ operation: "payments.attempt", limit: "2 seconds" })
      let runs = 0
      const charge = Effect.suspend(() => ++runs <= 2 ? Effect.fail(unavailable) : Effect.succeed("charged")).pipe(
        Effect.withSpan("charge")
      )
      const protectedCharge = charge.pipe(
        Timeout.timeout(attemptTimeout),
        Bulkhead.protect(bulkhead),
        CircuitBreaker.protect(breaker),
        Retry.retry(policy)
      )

      const fiber = yield* Effect.fork(Effect.withSpan(protectedCharge, "checkout"))
      yield* TestClock.adjust("100 millis")
      yield* TestClock.adjust("100 millis")
      assert.deepStrictEqual(yield* Fiber.join(fiber), "charged")

      const { named, parentOf, spans } = read(exporter)
      const calls = named("bulwark.retry payments-retry")
      assert.strictEqual(calls.length, 1, `spans: ${spans.map((span) => span.name).join(", ")}`)
      const [call] = calls
      // one span for the whole stack: no span per layer, none per attempt
      assert.deepStrictEqual(
        spans.map((span) => span.name).filter((name) => name.startsWith("bulwark.")),
        ["bulwark.retry payments-retry"]
      )
      assert.deepStrictEqual(call?.attributes, {
        [A.retryPolicy]: "payments-retry",
        [A.breakerName]: "payments",
        [A.bulkheadName]: "payments-pool",
        [A.timeoutOperation]: "payments.attempt",
        [A.timeoutLimitMs]: 2000,
        [A.breakerState]: "closed",
        [A.retryAttempts]: 3,
        [A.outcome]: "success"
      })
      assert.deepStrictEqual(eventsOf(call, "retry"), [
        { [A.retryAttempt]: 2, [A.retryDelayMs]: 100, "error.type": "TransientError" },
        { [A.retryAttempt]: 3, [A.retryDelayMs]: 100, "error.type": "TransientError" }
      ])
      // under the caller's span, and the operation's own spans under it
      assert.strictEqual(parentOf(call)?.name, "checkout")
      const attempts = named("charge")
      assert.strictEqual(attempts.length, 3)
      assert.isTrue(attempts.every((attempt) => parentOf(attempt) === call))
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.effect("in the documented order (breaker ▸ bulkhead ▸ retry ▸ timeout) the span is the breaker's, with the retries inside it", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "ledger" })
      const bulkhead = yield* Bulkhead.make({ name: "ledger-pool", maxConcurrent: 1 })
      const policy = yield* Retry.make({ name: "ledger-retry", backoff: Retry.constant("50 millis"), jitter: "none" })
      const attemptTimeout = yield* Timeout.make({ operation: "ledger.attempt", limit: "1 second" })
      let runs = 0
      const post = Effect.suspend(() => ++runs === 1 ? Effect.fail(unavailable) : Effect.succeed(runs))
      const fiber = yield* Effect.fork(
        post.pipe(
          Timeout.timeout(attemptTimeout),
          Retry.retry(policy),
          Bulkhead.protect(bulkhead),
          CircuitBreaker.protect(breaker)
        )
      )
      yield* TestClock.adjust("50 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 2)

      const { names, named } = read(exporter)
      assert.deepStrictEqual(names, ["bulwark.circuit_breaker ledger"])
      const [call] = named("bulwark.circuit_breaker ledger")
      assert.deepStrictEqual(call?.attributes, {
        [A.breakerName]: "ledger",
        [A.bulkheadName]: "ledger-pool",
        [A.retryPolicy]: "ledger-retry",
        [A.timeoutOperation]: "ledger.attempt",
        [A.timeoutLimitMs]: 1000,
        [A.breakerState]: "closed",
        [A.retryAttempts]: 2,
        [A.outcome]: "success"
      })
      assert.deepStrictEqual(eventsOf(call, "retry"), [
        { [A.retryAttempt]: 2, [A.retryDelayMs]: 50, "error.type": "TransientError" }
      ])
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.effect("an open breaker's refusal is a span with state open and outcome circuit_open; a retry records each refusal", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        name: "inventory",
        trip: CircuitBreaker.consecutiveFailures(1),
        openDuration: "1 minute"
      })
      const failing = Effect.fail(unavailable).pipe(CircuitBreaker.protect(breaker))
      assert.strictEqual((yield* Effect.flip(failing))._tag, "TransientError")
      const refused = yield* Effect.flip(Effect.succeed("ok").pipe(CircuitBreaker.protect(breaker)))
      assert.strictEqual(refused._tag, "CircuitOpenError")

      const spans = read(exporter).named("bulwark.circuit_breaker inventory")
      assert.deepStrictEqual(
        spans.map((
          span
        ) => [span.attributes[A.breakerState], span.attributes[A.outcome], span.attributes["error.type"]]),
        [["closed", "failure", "TransientError"], ["open", "circuit_open", "CircuitOpenError"]]
      )
      assert.strictEqual(spans[1]?.status.code, 2) // SpanStatusCode.ERROR

      // a retry outside the open breaker: every attempt refused, each retry an event, the state as the last one found it
      const policy = yield* Retry.make({
        name: "inventory-retry",
        backoff: Retry.constant("10 millis"),
        jitter: "none",
        maxAttempts: 3,
        respectRetryAfter: false
      })
      const fiber = yield* Effect.fork(Effect.succeed("ok").pipe(CircuitBreaker.protect(breaker), Retry.retry(policy)))
      yield* TestClock.adjust("10 millis")
      yield* TestClock.adjust("10 millis")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      const [retried] = read(exporter).named("bulwark.retry inventory-retry")
      assert.strictEqual(retried?.attributes[A.breakerName], "inventory")
      assert.strictEqual(retried?.attributes[A.breakerState], "open")
      assert.strictEqual(retried?.attributes[A.retryAttempts], 3)
      assert.strictEqual(retried?.attributes[A.outcome], "retries_exhausted")
      assert.strictEqual(retried?.attributes["error.type"], "RetriesExhausted")
      assert.deepStrictEqual(
        eventsOf(retried, "retry").map((event) => event["error.type"]),
        ["CircuitOpenError", "CircuitOpenError"]
      )
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.scoped("an STM breaker's calls are spans like the synchronous breaker's, and join a retry's span", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* TCircuitBreaker.make({
        name: "ledger-stm",
        trip: CircuitBreaker.consecutiveFailures(1),
        openDuration: "1 minute"
      })
      assert.strictEqual(
        (yield* Effect.flip(Effect.fail(unavailable).pipe(TCircuitBreaker.protect(breaker))))._tag,
        "TransientError"
      )
      const refused = yield* Effect.flip(Effect.succeed("ok").pipe(TCircuitBreaker.protect(breaker)))
      assert.strictEqual(refused._tag, "CircuitOpenError")
      const spans = read(exporter).named("bulwark.circuit_breaker ledger-stm")
      assert.deepStrictEqual(
        spans.map((
          span
        ) => [span.attributes[A.breakerState], span.attributes[A.outcome], span.attributes["error.type"]]),
        [["closed", "failure", "TransientError"], ["open", "circuit_open", "CircuitOpenError"]]
      )
      const policy = yield* Retry.make({ name: "ledger-stm-retry", maxAttempts: 1 })
      yield* Effect.flip(Effect.succeed("ok").pipe(TCircuitBreaker.protect(breaker), Retry.retry(policy)))
      const [retried] = read(exporter).named("bulwark.retry ledger-stm-retry")
      assert.strictEqual(retried?.attributes[A.breakerName], "ledger-stm")
      assert.strictEqual(retried?.attributes[A.breakerState], "open")
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.scoped.each([
    { variant: "Bulkhead", make: (options: Bulkhead.Bulkhead.Options) => Bulkhead.make(options) },
    { variant: "TBulkhead", make: TBulkhead.make }
  ])(
    "$variant: a call that queued records how long it waited; a full bulkhead's refusal is bulkhead_full",
    ({ make, variant }) => {
      const exporter = new InMemorySpanExporter()
      return Effect.gen(function*() {
        const bulkhead = yield* make({ name: `reports-${variant}`, maxConcurrent: 1, maxQueued: 1 })
        const release = yield* Deferred.make<void>()
        const holder = yield* Effect.fork(Deferred.await(release).pipe(Bulkhead.protect(bulkhead)))
        yield* Effect.yieldNow()
        const queued = yield* Effect.fork(Effect.succeed("done").pipe(Bulkhead.protect(bulkhead)))
        yield* Effect.yieldNow()
        const full = yield* Effect.flip(Effect.void.pipe(Bulkhead.protect(bulkhead)))
        assert.strictEqual(full._tag, "BulkheadFullError")
        yield* TestClock.adjust("250 millis")
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        assert.strictEqual(yield* Fiber.join(queued), "done")

        const spans = read(exporter).named(`bulwark.bulkhead reports-${variant}`)
        const summary = spans.map((span) => [span.attributes[A.outcome], span.attributes[A.bulkheadQueuedMs]])
        assert.deepStrictEqual(summary, [["bulkhead_full", undefined], ["success", undefined], ["success", 250]])
      }).pipe(Effect.provide(tracing(exporter)))
    }
  )

  it.effect("a timeout that strikes is an event with the operation and limit, and the outcome timeout", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const limit = yield* Timeout.make({ operation: "render", limit: "1 second" })
      const fiber = yield* Effect.fork(Effect.sleep("5 seconds").pipe(Timeout.timeout(limit)))
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TimeoutError")
      const [span] = read(exporter).named("bulwark.timeout render")
      assert.strictEqual(span?.attributes[A.outcome], "timeout")
      assert.deepStrictEqual(eventsOf(span, "timeout"), [{ [A.timeoutOperation]: "render", [A.timeoutLimitMs]: 1000 }])
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.effect("a protected call made inside another's operation gets a span of its own, a child of the first", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const outer = yield* CircuitBreaker.make({ name: "orders" })
      const inner = yield* CircuitBreaker.make({ name: "stock" })
      const bulkhead = yield* Bulkhead.make({ name: "stock-pool", maxConcurrent: 2 })
      const reserve = Effect.succeed(1).pipe(Bulkhead.protect(bulkhead), CircuitBreaker.protect(inner))
      yield* Effect.map(reserve, (n) => n + 1).pipe(CircuitBreaker.protect(outer))

      const { named, parentOf } = read(exporter)
      const [orders] = named("bulwark.circuit_breaker orders")
      const [stock] = named("bulwark.circuit_breaker stock")
      assert.strictEqual(parentOf(stock), orders)
      assert.strictEqual(orders?.attributes[A.breakerName], "orders")
      assert.isUndefined(orders?.attributes[A.bulkheadName])
      assert.strictEqual(stock?.attributes[A.breakerName], "stock")
      assert.strictEqual(stock?.attributes[A.bulkheadName], "stock-pool")
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.effect("inside a ResilientHttpClient span the layers make no span: the client records them itself", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "http/api.example" })
      yield* Effect.void.pipe(CircuitBreaker.protect(breaker), Effect.withSpan("bulwark.http_client.attempt"))
      assert.deepStrictEqual(read(exporter).names, ["bulwark.http_client.attempt"])
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.effect("reach fibers forked later in the program, and programs run by a ManagedRuntime built with the layer", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "forked" })
      const fiber = yield* Effect.forkDaemon(
        Effect.delay(Effect.void.pipe(CircuitBreaker.protect(breaker)), "1 second")
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      assert.deepStrictEqual(read(exporter).names, ["bulwark.circuit_breaker forked"])

      const runtimeExporter = new InMemorySpanExporter()
      const runtime = ManagedRuntime.make(Layer.merge(Layer.empty, tracing(runtimeExporter)))
      yield* Effect.promise(() => runtime.runPromise(Effect.void.pipe(CircuitBreaker.protect(breaker))))
      // read before disposing: closing the layer shuts the exporter down, and InMemorySpanExporter then forgets
      assert.deepStrictEqual(read(runtimeExporter).names, ["bulwark.circuit_breaker forked"])
      yield* Effect.promise(() => runtime.dispose())
    }).pipe(Effect.provide(tracing(exporter)))
  })

  it.effect("without the switch there is no span at all, even with a tracer installed and another program tracing", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "quiet" })
      const bulkhead = yield* Bulkhead.make({ name: "quiet", maxConcurrent: 1 })
      const policy = yield* Retry.make({ name: "quiet", backoff: Retry.constant("10 millis"), jitter: "none" })
      const limit = yield* Timeout.make({ operation: "quiet", limit: "1 second" })
      let runs = 0
      const flaky = Effect.suspend(() => ++runs % 2 === 1 ? Effect.fail(unavailable) : Effect.succeed(runs))
      const stacks: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
        flaky.pipe(
          Timeout.timeout(limit),
          Bulkhead.protect(bulkhead),
          CircuitBreaker.protect(breaker),
          Retry.retry(policy)
        ),
        flaky.pipe(Retry.retry(policy), Timeout.timeout(limit)),
        Effect.fail(new Declined({ message: "no" })).pipe(CircuitBreaker.protect(breaker)),
        Effect.succeed(1).pipe(Bulkhead.protect(bulkhead))
      ]
      const runAll = Effect.gen(function*() {
        for (const stack of stacks) {
          const fiber = yield* Effect.fork(Effect.exit(stack))
          yield* TestClock.adjust("10 millis")
          yield* Fiber.join(fiber)
        }
      })

      // another program in this process has tracing switched on, for as long as this test runs
      const exporter = new InMemorySpanExporter()
      const elsewhere = yield* Effect.forkScoped(Effect.provide(Effect.never, tracing(exporter)))
      yield* Effect.yieldNow()

      const seen: Array<string> = []
      yield* runAll.pipe(Effect.withTracer(recordingTracer(seen)))
      assert.deepStrictEqual(seen, [])

      // the same stacks with the switch alone (a program with a tracer of its own): spans, one per call
      yield* runAll.pipe(Effect.provide(Tracing.layerSpans), Effect.withTracer(recordingTracer(seen)))
      assert.deepStrictEqual(seen, [
        "bulwark.retry quiet",
        "bulwark.timeout quiet",
        "bulwark.circuit_breaker quiet",
        "bulwark.bulkhead quiet"
      ])

      // and switched on but with Effect's tracer disabled: none
      seen.length = 0
      yield* runAll.pipe(
        Effect.withTracerEnabled(false),
        Effect.provide(Tracing.layerSpans),
        Effect.withTracer(recordingTracer(seen))
      )
      assert.deepStrictEqual(seen, [])
      assert.deepStrictEqual(exporter.getFinishedSpans(), [])
      yield* Fiber.interrupt(elsewhere)
    }).pipe(Effect.scoped))

  it.effect("the job worker runs each job in a span with its id, queue, kind and attempt; the handler's calls are its children", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "smtp" })
      const done = yield* Deferred.make<JobWorker.JobContext>()
      const { id } = yield* JobQueue.enqueue(Task, { to: "a@example.com" })
      yield* JobWorker.make({
        handlers: [
          JobWorker.handler(
            Task,
            (_payload, job) =>
              Effect.void.pipe(CircuitBreaker.protect(breaker), Effect.zipRight(Deferred.succeed(done, job)))
          )
        ]
      })
      const job = yield* Deferred.await(done)
      assert.strictEqual(job.id, id)
      // the span ends when the handler returns, just after the deferred is completed
      for (let i = 0; i < 20 && read(exporter).named("bulwark.job send-mail").length === 0; i++) {
        yield* Effect.yieldNow()
      }

      const { named, parentOf } = read(exporter)
      const [span] = named("bulwark.job send-mail")
      assert.isDefined(span)
      assert.strictEqual(span?.attributes[A.jobId], id)
      assert.strictEqual(span?.attributes[A.jobQueue], "mail")
      assert.strictEqual(span?.attributes[A.jobKind], "send-mail")
      assert.strictEqual(span?.attributes[A.jobAttempt], 1)
      const [smtp] = named("bulwark.circuit_breaker smtp")
      assert.strictEqual(parentOf(smtp), span)
    }).pipe(
      Effect.scoped,
      Effect.provide(JobQueue.layerMemory({ queues: { mail: {} } })),
      Effect.provide(tracing(exporter))
    )
  })
  it.effect("an idempotent run is a span with its scope and result: executed first, replayed after", () => {
    const exporter = new InMemorySpanExporter()
    const options: Idempotency.Options<string, string, never, never> = {
      scope: "POST /charges",
      key: "order-17",
      fingerprint: "f1",
      success: Schema.String,
      failure: Schema.Never
    }
    return Effect.gen(function*() {
      const first = yield* Idempotency.run(options)(() => Effect.succeed("charged"))
      const second = yield* Idempotency.run(options)(() => Effect.succeed("must not run"))
      assert.strictEqual(first._tag, "Executed")
      assert.strictEqual(second._tag, "Replayed")
      assert.strictEqual(second.value, "charged")
      const spans = read(exporter).named("bulwark.idempotency POST /charges")
      assert.deepStrictEqual(
        spans.map((span) => [span.attributes[A.idempotencyScope], span.attributes[A.idempotencyResult]]),
        [["POST /charges", "executed"], ["POST /charges", "replayed"]]
      )
    }).pipe(Effect.provide(IdempotencyStore.layerMemory), Effect.provide(tracing(exporter)))
  })
})
