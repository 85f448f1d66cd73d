/**
 * `0007_job_cancel_progress.sql` on a database that already holds jobs: the
 * migrations before it run first, rows in every state are written, then
 * `Migrations.run` applies the rest. The rows keep their states, get no
 * progress and no result, read back through the store, and can be cancelled;
 * the state check now takes `cancelled` and still refuses unknown states.
 */
import type * as JobQueue from "@bulwark/resilience/JobQueue"
import * as Migrations from "@bulwark/resilience/Migrations"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as ScratchPostgres from "../support/postgres.js"

const MIGRATION = 7

/** Bulwark's migrations before 0007, recorded in the same table, so `Migrations.run` goes on from there. */
const migrateBefore = Migrator.make({})({
  loader: Effect.map(Migrations.loader, (migrations) => migrations.filter(([id]) => id < MIGRATION)),
  table: Migrations.table
})

const Unmigrated = Layer.unwrapEffect(
  Effect.map(
    ScratchPostgres.ScratchDatabase,
    ({ url }) => Layer.orDie(PgClient.layer({ url: Redacted.make(url), maxConnections: 4 }))
  )
).pipe(Layer.provideMerge(ScratchPostgres.scratchDatabase))

describe("migration 0007: cancellation, progress and results", () => {
  layer(Unmigrated, { excludeTestServices: true })((it) => {
    it.effect("upgrades a job table holding jobs in every state", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const before = yield* migrateBefore
        assert.isTrue(before.every(([id]) => id < MIGRATION))
        yield* sql`
          INSERT INTO bulwark_jobs (id, queue, kind, payload, max_attempts, state, attempt, lease_epoch, lease_owner,
            lease_expires_at, dedup_key, started_at, finished_at)
          VALUES
            (1, 'q', 'k', '{"n":1}', 3, 'ready', 0, 0, NULL, NULL, 'key-1', NULL, NULL),
            (2, 'q', 'k', '{"n":2}', 3, 'running', 1, 1, 'old-worker', now() + interval '1 minute', 'key-2', now(),
              NULL),
            (3, 'q', 'k', '{"n":3}', 3, 'succeeded', 1, 1, NULL, NULL, 'key-3', now(), now()),
            (4, 'q', 'k', '{"n":4}', 3, 'dead', 3, 3, NULL, NULL, NULL, now(), now())`
        const early = yield* Effect.either(sql`UPDATE bulwark_jobs SET state = 'cancelled' WHERE id = 1`)
        assert.isTrue(Either.isLeft(early), "no cancelled state before 0007")

        const applied = yield* Migrations.run
        assert.include(applied.map(([id]) => id), MIGRATION)
        const rows = yield* sql<
          { id: string; state: string; dedup_key: string | null; progress: unknown; result: unknown }
        >`
          SELECT id::text AS id, state, dedup_key, progress, result FROM bulwark_jobs ORDER BY id`
        assert.deepStrictEqual(rows.map((row) => [row.id, row.state, row.dedup_key, row.progress, row.result]), [
          ["1", "ready", "key-1", null, null],
          ["2", "running", "key-2", null, null],
          ["3", "succeeded", "key-3", null, null],
          ["4", "dead", null, null, null]
        ])

        const store = yield* SqlJobQueue.makeStore()
        const statuses = yield* Effect.forEach(["1", "2", "3", "4"], (id) => store.status(id))
        assert.deepStrictEqual(statuses.map(Option.map((info) => info.status)), [
          Option.some("queued"),
          Option.some("running"),
          Option.some("succeeded"),
          Option.some("dead")
        ])
        for (const info of statuses) {
          assert.isTrue(Option.isNone(Option.flatMap(info, (job) => job.progress)))
          assert.isTrue(Option.isNone(Option.flatMap(info, (job) => job.result)))
        }
        const cancelled = yield* Effect.forEach(["1", "2", "3"], (id) => store.cancel(id))
        assert.deepStrictEqual(
          cancelled,
          [
            { _tag: "Cancelled", id: "1", queue: "q", previous: "queued" },
            { _tag: "Cancelled", id: "2", queue: "q", previous: "running" },
            { _tag: "AlreadyFinished", id: "3", queue: "q", status: "succeeded" }
          ] satisfies ReadonlyArray<JobQueue.CancelResult>
        )
        const unknown = yield* Effect.either(sql`UPDATE bulwark_jobs SET state = 'paused' WHERE id = 3`)
        assert.isTrue(Either.isLeft(unknown), "the state check still refuses unknown states")
        assert.deepStrictEqual(yield* Migrations.run, [], "nothing left to run")
      }).pipe(Effect.scoped))
  })
})
