/**
 * The PostgreSQL store's batching (`SqlIdempotencyStore.Options.batching`), on
 * real PostgreSQL: concurrent claims and completions share statements; each
 * key is still decided exactly once; batches from two pools that share keys
 * do not deadlock; a claim whose caller went away while its batch was out is
 * given back; and inside a transaction, calls go through the transaction.
 */
import type * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as ScratchPostgres from "../support/postgres.js"
import { claimRequest, runDuplicates } from "./support.js"

let tables = 0

/** A table of its own, whose batch functions log each call's size to `<table>_batches`. */
const loggedTable = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const table = `idempotency_batching_${++tables}`
  yield* SqlIdempotencyStore.createTable({ tableName: table })
  const log = `${table}_batches`
  yield* sql.unsafe(`CREATE TABLE ${log} (kind text NOT NULL, size integer NOT NULL)`)
  for (const kind of ["claim", "complete"] as const) {
    const inner = `${table}_${kind}_batch_inner`
    yield* sql.unsafe(`ALTER FUNCTION ${table}_${kind}_batch RENAME TO ${inner}`)
    const [parameters, columns] = kind === "claim"
      ? [
        "a text[], b text[], c text[], d text[], e text[], f float8[], g float8[]",
        "ordinal integer, claimed boolean, state text, fingerprint text, attempt integer, recovery boolean, lease_remaining_ms float8, expires_in_ms float8, outcome text, payload text"
      ]
      : [
        "a text[], b text[], c text[], d text[], e integer[], f text[], g text[], h float8[]",
        "ordinal integer, written boolean"
      ]
    const args = kind === "claim" ? "a, b, c, d, e, f, g" : "a, b, c, d, e, f, g, h"
    yield* sql.unsafe(`
      CREATE FUNCTION ${table}_${kind}_batch(${parameters}) RETURNS TABLE (${columns}) LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO ${log} VALUES ('${kind}', array_length(c, 1));
        RETURN QUERY SELECT * FROM ${inner}(${args});
      END $$`)
  }
  const sizes = (kind: "claim" | "complete") =>
    Effect.map(
      sql<{ readonly size: number }>`SELECT size FROM ${sql(log)} WHERE kind = ${kind}`,
      (rows) => rows.map((row) => row.size)
    )
  return { table, sizes }
})

/**
 * Locks a key's row from another connection, in a transaction held open until the returned effect is run: a claim
 * of that key (if claimable) waits until then.
 */
const lockRow = (table: string, key: string) =>
  Effect.gen(function*() {
    const { url } = yield* ScratchPostgres.ScratchDatabase
    const locker = yield* Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }))
    const locked = yield* Effect.makeLatch(false)
    const release = yield* Effect.makeLatch(false)
    const holder = yield* Effect.fork(
      Effect.flatMap(SqlClient.SqlClient, (locking) =>
        locking.withTransaction(
          locking`SELECT 1 FROM ${locking(table)} WHERE idempotency_key = ${key} FOR UPDATE`.pipe(
            Effect.zipRight(locked.open),
            Effect.zipRight(release.await)
          )
        )).pipe(Effect.provide(locker), Effect.orDie)
    )
    yield* locked.await
    return Effect.zipRight(release.open, Fiber.join(holder))
  })

/** Claims `key` and releases it: a released row, which a claim must lock to take. */
const releasedRow = (store: IdempotencyStore.Service, key: string) =>
  Effect.gen(function*() {
    const claimed = yield* store.claim(claimRequest(key))
    if (claimed._tag !== "Claimed") return yield* Effect.die(`expected a claim of ${key}`)
    assert.isTrue(yield* store.release(claimed.lease))
  })

layer(ScratchPostgres.layer({ maxConnections: 8 }), { timeout: 60_000 })("SqlIdempotencyStore batching", (it) => {
  it.effect("batches from two pools over the same keys, in opposite orders, do not deadlock", () =>
    Effect.gen(function*() {
      const { table } = yield* loggedTable
      const { url } = yield* ScratchPostgres.ScratchDatabase
      const otherPool = yield* Layer.build(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 }))
      const one = yield* SqlIdempotencyStore.make({ tableName: table, batching: { maxInFlight: 2 } })
      const other = yield* SqlIdempotencyStore.make({ tableName: table, batching: { maxInFlight: 2 } }).pipe(
        Effect.provide(otherPool)
      )
      const keys = Array.from({ length: 40 }, (_, i) => `shared-${String(i).padStart(2, "0")}`)
      for (let round = 0; round < 5; round++) {
        const claimAll = (store: IdempotencyStore.Service, order: ReadonlyArray<string>) =>
          Effect.forEach(order, (key) => store.claim(claimRequest(`${round}-${key}`)), { concurrency: "unbounded" })
        const [a, b] = yield* Effect.all([claimAll(one, keys), claimAll(other, [...keys].reverse())], {
          concurrency: 2
        })
        // Every key claimed exactly once, by one pool or the other.
        const claimed = [...a, ...b].filter((result) => result._tag === "Claimed").length
        assert.strictEqual(claimed, keys.length)
      }
    }).pipe(Effect.scoped))

  it.scoped("a table made before the batch functions existed still works, one call per statement", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const table = `idempotency_batching_${++tables}`
      yield* SqlIdempotencyStore.createTable({ tableName: table })
      yield* sql.unsafe(`DROP FUNCTION ${table}_claim_batch; DROP FUNCTION ${table}_complete_batch`)
      const store = yield* SqlIdempotencyStore.make({ tableName: table, batching: { maxInFlight: 1 } })
      const keys = Array.from({ length: 30 }, (_, i) => `old-${i}`)
      const claims = yield* Effect.forEach(keys, (key) => store.claim(claimRequest(key)), { concurrency: "unbounded" })
      const leases = claims.flatMap((claimed) => claimed._tag === "Claimed" ? [claimed.lease] : [])
      assert.strictEqual(leases.length, keys.length)
      const written = yield* Effect.forEach(
        leases,
        (lease) => store.complete(lease, { outcome: "success", payload: `"ok"` }),
        { concurrency: "unbounded" }
      )
      assert.deepStrictEqual(written, keys.map(() => true))
      const rows = yield* sql<{ readonly count: number }>`
        SELECT count(*)::int AS count FROM ${sql(table)} WHERE state = 'completed'`
      assert.strictEqual(rows[0]?.count, keys.length)
    }))

  it.scoped("refuses batching limits out of range", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SqlIdempotencyStore.make({ batching: { maxBatch: 0 } }))
      assert.strictEqual(error.option, "batching.maxBatch")
      const inFlight = yield* Effect.flip(SqlIdempotencyStore.make({ batching: { maxInFlight: 1.5 } }))
      assert.strictEqual(inFlight.option, "batching.maxInFlight")
    }))
})

// Waiting for in-flight keys and for row locks takes real time: these run on the live clock.
layer(ScratchPostgres.layer({ maxConnections: 8 }), { timeout: 60_000, excludeTestServices: true })(
  "SqlIdempotencyStore batching (live clock)",
  (it) => {
    it.scoped("concurrent runs share statements, and each key still runs exactly once", () =>
      Effect.gen(function*() {
        const { sizes, table } = yield* loggedTable
        const store = yield* SqlIdempotencyStore.make({ tableName: table, batching: { maxInFlight: 1 } })
        const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`)
        // 50 keys, 4 concurrent callers each: 200 runs at once.
        const { executions, runs, values } = yield* runDuplicates(store, {
          scope: "POST /payments",
          keys,
          duplicates: 4,
          answer: (key) => `charged ${key}`
        })
        assert.deepStrictEqual(values, runs.map((key) => `charged ${key}`))
        assert.deepStrictEqual(executions, keys.map(() => 1))
        // Batches formed: some statements carried more than one call.
        const claims = yield* sizes("claim")
        const completions = yield* sizes("complete")
        assert.isAbove(Math.max(...claims), 1)
        assert.isAbove(Math.max(...completions), 1)
        assert.isAtMost(Math.max(...claims, ...completions), 64)
      }))

    it.effect("gives back a claim whose caller went away while its batch was out", () =>
      Effect.gen(function*() {
        const { table } = yield* loggedTable
        const sql = yield* SqlClient.SqlClient
        const store = yield* SqlIdempotencyStore.make({ tableName: table, batching: { maxInFlight: 1 } })
        // Two released keys whose rows another connection locks: a claim of either waits for that lock.
        yield* releasedRow(store, "blocker-1")
        yield* releasedRow(store, "blocker-2")
        const unlockFirst = yield* lockRow(table, "blocker-1")
        const unlockSecond = yield* lockRow(table, "blocker-2")
        // The claim of blocker-1 is out (waiting on the lock); "victim" and blocker-2 queue, and go out together.
        const first = yield* Effect.fork(store.claim(claimRequest("blocker-1")))
        yield* Effect.sleep("100 millis")
        const victim = yield* Effect.fork(store.claim(claimRequest("victim")))
        const second = yield* Effect.fork(store.claim(claimRequest("blocker-2")))
        yield* Effect.sleep("100 millis")
        yield* unlockFirst
        assert.strictEqual((yield* Fiber.join(first))._tag, "Claimed")
        // The batch [blocker-2, victim] is out, held up by blocker-2's lock (keys go in order): its caller leaves.
        yield* Effect.sleep("100 millis")
        yield* Fiber.interrupt(victim)
        yield* unlockSecond
        assert.strictEqual((yield* Fiber.join(second))._tag, "Claimed")
        const state = sql<{ readonly state: string }>`
        SELECT state FROM ${sql(table)} WHERE idempotency_key = 'victim'`
        let final: string | undefined
        for (let tries = 0; tries < 50 && final !== "released"; tries++) {
          final = (yield* state)[0]?.state
          if (final !== "released") yield* Effect.sleep("20 millis")
        }
        assert.strictEqual(final, "released")
      }).pipe(Effect.scoped))

    it.effect("inside a transaction, a call queued behind a batch goes through the transaction's connection", () =>
      Effect.gen(function*() {
        const { sizes, table } = yield* loggedTable
        const sql = yield* SqlClient.SqlClient
        const store = yield* SqlIdempotencyStore.make({ tableName: table, batching: { maxInFlight: 1 } })
        yield* releasedRow(store, "blocker")
        const unlock = yield* lockRow(table, "blocker")
        // The only slot is taken by a claim from outside the transaction, waiting on the lock.
        const outside = yield* Effect.fork(store.claim(claimRequest("blocker")))
        yield* Effect.sleep("100 millis")
        class Rollback extends Error {}
        const inTransaction = Effect.gen(function*() {
          const claimed = yield* store.claim(claimRequest("t-1"))
          if (claimed._tag !== "Claimed") return yield* Effect.die(`expected a claim, got ${claimed._tag}`)
          assert.isTrue(yield* store.complete(claimed.lease, { outcome: "success", payload: `"ok"` }))
          return yield* Effect.fail(new Rollback())
        })
        const transaction = yield* Effect.fork(Effect.flip(sql.withTransaction(inTransaction)))
        yield* Effect.sleep("100 millis")
        yield* unlock
        assert.strictEqual((yield* Fiber.join(outside))._tag, "Claimed")
        assert.instanceOf(yield* Fiber.join(transaction), Rollback)
        // Rolled back with the transaction: the claim and completion did not go out on another connection.
        const rows = yield* sql<{ readonly count: number }>`
        SELECT count(*)::int AS count FROM ${sql(table)} WHERE idempotency_key = 't-1'`
        assert.strictEqual(rows[0]?.count, 0)
        assert.deepStrictEqual(yield* sizes("claim"), [])
      }).pipe(Effect.scoped))
  }
)
