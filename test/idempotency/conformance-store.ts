/**
 * The conformance suite, part one: the store's own operations (claim, heartbeat, complete, release, lookup,
 * deleteExpired, cleanup).
 */
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import { assert } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { claimed, request, SCOPE, store, type Test } from "./conformance-fixtures.js"

export const storeTests = (test: Test): void => {
  test("the first claim of a key holds it as attempt 1", () =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request({ owner: "owner-a" })))
      assert.strictEqual(lease.attempt, 1)
      assert.isFalse(lease.recovery)
      assert.strictEqual(lease.owner, "owner-a")
      const info = Option.getOrThrow(yield* s.lookup({ scope: SCOPE, partition: "", key: "key-1" }))
      assert.strictEqual(info.state, "in_progress")
      assert.deepStrictEqual(info.owner, Option.some("owner-a"))
      assert.isTrue(Option.isSome(info.leaseExpiresIn))
    }))

  test("a second claim while the lease is live is in progress, with a retry hint of at most a second", () =>
    Effect.gen(function*() {
      const s = yield* store
      claimed(yield* s.claim(request()))
      const second = yield* s.claim(request())
      assert.strictEqual(second._tag, "InProgress")
      if (second._tag !== "InProgress") return
      assert.isTrue(Duration.greaterThan(second.retryAfter, Duration.zero))
      assert.isTrue(Duration.lessThanOrEqualTo(second.retryAfter, Duration.seconds(1)))
    }))

  test("a claim with another fingerprint is a mismatch, whatever the record's state", () =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request()))
      assert.strictEqual((yield* s.claim(request({ fingerprint: "fp-2" })))._tag, "Mismatch")
      yield* s.release(lease)
      assert.strictEqual((yield* s.claim(request({ fingerprint: "fp-2" })))._tag, "Mismatch")
      const again = claimed(yield* s.claim(request()))
      yield* s.complete(again, { outcome: "success", payload: "{}" })
      assert.strictEqual((yield* s.claim(request({ fingerprint: "fp-2" })))._tag, "Mismatch")
    }))

  test("keys are scoped by scope and partition", () =>
    Effect.gen(function*() {
      const s = yield* store
      claimed(yield* s.claim(request()))
      claimed(yield* s.claim({ ...request(), scope: "POST /refunds" }))
      claimed(yield* s.claim(request({ partition: "tenant-2" })))
      claimed(yield* s.claim(request({ key: "key-2" })))
    }))

  test("a completed record replays its payload byte for byte", () =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request()))
      // Key order, spacing, escapes and non-ASCII must survive: the store keeps the text, not a parsed form.
      const payload = `{"z":1,  "a":"é\\u00e9 ✓","n":1.50,"big":12345678901234567890,"nested":{"b":[1,2],"a":null}}`
      assert.isTrue(yield* s.complete(lease, { outcome: "success", payload }))
      const replay = yield* s.claim(request())
      assert.strictEqual(replay._tag, "Completed")
      if (replay._tag !== "Completed") return
      assert.strictEqual(replay.record.payload, payload)
      assert.strictEqual(replay.record.outcome, "success")
      assert.strictEqual(replay.record.attempt, 1)
      assert.strictEqual(replay.record.fingerprint, "fp-1")
      assert.isTrue(Duration.lessThanOrEqualTo(replay.record.expiresIn, Duration.hours(1)))
      assert.isTrue(Duration.greaterThan(replay.record.expiresIn, Duration.minutes(59)))
    }))

  test("a released key is claimed again as the next attempt, not a recovery", () =>
    Effect.gen(function*() {
      const s = yield* store
      const first = claimed(yield* s.claim(request()))
      assert.isTrue(yield* s.release(first))
      assert.strictEqual(Option.getOrThrow(yield* s.lookup(first)).state, "released")
      const second = claimed(yield* s.claim(request()))
      assert.strictEqual(second.attempt, 2)
      assert.isFalse(second.recovery)
    }))

  test("a lapsed lease is taken over as the next attempt, marked recovery; until then it is in progress", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      const first = claimed(yield* s.claim(request({ lease: "10 seconds" })))
      yield* fresh.advance("9 seconds")
      assert.strictEqual((yield* s.claim(request()))._tag, "InProgress")
      yield* fresh.advance("2 seconds")
      assert.strictEqual((yield* s.claim(request({ fingerprint: "other" })))._tag, "Mismatch")
      const second = claimed(yield* s.claim(request()))
      assert.strictEqual(second.attempt, first.attempt + 1)
      assert.isTrue(second.recovery)
    }))

  test("a heartbeat extends the lease", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request({ lease: "10 seconds" })))
      yield* fresh.advance("7 seconds")
      assert.isTrue(yield* s.heartbeat(lease))
      yield* fresh.advance("7 seconds")
      assert.strictEqual((yield* s.claim(request()))._tag, "InProgress")
      yield* fresh.advance("4 seconds")
      claimed(yield* s.claim(request()))
    }))

  test("a stale executor is fenced: after a takeover it can neither heartbeat, complete nor release", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      const stale = claimed(yield* s.claim(request({ lease: "1 second" })))
      yield* fresh.advance("2 seconds")
      const current = claimed(yield* s.claim(request({ lease: "1 minute" })))
      assert.isFalse(yield* s.heartbeat(stale))
      assert.isFalse(yield* s.complete(stale, { outcome: "success", payload: `"stale"` }))
      assert.isFalse(yield* s.release(stale))
      const info = Option.getOrThrow(yield* s.lookup(current))
      assert.strictEqual(info.state, "in_progress")
      assert.deepStrictEqual(info.owner, Option.some(current.owner))
      assert.isTrue(yield* s.complete(current, { outcome: "success", payload: `"current"` }))
      // A completed record is fenced too: nobody holds it any more.
      assert.isFalse(yield* s.complete(current, { outcome: "success", payload: `"again"` }))
      assert.isFalse(yield* s.release(current))
      const replay = yield* s.claim(request())
      assert.strictEqual(replay._tag === "Completed" ? replay.record.payload : replay._tag, `"current"`)
    }))

  test("a lease is fenced by attempt as well as owner", () =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request({ owner: "same-owner" })))
      assert.isFalse(yield* s.complete({ ...lease, attempt: lease.attempt + 1 }, { outcome: "success", payload: "1" }))
      assert.isFalse(yield* s.heartbeat({ ...lease, owner: "someone-else" }))
      assert.isTrue(yield* s.complete(lease, { outcome: "success", payload: "1" }))
    }))

  test("a record expires after its TTL: then any request claims it afresh as attempt 1", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request({ ttl: "1 hour" })))
      yield* s.complete(lease, { outcome: "failure", payload: `{"_tag":"CardDeclined","reason":"no"}` })
      yield* fresh.advance("59 minutes")
      assert.strictEqual((yield* s.claim(request()))._tag, "Completed")
      assert.isTrue(Option.isSome(yield* s.lookup(lease)))
      yield* fresh.advance("2 minutes")
      assert.isTrue(Option.isNone(yield* s.lookup(lease)))
      const again = claimed(yield* s.claim(request({ fingerprint: "a different request" })))
      assert.strictEqual(again.attempt, 1)
      assert.isFalse(again.recovery)
    }))

  test("the claim rule, case by case: which records a claim takes, as which attempt", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      // Each case leaves its own key in a state (lease 10 s, kept 1 minute), then claims it with the same or
      // another fingerprint. Time only moves forward: a case's setup ends by moving it as far as the case needs.
      type Setup = (key: string) => Effect.Effect<void, unknown, IdempotencyStore.IdempotencyStore>
      const claimOnce = (key: string) =>
        Effect.map(s.claim(request({ key, lease: "10 seconds", ttl: "1 minute" })), claimed)
      const live: Setup = (key) => Effect.asVoid(claimOnce(key))
      const lapsed: Setup = (key) => Effect.zipRight(claimOnce(key), fresh.advance("11 seconds"))
      const released: Setup = (key) => Effect.asVoid(Effect.flatMap(claimOnce(key), (lease) => s.release(lease)))
      const completed: Setup = (key) =>
        Effect.asVoid(
          Effect.flatMap(claimOnce(key), (lease) => s.complete(lease, { outcome: "success", payload: "1" }))
        )
      const expired = (setup: Setup): Setup => (key) => Effect.zipRight(setup(key), fresh.advance("2 minutes"))
      const absent: Setup = () => Effect.void
      const cases: ReadonlyArray<readonly [name: string, setup: Setup, fingerprint: string, expected: unknown]> = [
        ["absent", absent, "fp-1", ["Claimed", 1, false]],
        ["live lease, same fingerprint", live, "fp-1", ["InProgress"]],
        ["live lease, another fingerprint", live, "fp-2", ["Mismatch"]],
        ["lapsed lease, same fingerprint", lapsed, "fp-1", ["Claimed", 2, true]],
        ["lapsed lease, another fingerprint", lapsed, "fp-2", ["Mismatch"]],
        ["released, same fingerprint", released, "fp-1", ["Claimed", 2, false]],
        ["released, another fingerprint", released, "fp-2", ["Mismatch"]],
        ["completed, same fingerprint", completed, "fp-1", ["Completed", 1]],
        ["completed, another fingerprint", completed, "fp-2", ["Mismatch"]],
        ["expired completed, same fingerprint", expired(completed), "fp-1", ["Claimed", 1, false]],
        ["expired completed, another fingerprint", expired(completed), "fp-2", ["Claimed", 1, false]],
        ["expired released, another fingerprint", expired(released), "fp-2", ["Claimed", 1, false]],
        ["expired lapsed lease, same fingerprint", expired(live), "fp-1", ["Claimed", 1, false]],
        ["expired lapsed lease, another fingerprint", expired(live), "fp-2", ["Claimed", 1, false]]
      ]
      for (const [name, setup, fingerprint, expected] of cases) {
        const key = `rule: ${name}`
        yield* setup(key)
        const result = yield* s.claim(request({ key, fingerprint }))
        const observed = result._tag === "Claimed"
          ? [result._tag, result.lease.attempt, result.lease.recovery]
          : result._tag === "Completed"
          ? [result._tag, result.record.attempt]
          : [result._tag]
        assert.deepStrictEqual(observed, expected, name)
      }
    }))

  test("a record with a live lease never expires, even past its TTL", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      const lease = claimed(yield* s.claim(request({ lease: "30 seconds", ttl: "20 seconds" })))
      for (let i = 0; i < 4; i++) {
        yield* fresh.advance("20 seconds")
        assert.isTrue(yield* s.heartbeat(lease))
      }
      assert.strictEqual(yield* s.deleteExpired(100), 0)
      assert.strictEqual((yield* s.claim(request({ fingerprint: "other" })))._tag, "Mismatch")
      assert.strictEqual((yield* s.claim(request()))._tag, "InProgress")
    }))

  test("deleteExpired deletes expired records in bounded batches and never a live one", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      for (let i = 0; i < 25; i++) {
        const lease = claimed(yield* s.claim(request({ key: `done-${i}`, ttl: "1 minute" })))
        yield* s.complete(lease, { outcome: "success", payload: `${i}` })
      }
      const released = claimed(yield* s.claim(request({ key: "released", ttl: "1 minute" })))
      yield* s.release(released)
      const live = claimed(yield* s.claim(request({ key: "live", lease: "10 minutes", ttl: "1 minute" })))
      const young = claimed(yield* s.claim(request({ key: "young", ttl: "1 hour" })))
      yield* s.complete(young, { outcome: "success", payload: "0" })
      assert.strictEqual(yield* s.deleteExpired(10), 0)
      yield* fresh.advance("2 minutes")
      assert.strictEqual(yield* s.deleteExpired(10), 10)
      assert.strictEqual(yield* s.deleteExpired(10), 10)
      assert.strictEqual(yield* s.deleteExpired(10), 6)
      assert.strictEqual(yield* s.deleteExpired(10), 0)
      assert.isTrue(Option.isSome(yield* s.lookup(live)))
      assert.isTrue(Option.isSome(yield* s.lookup(young)))
      assert.isTrue(Option.isNone(yield* s.lookup(released)))
    }))

  test("cleanup runs batches until one comes back short", (fresh) =>
    Effect.gen(function*() {
      const s = yield* store
      for (let i = 0; i < 23; i++) {
        const lease = claimed(yield* s.claim(request({ key: `k-${i}`, ttl: "1 minute" })))
        yield* s.complete(lease, { outcome: "success", payload: "0" })
      }
      yield* fresh.advance("2 minutes")
      assert.strictEqual(yield* IdempotencyStore.cleanup({ batchSize: 5, maxBatches: 2 }), 10)
      assert.strictEqual(yield* IdempotencyStore.cleanup({ batchSize: 5 }), 13)
      assert.strictEqual(yield* IdempotencyStore.cleanup({ batchSize: 5 }), 0)
    }))

  test("the background cleanup deletes expired records every interval", (fresh) =>
    Effect.scoped(Effect.gen(function*() {
      const s = yield* store
      const completeSome = (prefix: string) =>
        Effect.forEach(
          [0, 1, 2],
          (i) =>
            Effect.flatMap(s.claim(request({ key: `${prefix}-${i}`, ttl: "1 minute" })), (result) =>
              s.complete(claimed(result), { outcome: "success", payload: "0" })),
          { discard: true }
        )
      yield* completeSome("a")
      yield* IdempotencyStore.startCleanup({ interval: "5 minutes", batchSize: 2 })
      yield* fresh.advance("2 minutes")
      yield* fresh.advance("3 minutes")
      // The cleanup ran at the 5-minute mark, in two batches: nothing expired is left.
      assert.strictEqual(yield* s.deleteExpired(100), 0)
      yield* completeSome("b")
      yield* fresh.advance("2 minutes")
      // Expired, and not yet cleaned up (the next run is at 10 minutes): this takes one.
      assert.strictEqual(yield* s.deleteExpired(1), 1)
      yield* fresh.advance("3 minutes")
      assert.strictEqual(yield* s.deleteExpired(100), 0)
    })))
}
