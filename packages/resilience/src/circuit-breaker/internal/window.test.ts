import { assert, describe, it } from "@effect/vitest"
import * as fc from "fast-check"
import type { RecordedCall } from "../CircuitBreaker.js"
import * as window from "./window.js"

interface Version {
  readonly window: window.CountWindow
  /** Every call recorded on the way to this version, oldest first: the reference. */
  readonly history: ReadonlyArray<RecordedCall>
}

const expected = (history: ReadonlyArray<RecordedCall>, size: number) => {
  const last = history.slice(-size)
  return {
    calls: last.length,
    failures: last.filter((call) => call.failure).length,
    slow: last.filter((call) => call.slow).length
  }
}

const totals = (self: window.CountWindow) => ({ calls: self.calls, failures: self.failures, slow: self.slow })

const call = fc.record({ failure: fc.boolean(), slow: fc.boolean(), durationMillis: fc.constant(1) })

describe("count window", () => {
  it("every version keeps its own last `size` calls, however the versions branch and in whatever order they record", () =>
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.tuple(fc.nat(), call), { minLength: 1, maxLength: 200 }),
        (size, steps) => {
          const versions: Array<Version> = [{ window: window.emptyCount(size), history: [] }]
          for (const [pick, next] of steps) {
            // Mostly the newest version, as the breaker does; often an older one, as a branch.
            const from = pick % 3 === 0 ? versions[pick % versions.length] : versions[versions.length - 1]
            if (from === undefined) continue
            const recorded = { window: window.recordCount(from.window, next), history: [...from.history, next] }
            versions.push(recorded)
            assert.deepStrictEqual(totals(recorded.window), expected(recorded.history, size))
          }
          // Recording did not change any earlier version.
          for (const version of versions) {
            assert.deepStrictEqual(totals(version.window), expected(version.history, size))
            const probe = { failure: true, slow: true, durationMillis: 1 }
            assert.deepStrictEqual(
              totals(window.recordCount(version.window, probe)),
              expected([...version.history, probe], size)
            )
          }
        }
      ),
      { numRuns: 300 }
    ))

  it("the empty window it starts from is never changed by recording", () => {
    const empty = window.emptyCount(3)
    const fail = { failure: true, slow: false, durationMillis: 1 }
    let current = empty
    for (let i = 0; i < 10; i++) current = window.recordCount(current, fail)
    assert.deepStrictEqual(totals(current), { calls: 3, failures: 3, slow: 0 })
    assert.deepStrictEqual(totals(window.recordCount(empty, fail)), { calls: 1, failures: 1, slow: 0 })
  })
})
