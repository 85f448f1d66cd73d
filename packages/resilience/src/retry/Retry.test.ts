import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FastCheck from "effect/FastCheck"
import * as Fiber from "effect/Fiber"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import * as TestClock from "effect/TestClock"
import * as Bulkhead from "../bulkhead/Bulkhead.js"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Retry from "./Retry.js"
import * as RetryBudget from "./RetryBudget.js"

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

/** Runs `effect` to the end, moving the TestClock to each pending wake-up in turn (no real time passes). */
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

const transient = (message = "busy", retryAfter?: Duration.Duration) =>
  retryAfter === undefined
    ? new Failure.TransientError({ reason: "HttpStatus", message, status: 503 })
    : new Failure.TransientError({ reason: "HttpStatus", message, status: 503, retryAfter })
const terminal = new Failure.TerminalError({ reason: "HttpStatus", message: "bad request", status: 400 })

/** An operation that follows a script of outcomes and records when each attempt started. */
const scripted = (outcomes: ReadonlyArray<"ok" | Failure.TransientError | Failure.TerminalError>) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<ReadonlyArray<number>>([])
    const op = Effect.gen(function*() {
      const now = yield* TestClock.currentTimeMillis
      const index = (yield* Ref.getAndUpdate(starts, (xs) => [...xs, now])).length
      const outcome = outcomes[Math.min(index, outcomes.length - 1)] ?? "ok"
      if (outcome === "ok") return index + 1
      return yield* Effect.fail(outcome)
    })
    return { op, starts: Ref.get(starts) }
  })

/**
 * An operation whose attempt `i` takes `durations[i]` ms of Clock time (the last one repeats), then ends as
 * `outcomes[i]` says. Records when each attempt started, and when each one ended, interrupted or not (its finalizer).
 */
const timedScript = (
  durations: ReadonlyArray<number>,
  outcomes: ReadonlyArray<"ok" | Failure.TransientError | Failure.TerminalError>
) =>
  Effect.gen(function*() {
    const starts = yield* Ref.make<ReadonlyArray<number>>([])
    const ends = yield* Ref.make<ReadonlyArray<{ readonly at: number; readonly interrupted: boolean }>>([])
    const op = Effect.gen(function*() {
      const index = (yield* Ref.getAndUpdate(starts, (xs) => [...xs, 0])).length
      const now = yield* TestClock.currentTimeMillis
      yield* Ref.update(starts, (xs) => xs.map((x, i) => (i === index ? now : x)))
      const duration = durations[Math.min(index, durations.length - 1)] ?? 0
      const outcome = outcomes[Math.min(index, outcomes.length - 1)] ?? "ok"
      return yield* Effect.sleep(Duration.millis(duration)).pipe(
        Effect.zipRight(outcome === "ok" ? Effect.succeed(index + 1) : Effect.fail(outcome)),
        Effect.onExit((exit) =>
          Effect.flatMap(
            TestClock.currentTimeMillis,
            (at) => Ref.update(ends, (xs) => [...xs, { at, interrupted: Exit.isInterrupted(exit) }])
          )
        )
      )
    })
    return { op, starts: Ref.get(starts), ends: Ref.get(ends) }
  })

/** Runs `effect` to the end (see `runToEnd`) and answers its exit with the Clock's time when it ended. */
const timedRun = <A, E>(effect: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const endedAt = yield* Ref.make(Number.NaN)
    const exit = yield* runToEnd(
      Effect.ensuring(effect, Effect.flatMap(TestClock.currentTimeMillis, (now) => Ref.set(endedAt, now)))
    )
    return { exit, endedAt: yield* Ref.get(endedAt) }
  })

let counter = 0
const uniqueName = (prefix: string) => `${prefix}-${++counter}`

const counterValue = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)

// ---------------------------------------------------------------------------
// behaviour
// ---------------------------------------------------------------------------

describe("Retry.retry", () => {
  it.effect("returns at once when the first attempt succeeds", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({ name: uniqueName("happy") })
      const { op, starts } = yield* scripted(["ok"])
      assert.strictEqual(yield* op.pipe(Retry.retry(policy)), 1)
      assert.deepStrictEqual(yield* starts, [0])
    }))

  it.effect("retries transient failures after the backoff delays", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("backoff"),
        backoff: Retry.exponential({ base: "100 millis", factor: 2 }),
        jitter: "none",
        maxAttempts: 5
      })
      const { op, starts } = yield* scripted([transient(), transient(), transient(), "ok"])
      const result = yield* runToEnd(op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(result, Exit.succeed(4))
      assert.deepStrictEqual(yield* starts, [0, 100, 300, 700])
    }))

  it.effect("passes a terminal failure through at once, untouched", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({ name: uniqueName("terminal"), jitter: "none" })
      const { op, starts } = yield* scripted([transient(), terminal])
      const exit = yield* runToEnd(op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(exit, Exit.fail(terminal))
      assert.strictEqual((yield* starts).length, 2)
    }))

  it.effect("never retries errors outside the model", () =>
    Effect.gen(function*() {
      class Unclassified extends Data.TaggedError("Unclassified") {}
      const attempts = yield* Ref.make(0)
      const policy = Retry.unsafeMake({ name: uniqueName("unclassified") })
      const exit = yield* Ref.update(attempts, (n) => n + 1).pipe(
        Effect.zipRight(Effect.fail(new Unclassified())),
        Retry.retry(policy),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(yield* Ref.get(attempts), 1)
    }))

  it.effect("turns exhaustion into RetriesExhausted with the last failure, attempts and elapsed time", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: "exhaust-me",
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxAttempts: 3
      })
      const last = transient("third")
      const { op } = yield* scripted([transient("first"), transient("second"), last])
      const exit = yield* runToEnd(op.pipe(Retry.retry(policy)))
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag !== "RetriesExhausted") return
      assert.strictEqual(error.reason, "MaxAttempts")
      assert.strictEqual(error.attempts, 3)
      assert.strictEqual(error.lastFailure, last)
      assert.strictEqual(Duration.toMillis(error.elapsed), 2000)
      assert.strictEqual(error.policy, "exhaust-me")
    }))

  it.effect("waits at least the failure's retryAfter", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("hint"),
        backoff: Retry.constant("100 millis"),
        jitter: "none"
      })
      const { op, starts } = yield* scripted([transient("slow down", Duration.seconds(5)), "ok"])
      assert.deepStrictEqual(yield* runToEnd(op.pipe(Retry.retry(policy))), Exit.succeed(2))
      assert.deepStrictEqual(yield* starts, [0, 5000])
    }))

  it.effect("can ignore retryAfter when told to", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("no-hint"),
        backoff: Retry.constant("100 millis"),
        jitter: "none",
        respectRetryAfter: false
      })
      const { op, starts } = yield* scripted([transient("slow down", Duration.seconds(5)), "ok"])
      yield* runToEnd(op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(yield* starts, [0, 100])
    }))

  it.effect("gives up before a wait that would cross maxElapsed, without sleeping it", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxAttempts: 100,
        maxElapsed: "2500 millis"
      })
      const { op, starts } = yield* scripted([transient()])
      const exit = yield* runToEnd(op.pipe(Retry.retry(policy)))
      const error = yield* Effect.flip(exit)
      assert.deepStrictEqual(yield* starts, [0, 1000, 2000])
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "MaxElapsed")
      assert.strictEqual(yield* TestClock.currentTimeMillis, 2000)
    }))

  it.effect("gives up at once when a retryAfter hint is beyond the time budget", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({ name: uniqueName("hint-budget"), maxElapsed: "10 seconds" })
      const { op } = yield* scripted([transient("come back in a minute", Duration.minutes(1))])
      const exit = yield* runToEnd(op.pipe(Retry.retry(policy)))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "MaxElapsed")
      assert.strictEqual(yield* TestClock.currentTimeMillis, 0)
    }))

  it.effect("gives up before a wait that would end exactly at maxElapsed: the attempt after it would have no time", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed-exact"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxAttempts: 100,
        maxElapsed: "2 seconds"
      })
      const { op, starts } = yield* scripted([transient()])
      const { endedAt, exit } = yield* timedRun(op.pipe(Retry.retry(policy)))
      const error = yield* Effect.flip(exit)
      assert.deepStrictEqual(yield* starts, [0, 1000])
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "MaxElapsed")
      assert.strictEqual(endedAt, 1000)
    }))

  it.effect("interrupts a retry still running when maxElapsed is spent, runs its finalizers, and gives up", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed-cut"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxAttempts: 10,
        maxElapsed: "2500 millis"
      })
      const first = transient("first")
      // Attempt 1 fails at 0; attempt 2 starts at 1000 and would take 5 s.
      const { ends, op, starts } = yield* timedScript([0, 5000], [first, "ok"])
      const { endedAt, exit } = yield* timedRun(op.pipe(Retry.retry(policy)))
      const error = yield* Effect.flip(exit)
      assert.deepStrictEqual(yield* starts, [0, 1000])
      assert.deepStrictEqual(yield* ends, [{ at: 0, interrupted: false }, { at: 2500, interrupted: true }])
      assert.strictEqual(endedAt, 2500)
      assert.strictEqual(error._tag, "RetriesExhausted")
      if (error._tag !== "RetriesExhausted") return
      assert.strictEqual(error.reason, "MaxElapsed")
      assert.strictEqual(error.attempts, 2)
      // The attempt cut off has no failure of its own: the last failure is the one before it.
      assert.strictEqual(error.lastFailure, first)
      assert.strictEqual(Duration.toMillis(error.elapsed), 2500)
    }))

  it.effect("a retry cut off by maxElapsed inside a bulkhead gives its permit back", () =>
    Effect.gen(function*() {
      const bulkhead = yield* Bulkhead.make({ name: uniqueName("elapsed-bulkhead"), maxConcurrent: 1, maxQueued: 0 })
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed-bulkhead"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxElapsed: "2500 millis"
      })
      const { ends, op } = yield* timedScript([0, 5000], [transient(), "ok"])
      const { endedAt, exit } = yield* timedRun(op.pipe(Bulkhead.protect(bulkhead), Retry.retry(policy)))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "MaxElapsed")
      assert.strictEqual(endedAt, 2500)
      assert.deepStrictEqual((yield* ends).map(({ interrupted }) => interrupted), [false, true])
      const snapshot = yield* bulkhead.snapshot
      assert.strictEqual(snapshot.active, 0)
      assert.strictEqual(snapshot.available, 1)
    }))

  it.effect("counts the attempt cut off by maxElapsed in the attempts and the call as exhausted", () =>
    Effect.gen(function*() {
      const name = uniqueName("elapsed-metrics")
      const policy = Retry.unsafeMake({
        name,
        backoff: Retry.constant("100 millis"),
        jitter: "none",
        maxElapsed: "1 second"
      })
      const { op } = yield* timedScript([0, 0, 10_000], [transient()])
      const error = yield* Effect.flip(yield* runToEnd(op.pipe(Retry.retry(policy))))
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.attempts : undefined, 3)
      const calls = Metric.tagged(Metrics.retryCalls, "policy", name)
      assert.strictEqual(yield* counterValue(Metric.tagged(calls, "result", "exhausted")), 1)
      assert.strictEqual(yield* counterValue(Metric.tagged(calls, "result", "success_after_retry")), 0)
      assert.strictEqual(yield* counterValue(Metric.tagged(Metrics.retryAttempts, "policy", name)), 2)
    }))

  it.effect("leaves a retry that ends before maxElapsed alone", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed-ok"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxElapsed: "2500 millis"
      })
      const { ends, op } = yield* timedScript([0, 1499], [transient(), "ok"])
      const { endedAt, exit } = yield* timedRun(op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(exit, Exit.succeed(2))
      assert.strictEqual(endedAt, 2499)
      assert.deepStrictEqual(yield* ends, [{ at: 0, interrupted: false }, { at: 2499, interrupted: false }])
    }))

  it.effect("a retry that fails before maxElapsed goes on as before", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed-terminal"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxElapsed: "2500 millis"
      })
      const { op } = yield* timedScript([0, 1000], [transient(), terminal])
      const { endedAt, exit } = yield* timedRun(op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(exit, Exit.fail(terminal))
      assert.strictEqual(endedAt, 2000)
    }))

  it.effect("does not cut off the first attempt: before a transient failure there is none to give up with", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("elapsed-first"),
        backoff: Retry.constant("1 second"),
        jitter: "none",
        maxElapsed: "2 seconds"
      })
      const succeeds = yield* timedScript([5000], ["ok"])
      const ok = yield* timedRun(succeeds.op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(ok.exit, Exit.succeed(1))
      assert.strictEqual(ok.endedAt, 5000)
      // Failing transiently past the budget, it gives up at once: no wait, no retry.
      const fails = yield* timedScript([5000], [transient()])
      const gaveUp = yield* timedRun(fails.op.pipe(Retry.retry(policy)))
      const error = yield* Effect.flip(gaveUp.exit)
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "MaxElapsed")
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.attempts : undefined, 1)
      assert.strictEqual(gaveUp.endedAt - ok.endedAt, 5000)
    }))

  it.effect("without maxElapsed, a slow retry runs to its end", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("no-elapsed"),
        backoff: Retry.constant("1 second"),
        jitter: "none"
      })
      const { op } = yield* timedScript([0, 60_000], [transient(), "ok"])
      const { endedAt, exit } = yield* timedRun(op.pipe(Retry.retry(policy)))
      assert.deepStrictEqual(exit, Exit.succeed(2))
      assert.strictEqual(endedAt, 61_000)
    }))

  it.effect("uses any Schedule as the backoff and stops when it does", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("custom"),
        backoff: Schedule.spaced("300 millis").pipe(Schedule.intersect(Schedule.recurs(2))),
        jitter: "none",
        maxAttempts: 10
      })
      const { op, starts } = yield* scripted([transient()])
      const error = yield* Effect.flip(yield* runToEnd(op.pipe(Retry.retry(policy))))
      assert.deepStrictEqual(yield* starts, [0, 300, 600])
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "ScheduleDone")
    }))

  it.effect("stops immediately when interrupted mid-wait", () =>
    Effect.gen(function*() {
      const policy = Retry.unsafeMake({
        name: uniqueName("interrupt"),
        backoff: Retry.constant("10 seconds"),
        jitter: "none"
      })
      const { op, starts } = yield* scripted([transient()])
      const fiber = yield* Effect.fork(op.pipe(Retry.retry(policy)))
      yield* TestClock.adjust("1 second")
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* starts, [0])
      assert.isTrue(Exit.isInterrupted(yield* Fiber.await(fiber)))
    }))

  it.effect("logs every retry at warning level and counts calls and attempts", () =>
    Effect.gen(function*() {
      const name = uniqueName("metrics")
      const policy = Retry.unsafeMake({ name, backoff: Retry.constant("10 millis"), jitter: "none", maxAttempts: 2 })
      const calls = Metric.tagged(Metrics.retryCalls, "policy", name)
      const { op } = yield* scripted([transient(), "ok"])
      yield* runToEnd(op.pipe(Retry.retry(policy)))
      yield* runToEnd(Effect.succeed(1).pipe(Retry.retry(policy)))
      yield* runToEnd(Effect.fail(transient()).pipe(Retry.retry(policy)))
      yield* runToEnd(Effect.fail(terminal).pipe(Retry.retry(policy)))
      assert.strictEqual(yield* counterValue(Metric.tagged(calls, "result", "success_after_retry")), 1)
      assert.strictEqual(yield* counterValue(Metric.tagged(calls, "result", "success_first_try")), 1)
      assert.strictEqual(yield* counterValue(Metric.tagged(calls, "result", "exhausted")), 1)
      assert.strictEqual(yield* counterValue(Metric.tagged(calls, "result", "terminal")), 1)
      assert.strictEqual(yield* counterValue(Metric.tagged(Metrics.retryAttempts, "policy", name)), 2)
    }))

  it("types: transient failures leave the error channel, RetriesExhausted joins it", () => {
    const policy = Retry.unsafeMake()
    class Validation extends Data.TaggedError("Validation") {}
    const both = Effect.fail(transient()) as Effect.Effect<string, Failure.TransientError | Validation>
    expectTypeOf(both.pipe(Retry.retry(policy))).toEqualTypeOf<
      Effect.Effect<string, Validation | Failure.RetriesExhausted<Failure.TransientError>>
    >()
    const onlyTerminal = Effect.fail(terminal) as Effect.Effect<number, Failure.TerminalError>
    expectTypeOf(Retry.retry(onlyTerminal, policy)).toEqualTypeOf<Effect.Effect<number, Failure.TerminalError>>()
  })
})

describe("Retry logging", () => {
  it.effect("writes a warning per retry with the attempt, delay and error tag", () =>
    Effect.gen(function*() {
      const lines: Array<{ level: string; message: unknown; annotations: Record<string, unknown> }> = []
      const { Logger } = yield* Effect.promise(() => import("effect"))
      const logger = Logger.make(({ annotations, logLevel, message }) => {
        const record: Record<string, unknown> = {}
        for (const [key, value] of annotations) record[key] = value
        lines.push({ level: logLevel.label, message, annotations: record })
      })
      const policy = Retry.unsafeMake({ name: "logged", backoff: Retry.constant("250 millis"), jitter: "none" })
      const { op } = yield* scripted([transient(), "ok"])
      yield* runToEnd(op.pipe(Retry.retry(policy), Effect.provide(Logger.replace(Logger.defaultLogger, logger))))
      assert.strictEqual(lines.length, 1)
      assert.strictEqual(lines[0]?.level, "WARN")
      assert.deepStrictEqual(lines[0]?.annotations, {
        "retry.policy": "logged",
        "retry.attempt": 2,
        "retry.delay_ms": 250,
        "retry.elapsed_ms": 0,
        "error.tag": "TransientError"
      })
    }))
})

// ---------------------------------------------------------------------------
// configuration
// ---------------------------------------------------------------------------

describe("Retry.make", () => {
  const rejects = (options: Retry.Retry.Options, option: string) =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Retry.make(options))
      assert.strictEqual(error._tag, "InvalidOptionsError")
      assert.strictEqual(error.option, option)
      assert.strictEqual(error.component, "Retry")
    })

  it.effect("rejects negative and NaN durations", () =>
    Effect.gen(function*() {
      yield* rejects({ backoff: Retry.constant(-1) }, "backoff.delay")
      yield* rejects({ backoff: Retry.constant(Number.NaN) }, "backoff.delay")
      yield* rejects({ backoff: Retry.exponential({ base: "-5 seconds" }) }, "backoff.base")
      yield* rejects({ backoff: Retry.linear({ base: "1 second", increment: -1 }) }, "backoff.increment")
      yield* rejects({ maxElapsed: Number.NaN }, "maxElapsed")
      yield* rejects({ maxElapsed: "soon" as Duration.DurationInput }, "maxElapsed")
    }))

  it.effect("rejects zero or fractional attempts", () =>
    Effect.gen(function*() {
      yield* rejects({ maxAttempts: 0 }, "maxAttempts")
      yield* rejects({ maxAttempts: 2.5 }, "maxAttempts")
      yield* rejects({ maxAttempts: Number.NaN }, "maxAttempts")
    }))

  it.effect("rejects a factor below 1, a cap below the base and jitter outside 0..1", () =>
    Effect.gen(function*() {
      yield* rejects({ backoff: Retry.exponential({ base: "1 second", factor: 0.5 }) }, "backoff.factor")
      yield* rejects({ backoff: Retry.exponential({ base: "1 second", cap: "10 millis" }) }, "backoff.cap")
      yield* rejects({ jitter: { proportional: 1.5 } }, "jitter.proportional")
      yield* rejects({ backoff: Retry.constant("1 second"), jitter: "decorrelated" }, "jitter")
      yield* rejects({ name: "" }, "name")
    }))

  it("unsafeMake throws the same typed error", () => {
    assert.throws(() => Retry.unsafeMake({ maxAttempts: 0 }), /option "maxAttempts" must be an integer ≥ 1/)
  })

  it.effect("accepts Infinity attempts", () =>
    Effect.gen(function*() {
      const policy = yield* Retry.make({ maxAttempts: Infinity, maxElapsed: "1 minute" })
      assert.strictEqual(policy.maxAttempts, Infinity)
    }))
})

// ---------------------------------------------------------------------------
// schedules
// ---------------------------------------------------------------------------

const delaysOf = (schedule: Schedule.Schedule<Duration.Duration>, n: number) =>
  Effect.map(
    Schedule.run(schedule, 0, Array.from({ length: n }, (_, i) => i)),
    (out) => Chunk.toReadonlyArray(out).slice(0, n).map(Duration.toMillis)
  )

describe("Retry.schedule", () => {
  it.effect("constant, linear, exponential and fibonacci without jitter", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* delaysOf(yield* Retry.schedule(Retry.constant("1 second"), "none"), 3), [
        1000,
        1000,
        1000
      ])
      assert.deepStrictEqual(
        yield* delaysOf(yield* Retry.schedule(Retry.linear({ base: "100 millis", cap: "350 millis" }), "none"), 5),
        [100, 200, 300, 350, 350]
      )
      assert.deepStrictEqual(
        yield* delaysOf(
          yield* Retry.schedule(Retry.exponential({ base: "100 millis", factor: 3, cap: "2 seconds" }), "none"),
          5
        ),
        [100, 300, 900, 2000, 2000]
      )
      assert.deepStrictEqual(
        yield* delaysOf(yield* Retry.schedule(Retry.fibonacci({ base: "100 millis" }), "none"), 6),
        [100, 100, 200, 300, 500, 800]
      )
    }))

  it.effect("is deterministic under a seeded Random", () =>
    Effect.gen(function*() {
      const schedule = yield* Retry.schedule(Retry.exponential({ base: "100 millis" }), "decorrelated")
      const first = yield* delaysOf(schedule, 8).pipe(Effect.withRandom(Random.make("seed")))
      const second = yield* delaysOf(schedule, 8).pipe(Effect.withRandom(Random.make("seed")))
      assert.deepStrictEqual(first, second)
    }))

  it.effect("never overflows past the cap, even after many attempts", () =>
    Effect.gen(function*() {
      const schedule = yield* Retry.schedule(
        Retry.exponential({ base: "1 second", factor: 10, cap: "1 minute" }),
        "none"
      )
      const delays = yield* delaysOf(schedule, 2000)
      assert.strictEqual(delays.at(-1), 60_000)
      assert.isTrue(delays.every(Number.isFinite))
    }))
})

// ---------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------

const backoffArb = FastCheck.record({
  base: FastCheck.integer({ min: 1, max: 2_000 }),
  factor: FastCheck.double({ min: 1, max: 4, noNaN: true }),
  capMultiple: FastCheck.integer({ min: 1, max: 100 })
})

const jitterArb = FastCheck.constantFrom<Retry.Jitter>("none", "full", "equal", "decorrelated", { proportional: 0.25 })

describe("Retry properties", () => {
  it.effect.prop(
    "each jitter strategy's delays stay within its formula's bounds",
    { backoff: backoffArb, jitter: jitterArb, seed: FastCheck.string() },
    ({ backoff, jitter, seed }) =>
      Effect.gen(function*() {
        const cap = backoff.base * backoff.capMultiple
        const schedule = yield* Retry.schedule(
          Retry.exponential({ base: backoff.base, factor: backoff.factor, cap }),
          jitter
        )
        const delays = yield* delaysOf(schedule, 12).pipe(Effect.withRandom(Random.make(seed)))
        let previous = backoff.base
        delays.forEach((delay, i) => {
          const d = Math.min(cap, backoff.base * Math.pow(backoff.factor, i))
          const [low, high] = jitter === "none"
            ? [d, d]
            : jitter === "full"
            ? [0, d]
            : jitter === "equal"
            ? [d / 2, d]
            : jitter === "decorrelated"
            ? [Math.min(cap, backoff.base), Math.min(cap, Math.max(backoff.base, previous * 3))]
            : [d * 0.75, Math.min(cap, d * 1.25)]
          assert.isTrue(
            delay >= low - 1e-6 && delay <= high + 1e-6,
            `${JSON.stringify(jitter)}: ${delay} not in [${low}, ${high}]`
          )
          assert.isTrue(delay <= cap + 1e-6)
          previous = delay
        })
      })
  )

  it.effect.prop(
    "calls end within the time budget, retries start before it, attempts never exceed the maximum",
    {
      maxAttempts: FastCheck.integer({ min: 1, max: 12 }),
      budgetMs: FastCheck.integer({ min: 1, max: 20_000 }),
      jitter: jitterArb,
      failures: FastCheck.integer({ min: 0, max: 20 }),
      // How long each attempt takes (the last one repeats): from instant to longer than most budgets.
      durations: FastCheck.array(FastCheck.integer({ min: 0, max: 4_000 }), { minLength: 1, maxLength: 21 }),
      seed: FastCheck.string()
    },
    ({ budgetMs, durations, failures, jitter, maxAttempts, seed }) =>
      Effect.gen(function*() {
        const policy = yield* Retry.make({
          name: "prop-budget",
          backoff: Retry.exponential({ base: "50 millis", cap: "5 seconds" }),
          jitter,
          maxAttempts,
          maxElapsed: budgetMs
        })
        const { ends, op, starts } = yield* timedScript(durations, [
          ...Array.from({ length: failures }, () => transient()),
          "ok"
        ])
        const startedAt = yield* TestClock.currentTimeMillis
        const { endedAt, exit } = yield* timedRun(op.pipe(Retry.retry(policy), Effect.withRandom(Random.make(seed))))
        const times = (yield* starts).map((t) => t - startedAt)
        const ended = yield* ends
        const firstDuration = durations[0] ?? 0
        assert.isTrue(times.length <= maxAttempts, `${times.length} attempts > ${maxAttempts}`)
        // Retries start before the budget is spent; the first attempt is the caller's and is not cut off.
        times.slice(1).forEach((t) => assert.isTrue(t < budgetMs, `a retry started at ${t}, budget ${budgetMs}`))
        // The call ends within the budget, unless its first attempt alone outlasts it.
        const bound = Math.max(budgetMs, firstDuration)
        assert.isTrue(endedAt - startedAt <= bound, `the call ended at ${endedAt - startedAt} > ${bound}`)
        // Every attempt ended; one cut off by the budget ran its finalizers at the budget, and the call gave up.
        assert.strictEqual(ended.length, times.length)
        ended.forEach(({ at, interrupted }) => {
          if (!interrupted) return
          assert.strictEqual(at - startedAt, budgetMs)
          assert.strictEqual(endedAt - startedAt, budgetMs)
          assert.isTrue(Exit.isFailure(exit))
        })
        if (Exit.isSuccess(exit)) {
          assert.strictEqual(times.length, failures + 1)
        } else {
          assert.isTrue(times.length <= failures + 1)
          const error = yield* Effect.flip(exit)
          assert.strictEqual(error._tag, "RetriesExhausted")
          if (error._tag === "RetriesExhausted") {
            assert.strictEqual(error.attempts, times.length)
            assert.isTrue(Duration.toMillis(error.elapsed) <= bound)
            if (ended.some(({ interrupted }) => interrupted)) assert.strictEqual(error.reason, "MaxElapsed")
          }
        }
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect.prop(
    "terminal failures are never retried",
    {
      script: FastCheck.array(FastCheck.constantFrom("transient", "terminal", "ok"), { minLength: 1, maxLength: 10 })
    },
    ({ script }) =>
      Effect.gen(function*() {
        const policy = yield* Retry.make({ name: "prop-terminal", maxAttempts: 20, jitter: "none" })
        const outcomes = script.map((kind) =>
          kind === "transient" ? transient() : kind === "terminal" ? terminal : "ok" as const
        )
        const { op, starts } = yield* scripted(outcomes)
        const exit = yield* runToEnd(op.pipe(Retry.retry(policy)))
        const firstStop = script.findIndex((kind) => kind !== "transient")
        const expectedAttempts = firstStop === -1 ? script.length : firstStop + 1
        // After the script, the last outcome repeats: a trailing transient keeps failing until the limit.
        if (firstStop !== -1) {
          assert.strictEqual((yield* starts).length, expectedAttempts)
          if (script[firstStop] === "terminal") assert.deepStrictEqual(exit, Exit.fail(terminal))
        }
      }),
    { fastCheck: { numRuns: 60 } }
  )

  it.effect.prop(
    "retryAfter is honoured: each wait is at least the previous failure's hint",
    {
      hints: FastCheck.array(FastCheck.integer({ min: 0, max: 30_000 }), { minLength: 1, maxLength: 6 }),
      seed: FastCheck.string()
    },
    ({ hints, seed }) =>
      Effect.gen(function*() {
        const policy = yield* Retry.make({ name: "prop-hint", maxAttempts: 10, jitter: "full" })
        const { op, starts } = yield* scripted([...hints.map((ms) => transient("hint", Duration.millis(ms))), "ok"])
        yield* runToEnd(op.pipe(Retry.retry(policy), Effect.withRandom(Random.make(seed))))
        const times = yield* starts
        assert.strictEqual(times.length, hints.length + 1)
        hints.forEach((hint, i) => {
          const waited = (times[i + 1] ?? 0) - (times[i] ?? 0)
          assert.isTrue(waited >= hint, `waited ${waited} < hint ${hint}`)
        })
      }),
    { fastCheck: { numRuns: 50 } }
  )
})

// ---------------------------------------------------------------------------
// budget
// ---------------------------------------------------------------------------

describe("RetryBudget", () => {
  it.effect("stops retrying when spent and counts the refusal", () =>
    Effect.gen(function*() {
      const name = uniqueName("budget")
      const budget = yield* RetryBudget.make({ ratio: 0, minRetriesPerSecond: 0.2, window: "10 seconds" })
      assert.strictEqual(yield* budget.available, 2)
      const policy = yield* Retry.make({
        name,
        budget,
        backoff: Retry.constant("1 millis"),
        jitter: "none",
        maxAttempts: 10
      })
      const exit = yield* runToEnd(Effect.fail(transient()).pipe(Retry.retry(policy)))
      const error = yield* Effect.flip(exit)
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.reason : undefined, "Budget")
      assert.strictEqual(error._tag === "RetriesExhausted" ? error.attempts : undefined, 3)
      assert.strictEqual(yield* counterValue(Metric.tagged(Metrics.retryBudgetDenied, "policy", name)), 1)
    }))

  it.effect("refills as deposits and withdrawals leave the window", () =>
    Effect.gen(function*() {
      const budget = yield* RetryBudget.make({ ratio: 0.5, minRetriesPerSecond: 0, window: "2 seconds" })
      for (let i = 0; i < 4; i++) yield* budget.deposit
      assert.strictEqual(yield* budget.available, 2)
      assert.isTrue(yield* budget.tryWithdraw)
      assert.isTrue(yield* budget.tryWithdraw)
      assert.isFalse(yield* budget.tryWithdraw)
      yield* TestClock.adjust("2 seconds")
      assert.strictEqual(yield* budget.available, 0)
      yield* budget.deposit
      yield* budget.deposit
      assert.strictEqual(yield* budget.available, 1)
    }))

  it.effect("rejects invalid options", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* Effect.flip(RetryBudget.make({ ratio: -1 }))).option, "ratio")
      assert.strictEqual((yield* Effect.flip(RetryBudget.make({ ratio: Number.NaN }))).option, "ratio")
      assert.strictEqual((yield* Effect.flip(RetryBudget.make({ window: "500 millis" }))).option, "window")
      assert.strictEqual((yield* Effect.flip(RetryBudget.make({ window: "2 minutes" }))).option, "window")
      assert.strictEqual(
        (yield* Effect.flip(RetryBudget.make({ minRetriesPerSecond: -3 }))).option,
        "minRetriesPerSecond"
      )
    }))

  it.effect.prop(
    "limits retries to its ratio of calls over the window",
    {
      ratio: FastCheck.double({ min: 0.05, max: 1, noNaN: true }),
      calls: FastCheck.integer({ min: 1, max: 60 }),
      failEvery: FastCheck.integer({ min: 1, max: 3 })
    },
    ({ calls, failEvery, ratio }) =>
      Effect.gen(function*() {
        const budget = yield* RetryBudget.make({ ratio, minRetriesPerSecond: 0, window: "10 seconds" })
        const policy = yield* Retry.make({
          name: "prop-ratio",
          budget,
          backoff: Retry.constant("1 millis"),
          jitter: "none",
          maxAttempts: 5
        })
        const retries = yield* Ref.make(0)
        for (let i = 0; i < calls; i++) {
          const attempts = yield* Ref.make(0)
          const op = Effect.gen(function*() {
            const n = yield* Ref.updateAndGet(attempts, (x) => x + 1)
            if (n > 1) yield* Ref.update(retries, (x) => x + 1)
            if (i % failEvery === 0) return yield* Effect.fail(transient())
            return n
          })
          yield* runToEnd(op.pipe(Retry.retry(policy)))
        }
        // All calls happen within one window (each takes a few milliseconds of test time).
        const made = yield* Ref.get(retries)
        assert.isTrue(made <= ratio * calls + 1e-9, `${made} retries > ${ratio} × ${calls} calls`)
      }),
    { fastCheck: { numRuns: 25 } }
  )
})
