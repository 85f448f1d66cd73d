/**
 * In-memory inspection: one job's status, and every queue's counts.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { JobId, JobInfo, QueueStats } from "../../JobQueue.js"
import { statusOf } from "../status.js"
import { date, idOf, type MemoryJob, numericId, optionalDate, type State, withNow } from "./state.js"

const info = (job: MemoryJob, now: number): JobInfo => ({
  id: idOf(job.id),
  queue: job.queue,
  kind: job.kind,
  status: statusOf(job.state, job.attempt, job.runAt, now),
  priority: job.priority,
  attempts: job.attempt,
  maxAttempts: job.maxAttempts,
  payload: job.payload,
  dedupKey: Option.fromNullable(job.dedupKey),
  enqueuedAt: date(job.enqueuedAt),
  runAt: date(job.runAt),
  startedAt: optionalDate(job.startedAt),
  finishedAt: optionalDate(job.finishedAt),
  leaseOwner: Option.fromNullable(job.leaseOwner),
  leaseExpiresAt: optionalDate(job.leaseExpiresAt),
  errors: [...job.errors],
  replayOf: Option.map(Option.fromNullable(job.replayOf), idOf),
  progress: Option.fromNullable(job.progress),
  result: job.result
})

/** @internal */
export const status = (state: State) => (id: JobId): Effect.Effect<Option.Option<JobInfo>> =>
  withNow(state, (now) => {
    const numeric = numericId(id)
    const job = numeric === undefined ? undefined : state.jobs.get(numeric)
    return job === undefined ? Option.none() : Option.some(info(job, now))
  })

interface Counts {
  ready: number
  scheduled: number
  retrying: number
  running: number
  deadLetters: number
  oldest: number | null
}

/** @internal */
export const stats = (state: State): Effect.Effect<ReadonlyArray<QueueStats>> =>
  withNow(state, (now): ReadonlyArray<QueueStats> => {
    const byQueue = new Map<string, Counts>()
    const row = (queue: string) => {
      let found = byQueue.get(queue)
      if (found === undefined) {
        found = { ready: 0, scheduled: 0, retrying: 0, running: 0, deadLetters: 0, oldest: null }
        byQueue.set(queue, found)
      }
      return found
    }
    for (const [queue, set] of state.ready) {
      for (const job of set) {
        const counts = row(queue)
        if (job.runAt <= now) {
          counts.ready += 1
          counts.oldest = counts.oldest === null ? job.runAt : Math.min(counts.oldest, job.runAt)
        } else if (job.attempt > 0) counts.retrying += 1
        else counts.scheduled += 1
      }
    }
    for (const job of state.running) row(job.queue).running += 1
    for (const entry of state.deadLetters.values()) {
      if (entry.status === "pending") row(entry.job.queue).deadLetters += 1
    }
    for (const queue of state.paused.keys()) row(queue)
    return [...byQueue].filter(([queue, c]) =>
      c.ready + c.scheduled + c.retrying + c.running + c.deadLetters > 0 || state.paused.has(queue)
    ).map((
      [queue, c]
    ) => ({
      queue,
      ready: c.ready,
      scheduled: c.scheduled,
      retrying: c.retrying,
      running: c.running,
      deadLetters: c.deadLetters,
      oldestReadyAge: c.oldest === null ? Option.none() : Option.some(Duration.millis(now - c.oldest)),
      paused: state.paused.has(queue)
    }))
  })
