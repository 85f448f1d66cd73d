/**
 * A process dies holding a claim mid-execution (SIGKILL): its heartbeat stops, the lease lapses, and the next
 * request with the same key takes over exactly once, told that it is attempt 2 and a recovery.
 *
 * Real time, with a short lease (600 ms): the lease is PostgreSQL's `now()` against a heartbeat in another OS
 * process, and neither can be driven by a TestClock.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import { createSideEffects, sideEffects, startWorker } from "./support.js"

const Outcome = Schema.Struct({ key: Schema.String, executor: Schema.String, attempt: Schema.Number })
const LEASE_MS = 600

const Postgres = Layer.provideMerge(SqlIdempotencyStore.layer(), ScratchPostgres.layer({ maxConnections: 4 }))

describe("a process killed mid-execution", () => {
  it.live(
    "leaves a lease that lapses; the retry takes over once, as attempt 2 and a recovery",
    () =>
      Effect.gen(function*() {
        yield* createSideEffects
        const { url } = yield* ScratchPostgres.ScratchDatabase
        const sql = yield* SqlClient.SqlClient
        const scope = "POST /orders"
        const key = "order-123"
        const options = {
          scope,
          key,
          fingerprint: "same request",
          success: Outcome,
          failure: Schema.Never,
          lease: `${LEASE_MS} millis`
        } as const

        // Killed, if still running, when the scope closes: before the database is dropped (Effect.scoped below).
        const worker = yield* startWorker({ mode: "crash", url, scope, key, leaseMillis: LEASE_MS })
        assert.strictEqual(yield* Effect.promise(() => worker.line("claimed")), "claimed 1")

        // Alive, the worker's heartbeat keeps the claim for longer than one lease.
        yield* Effect.sleep(`${LEASE_MS * 2} millis`)
        const whileAlive = yield* Effect.flip(
          Idempotency.run(options)(() => Effect.die("must not run while the owner lives"))
        )
        assert.instanceOf(whileAlive, Idempotency.IdempotencyConflictError)

        worker.child.kill("SIGKILL")
        const exit = yield* Effect.promise(() => worker.exited)
        assert.strictEqual(exit.signal, "SIGKILL")

        const executions = yield* Ref.make<ReadonlyArray<Idempotency.Execution>>([])
        const retried = yield* Idempotency.run({ ...options, waitForInFlight: "10 seconds" })((execution) =>
          Ref.update(executions, (all) => [...all, execution]).pipe(
            Effect.zipRight(sql`INSERT INTO idempotency_side_effects (scope, key, executor, attempt)
            VALUES (${scope}, ${key}, 'recovering process', ${execution.attempt})`),
            Effect.as({ key, executor: "recovering process", attempt: execution.attempt }),
            Effect.orDie
          )
        )
        assert.deepStrictEqual(retried, {
          _tag: "Executed",
          value: { key, executor: "recovering process", attempt: 2 },
          attempt: 2
        })
        const seen = yield* Ref.get(executions)
        assert.strictEqual(seen.length, 1)
        assert.deepStrictEqual(seen.map((e) => ({ attempt: e.attempt, recovery: e.recovery })), [{
          attempt: 2,
          recovery: true
        }])

        const replayed = yield* Idempotency.run(options)(() => Effect.die("must not run again"))
        assert.deepStrictEqual(replayed, { ...retried, _tag: "Replayed" })

        const effects = yield* sideEffects(scope)
        assert.deepStrictEqual(effects.map((e) => [e.attempt, e.executor.startsWith("crashing process")]), [[1, true], [
          2,
          false
        ]])
        const record = Option.getOrThrow(
          yield* Effect.flatMap(
            IdempotencyStore.IdempotencyStore,
            (store) => store.lookup({ scope, partition: "", key })
          )
        )
        assert.strictEqual(record.state, "completed")
        assert.strictEqual(record.attempt, 2)
        assert.isTrue(record.recovery)
      }).pipe(Effect.scoped, Effect.provide(Postgres)),
    30_000
  )
})
