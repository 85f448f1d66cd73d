import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import type { AlgorithmSettings, Settings, State } from "./limit.js"
import * as Limit from "./limit.js"

const gradient2: AlgorithmSettings = {
  _tag: "Gradient2",
  smoothing: 0.2,
  tolerance: 1.5,
  queueSize: 4,
  longWindow: 600
}
const vegas: AlgorithmSettings = { _tag: "Vegas", smoothing: 1, probeMultiplier: 30 }

const settingsOf = (algorithm: AlgorithmSettings, overrides: Partial<Settings> = {}): Settings => ({
  algorithm,
  initialLimit: 20,
  minLimit: 4,
  maxLimit: 200,
  window: 100,
  minSamples: 5,
  ...overrides
})

/** Feeds `windows` full windows (`samples` calls each, 100 ms apart in time) of one latency and inflight. */
const feed = (
  settings: Settings,
  state: State,
  start: number,
  windows: number,
  call: (state: State) => { readonly rtt: number; readonly inflight?: number; readonly dropped?: boolean }
): { readonly state: State; readonly now: number; readonly limits: ReadonlyArray<number> } => {
  let now = start
  let current = state
  const limits: Array<number> = []
  for (let w = 0; w < windows; w++) {
    for (let i = 0; i < settings.minSamples; i++) {
      now += settings.window / settings.minSamples
      const sample = call(current)
      current = Limit.update(
        settings,
        current,
        {
          rtt: sample.rtt,
          inflight: sample.inflight ?? Math.ceil(current.limit),
          dropped: sample.dropped ?? false
        },
        now
      )
    }
    limits.push(current.limit)
  }
  return { state: current, now, limits }
}

const algorithms = [["Gradient2", gradient2], ["Vegas", vegas]] as const

const arbitrarySample = FastCheck.record({
  gap: FastCheck.integer({ min: 0, max: 500 }),
  rtt: FastCheck.oneof(FastCheck.double({ min: 0, max: 10_000, noNaN: true }), FastCheck.constant(0)),
  inflight: FastCheck.integer({ min: 0, max: 2_000 }),
  dropped: FastCheck.boolean()
})

const arbitraryBounds = FastCheck.tuple(
  FastCheck.integer({ min: 1, max: 100 }),
  FastCheck.integer({ min: 0, max: 400 }),
  FastCheck.integer({ min: 0, max: 400 })
).map(([minLimit, span, initial]) => ({
  minLimit,
  maxLimit: minLimit + span,
  initialLimit: minLimit + Math.min(span, initial)
}))

describe("the adaptive limit (pure)", () => {
  for (const [name, algorithm] of algorithms) {
    describe(name, () => {
      it("keeps the limit within [minLimit, maxLimit] whatever the samples", () => {
        FastCheck.assert(
          FastCheck.property(
            arbitraryBounds,
            FastCheck.array(arbitrarySample, { maxLength: 300 }),
            (bounds, samples) => {
              const settings = settingsOf(algorithm, { ...bounds, minSamples: 3, window: 50 })
              let state = Limit.initial(settings)
              let now = 0
              for (const sample of samples) {
                now += sample.gap
                state = Limit.update(settings, state, sample, now)
                assert.isAtLeast(state.limit, settings.minLimit)
                assert.isAtMost(state.limit, settings.maxLimit)
                assert.isTrue(Number.isFinite(state.limit))
                assert.strictEqual(Limit.admitted(state), Math.floor(state.limit))
              }
            }
          )
        )
      })

      it("grows the limit while latency stays flat and the limit is in use", () => {
        FastCheck.assert(
          FastCheck.property(
            FastCheck.double({ min: 1, max: 2_000, noNaN: true }),
            FastCheck.integer({ min: 4, max: 50 }),
            (rtt, initialLimit) => {
              const settings = settingsOf(algorithm, { initialLimit })
              const { limits } = feed(settings, Limit.initial(settings), 0, 60, () => ({ rtt }))
              for (let i = 1; i < limits.length; i++) assert.isAtLeast(limits[i] ?? 0, limits[i - 1] ?? 0)
              assert.isAbove(limits[limits.length - 1] ?? 0, initialLimit)
            }
          )
        )
      })

      it("shrinks the limit when latency rises while saturated", () => {
        FastCheck.assert(
          FastCheck.property(
            FastCheck.double({ min: 1, max: 1_000, noNaN: true }),
            FastCheck.double({ min: 3, max: 20, noNaN: true }),
            FastCheck.integer({ min: 30, max: 150 }),
            (rtt, factor, initialLimit) => {
              const settings = settingsOf(algorithm, { initialLimit, minLimit: 4, maxLimit: 200 })
              // Learn the baseline at a limit that is not in use (app-limited: the limit holds).
              const calm = feed(settings, Limit.initial(settings), 0, 20, () => ({ rtt, inflight: 1 }))
              assert.strictEqual(calm.state.limit, initialLimit)
              const loaded = feed(settings, calm.state, calm.now, 20, () => ({ rtt: rtt * factor }))
              assert.isBelow(loaded.state.limit, initialLimit)
            }
          )
        )
      })

      it("leaves the limit alone while less than half of it is in use", () => {
        FastCheck.assert(
          FastCheck.property(
            FastCheck.array(FastCheck.double({ min: 1, max: 5_000, noNaN: true }), { minLength: 1, maxLength: 40 }),
            (rtts) => {
              const settings = settingsOf(algorithm, { initialLimit: 40 })
              let i = 0
              const { state } = feed(settings, Limit.initial(settings), 0, rtts.length, () => ({
                rtt: rtts[i++ % rtts.length] ?? 1,
                inflight: 9
              }))
              assert.strictEqual(state.limit, 40)
            }
          )
        )
      })

      it("shrinks the limit on drops", () => {
        const settings = settingsOf(algorithm, { initialLimit: 100 })
        const warm = feed(settings, Limit.initial(settings), 0, 3, () => ({ rtt: 10, inflight: 1 }))
        const dropped = feed(settings, warm.state, warm.now, 10, () => ({ rtt: 10, dropped: true }))
        assert.isBelow(dropped.state.limit, 100)
      })
    })
  }

  it("updates only once a window is both long enough and has enough samples", () => {
    const settings = settingsOf(gradient2, { window: 1_000, minSamples: 3 })
    let state = Limit.initial(settings)
    state = Limit.update(settings, state, { rtt: 10, inflight: 20, dropped: false }, 0)
    state = Limit.update(settings, state, { rtt: 10, inflight: 20, dropped: false }, 2_000)
    assert.strictEqual(state.windows, 0, "two samples: the window stays open however long")
    state = Limit.update(settings, state, { rtt: 10, inflight: 20, dropped: false }, 2_001)
    assert.strictEqual(state.windows, 1)
    assert.strictEqual(state.shortRtt, 10)
    state = Limit.update(settings, state, { rtt: 10, inflight: 20, dropped: false }, 2_002)
    state = Limit.update(settings, state, { rtt: 10, inflight: 20, dropped: false }, 2_003)
    state = Limit.update(settings, state, { rtt: 10, inflight: 20, dropped: false }, 2_004)
    assert.strictEqual(state.windows, 1, "three samples, but the window is 3 ms long")
  })

  it("Gradient2 follows Netflix's formula: limit × gradient + queueSize, smoothed", () => {
    const settings = settingsOf({ ...gradient2, tolerance: 1 }, { initialLimit: 50, minSamples: 1, window: 1 })
    let state = Limit.initial(settings)
    // First window: long = short = 100 ms, gradient 1: 50 × 0.8 + (50 + 4) × 0.2 = 50.8.
    state = Limit.update(settings, state, { rtt: 100, inflight: 50, dropped: false }, 1)
    assert.closeTo(state.limit, 50.8, 1e-9)
    // Second window at 300 ms: long = (100 + 300) / 2 = 200 (warm-up mean), gradient 200 / 300.
    state = Limit.update(settings, state, { rtt: 300, inflight: 50, dropped: false }, 2)
    const expected = 50.8 * 0.8 + (50.8 * (200 / 300) + 4) * 0.2
    assert.closeTo(state.limit, expected, 1e-9)
    assert.closeTo(state.longRtt, 200, 1e-9)
  })

  it("Vegas takes the no-load latency from the first window and grows by beta while nothing queues", () => {
    const settings = settingsOf(vegas, { initialLimit: 100, minSamples: 1, window: 1 })
    let state = Limit.initial(settings)
    state = Limit.update(settings, state, { rtt: 10, inflight: 100, dropped: false }, 1)
    assert.strictEqual(state.limit, 100)
    assert.strictEqual(state.minRtt, 10)
    state = Limit.update(settings, state, { rtt: 10, inflight: 100, dropped: false }, 2)
    // log10(100) = 2: queue 0 ≤ 2 grows by beta = 6 × 2.
    assert.strictEqual(state.limit, 112)
  })
})
