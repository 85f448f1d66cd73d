/**
 * The in-memory and PostgreSQL stores are the same state machine: random sequences of claims (two keys, two
 * fingerprints, several leases and TTLs), heartbeats, completions and releases (by current and stale leases),
 * clock moves, cleanups and lookups give the same observations on both; and on PostgreSQL, the same whether every
 * claim goes through the single claim or through the batch claim (`<table>_claim_batch`): both execute the one
 * claim rule, `<table>_claim_one`.
 *
 * Time: the memory store follows TestClock; the PostgreSQL store's rows are shifted back by the same amount.
 * Durations are multiples of 500 ms, so the few milliseconds of real time a run takes never cross a boundary.
 */
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FastCheck from "effect/FastCheck"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as ScratchPostgres from "../support/postgres.js"
import { claimThroughBatch } from "./support.js"

type Op =
  | {
    readonly _tag: "claim"
    readonly key: number
    readonly fingerprint: string
    readonly lease: number
    readonly ttl: number
  }
  | { readonly _tag: "heartbeat" | "release"; readonly lease: number }
  | { readonly _tag: "complete"; readonly lease: number; readonly payload: string }
  | { readonly _tag: "advance"; readonly ms: number }
  | { readonly _tag: "deleteExpired"; readonly limit: number }
  | { readonly _tag: "lookup"; readonly key: number }

const op: FastCheck.Arbitrary<Op> = FastCheck.oneof(
  {
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("claim" as const),
      key: FastCheck.integer({ min: 0, max: 1 }),
      fingerprint: FastCheck.constantFrom("a", "b"),
      lease: FastCheck.constantFrom(1_000, 10_000),
      ttl: FastCheck.constantFrom(5_000, 60_000)
    }),
    weight: 4
  },
  {
    arbitrary: FastCheck.record({
      _tag: FastCheck.constantFrom("heartbeat" as const, "release" as const),
      lease: FastCheck.nat(20)
    }),
    weight: 2
  },
  {
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("complete" as const),
      lease: FastCheck.nat(20),
      payload: FastCheck.constantFrom(`{"ok":true}`, `"é ✓"`, "[1, 2]")
    }),
    weight: 2
  },
  {
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("advance" as const),
      ms: FastCheck.constantFrom(500, 2_000, 6_000, 70_000)
    }),
    weight: 3
  },
  {
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("deleteExpired" as const),
      limit: FastCheck.integer({ min: 1, max: 3 })
    }),
    weight: 1
  },
  {
    arbitrary: FastCheck.record({
      _tag: FastCheck.constant("lookup" as const),
      key: FastCheck.integer({ min: 0, max: 1 })
    }),
    weight: 1
  }
)

interface Driver {
  readonly store: IdempotencyStore.Service
  readonly advance: (ms: number) => Effect.Effect<void>
}

const keyOf = (key: number): IdempotencyStore.RecordKey => ({ scope: "model", partition: "", key: `key-${key}` })

const observe = (result: IdempotencyStore.ClaimResult): unknown => {
  switch (result._tag) {
    case "Claimed":
      return ["Claimed", result.lease.attempt, result.lease.recovery]
    case "Completed":
      return [
        "Completed",
        result.record.outcome,
        result.record.payload,
        result.record.attempt,
        result.record.fingerprint
      ]
    case "InProgress":
    case "Mismatch":
      return [result._tag]
  }
}

/** Runs the ops, returning what each one observed. */
const play = (ops: ReadonlyArray<Op>, driver: Driver) =>
  Effect.gen(function*() {
    const leases: Array<IdempotencyStore.Lease> = []
    const seen: Array<unknown> = []
    let claims = 0
    const leaseAt = (index: number) => leases[index % Math.max(1, leases.length)]
    for (const o of ops) {
      switch (o._tag) {
        case "claim": {
          const result = yield* driver.store.claim({
            ...keyOf(o.key),
            fingerprint: o.fingerprint,
            owner: `owner-${++claims}`,
            lease: Duration.millis(o.lease),
            ttl: Duration.millis(o.ttl)
          })
          if (result._tag === "Claimed") leases.push(result.lease)
          seen.push(observe(result))
          break
        }
        case "heartbeat":
        case "release": {
          const lease = leaseAt(o.lease)
          if (lease === undefined) break
          seen.push([
            o._tag,
            yield* (o._tag === "heartbeat" ? driver.store.heartbeat(lease) : driver.store.release(lease))
          ])
          break
        }
        case "complete": {
          const lease = leaseAt(o.lease)
          if (lease === undefined) break
          seen.push(["complete", yield* driver.store.complete(lease, { outcome: "success", payload: o.payload })])
          break
        }
        case "advance":
          yield* driver.advance(o.ms)
          break
        case "deleteExpired":
          seen.push(["deleteExpired", yield* driver.store.deleteExpired(o.limit)])
          break
        case "lookup": {
          const info = yield* driver.store.lookup(keyOf(o.key))
          seen.push(Option.match(info, {
            onNone: () => ["lookup", "none"],
            onSome: (r) => ["lookup", r.state, r.fingerprint, r.attempt, r.recovery, Option.getOrNull(r.result)]
          }))
          break
        }
      }
    }
    return seen
  })

let tables = 0

layer(ScratchPostgres.layer({ maxConnections: 2 }), { timeout: 60_000 })("IdempotencyStore model", (it) => {
  it.effect.prop(
    "the memory and PostgreSQL stores observe the same thing for any sequence of operations",
    { ops: FastCheck.array(op, { minLength: 1, maxLength: 30 }) },
    ({ ops }) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        /** A store on a table of its own, whose time moves by shifting the table's timestamps back. */
        const postgres = (throughBatch: boolean) =>
          Effect.gen(function*() {
            const table = `idempotency_model_${++tables}`
            yield* Effect.orDie(SqlIdempotencyStore.createTable({ tableName: table }))
            if (throughBatch) yield* claimThroughBatch(table)
            yield* Effect.addFinalizer(() => Effect.orDie(sql.unsafe(`DROP TABLE ${table} CASCADE`)))
            const driver: Driver = {
              store: yield* Effect.orDie(SqlIdempotencyStore.make({ tableName: table })),
              advance: (ms) =>
                Effect.orDie(sql`UPDATE ${sql(table)} SET
                  lease_expires_at = lease_expires_at - ${ms}::float8 * interval '1 millisecond',
                  expires_at = expires_at - ${ms}::float8 * interval '1 millisecond'`)
            }
            return driver
          })
        const memory = yield* IdempotencyStore.makeMemory
        const fromMemory = yield* play(ops, { store: memory, advance: (ms) => TestClock.adjust(ms) })
        const fromPostgres = yield* play(ops, yield* postgres(false))
        const fromBatches = yield* play(ops, yield* postgres(true))
        assert.deepStrictEqual(fromPostgres, fromMemory)
        assert.deepStrictEqual(fromBatches, fromMemory)
      }).pipe(Effect.scoped),
    { fastCheck: { numRuns: 60 } }
  )
})
