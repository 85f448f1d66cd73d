/**
 * Duplicates fired at once, for real, from two OS processes: 100 keys × 20 concurrent requests, 10 of each key's
 * from each process (8 pooled connections each). Every key's handler runs exactly once, and every request for a
 * key gets the identical result. (`race.test.ts` does the same within one process.)
 *
 * Real time: the duplicates wait for the first request (`waitForInFlight`), polling PostgreSQL.
 */
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import { checkResults, createSideEffects, DUPLICATES, KEYS, Results, sideEffects, startWorker } from "./support.js"

const Postgres = Layer.provideMerge(SqlIdempotencyStore.layer(), ScratchPostgres.layer({ maxConnections: 8 }))

describe("concurrent duplicates on PostgreSQL, from two processes", () => {
  it.live(
    "100 keys × 20 duplicates split over two OS processes execute exactly 100 times",
    () =>
      Effect.gen(function*() {
        yield* createSideEffects
        const { url } = yield* ScratchPostgres.ScratchDatabase
        const scope = "race over processes"
        const config = { mode: "race", url, scope, keys: KEYS, duplicates: DUPLICATES / 2 }
        // The processes take the keys from opposite ends, so that both execute some even when one starts first
        // (each sends all its claims at once: a process that started a few milliseconds early would otherwise have
        // claimed every key before the other's first claim arrived).
        // Killed, if still running, when the scope closes: before the database is dropped (Effect.scoped below).
        const workers = [
          yield* startWorker({ ...config, name: "a" }),
          yield* startWorker({ ...config, name: "b", descending: true })
        ]
        yield* Effect.promise(() => Promise.all(workers.map((w) => w.line("ready"))))
        for (const w of workers) w.child.stdin.write("go\n")
        const outputs = yield* Effect.promise(() => Promise.all(workers.map((w) => w.line("["))))
        const exits = yield* Effect.promise(() => Promise.all(workers.map((w) => w.exited)))
        for (const [i, exit] of exits.entries()) assert.strictEqual(exit.code, 0, workers[i]?.stderr())
        const perProcess = yield* Effect.forEach(outputs, (line) => Schema.decodeUnknown(Results)(line))
        // Both processes really executed some of the keys.
        for (const rows of perProcess) assert.isAbove(rows.filter(([, tag]) => tag === "Executed").length, 0)
        checkResults(perProcess.flat(), yield* sideEffects(scope))
      }).pipe(Effect.scoped, Effect.provide(Postgres)),
    60_000
  )
})
