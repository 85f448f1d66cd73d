import { assert, describe, it } from "@effect/vitest"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as Failure from "../Failure.js"
import * as Bulkhead from "./Bulkhead.js"

/** The environment's shape: `PAYMENTS_MAX_CONCURRENT`. */
const environment = (entries: Record<string, string>) =>
  ConfigProvider.fromMap(new Map(Object.entries(entries)), { pathDelim: "_" })

/** Builds the layer under a provider, and hands back its registry or its error. */
const build = (
  layer: Layer.Layer<Bulkhead.Registry, Failure.InvalidOptionsError | ConfigError.ConfigError>,
  provider: ConfigProvider.ConfigProvider
) => Effect.either(Effect.provide(Bulkhead.Registry, layer).pipe(Effect.withConfigProvider(provider)))

const invalidOptions = <A>(result: Either.Either<A, Failure.InvalidOptionsError | ConfigError.ConfigError>) => {
  assert(Either.isLeft(result), "expected the layer to fail")
  const error = result.left
  assert(!ConfigError.isConfigError(error) && error._tag === "InvalidOptionsError", `got ${error._tag}`)
  assert.isTrue(Failure.isTerminal(error))
  return error
}

const fullReason = (result: Either.Either<unknown, unknown>): Bulkhead.FullReason | undefined =>
  Either.isLeft(result) && Bulkhead.isBulkheadFullError(result.left) ? result.left.reason : undefined

describe("Bulkhead from Config", () => {
  describe("config", () => {
    it.effect("reads each option from a variable after the name in CONSTANT_CASE", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig({ paymentsApi: Bulkhead.config("paymentsApi") }),
          environment({
            PAYMENTS_API_MAX_CONCURRENT: "4",
            PAYMENTS_API_MAX_QUEUED: "10",
            PAYMENTS_API_MAX_WAIT: "2 seconds"
          })
        )
        assert(Either.isRight(result))
        const bulkhead = yield* result.right.get("paymentsApi")
        assert.strictEqual(bulkhead.name, "paymentsApi")
        assert.strictEqual(bulkhead.limits.maxConcurrent, 4)
        assert.strictEqual(bulkhead.limits.maxQueued, 10)
        assert.isTrue(Duration.equals(bulkhead.limits.maxWait, Duration.seconds(2)))
      }))

    it.effect("gives a bulkhead that enforces the configured limits", () =>
      Effect.gen(function*() {
        const provider = environment({
          PAYMENTS_MAX_CONCURRENT: "1",
          PAYMENTS_MAX_QUEUED: "1",
          PAYMENTS_MAX_WAIT: "500"
        })
        const Bulkheads = Bulkhead.layerConfig({ payments: Bulkhead.config("payments") })
        yield* Effect.gen(function*() {
          const registry = yield* Bulkhead.Registry
          const bulkhead = yield* registry.get("payments")
          const gate = yield* Deferred.make<void>()
          const holder = yield* Effect.fork(Deferred.await(gate).pipe(Bulkhead.protectNamed("payments")))
          const waiter = yield* Effect.fork(
            Effect.either(Effect.succeed("late").pipe(Bulkhead.protectNamed("payments")))
          )
          for (let i = 0; i < 100 && (yield* bulkhead.snapshot).queued < 1; i++) yield* Effect.yieldNow()
          assert.deepInclude(yield* bulkhead.snapshot, { active: 1, queued: 1, available: 0 })
          // The queue holds one call: the next is refused at once.
          const refused = yield* Effect.either(Effect.succeed("x").pipe(Bulkhead.protectNamed("payments")))
          assert.strictEqual(fullReason(refused), "QueueFull")
          // The queued call waits 500 ms ("500" is milliseconds), then gives up.
          yield* TestClock.adjust("499 millis")
          assert.strictEqual((yield* bulkhead.snapshot).queued, 1)
          yield* TestClock.adjust("1 millis")
          assert.strictEqual(fullReason(yield* Fiber.join(waiter)), "MaxWait")
          yield* Deferred.succeed(gate, undefined)
          yield* Fiber.join(holder)
          assert.strictEqual(yield* Effect.succeed("ok").pipe(Bulkhead.protectNamed("payments")), "ok")
        }).pipe(Effect.provide(Bulkheads), Effect.withConfigProvider(provider))
      }))

    it.effect("applies the defaults for missing variables: no queue, an unbounded wait, and the given defaults", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig({
            payments: Bulkhead.config("payments"),
            inventory: Bulkhead.config("inventory", { maxConcurrent: 8, maxQueued: 4, maxWait: "1 second" }),
            search: Bulkhead.config("search", { maxConcurrent: 8, maxQueued: 4 })
          }),
          environment({ PAYMENTS_MAX_CONCURRENT: "3", SEARCH_MAX_CONCURRENT: "2", SEARCH_MAX_WAIT: "Infinity" })
        )
        assert(Either.isRight(result))
        const [payments, inventory, search] = result.right.all
        assert.deepInclude(payments?.limits, { maxConcurrent: 3, maxQueued: 0 })
        assert.isFalse(Duration.isFinite(payments?.limits.maxWait ?? Duration.zero))
        assert.deepInclude(inventory?.limits, { maxConcurrent: 8, maxQueued: 4 })
        assert.isTrue(Duration.equals(inventory?.limits.maxWait ?? Duration.zero, Duration.seconds(1)))
        // A variable overrides its default; the other defaults stay.
        assert.deepInclude(search?.limits, { maxConcurrent: 2, maxQueued: 4 })
        assert.isFalse(Duration.isFinite(search?.limits.maxWait ?? Duration.zero))
      }))

    it.effect("accepts an unbounded queue", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig({ payments: Bulkhead.config("payments") }),
          environment({ PAYMENTS_MAX_CONCURRENT: " 2 ", PAYMENTS_MAX_QUEUED: "infinity" })
        )
        assert(Either.isRight(result))
        const bulkhead = yield* result.right.get("payments")
        assert.deepInclude(bulkhead.limits, { maxConcurrent: 2, maxQueued: Infinity })
      }))

    it.effect("reads nested objects from ConfigProvider.fromJson, numbers included", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig({ payments: Bulkhead.config("payments") }),
          ConfigProvider.fromJson({ PAYMENTS: { MAX_CONCURRENT: 6, MAX_QUEUED: 2, MAX_WAIT: "3 seconds" } })
        )
        assert(Either.isRight(result))
        const bulkhead = yield* result.right.get("payments")
        assert.deepInclude(bulkhead.limits, { maxConcurrent: 6, maxQueued: 2 })
        assert.isTrue(Duration.equals(bulkhead.limits.maxWait, Duration.seconds(3)))
      }))

    it.effect("fails with a ConfigError naming the variable when maxConcurrent is missing and has no default", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig({ payments: Bulkhead.config("payments") }),
          environment({ PAYMENTS_MAX_QUEUED: "3" })
        )
        assert(Either.isLeft(result) && ConfigError.isConfigError(result.left) && result.left._op === "MissingData")
        assert.deepStrictEqual(result.left.path, ["PAYMENTS", "MAX_CONCURRENT"])
        assert.include(result.left.message, "PAYMENTS_MAX_CONCURRENT")
      }))

    const invalid: ReadonlyArray<readonly [option: string, variable: string, text: string, expected: string]> = [
      ["maxConcurrent", "MAX_CONCURRENT", "0", "an integer ≥ 1"],
      ["maxConcurrent", "MAX_CONCURRENT", "-2", "an integer ≥ 1"],
      ["maxConcurrent", "MAX_CONCURRENT", "1.5", "an integer ≥ 1"],
      ["maxConcurrent", "MAX_CONCURRENT", "Infinity", "an integer ≥ 1"],
      ["maxConcurrent", "MAX_CONCURRENT", "eight", "an integer ≥ 1"],
      ["maxConcurrent", "MAX_CONCURRENT", "", "an integer ≥ 1"],
      ["maxQueued", "MAX_QUEUED", "-1", "an integer ≥ 0 (or Infinity)"],
      ["maxQueued", "MAX_QUEUED", "0.5", "an integer ≥ 0 (or Infinity)"],
      ["maxQueued", "MAX_QUEUED", "lots", "an integer ≥ 0 (or Infinity)"],
      ["maxWait", "MAX_WAIT", "-1", "a non-negative duration"],
      ["maxWait", "MAX_WAIT", "-1 seconds", "a non-negative duration"],
      ["maxWait", "MAX_WAIT", "2 fortnights", "a non-negative duration"],
      ["maxWait", "MAX_WAIT", "soon", "a non-negative duration"]
    ]
    for (const [option, variable, text, expected] of invalid) {
      it.effect(`rejects ${variable}=${JSON.stringify(text)} naming the option and the variable`, () =>
        Effect.gen(function*() {
          const values: Record<string, string> = { PAYMENTS_MAX_CONCURRENT: "2", [`PAYMENTS_${variable}`]: text }
          const error = invalidOptions(
            yield* build(
              Bulkhead.layerConfig({
                inventory: { maxConcurrent: Config.succeed(1) },
                payments: Bulkhead.config("payments")
              }),
              environment(values)
            )
          )
          assert.strictEqual(error.option, option)
          assert.strictEqual(error.component, `Bulkhead "payments" (config PAYMENTS_${variable})`)
          assert.strictEqual(error.value, text)
          assert.strictEqual(error.expected, expected)
          assert.strictEqual(
            error.message,
            `Bulkhead "payments" (config PAYMENTS_${variable}): option "${option}" must be ${expected} (got ${
              JSON.stringify(text)
            })`
          )
        }))
    }

    it.effect("names the option, not a variable, when a bad value is a default given in code", () =>
      Effect.gen(function*() {
        const error = invalidOptions(
          yield* build(
            Bulkhead.layerConfig({ payments: Bulkhead.config("payments", { maxConcurrent: 0 }) }),
            environment({})
          )
        )
        assert.strictEqual(error.component, `Bulkhead "payments"`)
        assert.strictEqual(error.option, "maxConcurrent")
        assert.strictEqual(error.value, 0)
      }))
  })

  describe("layerConfig", () => {
    it.effect("reads any field as a Config, as CircuitBreaker.layerConfig does", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig({
            payments: {
              maxConcurrent: Config.integer("PERMITS"),
              maxQueued: Config.withDefault(Config.integer("QUEUE"), 5),
              maxWait: Config.duration("WAIT")
            },
            inventory: Config.succeed({ maxConcurrent: 2 })
          }),
          ConfigProvider.fromMap(new Map([["PERMITS", "3"], ["WAIT", "250 millis"]]))
        )
        assert(Either.isRight(result))
        const payments = yield* result.right.get("payments")
        assert.deepInclude(payments.limits, { maxConcurrent: 3, maxQueued: 5 })
        assert.isTrue(Duration.equals(payments.limits.maxWait, Duration.millis(250)))
        assert.deepStrictEqual(result.right.all.map((bulkhead) => bulkhead.name), ["payments", "inventory"])
      }))

    it.effect("fails with a ConfigError for missing or malformed configuration", () =>
      Effect.gen(function*() {
        const provider = ConfigProvider.fromMap(new Map([["PERMITS", "many"]]))
        const missing = yield* build(
          Bulkhead.layerConfig({ payments: { maxConcurrent: Config.integer("ABSENT") } }),
          provider
        )
        assert(Either.isLeft(missing) && ConfigError.isConfigError(missing.left))
        const malformed = yield* build(
          Bulkhead.layerConfig({ payments: { maxConcurrent: Config.integer("PERMITS") } }),
          provider
        )
        assert(Either.isLeft(malformed) && ConfigError.isConfigError(malformed.left))
      }))

    it.effect("fails with InvalidOptionsError naming the bulkhead and the option of an invalid value", () =>
      Effect.gen(function*() {
        const error = invalidOptions(
          yield* build(
            Bulkhead.layerConfig({ payments: { maxConcurrent: Config.integer("PERMITS") } }),
            ConfigProvider.fromMap(new Map([["PERMITS", "0"]]))
          )
        )
        assert.strictEqual(error.component, `Bulkhead "payments"`)
        assert.strictEqual(error.option, "maxConcurrent")
        assert.strictEqual(error.value, 0)
      }))

    it.effect("rejects a key that is not a valid bulkhead name", () =>
      Effect.gen(function*() {
        const error = invalidOptions(
          yield* build(
            Bulkhead.layerConfig({ "not valid": Bulkhead.config("notValid", { maxConcurrent: 1 }) }),
            environment({})
          )
        )
        assert.strictEqual(error.option, "name")
      }))

    it.effect("takes the whole configuration as one Config", () =>
      Effect.gen(function*() {
        const result = yield* build(
          Bulkhead.layerConfig(
            Config.map(Config.integer("PERMITS"), (maxConcurrent) => ({ payments: { maxConcurrent } }))
          ),
          ConfigProvider.fromMap(new Map([["PERMITS", "7"]]))
        )
        assert(Either.isRight(result))
        assert.strictEqual((yield* result.right.get("payments")).limits.maxConcurrent, 7)
      }))
  })
})
