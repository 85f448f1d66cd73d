import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as Failure from "./Failure.js"

const now = Date.UTC(2026, 10, 22, 12, 0, 0)
const max = Duration.seconds(60)

const seconds = (o: Option.Option<Duration.Duration>): number | undefined =>
  Option.match(o, { onNone: () => undefined, onSome: Duration.toSeconds })

describe("Failure.parseRetryAfter", () => {
  it("reads delta-seconds", () => {
    assert.strictEqual(seconds(Failure.parseRetryAfter("7", { now, max })), 7)
    assert.strictEqual(seconds(Failure.parseRetryAfter(" 0 ", { now, max })), 0)
    assert.strictEqual(seconds(Failure.parseRetryAfter("1.5", { now, max })), 1.5)
  })

  it("reads an IMF-fixdate relative to now", () => {
    assert.strictEqual(seconds(Failure.parseRetryAfter("Sun, 22 Nov 2026 12:00:30 GMT", { now, max })), 30)
  })

  it("reads the obsolete RFC 850 and asctime date forms", () => {
    assert.strictEqual(seconds(Failure.parseRetryAfter("Sunday, 22-Nov-26 12:00:10 GMT", { now, max })), 10)
    assert.strictEqual(seconds(Failure.parseRetryAfter("Sun Nov 22 12:00:20 2026", { now, max })), 20)
  })

  it("treats a date in the past as no wait", () => {
    assert.strictEqual(seconds(Failure.parseRetryAfter("Sun, 22 Nov 2026 11:00:00 GMT", { now, max })), 0)
  })

  it("caps values above the maximum instead of trusting them", () => {
    assert.strictEqual(seconds(Failure.parseRetryAfter("86400", { now, max })), 60)
    assert.strictEqual(seconds(Failure.parseRetryAfter("9".repeat(400).slice(0, 60), { now, max })), 60)
    assert.strictEqual(seconds(Failure.parseRetryAfter("Fri, 01 Jan 2100 00:00:00 GMT", { now, max })), 60)
  })

  it("ignores nonsense", () => {
    for (const junk of ["", "soon", "-5", "5s", "1e3", "0x10", "NaN", "Infinity", "2026-11-22T12:00:30Z", "tomorrow"]) {
      assert.isTrue(Option.isNone(Failure.parseRetryAfter(junk, { now, max })), `"${junk}" should be ignored`)
    }
    assert.isTrue(Option.isNone(Failure.parseRetryAfter("Sun, 22 Nov 2026 12:00:30", { now, max })), "no zone")
    assert.isTrue(Option.isNone(Failure.parseRetryAfter("x".repeat(1000), { now, max })))
  })
})

describe("Failure.classifyStatus", () => {
  it("follows the default table", () => {
    const c = Failure.defaultClassifier
    for (const status of [408, 429, 500, 502, 503, 504]) {
      assert.strictEqual(Failure.classifyStatus(status, c), "transient")
    }
    for (const status of [400, 401, 403, 404, 409, 410, 422]) {
      assert.strictEqual(Failure.classifyStatus(status, c), "terminal")
    }
    for (const status of [501, 505, 511]) assert.strictEqual(Failure.classifyStatus(status, c), "terminal")
    for (const status of [200, 201, 204, 301, 304]) assert.strictEqual(Failure.classifyStatus(status, c), "success")
  })

  it("can be extended without touching the default", () => {
    const c = Failure.extend(Failure.defaultClassifier, { statuses: { 409: "transient", 503: "terminal" } })
    assert.strictEqual(Failure.classifyStatus(409, c), "transient")
    assert.strictEqual(Failure.classifyStatus(503, c), "terminal")
    assert.strictEqual(Failure.classifyStatus(409, Failure.defaultClassifier), "terminal")
  })
})

class Tagged extends Data.TaggedError("RequestError")<{ readonly reason: string }> {}
class CodeError extends Error {
  constructor(readonly code: string) {
    super(code)
  }
}

describe("Failure.classifyError", () => {
  const c = Failure.defaultClassifier
  it("keeps existing brands", () => {
    assert.deepStrictEqual(
      Failure.classifyError(new Failure.TransientError({ reason: "Transport", message: "x" }), c),
      Option.some("transient")
    )
    assert.deepStrictEqual(
      Failure.classifyError(new Failure.TerminalError({ reason: "Lifted", message: "x" }), c),
      Option.some("terminal")
    )
  })

  it("refines a tag by its reason before the bare tag", () => {
    assert.deepStrictEqual(Failure.classifyError(new Tagged({ reason: "Transport" }), c), Option.some("transient"))
    assert.deepStrictEqual(Failure.classifyError(new Tagged({ reason: "InvalidUrl" }), c), Option.some("terminal"))
    assert.deepStrictEqual(Failure.classifyError(new Tagged({ reason: "Other" }), c), Option.none())
  })

  it("reads transport error codes", () => {
    assert.deepStrictEqual(Failure.classifyError(new CodeError("ECONNRESET"), c), Option.some("transient"))
    assert.deepStrictEqual(Failure.classifyError(new CodeError("40001"), c), Option.some("transient"))
    assert.deepStrictEqual(Failure.classifyError(new CodeError("23505"), c), Option.none())
    assert.deepStrictEqual(Failure.classifyError("plain string", c), Option.none())
  })
})

describe("Failure.fromResponse", () => {
  it.effect("turns a 503 with Retry-After into a transient failure with the hint", () =>
    Effect.gen(function*() {
      const failure = yield* Failure.fromResponse({ status: 503, headers: { "Retry-After": "3" } }, "charge")
      assert.isTrue(Option.isSome(failure))
      const error = Option.getOrThrow(failure)
      assert.isTrue(Failure.isTransient(error))
      assert.strictEqual(error.status, 503)
      assert.strictEqual(error.message, "charge answered HTTP 503")
      assert.deepStrictEqual(Failure.retryAfterOf(error), Option.some(Duration.seconds(3)))
    }))

  it.effect("reads an HTTP-date against the Clock, through a WHATWG Headers object", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(now)
      const headers = new Headers({ "retry-after": "Sun, 22 Nov 2026 12:00:05 GMT" })
      const error = Option.getOrThrow(yield* Failure.fromResponse({ status: 429, headers }))
      assert.deepStrictEqual(Failure.retryAfterOf(error), Option.some(Duration.seconds(5)))
    }))

  it.effect("turns a 404 into a terminal failure and a 200 into nothing", () =>
    Effect.gen(function*() {
      const notFound = Option.getOrThrow(yield* Failure.fromResponse({ status: 404 }))
      assert.isTrue(Failure.isTerminal(notFound))
      assert.isFalse(Failure.isTransient(notFound))
      assert.isTrue(Option.isNone(yield* Failure.fromResponse({ status: 200 })))
    }))

  it.effect("uses the current classifier and its Retry-After cap", () =>
    Effect.gen(function*() {
      const classifier = Failure.extend(Failure.defaultClassifier, {
        statuses: { 404: "transient" },
        maxRetryAfter: "2 seconds"
      })
      const error = yield* Failure.fromResponse({ status: 404, headers: { "retry-after": "600" } }).pipe(
        Failure.withClassifier(classifier),
        Effect.map(Option.getOrThrow)
      )
      assert.isTrue(Failure.isTransient(error))
      assert.deepStrictEqual(Failure.retryAfterOf(error), Option.some(Duration.seconds(2)))
    }))
})

class DbError extends Data.TaggedError("DbError")<{ readonly code: string }> {}

describe("Failure.lift", () => {
  it.effect("lifts with a user predicate and keeps the original error as the cause", () =>
    Effect.gen(function*() {
      const original = new DbError({ code: "40001" })
      const lifted = yield* Effect.fail(original).pipe(
        Failure.lift((error) => (error.code === "40001" ? "transient" : "terminal")),
        Effect.flip
      )
      assert.isTrue(Failure.isTransient(lifted))
      assert.strictEqual(lifted.cause, original)
      const terminal = yield* Effect.fail(new DbError({ code: "23505" })).pipe(
        Failure.lift((error) => (error.code === "40001" ? "transient" : "terminal")),
        Effect.flip
      )
      assert.isTrue(Failure.isTerminal(terminal))
    }))

  it.effect("leaves errors already in the model untouched", () =>
    Effect.gen(function*() {
      const already = new Failure.TerminalError({ reason: "HttpStatus", message: "400", status: 400 })
      const out = yield* Effect.fail(already).pipe(Failure.lift(() => "transient"), Effect.flip)
      assert.strictEqual(out, already)
    }))

  it.effect("classify uses the classifier's tables and calls unknown errors terminal", () =>
    Effect.gen(function*() {
      const transport = yield* Effect.fail(new Tagged({ reason: "Transport" })).pipe(Failure.classify(), Effect.flip)
      assert.isTrue(Failure.isTransient(transport))
      const unknown = yield* Effect.fail(new DbError({ code: "x" })).pipe(Failure.classify(), Effect.flip)
      assert.isTrue(Failure.isTerminal(unknown))
      const custom = yield* Effect.fail(new DbError({ code: "x" })).pipe(
        Failure.classify(),
        Failure.withClassifier(Failure.extend(Failure.defaultClassifier, { tags: { DbError: "transient" } })),
        Effect.flip
      )
      assert.isTrue(Failure.isTransient(custom))
    }))

  it("types the lifted channel", () => {
    const lifted = Effect.fail(new DbError({ code: "1" })).pipe(Failure.lift(() => "transient"))
    expectTypeOf(lifted).toEqualTypeOf<
      Effect.Effect<never, Failure.TransientError<DbError> | Failure.TerminalError<DbError>>
    >()
  })
})

describe("Failure errors", () => {
  it("say what a human needs", () => {
    const invalid = new Failure.InvalidOptionsError({
      component: "Retry",
      option: "factor",
      value: 0.5,
      expected: "a number ≥ 1"
    })
    assert.strictEqual(invalid.message, `Retry: option "factor" must be a number ≥ 1 (got 0.5)`)
    assert.isTrue(Failure.isTerminal(invalid))
    const exhausted = new Failure.RetriesExhausted({
      policy: "payments",
      reason: "MaxAttempts",
      attempts: 3,
      elapsed: Duration.millis(1500),
      lastFailure: new Failure.TransientError({ reason: "HttpStatus", message: "gateway answered HTTP 503" })
    })
    assert.strictEqual(
      exhausted.message,
      `Retry policy "payments" gave up after 3 attempts in 1.5s (attempt limit reached); last failure: gateway answered HTTP 503`
    )
    assert.isFalse(Failure.isTransient(exhausted))
    assert.isFalse(Failure.isTerminal(exhausted))
    assert.isTrue(Failure.isRetriesExhausted(exhausted))
  })

  it("are yieldable Effect failures", () => {
    const exit = Effect.runSyncExit(new Failure.TransientError({ reason: "Timeout", message: "slow" }))
    assert.isTrue(Exit.isFailure(exit))
  })
})
