import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import type * as CircuitBreaker from "../circuit-breaker/CircuitBreaker.js"
import * as Failure from "../Failure.js"
import * as Fallback from "../fallback/Fallback.js"
import * as IdempotencyStore from "../idempotency/IdempotencyStore.js"
import * as Region from "../internal/region.js"
import * as Metrics from "../Metrics.js"
import type * as Timeout from "../timeout/Timeout.js"
import * as Pipeline from "./Pipeline.js"

/** Runs `effect` to its end, moving the TestClock to each sleep in turn. */
const runToEnd = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
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
const notFound = new Failure.TerminalError({ reason: "HttpStatus", message: "404", status: 404 })

/** An operation that fails with `unavailable` `failures` times, then answers "ok"; counts its runs. */
const flaky = (failures: number) =>
  Effect.map(Ref.make(0), (runs) => ({
    runs,
    call: Effect.flatMap(
      Ref.updateAndGet(runs, (n) => n + 1),
      (n): Effect.Effect<string, Failure.TransientError> =>
        n <= failures ? Effect.fail(unavailable) : Effect.succeed("ok")
    )
  }))

const breakerCalls = (breaker: string, outcome: CircuitBreaker.Outcome) =>
  Effect.map(
    Metric.value(
      Metrics.circuitBreakerCalls.pipe(Metric.tagged("breaker", breaker), Metric.tagged("outcome", outcome))
    ),
    (state) => state.count
  )

const get = <A>(option: Option.Option<A>): Effect.Effect<A> =>
  Option.match(option, { onNone: () => Effect.dieMessage("the layer is off"), onSome: Effect.succeed })

const environment = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries), { pathDelim: "_" }))

const expectInvalid = <A, E, R>(effect: Effect.Effect<A, E | Pipeline.InvalidPipelineConfigError, R>) =>
  Effect.flatMap(Effect.flip(effect), (error) =>
    error instanceof Pipeline.InvalidPipelineConfigError
      ? Effect.succeed(error)
      : Effect.dieMessage(`expected InvalidPipelineConfigError, got ${String(error)}`))

describe("Pipeline order", () => {
  it.effect("the breaker sees one outcome per call, however many attempts it took, and an open breaker stops the call before its retries", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "order-breaker-retry",
        circuitBreaker: { failureThreshold: 2, openDuration: "1 minute" },
        retry: { maxAttempts: 3, backoff: "constant", base: "100 millis", jitter: "none" }
      })
      const operation = yield* flaky(Infinity)
      const call = operation.call.pipe(Pipeline.run(pipeline))

      const first = yield* Effect.flip(yield* runToEnd(call))
      assert.strictEqual(first._tag, "RetriesExhausted")
      assert.strictEqual(yield* Ref.get(operation.runs), 3)
      const breaker = yield* get(pipeline.circuitBreaker)
      // three failed attempts are one failed call: the threshold of two is not reached
      assert.strictEqual(yield* breaker.state, "Closed")
      assert.strictEqual(yield* breakerCalls("order-breaker-retry", "failure"), 1)

      yield* Effect.flip(yield* runToEnd(call))
      assert.strictEqual(yield* breaker.state, "Open")
      assert.strictEqual(yield* Ref.get(operation.runs), 6)

      // refused before the retry loop: no attempt, no backoff, the breaker's own error
      const refused = yield* Effect.flip(call)
      assert.strictEqual(refused._tag, "CircuitOpenError")
      assert.strictEqual(yield* Ref.get(operation.runs), 6)
      assert.isTrue(Chunk.isEmpty(yield* TestClock.sleeps()))
    }))

  it.effect("the timeout limits each attempt, and a timed-out attempt is retried", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "order-retry-timeout",
        retry: { maxAttempts: 3, backoff: "constant", base: "100 millis", jitter: "none" },
        timeout: { limit: "1 second" }
      })
      const runs = yield* Ref.make(0)
      const slowOnce = Effect.flatMap(
        Ref.updateAndGet(runs, (n) => n + 1),
        (n) => n === 1 ? Effect.never : Effect.succeed("ok")
      )
      const exit = yield* runToEnd(slowOnce.pipe(Pipeline.run(pipeline)))
      assert.deepStrictEqual(exit, Exit.succeed("ok"))
      assert.strictEqual(yield* Ref.get(runs), 2)
      // one timed-out attempt (1 s) and one backoff (100 ms): the limit applied to the attempt, not to the call
      assert.strictEqual(yield* TestClock.currentTimeMillis, 1_100)
    }))

  it.effect("a rate-limited call never reaches the breaker: refused by the limiter even while the breaker is open", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "order-limit-breaker",
        rateLimit: { limit: 1, window: "1 minute" },
        circuitBreaker: { failureThreshold: 1 }
      })
      const operation = yield* flaky(Infinity)
      const call = operation.call.pipe(Pipeline.run(pipeline, { rateLimit: { key: "tenant-1" } }))
      assert.strictEqual((yield* Effect.flip(call))._tag, "TransientError")
      assert.strictEqual(yield* (yield* get(pipeline.circuitBreaker)).state, "Open")

      const limited = yield* Effect.flip(call)
      assert.strictEqual(limited._tag, "RateLimitedError")
      assert.strictEqual(yield* breakerCalls("order-limit-breaker", "rejected"), 0)
      assert.strictEqual(yield* Ref.get(operation.runs), 1)

      // another key has its own quota, and then meets the open breaker
      const other = operation.call.pipe(Pipeline.run(pipeline, { rateLimit: { key: "tenant-2" } }))
      assert.strictEqual((yield* Effect.flip(other))._tag, "CircuitOpenError")
      assert.strictEqual(yield* breakerCalls("order-limit-breaker", "rejected"), 1)
    }))

  it.effect("a repeat of an idempotent call is replayed from the store, without touching the breaker or the operation", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({ name: "order-idempotency", circuitBreaker: {} })
      const operation = yield* flaky(0)
      const charge = (key: string) =>
        operation.call.pipe(
          Pipeline.run(pipeline, { idempotency: { key, fingerprint: "amount=100", success: Schema.String } })
        )
      assert.strictEqual(yield* charge("order-1"), "ok")
      assert.strictEqual(yield* breakerCalls("order-idempotency", "success"), 1)

      const breaker = yield* get(pipeline.circuitBreaker)
      yield* breaker.isolate
      assert.strictEqual(yield* charge("order-1"), "ok")
      assert.strictEqual(yield* Ref.get(operation.runs), 1)
      assert.strictEqual(yield* breakerCalls("order-idempotency", "success"), 1)
      assert.strictEqual(yield* breakerCalls("order-idempotency", "rejected"), 0)

      // a new key goes through the breaker, which refuses it
      assert.strictEqual((yield* Effect.flip(charge("order-2")))._tag, "CircuitOpenError")
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("an idempotent call stores what its failure schema accepts and is terminal, and releases the key on anything else", () =>
    Effect.gen(function*() {
      class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { reason: Schema.String }) {
        readonly [Failure.TerminalTypeId]: typeof Failure.TerminalTypeId = Failure.TerminalTypeId
      }
      const pipeline = yield* Pipeline.make({
        name: "order-idempotency-failures",
        retry: { maxAttempts: 2, backoff: "constant", base: "10 millis", jitter: "none" }
      })
      const outcomes = yield* Ref.make<ReadonlyArray<"declined" | "unavailable" | "ok">>(["unavailable", "unavailable"])
      const runs = yield* Ref.make(0)
      const charge = Effect.gen(function*() {
        yield* Ref.update(runs, (n) => n + 1)
        const [next = "ok", ...rest] = yield* Ref.get(outcomes)
        yield* Ref.set(outcomes, rest)
        if (next === "declined") return yield* Effect.fail(new CardDeclined({ reason: "insufficient funds" }))
        if (next === "unavailable") return yield* Effect.fail(unavailable)
        return "charged"
      })
      const call = (key: string) =>
        charge.pipe(
          Pipeline.run(pipeline, {
            idempotency: { key, fingerprint: "f", success: Schema.String, failure: CardDeclined }
          })
        )

      // gave up after two transient failures: the key is released, so the client's retry runs again
      const exhausted = yield* Effect.flip(yield* runToEnd(call("k-1")))
      assert.strictEqual(exhausted._tag, "RetriesExhausted")
      assert.strictEqual(yield* runToEnd(call("k-1")).pipe(Effect.flatten), "charged")
      assert.strictEqual(yield* Ref.get(runs), 3)

      // a declined card is terminal and accepted by the schema: stored, and replayed without running again
      yield* Ref.set(outcomes, ["declined"])
      const declined = yield* Effect.flip(call("k-2"))
      assert.strictEqual(declined._tag, "CardDeclined")
      const replayed = yield* Effect.flip(call("k-2"))
      assert.strictEqual(replayed._tag, "CardDeclined")
      assert.strictEqual(yield* Ref.get(runs), 4)
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("the bulkhead sits inside the breaker: a full bulkhead never trips it, and an open breaker refuses first", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "order-breaker-bulkhead",
        circuitBreaker: { failureThreshold: 1 },
        bulkhead: { maxConcurrent: 1 },
        retry: { maxAttempts: 3, backoff: "constant", base: "1 second", jitter: "none" }
      })
      // the first call fails once and waits in its backoff, holding the one permit: a call keeps its permit while it retries
      const operation = yield* flaky(1)
      const holder = yield* Effect.fork(operation.call.pipe(Pipeline.run(pipeline)))
      yield* Effect.yieldNow()
      assert.strictEqual(yield* Ref.get(operation.runs), 1)
      const full = yield* Effect.flip(Effect.succeed("x").pipe(Pipeline.run(pipeline)))
      assert.strictEqual(full._tag, "BulkheadFullError")
      const breaker = yield* get(pipeline.circuitBreaker)
      assert.strictEqual(yield* breaker.state, "Closed")

      yield* breaker.isolate
      const refused = yield* Effect.flip(Effect.succeed("x").pipe(Pipeline.run(pipeline)))
      assert.strictEqual(refused._tag, "CircuitOpenError")

      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Fiber.join(holder), "ok")
    }))

  it.effect("a fallback around the pipeline answers its typed failures and lets terminal ones through", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({ name: "order-fallback", circuitBreaker: { failureThreshold: 1 } })
      const withDefault = <E>(operation: Effect.Effect<string, E>) =>
        operation.pipe(
          Pipeline.run(pipeline),
          Fallback.chain({ operation: "order-fallback", default: "cached quote" })
        )
      // a terminal failure is a bug or a bad input, not an outage: no default hides it (and the breaker ignores it)
      const terminal = yield* Effect.flip(withDefault(Effect.fail(notFound)))
      assert.strictEqual(terminal._tag, "TerminalError")
      const failed = yield* withDefault(Effect.fail(unavailable))
      assert.strictEqual(failed.source, "default")
      // that failure opened the breaker: its refusal is answered too
      const refused = yield* withDefault(Effect.succeed("fresh"))
      assert.strictEqual(refused._tag, "Default")
      if (refused._tag === "Default") assert.strictEqual(refused.cause._tag, "CircuitOpenError")
    }))

  it.effect("a section that is absent leaves its layer off", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({ name: "order-nothing" })
      assert.isTrue(Option.isNone(pipeline.circuitBreaker))
      assert.isTrue(Option.isNone(pipeline.bulkhead))
      assert.isTrue(Option.isNone(pipeline.retry))
      assert.isTrue(Option.isNone(pipeline.timeout))
      assert.isTrue(Option.isNone(pipeline.rateLimiter))
      // no retry: the transient failure comes back as it was, after one run
      const operation = yield* flaky(1)
      assert.strictEqual(yield* Effect.flip(operation.call.pipe(Pipeline.run(pipeline))), unavailable)
      // no timeout: an hour-long call ends normally
      const slow = Effect.as(Effect.sleep("1 hour"), "late")
      assert.deepStrictEqual(yield* runToEnd(slow.pipe(Pipeline.run(pipeline))), Exit.succeed("late"))
    }))

  it.effect("the breaker and the bulkhead of a pipeline run as one protected region, as when stacked by hand", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "order-region",
        circuitBreaker: {},
        bulkhead: { maxConcurrent: 4 },
        retry: {},
        timeout: { limit: "1 second" }
      })
      const call = Effect.succeed(1).pipe(Pipeline.run(pipeline))
      assert.isDefined(Region.fusable(call))
      assert.strictEqual(yield* call, 1)
    }))

  it.effect("the error type follows the layers: a retry removes transient errors from it", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({ name: "order-types", retry: {}, timeout: { limit: "1 second" } })
      const operation: Effect.Effect<string, Failure.TransientError | Failure.TerminalError> = Effect.succeed("ok")
      const retried: Effect.Effect<
        string,
        Failure.TerminalError | Failure.RetriesExhausted<Failure.TransientError | Timeout.TimeoutError>
      > = operation.pipe(Pipeline.run(pipeline))
      // @ts-expect-error: no transient error is left after the retry
      const leftover: Effect.Effect<string, Failure.TransientError> = operation.pipe(Pipeline.run(pipeline))
      const fromEnvironment = yield* Pipeline.make(yield* Pipeline.fromConfig({ name: "order-types-2" }))
      // @ts-expect-error: a configuration read at run time may have no retry: the transient error may be left
      const unknownLayers: Effect.Effect<string, Failure.TerminalError | Failure.RetriesExhausted> = operation.pipe(
        Pipeline.run(fromEnvironment)
      )
      assert.strictEqual(yield* retried, "ok")
      assert.strictEqual(yield* Effect.either(leftover).pipe(Effect.map((either) => either._tag)), "Right")
      assert.strictEqual(yield* Effect.either(unknownLayers).pipe(Effect.map((either) => either._tag)), "Right")
    }))
})

describe("Pipeline configuration", () => {
  it.effect("decodes a configuration written in code, durations as strings or milliseconds, defaults filled in", () =>
    Effect.gen(function*() {
      const config = yield* Pipeline.fromConfig({
        name: "payments",
        circuitBreaker: { failureThreshold: 3, openDuration: "10 seconds" },
        bulkhead: { maxConcurrent: 8, maxWait: 250 },
        retry: { maxElapsed: "1.5 seconds" },
        timeout: { limit: "250 millis" }
      })
      assert.strictEqual(config.circuitBreaker?.failureThreshold, 3)
      assert.isTrue(Duration.equals(config.circuitBreaker?.openDuration ?? Duration.zero, Duration.seconds(10)))
      assert.strictEqual(config.circuitBreaker?.halfOpen.permits, 3)
      assert.strictEqual(config.bulkhead?.maxQueued, 0)
      assert.isTrue(Duration.equals(config.bulkhead?.maxWait ?? Duration.zero, Duration.millis(250)))
      assert.strictEqual(config.retry?.maxAttempts, 4)
      assert.strictEqual(config.retry?.jitter, "full")
      assert.isTrue(Duration.equals(config.retry?.base ?? Duration.zero, Duration.millis(100)))
      assert.isTrue(Duration.equals(config.retry?.maxElapsed ?? Duration.zero, Duration.millis(1500)))
      assert.isTrue(Duration.equals(config.timeout?.limit ?? Duration.zero, Duration.millis(250)))
      assert.isUndefined(config.rateLimit)
      assert.isUndefined(config.idempotency)
      // a decoded configuration is a valid input again
      assert.deepStrictEqual(yield* Pipeline.fromConfig(config), config)
    }))

  it.effect("names every invalid field written in code, and rejects unknown ones", () =>
    Effect.gen(function*() {
      const error = yield* expectInvalid(Pipeline.fromConfig({
        name: "payments",
        circuitBreaker: { failureThreshold: -1, failureTreshold: 5, halfOpen: { permits: 2, closeAfter: 3 } },
        retry: { base: "1 second", cap: "500 millis" },
        timeout: { limit: "soon" },
        rateLimit: { algorithm: "fixedWindow", limit: 10, window: "1 second", burst: 20 }
      }))
      const byPath = new Map(error.issues.map((issue) => [issue.path, issue.message]))
      assert.strictEqual(byPath.get("circuitBreaker.failureThreshold"), "expected a positive integer, got -1")
      assert.match(byPath.get("circuitBreaker.failureTreshold") ?? "", /^is not a setting/)
      assert.strictEqual(
        byPath.get("circuitBreaker.halfOpen.closeAfter"),
        "expected at most halfOpen.permits (2), got 3"
      )
      assert.strictEqual(byPath.get("retry.cap"), "expected at least retry.base (1s), got 500ms")
      assert.match(byPath.get("timeout.limit") ?? "", /^expected a positive duration .*, got "soon"$/)
      assert.match(byPath.get("rateLimit.burst") ?? "", /tokenBucket/)
      assert.include(error.message, "circuitBreaker.failureThreshold: expected a positive integer, got -1")
      assert.isTrue(Failure.isTerminal(error))
      // a section's own rules run once its fields are valid
      const jitter = yield* expectInvalid(Pipeline.fromConfig({ name: "payments", retry: { jitter: "fast" } }))
      assert.deepStrictEqual(jitter.issues, [
        { path: "retry.jitter", message: `expected one of "full", "equal", "decorrelated", "none", got "fast"` }
      ])
      const missing = yield* expectInvalid(Pipeline.fromConfig({ name: "bad name!", bulkhead: { maxQueued: 1 } }))
      assert.deepStrictEqual(missing.issues.map((issue) => issue.path), ["name", "bulkhead.maxConcurrent"])
      assert.strictEqual(missing.issues[1]?.message, "is required")
    }))

  it.effect("an invalid value a constructor refuses names the field too", () =>
    Effect.gen(function*() {
      // the limiter cannot count 10^9 calls per hour exactly
      const error = yield* expectInvalid(Pipeline.make({
        name: "quota",
        rateLimit: { limit: 1_000_000_000, window: "1 hour" }
      }))
      assert.strictEqual(error.issues[0]?.path, "rateLimit.limit")
      assert.include(error.message, `in pipeline "quota"`)
    }))

  it.effect("reads the environment through Config: one variable per field, a section on when any of its variables is set", () =>
    Effect.gen(function*() {
      const config = yield* Pipeline.config("payments").pipe(environment([
        ["PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "3"],
        ["PAYMENTS_CIRCUIT_BREAKER_HALF_OPEN_PERMITS", "5"],
        ["PAYMENTS_CIRCUIT_BREAKER_FAILURE_RATE_WINDOW_DURATION", "1 minute"],
        ["PAYMENTS_RETRY_MAX_ATTEMPTS", "5"],
        ["PAYMENTS_RETRY_RESPECT_RETRY_AFTER", "false"],
        ["PAYMENTS_RETRY_BASE", "250"],
        ["PAYMENTS_TIMEOUT_LIMIT", "2 seconds"],
        ["INVENTORY_BULKHEAD_MAX_CONCURRENT", "4"]
      ]))
      assert.strictEqual(config.name, "payments")
      assert.strictEqual(config.circuitBreaker?.failureThreshold, 3)
      assert.strictEqual(config.circuitBreaker?.halfOpen.permits, 5)
      assert.isTrue(
        Duration.equals(config.circuitBreaker?.failureRate?.windowDuration ?? Duration.zero, Duration.minutes(1))
      )
      assert.strictEqual(config.retry?.maxAttempts, 5)
      assert.strictEqual(config.retry?.respectRetryAfter, false)
      assert.isTrue(Duration.equals(config.retry?.base ?? Duration.zero, Duration.millis(250)))
      assert.isTrue(Duration.equals(config.timeout?.limit ?? Duration.zero, Duration.seconds(2)))
      assert.isUndefined(config.bulkhead)
      assert.isUndefined(config.rateLimit)

      const unnamed = yield* Pipeline.config().pipe(
        environment([["NAME", "inventory"], ["BULKHEAD_MAX_CONCURRENT", "4"]])
      )
      assert.strictEqual(unnamed.name, "inventory")
      assert.strictEqual(unnamed.bulkhead?.maxConcurrent, 4)
    }))

  it.effect("names the field and the variable of an invalid environment", () =>
    Effect.gen(function*() {
      const error = yield* expectInvalid(
        Pipeline.config("payments").pipe(environment([
          ["PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD", "-1"],
          ["PAYMENTS_RETRY_MAX_ATTEMPTS", "many"],
          ["PAYMENTS_BULKHEAD_MAX_QUEUED", "2"]
        ]))
      )
      assert.deepStrictEqual(error.issues, [
        {
          path: "circuitBreaker.failureThreshold",
          message: "expected a positive integer, got -1",
          variable: "PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD"
        },
        { path: "bulkhead.maxConcurrent", message: "is required", variable: "PAYMENTS_BULKHEAD_MAX_CONCURRENT" },
        {
          path: "retry.maxAttempts",
          message: `expected a positive integer, got "many"`,
          variable: "PAYMENTS_RETRY_MAX_ATTEMPTS"
        }
      ])
      assert.include(
        error.message,
        "in the environment: circuitBreaker.failureThreshold (PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD): expected a positive integer, got -1"
      )
    }))

  it.scoped("reads JSON and YAML files, and names the file and the field when one is invalid", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped()
      const json = `${directory}/payments.json`
      yield* fs.writeFileString(
        json,
        JSON.stringify({ name: "payments", circuitBreaker: { openDuration: "20 seconds" }, timeout: { limit: 1500 } })
      )
      const fromJson = yield* Pipeline.fromFile(json)
      assert.isTrue(Duration.equals(fromJson.circuitBreaker?.openDuration ?? Duration.zero, Duration.seconds(20)))
      assert.isTrue(Duration.equals(fromJson.timeout?.limit ?? Duration.zero, Duration.millis(1500)))

      const yaml = `${directory}/payments.yaml`
      yield* fs.writeFileString(
        yaml,
        [
          "name: payments",
          "rateLimit:",
          "  limit: 100",
          "  window: 1 second",
          "circuitBreaker:",
          "  failureThreshold: 5",
          "  halfOpen: { permits: 2 }",
          "retry:",
          "  maxAttempts: 3",
          "  cap: 2 seconds",
          "  respectRetryAfter: true",
          "timeout: { limit: 2 seconds }",
          ""
        ].join("\n")
      )
      const fromYaml = yield* Pipeline.fromFile(yaml)
      assert.strictEqual(fromYaml.rateLimit?.limit, 100)
      assert.strictEqual(fromYaml.circuitBreaker?.halfOpen.permits, 2)
      assert.strictEqual(fromYaml.retry?.maxAttempts, 3)
      assert.isTrue(Duration.equals(fromYaml.timeout?.limit ?? Duration.zero, Duration.seconds(2)))
      assert.strictEqual((yield* Pipeline.make(fromYaml)).name, "payments")

      const badJson = `${directory}/bad.json`
      yield* fs.writeFileString(badJson, JSON.stringify({ name: "payments", bulkhead: { maxConcurrent: 0 } }))
      const jsonError = yield* expectInvalid(Pipeline.fromFile(badJson))
      assert.strictEqual(jsonError.source, badJson)
      assert.deepStrictEqual(jsonError.issues, [
        { path: "bulkhead.maxConcurrent", message: "expected a positive integer, got 0" }
      ])

      const badYaml = `${directory}/bad.yml`
      yield* fs.writeFileString(badYaml, "name: payments\nretry:\n  maxAttempts: -3\n  backoff: quadratic\n")
      const yamlError = yield* expectInvalid(Pipeline.fromFile(badYaml))
      assert.deepStrictEqual(yamlError.issues.map((issue) => issue.path), ["retry.maxAttempts", "retry.backoff"])
      assert.include(yamlError.message, `in ${badYaml}: retry.maxAttempts: expected a positive integer, got -3`)

      const broken = `${directory}/broken.yaml`
      yield* fs.writeFileString(broken, "name: payments\nretry: [1,\n  maxAttempts: 3\n")
      const syntax = yield* expectInvalid(Pipeline.fromFile(broken))
      assert.match(syntax.issues[0]?.message ?? "", /^is not valid YAML: /)

      const toml = yield* expectInvalid(Pipeline.fromFile(`${directory}/payments.toml`))
      assert.strictEqual(toml.issues[0]?.message, "expected a .json, .yaml or .yml file")
    }).pipe(Effect.provide(NodeFileSystem.layer)))

  it.effect("a layer provides the pipeline under a tag, and invalid configuration fails the layer", () =>
    Effect.gen(function*() {
      class Payments extends Context.Tag("test/Payments")<Payments, Pipeline.Pipeline>() {}
      const fromCode = Pipeline.layer(Payments, { name: "layer-code", retry: { maxAttempts: 2 } })
      const name = yield* Effect.map(Payments, (payments) => payments.name).pipe(Effect.provide(fromCode))
      assert.strictEqual(name, "layer-code")

      const fromEnvironment = Pipeline.layerConfig(Payments, "layer-env").pipe(
        Layer.provide(Layer.setConfigProvider(
          ConfigProvider.fromMap(new Map([["LAYER_ENV_TIMEOUT_LIMIT", "3 seconds"]]), { pathDelim: "_" })
        ))
      )
      const timeout = yield* Effect.flatMap(Payments, (payments) => get(payments.timeout)).pipe(
        Effect.provide(fromEnvironment)
      )
      assert.isTrue(Duration.equals(timeout.limit, Duration.seconds(3)))

      const invalid = Pipeline.layer(Payments, { name: "layer-bad", timeout: { limit: 0 } })
      const error = yield* expectInvalid(Effect.provide(Payments, invalid))
      assert.strictEqual(error.issues[0]?.path, "timeout.limit")
    }))

  it.effect("an interrupted call gives its bulkhead permit back and the others finish", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "order-permits",
        circuitBreaker: {},
        bulkhead: { maxConcurrent: 2 }
      })
      const gate = yield* Deferred.make<void>()
      const running = yield* Effect.forEach(
        [1, 2],
        () => Effect.fork(Deferred.await(gate).pipe(Effect.as("done"), Pipeline.run(pipeline))),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      const bulkhead = yield* get(pipeline.bulkhead)
      assert.strictEqual((yield* bulkhead.snapshot).active, 2)
      yield* Fiber.interrupt(running[0] ?? (yield* Effect.dieMessage("no fiber")))
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual(yield* Fiber.join(running[1] ?? (yield* Effect.dieMessage("no fiber"))), "done")
      assert.strictEqual((yield* bulkhead.snapshot).active, 0)
    }))
})

describe("Pipeline timeout on uninterruptible work", () => {
  it.effect("passes onUninterruptible through from code and the environment; wait when unset", () =>
    Effect.gen(function*() {
      const abandoning = yield* Pipeline.make({
        name: "flush",
        timeout: { limit: "50 millis", onUninterruptible: "abandon" }
      })
      assert.strictEqual(Option.getOrThrow(abandoning.timeout).onUninterruptible, "abandon")
      const waiting = yield* Pipeline.make({ name: "flush-wait", timeout: { limit: "50 millis" } })
      assert.strictEqual(Option.getOrThrow(waiting.timeout).onUninterruptible, "wait")

      const fromEnvironment = yield* Pipeline.config("payments").pipe(environment([
        ["PAYMENTS_TIMEOUT_LIMIT", "2 seconds"],
        ["PAYMENTS_TIMEOUT_ON_UNINTERRUPTIBLE", "abandon"]
      ]))
      assert.strictEqual(fromEnvironment.timeout?.onUninterruptible, "abandon")
      const invalid = yield* expectInvalid(Pipeline.fromConfig({
        name: "payments",
        timeout: { limit: "1 second", onUninterruptible: "later" }
      }))
      assert.deepStrictEqual(invalid.issues, [
        { path: "timeout.onUninterruptible", message: `expected one of "wait", "abandon", got "later"` }
      ])
    }))

  it.effect("an abandoning pipeline answers at the limit and retries while the abandoned attempt finishes", () =>
    Effect.gen(function*() {
      const pipeline = yield* Pipeline.make({
        name: "flush-retried",
        retry: { maxAttempts: 2, backoff: "constant", base: "10 millis", jitter: "none" },
        timeout: { limit: "50 millis", onUninterruptible: "abandon" }
      })
      const attempts = yield* Ref.make(0)
      const answer = yield* Deferred.make<number>()
      const op = Ref.update(attempts, (n) => n + 1).pipe(
        Effect.zipRight(Effect.uninterruptible(Effect.sleep("300 millis")))
      )
      const caller = yield* Effect.fork(
        op.pipe(
          Pipeline.run(pipeline),
          Effect.exit,
          Effect.zipRight(Effect.flatMap(Clock.currentTimeMillis, (at) => Deferred.succeed(answer, at)))
        )
      )
      yield* TestClock.adjust("50 millis")
      assert.strictEqual(yield* Ref.get(attempts), 1)
      yield* TestClock.adjust("10 millis")
      assert.strictEqual(yield* Ref.get(attempts), 2)
      yield* TestClock.adjust("50 millis")
      assert.strictEqual(yield* Deferred.await(answer), 110)
      yield* TestClock.adjust("300 millis")
      yield* Fiber.join(caller)
      const abandoned = yield* Metric.value(
        Metric.tagged(Metric.tagged(Metrics.timeoutAbandoned, "operation", "flush-retried"), "result", "interrupted")
      )
      assert.strictEqual(abandoned.count, 2)
    }))
})
