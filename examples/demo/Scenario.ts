/**
 * The demo's story as data: the phases of a run (proportional to its
 * duration), the gateway faults in each, and what kind of submission the
 * n-th payment is. Pure, so the timeline is tested without running it.
 *
 * ```text
 * 0 ─ warm-up ─ 30% ─ outage ─ 60% ─ recovery ─ 100% ─ drain (≤ bound) ─ report
 *     low faults      gateway down    low faults       no faults, jobs catch up
 * ```
 */
import * as Duration from "effect/Duration"
import type { DemoConfig } from "./Flags.js"

/** What `PUT /admin/faults` on the gateway is told. */
export interface GatewayFaults {
  readonly outage: boolean
  /** Share of charges answered 503. */
  readonly errorRate: number
  /** Share of charges that hang until the caller gives up (never charged). */
  readonly timeoutRate: number
  /** Added to every charge (charged after the delay): kept far below the service's gateway timeout. */
  readonly latencyMs: number
}

export type PhaseName = "warm-up" | "outage" | "recovery" | "drain"

export interface Phase {
  readonly name: PhaseName
  readonly startMs: number
  /** For the drain: the bound; it ends earlier once everything is settled. */
  readonly endMs: number
  readonly faults: GatewayFaults
}

export interface Timeline {
  readonly phases: readonly [warmUp: Phase, outage: Phase, recovery: Phase, drain: Phase]
  /** When new payments stop. */
  readonly trafficEndMs: number
  /** How long after its first answer a payment is sent again with the same key. */
  readonly resendDelayMs: number
}

/** Background noise outside the outage: a few 503s, rare hangs, a little latency. */
export const lowFaults: GatewayFaults = { outage: false, errorRate: 0.03, timeoutRate: 0.005, latencyMs: 15 }
export const outageFaults: GatewayFaults = { outage: true, errorRate: 0, timeoutRate: 0, latencyMs: 0 }
export const noFaults: GatewayFaults = { outage: false, errorRate: 0, timeoutRate: 0, latencyMs: 0 }

/** Where the outage starts and ends, as shares of the traffic time. */
export const OUTAGE_START = 0.3
export const OUTAGE_END = 0.6

export const timeline = (config: Pick<DemoConfig, "duration" | "drainBound">): Timeline => {
  const total = Duration.toMillis(config.duration)
  const outageStart = Math.round(total * OUTAGE_START)
  const outageEnd = Math.round(total * OUTAGE_END)
  const drainEnd = total + Duration.toMillis(config.drainBound)
  return {
    phases: [
      { name: "warm-up", startMs: 0, endMs: outageStart, faults: lowFaults },
      { name: "outage", startMs: outageStart, endMs: outageEnd, faults: outageFaults },
      { name: "recovery", startMs: outageEnd, endMs: total, faults: lowFaults },
      { name: "drain", startMs: total, endMs: drainEnd, faults: noFaults }
    ],
    trafficEndMs: total,
    resendDelayMs: Math.min(5_000, Math.max(1_000, Math.round(total * 0.1)))
  }
}

/** The phase a moment of the run falls in (the drain from the end of traffic on). */
export const phaseAt = (line: Timeline, elapsedMs: number): Phase =>
  line.phases.find((phase) => elapsedMs < phase.endMs && phase.name !== "drain") ?? line.phases[3]

/** What the n-th payment of a run is, and what else is done with its key. */
export interface Plan {
  /**
   * `poison`: customer `poison-…`, whose webhook fails terminally (dead-lettered at once); `flaky`: customer
   * `flaky-…`, whose notifications fail once and are retried; `invalid`: a body the service rejects (400).
   */
  readonly kind: "normal" | "poison" | "flaky" | "invalid"
  /** Sends fired at once with the same key and body (≥ 2: a duplicate submission). */
  readonly copies: number
  /** Sent again later with the same key and the same body: expects the same payment back, replayed. */
  readonly resend: boolean
  /** Sent again later with the same key and a different amount: expects 422. */
  readonly mismatch: boolean
}

/**
 * A fixed pattern rather than dice, so every run, however short, has each
 * case early on: poison every 40th (first at #7), a flaky customer every 30th
 * (first at #17), an invalid body every 97th (first at #50), three concurrent
 * copies every 20th, a resend every 10th, a changed-body resend every 25th.
 */
export const planFor = (index: number): Plan => ({
  kind: index % 40 === 7 ? "poison" : index % 97 === 50 ? "invalid" : index % 30 === 17 ? "flaky" : "normal",
  copies: index % 20 === 3 ? 3 : 1,
  resend: index % 10 === 5,
  mismatch: index % 25 === 12
})

export interface PaymentBody {
  readonly amount: number
  readonly currency: string
  readonly customer: string
}

const CURRENCIES = ["EUR", "USD", "GBP"] as const

/** The body of the n-th payment: amounts and currencies vary, poison customers are named `poison-n`. */
export const bodyFor = (index: number, plan: Plan): PaymentBody => ({
  amount: plan.kind === "invalid" ? -1 : 500 + (index * 7919) % 19_500,
  currency: CURRENCIES[index % CURRENCIES.length] ?? "EUR",
  customer: plan.kind === "normal" || plan.kind === "invalid" ? `customer-${index % 211}` : `${plan.kind}-${index}`
})

/** The changed body of a mismatch resend. */
export const alteredBody = (body: PaymentBody): PaymentBody => ({ ...body, amount: body.amount + 1 })
