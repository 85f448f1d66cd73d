/**
 * The adaptive limit's arithmetic, pure: `update(settings, state, sample,
 * now)` returns the next state, and nothing here reads a clock or keeps a
 * cell. The effectful shell (`adaptiveConcurrency.ts`) calls it once per
 * completed call, in the same synchronous step as the release.
 *
 * ```text
 * sample (rtt, inflight, dropped) ──▶ window: count, Σrtt, min rtt, max inflight, drops
 *                                        │ window at least `window` long and `minSamples` samples?
 *                                        ▼ yes
 *                       algorithm(limit, window's rtt, max inflight, dropped?) ──▶ new limit ∈ [min, max]
 * ```
 *
 * Samples are aggregated into windows first, as Netflix concurrency-limits'
 * `WindowedLimit` does: one call's latency is noise, a window's average is a
 * measurement. A window closes on the first sample at least `window` after
 * it opened that brings it to `minSamples` samples (drops included); a
 * window short of samples keeps collecting, so a quiet service does not move
 * its limit on three calls.
 *
 * **Gradient2** (Netflix `Gradient2Limit`): a long-term exponential average
 * of the windows' average RTT (simple average over the first 10 windows,
 * then EMA over `longWindow` windows) stands for the latency without
 * queueing; each window compares it with its own average:
 *
 *     gradient = clamp(tolerance × longRtt / shortRtt, 0.5, 1)
 *     newLimit = limit × gradient + queueSize
 *     newLimit = limit × (1 − smoothing) + newLimit × smoothing
 *
 * Flat latency (gradient 1) grows the limit by `smoothing × queueSize` a
 * window; rising latency shrinks it by up to half the smoothed step. When the
 * long average is more than twice the window's (load is gone), it is cut by
 * 10% so the limit recovers without waiting for the average to decay. A
 * window where fewer than half the limit's calls ran (app-limited) leaves the
 * limit alone: nothing was learned about the limit. Netflix's Gradient2
 * ignores drops; here a window with a drop counts as gradient 0.5 (the
 * largest cut), because a timed-out call says more about overload than any
 * latency.
 *
 * **Vegas** (Netflix `VegasLimit`, after TCP Vegas): the smallest RTT seen
 * (`minRtt`, the no-load RTT) estimates the calls queued at the current
 * limit, `queue = ⌈limit × (1 − minRtt / rtt)⌉` with `rtt` the window's
 * minimum; with `L = max(1, log10 limit)`: queue ≤ L grows by `6L`
 * (`beta`), queue < `3L` (`alpha`) grows by `L`, queue > `6L` shrinks by
 * `L`, otherwise the limit holds. A drop shrinks by `L`. `minRtt` is probed
 * again (reset to the window's RTT) every `probeMultiplier × limit` windows,
 * so a latency that rose for good stops looking like queueing.
 *
 * Every result is clamped to `[minLimit, maxLimit]`. The limit is a real
 * number; the shell admits `floor(limit)` calls.
 *
 * @internal
 */

/** @internal */
export interface Gradient2Settings {
  readonly _tag: "Gradient2"
  readonly smoothing: number
  readonly tolerance: number
  /** How much the limit may grow a window while latency is flat. */
  readonly queueSize: number
  /** Windows in the long-term RTT average. */
  readonly longWindow: number
}

/** @internal */
export interface VegasSettings {
  readonly _tag: "Vegas"
  readonly smoothing: number
  /** `minRtt` is probed again every `probeMultiplier × limit` windows. */
  readonly probeMultiplier: number
}

/** @internal */
export type AlgorithmSettings = Gradient2Settings | VegasSettings

/** @internal */
export interface Settings {
  readonly algorithm: AlgorithmSettings
  readonly initialLimit: number
  readonly minLimit: number
  readonly maxLimit: number
  /** Milliseconds a window lasts at least. */
  readonly window: number
  readonly minSamples: number
}

/** One completed call: its latency (ms), the calls in flight when it ended (itself included), and whether it was a drop. */
export interface Sample {
  readonly rtt: number
  readonly inflight: number
  readonly dropped: boolean
}

/** @internal */
export interface Window {
  /** When it opened (ms); `NaN` until the first sample. */
  readonly start: number
  readonly samples: number
  readonly drops: number
  /** Σ rtt of the samples that were not drops. */
  readonly rttSum: number
  readonly rttMin: number
  readonly maxInflight: number
}

/** @internal */
export interface State {
  readonly limit: number
  readonly window: Window
  /** Windows closed so far. */
  readonly windows: number
  /** The last closed window's RTT (ms); `NaN` before. */
  readonly shortRtt: number
  /** Gradient2's long-term average RTT (ms); `NaN` before the first window. */
  readonly longRtt: number
  /** Vegas' no-load RTT (ms); `Infinity` before the first window. */
  readonly minRtt: number
  /** Vegas: windows left before `minRtt` is probed again. */
  readonly probeIn: number
}

/** Below this an RTT (ms) is taken as this: a clock in milliseconds reads 0 for fast calls. */
const MIN_RTT = 0.01

/** Gradient2's long average is a plain mean over this many windows first (Netflix's warm-up). */
const WARMUP_WINDOWS = 10

const emptyWindow: Window = { start: NaN, samples: 0, drops: 0, rttSum: 0, rttMin: Infinity, maxInflight: 0 }

const clamp = (value: number, min: number, max: number): number => Math.min(max, Math.max(min, value))

/** The state before any call. @internal */
export const initial = (settings: Settings): State => ({
  limit: clamp(settings.initialLimit, settings.minLimit, settings.maxLimit),
  window: emptyWindow,
  windows: 0,
  shortRtt: NaN,
  longRtt: NaN,
  minRtt: Infinity,
  probeIn: 0
})

/** What a closed window measured. */
interface Measured {
  readonly rtt: number
  readonly rttMin: number
  readonly maxInflight: number
  readonly dropped: boolean
}

const gradient2 = (
  settings: Settings,
  algorithm: Gradient2Settings,
  state: State,
  measured: Measured
): State => {
  const limit = state.limit
  const shortRtt = Number.isNaN(measured.rtt) ? state.shortRtt : measured.rtt
  if (Number.isNaN(shortRtt)) {
    // Only drops so far: no latency to learn from, but the drops still count.
    return measured.dropped ? { ...state, limit: step(settings, algorithm.smoothing, limit, 0.5, 0) } : state
  }
  const n = state.windows
  let longRtt = Number.isNaN(state.longRtt)
    ? shortRtt
    : n < WARMUP_WINDOWS
    ? state.longRtt + (shortRtt - state.longRtt) / (n + 1)
    : state.longRtt + (shortRtt - state.longRtt) * (2 / (algorithm.longWindow + 1))
  // Load has gone: let the baseline come down faster than the average would.
  if (longRtt / shortRtt > 2) longRtt *= 0.9
  const next = { ...state, shortRtt, longRtt }
  if (measured.dropped) return { ...next, limit: step(settings, algorithm.smoothing, limit, 0.5, algorithm.queueSize) }
  if (measured.maxInflight < limit / 2) return next
  const gradient = clamp(algorithm.tolerance * longRtt / shortRtt, 0.5, 1)
  return { ...next, limit: step(settings, algorithm.smoothing, limit, gradient, algorithm.queueSize) }
}

const step = (settings: Settings, smoothing: number, limit: number, gradient: number, queueSize: number): number => {
  const target = limit * gradient + queueSize
  return clamp(limit * (1 - smoothing) + target * smoothing, settings.minLimit, settings.maxLimit)
}

const vegas = (settings: Settings, algorithm: VegasSettings, state: State, measured: Measured): State => {
  const limit = state.limit
  const log = Math.max(1, Math.log10(limit))
  const smoothed = (target: number) =>
    clamp(limit * (1 - algorithm.smoothing) + target * algorithm.smoothing, settings.minLimit, settings.maxLimit)
  if (measured.dropped) return { ...state, limit: smoothed(limit - log) }
  const rtt = measured.rttMin
  if (!Number.isFinite(rtt)) return state
  const withRtt = { ...state, shortRtt: rtt }
  const probeEvery = Math.max(1, Math.ceil(algorithm.probeMultiplier * limit))
  if (rtt < state.minRtt) return { ...withRtt, minRtt: rtt, probeIn: probeEvery }
  if (state.probeIn <= 1) return { ...withRtt, minRtt: rtt, probeIn: probeEvery }
  const counted = { ...withRtt, probeIn: state.probeIn - 1 }
  if (measured.maxInflight * 2 < limit) return counted
  const queue = Math.ceil(limit * (1 - state.minRtt / rtt))
  const target = queue <= log
    ? limit + 6 * log
    : queue < 3 * log
    ? limit + log
    : queue > 6 * log
    ? limit - log
    : limit
  return { ...counted, limit: smoothed(target) }
}

/**
 * The state after one completed call at `now` (ms). A refused call is not a
 * sample; an interrupted one is not either (its latency is the caller's).
 *
 * @internal
 */
export const update = (settings: Settings, state: State, sample: Sample, now: number): State => {
  const previous = state.window
  const rtt = Math.max(MIN_RTT, Number.isFinite(sample.rtt) ? sample.rtt : MIN_RTT)
  // The first window opens when its first call started; a clock that went back opens a new one.
  const start = Number.isNaN(previous.start) || now < previous.start ? now - rtt : previous.start
  const window: Window = sample.dropped
    ? { ...previous, start, samples: previous.samples + 1, drops: previous.drops + 1 }
    : {
      start,
      samples: previous.samples + 1,
      drops: previous.drops,
      rttSum: previous.rttSum + rtt,
      rttMin: Math.min(previous.rttMin, rtt),
      maxInflight: Math.max(previous.maxInflight, sample.inflight)
    }
  if (now - start < settings.window || window.samples < settings.minSamples) return { ...state, window }
  const ran = window.samples - window.drops
  const measured: Measured = {
    rtt: ran === 0 ? NaN : window.rttSum / ran,
    rttMin: window.rttMin,
    maxInflight: Math.max(window.maxInflight, sample.inflight),
    dropped: window.drops > 0
  }
  const closed = { ...state, window: { ...emptyWindow, start: now } }
  const next = settings.algorithm._tag === "Gradient2"
    ? gradient2(settings, settings.algorithm, closed, measured)
    : vegas(settings, settings.algorithm, closed, measured)
  return { ...next, windows: state.windows + 1 }
}

/** The number of calls admitted at once under `state`. @internal */
export const admitted = (state: State): number => Math.floor(state.limit)
