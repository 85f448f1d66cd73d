import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
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
})
