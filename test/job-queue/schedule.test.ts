/**
 * Recurring jobs across OS processes, for real: three scheduler processes (`schedule.process.ts`: `SqlJobSchedule`
 * and `SqlJobQueue`) run the same one-second schedule on one PostgreSQL database for 20 seconds. Meanwhile a fourth
 * process is killed while it holds the schedule's row lock in the middle of enqueueing a tick, and one of the three
 * is SIGKILLed at a random moment and restarted. Every tick from the first to the last must be enqueued exactly
 * once: no duplicate, no gap. Then `bulwark schedules list` reports the schedule. And the store alone: a step that
 * fails after its enqueue commits neither the job nor the tick.
 *
 * Real time (not TestClock): the schedulers are other processes. The time logic itself is tested on the TestClock
 * in packages/resilience/src/job-queue/JobSchedule.test.ts. Needs PostgreSQL on 127.0.0.1:5432 (fails, never
 * skips); the scratch database and every process are gone when the file ends.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobSchedule from "@bulwark/resilience/JobSchedule"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { resolve } from "node:path"
import * as ScratchPostgres from "../support/postgres.js"
import * as Process from "../support/process.js"
import { runCli } from "./crash.process.js"
import { queues } from "./schedule.jobs.js"

const script = resolve(Process.root, "test/job-queue/schedule.process.ts")
const NAME = "every-second"
const RUN_MILLIS = 20_000

const ListJson = Schema.parseJson(Schema.Struct({
  schedules: Schema.Array(Schema.Struct({
    name: Schema.String,
    cron: Schema.String,
    timeZone: Schema.String,
    lastTick: Schema.NullOr(Schema.String),
    nextRun: Schema.NullOr(Schema.String),
    knownSince: Schema.String,
    updatedAt: Schema.String
  }))
}))

describe("recurring jobs: three processes, one schedule, one PostgreSQL", () => {
  // Live services: the clock must be the real one (see the top of the file).
  layer(ScratchPostgres.layer(), { excludeTestServices: true })((it) => {
    it.scoped(
      "enqueue every tick exactly once, none missing, through a kill inside the lock and a kill at random",
      () =>
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { url } = yield* ScratchPostgres.ScratchDatabase
          const children: Array<Process.Child> = []
          yield* Effect.addFinalizer(() =>
            Effect.promise(() =>
              Promise.all(children.map((child) => {
                child.kill("SIGKILL")
                return child.exited
              }))
            )
          )
          const spawn = (id: string, mode: ReadonlyArray<string> = []) => {
            const child = Process.startTs(script, [url, NAME, id, ...mode])
            children.push(child)
            return child
          }
          const waitFor = (child: Process.Child, pattern: RegExp) =>
            Effect.promise(() => child.waitFor(pattern, { timeoutMillis: 60_000 }))
          const killed = (child: Process.Child) =>
            Effect.promise(() => {
              child.kill("SIGKILL")
              return child.exited
            })

          const schedulers = [spawn("p0"), spawn("p1"), spawn("p2")]
          yield* Effect.forEach(schedulers, (child) => waitFor(child, /^ready\b/m), { concurrency: "unbounded" })
          const startedAt = Date.now()

          // A process that blocks inside a step: the row locked, the transaction open, its tick not inserted. The
          // others wait on the lock; killed, its transaction rolls back and they enqueue the tick it held.
          const hanging = spawn("hang", ["hang"])
          yield* waitFor(hanging, /^hanging\b/m)
          yield* Effect.sleep("1500 millis")
          yield* killed(hanging)

          // One of the three, SIGKILLed whenever, then restarted.
          yield* Effect.sleep(`${2000 + Math.floor(Math.random() * 1000)} millis`)
          const [victim] = schedulers
          if (victim === undefined) return assert.fail("no scheduler to kill")
          yield* killed(victim)
          yield* Effect.sleep("2 seconds")
          const restarted = spawn("p0-restarted")
          yield* waitFor(restarted, /^ready\b/m)
          const survivors = [...schedulers.slice(1), restarted]

          yield* Effect.sleep(Math.max(0, startedAt + RUN_MILLIS - Date.now()))
          // Stopped gracefully: a step in flight commits or rolls back.
          yield* Effect.forEach(children, (child) => Effect.promise(() => child.stop(5_000)), { discard: true })

          const rows = yield* sql<{ at: Date; jobs: number; by: string; keys: Array<string> }>`
            SELECT run_at AS at, count(*)::int AS jobs, min(payload->>'by') AS by, array_agg(dedup_key) AS keys
            FROM bulwark_jobs WHERE kind = 'schedule-tick' GROUP BY run_at ORDER BY run_at`
          const ticks = rows.map((row) => row.at.getTime())
          const duplicated = rows.filter((row) => row.jobs !== 1).map((row) => row.at.toISOString())
          assert.deepStrictEqual(duplicated, [], "ticks enqueued more than once")
          const gaps = ticks.slice(1).flatMap((tick, n) => {
            const previous = ticks[n] ?? tick
            return tick - previous === 1000
              ? []
              : [`${new Date(previous).toISOString()} → ${new Date(tick).toISOString()}`]
          })
          assert.deepStrictEqual(gaps, [], "ticks missing")
          assert.isAtLeast(rows.length, 18, "about one tick per second for 20 seconds")
          for (const row of rows) assert.deepStrictEqual(row.keys, [JobSchedule.tickKey(NAME, row.at)])
          // The hung process never enqueued the tick it held; the others did.
          assert.notInclude(rows.map((row) => row.by), "hang")
          // Each tick's payload was built once among the processes never killed (a step runs under the row lock,
          // and finds the ticks the previous holder committed): the dedup key had no duplicate to absorb.
          const builds = new Map<string, number>()
          for (const child of survivors) {
            for (const [, tick] of child.stdout().matchAll(/^built (\S+)$/gm)) {
              if (tick !== undefined) builds.set(tick, (builds.get(tick) ?? 0) + 1)
            }
          }
          assert.deepStrictEqual([...builds].filter(([, n]) => n > 1), [], "ticks built by two schedulers")

          const [schedule] = yield* sql<{ last_tick: Date; known_since: Date }>`
            SELECT last_tick, known_since FROM bulwark_job_schedules WHERE name = ${NAME}`
          assert.strictEqual(schedule?.last_tick.getTime(), ticks.at(-1))
          assert.isAtMost(schedule?.known_since.getTime() ?? Infinity, ticks[0] ?? 0)

          const by = new Map<string, number>()
          for (const row of rows) by.set(row.by, (by.get(row.by) ?? 0) + 1)
          console.log(
            `schedule test: ${rows.length} ticks from ${rows[0]?.at.toISOString()} to ${
              rows.at(-1)?.at.toISOString()
            }, each enqueued once; by process: ${[...by].map(([id, n]) => `${id} ${n}`).join(", ")}`
          )

          // The CLI lists it: JSON for scripts, a table for people.
          const listed = yield* runCli(["schedules", "list", "--json", "--database-url", url])
          assert.strictEqual(listed.code, 0, listed.stderr)
          const [entry, ...others] = Schema.decodeUnknownSync(ListJson)(listed.stdout).schedules
          assert.deepStrictEqual(others, [])
          assert.deepStrictEqual(
            { name: entry?.name, cron: entry?.cron, timeZone: entry?.timeZone, lastTick: entry?.lastTick },
            { name: NAME, cron: "* * * * * *", timeZone: "UTC", lastTick: new Date(ticks.at(-1) ?? 0).toISOString() }
          )
          assert.strictEqual(entry?.nextRun, new Date((ticks.at(-1) ?? 0) + 1000).toISOString())
          const table = yield* runCli(["schedules", "list"], { DATABASE_URL: url })
          assert.strictEqual(table.code, 0, table.stderr)
          assert.match(table.stdout, /^NAME\s+CRON\s+TIME ZONE\s+LAST TICK\s+NEXT RUN\s+SEEN$/m)
          assert.match(
            table.stdout,
            new RegExp(`^${NAME}\\s+\\* \\* \\* \\* \\* \\*\\s+UTC\\s+\\S+Z\\s+\\S+Z\\s+\\d+s ago$`, "m")
          )
        }),
      120_000
    )

    it.effect("a step commits its jobs and its tick together, or neither", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const store = yield* SqlJobSchedule.makeStore
        const Probe = JobQueue.define({
          kind: "schedule-probe",
          queue: "ticks",
          payload: Schema.Struct({ n: Schema.Number })
        })
        const record = {
          name: "probe",
          cron: "0 * * * *",
          timeZone: "Europe/Paris",
          startedAt: new Date("2026-01-05T10:00:00Z"),
          now: new Date("2026-01-05T10:00:01Z")
        }
        const probes = sql<{ n: number }>`SELECT count(*)::int AS n FROM bulwark_jobs WHERE kind = 'schedule-probe'`

        const failed = yield* store.advance(record, (state) =>
          Effect.gen(function*() {
            assert.deepStrictEqual(state, { knownSince: record.startedAt, lastTick: Option.none() })
            yield* JobQueue.enqueue(Probe, { n: 1 })
            return yield* Effect.fail("after the enqueue")
          })).pipe(Effect.flip)
        assert.strictEqual(failed, "after the enqueue")
        assert.deepStrictEqual(yield* probes, [{ n: 0 }], "the job rolled back")
        assert.deepStrictEqual(
          (yield* SqlJobSchedule.list).map((info) => info.name),
          [NAME],
          "so did the row"
        )

        const tick = new Date("2026-01-05T10:00:00Z")
        const next = new Date("2026-01-05T11:00:00Z")
        yield* store.advance(record, () =>
          Effect.as(JobQueue.enqueue(Probe, { n: 2 }), { lastTick: Option.some(tick), nextRun: Option.some(next) }))
        assert.deepStrictEqual(yield* probes, [{ n: 1 }])
        const probe = (yield* SqlJobSchedule.list).find((info) =>
          info.name === "probe"
        )
        assert.deepStrictEqual(probe, {
          name: "probe",
          cron: "0 * * * *",
          timeZone: "Europe/Paris",
          knownSince: record.startedAt,
          lastTick: Option.some(tick),
          nextRun: Option.some(next),
          updatedAt: record.now
        })
        // The next step reads what the last one committed.
        yield* store.advance({ ...record, now: new Date("2026-01-05T11:00:00Z") }, (state) => {
          assert.deepStrictEqual(state, { knownSince: record.startedAt, lastTick: Option.some(tick) })
          return Effect.succeed({ lastTick: state.lastTick, nextRun: Option.none() })
        })
      }).pipe(Effect.provide(SqlJobQueue.layer({ queues }))))
  })
})
