/**
 * The report printed at the end of a run: what was sent, what came back,
 * how the breaker moved, and each invariant with ✓ or ✗ and its numbers.
 */
import type { DemoConfig } from "./Flags.js"
import type { Verdict } from "./Invariants.js"
import type { DuplicateTally } from "./Ledger.js"
import type { Timeline } from "./Scenario.js"
import { seconds } from "./StatusLine.js"

export interface Transition {
  readonly atMs: number
  readonly breaker: string
  readonly from: string
  readonly to: string
}

export interface ReportInput {
  readonly config: DemoConfig
  readonly timeline: Timeline
  /** When the drain ended, and whether it was because everything settled (rather than the bound). */
  readonly drainEndedMs: number
  readonly settled: boolean
  readonly serviceUrl: string
  readonly gatewayUrl: string
  readonly payments: number
  readonly poison: number
  readonly flaky: number
  readonly sends: number
  readonly statusCounts: ReadonlyMap<string, number>
  readonly retries: number
  readonly duplicates: DuplicateTally
  /** Payments whose outcome the client had to ask again for after the traffic. */
  readonly resolved: number
  readonly transitions: ReadonlyArray<Transition>
  readonly gateway: { readonly requests: number; readonly charged: number; readonly failed: number } | undefined
  readonly deadLetters: number
  readonly verdicts: ReadonlyArray<Verdict>
}

/** What each final answer means in this demo. */
const MEANING: Readonly<Record<string, string>> = {
  "201": "charged",
  "202": "accepted as pending",
  "400": "invalid",
  "402": "declined",
  "409": "still in flight",
  "422": "key reused with another body",
  "5xx": "service error",
  "gave up": "no answer in time"
}

const counts = (map: ReadonlyMap<string, number>): string =>
  [...map].sort(([a], [b]) => a.localeCompare(b))
    .map(([status, count]) => `${count}× ${status}${MEANING[status] === undefined ? "" : ` ${MEANING[status]}`}`)
    .join(", ")

const transitionsLine = (transitions: ReadonlyArray<Transition>): string => {
  if (transitions.length === 0) return "no transition seen"
  const shown = transitions.length > 8 ? [...transitions.slice(0, 4), undefined, ...transitions.slice(-3)] : transitions
  const first = transitions[0]?.from ?? "?"
  return [first, ...shown.map((t) => t === undefined ? "…" : `${t.to} at ${seconds(t.atMs)}`)].join(" → ")
}

export const format = (input: ReportInput): ReadonlyArray<string> => {
  const [warmUp, outage, recovery] = input.timeline.phases
  const breakerNames = [...new Set(input.transitions.map((t) => t.breaker))]
  const held = input.verdicts.filter((verdict) => verdict.holds).length
  const lines = [
    "",
    "Bulwark demo: report",
    `  run         ${seconds(input.timeline.trafficEndMs)} of traffic at ${input.config.rate} payments/s, drain ` +
    `${seconds(input.drainEndedMs - input.timeline.trafficEndMs)} (${
      input.settled ? "everything settled" : "bound reached"
    })`,
    `  timeline    warm-up 0–${seconds(warmUp.endMs)} · gateway outage ${seconds(outage.startMs)}–` +
    `${seconds(outage.endMs)} · recovery –${seconds(recovery.endMs)} · drain –${seconds(input.drainEndedMs)}`,
    `  client      ${input.payments} payments (${input.poison} poison, ${input.flaky} flaky, ` +
    `${input.duplicates.invalid} invalid), ` +
    `${input.sends} sends, ${input.retries} retries with the same key`,
    `  answers     ${counts(input.statusCounts)}`,
    `  duplicates  ${input.duplicates.duplicates} same-key resubmissions → ${input.duplicates.sameAnswer} got the ` +
    `original answer (${input.duplicates.replayed} marked Idempotent-Replayed); ` +
    `${input.duplicates.mismatches} changed-body resends → ${input.duplicates.mismatchRejected}× 422; ` +
    `${input.duplicates.invalid} invalid → ${input.duplicates.invalidRejected}× 400` +
    (input.resolved > 0 ? `; ${input.resolved} outcomes asked again after the traffic` : ""),
    ...breakerNames.map((name) =>
      `  breaker     ${name}: ${transitionsLine(input.transitions.filter((t) => t.breaker === name))}`
    ),
    ...(input.gateway === undefined ? [] : [
      `  gateway     ${input.gateway.requests} charge requests: ${input.gateway.charged} charged, ` +
      `${input.gateway.failed} failed (faults and outage)`
    ]),
    `  DLQ         ${input.deadLetters} entries`,
    "",
    "Invariants",
    ...input.verdicts.flatMap((verdict, index) => [
      `  ${verdict.holds ? "✓" : "✗"} ${index + 1}. ${verdict.title}: ${verdict.summary}`,
      ...verdict.problems.map((problem) => `       ✗ ${problem}`)
    ]),
    "",
    held === input.verdicts.length
      ? `All ${held} invariants held.`
      : `${input.verdicts.length - held} of ${input.verdicts.length} invariants FAILED.`
  ]
  return lines
}
