/**
 * A record as the stores read it, and what a claim that did not take it
 * answers: shared by the in-memory and SQL stores.
 *
 * Which records a claim takes (the claim rule) is decided by the store:
 * PostgreSQL's `<table>_claim_one` (`sql/0005_idempotency_claim_one.sql`)
 * decides for both the single and the batch claim; the in-memory store's
 * `takeover` states the same rule in TypeScript, and the conformance suite
 * and the model test (`test/idempotency/`) hold the two to the same answers.
 */
import * as Duration from "effect/Duration"
import type * as IdempotencyStore from "../IdempotencyStore.js"

/** @internal */
export interface Row {
  readonly state: IdempotencyStore.State
  readonly fingerprint: string
  readonly attempt: number
  readonly recovery: boolean
  /** Milliseconds left on the lease (≤ 0: lapsed); `null` unless in progress. */
  readonly leaseRemainingMs: number | null
  /** Milliseconds until the record expires (≤ 0: expired). */
  readonly expiresInMs: number
  readonly outcome: IdempotencyStore.Outcome | null
  readonly payload: string | null
}

/** The longest `retryAfter` hint for an in-flight key: most requests finish well within a second. */
export const MAX_RETRY_AFTER_MS = 1_000

/** @internal */
export const leaseIsLive = (row: Row): boolean =>
  row.state === "in_progress" && row.leaseRemainingMs !== null && row.leaseRemainingMs > 0

/** @internal */
export const isExpired = (row: Row): boolean => row.expiresInMs <= 0 && !leaseIsLive(row)

/** @internal */
export type Classification =
  | Exclude<IdempotencyStore.ClaimResult, { readonly _tag: "Claimed" }>
  | { readonly _tag: "Stale" }

/**
 * Answers a claim with the record the store's claim rule refused: another
 * fingerprint is a `Mismatch`, a completed record is replayed, a live lease is
 * in progress. The rule refuses nothing else, so anything else (a released
 * record, a lapsed lease, with the same fingerprint) is `Stale`: the store
 * answered with another version than the one it decided on, and the claim
 * must be tried again.
 */
export const classifyExisting = (row: Row, fingerprint: string): Classification => {
  if (row.fingerprint !== fingerprint) return { _tag: "Mismatch" }
  if (row.state === "completed" && row.outcome !== null && row.payload !== null) {
    return {
      _tag: "Completed",
      record: {
        outcome: row.outcome,
        payload: row.payload,
        fingerprint: row.fingerprint,
        attempt: row.attempt,
        expiresIn: Duration.millis(Math.max(0, row.expiresInMs))
      }
    }
  }
  if (leaseIsLive(row) && row.leaseRemainingMs !== null) {
    return {
      _tag: "InProgress",
      retryAfter: Duration.millis(Math.max(1, Math.min(MAX_RETRY_AFTER_MS, Math.ceil(row.leaseRemainingMs))))
    }
  }
  return { _tag: "Stale" }
}
