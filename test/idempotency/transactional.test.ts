/**
 * `Idempotency.run` with `transactional: true` on PostgreSQL: the handler's own
 * writes and the completion commit together (one commit after the claim), and
 * anything that is not a stored success rolls the handler's writes back: a
 * terminal failure (stored after the rollback), a transient failure (released),
 * a defect, an interruption, a lost lease.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as RedisIdempotencyCache from "@bulwark/resilience/RedisIdempotencyCache"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import * as TestRedis from "../support/redis.js"
import { CardDeclined, ChargeFailure, GatewayBusy } from "./conformance.js"

const Receipt = Schema.Struct({ key: Schema.String })

const SCOPE = "POST /charges"

layer(ScratchPostgres.layer({ maxConnections: 8 }), { timeout: 60_000 })("Idempotency.run, transactional", (it) => {
  const setUp = Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql`CREATE TABLE IF NOT EXISTS charges (id bigserial PRIMARY KEY, idempotency_key text NOT NULL)`
    return yield* SqlIdempotencyStore.make()
  })

  const chargesFor = (key: string) =>
    Effect.flatMap(
      SqlClient.SqlClient,
      (sql) =>
        Effect.map(
          sql<{ readonly count: number }>`SELECT count(*)::int AS count FROM charges WHERE idempotency_key = ${key}`,
          (rows) => rows[0]?.count ?? -1
        )
    )

  const stateOf = (store: IdempotencyStore.Service, key: string) =>
    Effect.map(
      store.lookup({ scope: SCOPE, partition: "", key }),
      Option.map((record) => record.state)
    )

  /** Inserts a charge row in the handler, then ends as told. */
  const charge = (
    key: string,
    end: Effect.Effect<void, ChargeFailure, SqlClient.SqlClient> = Effect.void,
    options: { readonly waitForInFlight?: Duration.DurationInput } = {}
  ) =>
    Idempotency.run(
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* Effect.orDie(sql`INSERT INTO charges (idempotency_key) VALUES (${key})`)
          yield* end
          return { key }
        }),
      {
        scope: SCOPE,
        key,
        fingerprint: "fp",
        success: Receipt,
        failure: ChargeFailure,
        transactional: true,
        ...options
      }
    )

  it.scoped("commits the handler's write with the completion; a repeat replays without writing again", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      const run = Effect.provideService(charge("ok-1"), IdempotencyStore.IdempotencyStore, store)
      const first = yield* run
      assert.strictEqual(first._tag, "Executed")
      const second = yield* run
      assert.strictEqual(second._tag, "Replayed")
      assert.deepStrictEqual(second.value, { key: "ok-1" })
      assert.strictEqual(yield* chargesFor("ok-1"), 1)
      assert.deepStrictEqual(yield* stateOf(store, "ok-1"), Option.some("completed"))
    }))

  it.scoped("a terminal failure rolls the write back, and is stored and replayed", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      const run = Effect.provideService(
        charge("declined-1", Effect.fail(new CardDeclined({ reason: "insufficient funds" }))),
        IdempotencyStore.IdempotencyStore,
        store
      )
      const error = yield* Effect.flip(run)
      assert.instanceOf(error, CardDeclined)
      const replayed = yield* Effect.flip(run)
      assert.instanceOf(replayed, CardDeclined)
      assert.strictEqual(yield* chargesFor("declined-1"), 0)
      assert.deepStrictEqual(yield* stateOf(store, "declined-1"), Option.some("completed"))
    }))

  it.scoped("a transient failure rolls the write back and releases: the retry runs again and commits once", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      let calls = 0
      const flaky = Effect.suspend(() => ++calls === 1 ? Effect.fail(new GatewayBusy({ status: 503 })) : Effect.void)
      const run = Effect.provideService(charge("busy-1", flaky), IdempotencyStore.IdempotencyStore, store)
      assert.instanceOf(yield* Effect.flip(run), GatewayBusy)
      assert.strictEqual(yield* chargesFor("busy-1"), 0)
      assert.deepStrictEqual(yield* stateOf(store, "busy-1"), Option.some("released"))
      const retried = yield* run
      assert.strictEqual(retried._tag, "Executed")
      assert.strictEqual(retried.attempt, 2)
      assert.strictEqual(yield* chargesFor("busy-1"), 1)
    }))

  it.scoped("a defect rolls the write back and releases", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      const run = Effect.provideService(
        charge("defect-1", Effect.die("boom")),
        IdempotencyStore.IdempotencyStore,
        store
      )
      const exit = yield* Effect.exit(run)
      assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      assert.strictEqual(yield* chargesFor("defect-1"), 0)
      assert.deepStrictEqual(yield* stateOf(store, "defect-1"), Option.some("released"))
    }))

  it.scoped("an interruption mid-handler rolls the write back and releases", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      const inserted = yield* Deferred.make<void>()
      const run = Effect.provideService(
        charge("interrupted-1", Effect.zipRight(Deferred.succeed(inserted, undefined), Effect.never)),
        IdempotencyStore.IdempotencyStore,
        store
      )
      const fiber = yield* Effect.fork(run)
      yield* Deferred.await(inserted)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* chargesFor("interrupted-1"), 0)
      assert.deepStrictEqual(yield* stateOf(store, "interrupted-1"), Option.some("released"))
    }))

  it.scoped("a lease taken over mid-handler fences the completion: the write rolls back, the caller gets a conflict", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      const { url } = yield* ScratchPostgres.ScratchDatabase
      // Another connection, outside the handler's transaction: it plays the executor that took the key over.
      const other = yield* Effect.provide(
        PgClient.PgClient,
        PgClient.layer({ url: Redacted.make(url), maxConnections: 1 }).pipe(Layer.orDie)
      )
      const takeOver = Effect.orDie(
        other`UPDATE bulwark_idempotency_keys SET owner_token = 'someone-else' WHERE idempotency_key = 'fenced-1'`
      )
      const run = Effect.provideService(charge("fenced-1", takeOver), IdempotencyStore.IdempotencyStore, store)
      const error = yield* Effect.flip(run)
      assert.instanceOf(error, Idempotency.IdempotencyConflictError)
      if (error instanceof Idempotency.IdempotencyConflictError) assert.strictEqual(error.reason, "LeaseLost")
      assert.strictEqual(yield* chargesFor("fenced-1"), 0)
      assert.deepStrictEqual(yield* stateOf(store, "fenced-1"), Option.some("in_progress"))
    }))

  // Live clock: duplicates wait for the first execution by polling.
  it.scoped("100 keys × 20 concurrent duplicates: exactly one committed write per key, every answer the same", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      const keys = Array.from({ length: 100 }, (_, i) => `race-${i}`)
      const attempts = keys.flatMap((key) => Array.from({ length: 20 }, () => key))
      const answers = yield* Effect.forEach(
        attempts,
        (key) =>
          Effect.provideService(
            charge(key, Effect.void, { waitForInFlight: "10 seconds" }),
            IdempotencyStore.IdempotencyStore,
            store
          ).pipe(Effect.map((result) => result.value.key)),
        { concurrency: 40 }
      )
      assert.deepStrictEqual(answers, attempts)
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ readonly keys: number; readonly writes: number }>`
        SELECT count(DISTINCT idempotency_key)::int AS keys, count(*)::int AS writes FROM charges
        WHERE idempotency_key LIKE 'race-%'`
      assert.deepStrictEqual(rows[0], { keys: 100, writes: 100 })
    }).pipe(Effect.withClock(Clock.make())))

  it.scoped("through a Redis cache: the completion is not cached before the commit, replays come from PostgreSQL then Redis", () =>
    Effect.gen(function*() {
      const store = yield* setUp
      // The keys under it are deleted when the scope closes (after the cache's connection, made later, is closed).
      const prefix = yield* TestRedis.scopedPrefix("transactional")
      const cached = yield* RedisIdempotencyCache.make(store, { redis: TestRedis.connection, prefix })
      assert.isDefined(cached.transaction)
      const run = Effect.provideService(charge("cached-1"), IdempotencyStore.IdempotencyStore, cached)
      assert.strictEqual((yield* run)._tag, "Executed")
      assert.strictEqual((yield* run)._tag, "Replayed")
      assert.strictEqual((yield* run)._tag, "Replayed")
      assert.strictEqual(yield* chargesFor("cached-1"), 1)
    }).pipe(Effect.scoped))

  it.scoped("without a store transaction (the memory store), the option runs the handler as usual", () =>
    Effect.gen(function*() {
      yield* setUp
      const memory = yield* IdempotencyStore.makeMemory
      assert.isUndefined(memory.transaction)
      const run = Effect.provideService(charge("memory-1"), IdempotencyStore.IdempotencyStore, memory)
      assert.strictEqual((yield* run)._tag, "Executed")
      assert.strictEqual((yield* run)._tag, "Replayed")
      assert.strictEqual(yield* chargesFor("memory-1"), 1)
    }))
})
