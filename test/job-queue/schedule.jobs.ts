/**
 * What the recurring-jobs test (`schedule.test.ts`) and its scheduler processes (`schedule.process.ts`) share: the
 * job each tick enqueues, its queue, and the schedule (every second, UTC).
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobSchedule from "@bulwark/resilience/JobSchedule"
import * as Schema from "effect/Schema"

export const TickJob = JobQueue.define({
  kind: "schedule-tick",
  queue: "ticks",
  // `by`: the process whose scheduler enqueued the tick.
  payload: Schema.Struct({ at: Schema.Date, by: Schema.String })
})

export const queues = { ticks: {} }

/** Every second; `building` is called with each tick as its payload is built, inside the step (the row locked). */
export const everySecond = (name: string, by: string, building: (tick: JobSchedule.Tick) => void) =>
  JobSchedule.cron({
    name,
    cron: "* * * * * *",
    job: TickJob,
    payload: (tick) => {
      building(tick)
      return { at: tick.at, by }
    }
  })
