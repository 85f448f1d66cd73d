import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as HashMap from "effect/HashMap"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as CircuitBreaker from "./CircuitBreaker.js"

// The metric registry is process-global: every breaker in this file gets its own name.
let breakers = 0
const uniqueName = (label: string) => `cb-test.${label}.${++breakers}`

const transient = new Failure.TransientError({ reason: "Transport", message: "connection reset" })
const terminal = new Failure.TerminalError({ reason: "HttpStatus", message: "404 Not Found", status: 404 })

class BulkheadFull extends Data.TaggedError("BulkheadFull")<{}> {
  readonly [Failure.TransientTypeId]: typeof Failure.TransientTypeId = Failure.TransientTypeId
  readonly [Failure.RejectionTypeId]: typeof Failure.RejectionTypeId = Failure.RejectionTypeId
}

const failing = Effect.fail(transient)
const succeeding = Effect.succeed("ok")

const attempt = <A, E>(breaker: CircuitBreaker.CircuitBreaker, effect: Effect.Effect<A, E>) =>
  Effect.either(CircuitBreaker.protect(effect, breaker))

const repeatCall = <A, E>(breaker: CircuitBreaker.CircuitBreaker, effect: Effect.Effect<A, E>, times: number) =>
  Effect.forEach(Array.from({ length: times }), () => attempt(breaker, effect))

const rejection = <A, E>(result: Either.Either<A, E | CircuitBreaker.CircuitOpenError>) => {
  assert(Either.isLeft(result), "expected the call to fail")
  assert(CircuitBreaker.isCircuitOpenError(result.left), "expected a CircuitOpenError")
  return result.left
}

/** A call that takes `millis` of Clock time; run it forked and move the TestClock. */
const slowCall = (breaker: CircuitBreaker.CircuitBreaker, millis: number, outcome: "ok" | "fail" = "ok") =>
  Effect.gen(function*() {
    const body = Effect.zipRight(Effect.sleep(millis), outcome === "ok" ? succeeding : failing)
    const fiber = yield* Effect.fork(attempt(breaker, body))
    yield* TestClock.adjust(millis)
    return yield* Fiber.join(fiber)
  })

const stateGauge = (name: string, state: string) =>
  Metric.tagged(Metric.tagged(Metrics.circuitBreakerState, "breaker", name), "state", state)
const callCounter = (name: string, outcome: string) =>
  Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "breaker", name), "outcome", outcome)
const transitionCounter = (name: string, from: string, to: string) =>
  Metric.tagged(
    Metric.tagged(Metric.tagged(Metrics.circuitBreakerTransitions, "breaker", name), "from", from),
    "to",
    to
  )

describe("CircuitBreaker", () => {
  describe("defaults", () => {
    it.effect("opens after 5 consecutive failures, stays open 30 s, and closes after 3 successful probes", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ name: uniqueName("defaults") })
        yield* repeatCall(breaker, failing, 4)
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* attempt(breaker, failing)
        assert.strictEqual(yield* breaker.state, "Open")

        const refused = rejection(yield* attempt(breaker, succeeding))
        assert.deepStrictEqual(refused.retryAfter, Duration.seconds(30))

        yield* TestClock.adjust("29 seconds")
        assert.deepStrictEqual(rejection(yield* attempt(breaker, succeeding)).retryAfter, Duration.seconds(1))
        yield* TestClock.adjust("1 second")
        yield* repeatCall(breaker, succeeding, 2)
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        yield* attempt(breaker, succeeding)
        assert.strictEqual(yield* breaker.state, "Closed")
      }))

    it.effect("a rejected call is a transient rejection that says which breaker, why and for how long", () =>
      Effect.gen(function*() {
        const name = uniqueName("error")
        const breaker = yield* CircuitBreaker.make({ name, trip: CircuitBreaker.consecutiveFailures(1) })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("12500 millis")
        const error = rejection(yield* attempt(breaker, succeeding))
        assert.strictEqual(error._tag, "CircuitOpenError")
        assert.strictEqual(error.breaker, name)
        assert.strictEqual(error.state, "Open")
        assert.isTrue(Failure.isTransient(error))
        assert.isTrue(Failure.isRejection(error))
        assert.isFalse(Failure.isTerminal(error))
        assert.deepStrictEqual(Failure.retryAfterOf(error), Option.some(Duration.millis(17_500)))
        assert.strictEqual(error.message, `Circuit breaker "${name}" is open; it half-opens in 17.5s`)
      }))

    it.effect("does not run the protected effect when it rejects", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ name: uniqueName("no-run"), initialState: "ForcedOpen" })
        const runs = yield* Ref.make(0)
        yield* attempt(breaker, Ref.update(runs, (n) => n + 1))
        assert.strictEqual(yield* Ref.get(runs), 0)
      }))
  })

  describe("trip strategies", () => {
    it.effect("consecutive failures: a success in between starts the count again", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("consecutive"),
          trip: CircuitBreaker.consecutiveFailures(3)
        })
        yield* repeatCall(breaker, failing, 2)
        yield* attempt(breaker, succeeding)
        yield* repeatCall(breaker, failing, 2)
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* attempt(breaker, failing)
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("failure rate over a count window: opens only once the minimum number of calls is reached", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("count-rate"),
          trip: CircuitBreaker.failureRate({ threshold: 50, window: { calls: 10 }, minimumCalls: 6 })
        })
        // 5 calls, 100% failed, but below the minimum.
        yield* repeatCall(breaker, failing, 5)
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* attempt(breaker, succeeding)
        // 6 calls, 5 failed: 83% ≥ 50%.
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("failure rate over a count window: stays closed below the threshold", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("count-rate-below"),
          trip: CircuitBreaker.failureRate({ threshold: 50, window: { calls: 10 }, minimumCalls: 10 })
        })
        for (let i = 0; i < 20; i++) {
          yield* attempt(breaker, i % 3 === 0 ? failing : succeeding)
        }
        assert.strictEqual(yield* breaker.state, "Closed")
      }))

    it.effect("failure rate over a time window: failures older than the window no longer count", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("time-rate"),
          trip: CircuitBreaker.failureRate({
            threshold: 50,
            window: { duration: "10 seconds", buckets: 10 },
            minimumCalls: 4
          })
        })
        yield* repeatCall(breaker, failing, 3)
        yield* TestClock.adjust("10 seconds")
        // The three failures have expired: 1 failure out of 1 call is below the minimum.
        yield* attempt(breaker, failing)
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* repeatCall(breaker, succeeding, 2)
        // 1 failure out of 3 + this one = 2 of 4: 50%.
        yield* attempt(breaker, failing)
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("slow-call rate: calls slower than slowCallDuration open it even when they succeed", () =>
      Effect.gen(function*() {
        const name = uniqueName("slow")
        const breaker = yield* CircuitBreaker.make({
          name,
          slowCallDuration: "1 second",
          trip: CircuitBreaker.slowCallRate({ threshold: 50, window: { calls: 4 }, minimumCalls: 4 })
        })
        yield* slowCall(breaker, 1000)
        yield* slowCall(breaker, 1001)
        yield* slowCall(breaker, 10)
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* slowCall(breaker, 2000, "fail")
        assert.strictEqual(yield* breaker.state, "Open")
        assert.strictEqual((yield* Metric.value(callCounter(name, "slow_success"))).count, 1)
        assert.strictEqual((yield* Metric.value(callCounter(name, "slow_failure"))).count, 1)
        assert.strictEqual((yield* Metric.value(callCounter(name, "success"))).count, 2)
      }))

    it.effect("a custom strategy decides when to open", () =>
      Effect.gen(function*() {
        const twoFailuresEver = CircuitBreaker.makeTripStrategy({
          name: "two-failures-ever",
          initial: 0,
          record: (failures: number, call) => failures + (call.failure ? 1 : 0),
          check: (failures) =>
            failures >= 2
              ? Option.some({
                strategy: "two-failures-ever",
                observed: failures,
                threshold: 2,
                calls: failures,
                description: "two"
              })
              : Option.none()
        })
        const breaker = yield* CircuitBreaker.make({ name: uniqueName("custom"), trip: twoFailuresEver })
        yield* attempt(breaker, failing)
        yield* repeatCall(breaker, succeeding, 5)
        yield* attempt(breaker, failing)
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("any of several strategies opens it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("several"),
          trip: [
            CircuitBreaker.consecutiveFailures(100),
            CircuitBreaker.failureRate({ window: { calls: 4 }, minimumCalls: 4 })
          ]
        })
        yield* repeatCall(breaker, failing, 4)
        assert.strictEqual(yield* breaker.state, "Open")
      }))
  })

  describe("open duration", () => {
    it.effect("a schedule backs off across consecutive openings and restarts after a clean close", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("schedule"),
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: Schedule.exponential("1 second"),
          halfOpen: { permits: 1, closeAfter: 1 }
        })
        const retryAfter = Effect.map(attempt(breaker, succeeding), (result) => rejection(result).retryAfter)
        yield* attempt(breaker, failing)
        assert.deepStrictEqual(yield* retryAfter, Duration.seconds(1))
        yield* TestClock.adjust("1 second")
        yield* attempt(breaker, failing) // the probe fails
        assert.deepStrictEqual(yield* retryAfter, Duration.seconds(2))
        yield* TestClock.adjust("2 seconds")
        yield* attempt(breaker, failing)
        assert.deepStrictEqual(yield* retryAfter, Duration.seconds(4))
        yield* TestClock.adjust("4 seconds")
        yield* attempt(breaker, succeeding) // a clean close
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* attempt(breaker, failing)
        assert.deepStrictEqual(yield* retryAfter, Duration.seconds(1))
      }))

    it.effect("a jittered schedule draws each opening's duration when it opens, reproducibly under a seeded Random", () =>
      Effect.gen(function*() {
        /** The open durations of `cycles` open/half-open/close cycles, then of `cycles` reopenings in a row. */
        const durations = (seed: string, cycles: number) =>
          Effect.withRandom(
            Effect.gen(function*() {
              const breaker = yield* CircuitBreaker.make({
                name: uniqueName("jittered"),
                trip: CircuitBreaker.consecutiveFailures(1),
                openDuration: Schedule.spaced("10 seconds").pipe(Schedule.jittered),
                halfOpen: { permits: 1, closeAfter: 1 }
              })
              const openFor = Effect.map(
                attempt(breaker, succeeding),
                (result) => Duration.toMillis(rejection(result).retryAfter)
              )
              const afterClose: Array<number> = []
              for (let cycle = 0; cycle < cycles; cycle++) {
                yield* attempt(breaker, failing)
                const millis = yield* openFor
                afterClose.push(millis)
                yield* TestClock.adjust(Duration.millis(millis))
                yield* attempt(breaker, succeeding) // a clean close: the schedule restarts
                assert.strictEqual(yield* breaker.state, "Closed")
              }
              const reopened: Array<number> = []
              yield* attempt(breaker, failing)
              for (let opening = 0; opening < cycles; opening++) {
                const millis = yield* openFor
                reopened.push(millis)
                yield* TestClock.adjust(Duration.millis(millis))
                yield* attempt(breaker, failing) // the probe fails: the next opening
              }
              return { afterClose, reopened }
            }),
            Random.make(seed)
          )
        const first = yield* durations("seed-1", 6)
        for (const millis of [...first.afterClose, ...first.reopened]) {
          assert.isAtLeast(millis, 8_000)
          assert.isAtMost(millis, 12_000)
        }
        // Before, every cycle repeated one precomputed "random" sequence: every first opening lasted the same.
        assert.isAbove(new Set(first.afterClose).size, 1)
        assert.isAbove(new Set(first.reopened).size, 1)
        assert.deepStrictEqual(yield* durations("seed-1", 6), first)
        assert.notDeepEqual(yield* durations("seed-2", 6), first)
      }))

    it.effect("a finished schedule keeps its last delay", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("schedule-done"),
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: Schedule.spaced("5 seconds").pipe(Schedule.intersect(Schedule.recurs(1))),
          halfOpen: { permits: 1, closeAfter: 1 }
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("5 seconds")
        yield* attempt(breaker, failing)
        assert.deepStrictEqual(rejection(yield* attempt(breaker, succeeding)).retryAfter, Duration.seconds(5))
      }))
  })

  describe("half-open", () => {
    it.effect("reopens when a probe fails", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("probe-fails"),
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: "1 second"
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        yield* attempt(breaker, succeeding)
        yield* attempt(breaker, failing)
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("with a probe failure-rate threshold, tolerates some failed probes", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("probe-rate"),
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: "1 second",
          halfOpen: { permits: 10, closeAfter: 6, failureRateThreshold: 50 }
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        yield* repeatCall(breaker, failing, 4)
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        yield* repeatCall(breaker, succeeding, 6)
        assert.strictEqual(yield* breaker.state, "Closed")
      }))

    it.effect("an interrupted probe hands its permit back and is not a failure", () =>
      Effect.gen(function*() {
        const name = uniqueName("interrupt")
        const breaker = yield* CircuitBreaker.make({
          name,
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: "1 second",
          halfOpen: { permits: 1, closeAfter: 1 }
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        const running = yield* Deferred.make<void>()
        const probe = yield* Effect.fork(
          CircuitBreaker.protect(Effect.zipRight(Deferred.succeed(running, undefined), Effect.never), breaker)
        )
        yield* Deferred.await(running)
        // The only permit is taken.
        assert.strictEqual(rejection(yield* attempt(breaker, succeeding)).state, "HalfOpen")
        const exit = yield* Fiber.interrupt(probe)
        assert.isTrue(Exit.isInterrupted(exit))
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        assert.strictEqual((yield* Metric.value(callCounter(name, "ignored"))).count, 1)
        // The permit is free again: the next call is the probe, and it closes the breaker.
        assert.isTrue(Either.isRight(yield* attempt(breaker, succeeding)))
        assert.strictEqual(yield* breaker.state, "Closed")
      }))
  })

  describe("half-open time limit", () => {
    it.effect("a probe that never completes cannot keep the breaker half-open past maxDuration", () =>
      Effect.scoped(Effect.gen(function*() {
        const name = uniqueName("half-open-limit")
        const breaker = yield* CircuitBreaker.make({
          name,
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: Schedule.exponential("1 second"),
          halfOpen: { permits: 1, closeAfter: 1, maxDuration: "5 seconds" }
        })
        const events = yield* breaker.subscribe
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        // The only probe hangs.
        const hung = yield* Effect.fork(attempt(breaker, Effect.never))
        yield* Effect.yieldNow()
        assert.strictEqual(rejection(yield* attempt(breaker, succeeding)).state, "HalfOpen")
        yield* TestClock.adjust("4999 millis")
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        yield* TestClock.adjust("1 millis")
        // Run out: it opens again, as the second opening (2 s), on this state read.
        assert.strictEqual(yield* breaker.state, "Open")
        assert.deepStrictEqual(rejection(yield* attempt(breaker, succeeding)).retryAfter, Duration.seconds(2))
        const reopened = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).filter((event) =>
          event._tag === "StateChanged" && event.from === "HalfOpen"
        )
        assert.strictEqual(reopened.length, 1)
        const event = reopened[0]
        assert(event?._tag === "StateChanged" && event.reason._tag === "ProbesTimedOut")
        assert.strictEqual(event.to, "Open")
        assert.deepStrictEqual(event.reason.waited, Duration.seconds(5))
        assert.strictEqual(
          (yield* Metric.value(transitionCounter(name, "half_open", "open"))).count,
          1
        )
        // The next half-open period gets a probe of its own and closes the breaker; the hung probe changes nothing.
        yield* TestClock.adjust("2 seconds")
        assert.isTrue(Either.isRight(yield* attempt(breaker, succeeding)))
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* Fiber.interrupt(hung)
        assert.strictEqual(yield* breaker.state, "Closed")
      })))

    it.effect("without maxDuration a probe may take as long as it takes", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("half-open-unlimited"),
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: "1 second",
          halfOpen: { permits: 1, closeAfter: 1 }
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        const slow = yield* Effect.fork(attempt(breaker, Effect.zipRight(Effect.sleep("1 hour"), succeeding)))
        yield* Effect.yieldNow()
        yield* TestClock.adjust("59 minutes")
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        yield* TestClock.adjust("1 minute")
        assert.isTrue(Either.isRight(yield* Fiber.join(slow)))
        assert.strictEqual(yield* breaker.state, "Closed")
      }))
  })

  describe("interruptibility", () => {
    it.effect("a protected effect runs with its caller's interruptibility, however often it is reused", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ name: uniqueName("restore") })
        const call = CircuitBreaker.protect(Effect.checkInterruptible(Effect.succeed), breaker)
        assert.isTrue(yield* call)
        assert.isFalse(yield* Effect.uninterruptible(call))
        assert.isTrue(yield* call)
      }))

    it.effect("a call interrupted on a closed breaker is counted as ignored, never as a failure", () =>
      Effect.gen(function*() {
        const name = uniqueName("interrupt-closed")
        const breaker = yield* CircuitBreaker.make({ name, trip: CircuitBreaker.consecutiveFailures(1) })
        const running = yield* Deferred.make<void>()
        const call = yield* Effect.fork(
          CircuitBreaker.protect(Effect.zipRight(Deferred.succeed(running, undefined), Effect.never), breaker)
        )
        yield* Deferred.await(running)
        assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(call)))
        assert.strictEqual(yield* breaker.state, "Closed")
        assert.strictEqual((yield* Metric.value(callCounter(name, "ignored"))).count, 1)
        assert.strictEqual((yield* Metric.value(callCounter(name, "failure"))).count, 0)
      }))
  })

  describe("what counts", () => {
    it.effect("terminal failures are ignored: a 404 never trips the breaker", () =>
      Effect.gen(function*() {
        const name = uniqueName("terminal")
        const breaker = yield* CircuitBreaker.make({ name, trip: CircuitBreaker.consecutiveFailures(1) })
        yield* repeatCall(breaker, Effect.fail(terminal), 20)
        assert.strictEqual(yield* breaker.state, "Closed")
        assert.strictEqual((yield* Metric.value(callCounter(name, "ignored"))).count, 20)
      }))

    it.effect("errors outside the failure model count as failures", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("unclassified"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        yield* attempt(breaker, Effect.fail(new Error("boom")))
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("defects count as failures", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("defect"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        yield* Effect.exit(CircuitBreaker.protect(Effect.dieMessage("bug"), breaker))
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("rejections by other policies are ignored by default", () =>
      Effect.gen(function*() {
        const inner = yield* CircuitBreaker.make({ name: uniqueName("inner"), initialState: "ForcedOpen" })
        const outer = yield* CircuitBreaker.make({
          name: uniqueName("outer"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        yield* repeatCall(outer, Effect.fail(new BulkheadFull()), 5)
        yield* repeatCall(outer, CircuitBreaker.protect(succeeding, inner), 5)
        assert.strictEqual(yield* outer.state, "Closed")
      }))

    it.effect("rejections count when countRejections is set", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("count-rejections"),
          trip: CircuitBreaker.consecutiveFailures(2),
          countRejections: true
        })
        yield* repeatCall(breaker, Effect.fail(new BulkheadFull()), 2)
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("predicates record or ignore errors, and treat some successes as failures", () =>
      Effect.gen(function*() {
        class HttpError extends Data.TaggedError("HttpError")<{ readonly status: number }> {}
        const breaker = yield* CircuitBreaker.make<HttpError, { readonly status: number }>({
          name: uniqueName("predicates"),
          trip: CircuitBreaker.consecutiveFailures(2),
          ignoreError: (error) => error.status === 429,
          recordError: (error) => error.status >= 500,
          recordResult: (response) => response.status === 503
        })
        const call = (effect: Effect.Effect<{ readonly status: number }, HttpError>) =>
          Effect.either(breaker.protect(effect))
        yield* call(Effect.fail(new HttpError({ status: 500 })))
        yield* call(Effect.fail(new HttpError({ status: 429 }))) // ignored: the count stays at 1
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* call(Effect.succeed({ status: 503 })) // a success that is a failure
        assert.strictEqual(yield* breaker.state, "Open")
      }))

    it.effect("a throwing predicate counts the call as failed rather than losing it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("throwing"),
          trip: CircuitBreaker.consecutiveFailures(1),
          recordResult: () => {
            throw new Error("bug in predicate")
          }
        })
        const result = yield* attempt(breaker, succeeding)
        assert.isTrue(Either.isRight(result))
        assert.strictEqual(yield* breaker.state, "Open")
      }))
  })

  describe("manual controls", () => {
    it.effect("isolate forces it open until it is closed", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({ name: uniqueName("isolate"), openDuration: "10 seconds" })
        yield* breaker.isolate
        const error = rejection(yield* attempt(breaker, succeeding))
        assert.strictEqual(error.state, "ForcedOpen")
        assert.deepStrictEqual(error.retryAfter, Duration.seconds(10))
        yield* TestClock.adjust("1 hour")
        assert.strictEqual(yield* breaker.state, "ForcedOpen")
        yield* breaker.close
        assert.isTrue(Either.isRight(yield* attempt(breaker, succeeding)))
      }))

    it.effect("disable lets every call through and nothing opens it", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("disable"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        yield* breaker.disable
        yield* repeatCall(breaker, failing, 10)
        assert.strictEqual(yield* breaker.state, "Disabled")
      }))

    it.effect("metrics-only reports what would have opened it and lets calls through", () =>
      Effect.scoped(Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("shadow"),
          trip: CircuitBreaker.consecutiveFailures(2)
        })
        yield* breaker.metricsOnly
        const events = yield* breaker.subscribe
        const results = yield* repeatCall(breaker, failing, 4)
        assert.isTrue(results.every((result) => Either.isLeft(result) && result.left === transient))
        assert.strictEqual(yield* breaker.state, "MetricsOnly")
        const exceeded = Chunk.filter(yield* Queue.takeAll(events), (event) => event._tag === "ThresholdExceeded")
        assert.strictEqual(Chunk.size(exceeded), 2)
      })))

    it.effect("reset closes it and forgets the schedule's progress", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("reset"),
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: Schedule.exponential("1 second"),
          halfOpen: { permits: 1, closeAfter: 1 }
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        yield* attempt(breaker, failing) // second opening: 2 s
        yield* breaker.reset
        assert.strictEqual(yield* breaker.state, "Closed")
        yield* attempt(breaker, failing)
        assert.deepStrictEqual(rejection(yield* attempt(breaker, succeeding)).retryAfter, Duration.seconds(1))
      }))
  })

  describe("events and logs", () => {
    it.effect("the event stream reports outcomes, rejections and transitions, with why it opened", () =>
      Effect.scoped(Effect.gen(function*() {
        const name = uniqueName("events")
        const breaker = yield* CircuitBreaker.make({
          name,
          trip: CircuitBreaker.failureRate({ threshold: 50, window: { calls: 4 }, minimumCalls: 4 }),
          openDuration: "5 seconds"
        })
        const events = yield* breaker.subscribe
        yield* attempt(breaker, succeeding)
        yield* repeatCall(breaker, failing, 3)
        yield* attempt(breaker, succeeding)
        const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
        assert.deepStrictEqual(seen.map((event) => event._tag), [
          "CallRecorded",
          "CallRecorded",
          "CallRecorded",
          "CallRecorded",
          "StateChanged",
          "CallRejected"
        ])
        const opened = seen[4]
        assert(opened?._tag === "StateChanged" && opened.reason._tag === "Tripped")
        assert.strictEqual(opened.breaker, name)
        assert.strictEqual(opened.from, "Closed")
        assert.strictEqual(opened.to, "Open")
        assert.deepStrictEqual(opened.reason.openFor, Duration.seconds(5))
        assert.deepInclude(opened.reason.trip, { strategy: "failure-rate", observed: 75, threshold: 50, calls: 4 })
        assert.strictEqual(opened.reason.trip.description, "failure rate 75% ≥ 50% over the last 4 calls")
      })))

    it.effect("a call admitted before anyone listened publishes no outcome, but the transition it causes is published", () =>
      Effect.scoped(Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("late-subscriber"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        const release = yield* Deferred.make<void>()
        // Admitted with no subscriber: the breaker did not read the clock for it, so it has no duration to report.
        const early = yield* Effect.fork(attempt(breaker, Effect.zipRight(Deferred.await(release), failing)))
        yield* Effect.yieldNow()
        const events = yield* breaker.subscribe
        // Admitted while subscribed: measured and reported.
        const measured = yield* Effect.fork(attempt(breaker, Effect.zipRight(Effect.sleep("250 millis"), succeeding)))
        yield* TestClock.adjust("250 millis")
        yield* Fiber.join(measured)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(early)
        const seen = Chunk.toReadonlyArray(yield* Queue.takeAll(events))
        assert.deepStrictEqual(seen.map((event) => event._tag), ["CallRecorded", "StateChanged"])
        const recorded = seen[0]
        assert(recorded?._tag === "CallRecorded")
        assert.strictEqual(recorded.outcome, "success")
        assert.deepStrictEqual(recorded.duration, Duration.millis(250))
        assert.strictEqual(yield* breaker.state, "Open")
      })))

    it.effect("events is a stream of the same events", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("stream"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        const collected = yield* Effect.fork(Stream.runCollect(Stream.take(breaker.events, 2)))
        // Let the stream subscribe before the calls.
        yield* Effect.yieldNow()
        yield* Effect.yieldNow()
        yield* attempt(breaker, failing)
        const tags = Chunk.toReadonlyArray(yield* Fiber.join(collected)).map((event) => event._tag)
        assert.deepStrictEqual(tags, ["CallRecorded", "StateChanged"])
      }))

    it.effect("every transition is logged: a warning when it opens, info when it half-opens or closes", () =>
      Effect.gen(function*() {
        const logs: Array<{ level: string; message: string; annotations: HashMap.HashMap<string, unknown> }> = []
        const capture = Logger.make(({ annotations, logLevel, message }) => {
          logs.push({
            level: logLevel.label,
            message: Array.isArray(message) ? message.join(" ") : String(message),
            annotations
          })
        })
        const name = uniqueName("logs")
        yield* Effect.gen(function*() {
          const breaker = yield* CircuitBreaker.make({
            name,
            trip: CircuitBreaker.consecutiveFailures(1),
            openDuration: "1 second",
            halfOpen: { permits: 1, closeAfter: 1 }
          })
          yield* attempt(breaker, failing)
          yield* TestClock.adjust("1 second")
          yield* attempt(breaker, succeeding)
        }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, capture)))
        assert.deepStrictEqual(logs.map((log) => log.level), ["WARN", "INFO", "INFO"])
        assert.strictEqual(
          logs[0]?.message,
          `Circuit breaker "${name}" opened: 1 consecutive failure (threshold 1); half-opens in 1s`
        )
        const annotations = logs[0]?.annotations ?? HashMap.empty()
        assert.deepStrictEqual(HashMap.get(annotations, "breaker"), Option.some(name))
        assert.deepStrictEqual(HashMap.get(annotations, "to"), Option.some("Open"))
        assert.deepStrictEqual(HashMap.get(annotations, "strategy"), Option.some("consecutive-failures"))
      }))
  })

  describe("metrics", () => {
    it.effect("the state gauge is 1 for the current state and 0 for the five others, from creation on", () =>
      Effect.gen(function*() {
        const name = uniqueName("gauge")
        const breaker = yield* CircuitBreaker.make({ name, trip: CircuitBreaker.consecutiveFailures(1) })
        const gauges = Effect.forEach(
          ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"],
          (state) => Effect.map(Metric.value(stateGauge(name, state)), (gauge) => gauge.value)
        )
        assert.deepStrictEqual(yield* gauges, [1, 0, 0, 0, 0, 0])
        yield* attempt(breaker, failing)
        assert.deepStrictEqual(yield* gauges, [0, 1, 0, 0, 0, 0])
        yield* TestClock.adjust("30 seconds")
        yield* breaker.state
        assert.deepStrictEqual(yield* gauges, [0, 0, 1, 0, 0, 0])
        yield* breaker.isolate
        assert.deepStrictEqual(yield* gauges, [0, 0, 0, 1, 0, 0])
        yield* breaker.disable
        assert.deepStrictEqual(yield* gauges, [0, 0, 0, 0, 1, 0])
        yield* breaker.metricsOnly
        assert.deepStrictEqual(yield* gauges, [0, 0, 0, 0, 0, 1])
      }))

    it.effect("calls are counted by outcome and transitions by from and to", () =>
      Effect.gen(function*() {
        const name = uniqueName("counters")
        const breaker = yield* CircuitBreaker.make({ name, trip: CircuitBreaker.consecutiveFailures(2) })
        yield* repeatCall(breaker, succeeding, 3)
        yield* attempt(breaker, Effect.fail(terminal))
        yield* repeatCall(breaker, failing, 2)
        yield* repeatCall(breaker, succeeding, 4)
        const count = (outcome: string) => Effect.map(Metric.value(callCounter(name, outcome)), (c) => c.count)
        assert.strictEqual(yield* count("success"), 3)
        assert.strictEqual(yield* count("ignored"), 1)
        assert.strictEqual(yield* count("failure"), 2)
        assert.strictEqual(yield* count("rejected"), 4)
        assert.strictEqual((yield* Metric.value(transitionCounter(name, "closed", "open"))).count, 1)
        assert.strictEqual((yield* Metric.value(transitionCounter(name, "open", "half_open"))).count, 0)
      }))
  })

  describe("automatic transition (makeScoped)", () => {
    const gaugesOf = (name: string) =>
      Effect.forEach(
        ["closed", "open", "half_open", "forced_open", "disabled", "metrics_only"],
        (state) => Effect.map(Metric.value(stateGauge(name, state)), (gauge) => gauge.value)
      )
    const count = (name: string, from: string, to: string) =>
      Effect.map(Metric.value(transitionCounter(name, from, to)), (counter) => counter.count)

    it.scoped("an idle breaker half-opens when its open duration ends: gauge, counter and event, with no call or read", () =>
      Effect.gen(function*() {
        const name = uniqueName("auto-half-open")
        const breaker = yield* CircuitBreaker.makeScoped({
          name,
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: "10 seconds"
        })
        const events = yield* breaker.subscribe
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("9999 millis")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 1, 0, 0, 0, 0])
        yield* TestClock.adjust("1 millis")
        // No call and no state read: only the timer moved it.
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 0, 1, 0, 0, 0])
        assert.strictEqual(yield* count(name, "open", "half_open"), 1)
        const changes = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).filter((event) =>
          event._tag === "StateChanged"
        )
        assert.deepStrictEqual(
          changes.map((event) =>
            event._tag === "StateChanged" ? [event.from, event.to, event.reason._tag, event.at] : []
          ),
          [["Closed", "Open", "Tripped", 0], ["Open", "HalfOpen", "OpenElapsed", 10_000]]
        )
        // A call at the same instant finds it half-open: a probe, no second transition.
        assert.isTrue(Either.isRight(yield* attempt(breaker, succeeding)))
        assert.strictEqual(yield* count(name, "open", "half_open"), 1)
        assert.strictEqual(yield* breaker.state, "HalfOpen")
      }))

    it.scoped("a call at the due instant and the timer make the move once, whoever comes first", () =>
      Effect.gen(function*() {
        const name = uniqueName("auto-race")
        const breaker = yield* CircuitBreaker.makeScoped({
          name,
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: "1 second",
          halfOpen: { permits: 1, closeAfter: 1 }
        })
        const events = yield* breaker.subscribe
        yield* attempt(breaker, failing)
        // The call is forked before the clock moves: it and the timer wake at the same instant.
        const call = yield* Effect.fork(Effect.zipRight(Effect.sleep("1 second"), attempt(breaker, succeeding)))
        yield* TestClock.adjust("1 second")
        assert.isTrue(Either.isRight(yield* Fiber.join(call)))
        assert.strictEqual(yield* breaker.state, "Closed")
        assert.strictEqual(yield* count(name, "open", "half_open"), 1)
        assert.strictEqual(yield* count(name, "half_open", "closed"), 1)
        const changes = Chunk.toReadonlyArray(yield* Queue.takeAll(events)).flatMap((event) =>
          event._tag === "StateChanged" ? [`${event.from}>${event.to}`] : []
        )
        assert.deepStrictEqual(changes, ["Closed>Open", "Open>HalfOpen", "HalfOpen>Closed"])
      }))

    it.scoped("the timer follows the state: a reopening with a longer duration, an operator, a half-open time limit", () =>
      Effect.gen(function*() {
        const name = uniqueName("auto-follow")
        const breaker = yield* CircuitBreaker.makeScoped({
          name,
          trip: CircuitBreaker.consecutiveFailures(1),
          openDuration: Schedule.exponential("1 second"),
          halfOpen: { permits: 1, closeAfter: 1, maxDuration: "5 seconds" }
        })
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 0, 1, 0, 0, 0])
        // No probe within 5 s: the half-open period runs out and the breaker reopens for 2 s, on time.
        yield* TestClock.adjust("5 seconds")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 1, 0, 0, 0, 0])
        assert.strictEqual(yield* count(name, "half_open", "open"), 1)
        yield* TestClock.adjust("1999 millis")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 1, 0, 0, 0, 0])
        yield* TestClock.adjust("1 millis")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 0, 1, 0, 0, 0])
        // An operator's move cancels the pending deadline.
        yield* breaker.isolate
        yield* TestClock.adjust("1 hour")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 0, 0, 1, 0, 0])
        assert.strictEqual(yield* count(name, "open", "half_open"), 2)
      }))

    it.effect("when the scope closes the timer stops, and the breaker goes on lazily", () =>
      Effect.gen(function*() {
        const name = uniqueName("auto-closed-scope")
        const breaker = yield* Effect.scoped(
          CircuitBreaker.makeScoped({ name, trip: CircuitBreaker.consecutiveFailures(1), openDuration: "1 second" })
        )
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("1 second")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 1, 0, 0, 0, 0])
        assert.strictEqual(yield* breaker.state, "HalfOpen")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 0, 1, 0, 0, 0])
      }))

    it.effect("breakers of the registry layer half-open on time, in the layer's scope", () => {
      const name = uniqueName("auto-registry")
      return Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.named(name)
        yield* attempt(breaker, failing)
        yield* TestClock.adjust("2 seconds")
        assert.deepStrictEqual(yield* gaugesOf(name), [0, 0, 1, 0, 0, 0])
      }).pipe(
        Effect.provide(
          CircuitBreaker.layer({ defaults: { trip: CircuitBreaker.consecutiveFailures(1), openDuration: "2 seconds" } })
        )
      )
    })
  })

  describe("registry", () => {
    it.effect("creates configured breakers once, others on demand with the defaults, and lists their states", () => {
      const payments = uniqueName("payments")
      const search = uniqueName("search")
      return Effect.gen(function*() {
        const registry = yield* CircuitBreaker.Registry
        const first = yield* registry.get(payments)
        assert.strictEqual(first, yield* CircuitBreaker.named(payments))
        yield* attempt(first, failing)
        assert.strictEqual(yield* first.state, "Open") // its own trip: 1 failure

        const [a, b] = yield* Effect.all([registry.get(search), registry.get(search)], { concurrency: 2 })
        assert.strictEqual(a, b)
        yield* attempt(a, failing)
        // The defaults: consecutiveFailures(2).
        assert.strictEqual(yield* a.state, "Closed")

        assert.deepStrictEqual(yield* registry.states, [
          { name: payments, state: "Open" },
          { name: search, state: "Closed" }
        ])
      }).pipe(
        Effect.provide(CircuitBreaker.layer({
          defaults: { trip: CircuitBreaker.consecutiveFailures(2) },
          breakers: { [payments]: { trip: CircuitBreaker.consecutiveFailures(1) } }
        }))
      )
    })

    it.effect("invalid configuration fails the layer with InvalidOptionsError", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Effect.provide(
            CircuitBreaker.Registry,
            CircuitBreaker.layer({ breakers: { [uniqueName("bad")]: { halfOpen: { permits: 0 } } } })
          )
        )
        assert.strictEqual(error._tag, "InvalidOptionsError")
        assert.strictEqual(error.option, "halfOpen.permits")
        const badDefault = yield* Effect.flip(
          Effect.provide(CircuitBreaker.Registry, CircuitBreaker.layer({ defaults: { openDuration: -1 } }))
        )
        assert.strictEqual(badDefault.option, "openDuration")
      }))

    it.effect("layerConfig reads the breakers' options from a ConfigProvider", () =>
      Effect.gen(function*() {
        const name = uniqueName("from-config")
        const provider = ConfigProvider.fromMap(
          new Map([
            ["FAILURES", "3"],
            ["OPEN_FOR", "20 seconds"],
            ["DEFAULT_PROBES", "2"]
          ])
        )
        const Breakers = CircuitBreaker.layerConfig({
          defaults: { halfOpen: { permits: Config.integer("DEFAULT_PROBES") } },
          breakers: {
            [name]: {
              trip: Config.map(Config.integer("FAILURES"), CircuitBreaker.consecutiveFailures),
              openDuration: Config.duration("OPEN_FOR")
            }
          }
        })
        const rejected = yield* Effect.gen(function*() {
          const breaker = yield* CircuitBreaker.named(name)
          const results = yield* repeatCall(breaker, failing, 3)
          assert.isTrue(results.every(Either.isLeft))
          assert.strictEqual(yield* breaker.state, "Open")
          return rejection(yield* attempt(breaker, succeeding))
        }).pipe(Effect.provide(Breakers), Effect.withConfigProvider(provider))
        assert.deepStrictEqual(rejected.retryAfter, Duration.seconds(20))
      }))

    it.effect("layerConfig fails with a ConfigError for missing configuration and InvalidOptionsError for bad values", () =>
      Effect.gen(function*() {
        const provider = ConfigProvider.fromMap(new Map([["PROBES", "0"]]))
        const missing = yield* Effect.flip(
          Effect.provide(
            CircuitBreaker.Registry,
            CircuitBreaker.layerConfig({ defaults: { openDuration: Config.duration("OPEN_FOR") } })
          ).pipe(Effect.withConfigProvider(provider))
        )
        assert.isTrue(ConfigError.isConfigError(missing))
        const invalid = yield* Effect.flip(
          Effect.provide(
            CircuitBreaker.Registry,
            CircuitBreaker.layerConfig({
              breakers: { [uniqueName("bad-config")]: { halfOpen: { permits: Config.integer("PROBES") } } }
            })
          ).pipe(Effect.withConfigProvider(provider))
        )
        assert(!ConfigError.isConfigError(invalid) && invalid._tag === "InvalidOptionsError")
        assert.strictEqual(invalid.option, "halfOpen.permits")
      }))

    it.effect("an invalid name asked on demand is an InvalidOptionsError", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(CircuitBreaker.named("no spaces allowed"))
        assert.strictEqual(error.option, "name")
      }).pipe(Effect.provide(CircuitBreaker.layer())))
  })

  describe("fallback", () => {
    it.effect("orElseIfOpen answers refused calls and lets other errors through", () =>
      Effect.gen(function*() {
        const breaker = yield* CircuitBreaker.make({
          name: uniqueName("fallback"),
          trip: CircuitBreaker.consecutiveFailures(1)
        })
        const call = (effect: Effect.Effect<string, Failure.TransientError>) =>
          effect.pipe(
            CircuitBreaker.protect(breaker),
            CircuitBreaker.orElseIfOpen((error) => Effect.succeed(`cached (${error.state})`))
          )
        // The fallback removes CircuitOpenError from the error channel.
        const typed: Effect.Effect<string, Failure.TransientError> = call(failing)
        assert.deepStrictEqual(yield* Effect.either(typed), Either.left(transient))
        assert.strictEqual(yield* call(succeeding), "cached (Open)")
      }))
  })

  describe("configuration", () => {
    const invalid: ReadonlyArray<readonly [string, CircuitBreaker.Options, string]> = [
      ["a name with spaces", { name: "bad name" }, "name"],
      ["an empty name", { name: "" }, "name"],
      [
        "a failure rate above 100%",
        { name: "x", trip: CircuitBreaker.failureRate({ threshold: 150 }) },
        "trip.failureRate.threshold"
      ],
      [
        "a negative failure rate",
        { name: "x", trip: CircuitBreaker.failureRate({ threshold: -1 }) },
        "trip.failureRate.threshold"
      ],
      [
        "a zero-call window",
        { name: "x", trip: CircuitBreaker.failureRate({ window: { calls: 0 } }) },
        "trip.failureRate.window.calls"
      ],
      ["a zero-length time window", {
        name: "x",
        trip: CircuitBreaker.failureRate({ window: { duration: "0 millis" } })
      }, "trip.failureRate.window.duration"],
      ["no trip strategy", { name: "x", trip: [] }, "trip"],
      ["zero half-open probes", { name: "x", halfOpen: { permits: 0 } }, "halfOpen.permits"],
      ["a zero half-open time limit", { name: "x", halfOpen: { maxDuration: "0 millis" } }, "halfOpen.maxDuration"],
      ["closeAfter above permits", { name: "x", halfOpen: { permits: 2, closeAfter: 3 } }, "halfOpen.closeAfter"],
      [
        "a probe failure rate of 0%",
        { name: "x", halfOpen: { failureRateThreshold: 0 } },
        "halfOpen.failureRateThreshold"
      ],
      ["a negative open duration", { name: "x", openDuration: -5 }, "openDuration"],
      ["a NaN open duration", { name: "x", openDuration: Number.NaN }, "openDuration"],
      ["a zero open duration", { name: "x", openDuration: 0 }, "openDuration"],
      ["a schedule that never recurs", { name: "x", openDuration: Schedule.stop }, "openDuration"],
      ["a negative slow-call duration", { name: "x", slowCallDuration: "-1 seconds" }, "slowCallDuration"],
      [
        "a slow-call strategy without a slow-call duration",
        { name: "x", trip: CircuitBreaker.slowCallRate() },
        "slowCallDuration"
      ]
    ]
    for (const [what, options, option] of invalid) {
      it.effect(`rejects ${what} with a typed InvalidOptionsError`, () =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(CircuitBreaker.make(options))
          assert.strictEqual(error._tag, "InvalidOptionsError")
          assert.strictEqual(error.option, option)
          assert.isTrue(Failure.isTerminal(error))
        }))
    }

    it.effect("names the breaker in the error", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(CircuitBreaker.make({ name: "payments", halfOpen: { permits: 0 } }))
        assert.strictEqual(
          error.message,
          "CircuitBreaker \"payments\": option \"halfOpen.permits\" must be an integer ≥ 1 and ≤ 1000000 (got 0)"
        )
      }))
  })
})
