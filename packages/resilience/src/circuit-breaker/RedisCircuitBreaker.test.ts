import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { InvalidOptionsError } from "../Failure.js"
import { parseMessage } from "./internal/redisFleet.js"
import * as RedisCircuitBreaker from "./RedisCircuitBreaker.js"

/** The option an invalid configuration names; it fails before any connection is made (no Redis here). */
const rejected = (options: RedisCircuitBreaker.Options) =>
  Effect.gen(function*() {
    const exit = yield* Effect.exit(Effect.scoped(RedisCircuitBreaker.make(options)))
    assert(Exit.isFailure(exit), "expected InvalidOptionsError")
    const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
    assert.instanceOf(error, InvalidOptionsError)
    return error
  })

describe("RedisCircuitBreaker options", () => {
  it.effect("reject a prefix with braces: the breaker's own hash tag must be the first", () =>
    Effect.gen(function*() {
      const error = yield* rejected({ name: "payments", prefix: "app{x}:" })
      assert.deepInclude(error, { component: `RedisCircuitBreaker "payments"`, option: "prefix" })
    }))

  it.effect("reject a zero or negative sync interval, probe timeout or command timeout", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* rejected({ name: "p", syncInterval: 0 })).option, "syncInterval")
      assert.strictEqual((yield* rejected({ name: "p", probeTimeout: -1 })).option, "probeTimeout")
      assert.strictEqual((yield* rejected({ name: "p", commandTimeout: "2 hours" })).option, "commandTimeout")
    }))

  it.effect("reject two ways to reach Redis at once", () =>
    Effect.gen(function*() {
      const error = yield* rejected({ name: "p", redis: {}, cluster: { nodes: [{ host: "127.0.0.1", port: 7000 }] } })
      assert.strictEqual(error.option, "cluster")
    }))

  it.effect("reject the breaker's own invalid options before connecting", () =>
    Effect.gen(function*() {
      assert.strictEqual((yield* rejected({ name: "bad name!" })).option, "name")
      assert.strictEqual((yield* rejected({ name: "p", halfOpen: { permits: 0 } })).option, "halfOpen.permits")
    }))
})

describe("RedisCircuitBreaker announcements", () => {
  it("parse an opening and a closing with their generations; anything else is dropped", () => {
    assert.deepStrictEqual(parseMessage("1720000000123 o 30000"), { code: 1, gen: 1720000000123, value: 30000 })
    assert.deepStrictEqual(parseMessage("1720000000124 c 0"), { code: 0, gen: 1720000000124, value: 0 })
    assert.isUndefined(parseMessage("1720000000124 x 0"))
    assert.isUndefined(parseMessage("open"))
  })
})
