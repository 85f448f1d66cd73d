/**
 * Two server OS processes (`http-server.worker.ts`) share one scratch PostgreSQL database as
 * their idempotency store. 100 keys, each sent 20 times at once (10 to each process): every key
 * runs exactly once, and all 20 answers for a key are byte-identical (one executed, 19 replays).
 * Needs PostgreSQL on 127.0.0.1:5432 and fails (never skips) when it is not there.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { resolve } from "node:path"
import * as ScratchPostgres from "../support/postgres.js"
import * as Process from "../support/process.js"

const worker = resolve(Process.root, "test/idempotency/http-server.worker.ts")

const KEYS = 100
const DUPLICATES = 20
const KEYS_AT_ONCE = 25

/** A server process, SIGKILLed when the scope closes; its port once it printed `ready <port>`. */
const start = (url: string) =>
  Effect.flatMap(
    Process.scopedTs(worker, [JSON.stringify({ url })]),
    (child) => Effect.promise(() => child.waitFor(/ready (\d+)\n/).then((match) => Number(match[1])))
  )

interface Answer {
  readonly status: number
  readonly replayed: boolean
  readonly body: string
}

const post = (port: number, key: string, amount: number): Promise<Answer> =>
  fetch(`http://127.0.0.1:${port}/charges`, {
    method: "POST",
    headers: { "content-type": "application/json", "idempotency-key": key },
    body: JSON.stringify({ amount })
  }).then(async (response) => ({
    status: response.status,
    replayed: response.headers.get("idempotent-replayed") === "true",
    body: Buffer.from(await response.arrayBuffer()).toString("base64")
  }))

describe("IdempotencyHttp across two server processes on one PostgreSQL", () => {
  // Live services: the servers and the database run on real time.
  layer(ScratchPostgres.layer(), { excludeTestServices: true })((it) => {
    it.scoped(
      "runs each of 100 keys once under 20 concurrent duplicates, and answers each key identically",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { url } = yield* ScratchPostgres.ScratchDatabase
          yield* sql`CREATE TABLE http_side_effects (
          id bigserial PRIMARY KEY,
          idempotency_key text NOT NULL,
          pid integer NOT NULL,
          amount numeric NOT NULL
        )`
          const ports = yield* Effect.all([start(url), start(url)], { concurrency: "unbounded" })
          const keys = Array.from({ length: KEYS }, (_, i) => `multi-${i}-${Math.random().toString(36).slice(2)}`)
          const answers = yield* Effect.forEach(
            keys,
            (key, i) =>
              Effect.promise(() =>
                Promise.all(
                  Array.from({ length: DUPLICATES }, (_, d) => post(ports[d % ports.length] ?? 0, key, i))
                )
              ),
            { concurrency: KEYS_AT_ONCE }
          )
          for (const [i, forKey] of answers.entries()) {
            assert.strictEqual(forKey.length, DUPLICATES)
            assert.deepStrictEqual(forKey.map((a) => a.status), Array(DUPLICATES).fill(201), `key ${i}`)
            assert.strictEqual(new Set(forKey.map((a) => a.body)).size, 1, `key ${i}: answers differ`)
            assert.strictEqual(forKey.filter((a) => !a.replayed).length, 1, `key ${i}: executed answers`)
          }
          const rows = yield* sql<{ readonly executions: number; readonly keys: number; readonly processes: number }>`
          SELECT count(*)::int AS executions,
                 count(DISTINCT idempotency_key)::int AS keys,
                 count(DISTINCT pid)::int AS processes
          FROM http_side_effects`
          assert.deepStrictEqual(rows[0], { executions: KEYS, keys: KEYS, processes: 2 })
        }),
      60_000
    )
  })
})
