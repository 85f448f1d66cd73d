import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import { InvalidOptionsError } from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as Idempotency from "./Idempotency.js"
import * as IdempotencyStore from "./IdempotencyStore.js"

const base = {
  scope: "POST /payments",
  key: "key-1",
  fingerprint: "fp",
  success: Schema.String,
  failure: Schema.Never
} as const

const count = (scope: string, result: Idempotency.MetricResult) =>
  Metric.value(Metrics.idempotencyRequests.pipe(Metric.tagged("scope", scope), Metric.tagged("result", result))).pipe(
    Effect.map((state) => state.count)
  )

describe("Idempotency", () => {
  describe("bad input fails with InvalidOptionsError, before anything is claimed or run", () => {
    const cases: ReadonlyArray<readonly [string, Partial<Idempotency.Options<string, string, never, never>>]> = [
      ["key", { key: "" }],
      ["key", { key: "k".repeat(256) }],
      ["key", { key: "line\nbreak" }],
      ["key", { key: "nul\u0000" }],
      ["scope", { scope: "" }],
      ["scope", { scope: "s".repeat(129) }],
      ["scope", { scope: " POST /payments" }],
      ["scope", { scope: "POST /payments\t" }],
      ["scope", { scope: "POST /paiements/é" }],
      ["partition", { partition: "p".repeat(256) }],
      ["partition", { partition: "tab\there" }],
      ["fingerprint", { fingerprint: "" }],
      ["fingerprint", { fingerprint: "f".repeat(513) }],
      ["lease", { lease: 0 }],
      ["lease", { lease: -1 }],
      ["lease", { lease: "5 millis" }],
      ["lease", { lease: Number.NaN }],
      ["ttl", { ttl: 0 }],
      ["ttl", { ttl: "-1 hours" }],
      ["ttl", { ttl: Infinity }],
      ["waitForInFlight", { waitForInFlight: -5 }],
      ["maxStoredBytes", { maxStoredBytes: 0 }],
      ["maxStoredBytes", { maxStoredBytes: 1.5 }],
      ["maxStoredBytes", { maxStoredBytes: 1e12 }]
    ]
    for (const [index, [option, override]] of cases.entries()) {
      it.effect(`${option} (case ${index + 1}: ${JSON.stringify(override)})`, () =>
        Effect.gen(function*() {
          const ran = yield* Ref.make(false)
          const error = yield* Effect.flip(
            Idempotency.run({ ...base, ...override })(() => Effect.as(Ref.set(ran, true), "ran"))
          )
          assert.instanceOf(error, InvalidOptionsError)
          if (!(error instanceof InvalidOptionsError)) return
          assert.strictEqual(error.component, "Idempotency")
          assert.strictEqual(error.option, option)
          assert.isFalse(yield* Ref.get(ran))
          const store = yield* IdempotencyStore.IdempotencyStore
          const key = typeof override.key === "string" ? override.key : base.key
          const scope = typeof override.scope === "string" ? override.scope : base.scope
          assert.isTrue(Option.isNone(yield* store.lookup({ scope, partition: override.partition ?? "", key })))
        }).pipe(Effect.provide(IdempotencyStore.layerMemory)))
    }

    it.effect("cleanup options are checked too", () =>
      Effect.gen(function*() {
        assert.instanceOf(yield* Effect.flip(IdempotencyStore.cleanup({ batchSize: 0 })), InvalidOptionsError)
        assert.instanceOf(yield* Effect.flip(IdempotencyStore.cleanup({ maxBatches: 0.5 })), InvalidOptionsError)
        assert.instanceOf(
          yield* Effect.flip(Effect.scoped(IdempotencyStore.startCleanup({ interval: 0 }))),
          InvalidOptionsError
        )
      }).pipe(Effect.provide(IdempotencyStore.layerMemory)))
  })

  it("isValidKey accepts 1 to 255 characters without control characters", () => {
    assert.isTrue(Idempotency.isValidKey("8e03978e-40d5-43e8-bc93-6894a57f9324"))
    assert.isTrue(Idempotency.isValidKey("k".repeat(255)))
    assert.isTrue(Idempotency.isValidKey("clé avec espaces"))
    assert.isFalse(Idempotency.isValidKey(""))
    assert.isFalse(Idempotency.isValidKey("k".repeat(256)))
    assert.isFalse(Idempotency.isValidKey("a\rb"))
    assert.isFalse(Idempotency.isValidKey("a\u007fb"))
  })

  it("keyHash is a short, stable hash that does not reveal the key", () => {
    const hash = Idempotency.keyHash("secret-key")
    assert.match(hash, /^[0-9a-f]{12}$/)
    assert.strictEqual(Idempotency.keyHash("secret-key"), hash)
    assert.notStrictEqual(Idempotency.keyHash("secret-key2"), hash)
  })

  it.effect("recordRequest counts the HTTP layer's results", () =>
    Effect.gen(function*() {
      const before = yield* count("GET /recorded", "missing_key")
      yield* Idempotency.recordRequest("GET /recorded", "missing_key")
      yield* Idempotency.recordRequest("GET /recorded", "missing_key")
      yield* Idempotency.recordRequest("GET /recorded", "invalid_key")
      assert.strictEqual((yield* count("GET /recorded", "missing_key")) - before, 2)
      assert.isAtLeast(yield* count("GET /recorded", "invalid_key"), 1)
    }))

  it.effect("a void success is stored and replayed", () =>
    Effect.gen(function*() {
      const options = { ...base, success: Schema.Void }
      const first = yield* Idempotency.run(options)(() => Effect.void)
      const second = yield* Idempotency.run(options)(() => Effect.die("must not run"))
      assert.deepStrictEqual(second, { _tag: "Replayed", value: undefined, attempt: 1 })
      assert.strictEqual(first._tag, "Executed")
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("a result with no JSON form is a defect, completed so that it never runs twice", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const options = { ...base, success: Schema.Number }
      const handler = () => Effect.as(Ref.update(calls, (n) => n + 1), Infinity)
      const first = yield* Effect.exit(Idempotency.run(options)(handler))
      const second = yield* Effect.exit(Idempotency.run(options)(handler))
      for (const exit of [first, second]) {
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        if (Exit.isFailure(exit)) assert.include(Cause.pretty(exit.cause), "Infinity has no JSON form")
      }
      assert.strictEqual(yield* Ref.get(calls), 1)
      const store = yield* IdempotencyStore.IdempotencyStore
      const record = Option.getOrThrow(yield* store.lookup({ scope: base.scope, partition: "", key: base.key }))
      assert.deepStrictEqual(Option.map(record.result, (r) => r.outcome), Option.some("unencodable"))
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("a success whose encoding fails the schema is a defect too, and never runs twice", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      // The schema only encodes non-empty strings; the handler's type allows "".
      const options = { ...base, success: Schema.String.pipe(Schema.minLength(1)) }
      const handler = () => Effect.as(Ref.update(calls, (n) => n + 1), "")
      assert.isTrue(Exit.isFailure(yield* Effect.exit(Idempotency.run(options)(handler))))
      assert.isTrue(Exit.isFailure(yield* Effect.exit(Idempotency.run(options)(handler))))
      assert.strictEqual(yield* Ref.get(calls), 1)
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("a throwing shouldStore is a defect that gives the claim back", () =>
    Effect.gen(function*() {
      const shouldStore = () => {
        throw new Error("bad predicate")
      }
      const first = yield* Effect.exit(Idempotency.run({ ...base, shouldStore })(() => Effect.succeed("one")))
      assert.isTrue(Exit.isFailure(first) && Cause.isDie(first.cause))
      const second = yield* Idempotency.run(base)((execution) => Effect.succeed(`attempt ${execution.attempt}`))
      assert.deepStrictEqual(second, { _tag: "Executed", value: "attempt 2", attempt: 2 })
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("partitions keep tenants apart: the same key in two partitions runs twice", () =>
    Effect.gen(function*() {
      const a = yield* Idempotency.run({ ...base, partition: "tenant-a" })(() => Effect.succeed("a"))
      const b = yield* Idempotency.run({ ...base, partition: "tenant-b" })(() => Effect.succeed("b"))
      assert.strictEqual(a.value, "a")
      assert.strictEqual(b.value, "b")
      assert.strictEqual(b._tag, "Executed")
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))

  it.effect("the handler is told the scope, partition, key and attempt", () =>
    Effect.gen(function*() {
      const seen = yield* Idempotency.run({ ...base, partition: "t", success: Schema.Unknown })((execution) =>
        Effect.succeed({ ...execution })
      )
      assert.deepStrictEqual(seen.value, {
        scope: "POST /payments",
        partition: "t",
        key: "key-1",
        attempt: 1,
        recovery: false
      })
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))
})
