/**
 * The PostgreSQL store passes the idempotency conformance suite. Each test
 * gets a table of its own (`SqlIdempotencyStore.createTable`, used through the
 * store's `tableName` option); moving time shifts that table's timestamps
 * back, since the store reads the server's `now()`. Then what only PostgreSQL
 * can show: replays read without locking or writing the row, and a store in
 * another schema.
 */
import * as Failure from "@bulwark/resilience/Failure"
import type * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as TestClock from "effect/TestClock"
import * as TestServices from "effect/TestServices"
import * as ScratchPostgres from "../support/postgres.js"
import { conformance } from "./conformance.js"
import { claimRequest, claimThroughBatch, runDuplicates } from "./support.js"

// The store's statements run on real I/O: let fibers woken by TestClock finish their round trips.
const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 30)))

let tables = 0

// Batching on (the default) and off (each call alone, as one statement per call); and every claim through the batch
// function (`<table>_claim` redefined as a batch of one): the batch claim passes the same suite as the single one.
const variants = [
  { suite: "SqlIdempotencyStore", name: "postgres", batching: true, throughBatch: false },
  { suite: "SqlIdempotencyStore without batching", name: "postgres, unbatched", batching: false, throughBatch: false },
  {
    suite: "SqlIdempotencyStore, every claim through the batch function",
    name: "postgres, batch claims",
    batching: true,
    throughBatch: true
  }
] as const

for (const { batching, name, suite, throughBatch } of variants) {
  layer(ScratchPostgres.layer({ maxConnections: 8 }), { timeout: 30_000 })(
    suite,
    (it) => {
      conformance(it, {
        name,
        fresh: Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const table = `idempotency_test_${++tables}`
          yield* Effect.orDie(SqlIdempotencyStore.createTable({ tableName: table }))
          if (throughBatch) yield* claimThroughBatch(table)
          const shift = (duration: Duration.DurationInput) => {
            const ms = Duration.toMillis(Duration.decode(duration))
            return Effect.orDie(sql`
              UPDATE ${sql(table)} SET
                lease_expires_at = lease_expires_at - ${ms}::float8 * interval '1 millisecond',
                expires_at = expires_at - ${ms}::float8 * interval '1 millisecond'
            `)
          }
          return {
            layer: SqlIdempotencyStore.layer({ tableName: table, batching }).pipe(
              Layer.provide(Layer.succeed(SqlClient.SqlClient, sql)),
              Layer.orDie
            ),
            advance: (duration) =>
              shift(duration).pipe(Effect.zipRight(TestClock.adjust(duration)), Effect.zipRight(settle)),
            settleAfter: (duration) => Effect.zipRight(TestClock.adjust(duration), settle)
          }
        })
      })
    }
  )
}

layer(ScratchPostgres.layer({ maxConnections: 2 }), { timeout: 30_000 })("SqlIdempotencyStore on PostgreSQL", (it) => {
  const claim = (store: IdempotencyStore.Service, key: string, fingerprint: string) =>
    store.claim(claimRequest(key, fingerprint))

  const leaseOf = (result: IdempotencyStore.ClaimResult): IdempotencyStore.Lease => {
    if (result._tag !== "Claimed") throw new Error(`expected Claimed, got ${result._tag}`)
    return result.lease
  }

  it.scoped("answers replays, in-flight duplicates and mismatches without locking or writing the row", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = "idempotency_read_only"
      yield* SqlIdempotencyStore.createTable({ tableName: table })
      const store = yield* SqlIdempotencyStore.make({ tableName: table })
      // A row's version: a new version (an update) changes xmin and ctid; a row lock sets xmax.
      const version = (key: string) =>
        sql<{ readonly xmin: string; readonly xmax: string; readonly ctid: string }>`
          SELECT xmin::text AS xmin, xmax::text AS xmax, ctid::text AS ctid FROM ${sql(table)}
          WHERE idempotency_key = ${key}`

      const done = leaseOf(yield* claim(store, "done", "fp"))
      assert.isTrue(yield* store.complete(done, { outcome: "success", payload: `{"ok":true}` }))
      leaseOf(yield* claim(store, "busy", "fp"))
      const before = [...(yield* version("done")), ...(yield* version("busy"))]
      assert.deepStrictEqual(before.map((row) => row.xmax), ["0", "0"])

      const replay = yield* claim(store, "done", "fp")
      assert.strictEqual(replay._tag, "Completed")
      if (replay._tag === "Completed") assert.strictEqual(replay.record.payload, `{"ok":true}`)
      assert.strictEqual((yield* claim(store, "done", "another"))._tag, "Mismatch")
      assert.strictEqual((yield* claim(store, "busy", "fp"))._tag, "InProgress")
      assert.strictEqual((yield* claim(store, "busy", "another"))._tag, "Mismatch")

      assert.deepStrictEqual([...(yield* version("done")), ...(yield* version("busy"))], before)
    }))

  it.scoped("keeps a store in a table of another schema", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SCHEMA billing`
      yield* SqlIdempotencyStore.createTable({ tableName: "billing.idempotency_keys" })
      const store = yield* SqlIdempotencyStore.make({ tableName: "billing.idempotency_keys" })
      const lease = leaseOf(yield* claim(store, "k", "fp"))
      assert.isTrue(yield* store.heartbeat(lease))
      assert.isTrue(yield* store.complete(lease, { outcome: "failure", payload: `{"_tag":"CardDeclined"}` }))
      const replay = yield* claim(store, "k", "fp")
      assert.strictEqual(replay._tag, "Completed")
      const released = leaseOf(yield* claim(store, "r", "fp"))
      assert.isTrue(yield* store.release(released))
      assert.strictEqual(leaseOf(yield* claim(store, "r", "fp")).attempt, 2)
      const rows = yield* sql<{ readonly count: number }>`SELECT count(*)::int AS count FROM billing.idempotency_keys`
      assert.strictEqual(rows[0]?.count, 2)
      assert.strictEqual(yield* store.deleteExpired(10), 0)
    }))

  it.scoped("a custom table works end to end: every object named after it, every claim through its own functions", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE SCHEMA ledger`
      const tableName = "ledger.payment_keys"
      yield* SqlIdempotencyStore.createTable({ tableName })

      // The functions live in the table's schema, named after it; constraints and the index take the bare name.
      const functions = yield* sql<{ readonly name: string; readonly source: string }>`
        SELECT p.proname AS name, p.prosrc AS source FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = 'ledger' ORDER BY p.proname`
      assert.deepStrictEqual(functions.map((f) => f.name), [
        "payment_keys_claim",
        "payment_keys_claim_batch",
        "payment_keys_claim_one",
        "payment_keys_complete",
        "payment_keys_complete_batch",
        "payment_keys_heartbeat",
        "payment_keys_release"
      ])
      for (const f of functions) {
        assert.notInclude(f.source, ":BULWARK", `${f.name}: no placeholder left`)
        assert.notInclude(f.source, "bulwark_idempotency_keys", `${f.name}: nothing of the default table`)
      }
      const claimOne = functions.find((f) => f.name === "payment_keys_claim_one")?.source ?? ""
      assert.include(claimOne, "ledger.payment_keys")
      const named = yield* sql<{ readonly name: string }>`
        SELECT conname AS name FROM pg_constraint WHERE conrelid = 'ledger.payment_keys'::regclass AND contype = 'c'
        UNION ALL SELECT indexname FROM pg_indexes WHERE schemaname = 'ledger' AND indexname <> 'payment_keys_pkey'
        ORDER BY name`
      assert.deepStrictEqual(named.map((row) => row.name), [
        "payment_keys_attempt",
        "payment_keys_completed",
        "payment_keys_expires_at",
        "payment_keys_in_progress",
        "payment_keys_outcome",
        "payment_keys_state"
      ])

      // Idempotency.run on it, 20 keys × 5 concurrent duplicates, batched (one statement out at a time, so the rest
      // queue and go together through payment_keys_claim_batch and payment_keys_complete_batch).
      const store = yield* SqlIdempotencyStore.make({ tableName, batching: { maxInFlight: 1 } })
      const keys = Array.from({ length: 20 }, (_, i) => `order-${i}`)
      const { executions, runs, values } = yield* runDuplicates(store, {
        scope: "POST /ledger",
        keys,
        duplicates: 5,
        answer: (key) => `done ${key}`
      }).pipe(TestServices.provideLive) // duplicates wait for the first on the live clock
      assert.deepStrictEqual(executions, keys.map(() => 1), "each key ran once")
      assert.deepStrictEqual(values, runs.map((key) => `done ${key}`))
      const rows = yield* sql<{ readonly count: number }>`
        SELECT count(*)::int AS count FROM ledger.payment_keys WHERE state = 'completed'`
      assert.strictEqual(rows[0]?.count, keys.length)
      // The default table was never touched.
      const defaults = yield* sql<
        { readonly count: number }
      >`SELECT count(*)::int AS count FROM bulwark_idempotency_keys`
      assert.strictEqual(defaults[0]?.count, 0)
    }))

  it.scoped("refuses a table name that its objects' names would not fit", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SqlIdempotencyStore.make({ tableName: "t".repeat(52) }))
      assert.instanceOf(error, Failure.InvalidOptionsError)
      assert.strictEqual(error.option, "tableName")
      const refused = yield* Effect.flip(SqlIdempotencyStore.createTable({ tableName: "Bad-Name" }))
      assert.instanceOf(refused, Failure.InvalidOptionsError)
    }))
})
