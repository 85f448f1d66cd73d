/**
 * Helpers shared by the idempotency tests: the side-effect table the handlers write to, starting `worker.ts` as a
 * child process (killed when the scope closes), a claim request, concurrent duplicate runs on a store, and routing a
 * table's claims through its batch function.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
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

/**
 * Redefines `<table>_claim`, the single claim the store calls, as a batch of one through `<table>_claim_batch`: a
 * store on the table then claims every key through the batch function, so a suite run on it shows that the batch
 * claim decides every case exactly as the single claim does.
 */
export const claimThroughBatch = (table: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql.unsafe(`
      CREATE OR REPLACE FUNCTION ${table}_claim(
        p_scope text, p_partition text, p_key text, p_fingerprint text, p_owner text, p_lease_ms float8,
        p_ttl_ms float8,
        OUT claimed boolean, OUT state text, OUT fingerprint text, OUT attempt integer, OUT recovery boolean,
        OUT lease_remaining_ms float8, OUT expires_in_ms float8, OUT outcome text, OUT payload text
      ) LANGUAGE sql VOLATILE AS $$
        SELECT b.claimed, b.state, b.fingerprint, b.attempt, b.recovery, b.lease_remaining_ms, b.expires_in_ms,
          b.outcome, b.payload
        FROM ${table}_claim_batch(
          ARRAY[p_scope], ARRAY[p_partition], ARRAY[p_key], ARRAY[p_fingerprint], ARRAY[p_owner], ARRAY[p_lease_ms],
          ARRAY[p_ttl_ms]
        ) AS b
      $$`)).pipe(Effect.asVoid, Effect.orDie)

/**
 * `Idempotency.run` of every key `duplicates` times at once on `store`, duplicates waiting (up to 10 seconds, on the
 * clock in context) for the run in flight. Returns the keys in the order they ran, each run's value, and how many
 * times each key's handler ran.
 */
export const runDuplicates = (
  store: IdempotencyStore.Service,
  options: {
    readonly scope: string
    readonly keys: ReadonlyArray<string>
    readonly duplicates: number
    readonly answer: (key: string) => string
  }
) =>
  Effect.gen(function*() {
    const counts = new Map<string, number>()
    const runs = options.keys.flatMap((key) => Array.from({ length: options.duplicates }, () => key))
    const results = yield* Effect.forEach(
      runs,
      (key) =>
        Idempotency.run({
          scope: options.scope,
          key,
          fingerprint: "fp",
          success: Schema.String,
          failure: Schema.Never,
          waitForInFlight: "10 seconds"
        })(() =>
          Effect.sync(() => {
            counts.set(key, (counts.get(key) ?? 0) + 1)
            return options.answer(key)
          })
        ).pipe(Effect.provideService(IdempotencyStore.IdempotencyStore, store)),
      { concurrency: "unbounded" }
    )
    return {
      runs,
      values: results.map((result) => result.value),
      executions: options.keys.map((key) => counts.get(key))
    }
  })
