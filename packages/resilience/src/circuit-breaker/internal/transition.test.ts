import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as fc from "fast-check"
import type { TripStrategy } from "../CircuitBreaker.js"
import {
  ACQUIRE,
  initial,
  type MachineEvent,
  type MachineState,
  OBSERVE,
  outcomeOf,
  quickPermit,
  quickRecord,
  type Settings,
  type Signal,
  transition
} from "./transition.js"
import * as trip from "./trip.js"

const windowsOf = (...strategies: ReadonlyArray<TripStrategy>) =>
  strategies.map((strategy) => Either.getOrThrow(strategy.initial))

const base: Settings = {
  windows: windowsOf(trip.consecutiveFailures(2)),
  // The n-th consecutive opening lasts n seconds, so tests can see the backoff.
  openDurationMillis: (opening) => opening * 1000,
  forcedOpenRetryAfterMillis: 1000,
  permits: 2,
  closeAfter: 2,
  failureLimit: 1,
  slowProbeFails: false,
  halfOpenMaxMillis: Infinity
}

const ok = (epoch: number, durationMillis = 10): Signal => ({
  _tag: "Record",
  epoch,
  call: { failure: false, slow: false, durationMillis }
})
const fail = (epoch: number): Signal => ({
  _tag: "Record",
  epoch,
  call: { failure: true, slow: false, durationMillis: 10 }
})
const slowOk = (epoch: number): Signal => ({
  _tag: "Record",
  epoch,
  call: { failure: false, slow: true, durationMillis: 5000 }
})
const release = (epoch: number): Signal => ({ _tag: "Release", epoch, durationMillis: 10 })

/** Runs signals in order at one instant and returns the last state. */
const drive = (state: MachineState, signals: ReadonlyArray<Signal>, now = 0, settings = base): MachineState =>
  signals.reduce((current, signal) => transition(current, signal, now, settings)[0], state)

const closed = initial("Closed", base)
/** Open since t = 0 for the first time: half-opens at t = 1000, epoch 1. */
const open = drive(closed, [fail(0), fail(0)])
/** Half-open at t = 1000 with no permit issued, epoch 2. */
const halfOpen = drive(open, [OBSERVE], 1000)

const tags = (events: ReadonlyArray<MachineEvent>) => events.map((event) => event._tag)

interface Row {
  readonly name: string
  readonly from: MachineState
  readonly signal: Signal
  readonly now?: number
  readonly settings?: Settings
  readonly to: MachineState["_tag"]
  readonly events: ReadonlyArray<MachineEvent["_tag"]>
  readonly check?: (next: MachineState, events: ReadonlyArray<MachineEvent>) => void
}

const runTable = (rows: ReadonlyArray<Row>) => {
  for (const row of rows) {
    it(row.name, () => {
      const [next, events] = transition(row.from, row.signal, row.now ?? 0, row.settings ?? base)
      assert.strictEqual(next._tag, row.to)
      assert.deepStrictEqual(tags(events), row.events)
      row.check?.(next, events)
    })
  }
}

describe("Closed", () => {
  runTable([
    {
      name: "permits a call with the current epoch",
      from: closed,
      signal: ACQUIRE,
      to: "Closed",
      events: ["Permitted"],
      check: (_, events) => assert.deepStrictEqual(events[0], { _tag: "Permitted", epoch: 0 })
    },
    {
      name: "stays closed below the trip threshold",
      from: closed,
      signal: fail(0),
      to: "Closed",
      events: ["Recorded"],
      check: (_, events) => assert.deepInclude(events[0], { outcome: "failure" })
    },
    {
      name: "opens when a strategy fires, saying which strategy and what it saw",
      from: drive(closed, [fail(0)]),
      signal: fail(0),
      now: 500,
      to: "Open",
      events: ["Recorded", "Transitioned"],
      check: (next, events) => {
        assert.deepInclude(next, { _tag: "Open", epoch: 1, openings: 1, halfOpenAt: 1500 })
        const event = events[1]
        assert(event?._tag === "Transitioned" && event.reason._tag === "Tripped")
        assert.strictEqual(event.reason.trip.strategy, "consecutive-failures")
        assert.strictEqual(event.reason.trip.observed, 2)
      }
    },
    {
      name: "a call that changes no window leaves the very same state (nothing to copy on the happy path)",
      from: closed,
      signal: ok(0),
      to: "Closed",
      events: ["Recorded"],
      check: (next) => assert.strictEqual(next, closed)
    },
    {
      name: "a call that changes a window makes a new state and leaves the old one untouched",
      from: closed,
      signal: fail(0),
      to: "Closed",
      events: ["Recorded"],
      check: (next) => {
        assert.notStrictEqual(next, closed)
        // The old state still counts no failure: one more failure from it does not open.
        assert.strictEqual(transition(closed, fail(0), 0, base)[0]._tag, "Closed")
        assert.strictEqual(transition(next, fail(0), 0, base)[0]._tag, "Open")
      }
    },
    {
      name: "a success resets the consecutive count",
      from: drive(closed, [fail(0), ok(0)]),
      signal: fail(0),
      to: "Closed",
      events: ["Recorded"]
    },
    {
      name: "an ignored call neither counts nor resets the count",
      from: drive(closed, [fail(0), release(0)]),
      signal: fail(0),
      to: "Open",
      events: ["Recorded", "Transitioned"]
    },
    {
      name: "reports an ignored call as such",
      from: closed,
      signal: release(0),
      to: "Closed",
      events: ["Recorded"],
      check: (_, events) => assert.deepInclude(events[0], { outcome: "ignored" })
    },
    {
      name: "an outcome from an older epoch is reported but not counted",
      from: drive(closed, [{ _tag: "Reset" }, fail(1)]),
      signal: fail(0),
      to: "Closed",
      events: ["Recorded"]
    },
    {
      name: "a state read changes nothing",
      from: closed,
      signal: OBSERVE,
      to: "Closed",
      events: []
    }
  ])
})

describe("Open", () => {
  runTable([
    {
      name: "rejects a call with the time left until it half-opens",
      from: open,
      signal: ACQUIRE,
      now: 400,
      to: "Open",
      events: ["Rejected"],
      check: (_, events) =>
        assert.deepStrictEqual(events[0], { _tag: "Rejected", state: "Open", retryAfterMillis: 600 })
    },
    {
      name: "half-opens on the first call once the open duration has elapsed, giving it the first probe permit",
      from: open,
      signal: ACQUIRE,
      now: 1000,
      to: "HalfOpen",
      events: ["Transitioned", "Permitted"],
      check: (next, events) => {
        assert.deepInclude(next, { _tag: "HalfOpen", epoch: 2, issued: 1 })
        assert.deepStrictEqual(events[1], { _tag: "Permitted", epoch: 2 })
      }
    },
    {
      name: "half-opens on a state read once the open duration has elapsed, without taking a permit",
      from: open,
      signal: OBSERVE,
      now: 1000,
      to: "HalfOpen",
      events: ["Transitioned"],
      check: (next) => assert.deepInclude(next, { issued: 0 })
    },
    {
      name: "a state read before the open duration changes nothing",
      from: open,
      signal: OBSERVE,
      now: 999,
      to: "Open",
      events: []
    },
    {
      name: "reports a straggler's failure without extending the open period",
      from: open,
      signal: fail(0),
      now: 500,
      to: "Open",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { halfOpenAt: 1000 })
    }
  ])
})

describe("HalfOpen with a time limit", () => {
  const limited: Settings = { ...base, halfOpenMaxMillis: 500 }
  /** Half-open from t = 1000 to t = 1500, one probe out. */
  const probing = drive(drive(closed, [fail(0), fail(0)], 0, limited), [ACQUIRE], 1000, limited)
  runTable([
    {
      name: "keeps issuing probes until the limit runs out",
      from: probing,
      signal: ACQUIRE,
      now: 1499,
      settings: limited,
      to: "HalfOpen",
      events: ["Permitted"],
      check: (next) => assert.deepInclude(next, { expiresAt: 1500 })
    },
    {
      name: "opens again, as the next opening, on the first call once the limit has run out, and rejects it",
      from: probing,
      signal: ACQUIRE,
      now: 1500,
      settings: limited,
      to: "Open",
      events: ["Transitioned", "Rejected"],
      check: (next, events) => {
        // The second opening lasts 2 s: half-opens again at 3500.
        assert.deepInclude(next, { epoch: 3, openings: 2, halfOpenAt: 3500 })
        const event = events[0]
        assert(event?._tag === "Transitioned" && event.reason._tag === "ProbesTimedOut")
        assert.deepStrictEqual(event.reason, {
          _tag: "ProbesTimedOut",
          successes: 0,
          failures: 0,
          waited: Duration.millis(500),
          openFor: Duration.seconds(2)
        })
        assert.deepStrictEqual(events[1], { _tag: "Rejected", state: "Open", retryAfterMillis: 2000 })
      }
    },
    {
      name: "a probe that ends after the limit only reports its outcome: the breaker opens first",
      from: probing,
      signal: ok(2),
      now: 2000,
      settings: limited,
      to: "Open",
      events: ["Transitioned", "Recorded"]
    },
    {
      name: "a state read after the limit opens it",
      from: probing,
      signal: OBSERVE,
      now: 1500,
      settings: limited,
      to: "Open",
      events: ["Transitioned"]
    },
    {
      name: "without a limit, a probe may take as long as it takes",
      from: drive(halfOpen, [ACQUIRE], 1000),
      signal: ok(2),
      now: 1_000_000,
      to: "HalfOpen",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { successes: 1, expiresAt: Infinity })
    }
  ])
})

describe("HalfOpen", () => {
  const oneProbeOut = drive(halfOpen, [ACQUIRE], 1000)
  const allProbesOut = drive(halfOpen, [ACQUIRE, ACQUIRE], 1000)
  runTable([
    {
      name: "issues a probe permit while permits are left",
      from: oneProbeOut,
      signal: ACQUIRE,
      now: 1000,
      to: "HalfOpen",
      events: ["Permitted"],
      check: (next) => assert.deepInclude(next, { issued: 2 })
    },
    {
      name: "rejects calls beyond the permits with retryAfter zero",
      from: allProbesOut,
      signal: ACQUIRE,
      now: 1000,
      to: "HalfOpen",
      events: ["Rejected"],
      check: (_, events) =>
        assert.deepStrictEqual(events[0], { _tag: "Rejected", state: "HalfOpen", retryAfterMillis: 0 })
    },
    {
      name: "stays half-open after a success below closeAfter",
      from: allProbesOut,
      signal: ok(2),
      now: 1000,
      to: "HalfOpen",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { successes: 1, issued: 2 })
    },
    {
      name: "closes after closeAfter successful probes, with empty windows and openings forgotten",
      from: drive(allProbesOut, [ok(2)], 1000),
      signal: ok(2),
      now: 1000,
      to: "Closed",
      events: ["Recorded", "Transitioned"],
      check: (next, events) => {
        assert.deepInclude(next, { epoch: 3, openings: 0, windows: base.windows })
        const event = events[1]
        assert(event?._tag === "Transitioned")
        assert.deepStrictEqual(event.reason, { _tag: "ProbesSucceeded", successes: 2 })
      }
    },
    {
      name: "reopens on a failed probe with the next open duration of the schedule",
      from: allProbesOut,
      signal: fail(2),
      now: 1000,
      to: "Open",
      events: ["Recorded", "Transitioned"],
      check: (next) => assert.deepInclude(next, { openings: 2, halfOpenAt: 3000 })
    },
    {
      name: "with a failure limit, tolerates failed probes below it",
      from: drive(halfOpen, [ACQUIRE, ACQUIRE, ACQUIRE], 1000, { ...base, permits: 4, failureLimit: 2 }),
      signal: fail(2),
      now: 1000,
      settings: { ...base, permits: 4, failureLimit: 2 },
      to: "HalfOpen",
      events: ["Recorded"]
    },
    {
      name: "reopens when every permit ended without closeAfter successes",
      from: drive(halfOpen, [ACQUIRE, ACQUIRE, ACQUIRE, ok(2), fail(2)], 1000, {
        ...base,
        permits: 3,
        closeAfter: 3,
        failureLimit: 2
      }),
      signal: ok(2),
      now: 1000,
      settings: { ...base, permits: 3, closeAfter: 3, failureLimit: 2 },
      to: "Open",
      events: ["Recorded", "Transitioned"],
      check: (_, events) => {
        const event = events[1]
        assert(event?._tag === "Transitioned")
        assert.deepInclude(event.reason, { _tag: "ProbesFailed", successes: 2, failures: 1 })
      }
    },
    {
      name: "an ignored or interrupted probe hands its permit back",
      from: allProbesOut,
      signal: release(2),
      now: 1000,
      to: "HalfOpen",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { issued: 1, successes: 0, failures: 0 })
    },
    {
      name: "a slow successful probe counts as failed when slow calls can trip the breaker",
      from: allProbesOut,
      signal: slowOk(2),
      now: 1000,
      settings: { ...base, slowProbeFails: true },
      to: "Open",
      events: ["Recorded", "Transitioned"],
      check: (_, events) => assert.deepInclude(events[0], { outcome: "slow_success" })
    },
    {
      name: "a slow successful probe is a success otherwise",
      from: allProbesOut,
      signal: slowOk(2),
      now: 1000,
      to: "HalfOpen",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { successes: 1 })
    },
    {
      name: "a straggler from before the opening neither uses a slot nor closes it",
      from: allProbesOut,
      signal: ok(0),
      now: 1000,
      to: "HalfOpen",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { issued: 2, successes: 0 })
    },
    {
      name: "a straggler's release returns no permit",
      from: allProbesOut,
      signal: release(1),
      now: 1000,
      to: "HalfOpen",
      events: ["Recorded"],
      check: (next) => assert.deepInclude(next, { issued: 2 })
    }
  ])
})

describe("ForcedOpen", () => {
  const forced = drive(closed, [{ _tag: "ForceOpen" }])
  runTable([
    {
      name: "rejects every call with the base open duration as the hint",
      from: forced,
      signal: ACQUIRE,
      now: 1_000_000,
      to: "ForcedOpen",
      events: ["Rejected"],
      check: (_, events) =>
        assert.deepStrictEqual(events[0], { _tag: "Rejected", state: "ForcedOpen", retryAfterMillis: 1000 })
    },
    {
      name: "never half-opens by itself",
      from: forced,
      signal: OBSERVE,
      now: 1_000_000,
      to: "ForcedOpen",
      events: []
    },
    {
      name: "is left by an operator closing it",
      from: forced,
      signal: { _tag: "Close" },
      to: "Closed",
      events: ["Transitioned"],
      check: (next) => assert.deepInclude(next, { openings: 0 })
    }
  ])
})

describe("Disabled", () => {
  const disabled = drive(closed, [{ _tag: "Disable" }])
  runTable([
    {
      name: "permits every call",
      from: disabled,
      signal: ACQUIRE,
      to: "Disabled",
      events: ["Permitted"]
    },
    {
      name: "reports failures but never opens",
      from: drive(disabled, [fail(1), fail(1), fail(1)]),
      signal: fail(1),
      to: "Disabled",
      events: ["Recorded"]
    }
  ])
})

describe("MetricsOnly", () => {
  const shadow = initial("MetricsOnly", base)
  runTable([
    {
      name: "permits every call",
      from: shadow,
      signal: ACQUIRE,
      to: "MetricsOnly",
      events: ["Permitted"]
    },
    {
      name: "reports a firing strategy instead of opening and starts its windows again",
      from: drive(shadow, [fail(0)]),
      signal: fail(0),
      to: "MetricsOnly",
      events: ["Recorded", "ThresholdExceeded"],
      check: (next) => assert.deepInclude(next, { windows: base.windows })
    }
  ])
})

describe("operator signals", () => {
  runTable([
    {
      name: "force open from closed starts a new epoch",
      from: closed,
      signal: { _tag: "ForceOpen" },
      to: "ForcedOpen",
      events: ["Transitioned"],
      check: (next, events) => {
        assert.strictEqual(next.epoch, 1)
        assert(events[0]?._tag === "Transitioned")
        assert.deepStrictEqual(events[0].reason, { _tag: "Manual" })
      }
    },
    {
      name: "a signal for the current state is a no-op",
      from: closed,
      signal: { _tag: "Close" },
      to: "Closed",
      events: [],
      check: (next) => assert.strictEqual(next, closed)
    },
    {
      name: "reset from open closes, forgets openings and reports both",
      from: open,
      signal: { _tag: "Reset" },
      to: "Closed",
      events: ["Transitioned", "Reset"],
      check: (next) => assert.deepInclude(next, { openings: 0, windows: base.windows })
    },
    {
      name: "reset when closed empties the windows and reports a reset only",
      from: drive(closed, [fail(0)]),
      signal: { _tag: "Reset" },
      to: "Closed",
      events: ["Reset"],
      check: (next) => assert.deepInclude(next, { windows: base.windows })
    },
    {
      name: "metrics-only from open starts counting with empty windows",
      from: open,
      signal: { _tag: "MetricsOnly" },
      to: "MetricsOnly",
      events: ["Transitioned"]
    },
    {
      name: "disable from half-open",
      from: halfOpen,
      signal: { _tag: "Disable" },
      to: "Disabled",
      events: ["Transitioned"]
    }
  ])
})

describe("happy-path shortcuts", () => {
  type Command =
    | { readonly _tag: "Acquire" }
    | { readonly _tag: "Record"; readonly failure: boolean; readonly slow: boolean; readonly stale: boolean }
    | { readonly _tag: "Release"; readonly stale: boolean }
    | { readonly _tag: "Observe" }
    | { readonly _tag: "Advance"; readonly millis: number }
    | { readonly _tag: "Manual"; readonly signal: "ForceOpen" | "Close" | "Disable" | "MetricsOnly" | "Reset" }

  const command: fc.Arbitrary<Command> = fc.oneof(
    { weight: 4, arbitrary: fc.constant({ _tag: "Acquire" as const }) },
    {
      weight: 6,
      arbitrary: fc.record({
        _tag: fc.constant("Record" as const),
        failure: fc.boolean(),
        slow: fc.boolean(),
        stale: fc.boolean()
      })
    },
    { weight: 1, arbitrary: fc.record({ _tag: fc.constant("Release" as const), stale: fc.boolean() }) },
    { weight: 1, arbitrary: fc.constant({ _tag: "Observe" as const }) },
    {
      weight: 2,
      arbitrary: fc.record({ _tag: fc.constant("Advance" as const), millis: fc.integer({ min: 0, max: 1500 }) })
    },
    {
      weight: 1,
      arbitrary: fc.record({
        _tag: fc.constant("Manual" as const),
        signal: fc.constantFrom(
          "ForceOpen" as const,
          "Close" as const,
          "Disable" as const,
          "MetricsOnly" as const,
          "Reset" as const
        )
      })
    }
  )

  const settingsFor = (strategies: ReadonlyArray<TripStrategy>): Settings => ({
    ...base,
    windows: windowsOf(...strategies),
    slowProbeFails: strategies.some((strategy) => strategy.countsSlowCalls)
  })
  const settingsArbitrary = fc.constantFrom(
    settingsFor([trip.consecutiveFailures(2)]),
    settingsFor([trip.failureRate({ threshold: 50, window: { calls: 4 }, minimumCalls: 2 })]),
    settingsFor([trip.failureRate({ threshold: 50, window: { duration: "2 seconds", buckets: 4 }, minimumCalls: 2 })]),
    settingsFor([trip.consecutiveFailures(3), trip.slowCallRate({ threshold: 50, window: { calls: 3 } })]),
    { ...settingsFor([trip.consecutiveFailures(2)]), halfOpenMaxMillis: 700 }
  )

  /** What a window would answer now: windows hold closures, so states are compared by what they decide. */
  const verdicts = (state: MachineState, now: number) =>
    state._tag === "Closed" || state._tag === "MetricsOnly" ? state.windows.map((window) => window.check(now)) : []

  it("quickPermit and quickRecord answer only what transition does, and then exactly that", () =>
    fc.assert(
      fc.property(settingsArbitrary, fc.array(command, { minLength: 1, maxLength: 80 }), (settings, commands) => {
        let reference = initial("Closed", settings)
        let shortcut = reference
        let now = 0
        for (const command of commands) {
          if (command._tag === "Advance") {
            now += command.millis
            continue
          }
          const epoch = reference.epoch - (("stale" in command && command.stale) ? 1 : 0)
          const signal: Signal = command._tag === "Acquire"
            ? ACQUIRE
            : command._tag === "Record"
            ? { _tag: "Record", epoch, call: { failure: command.failure, slow: command.slow, durationMillis: 10 } }
            : command._tag === "Release"
            ? { _tag: "Release", epoch, durationMillis: 10 }
            : command._tag === "Observe"
            ? OBSERVE
            : { _tag: command.signal }
          const [expected, expectedEvents] = transition(reference, signal, now, settings)
          let next: MachineState
          let events: ReadonlyArray<MachineEvent>
          const permit = signal._tag === "Acquire" ? quickPermit(shortcut) : undefined
          const recorded = signal._tag === "Record"
            ? quickRecord(shortcut, signal.epoch, signal.call, now)
            : undefined
          if (permit !== undefined) {
            next = shortcut
            events = [{ _tag: "Permitted", epoch: permit }]
          } else if (recorded !== undefined && signal._tag === "Record") {
            next = recorded
            events = [{ _tag: "Recorded", outcome: outcomeOf(signal.call), durationMillis: signal.call.durationMillis }]
          } else {
            ;[next, events] = transition(shortcut, signal, now, settings)
          }
          assert.deepStrictEqual(events, expectedEvents)
          assert.deepStrictEqual(
            { tag: next._tag, epoch: next.epoch, openings: next.openings },
            { tag: expected._tag, epoch: expected.epoch, openings: expected.openings }
          )
          if (next._tag === "Open" && expected._tag === "Open") assert.strictEqual(next.halfOpenAt, expected.halfOpenAt)
          if (next._tag === "HalfOpen" && expected._tag === "HalfOpen") {
            assert.deepStrictEqual([next.issued, next.successes, next.failures], [
              expected.issued,
              expected.successes,
              expected.failures
            ])
          }
          for (const later of [now, now + 1000, now + 3000]) {
            assert.deepStrictEqual(verdicts(next, later), verdicts(expected, later))
          }
          // A shortcut that changes nothing keeps the very same state, as transition does.
          if (expected === reference) assert.strictEqual(next, shortcut)
          reference = expected
          shortcut = next
        }
      }),
      { numRuns: 300 }
    ))

  it("the permit shortcut answers for every state that permits without a change", () => {
    for (const state of ["Closed", "MetricsOnly", "Disabled"] as const) {
      const from = initial(state === "Disabled" ? "Disabled" : state, base)
      assert.strictEqual(quickPermit(from), from.epoch)
    }
    assert.isUndefined(quickPermit(open))
    assert.isUndefined(quickPermit(halfOpen))
  })
})

describe("fleet signals", () => {
  const forced = drive(closed, [{ _tag: "ForceOpen" }])
  const disabled = drive(closed, [{ _tag: "Disable" }])
  const shadow = drive(closed, [{ _tag: "MetricsOnly" }])
  const counting = drive(closed, [fail(0)])
  runTable([
    {
      name: "the fleet opening a closed breaker opens it until the fleet's deadline, as its next opening",
      from: drive(closed, [fail(0)]),
      signal: { _tag: "FleetOpen", until: 5_000 },
      now: 1_000,
      to: "Open",
      events: ["Transitioned"],
      check: (next, events) => {
        assert.deepInclude(next, { _tag: "Open", halfOpenAt: 5_000, epoch: 1, openings: 1 })
        assert(events[0]?._tag === "Transitioned")
        assert.deepStrictEqual(events[0].reason, { _tag: "FleetOpened", openFor: Duration.millis(4_000) })
      }
    },
    {
      name: "the fleet reopening a half-open breaker opens it again, its probes now of an old epoch",
      from: drive(halfOpen, [ACQUIRE], 1_000),
      signal: { _tag: "FleetOpen", until: 9_000 },
      now: 2_000,
      to: "Open",
      events: ["Transitioned"],
      check: (next) => {
        assert.deepInclude(next, { halfOpenAt: 9_000, epoch: 3, openings: 2 })
        // The probe admitted before changes nothing now.
        assert.strictEqual(transition(next, ok(2), 2_000, base)[0], next)
      }
    },
    {
      name: "a half-open fleet leaves a half-open breaker and its probes alone",
      from: halfOpen,
      signal: { _tag: "FleetOpen", until: 900 },
      now: 1_000,
      to: "HalfOpen",
      events: [],
      check: (next) => assert.strictEqual(next, halfOpen)
    },
    {
      name: "an open breaker takes the fleet's deadline quietly: the same opening, the same epoch",
      from: open,
      signal: { _tag: "FleetOpen", until: 3_000 },
      now: 500,
      to: "Open",
      events: [],
      check: (next) => assert.deepInclude(next, { halfOpenAt: 3_000, epoch: open.epoch, openings: open.openings })
    },
    {
      name: "the same deadline again changes nothing",
      from: open,
      signal: { _tag: "FleetOpen", until: 1_000 },
      to: "Open",
      events: [],
      check: (next) => assert.strictEqual(next, open)
    },
    {
      name: "a half-open fleet makes a closed breaker open and due to half-open at once",
      from: closed,
      signal: { _tag: "FleetOpen", until: 400 },
      now: 500,
      to: "Open",
      events: ["Transitioned"],
      check: (next) => {
        assert.deepInclude(next, { halfOpenAt: 400 })
        assert.strictEqual(transition(next, OBSERVE, 500, base)[0]._tag, "HalfOpen")
      }
    },
    {
      name: "the fleet closing an open breaker closes it with empty windows and no past openings",
      from: open,
      signal: { _tag: "FleetClose" },
      now: 500,
      to: "Closed",
      events: ["Transitioned"],
      check: (next, events) => {
        assert.deepInclude(next, { openings: 0, windows: base.windows, epoch: open.epoch + 1 })
        assert(events[0]?._tag === "Transitioned")
        assert.deepStrictEqual(events[0].reason, { _tag: "FleetClosed" })
      }
    },
    {
      name: "the fleet closing a half-open breaker closes it",
      from: halfOpen,
      signal: { _tag: "FleetClose" },
      to: "Closed",
      events: ["Transitioned"]
    },
    {
      name: "the fleet closing a closed breaker keeps its windows",
      from: counting,
      signal: { _tag: "FleetClose" },
      to: "Closed",
      events: [],
      check: (next) => assert.strictEqual(next, counting)
    },
    ...[forced, disabled, shadow].flatMap((state): ReadonlyArray<Row> => [
      {
        name: `the fleet opening never overrides an operator's ${state._tag}`,
        from: state,
        signal: { _tag: "FleetOpen", until: 5_000 },
        to: state._tag,
        events: [],
        check: (next) => assert.strictEqual(next, state)
      },
      {
        name: `the fleet closing never overrides an operator's ${state._tag}`,
        from: state,
        signal: { _tag: "FleetClose" },
        to: state._tag,
        events: [],
        check: (next) => assert.strictEqual(next, state)
      }
    ])
  ])
})
