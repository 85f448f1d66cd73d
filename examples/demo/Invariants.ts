/**
 * The four promises the demo checks at the end, as a pure function of the
 * evidence: the gateway's own charge list, the service's view of every
 * payment the client believes accepted, the breaker's recorded transitions,
 * and the dead-letter queue. The demo exits 0 only if all four hold.
 */
import type { Accepted } from "./Ledger.js"

export interface Charge {
  readonly chargeId: string
  readonly paymentId: string
}

export interface DeadLetterEntry {
  readonly id: string
  readonly queue: string
  readonly kind: string
  readonly payload: unknown
  readonly attempts: number
  readonly lastError: string | undefined
}

export interface BreakerEvidence {
  readonly name: string
  /** Transitions into `open` between the outage's start and its end. */
  readonly opensDuringOutage: number
  /** Transitions into `closed` after the outage ended. */
  readonly closesAfterRecovery: number
  /** The state at the end of the run. */
  readonly finalState: string
}

export interface Evidence {
  /** Every payment the client believes accepted (201/202), one per key. */
  readonly accepted: ReadonlyArray<Accepted>
  /** Keys answered with two different payment ids. */
  readonly conflictingKeys: ReadonlyArray<string>
  /** `GET /payments/:id` for each accepted payment id and each charged one; `undefined` when it answered 404. */
  readonly statuses: ReadonlyMap<string, string | undefined>
  /** `GET /v1/charges` on the gateway. */
  readonly charges: ReadonlyArray<Charge>
  readonly chargesTotal: number
  /**
   * `payments.charged` of `/admin/summary`, when the database holds this run's payments only (the embedded one);
   * `undefined` otherwise.
   */
  readonly serviceCharged: number | undefined
  /** `undefined` when the service had no breaker to show. */
  readonly breaker: BreakerEvidence | undefined
  /** `GET /admin/dead-letters`. */
  readonly deadLetters: ReadonlyArray<DeadLetterEntry>
}

export interface Verdict {
  readonly title: string
  readonly holds: boolean
  /** One line of numbers. */
  readonly summary: string
  /** What went wrong, when it did (a few examples each). */
  readonly problems: ReadonlyArray<string>
}

const SETTLED = new Set(["charged", "pending", "dead_lettered"])

const sample = (items: ReadonlyArray<string>, limit = 3): string =>
  items.slice(0, limit).join(", ") + (items.length > limit ? ` (+${items.length - limit} more)` : "")

const countBy = <A>(items: Iterable<A>, key: (item: A) => string): Map<string, number> => {
  const counts = new Map<string, number>()
  for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1)
  return counts
}

/**
 * 1. No double charge: one gateway charge per charged payment, and charges == distinct charged payment keys.
 *
 * A payment is identified by its key (the service makes one payment per key). The charged keys are the payments the
 * service holds as `charged`: those the client was told about, and those it never heard back about (it gave up
 * waiting) but whose id appears on a gateway charge. Every charge must belong to a payment the service holds as
 * charged; every charged payment the client knows must have exactly one charge.
 */
export const noDoubleCharge = (evidence: Evidence): Verdict => {
  const perPayment = countBy(evidence.charges, (charge) => charge.paymentId)
  const acceptedIds = new Set(evidence.accepted.map((payment) => payment.paymentId))
  const isCharged = (id: string) => evidence.statuses.get(id) === "charged"
  const chargedKeys = new Set([
    ...evidence.accepted.filter((payment) => isCharged(payment.paymentId)).map((payment) => payment.paymentId),
    ...[...perPayment.keys()].filter(isCharged)
  ])
  const doubled = [...perPayment].filter(([, count]) => count > 1).map(([id, count]) => `${id} ×${count}`)
  const chargedWithoutCharge = evidence.accepted
    .filter((payment) => isCharged(payment.paymentId) && !perPayment.has(payment.paymentId))
    .map((payment) => payment.paymentId)
  const notMarked = [...perPayment.keys()].filter((id) => !isCharged(id))
    .map((id) => `${id} (${evidence.statuses.get(id) ?? (evidence.statuses.has(id) ? "404" : "never looked up")})`)
  const unanswered = [...perPayment.keys()].filter((id) => !acceptedIds.has(id) && isCharged(id))
  const problems = [
    ...(doubled.length > 0 ? [`charged more than once: ${sample(doubled)}`] : []),
    ...(chargedWithoutCharge.length > 0
      ? [`"charged" with no gateway charge: ${sample(chargedWithoutCharge)}`]
      : []),
    ...(notMarked.length > 0 ? [`charged at the gateway but not "charged" in the service: ${sample(notMarked)}`] : []),
    ...(evidence.conflictingKeys.length > 0
      ? [`keys answered with two payment ids: ${sample(evidence.conflictingKeys)}`]
      : []),
    ...(evidence.chargesTotal !== evidence.charges.length
      ? [`the gateway says total ${evidence.chargesTotal} but listed ${evidence.charges.length}`]
      : []),
    ...(evidence.charges.length !== chargedKeys.size
      ? [`${evidence.charges.length} charges ≠ ${chargedKeys.size} distinct charged payment keys`]
      : []),
    ...(evidence.serviceCharged !== undefined && evidence.serviceCharged !== perPayment.size
      ? [`the service counts ${evidence.serviceCharged} charged payments, the gateway charged ${perPayment.size}`]
      : [])
  ]
  return {
    title: "no double charge",
    holds: problems.length === 0,
    summary: `${evidence.charges.length} gateway charges = ${chargedKeys.size} distinct charged payment keys, ` +
      `${doubled.length} charged twice` +
      (unanswered.length > 0 ? ` (${unanswered.length} of them charged although the client never got the answer)` : ""),
    problems
  }
}

/** 2. None lost: every accepted order is charged, pending or dead-lettered. */
export const noneLost = (evidence: Evidence): Verdict => {
  const byStatus = countBy(evidence.accepted, (payment) => evidence.statuses.get(payment.paymentId) ?? "missing")
  const lost = evidence.accepted.filter((payment) => !SETTLED.has(evidence.statuses.get(payment.paymentId) ?? ""))
    .map((payment) => `${payment.paymentId} (${evidence.statuses.get(payment.paymentId) ?? "404"})`)
  const problems = [
    ...(evidence.accepted.length === 0 ? ["no payment was accepted: there is nothing to check"] : []),
    ...(lost.length > 0
      ? [`${lost.length} accepted orders neither charged, pending nor dead-lettered: ${sample(lost)}`]
      : [])
  ]
  const part = (status: string) => `${byStatus.get(status) ?? 0} ${status.replace("_", "-")}`
  return {
    title: "every accepted order is charged, pending or dead-lettered",
    holds: problems.length === 0,
    summary:
      `${evidence.accepted.length} accepted: ${part("charged")}, ${part("pending")}, ${part("dead_lettered")}, ` +
      `${lost.length} lost`,
    problems
  }
}

/** 3. The breaker opened during the outage and is closed after it. */
export const breakerCycled = (evidence: Evidence): Verdict => {
  const breaker = evidence.breaker
  if (breaker === undefined) {
    return {
      title: "the breaker opened during the outage and closed after it",
      holds: false,
      summary: "no breaker found",
      problems: ["the service listed no gateway breaker"]
    }
  }
  const problems = [
    ...(breaker.opensDuringOutage < 1 ? ["it never opened during the outage"] : []),
    ...(breaker.closesAfterRecovery < 1 ? ["it never closed after the outage"] : []),
    ...(breaker.finalState !== "closed" ? [`it ended ${breaker.finalState}, not closed`] : [])
  ]
  return {
    title: "the breaker opened during the outage and closed after it",
    holds: problems.length === 0,
    summary: `"${breaker.name}": opened ${breaker.opensDuringOutage}× during the outage, closed ` +
      `${breaker.closesAfterRecovery}× after it, now ${breaker.finalState}`,
    problems
  }
}

/** Does a JSON value hold this exact string anywhere (a field of the payload)? */
const mentions = (value: unknown, needle: string): boolean => {
  if (typeof value === "string") return value === needle
  if (Array.isArray(value)) return value.some((item) => mentions(item, needle))
  if (typeof value === "object" && value !== null) return Object.values(value).some((item) => mentions(item, needle))
  return false
}

const envelopeGaps = (entry: DeadLetterEntry): ReadonlyArray<string> => [
  ...(entry.payload === undefined || entry.payload === null ? ["payload"] : []),
  ...(!Number.isInteger(entry.attempts) || entry.attempts < 1 ? ["attempts"] : []),
  ...(entry.lastError === undefined || entry.lastError.trim() === "" ? ["last error"] : [])
]

/** 4. Poison jobs sit in the DLQ with their envelopes. */
export const poisonDeadLettered = (evidence: Evidence): Verdict => {
  const poison = evidence.accepted.filter((payment) => payment.poison)
  const entriesOf = (payment: Accepted) =>
    evidence.deadLetters.filter((entry) =>
      mentions(entry.payload, payment.paymentId) || mentions(entry.payload, payment.customer)
    )
  // A poison order still pending has not been charged, so its follow-up jobs do not exist yet.
  const charged = poison.filter((payment) => evidence.statuses.get(payment.paymentId) === "charged")
  const missing = charged.filter((payment) => entriesOf(payment).length === 0).map((payment) => payment.customer)
  const poisonEntries = new Map(poison.flatMap(entriesOf).map((entry) => [entry.id, entry]))
  const incomplete = [...poisonEntries.values()].flatMap((entry) => {
    const gaps = envelopeGaps(entry)
    return gaps.length > 0 ? [`${entry.kind} #${entry.id} lacks ${gaps.join(", ")}`] : []
  })
  const others = evidence.deadLetters.length - poisonEntries.size
  const problems = [
    ...(poison.length === 0 ? ["no poison order was accepted"] : []),
    ...(poison.length > 0 && poisonEntries.size === 0 ? ["no poison job is in the DLQ"] : []),
    ...(missing.length > 0 ? [`charged poison orders with no dead letter: ${sample(missing)}`] : []),
    ...(incomplete.length > 0 ? [`incomplete envelopes: ${sample(incomplete)}`] : [])
  ]
  const kinds = [...countBy(poisonEntries.values(), (entry) => entry.kind)].map(([kind, n]) => `${n} ${kind}`)
  return {
    title: "poison jobs are in the DLQ with their envelopes",
    holds: problems.length === 0,
    summary: `${poisonEntries.size} dead letters for ${poison.length} poison orders (${charged.length} charged)` +
      (kinds.length > 0 ? `: ${kinds.join(", ")}` : "") + `; ${others} other dead letters`,
    problems
  }
}

/** All four, in the report's order. */
export const check = (evidence: Evidence): ReadonlyArray<Verdict> => [
  noDoubleCharge(evidence),
  noneLost(evidence),
  breakerCycled(evidence),
  poisonDeadLettered(evidence)
]

export const allHold = (verdicts: ReadonlyArray<Verdict>): boolean => verdicts.every((verdict) => verdict.holds)
