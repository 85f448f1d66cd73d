/**
 * In-memory enqueue: new jobs, and the dedup rule of `JobStore.DedupPolicy` applied in input order, as
 * `bulwark_jobs_enqueue_one` applies it on PostgreSQL (sql/0006_job_dedup.sql).
 *
 * An insert is first staged in one synchronous step, each change with its undo: new jobs are made but not yet
 * claimable, replaced jobs are overwritten and held back from claims, keys superseded by a window are given up.
 * Then, if it creates jobs and has an admission to take, it takes it. Then it commits (the new and replaced jobs
 * become claimable) or, on a refused admission or an interruption, undoes every change; a dedup conflict undoes
 * them at once. Inserts with dedup keys hold their queues' locks from staging to the end, so a concurrent insert of
 * the same key waits for the outcome, as it waits for the row on PostgreSQL: only the job actually created takes
 * admission.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import type { Admit, DedupPolicy, Inserted, NewJob } from "../../JobStore.js"
import { type AdmissionRejectedError, DedupConflictError } from "../errors.js"
import { statusOf } from "../status.js"
import {
  create,
  dedupSlot,
  holdsDedupKey,
  idOf,
  type MemoryJob,
  readySet,
  releaseDedupKey,
  type State,
  wake,
  withNow
} from "./state.js"

/** What a `NewJob` without `dedup` means. */
const defaultPolicy: DedupPolicy = {
  onConflict: "error",
  keepAfterDeath: false,
  window: Option.none(),
  replaces: { priority: false, maxAttempts: false, runAt: false }
}

/** Equality of JSON values (the stored payloads), whatever the key order: `jsonb` equality. */
const jsonEqual = (a: unknown, b: unknown): boolean => {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]))
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null || Array.isArray(b)) return false
  const left = Object.entries(a)
  const right = new Map<string, unknown>(Object.entries(b))
  return left.length === right.size && left.every(([key, value]) => right.has(key) && jsonEqual(value, right.get(key)))
}

/** Ready and never attempted: queued or scheduled (or handed back on shutdown). Only such a job can be replaced. */
const isWaiting = (job: MemoryJob): boolean => job.state === "ready" && job.attempt === 0

/** A staged insert: its answers, the jobs it creates, the jobs to make claimable at commit, and its undo steps. */
interface Staged {
  readonly results: Array<Inserted>
  readonly created: Array<NewJob>
  readonly held: Array<MemoryJob>
  readonly undo: Array<() => void>
}

/** Makes held jobs claimable again, if they still exist and are ready. */
const settle = (state: State, staged: Staged, now: number): void => {
  for (const job of staged.held) {
    if (state.jobs.get(job.id) !== job || job.state !== "ready") continue
    readySet(state, job.queue).add(job)
    if (job.runAt <= now) wake(state, job.queue)
  }
}

const rollback = (state: State, staged: Staged, now: number): void => {
  for (const step of staged.undo.reverse()) step()
  settle(state, staged, now)
}

const stage = (
  state: State,
  jobs: ReadonlyArray<NewJob>,
  now: number
): Either.Either<Staged, DedupConflictError> => {
  const staged: Staged = { results: [], created: [], held: [], undo: [] }
  for (const [index, input] of jobs.entries()) {
    const policy = input.dedup ?? defaultPolicy
    const runAt = Option.match(input.runAt, {
      onNone: () => now + Duration.toMillis(input.delay),
      onSome: (at) => at.getTime()
    })
    const key = Option.getOrNull(input.dedupKey)
    const slot = key === null ? undefined : dedupSlot(input.queue, input.kind, key)
    const holder = slot === undefined ? undefined : state.dedup.get(slot)
    if (key !== null && holder !== undefined && holdsDedupKey(holder)) {
      const expired = Option.isSome(policy.window) && holder.enqueuedAt < now - Duration.toMillis(policy.window.value)
      if (expired) {
        // Superseded: the old job keeps going as it is, without its key.
        releaseDedupKey(holder)
        staged.undo.push(() => {
          holder.dedupReleased = false
        })
      } else {
        const same = jsonEqual(holder.payload, input.payload)
        const { replaces } = policy
        if (
          policy.onConflict === "replace" && isWaiting(holder) &&
          (!same || replaces.priority || replaces.maxAttempts || replaces.runAt)
        ) {
          const before = {
            payload: holder.payload,
            priority: holder.priority,
            maxAttempts: holder.maxAttempts,
            runAt: holder.runAt
          }
          holder.payload = input.payload
          if (replaces.priority) holder.priority = input.priority
          if (replaces.maxAttempts) holder.maxAttempts = input.maxAttempts
          if (replaces.runAt) holder.runAt = runAt
          readySet(state, holder.queue).delete(holder)
          staged.held.push(holder)
          staged.undo.push(() => {
            holder.payload = before.payload
            holder.priority = before.priority
            holder.maxAttempts = before.maxAttempts
            holder.runAt = before.runAt
          })
          staged.results.push({ id: idOf(holder.id), deduplicated: false, replaced: true })
          continue
        }
        if (same || policy.onConflict === "ignore") {
          staged.results.push({ id: idOf(holder.id), deduplicated: true, replaced: false })
          continue
        }
        rollback(state, staged, now)
        return Either.left(
          new DedupConflictError({
            queue: input.queue,
            kind: input.kind,
            dedupKey: key,
            existingId: idOf(holder.id),
            existingStatus: statusOf(holder.state, holder.attempt, holder.runAt, now),
            onConflict: policy.onConflict === "replace" ? "replace" : "error",
            ...(jobs.length > 1 ? { index } : {})
          })
        )
      }
    }
    const job = create(state, {
      queue: input.queue,
      kind: input.kind,
      payload: input.payload,
      priority: input.priority,
      maxAttempts: input.maxAttempts,
      dedupKey: key,
      enqueuedAt: now,
      replayOf: null,
      runAt
    }, now)
    job.dedupKeepDead = policy.keepAfterDeath
    readySet(state, job.queue).delete(job)
    staged.held.push(job)
    staged.created.push(input)
    if (slot !== undefined) state.dedup.set(slot, job)
    staged.undo.push(() => {
      state.jobs.delete(job.id)
      if (slot === undefined) return
      if (holder === undefined) state.dedup.delete(slot)
      else state.dedup.set(slot, holder)
    })
    staged.results.push({ id: idOf(job.id), deduplicated: false, replaced: false })
  }
  return Either.right(staged)
}

const lockOf = (state: State, queue: string): Effect.Semaphore => {
  let lock = state.insertLocks.get(queue)
  if (lock === undefined) {
    lock = Effect.unsafeMakeSemaphore(1)
    state.insertLocks.set(queue, lock)
  }
  return lock
}

/** @internal */
export const insert = (state: State) =>
(
  newJobs: ReadonlyArray<NewJob>,
  admit?: Admit
): Effect.Effect<ReadonlyArray<Inserted>, DedupConflictError | AdmissionRejectedError> => {
  const run = Effect.uninterruptibleMask((restore) =>
    withNow(state, (now) =>
      Either.map(stage(state, newJobs, now), (staged) => {
        const admitting = admit !== undefined && staged.created.length > 0
        if (!admitting) settle(state, staged, now)
        return { staged, admitting }
      })).pipe(
        Effect.flatMap(
          (decided): Effect.Effect<ReadonlyArray<Inserted>, DedupConflictError | AdmissionRejectedError> => {
            if (Either.isLeft(decided)) return Effect.fail(decided.left)
            const { admitting, staged } = decided.right
            if (admit === undefined || !admitting) return Effect.succeed(staged.results)
            return restore(admit(staged.created)).pipe(
              Effect.onExit((exit) =>
                withNow(
                  state,
                  (now) => Exit.isSuccess(exit) ? settle(state, staged, now) : rollback(state, staged, now)
                )
              ),
              Effect.as(staged.results)
            )
          }
        )
      )
  )
  // Inserts with dedup keys hold their queues' locks (in name order, against deadlocks) until they are settled.
  const queues = [...new Set(newJobs.flatMap((job) => Option.isSome(job.dedupKey) ? [job.queue] : []))].sort()
  return queues.reduceRight<typeof run>((locked, queue) => lockOf(state, queue).withPermits(1)(locked), run)
}
