/**
 * The claim rules, pure, shared by every store: the in-memory store applies
 * them directly; the SQL store states the same rule in its `ON CONFLICT …
 * WHERE` clause and classifies the rows it did not claim with
 * {@link classifyExisting}.
 *
 * A record may be claimed when its lease is not live (it is completed,
 * released, or in progress with a lapsed lease) and either
 * - it has expired (then it starts afresh: attempt 1, any fingerprint), or
 * - it carries the same fingerprint and is not completed (released → attempt
 *   + 1; lapsed in progress → attempt + 1 and `recovery`).
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

/** How a claim on an existing record would go: `undefined` when it cannot be claimed. */
export const takeover = (
  row: Row,
  fingerprint: string
): { readonly attempt: number; readonly recovery: boolean } | undefined => {
  if (leaseIsLive(row)) return undefined
  if (row.expiresInMs <= 0) return { attempt: 1, recovery: false }
  if (row.fingerprint !== fingerprint || row.state === "completed") return undefined
  return { attempt: row.attempt + 1, recovery: row.state === "in_progress" }
}

/** @internal */
export type Classification =
  | Exclude<IdempotencyStore.ClaimResult, { readonly _tag: "Claimed" }>
  | { readonly _tag: "Stale" }

/**
 * Classifies a record the claim did not take. `Stale` means the row is one the
 * claim should have taken: the reader saw an older version than the claim
 * did (a concurrent commit), so the claim must be tried again.
 */
export const classifyExisting = (row: Row, fingerprint: string): Classification => {
  if (takeover(row, fingerprint) !== undefined) return { _tag: "Stale" }
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
