import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import * as Record from "./record.js"

/**
 * The claim rule, as the in-memory store applies it: how a claim with `fingerprint` takes an existing record, or
 * `undefined` when it cannot. PostgreSQL's `<table>_claim_one` (`sql/0005_idempotency_claim_one.sql`) states the
 * same rule in the same order; the conformance suite and the model test hold the two to the same answers.
 *
 * A record may be claimed when its lease is not live and either it has expired (then it starts afresh: attempt 1,
 * any fingerprint), or it carries the same fingerprint and is not completed (released: attempt + 1; a lapsed lease:
 * attempt + 1 and `recovery`).
 */
const takeover = (
  row: Record.Row,
  fingerprint: string
): { readonly attempt: number; readonly recovery: boolean } | undefined => {
  if (Record.leaseIsLive(row)) return undefined
  if (row.expiresInMs <= 0) return { attempt: 1, recovery: false }
  if (row.fingerprint !== fingerprint || row.state === "completed") return undefined
  return { attempt: row.attempt + 1, recovery: row.state === "in_progress" }
}

interface Entry {
  readonly scope: string
  readonly partition: string
  readonly key: string
  readonly state: IdempotencyStore.State
  readonly fingerprint: string
  readonly owner: string | null
  readonly attempt: number
  readonly recovery: boolean
  /** Epoch milliseconds by the Effect `Clock`. */
  readonly leaseExpiresAt: number | null
  readonly expiresAt: number
  readonly outcome: IdempotencyStore.Outcome | null
  readonly payload: string | null
}

// JSON of the triple: unambiguous whatever characters the parts hold.
const idOf = (key: IdempotencyStore.RecordKey): string => JSON.stringify([key.scope, key.partition, key.key])

const rowOf = (entry: Entry, now: number): Record.Row => ({
  state: entry.state,
  fingerprint: entry.fingerprint,
  attempt: entry.attempt,
  recovery: entry.recovery,
  leaseRemainingMs: entry.leaseExpiresAt === null ? null : entry.leaseExpiresAt - now,
  expiresInMs: entry.expiresAt - now,
  outcome: entry.outcome,
  payload: entry.payload
})

const holds = (entry: Entry | undefined, lease: IdempotencyStore.Lease): entry is Entry =>
  entry !== undefined && entry.state === "in_progress" && entry.owner === lease.owner &&
  entry.attempt === lease.attempt

/** @internal */
export const make: Effect.Effect<IdempotencyStore.Service> = Effect.sync(() => {
  const entries = new Map<string, Entry>()

  // Each operation reads the clock and updates the map in one synchronous step: atomic on the JS thread.
  const withNow = <A>(f: (now: number) => A): Effect.Effect<A> =>
    Effect.clockWith((clock) => Effect.sync(() => f(clock.unsafeCurrentTimeMillis())))

  const claimAs = (
    request: IdempotencyStore.ClaimRequest,
    now: number,
    next: { readonly attempt: number; readonly recovery: boolean }
  ): IdempotencyStore.ClaimResult => {
    const leaseMs = Duration.toMillis(request.lease)
    entries.set(idOf(request), {
      scope: request.scope,
      partition: request.partition,
      key: request.key,
      state: "in_progress",
      fingerprint: request.fingerprint,
      owner: request.owner,
      attempt: next.attempt,
      recovery: next.recovery,
      leaseExpiresAt: now + leaseMs,
      expiresAt: Math.max(now + Duration.toMillis(request.ttl), now + leaseMs),
      outcome: null,
      payload: null
    })
    return {
      _tag: "Claimed",
      lease: {
        scope: request.scope,
        partition: request.partition,
        key: request.key,
        fingerprint: request.fingerprint,
        owner: request.owner,
        attempt: next.attempt,
        recovery: next.recovery,
        lease: request.lease,
        ttl: request.ttl
      }
    }
  }

  const claim = (request: IdempotencyStore.ClaimRequest) =>
    Effect.flatten(withNow((now): Effect.Effect<IdempotencyStore.ClaimResult> => {
      const existing = entries.get(idOf(request))
      if (existing === undefined) return Effect.succeed(claimAs(request, now, { attempt: 1, recovery: false }))
      const row = rowOf(existing, now)
      const next = takeover(row, request.fingerprint)
      if (next !== undefined) return Effect.succeed(claimAs(request, now, next))
      const classified = Record.classifyExisting(row, request.fingerprint)
      // `takeover` refused the record, so it is a mismatch, a completed record or a live lease: never Stale.
      return classified._tag === "Stale"
        ? Effect.dieMessage("IdempotencyStore (memory): a claimable record was not claimed")
        : Effect.succeed(classified)
    }))

  const heartbeat = (lease: IdempotencyStore.Lease) =>
    withNow((now) => {
      const id = idOf(lease)
      const entry = entries.get(id)
      if (!holds(entry, lease)) return false
      const leaseExpiresAt = now + Duration.toMillis(lease.lease)
      entries.set(id, { ...entry, leaseExpiresAt, expiresAt: Math.max(entry.expiresAt, leaseExpiresAt) })
      return true
    })

  const complete = (lease: IdempotencyStore.Lease, result: IdempotencyStore.StoredResult) =>
    withNow((now) => {
      const id = idOf(lease)
      const entry = entries.get(id)
      if (!holds(entry, lease)) return false
      entries.set(id, {
        ...entry,
        state: "completed",
        owner: null,
        leaseExpiresAt: null,
        expiresAt: now + Duration.toMillis(lease.ttl),
        outcome: result.outcome,
        payload: result.payload
      })
      return true
    })

  const release = (lease: IdempotencyStore.Lease) =>
    withNow(() => {
      const id = idOf(lease)
      const entry = entries.get(id)
      if (!holds(entry, lease)) return false
      entries.set(id, { ...entry, state: "released", owner: null, leaseExpiresAt: null })
      return true
    })

  const lookup = (key: IdempotencyStore.RecordKey) =>
    withNow((now): Option.Option<IdempotencyStore.RecordInfo> => {
      const entry = entries.get(idOf(key))
      if (entry === undefined || Record.isExpired(rowOf(entry, now))) return Option.none()
      return Option.some({
        scope: entry.scope,
        partition: entry.partition,
        key: entry.key,
        state: entry.state,
        fingerprint: entry.fingerprint,
        attempt: entry.attempt,
        recovery: entry.recovery,
        owner: Option.fromNullable(entry.owner),
        leaseExpiresIn: entry.leaseExpiresAt === null
          ? Option.none()
          : Option.some(Duration.millis(Math.max(0, entry.leaseExpiresAt - now))),
        expiresIn: Duration.millis(Math.max(0, entry.expiresAt - now)),
        result: entry.outcome === null || entry.payload === null
          ? Option.none()
          : Option.some({ outcome: entry.outcome, payload: entry.payload })
      })
    })

  const deleteExpired = (limit: number) =>
    withNow((now) => {
      // Oldest expiry first, as the PostgreSQL store does (`ORDER BY expires_at`); ties in insertion order.
      const expired: Array<readonly [string, number]> = []
      for (const [id, entry] of entries) {
        const row = rowOf(entry, now)
        if (Record.isExpired(row)) expired.push([id, row.expiresInMs])
      }
      expired.sort((a, b) => a[1] - b[1])
      const doomed = expired.slice(0, limit)
      for (const [id] of doomed) entries.delete(id)
      return doomed.length
    })

  const service: IdempotencyStore.Service = {
    backend: "memory",
    claim,
    heartbeat,
    complete,
    release,
    lookup,
    deleteExpired
  }
  return service
})
