import { assert, describe, it } from "@effect/vitest"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { RecordedCall, TripStrategy, TripWindow } from "../CircuitBreaker.js"
import * as trip from "./trip.js"

const OK: RecordedCall = { failure: false, slow: false, durationMillis: 1 }
const FAIL: RecordedCall = { failure: true, slow: false, durationMillis: 1 }
const SLOW: RecordedCall = { failure: false, slow: true, durationMillis: 5000 }

const start = (strategy: TripStrategy): TripWindow => Either.getOrThrow(strategy.initial)

/** Records `calls` at the given times (default 0) and returns the window. */
const feed = (window: TripWindow, calls: ReadonlyArray<RecordedCall | readonly [RecordedCall, number]>): TripWindow =>
  calls.reduce<TripWindow>(
    (current, entry) => "failure" in entry ? current.record(entry, 0) : current.record(entry[0], entry[1]),
    window
  )

describe("consecutiveFailures", () => {
  it("fires at the threshold, not before", () => {
    const window = start(trip.consecutiveFailures(3))
    assert.isTrue(Option.isNone(feed(window, [FAIL, FAIL]).check(0)))
    const reason = feed(window, [FAIL, FAIL, FAIL]).check(0)
    assert(Option.isSome(reason))
    assert.deepInclude(reason.value, { strategy: "consecutive-failures", observed: 3, threshold: 3 })
  })

  it("counts slow successes as successes", () => {
    assert.isTrue(Option.isNone(feed(start(trip.consecutiveFailures(2)), [FAIL, SLOW, FAIL]).check(0)))
  })

  it("rejects a threshold below one", () => {
    const invalid = trip.consecutiveFailures(0).initial
    assert(Either.isLeft(invalid))
    assert.strictEqual(invalid.left.option, "trip.consecutiveFailures")
  })
})

describe("failureRate over a count window", () => {
  const strategy = trip.failureRate({ threshold: 50, window: { calls: 4 }, minimumCalls: 4 })

  it("waits for the minimum number of calls", () => {
    assert.isTrue(Option.isNone(feed(start(strategy), [FAIL, FAIL, FAIL]).check(0)))
  })

  it("fires when the rate reaches the threshold exactly", () => {
    const reason = feed(start(strategy), [OK, FAIL, OK, FAIL]).check(0)
    assert(Option.isSome(reason))
    assert.deepInclude(reason.value, { observed: 50, threshold: 50, calls: 4 })
    assert.strictEqual(reason.value.description, "failure rate 50% ≥ 50% over the last 4 calls")
  })

  it("forgets calls that slide out of the window", () => {
    // FAIL FAIL then four successes: the failures have left the 4-call window.
    assert.isTrue(Option.isNone(feed(start(strategy), [FAIL, FAIL, OK, OK, OK, OK]).check(0)))
    // One failure left in the window: 25% < 50%.
    assert.isTrue(Option.isNone(feed(start(strategy), [FAIL, FAIL, OK, OK, FAIL, OK, OK]).check(0)))
  })

  it("rejects a minimum above the window size, a zero window and thresholds outside 0–100%", () => {
    const options = (invalid: TripStrategy) => Either.isLeft(invalid.initial) ? invalid.initial.left.option : "valid"
    assert.strictEqual(
      options(trip.failureRate({ window: { calls: 5 }, minimumCalls: 6 })),
      "trip.failureRate.minimumCalls"
    )
    assert.strictEqual(options(trip.failureRate({ window: { calls: 0 } })), "trip.failureRate.window.calls")
    assert.strictEqual(options(trip.failureRate({ threshold: 0 })), "trip.failureRate.threshold")
    assert.strictEqual(options(trip.failureRate({ threshold: 101 })), "trip.failureRate.threshold")
    assert.strictEqual(options(trip.failureRate({ threshold: Number.NaN })), "trip.failureRate.threshold")
    assert.strictEqual(options(trip.failureRate()), "valid")
  })
})

describe("failureRate over a time window", () => {
  // 10 seconds in 10 buckets of one second.
  const strategy = trip.failureRate({ threshold: 50, window: { duration: "10 seconds" }, minimumCalls: 2 })

  it("fires on failures within the window", () => {
    const window = feed(start(strategy), [[FAIL, 0], [FAIL, 5_000]])
    assert.isTrue(Option.isSome(window.check(5_000)))
  })

  it("forgets buckets older than the window as the clock moves", () => {
    const window = feed(start(strategy), [[FAIL, 0], [FAIL, 500]])
    assert.isTrue(Option.isSome(window.check(9_999)))
    assert.isTrue(Option.isNone(window.check(10_000)))
  })

  it("counts only live calls towards the rate", () => {
    // Two old failures expire; one failure and two successes remain: 33% < 50%.
    const window = feed(start(strategy), [[FAIL, 0], [FAIL, 0], [FAIL, 10_500], [OK, 11_000], [OK, 12_000]])
    assert.isTrue(Option.isNone(window.check(12_000)))
  })

  it("rejects a zero window and more buckets than milliseconds", () => {
    const zero = trip.failureRate({ window: { duration: 0 } }).initial
    assert(Either.isLeft(zero))
    assert.strictEqual(zero.left.option, "trip.failureRate.window.duration")
    const tooFine = trip.failureRate({ window: { duration: "5 millis", buckets: 10 } }).initial
    assert(Either.isLeft(tooFine))
    assert.strictEqual(tooFine.left.option, "trip.failureRate.window.buckets")
  })
})

describe("slowCallRate", () => {
  it("counts slow calls, successful or not", () => {
    const strategy = trip.slowCallRate({ threshold: 100, window: { calls: 2 }, minimumCalls: 2 })
    assert.isTrue(strategy.countsSlowCalls)
    const reason = feed(start(strategy), [SLOW, { failure: true, slow: true, durationMillis: 5000 }]).check(0)
    assert(Option.isSome(reason))
    assert.strictEqual(reason.value.strategy, "slow-call-rate")
    assert.isTrue(Option.isNone(feed(start(strategy), [SLOW, FAIL]).check(0)))
  })
})
