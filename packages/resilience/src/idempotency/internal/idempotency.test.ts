import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { InvalidOptionsError } from "../../Failure.js"
import type * as Idempotency from "../Idempotency.js"
import * as IdempotencyStore from "../IdempotencyStore.js"
import { run, runPrepared } from "./idempotency.js"
import { keyHash, prepare } from "./runOptions.js"

const base: Idempotency.Options<string, string, never, never> = {
  scope: "POST /payments",
  key: "key-1",
  fingerprint: "fp",
  success: Schema.String,
  failure: Schema.Never
}

/** Each case's options differ from `base` in one or more invalid (or valid) values. */
const cases: ReadonlyArray<Partial<Idempotency.Options<string, string, never, never>>> = [
  {},
  { lease: "1 second", ttl: "1 hour", waitForInFlight: 0, maxStoredBytes: 10, storeFailures: "all" },
  { key: "" },
  { key: "", lease: 0 },
  { scope: "", key: "", fingerprint: "" },
  { partition: "tab\there", lease: -1 },
  { fingerprint: "", maxStoredBytes: 0 },
  { lease: "5 millis", ttl: 0 },
  { ttl: 0, maxStoredBytes: 1.5 },
  { waitForInFlight: -5, maxStoredBytes: 0 },
  { maxStoredBytes: 1e12 }
]

const failure = (effect: Effect.Effect<unknown, unknown, IdempotencyStore.IdempotencyStore>) =>
  Effect.map(Effect.either(effect), (either) => {
    if (either._tag === "Right") return { ok: either.right }
    const error = either.left
    return error instanceof InvalidOptionsError
      ? { option: error.option, value: error.value, expected: error.expected, message: error.message }
      : { other: error }
  })

describe("Idempotency.run with prepared options", () => {
  for (const [index, override] of cases.entries()) {
    it.effect(`answers as run does, with the same first invalid option (case ${index + 1})`, () =>
      Effect.gen(function*() {
        const options = { ...base, ...override, key: `${override.key ?? base.key}` }
        const unprepared = yield* failure(run(options)(() => Effect.succeed("ran")))
        const prepared = yield* failure(
          runPrepared(
            prepare(options),
            { ...options, key: options.key === "" ? "" : `${options.key}-2` },
            () => Effect.succeed("ran")
          )
        )
        assert.deepStrictEqual(prepared, unprepared)
      }).pipe(Effect.provide(IdempotencyStore.layerMemory)))
  }

  it.effect("replays what it stored, and names the key by its hash in errors", () =>
    Effect.gen(function*() {
      const prepared = prepare({ lease: "1 second" })
      const first = yield* runPrepared(prepared, base, () => Effect.succeed("charged"))
      const again = yield* runPrepared(prepared, base, () => Effect.succeed("charged twice"))
      assert.deepStrictEqual([first._tag, first.value], ["Executed", "charged"])
      assert.deepStrictEqual([again._tag, again.value], ["Replayed", "charged"])
      const mismatch = yield* Effect.flip(
        runPrepared(prepared, { ...base, fingerprint: "other" }, () => Effect.succeed("other"))
      )
      assert.strictEqual(mismatch._tag, "IdempotencyMismatchError")
      if (mismatch._tag === "IdempotencyMismatchError") assert.strictEqual(mismatch.keyHash, keyHash(base.key))
    }).pipe(Effect.provide(IdempotencyStore.layerMemory)))
})
