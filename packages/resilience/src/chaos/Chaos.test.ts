import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientError from "@effect/platform/HttpClientError"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Stream from "effect/Stream"
import * as TestClock from "effect/TestClock"
import * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../Failure.js"
import * as ResilientHttpClient from "../http/ResilientHttpClient.js"
import * as Metrics from "../Metrics.js"
import * as Retry from "../retry/Retry.js"
import * as Timeout from "../timeout/Timeout.js"
import * as Chaos from "./Chaos.js"

class CardDeclined extends Failure.TerminalTaggedError("CardDeclined")<{ readonly reason: string }> {}

/** An operation that counts its runs and answers with the run number. */
const countedOperation = Effect.gen(function*() {
  const runs = yield* Ref.make(0)
  return { runs, operation: Ref.updateAndGet(runs, (n) => n + 1) }
})

/** How many of `calls` runs of `effect` failed (the injections of a fault-only policy). */
const failures = <A, E>(effect: Effect.Effect<A, E>, calls: number) =>
  Effect.gen(function*() {
    let failed = 0
    for (let call = 0; call < calls; call++) {
      if (Exit.isFailure(yield* Effect.exit(effect))) failed++
    }
    return failed
  })

/** Which of `calls` runs of `effect` failed, as a string of 0s and 1s. */
const pattern = <A, E>(effect: Effect.Effect<A, E>, calls: number) =>
  Effect.gen(function*() {
    let marks = ""
    for (let call = 0; call < calls; call++) marks += Exit.isFailure(yield* Effect.exit(effect)) ? "1" : "0"
    return marks
  })

const injections = (policy: string, kind: Chaos.Kind) =>
  Metric.value(Metric.tagged(Metric.tagged(Metrics.chaosInjections, "policy", policy), "kind", kind)).pipe(
    Effect.map((state) => state.count)
  )

const invalidOption = <A>(effect: Effect.Effect<A, Failure.InvalidOptionsError>) =>
  Effect.map(Effect.flip(effect), (error) => {
    assert.strictEqual(error._tag, "InvalidOptionsError")
    assert.strictEqual(error.component, "Chaos")
    return error.option
  })

describe("Chaos rates", () => {
  it.effect("rate 0 never injects and rate 1 always does", () =>
    Effect.gen(function*() {
      const never = yield* Chaos.make({ name: "rate-zero", strategies: [Chaos.fault({ rate: 0 })] })
      const always = yield* Chaos.make({ name: "rate-one", strategies: [Chaos.fault({ rate: 1 })] })
      assert.strictEqual(yield* failures(Effect.void.pipe(Chaos.inject(never)), 500), 0)
      assert.strictEqual(yield* failures(Effect.void.pipe(Chaos.inject(always)), 500), 500)
    }))

  it.effect("injects close to rate × calls under a seeded Random", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({ name: "rate-quarter", strategies: [Chaos.fault({ rate: 0.25 })] })
      const call = Effect.void.pipe(Chaos.inject(policy))
      for (const seed of ["alpha", "beta", "gamma", 42]) {
        const failed = yield* failures(call, 4000).pipe(Effect.withRandom(Random.make(seed)))
        // 4000 × 0.25 = 1000, σ ≈ 27: the bounds are ±5σ, and the seeds make the run reproducible.
        assert.isAtLeast(failed, 865, `seed ${seed}`)
        assert.isAtMost(failed, 1135, `seed ${seed}`)
      }
    }))

  it.effect("draws from Effect's Random: the same seed injects into the same calls", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({ name: "rate-seeded", strategies: [Chaos.fault({ rate: 0.5 })] })
      const call = Effect.void.pipe(Chaos.inject(policy))
      const first = yield* pattern(call, 64).pipe(Effect.withRandom(Random.make("seed")))
      const again = yield* pattern(call, 64).pipe(Effect.withRandom(Random.make("seed")))
      const other = yield* pattern(call, 64).pipe(Effect.withRandom(Random.make("another seed")))
      assert.strictEqual(again, first)
      assert.notStrictEqual(other, first)
      assert.include(first, "0")
      assert.include(first, "1")
    }))

  it.effect("reads a dynamic rate on every call, clamped to 0–1", () =>
    Effect.gen(function*() {
      const rate = yield* Ref.make(0)
      const policy = yield* Chaos.make({ name: "rate-dynamic", strategies: [Chaos.fault({ rate: Ref.get(rate) })] })
      const call = Effect.void.pipe(Chaos.inject(policy))
      assert.strictEqual(yield* failures(call, 100), 0)
      yield* Ref.set(rate, 1)
      assert.strictEqual(yield* failures(call, 100), 100)
      yield* Ref.set(rate, 7)
      assert.strictEqual(yield* failures(call, 100), 100)
      yield* Ref.set(rate, Number.NaN)
      assert.strictEqual(yield* failures(call, 100), 0)
    }))
})

describe("Chaos switches", () => {
  it.effect("injects nothing while the switch is off, and injects once it is turned on", () =>
    Effect.gen(function*() {
      const chaosOn = yield* Chaos.makeSwitch(false)
      const policy = yield* Chaos.make({
        name: "switch-strategy",
        strategies: [Chaos.fault({ rate: 1, enabled: chaosOn })]
      })
      const call = Effect.void.pipe(Chaos.inject(policy))
      assert.strictEqual(yield* failures(call, 20), 0)
      yield* chaosOn.turnOn
      assert.strictEqual(yield* failures(call, 20), 20)
      assert.isFalse(yield* chaosOn.toggle)
      assert.strictEqual(yield* failures(call, 20), 0)
      assert.strictEqual(yield* injections("switch-strategy", "fault"), 20)
    }))

  it.effect("a policy's master switch turns every strategy off at once", () =>
    Effect.gen(function*() {
      const chaosOn = yield* Chaos.makeSwitch(true)
      const { operation, runs } = yield* countedOperation
      const policy = yield* Chaos.make({
        name: "switch-policy",
        enabled: chaosOn,
        strategies: [Chaos.behavior({ rate: 1, behavior: () => Effect.void }), Chaos.fault({ rate: 1 })]
      })
      const call = operation.pipe(Chaos.inject(policy))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(call)))
      yield* chaosOn.set(false)
      assert.strictEqual(yield* call, 1)
      assert.strictEqual(yield* Ref.get(runs), 1)
      assert.strictEqual(yield* injections("switch-policy", "behavior"), 1)
      assert.strictEqual(yield* injections("switch-policy", "fault"), 1)
    }))

  it.effect("accepts any Effect of a boolean as a switch, and a static false", () =>
    Effect.gen(function*() {
      const flag = yield* Ref.make(false)
      const dynamic = yield* Chaos.make({
        name: "switch-effect",
        strategies: [Chaos.fault({ rate: 1, enabled: Ref.get(flag) })]
      })
      const off = yield* Chaos.make({ name: "switch-false", strategies: [Chaos.fault({ rate: 1, enabled: false })] })
      assert.strictEqual(yield* failures(Effect.void.pipe(Chaos.inject(dynamic)), 10), 0)
      yield* Ref.set(flag, true)
      assert.strictEqual(yield* failures(Effect.void.pipe(Chaos.inject(dynamic)), 10), 10)
      assert.strictEqual(yield* failures(Effect.void.pipe(Chaos.inject(off)), 10), 0)
    }))

  it.effect("publishes its changes", () =>
    Effect.gen(function*() {
      const chaosOn = yield* Chaos.makeSwitch(false)
      const subscribed = yield* Deferred.make<void>()
      const seen = yield* chaosOn.changes.pipe(
        Stream.tap(() => Deferred.succeed(subscribed, undefined)),
        Stream.take(3),
        Stream.runCollect,
        Effect.fork
      )
      yield* Deferred.await(subscribed)
      yield* chaosOn.turnOn
      yield* chaosOn.turnOff
      assert.deepStrictEqual([...yield* Fiber.join(seen)], [false, true, false])
      assert.isTrue(Chaos.isSwitch(chaosOn))
    }))
})

describe("Chaos strategies", () => {
  it.effect("a fault fails with a transient InjectedFaultError naming the policy, without running the operation", () =>
    Effect.gen(function*() {
      const { operation, runs } = yield* countedOperation
      const policy = yield* Chaos.make({ name: "fault-default", strategies: [Chaos.fault({ rate: 1 })] })
      const error = yield* Effect.flip(operation.pipe(Chaos.inject(policy)))
      assert.isTrue(Chaos.isInjectedFaultError(error))
      assert.strictEqual(error.policy, "fault-default")
      assert.isTrue(Failure.isTransient(error))
      assert.strictEqual(error.message, `Chaos policy "fault-default" injected a fault`)
      assert.strictEqual(yield* Ref.get(runs), 0)
    }))

  it.effect("a fault fails with the user's typed error", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "fault-typed",
        strategies: [Chaos.fault({ rate: 1, error: () => new CardDeclined({ reason: "chaos" }) })]
      })
      const charged: Effect.Effect<string, CardDeclined> = Effect.succeed("charged").pipe(Chaos.inject(policy))
      const error = yield* Effect.flip(charged)
      assert.deepStrictEqual(error, new CardDeclined({ reason: "chaos" }))
      assert.isTrue(Failure.isTerminal(error))
    }))

  it.effect("transient faults are retried by Retry.retry and terminal ones are not", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ name: "chaos-retry", maxAttempts: 4, backoff: Retry.constant("100 millis") })
      const { operation, runs } = yield* countedOperation
      const transient = yield* Chaos.make({ name: "fault-retried", strategies: [Chaos.fault({ rate: 1 })] })
      const fiber = yield* operation.pipe(Chaos.inject(transient), Retry.retry(retry), Effect.flip, Effect.fork)
      yield* TestClock.adjust("1 second")
      const exhausted = yield* Fiber.join(fiber)
      assert.strictEqual(exhausted._tag, "RetriesExhausted")
      if (exhausted._tag === "RetriesExhausted") {
        assert.strictEqual(exhausted.attempts, 4)
        assert.isTrue(Chaos.isInjectedFaultError(exhausted.lastFailure))
      }
      assert.strictEqual(yield* injections("fault-retried", "fault"), 4)

      const terminal = yield* Chaos.make({
        name: "fault-terminal",
        strategies: [Chaos.fault({ rate: 1, error: () => new CardDeclined({ reason: "chaos" }) })]
      })
      const declined = yield* Effect.flip(operation.pipe(Chaos.inject(terminal), Retry.retry(retry)))
      assert.strictEqual(declined._tag, "CardDeclined")
      assert.strictEqual(yield* injections("fault-terminal", "fault"), 1)
      assert.strictEqual(yield* Ref.get(runs), 0)
    }))

  it.effect("retry heals a flaky operation: a seeded 50 % fault rate ends in success", () =>
    Effect.gen(function*() {
      const retry = yield* Retry.make({ name: "chaos-heal", maxAttempts: 10, backoff: Retry.constant("10 millis") })
      const { operation, runs } = yield* countedOperation
      const flaky = yield* Chaos.make({ name: "fault-flaky", strategies: [Chaos.fault({ rate: 0.5 })] })
      const fiber = yield* operation.pipe(
        Chaos.inject(flaky),
        Retry.retry(retry),
        Effect.withRandom(Random.make("flaky")),
        Effect.fork
      )
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(fiber), 1)
      assert.strictEqual(yield* Ref.get(runs), 1)
    }))

  it.effect("a breaker around the chaos counts injected faults and opens", () =>
    Effect.gen(function*() {
      const breaker = yield* CircuitBreaker.make({ name: "chaos-breaker", trip: CircuitBreaker.consecutiveFailures(3) })
      const { operation, runs } = yield* countedOperation
      const policy = yield* Chaos.make({ name: "fault-breaker", strategies: [Chaos.fault({ rate: 1 })] })
      const call = operation.pipe(Chaos.inject(policy), CircuitBreaker.protect(breaker))
      const errors: Array<string> = []
      for (let n = 0; n < 4; n++) errors.push((yield* Effect.flip(call))._tag)
      assert.deepStrictEqual(errors, [
        "InjectedFaultError",
        "InjectedFaultError",
        "InjectedFaultError",
        "CircuitOpenError"
      ])
      assert.strictEqual(yield* Ref.get(runs), 0)
    }))

  it.effect("latency delays the operation by exactly the latency, on the TestClock", () =>
    Effect.gen(function*() {
      const { operation, runs } = yield* countedOperation
      const policy = yield* Chaos.make({
        name: "latency-fixed",
        strategies: [Chaos.latency({ rate: 1, latency: "2 seconds" })]
      })
      const fiber = yield* operation.pipe(Chaos.inject(policy), Effect.fork)
      yield* TestClock.adjust("1999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      assert.strictEqual(yield* Ref.get(runs), 0)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 1)
      assert.strictEqual(yield* injections("latency-fixed", "latency"), 1)
    }))

  it.effect("a latency range draws each delay between min and max", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "latency-range",
        strategies: [Chaos.latency({ rate: 1, latency: { min: "100 millis", max: "300 millis" } })]
      })
      const delays: Array<number> = []
      for (let n = 0; n < 20; n++) {
        const fiber = yield* Effect.void.pipe(Chaos.inject(policy), Effect.timed, Effect.fork)
        yield* TestClock.adjust("300 millis")
        const [elapsed] = yield* Fiber.join(fiber)
        delays.push(Duration.toMillis(elapsed))
      }
      for (const delay of delays) {
        assert.isAtLeast(delay, 100)
        assert.isAtMost(delay, 300)
      }
      assert.isAbove(new Set(delays).size, 1)
    }))

  it.effect("an infinite latency hangs until a timeout outside it gives up", () =>
    Effect.gen(function*() {
      const timeout = yield* Timeout.make({ operation: "chaos-hang", limit: "5 seconds" })
      const policy = yield* Chaos.make({
        name: "latency-hang",
        strategies: [Chaos.latency({ rate: 1, latency: Duration.infinity })]
      })
      const fiber = yield* Effect.void.pipe(Chaos.inject(policy), Timeout.timeout(timeout), Effect.flip, Effect.fork)
      yield* TestClock.adjust("5 seconds")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "TimeoutError")
    }))

  it.effect("an outcome replaces the result without running the operation", () =>
    Effect.gen(function*() {
      const { operation, runs } = yield* countedOperation
      const policy = yield* Chaos.make({
        name: "outcome-before",
        strategies: [Chaos.outcome({ rate: 1, outcome: () => Effect.succeed(-1) })]
      })
      const result: number = yield* operation.pipe(Chaos.inject(policy))
      assert.strictEqual(result, -1)
      assert.strictEqual(yield* Ref.get(runs), 0)
      assert.strictEqual(yield* injections("outcome-before", "outcome"), 1)
    }))

  it.effect("phase after: the operation runs, then a fault or outcome replaces its success", () =>
    Effect.gen(function*() {
      const { operation, runs } = yield* countedOperation
      const lostAnswer = yield* Chaos.make({
        name: "fault-after",
        strategies: [Chaos.fault({ rate: 1, phase: "after" })]
      })
      const replaced = yield* Chaos.make({
        name: "outcome-after",
        strategies: [Chaos.outcome({ rate: 1, phase: "after", outcome: () => Effect.succeed(-1) })]
      })
      const error = yield* Effect.flip(operation.pipe(Chaos.inject(lostAnswer)))
      assert.strictEqual(error._tag, "InjectedFaultError")
      assert.strictEqual(yield* Ref.get(runs), 1)
      assert.strictEqual(yield* operation.pipe(Chaos.inject(replaced)), -1)
      assert.strictEqual(yield* Ref.get(runs), 2)
    }))

  it.effect("phase after: the operation's own failure passes through untouched", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "fault-after-failure",
        strategies: [Chaos.fault({ rate: 1, phase: "after" })]
      })
      const error = yield* Effect.flip(Effect.fail(new CardDeclined({ reason: "real" })).pipe(Chaos.inject(policy)))
      assert.strictEqual(error._tag, "CardDeclined")
      assert.strictEqual(yield* injections("fault-after-failure", "fault"), 0)
    }))

  it.effect("phase after: latency delays the operation's result, whatever it is", () =>
    Effect.gen(function*() {
      const { operation, runs } = yield* countedOperation
      const policy = yield* Chaos.make({
        name: "latency-after",
        strategies: [Chaos.latency({ rate: 1, phase: "after", latency: "1 second" })]
      })
      const fiber = yield* operation.pipe(Chaos.inject(policy), Effect.fork)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Ref.get(runs), 1)
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("990 millis")
      assert.strictEqual(yield* Fiber.join(fiber), 1)

      const failing = yield* Effect.fail(new CardDeclined({ reason: "slow" })).pipe(
        Chaos.inject(policy),
        Effect.flip,
        Effect.fork
      )
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(failing)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(failing))._tag, "CardDeclined")
    }))

  it.effect("a behavior runs its side effect before the operation, and its failure fails the call", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const note = (entry: string) => Ref.update(log, (entries) => [...entries, entry])
      const policy = yield* Chaos.make({
        name: "behavior-before",
        strategies: [Chaos.behavior({ rate: 1, behavior: () => note("connection killed") })]
      })
      yield* note("operation").pipe(Chaos.inject(policy))
      assert.deepStrictEqual(yield* Ref.get(log), ["connection killed", "operation"])

      const broken = yield* Chaos.make({
        name: "behavior-failing",
        strategies: [Chaos.behavior({ rate: 1, behavior: () => Effect.fail(new CardDeclined({ reason: "b" })) })]
      })
      const error = yield* Effect.flip(note("never").pipe(Chaos.inject(broken)))
      assert.strictEqual(error._tag, "CardDeclined")
      assert.notInclude(yield* Ref.get(log), "never")
    }))

  it.effect("a predicate limits injections to the calls whose input matches it", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "when-input",
        strategies: [Chaos.fault({ rate: 1, when: (query: string) => query.startsWith("report") })]
      })
      const run = (query: string) => Effect.succeed(query).pipe(Chaos.injectWith(policy, query))
      assert.strictEqual(yield* run("select 1"), "select 1")
      assert.strictEqual((yield* Effect.flip(run("report monthly")))._tag, "InjectedFaultError")
      assert.strictEqual(yield* injections("when-input", "fault"), 1)
    }))
})

describe("Chaos composition", () => {
  it.effect("strategies act in order, the first outermost: latency then fault fails after the delay", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "order-latency-fault",
        strategies: [Chaos.latency({ rate: 1, latency: "1 second" }), Chaos.fault({ rate: 1 })]
      })
      const fiber = yield* Effect.void.pipe(Chaos.inject(policy), Effect.flip, Effect.fork)
      yield* TestClock.adjust("999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "InjectedFaultError")
      assert.deepStrictEqual(policy.kinds, ["latency", "fault"])
    }))

  it.effect("fault then latency fails at once, and the latency is never injected", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "order-fault-latency",
        strategies: [Chaos.fault({ rate: 1 }), Chaos.latency({ rate: 1, latency: "1 second" })]
      })
      const fiber = yield* Effect.void.pipe(Chaos.inject(policy), Effect.flip, Effect.fork)
      yield* TestClock.adjust(0)
      const exit = yield* Fiber.poll(fiber)
      assert.isTrue(Option.isSome(exit), "failed without waiting for the clock")
      assert.strictEqual((yield* Fiber.join(fiber))._tag, "InjectedFaultError")
      assert.strictEqual(yield* injections("order-fault-latency", "latency"), 0)
    }))

  it.effect("behaviors run in the order given, and policies nest like any combinator", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const note = (entry: string) => Ref.update(log, (entries) => [...entries, entry])
      const inner = yield* Chaos.make({
        name: "order-inner",
        strategies: [
          Chaos.behavior({ rate: 1, behavior: () => note("a") }),
          Chaos.behavior({ rate: 1, behavior: () => note("b") }),
          Chaos.behavior({ rate: 1, phase: "after", behavior: () => note("after") })
        ]
      })
      const outer = yield* Chaos.make({
        name: "order-outer",
        strategies: [Chaos.behavior({ rate: 1, behavior: () => note("outer") })]
      })
      yield* note("operation").pipe(Chaos.inject(inner), Chaos.inject(outer))
      assert.deepStrictEqual(yield* Ref.get(log), ["outer", "a", "b", "operation", "after"])
    }))

  it.effect("a policy's types are the union of its strategies'", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "types",
        strategies: [
          Chaos.fault({ rate: 0 }),
          Chaos.fault({ rate: 0, error: () => new CardDeclined({ reason: "t" }) }),
          Chaos.outcome({ rate: 0, outcome: () => Effect.succeed("stale") })
        ]
      })
      const typed: Chaos.Policy<unknown, string, Chaos.InjectedFaultError | CardDeclined> = policy
      const call: Effect.Effect<number | string, Chaos.InjectedFaultError | CardDeclined> = Effect.succeed(1).pipe(
        Chaos.inject(typed)
      )
      assert.strictEqual(yield* call, 1)
      assert.isTrue(Chaos.isPolicy(policy))
    }))
})

describe("Chaos options", () => {
  it.effect("rejects a rate outside 0–1 or NaN, naming the strategy's field", () =>
    Effect.gen(function*() {
      const make = (rate: number) =>
        Chaos.make({ name: "invalid", strategies: [Chaos.latency({ rate: 0, latency: 1 }), Chaos.fault({ rate })] })
      assert.strictEqual(yield* invalidOption(make(1.5)), "strategies[1].rate")
      assert.strictEqual(yield* invalidOption(make(-0.1)), "strategies[1].rate")
      assert.strictEqual(yield* invalidOption(make(Number.NaN)), "strategies[1].rate")
    }))

  it.effect("rejects a negative or NaN latency, and a range whose max is below its min", () =>
    Effect.gen(function*() {
      const make = (latency: Chaos.Latency) =>
        Chaos.make({ name: "invalid", strategies: [Chaos.latency({ rate: 1, latency })] })
      assert.strictEqual(yield* invalidOption(make(-5)), "strategies[0].latency")
      assert.strictEqual(yield* invalidOption(make(Number.NaN)), "strategies[0].latency")
      assert.strictEqual(yield* invalidOption(make("-1 seconds")), "strategies[0].latency")
      assert.strictEqual(yield* invalidOption(make({ min: "2 seconds", max: "1 second" })), "strategies[0].latency.max")
      assert.strictEqual(yield* invalidOption(make({ min: -1, max: "1 second" })), "strategies[0].latency.min")
      assert.strictEqual(yield* invalidOption(make({ min: 0, max: Duration.infinity })), "strategies[0].latency.max")
    }))

  it.effect("rejects a bad name, no strategies, an unknown phase and a synthetic status outside 200–599", () =>
    Effect.gen(function*() {
      assert.strictEqual(
        yield* invalidOption(Chaos.make({ name: "has spaces", strategies: [Chaos.fault({ rate: 1 })] })),
        "name"
      )
      assert.strictEqual(yield* invalidOption(Chaos.make({ name: "empty", strategies: [] })), "strategies")
      // What a JavaScript caller could pass: a phase outside the type.
      const duringPhase = { ...Chaos.fault({ rate: 1 }) }
      Reflect.set(duringPhase, "phase", "during")
      assert.strictEqual(
        yield* invalidOption(Chaos.make({ name: "phase", strategies: [Chaos.fault({ rate: 1 }), duringPhase] })),
        "strategies[1].phase"
      )
      assert.strictEqual(
        yield* invalidOption(Chaos.make({ name: "status", strategies: [Chaos.httpResponse({ rate: 1, status: 99 })] })),
        "strategies[0].status"
      )
      assert.strictEqual(
        yield* invalidOption(
          Chaos.make({ name: "status", strategies: [Chaos.serverResponse({ rate: 1, status: 503.5 })] })
        ),
        "strategies[0].status"
      )
    }))

  it("unsafeMake throws the InvalidOptionsError", () => {
    const thrown = Either.try(() => Chaos.unsafeMake({ name: "unsafe", strategies: [Chaos.fault({ rate: 2 })] }))
    assert.isTrue(Either.isLeft(thrown))
    if (Either.isLeft(thrown)) {
      assert.instanceOf(thrown.left, Failure.InvalidOptionsError)
    }
  })
})

describe("Chaos metrics", () => {
  it.effect("counts each injection by policy and kind, and nothing for calls left alone", () =>
    Effect.gen(function*() {
      const policy = yield* Chaos.make({
        name: "metrics-counted",
        strategies: [
          Chaos.behavior({ rate: 1, behavior: () => Effect.void }),
          Chaos.latency({ rate: 1, latency: 0 }),
          Chaos.outcome({ rate: 0.5, outcome: () => Effect.succeed(0) })
        ]
      })
      const results: Array<number> = []
      for (let n = 0; n < 200; n++) {
        results.push(yield* Effect.succeed(1).pipe(Chaos.inject(policy), Effect.withRandom(Random.make(n))))
      }
      const replaced = results.filter((result) => result === 0).length
      assert.strictEqual(yield* injections("metrics-counted", "behavior"), 200)
      assert.strictEqual(yield* injections("metrics-counted", "latency"), 200)
      assert.strictEqual(yield* injections("metrics-counted", "outcome"), replaced)
      assert.isAbove(replaced, 60)
      assert.isBelow(replaced, 140)
      assert.strictEqual(yield* injections("metrics-counted", "fault"), 0)
    }))
})

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

/** A client that answers every request with 200 "real" and counts the requests that reached it. */
const countingClient = Effect.gen(function*() {
  const reached = yield* Ref.make(0)
  const client = HttpClient.make((request) =>
    Effect.as(
      Ref.update(reached, (n) => n + 1),
      HttpClientResponse.fromWeb(request, new Response("real", { status: 200 }))
    )
  )
  return { client, reached }
})

describe("Chaos.httpClient", () => {
  it.effect("injects transport errors the classifier calls transient, before the request is sent", () =>
    Effect.gen(function*() {
      const { client, reached } = yield* countingClient
      const policy = yield* Chaos.make({ name: "http-reset", strategies: [Chaos.transportError({ rate: 1 })] })
      const chaotic = Chaos.httpClient(client, policy)
      const error = yield* Effect.flip(chaotic.get("http://127.0.0.1:1/v1/charges"))
      assert.instanceOf(error, HttpClientError.RequestError)
      assert.strictEqual(error.reason, "Transport")
      assert.deepStrictEqual(Failure.classifyError(error, Failure.defaultClassifier), Option.some("transient"))
      assert.strictEqual(yield* Ref.get(reached), 0)
    }))

  it.effect("a transport error after the request is a lost answer: the server saw it, the caller did not", () =>
    Effect.gen(function*() {
      const { client, reached } = yield* countingClient
      const policy = yield* Chaos.make({
        name: "http-lost",
        strategies: [Chaos.transportError({ rate: 1, phase: "after" })]
      })
      const error = yield* Effect.flip(client.pipe(Chaos.httpClient(policy)).post("http://127.0.0.1:1/v1/charges"))
      assert.strictEqual(error._tag, "RequestError")
      assert.strictEqual(yield* Ref.get(reached), 1)
    }))

  it.effect("answers with a synthetic response whose status, headers and body are readable", () =>
    Effect.gen(function*() {
      const { client, reached } = yield* countingClient
      const policy = yield* Chaos.make({
        name: "http-503",
        strategies: [Chaos.httpResponse({ rate: 1, status: 503, headers: { "retry-after": "2" } })]
      })
      const response = yield* client.pipe(Chaos.httpClient(policy)).get("http://127.0.0.1:1/v1/charges")
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers["retry-after"], "2")
      assert.strictEqual(yield* response.text, "503 (injected by a chaos policy)")
      assert.strictEqual(yield* Ref.get(reached), 0)
      const classified = yield* Failure.fromResponse(response, "charge")
      assert.isTrue(Option.isSome(classified) && Failure.isTransient(classified.value))
      if (Option.isSome(classified)) {
        assert.deepStrictEqual(Failure.retryAfterOf(classified.value), Option.some(Duration.seconds(2)))
      }
    }))

  it.effect("strategies see the request: only matching requests are injected", () =>
    Effect.gen(function*() {
      const { client, reached } = yield* countingClient
      const policy = yield* Chaos.make({
        name: "http-when",
        strategies: [Chaos.httpResponse({ rate: 1, status: 500, when: (request) => request.method === "POST" })]
      })
      const chaotic = Chaos.httpClient(client, policy)
      assert.strictEqual((yield* chaotic.get("http://127.0.0.1:1/")).status, 200)
      assert.strictEqual((yield* chaotic.execute(HttpClientRequest.post("http://127.0.0.1:1/"))).status, 500)
      assert.strictEqual(yield* Ref.get(reached), 1)
    }))

  it.effect("delays requests on the TestClock", () =>
    Effect.gen(function*() {
      const { client, reached } = yield* countingClient
      const policy = yield* Chaos.make({
        name: "http-latency",
        strategies: [Chaos.latency({ rate: 1, latency: "750 millis" })]
      })
      const fiber = yield* client.pipe(Chaos.httpClient(policy)).get("http://127.0.0.1:1/").pipe(Effect.fork)
      yield* TestClock.adjust("749 millis")
      assert.strictEqual(yield* Ref.get(reached), 0)
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).status, 200)
    }))
})

describe("Chaos under a ResilientHttpClient", () => {
  it.effect("the resilient client retries the 503s injected beneath it until the retries run out", () =>
    Effect.gen(function*() {
      const { client, reached } = yield* countingClient
      const policy = yield* Chaos.make({
        name: "http-under-resilient",
        strategies: [Chaos.httpResponse({ rate: 1, status: 503 })]
      })
      const resilient = yield* ResilientHttpClient.make({
        breaker: false,
        retry: { maxAttempts: 3, backoff: Retry.constant("100 millis") }
      }).pipe(Effect.provideService(HttpClient.HttpClient, Chaos.httpClient(client, policy)))
      const fiber = yield* resilient.get("http://127.0.0.1:1/v1/charges").pipe(Effect.flip, Effect.fork)
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      assert.strictEqual(error._tag, "RetriesExhausted")
      assert.strictEqual(yield* injections("http-under-resilient", "outcome"), 3)
      assert.strictEqual(yield* Ref.get(reached), 0)
    }))
})

describe("Chaos.middleware", () => {
  const app = Chaos.middleware(
    Chaos.unsafeMake({
      name: "server",
      strategies: [
        Chaos.serverResponse({ rate: 1, status: 503, when: (request) => request.url.startsWith("/v1/charges") })
      ]
    })
  )(HttpServerResponse.text("handled"))
  const handler = HttpApp.toWebHandler(app)

  it.effect("answers matching requests with a problem+json 503 instead of the handler", () =>
    Effect.gen(function*() {
      const response = yield* Effect.promise(() => handler(new Request("http://127.0.0.1/v1/charges")))
      assert.strictEqual(response.status, 503)
      assert.strictEqual(response.headers.get("content-type"), "application/problem+json")
      const body: unknown = yield* Effect.promise(() => response.json())
      assert.deepInclude(body, { status: 503, title: "Service Unavailable" })
      const other = yield* Effect.promise(() => handler(new Request("http://127.0.0.1/healthz")))
      assert.strictEqual(other.status, 200)
      assert.strictEqual(yield* Effect.promise(() => other.text()), "handled")
    }))

  it.effect("delays the handler on the TestClock", () =>
    Effect.gen(function*() {
      const slow = Chaos.middleware(
        Chaos.unsafeMake({ name: "server-slow", strategies: [Chaos.latency({ rate: 1, latency: "3 seconds" })] })
      )(HttpServerResponse.text("late"))
      const request = HttpServerRequest.fromWeb(new Request("http://127.0.0.1/"))
      const fiber = yield* slow.pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, request), Effect.fork)
      yield* TestClock.adjust("2999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(fiber)))
      yield* TestClock.adjust("1 millis")
      assert.strictEqual((yield* Fiber.join(fiber)).status, 200)
    }))
})
