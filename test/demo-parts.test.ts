import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Flags from "../examples/demo/Flags.js"
import type * as Invariants from "../examples/demo/Invariants.js"
import * as Ledger from "../examples/demo/Ledger.js"
import * as PromText from "../examples/demo/PromText.js"
import * as Report from "../examples/demo/Report.js"
import * as Scenario from "../examples/demo/Scenario.js"
import * as StatusLine from "../examples/demo/StatusLine.js"

const raw = (overrides: Partial<Flags.RawFlags> = {}): Flags.RawFlags => ({
  duration: Option.none(),
  rate: Option.none(),
  short: false,
  serve: false,
  port: Option.none(),
  verbose: false,
  ...overrides
})

const config = (overrides: Partial<Flags.RawFlags> = {}): Flags.DemoConfig =>
  Either.getOrThrow(Flags.resolveConfig(raw(overrides)))

describe("demo flags", () => {
  it("reads durations as 60s, 1500ms, 2m, a bare number of seconds, or Effect's spelling", () => {
    const millis = (text: string) => Either.map(Flags.parseDuration(text), Duration.toMillis)
    assert.deepStrictEqual(millis("60s"), Either.right(60_000))
    assert.deepStrictEqual(millis("1500ms"), Either.right(1_500))
    assert.deepStrictEqual(millis("2m"), Either.right(120_000))
    assert.deepStrictEqual(millis("45"), Either.right(45_000))
    assert.deepStrictEqual(millis("30 seconds"), Either.right(30_000))
    assert.isTrue(Either.isLeft(Flags.parseDuration("soon")))
  })

  it("defaults to a minute at 50 payments/s on a free port", () => {
    const resolved = config()
    assert.strictEqual(Duration.toMillis(resolved.duration), 60_000)
    assert.strictEqual(resolved.rate, 50)
    assert.strictEqual(resolved.port, 0)
    assert.strictEqual(Duration.toMillis(resolved.drainBound), 30_000)
  })

  it("--short shortens the run; explicit flags still win", () => {
    assert.strictEqual(Duration.toMillis(config({ short: true }).duration), 15_000)
    assert.strictEqual(config({ short: true }).rate, 25)
    assert.strictEqual(Duration.toMillis(config({ short: true, duration: Option.some("20s") }).duration), 20_000)
    assert.strictEqual(config({ short: true, rate: Option.some(10) }).rate, 10)
  })

  it("--serve listens on 3000 (the target in grafana/prometheus.yml) unless --port says otherwise", () => {
    assert.strictEqual(config({ serve: true }).port, 3000)
    assert.strictEqual(config({ serve: true, port: Option.some(4000) }).port, 4000)
  })

  it("rejects a run too short for the outage, a rate out of range, and a bad port, naming the flag", () => {
    const error = (overrides: Partial<Flags.RawFlags>) =>
      Either.match(Flags.resolveConfig(raw(overrides)), { onLeft: (e) => e.message, onRight: () => "accepted" })
    assert.match(error({ duration: Option.some("3s") }), /^--duration: .*outside 6s–1h/)
    assert.match(error({ rate: Option.some(0) }), /^--rate: /)
    assert.match(error({ rate: Option.some(10_000) }), /^--rate: /)
    assert.match(error({ port: Option.some(70_000) }), /^--port: /)
  })
})

describe("demo scenario", () => {
  it("lays out warm-up, outage, recovery and drain in proportion to the duration", () => {
    const line = Scenario.timeline(config({ short: true }))
    assert.deepStrictEqual(
      line.phases.map((phase) => [phase.name, phase.startMs, phase.endMs]),
      [["warm-up", 0, 4_500], ["outage", 4_500, 9_000], ["recovery", 9_000, 15_000], ["drain", 15_000, 35_000]]
    )
    assert.isTrue(line.phases[1].faults.outage)
    assert.isFalse(line.phases[2].faults.outage)
    assert.deepStrictEqual(line.phases[3].faults, Scenario.noFaults)
    assert.strictEqual(line.trafficEndMs, 15_000)
    const long = Scenario.timeline(config())
    assert.deepStrictEqual([long.phases[1].startMs, long.phases[1].endMs], [18_000, 36_000])
  })

  it("finds the phase of any moment", () => {
    const line = Scenario.timeline(config({ short: true }))
    assert.deepStrictEqual(
      [0, 4_499, 4_500, 8_999, 9_000, 14_999, 15_000, 99_000].map((ms) => Scenario.phaseAt(line, ms).name),
      ["warm-up", "warm-up", "outage", "outage", "recovery", "recovery", "drain", "drain"]
    )
  })

  it("keeps the gateway's latency fault small, so it never outlasts the service's gateway timeout", () => {
    for (const phase of Scenario.timeline(config()).phases) assert.isAtMost(phase.faults.latencyMs, 50)
  })

  it("has every kind of submission within the first 60 payments", () => {
    const plans = Array.from({ length: 60 }, (_, index) => Scenario.planFor(index))
    assert.isTrue(plans.some((plan) => plan.kind === "poison"))
    assert.isTrue(plans.some((plan) => plan.kind === "flaky"))
    assert.isTrue(plans.some((plan) => plan.kind === "invalid"))
    assert.isTrue(plans.some((plan) => plan.copies > 1))
    assert.isTrue(plans.some((plan) => plan.resend))
    assert.isTrue(plans.some((plan) => plan.mismatch))
    assert.isAbove(plans.filter((plan) => plan.kind === "normal" && plan.copies === 1).length, 40)
  })

  it("names poison customers poison-n, gives invalid payments a negative amount, and alters only the amount", () => {
    const poison = Scenario.bodyFor(7, Scenario.planFor(7))
    assert.strictEqual(poison.customer, "poison-7")
    assert.isAbove(poison.amount, 0)
    assert.isBelow(Scenario.bodyFor(50, Scenario.planFor(50)).amount, 0)
    assert.deepStrictEqual(Scenario.alteredBody(poison), { ...poison, amount: poison.amount + 1 })
  })
})

const answered = (
  purpose: Ledger.Purpose,
  status: number,
  paymentId?: string,
  replayed = false
): Ledger.SendOutcome => ({
  _tag: "Answered",
  purpose,
  status,
  paymentId,
  paymentStatus: paymentId === undefined ? undefined : "charged",
  replayed
})

const logical = (index: number, sends: ReadonlyArray<Ledger.SendOutcome>): Ledger.LogicalPayment => {
  const plan = Scenario.planFor(index)
  return { index, key: `key-${index}`, plan, body: Scenario.bodyFor(index, plan), startedMs: 0, sends }
}

describe("demo ledger", () => {
  const payments = [
    logical(0, [answered("first", 201, "p0")]),
    // A copy answered before the first send: the copy is the original, the first send its duplicate.
    logical(3, [
      answered("copy", 201, "p3"),
      answered("first", 201, "p3", true),
      { _tag: "GaveUp", purpose: "copy", reason: "RetriesExhausted" }
    ]),
    logical(5, [answered("first", 202, "p5"), answered("resend", 202, "p5", true)]),
    logical(7, [{ _tag: "GaveUp", purpose: "first", reason: "RetriesExhausted" }]),
    logical(12, [answered("first", 201, "p12"), answered("mismatch", 422)]),
    logical(50, [answered("first", 400), answered("resend", 400, undefined, true)])
  ]

  it("counts as accepted only 201/202 answers to the payment's own body, once per key", () => {
    assert.deepStrictEqual(Ledger.accepted(payments).map((payment) => payment.paymentId), ["p0", "p3", "p5", "p12"])
  })

  it("finds keys with no answer at all, and keys answered with two ids", () => {
    assert.deepStrictEqual(Ledger.unresolvedKeys(payments).map((payment) => payment.key), ["key-7"])
    const broken = [logical(1, [answered("first", 201, "a"), answered("resend", 201, "b")])]
    assert.deepStrictEqual(Ledger.conflictingKeys(broken), ["key-1"])
    assert.deepStrictEqual(Ledger.conflictingKeys(payments), [])
  })

  it("tallies how duplicates, changed bodies and invalid bodies were answered", () => {
    // A replay that answered differently (another status) is a duplicate, but not the same answer.
    const differing = [logical(1, [answered("first", 202, "p1"), answered("resend", 201, "p1", true)])]
    assert.deepStrictEqual(
      [Ledger.duplicateTally(differing).duplicates, Ledger.duplicateTally(differing).sameAnswer],
      [1, 0]
    )
    assert.deepStrictEqual(Ledger.duplicateTally(payments), {
      duplicates: 4,
      sameAnswer: 3,
      replayed: 3,
      mismatches: 1,
      mismatchRejected: 1,
      invalid: 1,
      invalidRejected: 1
    })
  })
})

describe("demo metrics text", () => {
  const text = [
    "# HELP bulwark_circuit_breaker_transitions_total Breaker state changes",
    "# TYPE bulwark_circuit_breaker_transitions_total counter",
    `bulwark_circuit_breaker_transitions_total{breaker="gateway",from="closed",to="open"} 1`,
    `bulwark_circuit_breaker_transitions_total{breaker="gateway",from="half_open",to="open"} 2`,
    `bulwark_circuit_breaker_transitions_total{breaker="gateway",from="half_open",to="closed"} 1 1700000000000`,
    `bulwark_circuit_breaker_transitions_total{breaker="other",from="closed",to="open"} 5`,
    `odd_label{text="a \\"quoted\\" value"} 3`,
    "not a sample line"
  ].join("\n")

  it("sums a counter over the samples whose labels match", () => {
    const samples = PromText.parse(text)
    const name = "bulwark_circuit_breaker_transitions_total"
    assert.strictEqual(PromText.sum(samples, name, { breaker: "gateway", to: "open" }), 3)
    assert.strictEqual(PromText.sum(samples, name, { breaker: "gateway", to: "closed" }), 1)
    assert.strictEqual(PromText.sum(samples, name), 9)
    assert.strictEqual(PromText.sum(samples, "missing_total"), 0)
    assert.deepStrictEqual(samples.find((sample) => sample.name === "odd_label")?.labels, { text: `a "quoted" value` })
  })
})

describe("demo status line", () => {
  const snapshot: StatusLine.StatusSnapshot = {
    elapsedMs: 5_250,
    phase: "outage",
    requestsPerSecond: 24.5,
    statusCounts: new Map([["202", 40], ["gave up", 1], ["201", 100], ["422", 2]]),
    breakers: [{ name: "gateway/127.0.0.1:4242", state: "open" }],
    retries: 12,
    queue: { ready: 3, scheduled: 7, running: 1 },
    deadLetters: 2,
    pending: 38
  }

  it("shows elapsed time, phase, rate, answers in a fixed order, breakers, retries, queue and DLQ", () => {
    assert.strictEqual(
      StatusLine.format(snapshot),
      "  5.3s outage   │  24.5 req/s │ 201:100 202:40 422:2 gave up:1 │ breaker gateway open │ retries 12 │ " +
        "pending 38 │ queue 3 ready 7 scheduled 1 running │ DLQ 2"
    )
  })

  it("switches to a compact form on a narrow terminal, and cuts what still does not fit", () => {
    assert.strictEqual(
      StatusLine.format(snapshot, 100),
      "5.3s outage│25/s│201:100 202:40 422:2 gave up:1│gateway open│retry 12│pend 38│q 3/7/1│DLQ 2"
    )
    const cut = StatusLine.format(snapshot, 40)
    assert.strictEqual(cut.length, 40)
    assert.isTrue(cut.endsWith("…"))
    assert.strictEqual(StatusLine.format(snapshot, 400), StatusLine.format(snapshot))
  })

  it("redraws in place on a terminal and prints whole lines elsewhere", () => {
    assert.strictEqual(StatusLine.render("x", true), "\r\x1b[2Kx")
    assert.strictEqual(StatusLine.render("x", false), "x\n")
  })
})

describe("demo report", () => {
  const verdict = (holds: boolean): Invariants.Verdict => ({
    title: "no double charge",
    holds,
    summary: "3 gateway charges = 3 distinct charged payment keys, 0 charged twice",
    problems: holds ? [] : ["charged more than once: p1 ×2"]
  })
  const input = (verdicts: ReadonlyArray<Invariants.Verdict>): Report.ReportInput => ({
    config: config({ short: true }),
    timeline: Scenario.timeline(config({ short: true })),
    drainEndedMs: 17_000,
    settled: true,
    serviceUrl: "http://127.0.0.1:1",
    gatewayUrl: "http://127.0.0.1:2",
    payments: 10,
    poison: 1,
    flaky: 1,
    sends: 12,
    statusCounts: new Map([["201", 9], ["422", 1]]),
    retries: 4,
    duplicates: Ledger.duplicateTally([]),
    resolved: 0,
    transitions: [
      { atMs: 4_600, breaker: "gateway", from: "closed", to: "open" },
      { atMs: 9_700, breaker: "gateway", from: "open", to: "half_open" },
      { atMs: 9_900, breaker: "gateway", from: "half_open", to: "closed" }
    ],
    gateway: { requests: 20, charged: 9, failed: 11 },
    deadLetters: 1,
    verdicts
  })

  it("prints each invariant with ✓ and its numbers, and says all held", () => {
    const text = Report.format(input([verdict(true), verdict(true)])).join("\n")
    assert.include(
      text,
      "  ✓ 1. no double charge: 3 gateway charges = 3 distinct charged payment keys, 0 charged twice"
    )
    assert.include(text, "gateway: closed → open at 4.6s → half_open at 9.7s → closed at 9.9s")
    assert.match(text, /All 2 invariants held\.$/)
  })

  it("marks a broken invariant with ✗ and its problems, and says how many failed", () => {
    const text = Report.format(input([verdict(true), verdict(false)])).join("\n")
    assert.include(text, "  ✗ 2. no double charge")
    assert.include(text, "       ✗ charged more than once: p1 ×2")
    assert.match(text, /1 of 2 invariants FAILED\.$/)
  })
})
