import { assert, describe, it } from "@effect/vitest"
import * as FastCheck from "effect/FastCheck"
import type { Decision, LogState, Reservation, Spec, TatState } from "./algorithms.js"
import * as Algorithms from "./algorithms.js"

// ---------------------------------------------------------------------------
// helpers: drive a pure algorithm through a sequence of arrivals
// ---------------------------------------------------------------------------

type Decide<S> = (
  state: S | undefined,
  now: number,
  cost: number,
  maxDelay: number
) => readonly [Decision, S | undefined]

/** Decides from a fixed state; the next state comes as another such function. */
interface From {
  (now: number, cost: number, maxDelay: number): readonly [Decision, From]
}

interface Arrival {
  readonly gap: number
  readonly cost: number
}

interface Step {
  readonly now: number
  readonly cost: number
  readonly decision: Decision
  /** Whether the decision changed the state. */
  readonly changed: boolean
  readonly before: From
  readonly after: From
}

interface Simulation {
  readonly steps: ReadonlyArray<Step>
  readonly admitted: ReadonlyArray<{ readonly at: number; readonly cost: number }>
}

interface Runner {
  readonly simulate: (arrivals: ReadonlyArray<Arrival>, maxDelay: number, start: number) => Simulation
  /** Decides from no state at all. */
  readonly fresh: From
}

/** The driver keeps each algorithm's state type to itself: steps expose states only as `From` functions. */
const runner = <S>(decide: Decide<S>): Runner => {
  const from = (state: S | undefined): From => (now, cost, maxDelay) => {
    const [decision, next] = decide(state, now, cost, maxDelay)
    return [decision, from(next)]
  }
  const simulate = (arrivals: ReadonlyArray<Arrival>, maxDelay: number, start: number): Simulation => {
    let state: S | undefined = undefined
    let now = start
    const steps: Array<Step> = []
    for (const arrival of arrivals) {
      now += arrival.gap
      const before = state
      const [decision, after] = decide(state, now, arrival.cost, maxDelay)
      state = after
      steps.push({
        now,
        cost: arrival.cost,
        decision,
        changed: after !== before,
        before: from(before),
        after: from(after)
      })
    }
    const admitted = steps
      .filter((step) => step.decision.allowed)
      .map((step) => ({ at: step.now + step.decision.delay, cost: step.cost }))
      .sort((a, b) => a.at - b.at)
    return { steps, admitted }
  }
  return { simulate, fresh: from(undefined) }
}

const runnerFor = (spec: Spec): Runner => {
  switch (spec._tag) {
    case "TokenBucket":
      return runner<Algorithms.TokenBucketState>((s, now, c, m) => Algorithms.tokenBucket(s, now, c, spec, m))
    case "FixedWindow":
      return runner<Algorithms.FixedWindowState>((s, now, c, m) => Algorithms.fixedWindow(s, now, c, spec, m))
    case "SlidingWindowLog":
      return runner<LogState>((s, now, c, m) => Algorithms.slidingWindowLog(s, now, c, spec, m))
    case "SlidingWindowCounter":
      return runner<Algorithms.CounterState>((s, now, c, m) => Algorithms.slidingWindowCounter(s, now, c, spec, m))
    case "LeakyBucket":
      return runner<TatState>((s, now, c, m) => Algorithms.leakyBucket(s, now, c, spec, m))
    case "Gcra":
      return runner<TatState>((s, now, c, m) => Algorithms.gcra(s, now, c, spec, m))
  }
}

const simulate = (spec: Spec, arrivals: ReadonlyArray<Arrival>, maxDelay = 0, start = 0): Simulation =>
  runnerFor(spec).simulate(arrivals, maxDelay, start)

/** Units admitted with a time in `(from, to]`. */
const unitsIn = (admitted: ReadonlyArray<{ at: number; cost: number }>, from: number, to: number) =>
  admitted.reduce((sum, a) => (a.at > from && a.at <= to ? sum + a.cost : sum), 0)

const specArb = (tag: Spec["_tag"]) =>
  FastCheck.record({
    limit: FastCheck.integer({ min: 1, max: 8 }),
    window: FastCheck.integer({ min: 1, max: 3_000 }),
    extra: FastCheck.integer({ min: 1, max: 8 })
  }).map(({ extra, limit, window }): Spec => {
    switch (tag) {
      case "TokenBucket":
      case "Gcra":
        return { _tag: tag, limit, window, burst: extra }
      case "LeakyBucket":
        return { _tag: tag, limit, window, capacity: extra }
      case "FixedWindow":
      case "SlidingWindowLog":
      case "SlidingWindowCounter":
        return { _tag: tag, limit, window }
    }
  })

const anySpecArb = FastCheck.constantFrom<Spec["_tag"]>(
  "TokenBucket",
  "FixedWindow",
  "SlidingWindowLog",
  "SlidingWindowCounter",
  "LeakyBucket",
  "Gcra"
).chain(specArb)

/** Arrivals with gaps often zero (bursts) and sometimes beyond the window; costs from 1 to the quota. */
const arrivalsArb = (spec: Spec, max = 60) =>
  FastCheck.array(
    FastCheck.record({
      gap: FastCheck.oneof(
        FastCheck.constant(0),
        FastCheck.integer({ min: 0, max: Math.max(1, Math.ceil(spec.window / 4)) }),
        FastCheck.integer({ min: 0, max: spec.window * 3 })
      ),
      cost: FastCheck.integer({ min: 1, max: Algorithms.quotaOf(spec) })
    }),
    { maxLength: max }
  )

const scenarioArb = (spec: FastCheck.Arbitrary<Spec>) =>
  spec.chain((s) =>
    FastCheck.record({
      spec: FastCheck.constant(s),
      arrivals: arrivalsArb(s),
      maxDelay: FastCheck.oneof(FastCheck.constant(0), FastCheck.integer({ min: 0, max: s.window * 2 })),
      start: FastCheck.integer({ min: 0, max: 1_000_000 })
    })
  )

const runs = { numRuns: 300 }

// ---------------------------------------------------------------------------
// examples
// ---------------------------------------------------------------------------

describe("token bucket", () => {
  const spec: Spec = { _tag: "TokenBucket", limit: 10, window: 1_000, burst: 5 }

  it("admits a burst up to its capacity, then refills at limit per window", () => {
    const { steps } = simulate(spec, [
      ...Array.from({ length: 6 }, () => ({ gap: 0, cost: 1 })),
      { gap: 100, cost: 1 },
      { gap: 0, cost: 1 }
    ])
    assert.deepStrictEqual(steps.map((s) => s.decision.allowed), [true, true, true, true, true, false, true, false])
    assert.deepStrictEqual(steps.map((s) => s.decision.remaining), [4, 3, 2, 1, 0, 0, 0, 0])
    assert.strictEqual(steps[5]?.decision.retryAfter, 100)
    assert.strictEqual(steps[4]?.decision.reset, 500)
  })

  it("reserves a later slot when a wait is allowed, and charges it", () => {
    const { steps } = simulate(spec, Array.from({ length: 7 }, () => ({ gap: 0, cost: 1 })), 250)
    assert.deepStrictEqual(steps.map((s) => s.decision.delay), [0, 0, 0, 0, 0, 100, 200])
    const [whole] = Algorithms.tokenBucket(undefined, 0, 5, spec, 250)
    assert.isTrue(whole.allowed)
  })
})

describe("fixed window", () => {
  const spec: Spec = { _tag: "FixedWindow", limit: 3, window: 1_000 }

  it("admits twice the limit across a window boundary and no more", () => {
    const { steps } = simulate(spec, [
      { gap: 999, cost: 1 },
      { gap: 0, cost: 1 },
      { gap: 0, cost: 1 },
      { gap: 0, cost: 1 },
      { gap: 1, cost: 1 },
      { gap: 0, cost: 1 },
      { gap: 0, cost: 1 },
      { gap: 0, cost: 1 }
    ])
    assert.deepStrictEqual(steps.map((s) => s.decision.allowed), [true, true, true, false, true, true, true, false])
    assert.strictEqual(steps[3]?.decision.retryAfter, 1)
    assert.strictEqual(steps[7]?.decision.retryAfter, 1_000)
  })

  it("never splits a call across windows: a call that does not fit waits for the next window", () => {
    const [first, state] = Algorithms.fixedWindow(undefined, 0, 2, spec, 5_000)
    assert.isTrue(first.allowed)
    const [second] = Algorithms.fixedWindow(state, 10, 2, spec, 5_000)
    assert.strictEqual(second.delay, 990)
  })
})

describe("sliding window log", () => {
  const spec: Spec = { _tag: "SlidingWindowLog", limit: 2, window: 1_000 }

  it("frees each unit exactly one window after it was taken", () => {
    const { steps } = simulate(spec, [
      { gap: 0, cost: 1 },
      { gap: 300, cost: 1 },
      { gap: 0, cost: 1 },
      { gap: 699, cost: 1 },
      { gap: 1, cost: 1 },
      { gap: 0, cost: 1 }
    ])
    assert.deepStrictEqual(steps.map((s) => s.decision.allowed), [true, true, false, false, true, false])
    assert.strictEqual(steps[2]?.decision.retryAfter, 700)
    assert.strictEqual(steps[5]?.decision.retryAfter, 300)
  })

  it("keeps only entries inside the window", () => {
    let state: LogState | undefined = undefined
    for (const now of [0, 10, 1_010]) state = Algorithms.slidingWindowLog(state, now, 1, spec, 0)[1]
    assert.deepStrictEqual(state === undefined ? [] : Algorithms.logEntries(state), [[1_010, 1]])
  })
})

describe("sliding window counter", () => {
  const spec: Spec = { _tag: "SlidingWindowCounter", limit: 10, window: 1_000 }

  it("weights the previous window by how much of it still overlaps", () => {
    const burst = Array.from({ length: 10 }, () => ({ gap: 0, cost: 1 }))
    // 10 in window [0, 1000); at 1250, 75% of the previous window overlaps: 7.5 counted, 2 fit.
    const { steps } = simulate(spec, [...burst, { gap: 1_250, cost: 2 }, { gap: 0, cost: 1 }])
    assert.isTrue(steps[10]?.decision.allowed)
    assert.isFalse(steps[11]?.decision.allowed)
    // 10·(2000 − t)/1000 + 3 ≤ 10 once t ≥ 1300.
    assert.strictEqual(steps[11]?.decision.retryAfter, 50)
  })
})

describe("GCRA", () => {
  const spec: Spec = { _tag: "Gcra", limit: 3, window: 1_000, burst: 2 }

  it("spaces calls by window / limit after the burst, exactly for fractional intervals", () => {
    // T = 333⅓ ms: theoretical arrival times 333⅓, 666⅔, 1000, 1333⅓ …
    const { steps } = simulate(spec, Array.from({ length: 6 }, () => ({ gap: 0, cost: 1 })), 10_000)
    assert.deepStrictEqual(steps.map((s) => s.decision.delay), [0, 0, 334, 667, 1_000, 1_334])
  })
})

describe("leaky bucket", () => {
  const spec: Spec = { _tag: "LeakyBucket", limit: 4, window: 1_000, capacity: 3 }

  it("releases queued calls at a constant rate and refuses them once the bucket is full", () => {
    const { steps } = simulate(spec, Array.from({ length: 4 }, () => ({ gap: 0, cost: 1 })), 10_000)
    assert.deepStrictEqual(steps.map((s) => s.decision.delay), [0, 250, 500, 0])
    assert.deepStrictEqual(steps.map((s) => s.decision.allowed), [true, true, true, false])
    assert.strictEqual(steps[3]?.decision.retryAfter, 750)
  })

  it("lets a call through only into an empty bucket in reject mode", () => {
    const { steps } = simulate(spec, [{ gap: 0, cost: 1 }, { gap: 249, cost: 1 }, { gap: 1, cost: 1 }])
    assert.deepStrictEqual(steps.map((s) => s.decision.allowed), [true, false, true])
  })
})

// ---------------------------------------------------------------------------
// properties
// ---------------------------------------------------------------------------

describe("algorithm properties", () => {
  it.prop(
    "the sliding log never admits more than the limit in any window",
    [scenarioArb(specArb("SlidingWindowLog"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      const { admitted } = simulate(spec, arrivals, maxDelay, start)
      for (const a of admitted) {
        const units = unitsIn(admitted, a.at - spec.window, a.at)
        assert.isAtMost(units, spec.limit, `window ending at ${a.at}`)
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "the sliding log admits whenever the window has room (it is exact, not just safe)",
    [scenarioArb(specArb("SlidingWindowLog"))],
    ([{ arrivals, spec, start }]) => {
      const { steps } = simulate(spec, arrivals, 0, start)
      const admitted: Array<{ at: number; cost: number }> = []
      for (const step of steps) {
        const room = spec.limit - unitsIn(admitted, step.now - spec.window, step.now)
        assert.strictEqual(step.decision.allowed, step.cost <= room)
        if (step.decision.allowed) admitted.push({ at: step.now, cost: step.cost })
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "the token bucket never admits more than burst + rate·t over any interval t",
    [scenarioArb(specArb("TokenBucket"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      if (spec._tag !== "TokenBucket") return
      const { admitted } = simulate(spec, arrivals, maxDelay, start)
      for (let i = 0; i < admitted.length; i++) {
        let units = 0
        for (let j = i; j < admitted.length; j++) {
          const from = admitted[i]
          const to = admitted[j]
          if (from === undefined || to === undefined) continue
          units += to.cost
          // units ≤ burst + limit·(t / window), multiplied out to stay in integers
          assert.isAtMost(units * spec.window, spec.burst * spec.window + spec.limit * (to.at - from.at))
        }
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "the fixed window admits exactly what its counter allows: at most the limit per window, 2× across a boundary",
    [scenarioArb(specArb("FixedWindow"))],
    ([{ arrivals, spec, start }]) => {
      const { admitted, steps } = simulate(spec, arrivals, 0, start)
      const used = new Map<number, number>()
      for (const step of steps) {
        const window = Math.floor(step.now / spec.window)
        const count = used.get(window) ?? 0
        assert.strictEqual(step.decision.allowed, count + step.cost <= spec.limit)
        if (step.decision.allowed) used.set(window, count + step.cost)
      }
      for (const a of admitted) {
        assert.isAtMost(unitsIn(admitted, a.at - spec.window, a.at), 2 * spec.limit)
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "the fixed window keeps the limit per window in wait mode too",
    [scenarioArb(specArb("FixedWindow"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      const { admitted } = simulate(spec, arrivals, maxDelay, start)
      const used = new Map<number, number>()
      for (const a of admitted) {
        const window = Math.floor(a.at / spec.window)
        used.set(window, (used.get(window) ?? 0) + a.cost)
        assert.isAtMost(used.get(window) ?? 0, spec.limit)
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "GCRA matches the theoretical arrival times of virtual scheduling",
    [scenarioArb(specArb("Gcra"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      if (spec._tag !== "Gcra") return
      // Reference model in exact rationals: time in BigInt ticks of 1/limit ms, T = window ticks per unit.
      const L = BigInt(spec.limit)
      const T = BigInt(spec.window)
      const tau = BigInt(spec.burst) * T
      let tat = 0n
      let seen = false
      const { steps } = simulate(spec, arrivals, maxDelay, start)
      for (const step of steps) {
        const t = BigInt(step.now) * L
        const base = seen && tat > t ? tat : t
        const next = base + BigInt(step.cost) * T
        // Conforming at time x (ticks) iff next − tau ≤ x; the earliest whole millisecond is ceil((next − tau) / L).
        const earliest = next - tau <= t ? step.now : Number((next - tau + L - 1n) / L)
        const wait = earliest - step.now
        assert.strictEqual(step.decision.allowed, wait <= maxDelay, `at ${step.now}`)
        if (step.decision.allowed) {
          assert.strictEqual(step.decision.delay, wait)
          // A delayed call arrives at the whole millisecond it is admitted.
          const arrival = BigInt(earliest) * L
          tat = (base > arrival ? base : arrival) + BigInt(step.cost) * T
          seen = true
        } else {
          assert.strictEqual(step.decision.retryAfter, wait)
        }
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "GCRA and the token bucket, two formulations of one limit, decide identically",
    [scenarioArb(specArb("Gcra"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      if (spec._tag !== "Gcra") return
      const gcra = simulate(spec, arrivals, maxDelay, start)
      const bucket = simulate({ ...spec, _tag: "TokenBucket" }, arrivals, maxDelay, start)
      // The reservations differ by design: a bucket's is the admission time, GCRA's the arrival time it moved to.
      const withoutReservation = ({ reservation: _, ...decision }: Decision) => decision
      assert.deepStrictEqual(
        gcra.steps.map((s) => withoutReservation(s.decision)),
        bucket.steps.map((s) => withoutReservation(s.decision))
      )
    },
    { fastCheck: runs }
  )

  it.prop(
    "the leaky bucket releases calls at a constant rate: one unit per window / limit, first come first served",
    [scenarioArb(specArb("LeakyBucket"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      const { steps } = simulate(spec, arrivals, maxDelay, start)
      // In ticks of 1/limit ms: each call leaves at the first whole millisecond after the previous ones drained.
      let drained = -Infinity
      let previous: { leftAt: number; cost: number } | undefined = undefined
      for (const step of steps) {
        if (!step.decision.allowed) continue
        const t = step.now * spec.limit
        const leftAt = step.now + Math.ceil((Math.max(t, drained) - t) / spec.limit)
        assert.strictEqual(step.now + step.decision.delay, leftAt)
        if (previous !== undefined) {
          // never closer than the previous call's c·T
          assert.isAtLeast((leftAt - previous.leftAt) * spec.limit, previous.cost * spec.window)
        }
        drained = leftAt * spec.limit + step.cost * spec.window
        previous = { leftAt, cost: step.cost }
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "the sliding window counter never admits more than the limit per aligned window",
    [scenarioArb(specArb("SlidingWindowCounter"))],
    ([{ arrivals, maxDelay, spec, start }]) => {
      const { admitted } = simulate(spec, arrivals, maxDelay, start)
      const used = new Map<number, number>()
      for (const a of admitted) {
        const window = Math.floor(a.at / spec.window)
        used.set(window, (used.get(window) ?? 0) + a.cost)
        assert.isAtMost(used.get(window) ?? 0, spec.limit)
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "a rejection's retryAfter is exact: the call passes then, and not a millisecond earlier",
    [scenarioArb(anySpecArb)],
    ([{ arrivals, spec, start }]) => {
      const { steps } = simulate(spec, arrivals, 0, start)
      for (const step of steps) {
        if (step.decision.allowed) continue
        const retryAt = step.now + step.decision.retryAfter
        assert.isTrue(step.before(retryAt, step.cost, 0)[0].allowed, `${spec._tag} passes at retryAfter`)
        assert.isFalse(step.before(retryAt - 1, step.cost, 0)[0].allowed, `${spec._tag} not earlier`)
      }
    },
    { fastCheck: runs }
  )

  it.prop(
    "a state past its reset decides like no state at all (so stores may evict or expire it)",
    [scenarioArb(anySpecArb), FastCheck.integer({ min: 0, max: 5_000 }), FastCheck.integer({ min: 1, max: 8 })],
    ([{ arrivals, maxDelay, spec, start }, later, cost]) => {
      const run = runnerFor(spec)
      const { steps } = run.simulate(arrivals, maxDelay, start)
      const last = [...steps].reverse().find((step) => step.changed)
      if (last === undefined) return
      const at = last.now + last.decision.reset + later
      const c = Math.min(cost, Algorithms.quotaOf(spec))
      const [fromState, next] = last.after(at, c, maxDelay)
      const [fromNothing, nextFromNothing] = run.fresh(at, c, maxDelay)
      assert.deepStrictEqual(fromState, fromNothing)
      assert.deepStrictEqual(next(at + 1, c, maxDelay)[0], nextFromNothing(at + 1, c, maxDelay)[0])
    },
    { fastCheck: runs }
  )

  it.prop(
    "rejections take nothing and decisions report sane numbers",
    [scenarioArb(anySpecArb)],
    ([{ arrivals, maxDelay, spec, start }]) => {
      const quota = Algorithms.quotaOf(spec)
      for (const step of simulate(spec, arrivals, maxDelay, start).steps) {
        const d = step.decision
        if (!d.allowed) {
          // Nothing is taken (the log may drop expired entries, which changes no decision).
          if (spec._tag !== "SlidingWindowLog") assert.isFalse(step.changed)
          assert.deepStrictEqual(step.after(step.now, step.cost, maxDelay)[0], d)
          // Over the maximum wait, except for a leaky bucket refusing a call because it is full, and a counter
          // whose free slot lies beyond the next window (it only reserves into the current or next one).
          const bounded = spec._tag === "LeakyBucket" || spec._tag === "SlidingWindowCounter"
          assert.isAtLeast(d.retryAfter, bounded ? 1 : maxDelay + 1)
        } else {
          assert.strictEqual(d.retryAfter, 0)
          assert.isAtMost(d.delay, maxDelay)
          assert.isAtLeast(d.reset, 1)
        }
        for (const n of [d.delay, d.remaining, d.reset, d.retryAfter]) assert.isTrue(Number.isInteger(n) && n >= 0)
        assert.isAtMost(d.remaining, quota)
      }
    },
    { fastCheck: runs }
  )
})

// ---------------------------------------------------------------------------
// refunds: a waiter interrupted before its slot gives the slot back
// ---------------------------------------------------------------------------

/** An algorithm with its state kept to itself. */
interface Machine {
  readonly decide: (now: number, cost: number, maxDelay: number) => Decision
  readonly refund: (now: number, cost: number, reservation: Reservation) => boolean
}

const machine = <S>(
  decide: Decide<S>,
  refund: (state: S | undefined, now: number, cost: number, reservation: Reservation) => S | undefined
): Machine => {
  let state: S | undefined = undefined
  return {
    decide: (now, cost, maxDelay) => {
      const [decision, next] = decide(state, now, cost, maxDelay)
      state = next
      return decision
    },
    refund: (now, cost, reservation) => {
      const next = refund(state, now, cost, reservation)
      const changed = next !== state
      state = next
      return changed
    }
  }
}

const machineFor = (spec: Spec): Machine => {
  switch (spec._tag) {
    case "TokenBucket":
      return machine<Algorithms.TokenBucketState>(
        (s, now, c, m) => Algorithms.tokenBucket(s, now, c, spec, m),
        (s, now, c, r) => Algorithms.refundTokenBucket(s, now, c, spec, r)
      )
    case "FixedWindow":
      return machine<Algorithms.FixedWindowState>(
        (s, now, c, m) => Algorithms.fixedWindow(s, now, c, spec, m),
        (s, now, c, r) => Algorithms.refundFixedWindow(s, now, c, spec, r)
      )
    case "SlidingWindowLog":
      return machine<LogState>(
        (s, now, c, m) => Algorithms.slidingWindowLog(s, now, c, spec, m),
        (s, now, c, r) => Algorithms.refundSlidingWindowLog(s, now, c, spec, r)
      )
    case "SlidingWindowCounter":
      return machine<Algorithms.CounterState>(
        (s, now, c, m) => Algorithms.slidingWindowCounter(s, now, c, spec, m),
        (s, now, c, r) => Algorithms.refundSlidingWindowCounter(s, now, c, spec, r)
      )
    case "LeakyBucket":
      return machine<TatState>(
        (s, now, c, m) => Algorithms.leakyBucket(s, now, c, spec, m),
        (s, now, c, r) => Algorithms.refundTat(s, now, c, spec, r)
      )
    case "Gcra":
      return machine<TatState>(
        (s, now, c, m) => Algorithms.gcra(s, now, c, spec, m),
        (s, now, c, r) => Algorithms.refundTat(s, now, c, spec, r)
      )
  }
}

/** Arrivals, some of which give up `cancelAfter` ms into their wait (before their slot) and are refunded then. */
const simulateWithRefunds = (
  spec: Spec,
  arrivals: ReadonlyArray<Arrival & { readonly cancelAfter: number | undefined }>,
  maxDelay: number,
  start: number
) => {
  const m = machineFor(spec)
  const due: Array<{ readonly at: number; readonly cost: number; readonly reservation: Reservation }> = []
  const admitted: Array<{ at: number; cost: number }> = []
  let refunded = 0
  const settle = (until: number) => {
    due.sort((a, b) => a.at - b.at)
    for (let next = due[0]; next !== undefined && next.at <= until; next = due[0]) {
      due.shift()
      if (m.refund(next.at, next.cost, next.reservation)) refunded++
    }
  }
  let now = start
  for (const arrival of arrivals) {
    now += arrival.gap
    settle(now)
    const decision = m.decide(now, arrival.cost, maxDelay)
    if (!decision.allowed) continue
    assert.strictEqual(decision.reservation !== undefined, decision.delay > 0, "a reservation exactly when delayed")
    if (
      decision.reservation !== undefined && arrival.cancelAfter !== undefined && arrival.cancelAfter < decision.delay
    ) {
      due.push({ at: now + arrival.cancelAfter, cost: arrival.cost, reservation: decision.reservation })
    } else {
      admitted.push({ at: now + decision.delay, cost: arrival.cost })
    }
  }
  return { admitted: admitted.sort((a, b) => a.at - b.at), refunded }
}

const refundScenarioArb = anySpecArb.chain((spec) =>
  FastCheck.record({
    spec: FastCheck.constant(spec),
    arrivals: FastCheck.array(
      FastCheck.record({
        gap: FastCheck.oneof(
          FastCheck.constant(0),
          FastCheck.integer({ min: 0, max: Math.max(1, Math.ceil(spec.window / 4)) }),
          FastCheck.integer({ min: 0, max: spec.window * 2 })
        ),
        cost: FastCheck.integer({ min: 1, max: Algorithms.quotaOf(spec) }),
        cancelAfter: FastCheck.option(FastCheck.integer({ min: 0, max: spec.window * 3 }), { nil: undefined })
      }),
      { maxLength: 60 }
    ),
    maxDelay: FastCheck.integer({ min: 1, max: spec.window * 4 }),
    start: FastCheck.integer({ min: 0, max: 1_000_000 })
  })
)

/** Each algorithm's guarantee over the calls actually admitted. */
const assertGuarantee = (spec: Spec, admitted: ReadonlyArray<{ at: number; cost: number }>) => {
  switch (spec._tag) {
    case "SlidingWindowLog":
      for (const a of admitted) assert.isAtMost(unitsIn(admitted, a.at - spec.window, a.at), spec.limit)
      return
    case "FixedWindow":
    case "SlidingWindowCounter": {
      const used = new Map<number, number>()
      for (const a of admitted) {
        const window = Math.floor(a.at / spec.window)
        used.set(window, (used.get(window) ?? 0) + a.cost)
        assert.isAtMost(used.get(window) ?? 0, spec.limit, `window ${window}`)
      }
      return
    }
    case "TokenBucket":
    case "Gcra":
      for (let i = 0; i < admitted.length; i++) {
        let units = 0
        for (let j = i; j < admitted.length; j++) {
          const from = admitted[i]
          const to = admitted[j]
          if (from === undefined || to === undefined) continue
          units += to.cost
          assert.isAtMost(units * spec.window, spec.burst * spec.window + spec.limit * (to.at - from.at))
        }
      }
      return
    case "LeakyBucket":
      for (let i = 1; i < admitted.length; i++) {
        const previous = admitted[i - 1]
        const current = admitted[i]
        if (previous === undefined || current === undefined) continue
        assert.isAtLeast((current.at - previous.at) * spec.limit, previous.cost * spec.window)
      }
      return
  }
}

describe("refunds", () => {
  it.prop(
    "keep every algorithm's guarantee over the calls actually admitted",
    [refundScenarioArb],
    ([{ arrivals, maxDelay, spec, start }]) => {
      const { admitted } = simulateWithRefunds(spec, arrivals, maxDelay, start)
      assertGuarantee(spec, admitted)
    },
    { fastCheck: { numRuns: 1_000 } }
  )

  it.prop(
    "give nothing when nothing was reserved, and never turn a state into something else",
    [refundScenarioArb],
    ([{ arrivals, maxDelay, spec, start }]) => {
      // A reservation from an unrelated time changes nothing.
      const m = machineFor(spec)
      let now = start
      for (const arrival of arrivals) {
        now += arrival.gap
        m.decide(now, arrival.cost, maxDelay)
        assert.isFalse(m.refund(now, arrival.cost, { at: now + 10 * spec.window + 7, frac: 1 }))
      }
    },
    { fastCheck: runs }
  )

  // Specs where, after a first call at 0 (the whole quota, but one unit for the shaper), two more calls of
  // cost 1 both wait for later slots.
  const fill = (spec: Spec) => (spec._tag === "LeakyBucket" ? 1 : Algorithms.quotaOf(spec))
  const specs: ReadonlyArray<readonly [string, Spec]> = [
    ["token bucket", { _tag: "TokenBucket", limit: 1, window: 1_000, burst: 1 }],
    ["fixed window", { _tag: "FixedWindow", limit: 1, window: 1_000 }],
    ["sliding window log", { _tag: "SlidingWindowLog", limit: 1, window: 1_000 }],
    ["sliding window counter", { _tag: "SlidingWindowCounter", limit: 4, window: 1_000 }],
    ["GCRA", { _tag: "Gcra", limit: 1, window: 1_000, burst: 1 }],
    ["leaky bucket", { _tag: "LeakyBucket", limit: 1, window: 1_000, capacity: 3 }]
  ]

  for (const [label, spec] of specs) {
    it(`${label}: the latest waiter's slot goes to the next caller`, () => {
      const m = machineFor(spec)
      assert.isTrue(m.decide(0, fill(spec), 5_000).allowed)
      const waiter = m.decide(0, 1, 5_000)
      assert.isAbove(waiter.delay, 400)
      if (waiter.reservation === undefined) return assert.fail("a delayed decision carries its reservation")
      assert.isTrue(m.refund(400, 1, waiter.reservation))
      assert.strictEqual(m.decide(400, 1, 5_000).delay, waiter.delay - 400, "the next caller takes the slot")
      assert.isAbove(m.decide(400, 1, 5_000).delay, waiter.delay - 400, "the one after it the slot after")
    })
  }

  it("a reservation behind a later one is given back only where that is sound", () => {
    const given = specs.map(([label, spec]) => {
      const m = machineFor(spec)
      m.decide(0, fill(spec), 5_000)
      const first = m.decide(0, 1, 5_000)
      const second = m.decide(0, 1, 5_000)
      assert.isTrue(first.delay > 0 && second.delay > first.delay, `${label}: two waiters, one after the other`)
      if (first.reservation === undefined) return assert.fail(`${label}: a delayed decision`)
      return [label, m.refund(100, 1, first.reservation)] as const
    })
    assert.deepStrictEqual(Object.fromEntries(given), {
      "token bucket": false,
      "fixed window": false,
      "sliding window log": true,
      "sliding window counter": true,
      "GCRA": false,
      "leaky bucket": false
    })
  })

  it("the token bucket gives back a reservation sharing its instant with a later one", () => {
    // 5 units per 2 ms: a wait of one whole millisecond refills more than one call needs.
    const m = machineFor({ _tag: "TokenBucket", limit: 5, window: 2, burst: 2 })
    m.decide(0, 2, 5_000)
    const first = m.decide(0, 1, 5_000)
    const second = m.decide(0, 1, 5_000)
    assert.deepStrictEqual([first.delay, second.delay], [1, 1])
    if (first.reservation === undefined) return assert.fail("a delayed decision")
    assert.isTrue(m.refund(0, 1, first.reservation))
    assert.strictEqual(m.decide(0, 1, 5_000).delay, 1)
    assert.strictEqual(m.decide(0, 1, 5_000).delay, 2)
  })

  it("the sliding log takes a waiter's units out even behind a later waiter", () => {
    const m = machineFor({ _tag: "SlidingWindowLog", limit: 2, window: 1_000 })
    m.decide(0, 1, 5_000)
    m.decide(500, 1, 5_000)
    const first = m.decide(500, 1, 5_000)
    const second = m.decide(500, 1, 5_000)
    assert.deepStrictEqual([first.delay, second.delay], [500, 1_000])
    if (first.reservation === undefined) return assert.fail("a delayed decision")
    assert.isTrue(m.refund(600, 1, first.reservation))
    // Without the refund the window (500, 1500] would hold both waiters, and this call would wait until 2 s.
    assert.strictEqual(m.decide(600, 1, 5_000).delay, 900)
  })
})
