/**
 * `bulwark schedules list`: the recurring jobs in `bulwark_job_schedules` — expression, time zone, last tick enqueued,
 * next run, and when a scheduler last advanced each (an old one means no process runs it).
 */
import * as Command from "@effect/cli/Command"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { ScheduleInfo } from "../../job-queue/JobSchedule.js"
import * as SqlJobSchedule from "../../job-queue/SqlJobSchedule.js"
import { databaseUrl, json, print, storeFailed } from "./common.js"
import * as database from "./database.js"
import * as parse from "./parse.js"
import { age } from "./render.js"
import * as table from "./table.js"

const isoOrNull = (date: Option.Option<Date>): string | null =>
  Option.getOrNull(Option.map(date, (d) => d.toISOString()))

const schedulesJson = (schedules: ReadonlyArray<ScheduleInfo>) => ({
  schedules: schedules.map((schedule) => ({
    name: schedule.name,
    cron: schedule.cron,
    timeZone: schedule.timeZone,
    lastTick: isoOrNull(schedule.lastTick),
    nextRun: isoOrNull(schedule.nextRun),
    knownSince: schedule.knownSince.toISOString(),
    updatedAt: schedule.updatedAt.toISOString()
  }))
})

const schedulesTable = (schedules: ReadonlyArray<ScheduleInfo>, now: number): string => {
  if (schedules.length === 0) return "No schedules: no scheduler has run on this database."
  const time = (date: Option.Option<Date>) => Option.match(date, { onNone: () => "-", onSome: (d) => d.toISOString() })
  return table.render<ScheduleInfo>([
    { header: "NAME", cell: (schedule) => schedule.name, maxWidth: 40 },
    { header: "CRON", cell: (schedule) => schedule.cron, maxWidth: 40 },
    { header: "TIME ZONE", cell: (schedule) => schedule.timeZone },
    { header: "LAST TICK", cell: (schedule) => time(schedule.lastTick) },
    { header: "NEXT RUN", cell: (schedule) => time(schedule.nextRun) },
    { header: "SEEN", cell: (schedule) => age(schedule.updatedAt, now), align: "right" }
  ], schedules)
}

/** @internal */
export const list = Command.make(
  "list",
  { databaseUrl, json },
  (input) =>
    Effect.gen(function*() {
      const url = yield* database.resolveUrl(input.databaseUrl)
      const schedules = yield* SqlJobSchedule.list.pipe(
        Effect.provideServiceEffect(SqlClient.SqlClient, PgClient.PgClient),
        Effect.mapError(storeFailed),
        Effect.provide(database.layer(url))
      )
      const now = yield* Clock.currentTimeMillis
      yield* print(input.json ? parse.toJson(schedulesJson(schedules)) : schedulesTable(schedules, now))
    })
).pipe(Command.withDescription("Recurring jobs: expression, time zone, last tick, next run"))
