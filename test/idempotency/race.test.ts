/**
 * Duplicates fired at once, for real, in one process: 100 keys × 20 concurrent requests over a pool of 8
 * connections. Every key's handler runs exactly once, and every request for a key gets the identical result.
 * (`race-processes.test.ts` does the same from two OS processes.)
 *
 * Real time: the duplicates wait for the first request (`waitForInFlight`), polling PostgreSQL.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as ScratchPostgres from "../support/postgres.js"
import { checkResults, createSideEffects, DUPLICATES, KEYS, Outcome, type Row, sideEffects } from "./support.js"

const Postgres = Layer.provideMerge(SqlIdempotencyStore.layer(), ScratchPostgres.layer({ maxConnections: 8 }))

describe("concurrent duplicates on PostgreSQL, in one process", () => {
  it.live(
    "100 keys × 20 concurrent duplicates over 8 pooled connections execute exactly 100 times",
    () =>
      Effect.gen(function*() {
        yield* createSideEffects
        const scope = "race in one process"
        const sql = yield* SqlClient.SqlClient
        const calls = Array.from({ length: KEYS }, (_, k) => `key-${k}`).flatMap((key) =>
          Array.from({ length: DUPLICATES }, (_, d) => ({ key, executor: `${d}/${crypto.randomUUID()}` }))
        )
        const rows = yield* Effect.forEach(calls, ({ executor, key }) =>
          Idempotency.run({
            scope,
            key,
            fingerprint: "same request",
            success: Outcome,
            failure: Schema.Never,
            waitForInFlight: "30 seconds"
          })((execution) =>
            sql`INSERT INTO idempotency_side_effects (scope, key, executor, attempt)
            VALUES (${scope}, ${key}, ${executor}, ${execution.attempt})`.pipe(
              Effect.zipRight(Effect.sleep("20 millis")),
              Effect.as({ key, executor, attempt: execution.attempt }),
              Effect.orDie
            )
          ).pipe(Effect.map((result): Row => [key, result._tag, result.value])), { concurrency: "unbounded" })
        checkResults(rows, yield* sideEffects(scope))
      }).pipe(Effect.provide(Postgres)),
    60_000
  )
})
