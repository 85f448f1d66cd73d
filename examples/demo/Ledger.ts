/**
 * What the demo's client saw: every logical payment (one idempotency key) and
 * the answer to every send made with its key. The invariants are checked
 * against the service's and the gateway's own records; the ledger says which
 * payments to ask about (the ones the client believes accepted) and what
 * answers the duplicates got.
 */
import type { PaymentBody, Plan } from "./Scenario.js"

/** Why a send was made. */
export type Purpose =
  | "first" // the payment's first submission
  | "copy" // a duplicate fired at the same time as the first
  | "resend" // the same key and body, later
  | "mismatch" // the same key, a different body, later
  | "resolve" // after the traffic, for a key whose outcome the client never learned

export type SendOutcome =
  | {
    readonly _tag: "Answered"
    readonly purpose: Purpose
    readonly status: number
    readonly paymentId: string | undefined
    readonly paymentStatus: string | undefined
    readonly replayed: boolean
  }
  | { readonly _tag: "GaveUp"; readonly purpose: Purpose; readonly reason: string }

export interface LogicalPayment {
  readonly index: number
  readonly key: string
  readonly plan: Plan
  readonly body: PaymentBody
  /** Milliseconds into the run of the first send. */
  readonly startedMs: number
  readonly sends: ReadonlyArray<SendOutcome>
}

/** A payment the client believes the service accepted (201 or 202 to a send of its own body). */
export interface Accepted {
  readonly key: string
  readonly paymentId: string
  readonly poison: boolean
  readonly customer: string
}

const ownBody = (send: SendOutcome) => send.purpose !== "mismatch"

const isAccepted = (send: SendOutcome): send is Extract<SendOutcome, { _tag: "Answered" }> & { paymentId: string } =>
  send._tag === "Answered" && (send.status === 201 || send.status === 202) && send.paymentId !== undefined &&
  ownBody(send)

/** The payments the client believes accepted, one per key (the first id it was given). */
export const accepted = (payments: Iterable<LogicalPayment>): ReadonlyArray<Accepted> => {
  const result: Array<Accepted> = []
  for (const payment of payments) {
    const first = payment.sends.find(isAccepted)
    if (first !== undefined) {
      result.push({
        key: payment.key,
        paymentId: first.paymentId,
        poison: payment.plan.kind === "poison",
        customer: payment.body.customer
      })
    }
  }
  return result
}

/** Keys whose own-body sends were answered with more than one payment id: idempotency broken. */
export const conflictingKeys = (payments: Iterable<LogicalPayment>): ReadonlyArray<string> => {
  const result: Array<string> = []
  for (const payment of payments) {
    const ids = new Set(payment.sends.filter(isAccepted).map((send) => send.paymentId))
    if (ids.size > 1) result.push(payment.key)
  }
  return result
}

/** Keys for which no send got a definite answer (every one gave up): the client does not know the outcome. */
export const unresolvedKeys = (payments: Iterable<LogicalPayment>): ReadonlyArray<LogicalPayment> => {
  const result: Array<LogicalPayment> = []
  for (const payment of payments) {
    if (!payment.sends.some((send) => send._tag === "Answered" && ownBody(send))) result.push(payment)
  }
  return result
}

/** How duplicate submissions were answered. */
export interface DuplicateTally {
  /** Concurrent copies and later resends sent (same key, same body). */
  readonly duplicates: number
  /** …answered exactly like the original: same status, same payment id. */
  readonly sameAnswer: number
  /** …of those, marked `Idempotent-Replayed`. */
  readonly replayed: number
  /** Changed-body resends sent. */
  readonly mismatches: number
  /** …answered 422. */
  readonly mismatchRejected: number
  /** Invalid bodies (each key's first answer) answered 400. */
  readonly invalidRejected: number
  readonly invalid: number
}

const isDuplicateOrFirst = (send: SendOutcome) =>
  send.purpose === "first" || send.purpose === "copy" || send.purpose === "resend"

export const duplicateTally = (payments: Iterable<LogicalPayment>): DuplicateTally => {
  let duplicates = 0, sameAnswer = 0, replayed = 0, mismatches = 0, mismatchRejected = 0, invalid = 0
  let invalidRejected = 0
  for (const payment of payments) {
    // The original is whichever of the first send and its copies was answered first; the others are its duplicates.
    const original = payment.sends.find((send) => send._tag === "Answered" && isDuplicateOrFirst(send))
    for (const send of payment.sends) {
      if (send === original) continue
      if (
        send.purpose === "copy" || send.purpose === "resend" || (send.purpose === "first" && original !== undefined)
      ) {
        duplicates++
        if (
          send._tag === "Answered" && original?._tag === "Answered" && send.status === original.status &&
          send.paymentId === original.paymentId
        ) {
          sameAnswer++
          if (send.replayed) replayed++
        }
      } else if (send.purpose === "mismatch") {
        mismatches++
        if (send._tag === "Answered" && send.status === 422) mismatchRejected++
      }
    }
    if (payment.plan.kind === "invalid") {
      invalid++
      if (original?._tag === "Answered" && original.status === 400) invalidRejected++
    }
  }
  return { duplicates, sameAnswer, replayed, mismatches, mismatchRejected, invalid, invalidRejected }
}

/** Answers by status ("201", "202", "409", "422", "5xx"…), and sends that gave up, for the status line. */
export const statusKey = (send: SendOutcome): string =>
  send._tag === "GaveUp" ? "gave up" : send.status >= 500 ? "5xx" : String(send.status)
