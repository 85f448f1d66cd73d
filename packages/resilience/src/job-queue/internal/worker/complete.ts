/**
 * A pool's completion writer: successes free their slot at once and queue here; one statement writes whatever
 * piled up, each completion fenced by its lease.
 */
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import { type Held, log, MAX_COMPLETIONS, persist, type Pool, type Worker } from "./pool.js"

/**
 * Writes completions in batches: whatever piled up while the previous
 * statement ran goes in the next one, so an idle pool completes a job at
 * once and a busy one completes many per round trip. A completion the
 * backend refuses (the lease was lost meanwhile: it lapsed and another
 * worker took the job) is logged and counted; the job runs again there,
 * as at-least-once delivery allows.
 *
 * @internal
 */
export const completeLoop = (worker: Worker, pool: Pool): Effect.Effect<void> =>
  Effect.forever(
    Effect.gen(function*() {
      const batch = Chunk.toReadonlyArray(yield* Queue.takeBetween(pool.completions, 1, MAX_COMPLETIONS))
      yield* settle(worker, pool, batch).pipe(Effect.uninterruptible)
    })
  )

const settle = (worker: Worker, pool: Pool, batch: ReadonlyArray<Held>): Effect.Effect<void> =>
  Effect.gen(function*() {
    const accepted = yield* persist(
      worker,
      pool,
      "complete jobs",
      worker.store.complete(
        batch.map((entry) =>
          entry.result === undefined ? entry.job.lease : { ...entry.job.lease, result: entry.result }
        )
      )
    )
    const ids = Option.map(accepted, (list) => new Set(list))
    for (const entry of batch) {
      const id = entry.job.lease.id
      pool.held.delete(entry)
      if (Option.isNone(ids)) continue
      if (ids.value.has(id)) {
        worker.counters.succeeded += 1
        pool.succeeded()
      } else {
        worker.counters.lateOutcomesRejected += 1
        yield* log(worker, Effect.logWarning(`Completion of job ${id} rejected: its lease was lost`)).pipe(
          Effect.annotateLogs({ jobId: id, kind: entry.job.kind, queue: entry.job.queue })
        )
      }
    }
    pool.completing -= batch.length
    if (pool.completing === 0) pool.allCompleted.unsafeOpen()
  })
