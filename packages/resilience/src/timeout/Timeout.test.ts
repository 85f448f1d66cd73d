import { assert, describe, it } from "@effect/vitest"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Tracing from "../observability/Tracing.js"
import * as Retry from "../retry/Retry.js"
import * as Timeout from "./Timeout.js"

describe("Timeout.timeout", () => {
  it.effect("fails with a transient TimeoutError naming the operation and the limit", () =>
    Effect.gen(function*() {
      const policy = yield* Timeout.make({ operation: "charge-card", limit: "2 seconds" })
      const fiber = yield* Effect.fork(Effect.never.pipe(Timeout.timeout(policy)))
      yield* TestClock.adjust("2 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TimeoutError")
      assert.strictEqual(error.operation, "charge-card")
      assert.isTrue(Duration.equals(error.limit, Duration.seconds(2)))
      assert.isTrue(Failure.isTransient(error))
      assert.strictEqual(error.message, `Operation "charge-card" timed out after 2s`)
    }))

  it.effect("really interrupts the timed-out work", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const finished = yield* Ref.make(false)
      const policy = Timeout.unsafeMake({ operation: "slow-report", limit: "1 second" })
      const work = Effect.sleep("10 seconds").pipe(
        Effect.zipRight(Ref.set(finished, true)),
        Effect.onInterrupt(() => Ref.set(interrupted, true))
      )
      const fiber = yield* Effect.fork(work.pipe(Timeout.timeout(policy)))
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isFailure(yield* Fiber.await(fiber)))
      assert.isTrue(yield* Ref.get(interrupted))
      yield* TestClock.adjust("1 minute")
      assert.isFalse(yield* Ref.get(finished))
    }))

  it.effect("lets fast work and its own failures through", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "fast", limit: "1 second" })
      assert.strictEqual(yield* Effect.succeed(42).pipe(Timeout.timeout(policy)), 42)
      const own = new Failure.TerminalError({ reason: "Lifted", message: "nope" })
      assert.strictEqual(yield* Effect.flip(Effect.fail(own).pipe(Timeout.timeout(policy))), own)
    }))

  it.effect("counts timeouts per operation", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "counted-op", limit: "10 millis" })
      for (let i = 0; i < 3; i++) {
        const fiber = yield* Effect.fork(Effect.never.pipe(Timeout.timeout(policy)))
        yield* TestClock.adjust("10 millis")
        yield* Fiber.await(fiber)
      }
      const state = yield* Metric.value(Metric.tagged(Metrics.timeouts, "operation", "counted-op"))
      assert.strictEqual(state.count, 3)
    }))

  it.effect("per-attempt timeouts are retried; an overall timeout bounds the whole", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make(0)
      const perAttempt = Timeout.unsafeMake({ operation: "attempt", limit: "1 second" })
      const overall = Timeout.unsafeMake({ operation: "overall", limit: "5 seconds" })
      const policy = Retry.unsafeMake({
        name: "timeouts",
        backoff: Retry.constant("500 millis"),
        jitter: "none",
        maxAttempts: 10
      })
      const op = Ref.update(attempts, (n) => n + 1).pipe(Effect.zipRight(Effect.never))
      const fiber = yield* Effect.fork(
        op.pipe(Timeout.timeout(perAttempt), Retry.retry(policy), Timeout.timeout(overall))
      )
      yield* TestClock.adjust("5 seconds")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "TimeoutError")
      assert.strictEqual(error._tag === "TimeoutError" ? error.operation : "", "overall")
      // attempts start at 0, 1.5, 3.0, 4.5 seconds
      assert.strictEqual(yield* Ref.get(attempts), 4)
    }))

  it.effect("rejects a zero, negative, NaN or infinite limit and a bad operation name", () =>
    Effect.gen(function*() {
      for (const limit of [0, -1, Number.NaN, Infinity, "-2 seconds"] as const) {
        const error = yield* Effect.flip(Timeout.make({ operation: "x", limit }))
        assert.strictEqual(error.option, "limit")
      }
      const error = yield* Effect.flip(Timeout.make({ operation: "has spaces", limit: 10 }))
      assert.strictEqual(error.option, "operation")
    }))

  it.effect("rejects an onUninterruptible other than wait or abandon", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Timeout.make({ operation: "x", limit: 10, onUninterruptible: "later" as never }))
      assert.strictEqual(error.option, "onUninterruptible")
      assert.strictEqual((yield* Timeout.make({ operation: "x", limit: 10 })).onUninterruptible, "wait")
    }))
})

describe("Timeout.timeout on uninterruptible work", () => {
  const abandonedCount = (operation: string, result: string) =>
    Metric.value(Metric.tagged(Metric.tagged(Metrics.timeoutAbandoned, "operation", operation), "result", result)).pipe(
      Effect.map((state) => state.count)
    )

  /** Runs `work` under `policy` in a fiber and records when and how the caller was answered. */
  const answered = <A, E>(work: Effect.Effect<A, E>, policy: Timeout.Policy) =>
    Effect.gen(function*() {
      const answer = yield* Deferred.make<readonly [Exit.Exit<A, E | Timeout.TimeoutError>, number]>()
      const fiber = yield* Effect.fork(
        work.pipe(
          Timeout.timeout(policy),
          Effect.exit,
          Effect.flatMap((exit) =>
            Effect.flatMap(Clock.currentTimeMillis, (at) => Deferred.succeed(answer, [exit, at]))
          )
        )
      )
      return { answer, fiber }
    })

  it.effect("wait (the default) answers when the work has stopped, with the TimeoutError: the success is discarded", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "unint-wait", limit: "50 millis" })
      const { answer } = yield* answered(Effect.uninterruptible(Effect.sleep("300 millis")).pipe(Effect.as(42)), policy)
      yield* TestClock.adjust("50 millis")
      assert.isFalse(yield* Deferred.isDone(answer))
      yield* TestClock.adjust("250 millis")
      const [exit, at] = yield* Deferred.await(answer)
      assert.strictEqual(at, 300)
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "TimeoutError")
      assert.strictEqual(yield* abandonedCount("unint-wait", "interrupted"), 0)
    }))

  it.effect("abandon answers at the limit; the work ends in the background and is counted", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({
        operation: "unint-abandon",
        limit: "50 millis",
        onUninterruptible: "abandon"
      })
      const ended = yield* Ref.make<number | undefined>(undefined)
      const work = Effect.uninterruptible(Effect.sleep("300 millis")).pipe(
        Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.set(ended, at)))
      )
      const { answer, fiber } = yield* answered(work, policy)
      yield* TestClock.adjust("50 millis")
      const [exit, at] = yield* Deferred.await(answer)
      assert.strictEqual(at, 50)
      assert.strictEqual((yield* Effect.flip(exit))._tag, "TimeoutError")
      // A timeout happened: the existing counter counts it as well.
      assert.strictEqual((yield* Metric.value(policy.counter)).count, 1)
      assert.strictEqual(yield* Ref.get(ended), undefined)
      assert.strictEqual(yield* abandonedCount("unint-abandon", "interrupted"), 0)
      // The calling fiber owns the work: its own end waits for it.
      assert.isTrue((yield* Fiber.poll(fiber))._tag === "None")
      yield* TestClock.adjust("250 millis")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* Ref.get(ended), 300)
      // Interrupted at the end of its uninterruptible region: what follows it does not run.
      assert.strictEqual(yield* abandonedCount("unint-abandon", "interrupted"), 1)
      assert.strictEqual(yield* abandonedCount("unint-abandon", "succeeded"), 0)
    }))

  it.effect("abandon stops interruptible work at the limit, as wait does", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "int-abandon", limit: "50 millis", onUninterruptible: "abandon" })
      const finished = yield* Ref.make(false)
      const { answer, fiber } = yield* answered(
        Effect.sleep("300 millis").pipe(Effect.zipRight(Ref.set(finished, true))),
        policy
      )
      yield* TestClock.adjust("50 millis")
      assert.strictEqual((yield* Deferred.await(answer))[1], 50)
      yield* Fiber.join(fiber)
      yield* TestClock.adjust("1 second")
      assert.isFalse(yield* Ref.get(finished))
      assert.strictEqual(yield* abandonedCount("int-abandon", "interrupted"), 1)
    }))

  it.effect("abandoned work that fails counts as failed", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "unint-fails", limit: "50 millis", onUninterruptible: "abandon" })
      const work = Effect.uninterruptible(Effect.sleep("300 millis").pipe(Effect.zipRight(Effect.fail("disk full"))))
      const { answer, fiber } = yield* answered(work, policy)
      yield* TestClock.adjust("50 millis")
      const error = yield* Effect.flip((yield* Deferred.await(answer))[0])
      assert.isTrue(error instanceof Timeout.TimeoutError)
      yield* TestClock.adjust("250 millis")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* abandonedCount("unint-fails", "failed"), 1)
      assert.strictEqual(yield* abandonedCount("unint-fails", "interrupted"), 0)
    }))

  it.effect("abandon: work that ends before the limit answers with its value and is not counted", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "unint-fast", limit: "50 millis", onUninterruptible: "abandon" })
      const { answer, fiber } = yield* answered(
        Effect.uninterruptible(Effect.sleep("20 millis")).pipe(Effect.as(7)),
        policy
      )
      yield* TestClock.adjust("20 millis")
      const [exit, at] = yield* Deferred.await(answer)
      assert.deepStrictEqual(exit, Exit.succeed(7))
      assert.strictEqual(at, 20)
      assert.strictEqual(yield* Effect.flip(Effect.fail("own").pipe(Timeout.timeout(policy))), "own")
      yield* Fiber.join(fiber)
      assert.strictEqual((yield* Metric.value(policy.counter)).count, 0)
      for (const result of ["succeeded", "failed", "interrupted"]) {
        assert.strictEqual(yield* abandonedCount("unint-fast", result), 0)
      }
    }))

  it.effect("abandon: interrupting the caller before the limit interrupts the work, and waits for it", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "unint-caller", limit: "1 second", onUninterruptible: "abandon" })
      const ended = yield* Ref.make<number | undefined>(undefined)
      const after = yield* Ref.make(false)
      const work = Effect.uninterruptible(Effect.sleep("300 millis")).pipe(
        Effect.zipRight(Ref.set(after, true)),
        Effect.ensuring(Effect.flatMap(Clock.currentTimeMillis, (at) => Ref.set(ended, at)))
      )
      const caller = yield* Effect.fork(work.pipe(Timeout.timeout(policy)))
      yield* TestClock.adjust("10 millis")
      const interrupting = yield* Effect.fork(Fiber.interrupt(caller))
      yield* TestClock.adjust("100 millis")
      assert.isTrue((yield* Fiber.poll(interrupting))._tag === "None")
      yield* TestClock.adjust("200 millis")
      assert.isTrue(Exit.isInterrupted(yield* Fiber.join(interrupting)))
      assert.strictEqual(yield* Ref.get(ended), 300)
      assert.isFalse(yield* Ref.get(after))
      // Not a timeout: neither counter moves.
      assert.strictEqual((yield* Metric.value(policy.counter)).count, 0)
      assert.strictEqual(yield* abandonedCount("unint-caller", "interrupted"), 0)
    }))

  it.effect("abandon: interrupting the owner after the limit ends once the background work has stopped", () =>
    Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "unint-owner", limit: "50 millis", onUninterruptible: "abandon" })
      const steps = yield* Ref.make(0)
      // Two uninterruptible steps with an interruptible gap: the timeout's interruption lands in the gap.
      const step = Effect.uninterruptible(
        Effect.sleep("100 millis").pipe(Effect.zipRight(Ref.update(steps, (n) => n + 1)))
      )
      const owner = yield* Effect.fork(
        step.pipe(Effect.zipRight(step), Timeout.timeout(policy), Effect.ignore, Effect.zipRight(Effect.never))
      )
      yield* TestClock.adjust("50 millis")
      const interrupting = yield* Effect.fork(Fiber.interrupt(owner))
      yield* TestClock.adjust("49 millis")
      assert.isTrue((yield* Fiber.poll(interrupting))._tag === "None")
      yield* TestClock.adjust("1 millis")
      yield* Fiber.join(interrupting)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Ref.get(steps), 1)
      assert.strictEqual(yield* abandonedCount("unint-owner", "interrupted"), 1)
    }))

  it.effect("abandon: the call's span ends at the limit with the timeout event; the work's own span ends later", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      const policy = Timeout.unsafeMake({ operation: "unint-traced", limit: "50 millis", onUninterruptible: "abandon" })
      const work = Effect.uninterruptible(Effect.sleep("300 millis")).pipe(Effect.withSpan("flush"))
      const { answer, fiber } = yield* answered(work, policy)
      yield* TestClock.adjust("50 millis")
      yield* Deferred.await(answer)
      const atLimit = exporter.getFinishedSpans()
      assert.deepStrictEqual(atLimit.map((span) => span.name), ["bulwark.timeout unint-traced"])
      const [call] = atLimit
      assert.strictEqual(call?.attributes[Tracing.attributes.outcome], "timeout")
      assert.strictEqual(call?.attributes[Tracing.attributes.timeoutOperation], "unint-traced")
      assert.deepStrictEqual(
        call?.events.filter((event) => event.name === "timeout").map((event) => event.attributes),
        [{ [Tracing.attributes.timeoutOperation]: "unint-traced", [Tracing.attributes.timeoutLimitMs]: 50 }]
      )
      yield* TestClock.adjust("250 millis")
      yield* Fiber.join(fiber)
      const flush = exporter.getFinishedSpans().find((span) => span.name === "flush")
      assert.strictEqual(flush?.parentSpanContext?.spanId, call?.spanContext().spanId)
    }).pipe(Effect.provide(Tracing.layer({ serviceName: "timeout-test", exporter, processor: "simple" })))
  })
})
