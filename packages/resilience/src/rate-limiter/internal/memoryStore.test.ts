import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as TestClock from "effect/TestClock"
import { setFlagsFromString } from "node:v8"
import { runInNewContext } from "node:vm"
import * as RateLimiter from "../RateLimiter.js"
import type { Spec } from "./algorithms.js"
import { validate } from "./config.js"
import * as MemoryStore from "./memoryStore.js"

const isCallable = (u: unknown): u is () => void => typeof u === "function"

/** A real collection before each heap reading (V8 lets a running process expose `gc`). */
const collect = (): () => void => {
  setFlagsFromString("--expose-gc")
  const exposed: unknown = runInNewContext("gc")
  if (!isCallable(exposed)) throw new Error("could not expose gc")
  const gc: () => void = exposed
  return () => {
    gc()
    gc()
  }
}

const heapAfterGc = (gc: () => void) => {
  gc()
  return process.memoryUsage().heapUsed
}

const MB = 1024 * 1024

describe("memory store", () => {
  it("sweeps idle keys: a million distinct keys over time leave only the live ones", () => {
    const spec: Spec = { _tag: "SlidingWindowCounter", limit: 10, window: 100 }
    const table = MemoryStore.makeTable(spec, 1_000_000)
    let now = 0
    let largest = 0
    for (let i = 0; i < 1_000_000; i++) {
      if (i % 100 === 0) now++
      table.decide(`user-${i}`, now, 1, 0)
      if (table.size > largest) largest = table.size
    }
    // A key lives two windows (200 ms) and 100 new keys arrive per millisecond: ~20,000 are live at any time.
    assert.isAtMost(largest, 21_000)
    assert.strictEqual(table.evictedLive, 0)
    assert.strictEqual(table.expired + table.size, 1_000_000)
  })

  it("holds at most maxKeys and keeps the heap flat when a million live keys arrive at once", () => {
    const gc = collect()
    const spec: Spec = { _tag: "TokenBucket", limit: 10, window: 3_600_000, burst: 10 }
    const table = MemoryStore.makeTable(spec, 10_000)
    // Fill the table first, so that the measurement sees steady state only.
    for (let i = 0; i < 10_000; i++) table.decide(`warm-${i}`, 0, 1, 0)
    const before = heapAfterGc(gc)
    for (let i = 0; i < 1_000_000; i++) {
      table.decide(`user-${i}`, i >> 10, 1, 0)
      if (table.size > 10_000) assert.fail(`size ${table.size} above the bound`)
    }
    const after = heapAfterGc(gc)
    assert.strictEqual(table.size, 10_000)
    assert.strictEqual(table.evictedLive, 1_000_000)
    // An unbounded map of a million keys would hold well over 100 MB here.
    assert.isAtMost((after - before) / MB, 8, `heap grew ${((after - before) / MB).toFixed(1)} MB`)
  })

  it("evicts the least recently used key first, so a busy key keeps its state", () => {
    const spec: Spec = { _tag: "FixedWindow", limit: 2, window: 60_000 }
    const table = MemoryStore.makeTable(spec, 3)
    table.decide("busy", 0, 2, 0)
    for (let i = 0; i < 10; i++) {
      table.decide(`cold-${i}`, 0, 1, 0)
      // the busy key is still limited: its state was not evicted
      assert.isFalse(table.decide("busy", 0, 1, 0).allowed)
    }
    assert.strictEqual(table.size, 3)
  })

  it.effect("gives each limiter its own bounded table, shared by limiters of the same name and algorithm", () =>
    Effect.gen(function*() {
      const store = yield* MemoryStore.make({ maxKeys: 5 })
      const config = (name: string) =>
        Either.getOrThrow(validate({ name, algorithm: RateLimiter.fixedWindow({ limit: 1, window: "1 minute" }) }))
      const a = yield* store.bind(config("a"))
      const a2 = yield* store.bind(config("a"))
      const b = yield* store.bind(config("b"))
      yield* TestClock.setTime(1_000)
      for (let i = 0; i < 20; i++) yield* a.decide(`key-${i}`, 1, 0)
      yield* b.decide("key-0", 1, 0)
      assert.isFalse((yield* a2.decide("key-19", 1, 0)).allowed)
      assert.deepStrictEqual([...store.tables.values()].map((t) => t.size), [5, 1])
    }))
})
