import { assert, describe, it } from "@effect/vitest"
import * as Invariants from "../examples/demo/Invariants.js"
import type { Accepted } from "../examples/demo/Ledger.js"

const payment = (n: number, poison = false): Accepted => ({
  key: `key-${n}`,
  paymentId: `pay-${n}`,
  poison,
  customer: poison ? `poison-${n}` : `customer-${n}`
})

const accepted = [payment(1), payment(2), payment(3), payment(4, true), payment(5)]

/** A run where everything went right: 4 charged (one of them poison, dead-lettered jobs), 1 still pending. */
const good: Invariants.Evidence = {
  accepted,
  conflictingKeys: [],
  statuses: new Map([["pay-1", "charged"], ["pay-2", "charged"], ["pay-3", "charged"], ["pay-4", "charged"], [
    "pay-5",
    "pending"
  ]]),
  charges: [1, 2, 3, 4].map((n) => ({ chargeId: `ch-${n}`, paymentId: `pay-${n}` })),
  chargesTotal: 4,
  serviceCharged: 4,
  breaker: { name: "gateway", opensDuringOutage: 2, closesAfterRecovery: 1, finalState: "closed" },
  deadLetters: [
    {
      id: "17",
      queue: "notifications",
      kind: "send-webhook",
      payload: { paymentId: "pay-4", customer: "poison-4" },
      attempts: 1,
      lastError: "PoisonPayload: customer poison-4"
    }
  ]
}

const failing = (evidence: Invariants.Evidence) =>
  Invariants.check(evidence).flatMap((verdict, index) => verdict.holds ? [] : [index + 1])

describe("demo invariants", () => {
  it("all four hold for a run where every promise was kept", () => {
    const verdicts = Invariants.check(good)
    assert.deepStrictEqual(verdicts.map((verdict) => verdict.problems), [[], [], [], []])
    assert.isTrue(Invariants.allHold(verdicts))
    assert.strictEqual(
      verdicts[0]?.summary,
      "4 gateway charges = 4 distinct charged payment keys, 0 charged twice"
    )
    assert.strictEqual(verdicts[1]?.summary, "5 accepted: 4 charged, 1 pending, 0 dead-lettered, 0 lost")
  })

  describe("1. no double charge", () => {
    it("fails when the gateway charged a payment twice", () => {
      const evidence = {
        ...good,
        charges: [...good.charges, { chargeId: "ch-9", paymentId: "pay-2" }],
        chargesTotal: 5
      }
      assert.deepStrictEqual(failing(evidence), [1])
      assert.match(Invariants.noDoubleCharge(evidence).problems.join("\n"), /charged more than once: pay-2 ×2/)
    })

    it("fails when a payment is marked charged but the gateway has no charge for it", () => {
      const evidence = { ...good, charges: good.charges.slice(1), chargesTotal: 3 }
      assert.deepStrictEqual(failing(evidence), [1])
      assert.match(Invariants.noDoubleCharge(evidence).problems.join("\n"), /"charged" with no gateway charge: pay-1/)
    })

    it("fails when the gateway charged a payment the service still holds as pending (it would be charged again)", () => {
      const evidence = {
        ...good,
        charges: [...good.charges, { chargeId: "ch-5", paymentId: "pay-5" }],
        chargesTotal: 5
      }
      assert.deepStrictEqual(failing(evidence), [1])
      assert.match(Invariants.noDoubleCharge(evidence).problems.join("\n"), /not "charged" in the service: pay-5/)
    })

    it("fails when the gateway charged a payment the service does not know (404)", () => {
      const evidence = {
        ...good,
        statuses: new Map([...good.statuses, ["pay-x", undefined]]),
        charges: [...good.charges, { chargeId: "ch-x", paymentId: "pay-x" }],
        chargesTotal: 5
      }
      assert.deepStrictEqual(failing(evidence), [1])
      assert.match(
        Invariants.noDoubleCharge(evidence).problems.join("\n"),
        /not "charged" in the service: pay-x \(404\)/
      )
    })

    it("counts a charged payment whose answer the client never got as one more distinct key, not a violation", () => {
      const evidence = {
        ...good,
        statuses: new Map([...good.statuses, ["pay-x", "charged"]]),
        charges: [...good.charges, { chargeId: "ch-x", paymentId: "pay-x" }],
        chargesTotal: 5,
        serviceCharged: 5
      }
      const verdict = Invariants.noDoubleCharge(evidence)
      assert.deepStrictEqual(verdict.problems, [])
      assert.strictEqual(
        verdict.summary,
        "5 gateway charges = 5 distinct charged payment keys, 0 charged twice " +
          "(1 of them charged although the client never got the answer)"
      )
    })

    it("fails when such a payment was charged twice", () => {
      const evidence = {
        ...good,
        statuses: new Map([...good.statuses, ["pay-x", "charged"]]),
        charges: [...good.charges, { chargeId: "ch-x", paymentId: "pay-x" }, { chargeId: "ch-y", paymentId: "pay-x" }],
        chargesTotal: 6
      }
      assert.deepStrictEqual(failing(evidence), [1])
      assert.match(Invariants.noDoubleCharge(evidence).problems.join("\n"), /charged more than once: pay-x ×2/)
    })

    it("fails when the service counts more charged payments than the gateway charged", () => {
      assert.deepStrictEqual(failing({ ...good, serviceCharged: 5 }), [1])
      assert.isTrue(Invariants.noDoubleCharge({ ...good, serviceCharged: undefined }).holds)
    })

    it("fails when one key was answered with two payment ids", () => {
      assert.deepStrictEqual(failing({ ...good, conflictingKeys: ["key-2"] }), [1])
    })

    it("fails when the gateway's total disagrees with its list", () => {
      assert.deepStrictEqual(failing({ ...good, chargesTotal: 7 }), [1])
    })
  })

  describe("2. none lost", () => {
    it("fails when an accepted payment is unknown to the service (404)", () => {
      const statuses = new Map(good.statuses)
      statuses.set("pay-5", undefined)
      const verdict = Invariants.noneLost({ ...good, statuses })
      assert.isFalse(verdict.holds)
      assert.match(verdict.problems.join("\n"), /pay-5 \(404\)/)
      assert.deepStrictEqual(failing({ ...good, statuses }), [2])
    })

    it("fails when an accepted payment ended failed", () => {
      const statuses = new Map(good.statuses)
      statuses.set("pay-5", "failed")
      assert.deepStrictEqual(failing({ ...good, statuses }), [2])
    })

    it("accepts a dead-lettered payment", () => {
      const statuses = new Map(good.statuses)
      statuses.set("pay-5", "dead_lettered")
      assert.isTrue(Invariants.noneLost({ ...good, statuses }).holds)
    })

    it("fails when nothing was accepted at all (a run that proved nothing)", () => {
      assert.isFalse(Invariants.noneLost({ ...good, accepted: [] }).holds)
    })
  })

  describe("3. the breaker cycled", () => {
    const breaker = { name: "gateway", opensDuringOutage: 1, closesAfterRecovery: 1, finalState: "closed" }

    it("fails when the breaker never opened during the outage", () => {
      assert.deepStrictEqual(failing({ ...good, breaker: { ...breaker, opensDuringOutage: 0 } }), [3])
    })

    it("fails when it never closed after the outage", () => {
      assert.deepStrictEqual(failing({ ...good, breaker: { ...breaker, closesAfterRecovery: 0 } }), [3])
    })

    it("fails when it ends in another state than closed", () => {
      const verdict = Invariants.breakerCycled({ ...good, breaker: { ...breaker, finalState: "half_open" } })
      assert.isFalse(verdict.holds)
      assert.match(verdict.problems.join("\n"), /ended half_open/)
    })

    it("fails when the service shows no breaker", () => {
      assert.deepStrictEqual(failing({ ...good, breaker: undefined }), [3])
    })
  })

  describe("4. poison jobs in the DLQ", () => {
    it("fails when a charged poison order has no dead letter", () => {
      const verdict = Invariants.poisonDeadLettered({ ...good, deadLetters: [] })
      assert.isFalse(verdict.holds)
      assert.match(verdict.problems.join("\n"), /no poison job is in the DLQ/)
      assert.deepStrictEqual(failing({ ...good, deadLetters: [] }), [4])
    })

    it("does not take a dead letter for another customer whose name merely starts the same", () => {
      const [entry] = good.deadLetters
      assert.isDefined(entry)
      const other = { ...entry, payload: { paymentId: "pay-40", customer: "poison-40" } }
      assert.deepStrictEqual(failing({ ...good, deadLetters: [other] }), [4])
    })

    it("fails when a poison job's envelope lacks its last error, attempts or payload", () => {
      const [entry] = good.deadLetters
      assert.isDefined(entry)
      for (
        const broken of [
          { ...entry, lastError: undefined },
          { ...entry, lastError: "  " },
          { ...entry, attempts: 0 },
          { ...entry, payload: { paymentId: "pay-4", customer: "poison-4" }, attempts: Number.NaN }
        ]
      ) {
        assert.deepStrictEqual(failing({ ...good, deadLetters: [broken] }), [4])
      }
    })

    it("fails when a second charged poison order is missing from the DLQ", () => {
      const evidence: Invariants.Evidence = {
        ...good,
        accepted: [...accepted, payment(6, true)],
        statuses: new Map([...good.statuses, ["pay-6", "charged"]]),
        charges: [...good.charges, { chargeId: "ch-6", paymentId: "pay-6" }],
        chargesTotal: 5
      }
      const verdict = Invariants.poisonDeadLettered(evidence)
      assert.isFalse(verdict.holds)
      assert.match(verdict.problems.join("\n"), /charged poison orders with no dead letter: poison-6/)
    })

    it("does not require dead letters for a poison order that is still pending (its jobs do not exist yet)", () => {
      const evidence: Invariants.Evidence = {
        ...good,
        accepted: [...accepted, payment(6, true)],
        statuses: new Map([...good.statuses, ["pay-6", "pending"]])
      }
      assert.isTrue(Invariants.poisonDeadLettered(evidence).holds)
    })

    it("fails when no poison order was accepted at all", () => {
      const evidence = { ...good, accepted: accepted.filter((p) => !p.poison), deadLetters: [] }
      assert.isFalse(Invariants.poisonDeadLettered(evidence).holds)
    })
  })
})
