/**
 * A pool's slots: waiting jobs start while slots are free ({@link fill}); each runs its handler in a slot (with the
 * queue's `maxRunTime`, a span and the wait histogram), and a success frees its slot at once, its completion
 * handed to the completion writer (complete.ts); a failure keeps the slot until it is written (failure.ts).
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { attributes } from "../../../internal/tracingAttributes.js"
import type { JobContext } from "../../JobWorker.js"
import { JobTimeoutError, NoHandlerError } from "../errors.js"
import { reportCancelled, reportFailure } from "./failure.js"
import { average, type Held, type Pool, ring, type Worker } from "./pool.js"
import { reportProgress } from "./progress.js"
import { storableResult } from "./result.js"

/** Gives a slot back and starts the next waiting job in it. Synchronous, so slots are never double-counted. */
const freeSlot = (worker: Worker, pool: Pool): Effect.Effect<void> => {
  pool.busy -= 1
  return Effect.zipRight(fill(worker, pool), Effect.asVoid(ring(pool)))
}

/** Runs one job in a slot taken for it, then reports; the slot is freed as soon as the outcome allows. */
const runJob = (worker: Worker, pool: Pool, entry: Held): Effect.Effect<void> => {
  const job = entry.job
  let slotTaken = true
  return Effect.gen(function*() {
    const handler = worker.handlers.get(job.kind)
    const jobContext: JobContext = {
      id: job.lease.id,
      queue: job.queue,
      kind: job.kind,
      attempt: job.lease.attempt,
      maxAttempts: job.maxAttempts,
      enqueuedAt: job.enqueuedAt,
      dedupKey: job.dedupKey,
      workerId: worker.id,
      progress: (value, message) => reportProgress(worker, entry, value, message)
    }
    // The result is sized inside the attempt: a result too large fails it (terminally) like any handler failure.
    const run: Effect.Effect<void, unknown> = handler === undefined
      ? Effect.fail(new NoHandlerError({ kind: job.kind, workerId: worker.id }))
      : handler(job.payload, jobContext).pipe(
        Effect.flatMap((encoded) => storableResult(pool.queue, job, encoded)),
        Effect.flatMap((result) =>
          Effect.sync(() => {
            entry.result = result
          })
        )
      )
    // On the Effect Clock: the handler is interrupted at the limit and the attempt fails transiently.
    const work = Option.match(pool.queue.maxRunTime, {
      onNone: () => run,
      onSome: (limit) =>
        Effect.timeoutFail(run, {
          duration: limit,
          onTimeout: () => new JobTimeoutError({ queue: job.queue, kind: job.kind, jobId: job.lease.id, limit })
        })
    })
    const traced = Effect.withSpan(work, `bulwark.job ${job.kind}`, {
      kind: "consumer",
      // A stack trace per job costs more than a no-op handler; the span's name and attributes say where it is.
      captureStackTrace: false,
      attributes: {
        [attributes.jobId]: job.lease.id,
        [attributes.jobQueue]: job.queue,
        [attributes.jobKind]: job.kind,
        [attributes.jobAttempt]: job.lease.attempt
      }
    })
    const started = yield* Clock.currentTimeMillis
    // From due to start: the wait for the claim (backend clock), then the wait in the local queue.
    pool.wait(
      (Math.max(0, job.claimedAt.getTime() - job.runAt.getTime()) + Math.max(0, started - entry.claimedLocally)) /
        1000
    )
    const fiber = yield* Effect.fork(Effect.interruptible(traced))
    entry.fiber = fiber
    // A lease lost or a shutdown that came before the fork is honoured now.
    if (entry.lost || entry.stopped) yield* Fiber.interruptFork(fiber)
    entry.startedAt = started
    pool.running.add(entry)
    const exit = yield* Fiber.await(fiber)
    pool.running.delete(entry)
    const finished = yield* Clock.currentTimeMillis
    pool.meanRunMillis = average(pool.meanRunMillis, finished - started)
    // A cancelled job writes no outcome, even if its handler finished before the interruption landed.
    if (Exit.isSuccess(exit) && entry.cancelled !== true) {
      // The slot is free at once; completeLoop writes the completion in a batch, fenced by the lease, and keeps
      // the lease renewed until then.
      pool.duration((finished - started) / 1000)
      entry.phase = "completing"
      if (pool.completing === 0) pool.allCompleted.unsafeClose()
      pool.completing += 1
      yield* Queue.offer(pool.completions, entry)
      slotTaken = false
      yield* freeSlot(worker, pool)
    } else if (Exit.isFailure(exit)) {
      yield* reportFailure(worker, pool, entry, exit, finished - started)
    } else {
      yield* reportCancelled(worker, entry)
    }
  }).pipe(
    Effect.ensuring(Effect.suspend(() => {
      if (entry.phase !== "completing") pool.held.delete(entry)
      if (!slotTaken) return Effect.void
      slotTaken = false
      return freeSlot(worker, pool)
    })),
    Effect.uninterruptible,
    Effect.annotateLogs({ jobId: job.lease.id, kind: job.kind, queue: job.queue })
  )
}

/** Starts waiting jobs while slots are free (never once shutdown began). @internal */
export const fill = (worker: Worker, pool: Pool): Effect.Effect<void> =>
  Effect.suspend(() => {
    const starting: Array<Held> = []
    while (!worker.draining && pool.busy < pool.concurrency && pool.waiting.length > 0) {
      const entry = pool.waiting.shift()
      if (entry === undefined) break
      if (entry.lost) continue
      pool.busy += 1
      entry.phase = "running"
      starting.push(entry)
    }
    return Effect.forEach(starting, (entry) => FiberSet.run(worker.runners, runJob(worker, pool, entry)), {
      discard: true
    })
  })
