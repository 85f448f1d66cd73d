import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import * as Failure from "../Failure.js"
import * as Bulkhead from "./Bulkhead.js"
import * as TBulkhead from "./TBulkhead.js"

let names = 0
const uniqueName = (label: string) => `test.options.${label}.${++names}`

type Registries = Bulkhead.Registry | TBulkhead.Registry

/**
 * What both bulkheads are built from and fail with, one suite run for each
 * variant: options, `BulkheadFullError`, registries. Each variant's `layer`
 * comes with the other variant's registry, empty, so that one test body types
 * for both, and a variant that looked its names up in the other's registry
 * would not find them.
 */
interface Variant {
  readonly label: string
  /** Whether it builds STM bulkheads. */
  readonly stm: boolean
  readonly make: (
    options: Bulkhead.Bulkhead.Options
  ) => Effect.Effect<Bulkhead.Bulkhead, Failure.InvalidOptionsError, Scope.Scope>
  readonly Registry: Effect.Effect<Bulkhead.Registry.Service, never, Registries>
  readonly layer: (config: Bulkhead.Registry.Config) => Layer.Layer<Registries, Failure.InvalidOptionsError>
  readonly protectNamed: {
    (name: string): <A, E, R>(
      self: Effect.Effect<A, E, R>
    ) => Effect.Effect<A, E | Bulkhead.BulkheadFullError | Bulkhead.BulkheadNotFoundError, R | Registries>
    <A, E, R>(
      self: Effect.Effect<A, E, R>,
      name: string
    ): Effect.Effect<A, E | Bulkhead.BulkheadFullError | Bulkhead.BulkheadNotFoundError, R | Registries>
  }
}

const variants: ReadonlyArray<Variant> = [
  {
    label: "Bulkhead",
    stm: false,
    make: Bulkhead.make,
    Registry: Bulkhead.Registry,
    layer: (config) => Layer.merge(Bulkhead.layer(config), TBulkhead.layer({})),
    protectNamed: Bulkhead.protectNamed
  },
  {
    label: "TBulkhead",
    stm: true,
    make: TBulkhead.make,
    Registry: TBulkhead.Registry,
    layer: (config) => Layer.merge(TBulkhead.layer(config), Bulkhead.layer({})),
    protectNamed: TBulkhead.protectNamed
  }
]

describe.each(variants.map((variant) => [variant.label, variant] as const))("%s", (_label, variant) => {
  describe("options", () => {
    it.scoped("default to no queue and an unbounded wait", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({ name: uniqueName("defaults"), maxConcurrent: 3 })
        assert.strictEqual(bulkhead.limits.maxConcurrent, 3)
        assert.strictEqual(bulkhead.limits.maxQueued, 0)
        assert.isFalse(Duration.isFinite(bulkhead.limits.maxWait))
      }))

    const invalid: ReadonlyArray<readonly [string, Partial<Bulkhead.Bulkhead.Options>]> = [
      ["maxConcurrent", { maxConcurrent: 0 }],
      ["maxConcurrent", { maxConcurrent: -1 }],
      ["maxConcurrent", { maxConcurrent: 1.5 }],
      ["maxConcurrent", { maxConcurrent: Number.NaN }],
      ["maxConcurrent", { maxConcurrent: Infinity }],
      ["maxQueued", { maxQueued: -1 }],
      ["maxQueued", { maxQueued: Number.NaN }],
      ["maxQueued", { maxQueued: 0.5 }],
      ["maxWait", { maxWait: -1 }],
      ["maxWait", { maxWait: Number.NaN }],
      ["maxWait", { maxWait: "-1 seconds" }],
      ["name", { name: "" }],
      ["name", { name: "has spaces" }],
      ["name", { name: "x".repeat(129) }]
    ]
    for (const [option, override] of invalid) {
      it.scoped(`reject ${option} = ${String(Object.values(override)[0])} with an error naming the option`, () =>
        Effect.gen(function*() {
          const error = yield* Effect.flip(variant.make({ name: "bad-options", maxConcurrent: 1, ...override }))
          assert.strictEqual(error._tag, "InvalidOptionsError")
          assert.strictEqual(error.option, option)
          assert.isTrue(Failure.isTerminal(error))
          if (option !== "name") assert.strictEqual(error.component, `Bulkhead "bad-options"`)
        }))
    }

    it.scoped("accept an unbounded queue and an explicit infinite wait", () =>
      Effect.gen(function*() {
        const bulkhead = yield* variant.make({
          name: uniqueName("unbounded"),
          maxConcurrent: 1,
          maxQueued: Infinity,
          maxWait: Duration.infinity
        })
        assert.strictEqual(bulkhead.limits.maxQueued, Infinity)
      }))
  })

  describe("BulkheadFullError", () => {
    it.scoped("is a transient rejection carrying the name, the reason and the limits", () =>
      Effect.gen(function*() {
        const name = uniqueName("error")
        const bulkhead = yield* variant.make({ name, maxConcurrent: 1, maxQueued: 0, maxWait: "2 seconds" })
        // Refused while the outer call holds the only permit.
        const error = yield* Bulkhead.protect(Effect.flip(Bulkhead.protect(Effect.void, bulkhead)), bulkhead)

        assert.strictEqual(error._tag, "BulkheadFullError")
        assert.strictEqual(error.bulkhead, name)
        assert.strictEqual(error.reason, "QueueFull")
        assert.strictEqual(error.maxConcurrent, 1)
        assert.strictEqual(error.maxQueued, 0)
        assert.isTrue(Duration.equals(error.maxWait, Duration.seconds(2)))
        assert.isTrue(Failure.isTransient(error))
        assert.isTrue(Failure.isRejection(error))
        assert.isFalse(Failure.isTerminal(error))
        assert.strictEqual(
          error.message,
          `Bulkhead "${name}" is full: every permit is in use and it does not queue (1 permit, no queue)`
        )
      }))
  })

  describe("Registry", () => {
    const payments = uniqueName("payments")
    const inventory = uniqueName("inventory")
    const Bulkheads = variant.layer({
      [payments]: { maxConcurrent: 2, maxQueued: 4, maxWait: "2 seconds" },
      [inventory]: { maxConcurrent: 8 }
    })

    it.effect("builds one bulkhead per entry, named by its key, in configuration order", () =>
      Effect.gen(function*() {
        const registry = yield* variant.Registry
        const bulkhead = yield* registry.get(payments)
        assert.strictEqual(TBulkhead.isTBulkhead(bulkhead), variant.stm)
        assert.strictEqual(bulkhead.name, payments)
        assert.strictEqual(bulkhead.limits.maxConcurrent, 2)
        assert.strictEqual(bulkhead.limits.maxQueued, 4)
        assert.isTrue(Duration.equals(bulkhead.limits.maxWait, Duration.seconds(2)))
        assert.deepStrictEqual(registry.all.map((b) => b.name), [payments, inventory])
        assert.strictEqual(yield* registry.get(payments), bulkhead)
      }).pipe(Effect.provide(Bulkheads)))

    it.effect("fails with BulkheadNotFoundError listing the known names for an unknown name", () =>
      Effect.gen(function*() {
        const registry = yield* variant.Registry
        const error = yield* Effect.flip(registry.get("nope"))
        assert.strictEqual(error._tag, "BulkheadNotFoundError")
        assert.deepStrictEqual(error.known, [payments, inventory])
        assert.isTrue(Failure.isTerminal(error))
        assert.strictEqual(
          error.message,
          `No bulkhead named "nope" in the registry (known: "${payments}", "${inventory}")`
        )
      }).pipe(Effect.provide(Bulkheads)))

    it.effect("lists every bulkhead with its snapshot", () =>
      Effect.gen(function*() {
        const registry = yield* variant.Registry
        // Read while this call holds a permit of payments.
        const snapshots = yield* registry.snapshots.pipe(variant.protectNamed(payments))
        assert.deepStrictEqual(
          snapshots.map(({ active, available, maxConcurrent, name, queued }) => ({
            name,
            active,
            queued,
            available,
            maxConcurrent
          })),
          [
            { name: payments, active: 1, queued: 0, available: 1, maxConcurrent: 2 },
            { name: inventory, active: 0, queued: 0, available: 8, maxConcurrent: 8 }
          ]
        )
      }).pipe(Effect.provide(Bulkheads)))

    it.effect("protects a call by bulkhead name, and fails for an unknown name", () =>
      Effect.gen(function*() {
        assert.strictEqual(yield* Effect.succeed("ok").pipe(variant.protectNamed(inventory)), "ok")
        const error = yield* Effect.flip(variant.protectNamed(Effect.succeed("ok"), "nope"))
        assert.strictEqual(error._tag, "BulkheadNotFoundError")
      }).pipe(Effect.provide(Bulkheads)))

    it.effect("fails to build with an error naming the bulkhead and the option of an invalid entry", () =>
      Effect.gen(function*() {
        const layer = variant.layer({ good: { maxConcurrent: 1 }, broken: { maxConcurrent: 1, maxQueued: -3 } })
        const error = yield* Effect.flip(Effect.scoped(Layer.build(layer)))
        assert.strictEqual(error._tag, "InvalidOptionsError")
        assert.strictEqual(error.component, `Bulkhead "broken"`)
        assert.strictEqual(error.option, "maxQueued")
        assert.strictEqual(error.value, -3)
      }))

    it.effect("rejects an entry whose key is not a valid name", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Effect.scoped(Layer.build(variant.layer({ "not valid": { maxConcurrent: 1 } })))
        )
        assert.strictEqual(error.option, "name")
      }))
  })
})

describe("BulkheadFullError", () => {
  it("explains a MaxWait rejection with the wait", () => {
    const error = new Bulkhead.BulkheadFullError({
      bulkhead: "payments",
      reason: "MaxWait",
      maxConcurrent: 8,
      maxQueued: 16,
      maxWait: Duration.millis(1500)
    })
    assert.strictEqual(
      error.message,
      `Bulkhead "payments" is full: no permit came free within 1s 500ms of waiting (8 permits, a queue of 16)`
    )
  })
})
