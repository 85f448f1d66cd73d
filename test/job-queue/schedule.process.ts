/**
 * One scheduler OS process of the recurring-jobs test (`schedule.test.ts`): the real `SqlJobSchedule` with the
 * real `SqlJobQueue`, on the test's scratch database, running a one-second schedule until it is killed.
 * Usage: `schedule.process.ts <database url> <schedule name> <process id> [hang]`. Prints `ready` once its scheduler
 * ran its first step, and `built <ISO instant>` whenever it builds a tick's payload (it holds the row lock then).
 *
 * With `hang`, the first time its scheduler gets to enqueue a tick it prints `hanging` and blocks its event loop in
 * the middle of the step: the schedule's row is locked and the transaction open, the tick's job not yet inserted.
 * The test SIGKILLs it there.
 */
import type * as JobSchedule from "@bulwark/resilience/JobSchedule"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { everySecond, queues, TickJob } from "./schedule.jobs.js"

const [url, name, processId, mode] = process.argv.slice(2)
if (url === undefined || name === undefined || processId === undefined) {
  console.error("usage: schedule.process.ts <database url> <schedule name> <process id> [hang]")
  process.exit(2)
}

const built = (tick: JobSchedule.Tick) => {
  process.stdout.write(`built ${tick.at.toISOString()}\n`)
}

const hang = () => {
  // Pipes are written synchronously on Linux: the line is out before the loop starts.
  process.stdout.write("hanging\n")
  const until = Date.now() + 120_000
  while (Date.now() < until) {
    // Blocks the event loop with the row lock held, until the test kills the process.
  }
}

const Database = PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })
const Queue = SqlJobQueue.layer({ queues, jobs: [TickJob] }).pipe(Layer.provide(Database))
const Schedules = SqlJobSchedule.layer([everySecond(name, processId, mode === "hang" ? hang : built)]).pipe(
  Layer.provide(Layer.merge(Queue, Database))
)

Effect.sync(() => process.stdout.write(`ready ${processId}\n`)).pipe(
  Effect.zipRight(Effect.never),
  Effect.provide(Schedules),
  NodeRuntime.runMain
)
