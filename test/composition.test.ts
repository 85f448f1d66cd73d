/**
 * The primitives composed in the documented order (breaker ▸ bulkhead ▸ retry ▸ timeout ▸ operation, and retry outside a
 * breaker), checked through the public package entry points.
 */
import { Bulkhead, CircuitBreaker, Failure, Retry, Timeout } from "@bulwark/resilience"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"

const runToEnd = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const fiber = yield* Effect.fork(effect)
    for (let step = 0; step < 10_000; step++) {
      yield* Effect.yieldNow()
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return exit.value
      const sleeps = yield* TestClock.sleeps()
      if (Chunk.isNonEmpty(sleeps)) yield* TestClock.setTime(Math.min(...sleeps))
    }
    return yield* Effect.dieMessage("runToEnd: the effect did not finish")
  })

const unavailable = new Failure.TransientError({ reason: "HttpStatus", message: "503", status: 503 })

describe("composition", () => {
  it.effect("a retry outside an open breaker waits for the breaker's retryAfter before trying again", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        name: "compose-open",
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "10 seconds",
        halfOpen: { permits: 1, closeAfter: 1 }
      })
      const calls = yield* Ref.make<ReadonlyArray<number>>([])
      const dependency = Effect.gen(function*() {
        const now = yield* TestClock.currentTimeMillis
        const seen = yield* Ref.updateAndGet(calls, (xs) => [...xs, now])
        if (seen.length <= 2) return yield* Effect.fail(unavailable)
        return "ok"
      })
      const policy = yield* Retry.make({
        name: "compose-open",
        backoff: Retry.constant("100 millis"),
        jitter: "none",
        maxAttempts: 5
      })
      const exit = yield* runToEnd(dependency.pipe(CircuitBreaker.protect(breaker), Retry.retry(policy)))
      assert.deepStrictEqual(exit, Exit.succeed("ok"))
      // two failures open the breaker at t=100; the rejected third attempt carries retryAfter ≈ 10 s,
      // so the dependency is called again only once the breaker half-opens.
      const times = yield* Ref.get(calls)
      assert.strictEqual(times.length, 3)
      assert.isAtLeast(times[2] ?? 0, 10_000)
    }))

  it.effect("a full bulkhead inside a breaker never trips it", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        name: "compose-bulkhead",
        trip: CircuitBreaker.consecutiveFailures(1)
      })
      const bulkhead = yield* Bulkhead.make({ name: "compose-bulkhead", maxConcurrent: 1 })
      const protectedCall = (work: Effect.Effect<string>) =>
        work.pipe(Bulkhead.protect(bulkhead), CircuitBreaker.protect(breaker))
      const holder = yield* Effect.fork(protectedCall(Effect.never))
      yield* Effect.yieldNow()
      for (let i = 0; i < 5; i++) {
        const error = yield* Effect.flip(protectedCall(Effect.succeed("x")))
        assert.strictEqual(error._tag, "BulkheadFullError")
        assert.isTrue(Failure.isRejection(error))
      }
      assert.strictEqual(yield* breaker.state, "Closed")
      yield* Fiber.interrupt(holder)
      assert.strictEqual(yield* protectedCall(Effect.succeed("after")), "after")
    }))

  it.effect("per-attempt timeouts count as breaker failures, and retries stop at the breaker", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({
        name: "compose-timeout",
        trip: CircuitBreaker.consecutiveFailures(3),
        openDuration: "1 minute"
      })
      const perAttempt = yield* Timeout.make({ operation: "compose-timeout", limit: "1 second" })
      const policy = yield* Retry.make({
        name: "compose-timeout",
        backoff: Retry.constant("100 millis"),
        jitter: "none",
        maxAttempts: 10,
        maxElapsed: "30 seconds"
      })
      const attempts = yield* Ref.make(0)
      const slow = Ref.update(attempts, (n) => n + 1).pipe(Effect.zipRight(Effect.never))
      const exit = yield* runToEnd(
        slow.pipe(Timeout.timeout(perAttempt), CircuitBreaker.protect(breaker), Retry.retry(policy))
      )
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag !== "RetriesExhausted") return
      // three timeouts open the breaker; the next rejection says "come back in a minute", beyond the 30 s budget.
      assert.strictEqual(yield* Ref.get(attempts), 3)
      assert.strictEqual(error.reason, "MaxElapsed")
      assert.strictEqual(error.lastFailure._tag, "CircuitOpenError")
      assert.strictEqual(yield* breaker.state, "Open")
      assert.isTrue(Duration.lessThan(error.elapsed, Duration.seconds(30)))
    }))
})
