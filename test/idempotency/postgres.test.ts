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
import * as ScratchPostgres from "../support/postgres.js"
import { conformance } from "./conformance.js"
import { claimRequest } from "./support.js"

// The store's statements run on real I/O: let fibers woken by TestClock finish their round trips.
const settle = Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 30)))

let tables = 0

// Batching on (the default) and off: each call alone, as one statement per call.
for (const batching of [true, false] as const) {
  layer(ScratchPostgres.layer({ maxConnections: 8 }), { timeout: 30_000 })(
    `SqlIdempotencyStore${batching ? "" : " without batching"}`,
    (it) => {
      conformance(it, {
        name: batching ? "postgres" : "postgres, unbatched",
        fresh: Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const table = `idempotency_test_${++tables}`
          yield* Effect.orDie(SqlIdempotencyStore.createTable({ tableName: table }))
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

  it.effect("answers replays, in-flight duplicates and mismatches without locking or writing the row", () =>
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

  it.effect("keeps a store in a table of another schema", () =>
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

  it.effect("refuses a table name that its objects' names would not fit", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SqlIdempotencyStore.make({ tableName: "t".repeat(52) }))
      assert.instanceOf(error, Failure.InvalidOptionsError)
      assert.strictEqual(error.option, "tableName")
      const refused = yield* Effect.flip(SqlIdempotencyStore.createTable({ tableName: "Bad-Name" }))
      assert.instanceOf(refused, Failure.InvalidOptionsError)
    }))
})
