/**
 * Helpers shared by the idempotency tests: the side-effect table the handlers write to, starting `worker.ts` as a
 * child process (killed when the scope closes), and a claim request.
 */
import type * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type ChildProcessWithoutNullStreams } from "node:child_process"
import { randomUUID } from "node:crypto"
import { resolve } from "node:path"
import * as Process from "../support/process.js"

const worker = resolve(Process.root, "test/idempotency/worker.ts")

/** One row per handler execution: what the tests count. */
export const createSideEffects = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`CREATE TABLE IF NOT EXISTS idempotency_side_effects (
    scope text NOT NULL,
    key text NOT NULL,
    executor text NOT NULL,
    attempt integer NOT NULL,
    at timestamptz NOT NULL DEFAULT clock_timestamp()
  )`
).pipe(Effect.orDie)

export interface SideEffect {
  readonly key: string
  readonly executor: string
  readonly attempt: number
}

export const sideEffects = (scope: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<SideEffect>`SELECT key, executor, attempt FROM idempotency_side_effects WHERE scope = ${scope} ORDER BY at`
  )
    .pipe(Effect.orDie)

export interface Worker {
  readonly child: ChildProcessWithoutNullStreams
  /** Resolves when the worker printed a line starting with `prefix`; gives the line. */
  readonly line: (prefix: string) => Promise<string>
  /** Resolves with the worker's exit code (or signal). */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: NodeJS.Signals | null }>
  readonly stdout: () => string
  readonly stderr: () => string
}

/** `worker.ts` with `config`, SIGKILLed when the scope closes (a no-op once it has exited). */
export const startWorker = (config: object): Effect.Effect<Worker, never, Scope.Scope> =>
  Effect.map(Process.scopedTs(worker, [JSON.stringify(config)], { stdin: "open" }), (child) => ({
    child: child.process,
    // Complete lines only: output arrives in chunks of at most 64 KiB.
    line: (prefix: string) =>
      child.waitFor(new RegExp(`^(${prefix.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}[^\n]*)\n`, "m")).then(
        (match) => match[1] ?? ""
      ),
    exited: child.exited,
    stdout: child.stdout,
    stderr: child.stderr
  }))

// -----------------------------------------------------------------------------
// The race tests: 100 keys × 20 duplicates
// -----------------------------------------------------------------------------

export const KEYS = 100
export const DUPLICATES = 20

export const Outcome = Schema.Struct({ key: Schema.String, executor: Schema.String, attempt: Schema.Number })
export const Results = Schema.parseJson(
  Schema.Array(Schema.Tuple(Schema.String, Schema.Literal("Executed", "Replayed"), Outcome))
)

export type Row = readonly [key: string, tag: "Executed" | "Replayed", value: typeof Outcome.Type]

/** Exactly one execution per key, and one identical value for every request of a key. */
export const checkResults = (
  rows: ReadonlyArray<Row>,
  executions: ReadonlyArray<{ readonly key: string; readonly executor: string }>
) => {
  assert.strictEqual(rows.length, KEYS * DUPLICATES)
  assert.strictEqual(executions.length, KEYS, "one side effect per key")
  assert.strictEqual(new Set(executions.map((e) => e.key)).size, KEYS)
  const byKey = new Map<string, Array<Row>>()
  for (const row of rows) byKey.set(row[0], [...(byKey.get(row[0]) ?? []), row])
  assert.strictEqual(byKey.size, KEYS)
  for (const [key, all] of byKey) {
    assert.strictEqual(all.length, DUPLICATES)
    assert.strictEqual(all.filter(([, tag]) => tag === "Executed").length, 1, `${key}: one Executed`)
    const first = all[0]
    if (first === undefined) return assert.fail("no rows")
    for (const [, , value] of all) assert.deepStrictEqual(value, first[2], `${key}: identical results`)
    const execution = executions.find((e) => e.key === key)
    assert.strictEqual(first[2].executor, execution?.executor, `${key}: the value is the one execution's`)
  }
}

/** A claim of `key` for "POST /payments" by a new owner: a 30 s lease, kept an hour. */
export const claimRequest = (key: string, fingerprint = "fp"): IdempotencyStore.ClaimRequest => ({
  scope: "POST /payments",
  partition: "",
  key,
  fingerprint,
  owner: randomUUID(),
  lease: Duration.seconds(30),
  ttl: Duration.hours(1)
})
