import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-base"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as TestClock from "effect/TestClock"
import * as Bulkhead from "../bulkhead/Bulkhead.js"
import * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Tracing from "../observability/Tracing.js"
import * as Timeout from "../timeout/Timeout.js"
import * as Fallback from "./Fallback.js"

// -----------------------------------------------------------------------------
// Helpers
// -----------------------------------------------------------------------------

const down = (message = "connection reset") => new Failure.TransientError({ reason: "Transport", message })
const invalid = (message = "quantity must be positive") => new Failure.TerminalError({ reason: "Lifted", message })

class Unclassified extends Data.TaggedError("Unclassified")<{ readonly detail: string }> {}

const answered = (operation: string, source: Fallback.Source) =>
  Metric.value(Metric.tagged(Metric.tagged(Metrics.fallbacks, "operation", operation), "source", source)).pipe(
    Effect.map((state) => state.count)
  )

const countsOf = (operation: string) =>
  Effect.all({
    primary: answered(operation, "primary"),
    cache: answered(operation, "cache"),
    secondary: answered(operation, "secondary"),
    default: answered(operation, "default")
  })

/** An effect that records its name in `log` when it runs, then does `then`. */
const source = <A, E>(log: Ref.Ref<ReadonlyArray<string>>, name: string, then: Effect.Effect<A, E>) =>
  Ref.update(log, (names) => [...names, name]).pipe(Effect.zipRight(then))

// -----------------------------------------------------------------------------
// The chain
// -----------------------------------------------------------------------------

describe("Fallback.chain", () => {
  it.effect("answers from the primary when it succeeds, marked fresh, and counts it", () =>
    Effect.gen(function*() {
      const answer = yield* Effect.succeed(42).pipe(Fallback.chain({ operation: "chain-primary", default: 0 }))
      assert.deepStrictEqual(answer, Fallback.primary(42))
      assert.isFalse(answer.stale)
      assert.strictEqual(Fallback.source(answer), "primary")
      assert.deepStrictEqual(yield* countsOf("chain-primary"), { primary: 1, cache: 0, secondary: 0, default: 0 })
    }))

  it.effect("falls through primary → cache → secondary → default, trying each only when the one before is down", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const cache = yield* Fallback.memoryCache<string>()
      const failing = yield* Ref.make(false)
      const primary = Effect.flatMap(
        Ref.get(failing),
        (fail) => fail ? Effect.fail(down("primary down")) : Effect.succeed("fresh")
      )
      const secondaryUp = yield* Ref.make(true)
      const secondary = Effect.flatMap(
        Ref.get(secondaryUp),
        (up) => up ? Effect.succeed("mirror") : Effect.fail(down("mirror down"))
      )
      const run = (key: string) =>
        source(log, "primary", primary).pipe(
          Fallback.chain({
            operation: "chain-order",
            cache: { store: cache, key, maxAge: "1 minute" },
            secondary: source(log, "secondary", secondary),
            default: source(log, "default", Effect.succeed("placeholder"))
          })
        )

      // The primary answers and fills the cache for key "a".
      assert.strictEqual((yield* run("a"))._tag, "Primary")
      yield* Ref.set(failing, true)
      // Key "a" is cached: the cache answers before the secondary is tried.
      const cached = yield* run("a")
      assert.strictEqual(cached._tag, "Cached")
      assert.strictEqual(cached.value, "fresh")
      // Key "b" was never stored: the secondary answers.
      const mirrored = yield* run("b")
      assert.strictEqual(mirrored._tag, "Secondary")
      assert.strictEqual(mirrored.value, "mirror")
      // With the secondary down too, the default answers, with the secondary's failure as its cause.
      yield* Ref.set(secondaryUp, false)
      const defaulted = yield* run("b")
      assert.strictEqual(defaulted._tag, "Default")
      assert.strictEqual(defaulted.value, "placeholder")
      assert.deepStrictEqual(Fallback.cause(defaulted), Option.some(down("mirror down")))

      assert.deepStrictEqual(yield* Ref.get(log), [
        "primary",
        "primary",
        "primary",
        "secondary",
        "primary",
        "secondary",
        "default"
      ])
      assert.deepStrictEqual(yield* countsOf("chain-order"), { primary: 1, cache: 1, secondary: 1, default: 1 })
    }))

  it.effect("a degraded answer carries the primary's typed failure as its cause", () =>
    Effect.gen(function*() {
      const failure = down("recommendations answered 503")
      const answer = yield* Effect.fail(failure).pipe(
        Fallback.chain({ operation: "chain-cause", secondary: Effect.succeed(["popular"]) })
      )
      assert.strictEqual(answer._tag, "Secondary")
      if (answer._tag === "Secondary") assert.strictEqual(answer.cause, failure)
    }))

  it.effect("falls through on what the failure model calls a dependency being down", () =>
    Effect.gen(function*() {
      const timeout = Timeout.unsafeMake({ operation: "slow-dependency", limit: "1 second" })
      const timedOut = yield* Effect.fork(
        Effect.never.pipe(Timeout.timeout(timeout), Fallback.chain({ operation: "chain-outages", default: "d" }))
      )
      yield* TestClock.adjust("1 second")
      assert.strictEqual((yield* Fiber.join(timedOut))._tag, "Default")

      const outages: ReadonlyArray<unknown> = [
        down(),
        new Failure.TransientError({ reason: "HttpStatus", message: "503", status: 503 }),
        new Failure.RetriesExhausted({
          policy: "p",
          reason: "MaxAttempts",
          attempts: 3,
          elapsed: Duration.seconds(1),
          lastFailure: down()
        }),
        new CircuitBreaker.CircuitOpenError({ breaker: "b", state: "Open", retryAfter: Duration.seconds(30) }),
        new Bulkhead.BulkheadFullError({
          bulkhead: "bh",
          reason: "QueueFull",
          maxConcurrent: 1,
          maxQueued: 0,
          maxWait: Duration.seconds(1)
        }),
        // Outside the model, known to the classifier by tag or by code.
        { _tag: "TimeoutException" },
        { _tag: "SqlError", code: "ECONNREFUSED" }
      ]
      for (const outage of outages) {
        const answer = yield* Effect.fail(outage).pipe(Fallback.chain({ operation: "chain-outages", default: "d" }))
        assert.strictEqual(answer._tag, "Default", `${JSON.stringify(outage)} should fall through`)
      }
      assert.strictEqual(yield* answered("chain-outages", "default"), outages.length + 1)
    }))

  it.effect("a terminal failure propagates unchanged and no fallback is tried", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const failure = invalid()
      const error = yield* Effect.fail(failure).pipe(
        Fallback.chain({
          operation: "chain-terminal",
          secondary: source(log, "secondary", Effect.succeed(1)),
          default: source(log, "default", Effect.succeed(0))
        }),
        Effect.flip
      )
      assert.strictEqual(error, failure)
      assert.deepStrictEqual(yield* Ref.get(log), [])
      // An error the classifier does not know is not an outage either.
      const unknown = yield* Effect.fail(new Unclassified({ detail: "?" })).pipe(
        Fallback.chain({ operation: "chain-terminal", default: 0 }),
        Effect.flip
      )
      assert.strictEqual(unknown._tag, "Unclassified")
    }))

  it.effect("`when` decides which failures fall through", () =>
    Effect.gen(function*() {
      const failure = invalid("stock service rejected the query")
      const fellBack = yield* Effect.fail(failure).pipe(
        Fallback.chain({ operation: "chain-when", when: (error) => error._tag === "TerminalError", default: -1 })
      )
      assert.deepStrictEqual(fellBack, Fallback.defaulted({ value: -1, cause: failure }))
      // A `when` that refuses an outage makes it propagate.
      const outage = down()
      const error = yield* Effect.fail(outage).pipe(
        Fallback.chain({ operation: "chain-when", when: () => false, default: -1 }),
        Effect.flip
      )
      assert.strictEqual(error, outage)
    }))

  it.effect("the current classifier decides errors outside the model", () =>
    Effect.gen(function*() {
      const locked = Effect.fail(new Unclassified({ detail: "locked" }))
      const chained = locked.pipe(Fallback.chain({ operation: "chain-classifier", default: "d" }))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(chained)))
      const classifier = Failure.extend(Failure.defaultClassifier, { tags: { Unclassified: "transient" } })
      const answer = yield* chained.pipe(Failure.withClassifier(classifier))
      assert.strictEqual(answer._tag, "Default")
    }))

  it.effect("defects never fall back", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const exit = yield* Effect.die(new Error("bug")).pipe(
        Fallback.chain({
          operation: "chain-defect",
          when: () => true,
          default: source(log, "default", Effect.succeed(0))
        }),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      // Not even a typed failure beside a defect (two parallel branches).
      const both = yield* Effect.all([Effect.fail(down()), Effect.die("boom")], { concurrency: 2 }).pipe(
        Fallback.chain({
          operation: "chain-defect",
          when: () => true,
          default: source(log, "default", Effect.succeed([]))
        }),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(both) && Cause.isDie(both.cause))
      assert.deepStrictEqual(yield* Ref.get(log), [])
    }))

  it.effect("interruption never falls back", () =>
    Effect.gen(function*() {
      const log = yield* Ref.make<ReadonlyArray<string>>([])
      const interrupted = yield* Effect.interrupt.pipe(
        Fallback.chain({
          operation: "chain-interrupt",
          when: () => true,
          default: source(log, "default", Effect.succeed(0))
        }),
        Effect.exit
      )
      assert.isTrue(Exit.isInterrupted(interrupted))
      // A caller interrupting a slow primary gets no default behind its back.
      const fiber = yield* Effect.fork(
        Effect.sleep("10 seconds").pipe(
          Effect.zipRight(Effect.fail(down())),
          Fallback.chain({ operation: "chain-interrupt", default: source(log, "default", Effect.succeed(0)) })
        )
      )
      yield* TestClock.adjust("1 second")
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)))
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* Ref.get(log), [])
    }))

  it.effect("a failure that cancelled its siblings still falls through", () =>
    Effect.gen(function*() {
      // Effect.all fails with the failure and the interruption of the branch it cancelled.
      const answer = yield* Effect.all([Effect.fail(down()), Effect.never], { concurrency: 2 }).pipe(
        Fallback.chain({ operation: "chain-siblings", default: [] })
      )
      assert.strictEqual(answer._tag, "Default")
    }))

  it.effect("an exhausted chain fails with its last failure", () =>
    Effect.gen(function*() {
      const onlyPrimary = yield* Effect.fail(down("primary")).pipe(
        Fallback.chain({ operation: "chain-exhausted" }),
        Effect.flip
      )
      assert.strictEqual(onlyPrimary.message, "primary")
      const mirror = down("mirror")
      const withSecondary = yield* Effect.fail(down("primary")).pipe(
        Fallback.chain({ operation: "chain-exhausted", secondary: Effect.fail(mirror) }),
        Effect.flip
      )
      assert.strictEqual(withSecondary, mirror)
      // A terminal failure of the secondary propagates even with a default.
      const rejected = invalid("mirror rejected")
      const terminal = yield* Effect.fail(down("primary")).pipe(
        Fallback.chain({ operation: "chain-exhausted", secondary: Effect.fail(rejected), default: 0 }),
        Effect.flip
      )
      assert.strictEqual(terminal, rejected)
    }))

  it.effect("a default effect runs only when it is needed; `default: undefined` is a default", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const lazyDefault = Effect.as(Ref.update(runs, (n) => n + 1), "computed")
      yield* Effect.succeed("fresh").pipe(Fallback.chain({ operation: "chain-lazy", default: lazyDefault }))
      assert.strictEqual(yield* Ref.get(runs), 0)
      const answer = yield* Effect.fail(down()).pipe(Fallback.chain({ operation: "chain-lazy", default: lazyDefault }))
      assert.strictEqual(answer.value, "computed")
      assert.strictEqual(yield* Ref.get(runs), 1)
      const nothing = yield* Effect.fail(down()).pipe(Fallback.chain({ operation: "chain-lazy", default: undefined }))
      assert.deepStrictEqual(nothing, Fallback.defaulted({ value: undefined, cause: down() }))
    }))

  it.effect("invalid options are a defect naming the option", () =>
    Effect.gen(function*() {
      const badName = yield* Effect.succeed(1).pipe(Fallback.chain({ operation: "has spaces" }), Effect.exit)
      const badAge = yield* Effect.succeed(1).pipe(
        Fallback.chain({ operation: "ok", cache: { store: Fallback.unsafeMemoryCache<number>(), maxAge: -1 } }),
        Effect.exit
      )
      for (const [exit, option] of [[badName, "operation"], [badAge, "cache.maxAge"]] as const) {
        assert.isTrue(Exit.isFailure(exit))
        if (Exit.isFailure(exit)) {
          const defect = Cause.dieOption(exit.cause)
          assert.isTrue(Option.isSome(defect) && defect.value instanceof Failure.InvalidOptionsError)
          if (Option.isSome(defect) && defect.value instanceof Failure.InvalidOptionsError) {
            assert.strictEqual(defect.value.option, option)
          }
        }
      }
    }))
})

// -----------------------------------------------------------------------------
// Cache
// -----------------------------------------------------------------------------

describe("Fallback cache", () => {
  it.effect("serves the last good value marked stale, with when it was stored and its age", () =>
    Effect.gen(function*() {
      const store = yield* Fallback.memoryCache<ReadonlyArray<string>>()
      const up = yield* Ref.make(true)
      const recommendations = Effect.flatMap(
        Ref.get(up),
        (isUp) => isUp ? Effect.succeed(["chair", "desk"]) : Effect.fail(down("recommendations down"))
      )
      const shown = recommendations.pipe(
        Fallback.chain({
          operation: "cache-stale",
          cache: { store, key: "product-1", maxAge: "5 minutes" },
          default: []
        })
      )
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual((yield* shown)._tag, "Primary")
      yield* Ref.set(up, false)
      yield* TestClock.adjust("90 seconds")
      const answer = yield* shown
      assert.isTrue(Fallback.isStale(answer))
      if (Fallback.isStale(answer)) {
        assert.deepStrictEqual(answer.value, ["chair", "desk"])
        assert.isTrue(answer.stale)
        assert.strictEqual(DateTime.toEpochMillis(answer.storedAt), 10_000)
        assert.isTrue(Duration.equals(answer.age, Duration.seconds(90)))
        assert.strictEqual(answer.cause.message, "recommendations down")
      }
    }))

  it.effect("does not serve a value older than maxAge", () =>
    Effect.gen(function*() {
      const store = yield* Fallback.memoryCache<number>()
      const up = yield* Ref.make(true)
      const price = Effect.flatMap(Ref.get(up), (isUp) => isUp ? Effect.succeed(100) : Effect.fail(down()))
      const quoted = price.pipe(
        Fallback.chain({ operation: "cache-max-age", cache: { store, maxAge: "1 minute" }, default: 0 })
      )
      yield* quoted
      yield* Ref.set(up, false)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* quoted)._tag, "Cached")
      yield* TestClock.adjust("1 millis")
      const tooOld = yield* quoted
      assert.strictEqual(tooOld._tag, "Default")
      assert.strictEqual(tooOld.value, 0)
    }))

  it.effect("every primary success refreshes the stored value", () =>
    Effect.gen(function*() {
      const store = yield* Fallback.memoryCache<number>()
      const next = yield* Ref.make(0)
      const counter = Ref.updateAndGet(next, (n) => n + 1)
      yield* counter.pipe(Fallback.chain({ operation: "cache-refresh", cache: { store, maxAge: "1 hour" } }))
      yield* TestClock.adjust("1 second")
      yield* counter.pipe(Fallback.chain({ operation: "cache-refresh", cache: { store, maxAge: "1 hour" } }))
      const stored = yield* store.get("cache-refresh")
      assert.deepStrictEqual(stored, Option.some({ value: 2, storedAt: 1_000 }))
    }))

  it.effect("a failing cache is a miss, and a failing cache write does not fail the primary", () =>
    Effect.gen(function*() {
      const broken: Fallback.Cache<number> = {
        get: () => Effect.fail(new Error("redis down")),
        set: () => Effect.fail(new Error("redis down"))
      }
      const ok = yield* Effect.succeed(7).pipe(
        Fallback.chain({ operation: "cache-broken", cache: { store: broken, maxAge: "1 hour" } })
      )
      assert.deepStrictEqual(ok, Fallback.primary(7))
      const degraded = yield* Effect.fail(down()).pipe(
        Fallback.chain({ operation: "cache-broken", cache: { store: broken, maxAge: "1 hour" }, default: 0 })
      )
      assert.strictEqual(degraded._tag, "Default")
    }))

  it.effect("the memory cache keeps at most `capacity` keys, dropping the least recently used", () =>
    Effect.gen(function*() {
      const store = yield* Fallback.memoryCache<string>({ capacity: 2 })
      yield* store.set("a", { value: "A", storedAt: 0 })
      yield* store.set("b", { value: "B", storedAt: 0 })
      yield* store.get("a") // "a" is now more recent than "b"
      yield* store.set("c", { value: "C", storedAt: 0 })
      assert.isTrue(Option.isSome(yield* store.get("a")))
      assert.isTrue(Option.isNone(yield* store.get("b")))
      assert.isTrue(Option.isSome(yield* store.get("c")))
    }))

  it.effect("the memory cache rejects a capacity below one", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Fallback.memoryCache({ capacity: 0 }))
      assert.strictEqual(error._tag, "InvalidOptionsError")
      assert.strictEqual(error.option, "capacity")
      assert.throws(() => Fallback.unsafeMemoryCache({ capacity: 1.5 }))
    }))
})

// -----------------------------------------------------------------------------
// Critical and optional
// -----------------------------------------------------------------------------

describe("Fallback.optional and Fallback.critical", () => {
  it.effect("an optional dependency degrades on any failure and never fails the caller", () =>
    Effect.gen(function*() {
      const malformed = Effect.fail(new Unclassified({ detail: "unexpected JSON" }))
      const answer = yield* malformed.pipe(Fallback.optional({ operation: "optional-any", default: ["popular"] }))
      assert.deepStrictEqual(
        answer,
        Fallback.defaulted({ value: ["popular"], cause: new Unclassified({ detail: "unexpected JSON" }) })
      )
      const terminal = yield* Effect.fail(invalid()).pipe(Fallback.optional({ operation: "optional-any", default: 0 }))
      assert.strictEqual(terminal._tag, "Default")
      // A defect is still a defect.
      const exit = yield* Effect.die("bug").pipe(
        Fallback.optional({ operation: "optional-any", default: 0 }),
        Effect.exit
      )
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
    }))

  it.effect("a critical dependency fails with DependencyUnavailableError naming it once its chain is exhausted", () =>
    Effect.gen(function*() {
      const outage = down("connection refused")
      const error = yield* Effect.fail(outage).pipe(Fallback.critical({ operation: "product-db" }), Effect.flip)
      assert.isTrue(Fallback.isDependencyUnavailableError(error))
      if (Fallback.isDependencyUnavailableError(error)) {
        assert.strictEqual(error.dependency, "product-db")
        assert.strictEqual(error.cause, outage)
        assert.strictEqual(error.message, `Dependency "product-db" is unavailable: connection refused`)
        assert.isTrue(Failure.isTransient(error))
      }
      // A terminal failure is not an outage: it propagates as it is.
      const rejected = invalid()
      assert.strictEqual(
        yield* Effect.fail(rejected).pipe(Fallback.critical({ operation: "product-db" }), Effect.flip),
        rejected
      )
      // Its chain may still answer from a replica.
      const replica = yield* Effect.fail(outage).pipe(
        Fallback.critical({ operation: "product-db", secondary: Effect.succeed({ name: "Chair" }) })
      )
      assert.strictEqual(replica._tag, "Secondary")
    }))

  it.effect("Fallback.all runs dependencies concurrently; optional ones degrade", () =>
    Effect.gen(function*() {
      const product = Effect.as(Effect.sleep("1 second"), { name: "Chair" })
      const recommendations = Effect.zipRight(Effect.sleep("1 second"), Effect.fail(down()))
      const fiber = yield* Effect.fork(Fallback.all({
        product: Fallback.critical(product, { operation: "all-product" }),
        recommendations: Fallback.optional(recommendations, { operation: "all-recommendations", default: ["popular"] })
      }))
      // Both run at once: one second is enough for the two.
      yield* TestClock.adjust("1 second")
      const page = yield* Fiber.join(fiber)
      assert.deepStrictEqual(page.product, Fallback.primary({ name: "Chair" }))
      assert.strictEqual(page.recommendations._tag, "Default")
      assert.deepStrictEqual(Fallback.degraded(page), ["recommendations"])
    }))

  it.effect("Fallback.all fails on a critical failure and interrupts the other dependencies", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const slowRecommendations = Effect.sleep("1 minute").pipe(
        Effect.as(["later"]),
        Effect.onInterrupt(() => Ref.set(interrupted, true))
      )
      const fiber = yield* Effect.fork(
        Fallback.all({
          product: Fallback.critical(Effect.zipRight(Effect.sleep("1 second"), Effect.fail(down())), {
            operation: "all-product-down"
          }),
          recommendations: Fallback.optional(slowRecommendations, { operation: "all-slow", default: [] })
        })
      )
      yield* TestClock.adjust("1 second")
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "DependencyUnavailableError")
      assert.isTrue(yield* Ref.get(interrupted))
    }))
})

// -----------------------------------------------------------------------------
// Tracing
// -----------------------------------------------------------------------------

describe("Fallback tracing", () => {
  it.effect("with Tracing.layer, each call is a span naming the operation and the source that answered", () => {
    const exporter = new InMemorySpanExporter()
    return Effect.gen(function*() {
      yield* Effect.fail(down()).pipe(Fallback.chain({ operation: "traced-op", default: 0 }))
      yield* Effect.succeed(1).pipe(Fallback.chain({ operation: "traced-op", default: 0 }))
      const spans = exporter.getFinishedSpans().filter((span) => span.name === "bulwark.fallback traced-op")
      assert.deepStrictEqual(spans.map((span) => span.attributes["bulwark.fallback.source"]), ["default", "primary"])
      assert.deepStrictEqual(spans.map((span) => span.attributes["bulwark.fallback.operation"]), [
        "traced-op",
        "traced-op"
      ])
    }).pipe(Effect.provide(Tracing.layer({ serviceName: "fallback-test", exporter, processor: "simple" })))
  })

  it.effect("without it, no span is made: the primary runs in the caller's span", () =>
    Effect.gen(function*() {
      const seen = yield* Effect.currentSpan.pipe(
        Fallback.chain({ operation: "untraced-op" }),
        Effect.withSpan("caller")
      )
      assert.strictEqual(seen.value.name, "caller")
    }))
})

// -----------------------------------------------------------------------------
// Answers and types
// -----------------------------------------------------------------------------

describe("Fallback answers", () => {
  it("match, value, source and the guards agree with the tag", () => {
    const cause = down()
    const answers: ReadonlyArray<Fallback.Answer<number, Failure.TransientError>> = [
      Fallback.primary(1),
      Fallback.cached({ value: 2, storedAt: DateTime.unsafeMake(0), age: Duration.seconds(5), cause }),
      Fallback.secondary({ value: 3, cause }),
      Fallback.defaulted({ value: 4, cause })
    ]
    const matched = answers.map(Fallback.match({
      onPrimary: (answer) => `primary ${answer.value}`,
      onCached: (answer) => `cache ${answer.value} ${Duration.toSeconds(answer.age)}s`,
      onSecondary: (answer) => `secondary ${answer.value}`,
      onDefault: (answer) => `default ${answer.value}`
    }))
    assert.deepStrictEqual(matched, ["primary 1", "cache 2 5s", "secondary 3", "default 4"])
    assert.deepStrictEqual(answers.map(Fallback.value), [1, 2, 3, 4])
    assert.deepStrictEqual(answers.map(Fallback.source), ["primary", "cache", "secondary", "default"])
    assert.deepStrictEqual(answers.map((a) => a.stale), [false, true, false, false])
    assert.deepStrictEqual(answers.map(Fallback.isDegraded), [false, true, true, true])
    assert.deepStrictEqual(answers.map(Fallback.isDefault), [false, false, false, true])
    assert.deepStrictEqual(answers.map(Fallback.isSecondary), [false, false, true, false])
    assert.deepStrictEqual(answers.map(Fallback.isPrimary), [true, false, false, false])
    assert.deepStrictEqual(answers.map(Fallback.cause), [Option.none(), ...[1, 2, 3].map(() => Option.some(cause))])
  })

  it("the types say which source answered and what can fail", () => {
    const outage: Effect.Effect<number, Failure.TransientError | Failure.TerminalError> = Effect.fail(down())
    const chained = outage.pipe(Fallback.chain({ operation: "types", default: "none" }))
    expectTypeOf(chained).toEqualTypeOf<
      Effect.Effect<
        Fallback.Answer<number | string, Failure.TransientError | Failure.TerminalError>,
        Failure.TransientError | Failure.TerminalError
      >
    >()
    const optional = Fallback.optional(outage, { operation: "types", default: 0 })
    expectTypeOf(optional).toEqualTypeOf<
      Effect.Effect<Fallback.Answer<number, Failure.TransientError | Failure.TerminalError>, never>
    >()
    const critical = outage.pipe(Fallback.critical({ operation: "types" }))
    expectTypeOf<Effect.Effect.Error<typeof critical>>().toEqualTypeOf<
      | Failure.TransientError
      | Failure.TerminalError
      | Fallback.DependencyUnavailableError<Failure.TransientError | Failure.TerminalError>
    >()
    const answer = Effect.runSync(Effect.either(chained))
    if (answer._tag === "Right" && answer.right._tag === "Cached") {
      expectTypeOf(answer.right.stale).toEqualTypeOf<true>()
      expectTypeOf(answer.right.cause).toEqualTypeOf<Failure.TransientError | Failure.TerminalError>()
    }
    type Failed = Failure.TransientError | Failure.TerminalError
    expectTypeOf(Fallback.all({ product: critical, recommendations: optional })).toEqualTypeOf<
      Effect.Effect<
        { product: Fallback.Answer<number, Failed>; recommendations: Fallback.Answer<number, Failed> },
        Failed | Fallback.DependencyUnavailableError<Failed>
      >
    >()
  })
})

// -----------------------------------------------------------------------------
// Model: every combination of sources
// -----------------------------------------------------------------------------

type Outcome = "ok" | "down" | "terminal"

const sources = ["primary", "cache", "secondary", "default"] as const

interface Scenario {
  readonly primary: Outcome
  readonly cache: "absent" | "empty" | "fresh" | "too-old" | "broken"
  readonly secondary: "absent" | Outcome
  readonly withDefault: boolean
}

/** What the chain must do, from a plain reading of the documented order. */
const expected = (s: Scenario): { readonly tried: ReadonlyArray<string>; readonly result: string } => {
  if (s.primary === "ok") return { tried: ["primary"], result: "primary" }
  if (s.primary === "terminal") return { tried: ["primary"], result: "fail:primary" }
  if (s.cache === "fresh") return { tried: ["primary"], result: "cache" }
  if (s.secondary === "ok") return { tried: ["primary", "secondary"], result: "secondary" }
  if (s.secondary === "terminal") return { tried: ["primary", "secondary"], result: "fail:secondary" }
  const tried = s.secondary === "absent" ? ["primary"] : ["primary", "secondary"]
  const last = s.secondary === "absent" ? "primary" : "secondary"
  return s.withDefault ? { tried: [...tried, "default"], result: "default" } : { tried, result: `fail:${last}` }
}

const outcome = (name: string, o: Outcome): Effect.Effect<string, Failure.TransientError | Failure.TerminalError> =>
  o === "ok" ? Effect.succeed(name) : Effect.fail(o === "down" ? down(name) : invalid(name))

const runScenario = (s: Scenario, operation: string) =>
  Effect.gen(function*() {
    const log = yield* Ref.make<ReadonlyArray<string>>([])
    const now = yield* Clock.currentTimeMillis
    const entry = (storedAt: number) => Effect.succeed(Option.some({ value: "cache", storedAt }))
    const store: Fallback.Cache<string> = {
      get: () => {
        switch (s.cache) {
          case "fresh":
            return entry(now - 1_000)
          case "too-old":
            return entry(now - 2 * 3_600_000)
          case "broken":
            return Effect.fail("broken")
          default:
            return Effect.succeedNone
        }
      },
      set: () => Effect.void
    }
    const before = yield* countsOf(operation)
    const exit = yield* source(log, "primary", outcome("primary", s.primary)).pipe(
      Fallback.chain({
        operation,
        ...(s.cache === "absent" ? {} : { cache: { store, maxAge: "1 hour" } }),
        ...(s.secondary === "absent" ? {} : { secondary: source(log, "secondary", outcome("secondary", s.secondary)) }),
        ...(s.withDefault ? { default: source(log, "default", Effect.succeed("default")) } : {})
      }),
      Effect.exit
    )
    const after = yield* countsOf(operation)
    const result = Exit.match(exit, {
      onSuccess: (answer) => answer.source === "cache" ? "cache" : String(answer.value),
      onFailure: (cause) =>
        Option.match(Cause.failureOption(cause), { onNone: () => "defect", onSome: (e) => `fail:${e.message}` })
    })
    const counted = sources.filter((key) => after[key] !== before[key])
    return { tried: yield* Ref.get(log), result, counted }
  })

describe("Fallback model", () => {
  const outcomes: ReadonlyArray<Outcome> = ["ok", "down", "terminal"]
  const scenarios: ReadonlyArray<Scenario> = outcomes.flatMap((primary) =>
    (["absent", "empty", "fresh", "too-old", "broken"] as const).flatMap((cache) =>
      (["absent", ...outcomes] as const).flatMap((secondary) =>
        [true, false].map((withDefault) => ({ primary, cache, secondary, withDefault }))
      )
    )
  )

  // The space is small (120 combinations), so every one is checked rather than a random sample.
  it.effect("every combination of sources answers from the first that can, counting that source once", () =>
    Effect.gen(function*() {
      assert.strictEqual(scenarios.length, 120)
      for (const scenario of scenarios) {
        const run = yield* runScenario(scenario, "model")
        const want = expected(scenario)
        const label = JSON.stringify(scenario)
        assert.deepStrictEqual(run.tried, want.tried, label)
        assert.strictEqual(run.result, want.result, label)
        assert.deepStrictEqual(run.counted, want.result.startsWith("fail:") ? [] : [want.result], label)
      }
    }).pipe(
      // The "broken" cache logs a warning on every run.
      Logger.withMinimumLogLevel(LogLevel.Error)
    ))
})
