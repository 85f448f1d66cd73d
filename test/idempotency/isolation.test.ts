/**
 * `Idempotency.run` inside REPEATABLE READ and SERIALIZABLE transactions, plain and `transactional`, on PostgreSQL.
 *
 * A transaction's snapshot cannot show a key another transaction claimed or changed after it was taken, so its
 * claim either takes the key (the unique key and the row lock still decide between concurrent claims) or fails with
 * a serialization failure. That failure aborted the caller's transaction: `run` answers `IdempotencyStoreError`
 * with `abortedTransaction: true` (transient), and running the whole transaction again replays or executes. Never
 * two executions of a key, never a success whose COMMIT would silently roll back.
 */
import * as Failure from "@bulwark/resilience/Failure"
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import { assert, layer } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import { ChargeFailure, GatewayBusy } from "./conformance.js"

const Receipt = Schema.Struct({ key: Schema.String })
const SCOPE = "POST /isolated-charges"
const LEVELS = ["REPEATABLE READ", "SERIALIZABLE"] as const
type Level = typeof LEVELS[number]

/** The caller's own reason to roll back. */
class Abandon extends Data.TaggedError("Abandon")<{}> {}

/** `withTransaction` turns a failed COMMIT into a defect: a serialization failure there is the caller's to retry. */
class CommitConflict extends Data.TaggedError("CommitConflict")<{}> {}

const isAborted = (u: unknown): u is Idempotency.IdempotencyStoreError =>
  u instanceof Idempotency.IdempotencyStoreError && u.abortedTransaction === true

const isSerializationFailure = (u: unknown): boolean =>
  u instanceof SqlError && hasProperty(u.cause, "code") && u.cause.code === "40001"

layer(ScratchPostgres.layer({ maxConnections: 10 }), { timeout: 120_000 })(
  "Idempotency.run inside REPEATABLE READ and SERIALIZABLE transactions",
  (it) => {
    const setUp = Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      yield* sql`CREATE TABLE IF NOT EXISTS isolated_charges (id bigserial PRIMARY KEY, idempotency_key text NOT NULL)`
      yield* sql`CREATE TABLE IF NOT EXISTS isolated_marks (idempotency_key text NOT NULL)`
      return yield* SqlIdempotencyStore.make()
    })

    const count = (table: string, key: string) =>
      Effect.flatMap(SqlClient.SqlClient, (sql) =>
        Effect.map(
          Effect.orDie(
            sql<{ readonly count: number }>`SELECT count(*)::int AS count FROM ${
              sql(table)
            } WHERE idempotency_key = ${key}`
          ),
          (rows) => rows[0]?.count ?? -1
        ))

    /** `body` in a transaction of the given isolation level (`SET TRANSACTION` must come first). */
    const inTransaction = <A, E, R>(level: Level, body: Effect.Effect<A, E, R>) =>
      Effect.flatMap(
        SqlClient.SqlClient,
        (sql) => sql.withTransaction(Effect.zipRight(sql.unsafe(`SET TRANSACTION ISOLATION LEVEL ${level}`), body))
      )

    /** Inserts a charge in the handler, then ends as told. */
    const charge = (
      store: IdempotencyStore.Service,
      key: string,
      transactional: boolean,
      end: Effect.Effect<void, ChargeFailure> = Effect.void
    ) =>
      Idempotency.run(
        () =>
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            yield* Effect.orDie(sql`INSERT INTO isolated_charges (idempotency_key) VALUES (${key})`)
            yield* end
            return { key }
          }),
        { scope: SCOPE, key, fingerprint: "fp", success: Receipt, failure: ChargeFailure, transactional }
      ).pipe(Effect.provideService(IdempotencyStore.IdempotencyStore, store))

    const stateOf = (store: IdempotencyStore.Service, key: string) =>
      Effect.map(
        store.lookup({ scope: SCOPE, partition: "", key }),
        (record) => Option.isSome(record) ? record.value.state : undefined
      )

    /** The whole transaction, run again while it was aborted by a serialization failure. Counts the runs. */
    const retried = <A, E, R>(level: Level, body: Effect.Effect<A, E, R>, runs: { value: number }) =>
      Effect.suspend(() => {
        runs.value++
        return inTransaction(level, body).pipe(
          Effect.catchSomeDefect((defect) =>
            isSerializationFailure(defect) ? Option.some(Effect.fail(new CommitConflict())) : Option.none()
          )
        )
      }).pipe(Effect.retry({ times: 100, while: (error) => isAborted(error) || error instanceof CommitConflict }))

    /** Waits (polling the server) until `n` sessions of this database wait for a lock. */
    const sessionsWaitingForLocks = (n: number) =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        for (let poll = 0; poll < 500; poll++) {
          const rows = yield* Effect.orDie(sql<{ readonly waiting: number }>`
            SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND wait_event_type = 'Lock'`)
          if ((rows[0]?.waiting ?? 0) >= n) return
          yield* Effect.sleep("10 millis")
        }
        return yield* Effect.dieMessage(`no session waited for a lock within 5 seconds`)
      }).pipe(Effect.withClock(Clock.make()))

    for (const level of LEVELS) {
      for (const transactional of [false, true]) {
        const mode = transactional ? "transactional" : "plain"
        const tag = `${level === "SERIALIZABLE" ? "ser" : "rr"}-${mode}`

        it.scoped(`${level}, ${mode}: runs once inside the transaction; a repeat in a new transaction replays`, () =>
          Effect.gen(function*() {
            const store = yield* setUp
            const key = `${tag}-alone`
            const first = yield* inTransaction(level, charge(store, key, transactional))
            assert.strictEqual(first._tag, "Executed")
            const again = yield* inTransaction(level, charge(store, key, transactional))
            assert.strictEqual(again._tag, "Replayed")
            assert.deepStrictEqual(again.value, { key })
            assert.strictEqual(yield* count("isolated_charges", key), 1)
            assert.strictEqual(yield* stateOf(store, key), "completed")
          }))

        it.scoped(
          `${level}, ${mode}: a key completed after the snapshot (absent or released in it) aborts the transaction with a typed, transient error; run again as a whole, it replays`,
          () =>
            Effect.gen(function*() {
              const store = yield* setUp
              // Absent in the snapshot (the claim's INSERT meets the other's row); released in it (its FOR UPDATE
              // meets the other's update).
              for (const released of [false, true]) {
                const key = `${tag}-late-${released ? "released" : "absent"}`
                if (released) {
                  // Outside any transaction of the caller's, so that the release commits.
                  const busy = charge(store, key, transactional, Effect.fail(new GatewayBusy({ status: 503 })))
                  assert.instanceOf(yield* Effect.flip(busy), GatewayBusy)
                  assert.strictEqual(yield* stateOf(store, key), "released")
                }
                const snapshotTaken = yield* Deferred.make<void>()
                const go = yield* Deferred.make<void>()
                const late = yield* Effect.fork(Effect.exit(inTransaction(
                  level,
                  Effect.gen(function*() {
                    const sql = yield* SqlClient.SqlClient
                    // The snapshot is taken here, and this transaction's own write must roll back with it.
                    yield* Effect.orDie(sql`INSERT INTO isolated_marks (idempotency_key) VALUES (${key})`)
                    yield* Deferred.succeed(snapshotTaken, undefined)
                    yield* Deferred.await(go)
                    return yield* charge(store, key, transactional)
                  })
                )))
                yield* Deferred.await(snapshotTaken)
                const first = yield* inTransaction(level, charge(store, key, transactional))
                assert.strictEqual(first._tag, "Executed")
                assert.strictEqual(first.attempt, released ? 2 : 1)
                yield* Deferred.succeed(go, undefined)

                const exit = yield* Fiber.join(late)
                assert.isTrue(Exit.isFailure(exit))
                const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
                assert.isTrue(Option.isSome(error) && isAborted(error.value), String(exit))
                if (Option.isSome(error) && isAborted(error.value)) {
                  assert.strictEqual(error.value.operation, "claim")
                  assert.isTrue(Failure.isTransient(error.value))
                  assert.deepStrictEqual(
                    Failure.classifyError(error.value, Failure.defaultClassifier),
                    Option.some("transient")
                  )
                  assert.include(error.value.message, "SQLSTATE 40001")
                  assert.include(error.value.message, "run it again as a whole")
                }
                assert.strictEqual(yield* count("isolated_marks", key), 0)

                const again = yield* inTransaction(level, charge(store, key, transactional))
                assert.strictEqual(again._tag, "Replayed")
                assert.strictEqual(again.attempt, first.attempt)
                // Plus, in plain mode, the write of the released attempt (not undone without `transactional`).
                assert.strictEqual(yield* count("isolated_charges", key), released && !transactional ? 2 : 1)
              }
            })
        )

        it.scoped(
          `${level}, ${mode}: a claim waiting on a concurrent uncommitted claim is aborted when that one commits, and executes when it rolls back`,
          () =>
            Effect.gen(function*() {
              const store = yield* setUp
              for (const commits of [true, false]) {
                const key = `${tag}-waiting-${commits ? "commit" : "rollback"}`
                const holding = yield* Deferred.make<void>()
                const end = yield* Deferred.make<void>()
                const first = yield* Effect.fork(Effect.exit(inTransaction(
                  level,
                  Effect.gen(function*() {
                    const result = yield* charge(store, key, transactional)
                    yield* Deferred.succeed(holding, undefined)
                    yield* Deferred.await(end)
                    return commits ? result : yield* Effect.fail(new Abandon())
                  })
                )))
                yield* Deferred.await(holding)
                const second = yield* Effect.fork(Effect.exit(inTransaction(level, charge(store, key, transactional))))
                yield* sessionsWaitingForLocks(1)
                yield* Deferred.succeed(end, undefined)
                const firstExit = yield* Fiber.join(first)
                const secondExit = yield* Fiber.join(second)
                if (commits) {
                  assert.isTrue(Exit.isSuccess(firstExit) && firstExit.value._tag === "Executed")
                  const error = Exit.isFailure(secondExit) ? Cause.failureOption(secondExit.cause) : Option.none()
                  assert.isTrue(Option.isSome(error) && isAborted(error.value), String(secondExit))
                } else {
                  assert.isTrue(Exit.isFailure(firstExit))
                  assert.isTrue(Exit.isSuccess(secondExit) && secondExit.value._tag === "Executed", String(secondExit))
                }
                assert.strictEqual(yield* count("isolated_charges", key), 1)
                assert.strictEqual(yield* stateOf(store, key), "completed")
              }
            })
        )

        it.scoped(
          `${level}, ${mode}: 4 keys × 8 concurrent transactions, each run again as a whole when aborted: exactly one execution per key, every answer the same`,
          () =>
            Effect.gen(function*() {
              const store = yield* setUp
              const keys = Array.from({ length: 4 }, (_, i) => `${tag}-race-${i}`)
              const attempts = keys.flatMap((key) => Array.from({ length: 8 }, () => key))
              const runs = { value: 0 }
              const results = yield* Effect.forEach(
                attempts,
                (key) => retried(level, charge(store, key, transactional), runs),
                { concurrency: 8 }
              )
              assert.deepStrictEqual(results.map((result) => result.value.key), attempts)
              for (const key of keys) {
                const executed = results.filter((result) => result.value.key === key && result._tag === "Executed")
                assert.strictEqual(executed.length, 1, key)
                assert.strictEqual(yield* count("isolated_charges", key), 1)
              }
              assert.isAtLeast(runs.value, attempts.length)
            })
        )
      }
    }

    it.scoped(
      "plain: a completion that fails inside the caller's (aborted) transaction is the caller's error, never a success that COMMIT would silently roll back",
      () =>
        Effect.gen(function*() {
          const store = yield* setUp
          const sql = yield* SqlClient.SqlClient
          for (const level of LEVELS) {
            const key = `aborted-by-handler-${level === "SERIALIZABLE" ? "ser" : "rr"}`
            // The handler swallows a failed statement: its transaction is aborted, and so is every write after it.
            const swallowing = Idempotency.run(
              () => Effect.as(Effect.ignore(sql`SELECT 1 / 0`), { key }),
              { scope: SCOPE, key, fingerprint: "fp", success: Receipt, failure: ChargeFailure }
            ).pipe(Effect.provideService(IdempotencyStore.IdempotencyStore, store))
            const error = yield* Effect.flip(inTransaction(level, swallowing))
            assert.isTrue(isAborted(error), String(error))
            if (isAborted(error)) assert.strictEqual(error.operation, "complete")
            assert.strictEqual(yield* stateOf(store, key), undefined)
          }
        })
    )

    /** `body` on connections whose every transaction (single statements too) runs at `level`. */
    const withDefaultIsolation = <A, E, R>(level: Level, body: Effect.Effect<A, E, R>) =>
      Effect.gen(function*() {
        const { url } = yield* ScratchPostgres.ScratchDatabase
        const options = encodeURIComponent(
          `-c default_transaction_isolation=${level.toLowerCase().replace(" ", "\\ ")}`
        )
        const client = yield* Layer.build(
          PgClient.layer({ url: Redacted.make(`${url}?options=${options}`), maxConnections: 6 }).pipe(Layer.orDie)
        )
        return yield* Effect.provide(
          Effect.gen(function*() {
            const sql = yield* SqlClient.SqlClient
            const rows = yield* Effect.orDie(
              sql<{ readonly transaction_isolation: string }>`SHOW transaction_isolation`
            )
            assert.strictEqual(rows[0]?.transaction_isolation, level.toLowerCase())
            return yield* body
          }),
          client
        )
      })

    for (const level of LEVELS) {
      it.scoped(
        `default_transaction_isolation = ${level}: a claim of its own that meets a concurrent commit is sent again, and replays instead of failing`,
        () =>
          withDefaultIsolation(
            level,
            Effect.gen(function*() {
              const store = yield* setUp
              const sql = yield* SqlClient.SqlClient
              const key = `default-${level === "SERIALIZABLE" ? "ser" : "rr"}-replays`
              const holding = yield* Deferred.make<void>()
              const end = yield* Deferred.make<void>()
              const holder = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
                const result = yield* charge(store, key, false)
                yield* Deferred.succeed(holding, undefined)
                yield* Deferred.await(end)
                return result
              })))
              yield* Deferred.await(holding)
              // Its INSERT waits for the holder's; once that commits, the snapshot it started with cannot show it.
              const alone = yield* Effect.fork(charge(store, key, false))
              yield* sessionsWaitingForLocks(1)
              yield* Deferred.succeed(end, undefined)
              assert.strictEqual((yield* Fiber.join(holder))._tag, "Executed")
              const replayed = yield* Fiber.join(alone)
              assert.strictEqual(replayed._tag, "Replayed")
              assert.strictEqual(yield* count("isolated_charges", key), 1)
            })
          )
      )

      it.scoped(
        `default_transaction_isolation = ${level}: 5 keys × 12 concurrent duplicates (batched claims, plain and transactional): one execution per key, every answer the same`,
        () =>
          withDefaultIsolation(
            level,
            Effect.gen(function*() {
              const store = yield* setUp
              for (const transactional of [false, true]) {
                const prefix = `default-${level === "SERIALIZABLE" ? "ser" : "rr"}-${transactional}-race`
                const keys = Array.from({ length: 5 }, (_, i) => `${prefix}-${i}`)
                const attempts = keys.flatMap((key) => Array.from({ length: 12 }, () => key))
                const results = yield* Effect.forEach(
                  attempts,
                  (key) =>
                    Idempotency.run(
                      () =>
                        Effect.gen(function*() {
                          const sql = yield* SqlClient.SqlClient
                          yield* Effect.orDie(sql`INSERT INTO isolated_charges (idempotency_key) VALUES (${key})`)
                          return { key }
                        }),
                      {
                        scope: SCOPE,
                        key,
                        fingerprint: "fp",
                        success: Receipt,
                        failure: ChargeFailure,
                        transactional,
                        waitForInFlight: "20 seconds"
                      }
                    ).pipe(
                      Effect.provideService(IdempotencyStore.IdempotencyStore, store),
                      // SERIALIZABLE may refuse a `transactional` run's COMMIT (SSI's predicate locks are coarse):
                      // a transient store error that released the key, retried as such.
                      Effect.retry({
                        times: 20,
                        while: (error) => error instanceof Idempotency.IdempotencyStoreError
                      })
                    ),
                  { concurrency: "unbounded" }
                )
                assert.deepStrictEqual(results.map((result) => result.value.key), attempts)
                for (const key of keys) {
                  assert.strictEqual(results.filter((r) => r.value.key === key && r._tag === "Executed").length, 1)
                  assert.strictEqual(yield* count("isolated_charges", key), 1)
                }
              }
            })
          ).pipe(Effect.withClock(Clock.make()))
      )
    }

    it.scoped(
      "transactional: a COMMIT that fails (a deferred constraint) is an IdempotencyStoreError, not a defect, and releases the key",
      () =>
        Effect.gen(function*() {
          const store = yield* setUp
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE IF NOT EXISTS isolated_orders (
            order_id text UNIQUE DEFERRABLE INITIALLY DEFERRED)`
          yield* sql`INSERT INTO isolated_orders VALUES ('o-1')`
          const key = "commit-fails"
          const run = Idempotency.run(
            () => Effect.as(Effect.orDie(sql`INSERT INTO isolated_orders VALUES ('o-1')`), { key }),
            { scope: SCOPE, key, fingerprint: "fp", success: Receipt, failure: ChargeFailure, transactional: true }
          ).pipe(Effect.provideService(IdempotencyStore.IdempotencyStore, store))
          const exit = yield* Effect.exit(run)
          const error = Exit.isFailure(exit) ? Cause.failureOption(exit.cause) : Option.none()
          assert.isTrue(
            Option.isSome(error) && error.value instanceof Idempotency.IdempotencyStoreError &&
              error.value.operation === "transaction",
            String(exit)
          )
          assert.strictEqual(yield* stateOf(store, key), "released")
          yield* sql`DELETE FROM isolated_orders`
          const retried = yield* run
          assert.strictEqual(retried._tag, "Executed")
          assert.strictEqual(retried.attempt, 2)
        })
    )
  }
)
