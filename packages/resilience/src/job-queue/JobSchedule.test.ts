/**
 * Recurring jobs on the memory backend, driven by TestClock: ticks enqueued at their time (and never before),
 * the backfill window after a gap with no scheduler, no backfill before a schedule was first seen, exactly one job
 * per tick with several schedulers of one name in one process, time zones across a DST change, failed enqueues
 * retried without losing their tick, and the checks on schedules. Across OS processes on PostgreSQL:
 * test/job-queue/schedule.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cron from "effect/Cron"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as JobQueue from "./JobQueue.js"
import * as JobSchedule from "./JobSchedule.js"

const Report = JobQueue.define({
  kind: "report",
  queue: "default",
  payload: Schema.Struct({ at: Schema.Date, backfilled: Schema.Boolean })
})

const report = (options: Partial<JobSchedule.JobSchedule.Options<typeof Report>> = {}) =>
  JobSchedule.cron({
    name: "report",
    cron: "* * * * *",
    job: Report,
    payload: (tick) => ({ at: tick.at, backfilled: tick.backfilled }),
    ...options
  })

const Backend = Layer.merge(JobQueue.layerMemory({ queues: { default: {}, other: {} } }), JobSchedule.layerMemoryStore)

const at = (iso: string) => new Date(iso).getTime()

/** Moves the TestClock forward in steps, letting the schedulers' fibers run between them. */
const advance = (total: Duration.DurationInput, step: Duration.DurationInput = "10 seconds") =>
  Effect.gen(function*() {
    const end = Duration.toMillis(total)
    const stride = Duration.toMillis(step)
    for (let done = 0; done < end; done += stride) {
      yield* TestClock.adjust(Math.min(stride, end - done))
      for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
    }
  })

interface Enqueued {
  readonly tick: string
  readonly backfilled: boolean
  readonly dedupKey: Option.Option<string>
  readonly queue: string
}

/** Takes every due job of a queue (claimed and completed, so each is seen once), oldest tick first. */
const take = (queue = "default") =>
  Effect.gen(function*() {
    const { store } = yield* JobQueue.JobQueue
    const claimed = yield* store.claim({ queue, limit: 1000, owner: "test", lease: Duration.hours(1) })
    yield* store.complete(claimed.map((job) => job.lease))
    return claimed
      .map((job): Enqueued => {
        const payload = Schema.decodeUnknownSync(Report.payload)(job.payload)
        assert.strictEqual(payload.at.getTime(), job.runAt.getTime(), "runAt is the tick")
        return { tick: payload.at.toISOString(), backfilled: payload.backfilled, dedupKey: job.dedupKey, queue }
      })
      .sort((a, b) => (a.tick < b.tick ? -1 : 1))
  })

const ticks = (jobs: ReadonlyArray<Enqueued>) => jobs.map((job) => job.tick)

describe("JobSchedule on the TestClock", () => {
  it.effect("enqueues each tick at its time, none before the scheduler started, with the tick's key", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-01-05T10:00:30Z"))
      yield* JobSchedule.start([report({ backfill: "1 hour" })])
      assert.deepStrictEqual(yield* take(), [], "a schedule never seen before has missed nothing")
      yield* advance("29 seconds")
      assert.deepStrictEqual(yield* take(), [], "not before its tick")
      yield* advance("1 second")
      const first = yield* take()
      assert.deepStrictEqual(first, [{
        tick: "2026-01-05T10:01:00.000Z",
        backfilled: false,
        dedupKey: Option.some(JobSchedule.tickKey("report", new Date("2026-01-05T10:01:00Z"))),
        queue: "default"
      }])
      yield* advance("4 minutes")
      assert.deepStrictEqual(ticks(yield* take()), [
        "2026-01-05T10:02:00.000Z",
        "2026-01-05T10:03:00.000Z",
        "2026-01-05T10:04:00.000Z",
        "2026-01-05T10:05:00.000Z"
      ])
      const [info] = yield* JobSchedule.list
      assert.deepStrictEqual(
        {
          name: info?.name,
          cron: info?.cron,
          timeZone: info?.timeZone,
          lastTick: info?.lastTick,
          nextRun: info?.nextRun
        },
        {
          name: "report",
          cron: "* * * * *",
          timeZone: "UTC",
          lastTick: Option.some(new Date("2026-01-05T10:05:00Z")),
          nextRun: Option.some(new Date("2026-01-05T10:06:00Z"))
        }
      )
    }).pipe(Effect.scoped, Effect.provide(Backend)))

  it.effect("after a gap with no scheduler, enqueues the missed ticks within the backfill window, oldest first", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-01-05T10:00:30Z"))
      yield* Effect.scoped(Effect.zipRight(JobSchedule.start([report()]), advance("2 minutes")))
      assert.deepStrictEqual(ticks(yield* take()), ["2026-01-05T10:01:00.000Z", "2026-01-05T10:02:00.000Z"])
      // Nothing runs the schedule from 10:02:30 to 10:10:30.
      yield* TestClock.adjust("8 minutes")
      yield* Effect.scoped(Effect.gen(function*() {
        yield* JobSchedule.start([report({ backfill: "5 minutes" })])
        // At once, before any new tick: 10:05:30 – 10:10:30 are in the window; 10:03 – 10:05 are not.
        const backfilled = yield* take()
        assert.deepStrictEqual(ticks(backfilled), [
          "2026-01-05T10:06:00.000Z",
          "2026-01-05T10:07:00.000Z",
          "2026-01-05T10:08:00.000Z",
          "2026-01-05T10:09:00.000Z",
          "2026-01-05T10:10:00.000Z"
        ])
        assert.isTrue(backfilled.every((job) => job.backfilled))
        yield* advance("1 minute")
        assert.deepStrictEqual(yield* take(), [{
          tick: "2026-01-05T10:11:00.000Z",
          backfilled: false,
          dedupKey: Option.some("schedule:report:2026-01-05T10:11:00.000Z"),
          queue: "default"
        }])
      }))
      // Without a window (the default) the ticks missed meanwhile are skipped.
      yield* TestClock.adjust("10 minutes")
      yield* Effect.scoped(Effect.zipRight(JobSchedule.start([report()]), advance("1 minute")))
      assert.deepStrictEqual(ticks(yield* take()), ["2026-01-05T10:22:00.000Z"])
    }).pipe(Effect.provide(Backend)))

  it.effect("a scheduler that wakes late enqueues every tick it slept through, once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-01-05T10:00:30Z"))
      yield* JobSchedule.start([report()])
      // One jump of five minutes: the scheduler wakes once, at 10:05:30.
      yield* TestClock.adjust("5 minutes")
      yield* advance("10 seconds")
      assert.deepStrictEqual(ticks(yield* take()), [
        "2026-01-05T10:01:00.000Z",
        "2026-01-05T10:02:00.000Z",
        "2026-01-05T10:03:00.000Z",
        "2026-01-05T10:04:00.000Z",
        "2026-01-05T10:05:00.000Z"
      ])
    }).pipe(Effect.scoped, Effect.provide(Backend)))

  it.effect("several schedulers of one name in one process enqueue each tick exactly once", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-01-05T10:00:00Z"))
      // How often each tick's payload was built: once per enqueue, so once per tick unless two schedulers enqueued it
      // (the dedup key would then hide the second job; the store's last tick must keep it from being tried at all).
      const built = new Map<string, number>()
      const schedule = (backfill: Duration.DurationInput) =>
        report({
          cron: "*/10 * * * * *",
          backfill,
          payload: (tick) => {
            built.set(tick.at.toISOString(), (built.get(tick.at.toISOString()) ?? 0) + 1)
            return { at: tick.at, backfilled: tick.backfilled }
          }
        })
      yield* JobSchedule.start([schedule(0)])
      yield* JobSchedule.start([schedule(0)])
      yield* advance("35 seconds", "5 seconds")
      // A third joins late, with a backfill window reaching back past ticks the others already enqueued.
      yield* JobSchedule.start([schedule("1 minute")])
      yield* advance("5 minutes", "3 seconds")
      const jobs = yield* take()
      const expected = Array.from({ length: 6 * 5 + 4 }, (_, n) => new Date(at("2026-01-05T10:00:00Z") + n * 10_000))
      assert.deepStrictEqual(ticks(jobs), expected.map((date) => date.toISOString()))
      assert.deepStrictEqual([...built.values()], expected.map(() => 1))
    }).pipe(Effect.scoped, Effect.provide(Backend)))

  it.effect("reads the expression in the schedule's time zone, across the DST change", () =>
    Effect.gen(function*() {
      // Paris moves from UTC+1 to UTC+2 on 2026-03-29 at 02:00 local time.
      yield* TestClock.setTime(at("2026-03-27T12:00:00Z"))
      yield* JobSchedule.start([
        report({ name: "paris-9am", cron: "0 9 * * *", timeZone: "Europe/Paris" }),
        report({ name: "paris-2:30", cron: "30 2 * * *", timeZone: "Europe/Paris", queue: "other" })
      ])
      yield* advance("3 days", "1 hour")
      assert.deepStrictEqual(ticks(yield* take()), [
        "2026-03-28T08:00:00.000Z",
        "2026-03-29T07:00:00.000Z",
        "2026-03-30T07:00:00.000Z"
      ])
      // 02:30 does not exist on the 29th: that day it fires at the first instant after the gap (03:30 CEST).
      assert.deepStrictEqual(ticks(yield* take("other")), [
        "2026-03-28T01:30:00.000Z",
        "2026-03-29T01:30:00.000Z",
        "2026-03-30T00:30:00.000Z"
      ])
      const zones = (yield* JobSchedule.list).map((info) => [info.name, info.timeZone])
      assert.deepStrictEqual(zones, [["paris-2:30", "Europe/Paris"], ["paris-9am", "Europe/Paris"]])
    }).pipe(Effect.scoped, Effect.provide(Backend)))

  it.effect("fires a wall-clock time that happens twice (the autumn change) once, and reads Cron values too", () =>
    Effect.gen(function*() {
      // New York moves from UTC−4 back to UTC−5 on 2026-11-01 at 02:00 local time: 01:00 – 02:00 happens twice.
      yield* TestClock.setTime(at("2026-11-01T04:10:00Z"))
      yield* JobSchedule.start([
        report({ cron: Cron.unsafeParse("0,30 1 * * *", "America/New_York") }),
        report({ name: "utc", cron: Cron.unsafeParse("0 6 * * *") })
      ])
      yield* advance("4 hours", "5 minutes")
      assert.deepStrictEqual(ticks(yield* take()), [
        "2026-11-01T05:00:00.000Z",
        "2026-11-01T05:30:00.000Z",
        "2026-11-01T06:00:00.000Z"
      ])
      const cronOf = new Map((yield* JobSchedule.list).map((info) => [info.name, `${info.cron} ${info.timeZone}`]))
      assert.deepStrictEqual(Object.fromEntries(cronOf), {
        report: "0 0,30 1 * * * America/New_York",
        utc: "0 0 6 * * * UTC"
      })
    }).pipe(Effect.scoped, Effect.provide(Backend)))

  it.effect("retries a failed enqueue without losing its tick", () =>
    Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-01-05T10:00:30Z"))
      let calls = 0
      yield* JobSchedule.start([JobSchedule.cron({
        name: "flaky",
        cron: "* * * * *",
        job: Report,
        payload: (tick) => {
          calls += 1
          if (calls === 1) throw new Error("not now")
          return { at: tick.at, backfilled: tick.backfilled }
        }
      })])
      yield* advance("30 seconds", "1 second")
      assert.deepStrictEqual(yield* take(), [], "the first attempt threw")
      yield* advance("1 second", "1 second")
      assert.deepStrictEqual(ticks(yield* take()), ["2026-01-05T10:01:00.000Z"])
      assert.strictEqual(calls, 2)
    }).pipe(Effect.scoped, Effect.provide(Backend)))

  it.effect("checks schedules when they start, naming the bad option", () =>
    Effect.gen(function*() {
      const option = (schedules: ReadonlyArray<JobSchedule.JobSchedule.Any>) =>
        JobSchedule.start(schedules).pipe(Effect.flip, Effect.map((error) => error.option), Effect.scoped)
      assert.strictEqual(yield* option([report({ cron: "61 * * * *" })]), "schedules[0].cron")
      assert.strictEqual(yield* option([report(), report({ cron: "0 0 30 2 *" })]), "schedules[1].cron")
      assert.strictEqual(yield* option([report({ timeZone: "Mars/Olympus" })]), "schedules[0].timeZone")
      assert.strictEqual(
        yield* option([report({ cron: Cron.unsafeParse("0 9 * * *", "Asia/Tokyo"), timeZone: "Europe/Paris" })]),
        "schedules[0].timeZone"
      )
      assert.strictEqual(yield* option([report({ name: "bad name" })]), "schedules[0].name")
      assert.strictEqual(yield* option([report(), report()]), "schedules[1].name")
      assert.strictEqual(yield* option([report({ backfill: "-1 hour" })]), "schedules[0].backfill")
      assert.strictEqual(yield* option([report({ queue: "nowhere" })]), "schedules[0].queue")
      assert.strictEqual(yield* option([report({ priority: 1.5 })]), "schedules[0].priority")
      assert.isTrue(Either.isRight(yield* Effect.either(Effect.scoped(JobSchedule.start([report()])))))
    }).pipe(Effect.provide(Backend)))

  it.effect("refuses a schedule store on another backend than the job queue", () =>
    Effect.gen(function*() {
      const store: JobSchedule.ScheduleStore = { ...(yield* JobSchedule.makeMemoryStore), backend: "postgres" }
      const error = yield* JobSchedule.start([report()]).pipe(
        Effect.provideService(JobSchedule.ScheduleStore, store),
        Effect.scoped,
        Effect.flip
      )
      assert.strictEqual(error.option, "ScheduleStore")
    }).pipe(Effect.provide(Backend)))
})
