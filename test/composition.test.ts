/**
 * The primitives composed in the documented order (breaker ▸ bulkhead ▸ retry ▸ timeout ▸ operation, and retry outside a
 * breaker), checked through the public package entry points.
 */
import * as Bulkhead from "@bulwark/resilience/Bulkhead"
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Failure from "@bulwark/resilience/Failure"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as Retry from "@bulwark/resilience/Retry"
import * as Timeout from "@bulwark/resilience/Timeout"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import * as fc from "fast-check"

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

/** The last failure under any number of `RetriesExhausted`. */
const innerMost = (error: unknown): unknown =>
  error instanceof Failure.RetriesExhausted ? innerMost(error.lastFailure) : error

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

  describe("a retry that gave up on rejections never trips an outer breaker", () => {
    const exhausted = (lastFailure: unknown) =>
      new Failure.RetriesExhausted({
        policy: "inner",
        reason: "MaxAttempts",
        attempts: 3,
        elapsed: Duration.millis(300),
        lastFailure
      })
    const bulkheadFull = new Bulkhead.BulkheadFullError({
      bulkhead: "inner",
      reason: "QueueFull",
      maxConcurrent: 1,
      maxQueued: 0,
      maxWait: Duration.zero
    })
    const innerOpen = new CircuitBreaker.CircuitOpenError({
      breaker: "inner",
      state: "Open",
      retryAfter: Duration.seconds(5)
    })
    const rateLimited = new RateLimiter.RateLimitedError({
      limiter: "inner",
      reason: "LimitExceeded",
      retryAfter: Duration.seconds(1),
      limit: 10,
      remaining: 0,
      reset: Duration.seconds(1)
    })
    const cases: ReadonlyArray<readonly [string, unknown]> = [
      ["BulkheadFullError", exhausted(bulkheadFull)],
      ["CircuitOpenError", exhausted(innerOpen)],
      ["RateLimitedError", exhausted(rateLimited)],
      ["BulkheadFullError, wrapped twice", exhausted(exhausted(bulkheadFull))],
      ["RateLimitedError, wrapped three times", exhausted(exhausted(exhausted(rateLimited)))]
    ]
    for (const [label, error] of cases) {
      it.effect(`RetriesExhausted of ${label}`, () =>
        Effect.gen(function*() {
          assert.isTrue(Failure.isRejection(innerMost(error)))
          const breaker = yield* CircuitBreaker.make({
            name: `compose-exhausted-rejection.${label.replaceAll(/[^A-Za-z]+/g, "-")}`,
            trip: CircuitBreaker.consecutiveFailures(2)
          })
          for (let i = 0; i < 4; i++) {
            yield* Effect.flip(CircuitBreaker.protect(Effect.fail(error), breaker))
          }
          assert.strictEqual(yield* breaker.state, "Closed")
        }))
    }

    it.effect("with countRejections, they count as the rejections themselves do", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: "compose-exhausted-rejection-counted",
          trip: CircuitBreaker.consecutiveFailures(2),
          countRejections: true
        })
        for (let i = 0; i < 2; i++) {
          yield* Effect.flip(CircuitBreaker.protect(Effect.fail(exhausted(bulkheadFull)), breaker))
        }
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("a RetriesExhausted of a real transient failure still counts, wrapped or not", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: "compose-exhausted-transient",
          trip: CircuitBreaker.consecutiveFailures(2)
        })
        yield* Effect.flip(CircuitBreaker.protect(Effect.fail(exhausted(unavailable)), breaker))
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* Effect.flip(CircuitBreaker.protect(Effect.fail(exhausted(exhausted(unavailable))), breaker))
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("a real retry around a full bulkhead, inside a breaker, leaves the breaker closed", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: "compose-retry-bulkhead",
          trip: CircuitBreaker.consecutiveFailures(2)
        })
        const bulkhead = yield* Bulkhead.make({ name: "compose-retry-bulkhead", maxConcurrent: 1 })
        const policy = yield* Retry.make({
          name: "compose-retry-bulkhead",
          backoff: Retry.constant("100 millis"),
          jitter: "none",
          maxAttempts: 2
        })
        const holder = yield* Effect.fork(Bulkhead.protect(Effect.never, bulkhead))
        yield* Effect.yieldNow()
        const call = Effect.succeed("x").pipe(
          Bulkhead.protect(bulkhead),
          Retry.retry(policy),
          CircuitBreaker.protect(breaker)
        )
        for (let i = 0; i < 3; i++) {
          const exit = yield* runToEnd(call)
          assert.isTrue(Exit.isFailure(exit))
          if (Exit.isFailure(exit)) {
            const error = Cause.failureOption(exit.cause)
            assert.isTrue(Option.isSome(error) && Failure.isRejection(innerMost(error.value)))
          }
        }
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* Fiber.interrupt(holder)
      }))
  })

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

// -----------------------------------------------------------------------------
// Stacked layers share one region (see packages/resilience/src/internal/region.ts). These check that a stack behaves
// exactly as the same layers nested one by one, which `Effect.suspend` forces (a suspended effect is not a region).
// -----------------------------------------------------------------------------

type Order = "breaker-outside" | "bulkhead-outside" | "retry-breaker-bulkhead"
type Outcome = "success" | "transient" | "terminal" | "defect"

type Command =
  | { readonly _tag: "Start" }
  | { readonly _tag: "Finish"; readonly pick: number; readonly outcome: Outcome }
  | { readonly _tag: "Interrupt"; readonly pick: number }
  | { readonly _tag: "Advance"; readonly millis: number }
  | { readonly _tag: "Read" }

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 4, arbitrary: fc.constant({ _tag: "Start" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      _tag: fc.constant("Finish" as const),
      pick: fc.nat(),
      outcome: fc.constantFrom<Outcome>("success", "transient", "transient", "terminal", "defect")
    })
  },
  { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Interrupt" as const), pick: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ _tag: fc.constant("Advance" as const), millis: fc.constantFrom(100, 300, 600, 1100) })
  },
  { weight: 1, arbitrary: fc.constant({ _tag: "Read" as const }) }
)

const terminalError = new Failure.TerminalError({ reason: "HttpStatus", message: "404", status: 404 })

let stacks = 0

/** One copy of the layers, stacked (one region) or nested; calls wait for the test to finish them. */
const makeStack = (order: Order, nested: boolean) =>
  Effect.gen(function*() {
    const name = `compose-stack.${++stacks}`
    const breaker = yield* CircuitBreaker.make({
      name,
      trip: CircuitBreaker.consecutiveFailures(2),
      openDuration: "1 second",
      halfOpen: { permits: 2, closeAfter: 2 }
    })
    const bulkhead = yield* Bulkhead.make({ name, maxConcurrent: 2, maxQueued: 2, maxWait: "800 millis" })
    const policy = yield* Retry.make({ name, backoff: Retry.constant("200 millis"), jitter: "none", maxAttempts: 3 })
    const split = <A, E, R>(effect: Effect.Effect<A, E, R>) => nested ? Effect.suspend(() => effect) : effect
    const call = (
      work: Effect.Effect<string, Failure.TransientError | Failure.TerminalError>
    ): Effect.Effect<string, unknown> => {
      switch (order) {
        case "breaker-outside":
          return work.pipe(Bulkhead.protect(bulkhead), split, CircuitBreaker.protect(breaker))
        case "bulkhead-outside":
          return work.pipe(CircuitBreaker.protect(breaker), split, Bulkhead.protect(bulkhead))
        case "retry-breaker-bulkhead":
          return work.pipe(
            Bulkhead.protect(bulkhead),
            split,
            CircuitBreaker.protect(breaker),
            split,
            Retry.retry(policy)
          )
      }
    }
    return { name, breaker, bulkhead, call }
  })

const summary = (exit: Exit.Exit<string, unknown>): string => {
  if (Exit.isSuccess(exit)) return `success ${exit.value}`
  if (Cause.isInterruptedOnly(exit.cause)) return "interrupted"
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) return "defect"
  const failure = error.value
  if (failure instanceof Failure.RetriesExhausted) {
    return `exhausted ${failure.reason} after ${failure.attempts} in ${Duration.toMillis(failure.elapsed)}ms`
  }
  return hasProperty(failure, "_tag") ? `failure ${String(failure._tag)}` : "failure"
}

const OUTCOMES = ["success", "failure", "rejected", "ignored"] as const

const observe = (stack: Effect.Effect.Success<ReturnType<typeof makeStack>>) =>
  Effect.gen(function*() {
    const snapshot = yield* Bulkhead.snapshot(stack.bulkhead)
    const calls = yield* Effect.forEach(OUTCOMES, (outcome) =>
      Effect.map(
        Metric.value(
          Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "breaker", stack.name), "outcome", outcome)
        ),
        (counter) => `${outcome}=${counter.count}`
      ))
    const retries = yield* Effect.forEach(
      ["success_first_try", "success_after_retry", "exhausted", "terminal"],
      (result) =>
        Effect.map(
          Metric.value(Metric.tagged(Metric.tagged(Metrics.retryCalls, "policy", stack.name), "result", result)),
          (counter) => `${result}=${counter.count}`
        )
    )
    return { active: snapshot.active, queued: snapshot.queued, calls, retries }
  })

interface Running {
  readonly fibers: ReadonlyArray<Fiber.RuntimeFiber<string, unknown>>
  readonly started: ReadonlyArray<Ref.Ref<number>>
  readonly finish: Deferred.Deferred<Outcome>
}

const settle = Effect.repeatN(Effect.yieldNow(), 30)

const differential = (order: Order, commands: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const stacked = yield* makeStack(order, false)
    const nested = yield* makeStack(order, true)
    const copies = [stacked, nested] as const
    const calls: Array<Running> = []
    const open = () => calls.filter((call) => call.fibers.some((fiber) => fiber.unsafePoll() === null))
    for (const [step, command] of commands.entries()) {
      const where = `${order}, step ${step} ${JSON.stringify(command)}`
      switch (command._tag) {
        case "Start": {
          const finish = yield* Deferred.make<Outcome>()
          const started = [yield* Ref.make(0), yield* Ref.make(0)]
          const fibers = yield* Effect.forEach(copies, (copy, i) => {
            const work = Effect.gen(function*() {
              yield* Ref.update(started[i] ?? (yield* Ref.make(0)), (n) => n + 1)
              const outcome = yield* Deferred.await(finish)
              switch (outcome) {
                case "success":
                  return "ok"
                case "transient":
                  return yield* Effect.fail(unavailable)
                case "terminal":
                  return yield* Effect.fail(terminalError)
                case "defect":
                  return yield* Effect.dieMessage("defect")
              }
            })
            return Effect.fork(copy.call(work))
          })
          calls.push({ fibers, started, finish })
          break
        }
        case "Finish": {
          const candidates = open()
          const call = candidates[command.pick % Math.max(1, candidates.length)]
          if (call !== undefined) yield* Deferred.succeed(call.finish, command.outcome)
          break
        }
        case "Interrupt": {
          const candidates = open()
          const call = candidates[command.pick % Math.max(1, candidates.length)]
          if (call !== undefined) {
            yield* Effect.forEach(call.fibers, (fiber) => Fiber.interrupt(fiber), { discard: true })
          }
          break
        }
        case "Advance":
          yield* settle
          yield* TestClock.adjust(command.millis)
          break
        case "Read": {
          const [a, b] = yield* Effect.forEach(copies, (copy) => copy.breaker.state)
          assert.strictEqual(a, b, `state read at ${where}`)
          break
        }
      }
      yield* settle
      const [a, b] = yield* Effect.forEach(copies, observe)
      assert.deepStrictEqual(a, b, `layers after ${where}`)
      for (const [index, call] of calls.entries()) {
        const [runsA, runsB] = yield* Effect.forEach(call.started, Ref.get)
        assert.strictEqual(runsA, runsB, `runs of call ${index} at ${where}`)
        const [exitA, exitB] = call.fibers.map((fiber) => {
          const exit = fiber.unsafePoll()
          return exit === null ? "running" : summary(exit)
        })
        assert.deepStrictEqual(exitA, exitB, `end of call ${index} at ${where}`)
      }
    }
    yield* Effect.forEach(calls.flatMap((call) => call.fibers), (fiber) => Fiber.interrupt(fiber), { discard: true })
    yield* settle
    const [a, b] = yield* Effect.forEach(copies, observe)
    assert.deepStrictEqual(a, b, `layers at rest (${order})`)
    assert.strictEqual(a.active, 0)
    assert.strictEqual(a.queued, 0)
  })

describe("stacked layers", () => {
  for (const order of ["breaker-outside", "bulkhead-outside", "retry-breaker-bulkhead"] as const) {
    it(`${order}: one region behaves as the layers nested one by one, for random calls, outcomes and clock moves`, () =>
      fc.assert(
        fc.asyncProperty(fc.array(commandArbitrary, { minLength: 10, maxLength: 60 }), (commands) =>
          Effect.runPromise(
            differential(order, commands).pipe(
              Effect.provide(TestContext.TestContext),
              Effect.provide(Logger.remove(Logger.defaultLogger))
            )
          )),
        { numRuns: 25 }
      ))
  }

  it.effect("an interrupted call inside breaker + bulkhead hands both permits back and is no failure", () =>
    Effect.gen(function*() {
      const name = `compose-interrupt.${++stacks}`
      const breaker = yield* CircuitBreaker.make({
        name,
        trip: CircuitBreaker.consecutiveFailures(1),
        openDuration: "1 second",
        halfOpen: { permits: 1, closeAfter: 1 }
      })
      const bulkhead = yield* Bulkhead.make({ name, maxConcurrent: 1 })
      const call = (work: Effect.Effect<string, Failure.TransientError>) =>
        work.pipe(Bulkhead.protect(bulkhead), CircuitBreaker.protect(breaker))
      yield* Effect.exit(call(Effect.fail(unavailable)))
      yield* TestClock.adjust("1 second")
      const running = yield* Deferred.make<void>()
      const probe = yield* Effect.fork(call(Effect.zipRight(Deferred.succeed(running, undefined), Effect.never)))
      yield* Deferred.await(running)
      assert.strictEqual((yield* Bulkhead.snapshot(bulkhead)).active, 1)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(probe)))
      assert.strictEqual((yield* Bulkhead.snapshot(bulkhead)).active, 0)
      assert.strictEqual(yield* breaker.state, "HalfOpen")
      const ignored = Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "breaker", name), "outcome", "ignored")
      assert.strictEqual((yield* Metric.value(ignored)).count, 1)
      // Both permits are free: the next call is the probe, and it closes the breaker.
      assert.strictEqual(yield* call(Effect.succeed("ok")), "ok")
      assert.strictEqual(yield* breaker.state, "Closed")
    }))

  it.effect("a retry around a breaker counts a first-try success once, and retries measure time from the first try", () =>
    Effect.gen(function*() {
      const name = `compose-first-try.${++stacks}`
      const breaker = yield* CircuitBreaker.make({ name, trip: CircuitBreaker.consecutiveFailures(10) })
      const policy = yield* Retry.make({
        name,
        backoff: Retry.constant("100 millis"),
        jitter: "none",
        maxAttempts: 3
      })
      const firstTry = Metric.tagged(Metric.tagged(Metrics.retryCalls, "policy", name), "result", "success_first_try")
      assert.strictEqual(yield* Retry.retry(CircuitBreaker.protect(Effect.succeed("ok"), breaker), policy), "ok")
      assert.strictEqual((yield* Metric.value(firstTry)).count, 1)
      // Each attempt takes 1 s: the budget runs from the start of the first one.
      const slowFailure = Effect.zipRight(Effect.sleep("1 second"), Effect.fail(unavailable))
      const exit = yield* runToEnd(Retry.retry(CircuitBreaker.protect(slowFailure, breaker), policy))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag !== "RetriesExhausted") return
      assert.strictEqual(error.attempts, 3)
      assert.strictEqual(Duration.toMillis(error.elapsed), 3000 + 2 * 100)
      assert.strictEqual((yield* Metric.value(firstTry)).count, 1)
    }))

  it.effect("stacked layers keep the caller's interruptibility", () =>
    Effect.gen(function*() {
      const name = `compose-restore.${++stacks}`
      const breaker = yield* CircuitBreaker.make({ name })
      const bulkhead = yield* Bulkhead.make({ name, maxConcurrent: 1 })
      const call = Effect.checkInterruptible(Effect.succeed).pipe(
        Bulkhead.protect(bulkhead),
        CircuitBreaker.protect(breaker)
      )
      assert.isTrue(yield* call)
      assert.isFalse(yield* Effect.uninterruptible(call))
      assert.isTrue(yield* call)
    }))
})
