/**
 * Dedup on PostgreSQL only (the rule itself is in conformance.dedup.ts, run on both backends): a schema made by the
 * migrations before 0006 upgrades with its rows, and races of one key from separate connection pools (as separate
 * processes would) leave exactly one job holding it.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as Migrations from "@bulwark/resilience/Migrations"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as ScratchPostgres from "../support/postgres.js"

const Email = JobQueue.define({
  kind: "email",
  queue: "default",
  payload: Schema.Struct({ to: Schema.String, n: Schema.Number })
})
const Sms = JobQueue.define({
  kind: "sms",
  queue: "default",
  payload: Schema.Struct({ to: Schema.String, n: Schema.Number })
})

const options: SqlJobQueue.Options = { queues: { default: {} } }

/** A client on the scratch database. */
const client = (maxConnections: number) =>
  Layer.unwrapEffect(
    Effect.map(
      ScratchPostgres.ScratchDatabase,
      ({ url }) => Layer.orDie(PgClient.layer({ url: Redacted.make(url), maxConnections }))
    )
  )

/** Bulwark's migrations numbered below `below`, copied to a directory of their own. */
const migrationsBelow = (below: number) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const directory = mkdtempSync(join(tmpdir(), "bulwark-migrations-"))
      for (const file of readdirSync(Migrations.directory())) {
        const id = /^(\d{4})_/.exec(file)?.[1]
        if (id !== undefined && Number(id) < below) {
          copyFileSync(join(Migrations.directory(), file), join(directory, file))
        }
      }
      return directory
    }),
    (directory) => Effect.sync(() => rmSync(directory, { recursive: true, force: true }))
  )

describe("PostgreSQL job dedup", () => {
  // A database of its own (`fresh`: the test layers of a file share what they can), migrated by the test.
  layer(Layer.provideMerge(client(4), Layer.fresh(ScratchPostgres.scratchDatabase)), { excludeTestServices: true })((
    it
  ) => {
    it.effect("a job table made before 0006 upgrades with its rows, and its dead jobs free their keys", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const before = yield* migrationsBelow(6)
        yield* Migrator.make({})({ loader: Migrations.fromDirectory(before), table: Migrations.table })
        yield* sql`
          INSERT INTO bulwark_jobs (queue, kind, payload, max_attempts, dedup_key, state, finished_at) VALUES
            ('default', 'email', '{"to": "a", "n": 1}', 3, 'live', 'ready', NULL),
            ('default', 'email', '{"to": "b", "n": 2}', 3, 'dead', 'dead', now()),
            ('default', 'email', '{"to": "c", "n": 3}', 3, 'done', 'succeeded', now())`
        const applied = yield* Migrations.run
        assert.deepStrictEqual(applied.map(([id]) => id).slice(0, 1), [6])
        const indexes = yield* sql<{ readonly indexname: string }>`
          SELECT indexname FROM pg_indexes WHERE tablename = 'bulwark_jobs' AND indexname LIKE 'bulwark_jobs_dedup%'`
        assert.deepStrictEqual(indexes.map((row) => row.indexname), ["bulwark_jobs_dedup_live"])

        yield* Effect.gen(function*() {
          assert.deepInclude(yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "live" }), {
            id: "1",
            deduplicated: true
          })
          assert.strictEqual(
            (yield* Effect.flip(JobQueue.enqueue(Email, { to: "x", n: 0 }, { dedupKey: "live" })))._tag,
            "DedupConflictError"
          )
          assert.isFalse((yield* JobQueue.enqueue(Sms, { to: "a", n: 1 }, { dedupKey: "live" })).deduplicated)
          assert.isFalse((yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedupKey: "dead" })).deduplicated)
          assert.deepInclude(yield* JobQueue.enqueue(Email, { to: "c", n: 3 }, { dedupKey: "done" }), {
            id: "3",
            deduplicated: true
          })
        }).pipe(Effect.provide(SqlJobQueue.layer(options)))
      }).pipe(Effect.scoped))
  })

  layer(ScratchPostgres.layer({ maxConnections: 4 }), { excludeTestServices: true })((it) => {
    it.effect("enqueues of one key from separate pools leave exactly one job holding it", () =>
      Effect.gen(function*() {
        // Three services on three pools of their own, as three processes would be; 40 enqueues each, at once.
        const pools = yield* Effect.forEach(
          [1, 2, 3],
          () => Layer.build(SqlJobQueue.layer(options).pipe(Layer.provide(client(6))))
        )
        const outcomes = yield* Effect.all(
          pools.flatMap((pool, p) =>
            Array.from({ length: 40 }, (_, n) => {
              const mode = (["error", "replace", "ignore"] as const)[n % 3] ?? "error"
              return JobQueue.enqueue(Email, { to: "race", n: n % 2 === 0 ? 0 : p * 100 + n }, {
                dedup: { key: "hot", onConflict: mode }
              }).pipe(Effect.either, Effect.provide(pool))
            })
          ),
          { concurrency: "unbounded" }
        )
        const sql = yield* SqlClient.SqlClient
        const holders = yield* sql<{ readonly id: string }>`
          SELECT id::text AS id FROM bulwark_jobs WHERE dedup_key = 'hot'`
        assert.strictEqual(holders.length, 1)
        const [holder] = holders
        let created = 0
        for (const outcome of outcomes) {
          if (Either.isLeft(outcome)) {
            assert.strictEqual(outcome.left._tag, "DedupConflictError")
            if (outcome.left._tag === "DedupConflictError") assert.strictEqual(outcome.left.existingId, holder?.id)
            continue
          }
          assert.strictEqual(outcome.right.id, holder?.id)
          if (!outcome.right.deduplicated && !outcome.right.replaced) created += 1
        }
        assert.strictEqual(created, 1)
      }).pipe(Effect.scoped), 60_000)

    it.effect("a dedup enqueue inside a transaction that rolls back leaves the key free", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rolledBack = yield* sql.withTransaction(
          Effect.zipRight(
            JobQueue.enqueue(Email, { to: "t", n: 1 }, { dedupKey: "tx" }),
            Effect.fail("rollback" as const)
          )
        ).pipe(Effect.flip)
        assert.strictEqual(rolledBack, "rollback")
        const enqueued = yield* JobQueue.enqueue(Email, { to: "t", n: 2 }, { dedupKey: "tx" })
        assert.isFalse(enqueued.deduplicated)
      }).pipe(Effect.provide(SqlJobQueue.layer(options))))
  })
})
