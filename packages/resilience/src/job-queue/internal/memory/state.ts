/**
 * The in-memory store's state: plain maps of jobs and dead-letter entries, and the steps every operation is built
 * from. An operation reads the clock, then runs one synchronous read-modify-write ({@link withNow}), so it is
 * atomic on the JS thread; time is Effect's `Clock`, so `TestClock` drives leases and backoffs.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as DeadLetter from "../../DeadLetter.js"
import type { JobId } from "../../JobQueue.js"
import type { Lease } from "../../JobStore.js"
import type { AttemptError } from "../errors.js"
import type { JobProgress } from "../progress.js"
import type { StoredState } from "../status.js"

/** @internal */
export interface MemoryJob {
  readonly id: number
  readonly queue: string
  readonly kind: string
  /** Payload, priority and max attempts change only when a waiting job is replaced (dedup `onConflict: "replace"`). */
  payload: unknown
  priority: number
  maxAttempts: number
  /** Cleared (`null`) when a cancel releases it. */
  dedupKey: string | null
  /** The job keeps its dedup key when it dies (`keepAfterDeath`). */
  dedupKeepDead: boolean
  /** The job gave up its dedup key (a dedup window superseded it). */
  dedupReleased: boolean
  readonly enqueuedAt: number
  readonly replayOf: number | null
  state: StoredState
  attempt: number
  epoch: number
  runAt: number
  startedAt: number | null
  finishedAt: number | null
  leaseOwner: string | null
  leaseExpiresAt: number | null
  errors: Array<AttemptError>
  /** The latest progress its handler reported. */
  progress: JobProgress | null
  /** The encoded result stored with its success. */
  result: Option.Option<unknown>
}

/** @internal */
export interface MemoryEntry {
  readonly job: MemoryJob
  readonly reason: DeadLetter.Reason
  readonly deadLetteredAt: number
  status: DeadLetter.EntryStatus
  replayedAs: number | null
  replayedAt: number | null
  discardedAt: number | null
}

/** @internal */
export interface State {
  readonly jobs: Map<number, MemoryJob>
  /** Ready jobs (due or not) by queue. */
  readonly ready: Map<string, Set<MemoryJob>>
  readonly running: Set<MemoryJob>
  /** The latest job of each `(queue, kind, dedup key)`: it holds the key if {@link holdsDedupKey}. */
  readonly dedup: Map<string, MemoryJob>
  /** Per queue: inserts with dedup keys take it, so one waiting for admission is atomic (see enqueue.ts). */
  readonly insertLocks: Map<string, Effect.Semaphore>
  readonly deadLetters: Map<number, MemoryEntry>
  /** Paused queues, with when each was paused: claims skip them. */
  readonly paused: Map<string, number>
  readonly wakeups: PubSub.PubSub<string>
  /** Queues that got due jobs during the current operation, published right after it. */
  readonly woken: Set<string>
  nextId: number
}

/** @internal */
export const makeState: Effect.Effect<State> = Effect.map(PubSub.sliding<string>(1024), (wakeups) => ({
  jobs: new Map(),
  ready: new Map(),
  running: new Set(),
  dedup: new Map(),
  insertLocks: new Map(),
  deadLetters: new Map(),
  paused: new Map(),
  wakeups,
  woken: new Set(),
  nextId: 1
}))

/** @internal */
export const date = (ms: number): Date => new Date(ms)

/** @internal */
export const optionalDate = (ms: number | null): Option.Option<Date> =>
  ms === null ? Option.none() : Option.some(date(ms))

/** @internal */
export const idOf = (id: number): JobId => String(id)

/** A stored job's numeric id, or `undefined` for an id no job can have. @internal */
export const numericId = (id: JobId): number | undefined => /^\d+$/.test(id) ? Number(id) : undefined

/** @internal */
export const readySet = (state: State, queue: string): Set<MemoryJob> => {
  let set = state.ready.get(queue)
  if (set === undefined) {
    set = new Set()
    state.ready.set(queue, set)
  }
  return set
}

/** @internal */
export const dedupSlot = (queue: string, kind: string, key: string): string => `${queue}\u0000${kind}\u0000${key}`

/**
 * Whether a job holds its dedup key: while ready, running or succeeded, and while dead with `keepAfterDeath`,
 * unless a dedup window superseded it. Any other state (cancelled) frees the key. The same rule as the partial
 * unique index `bulwark_jobs_dedup_live` (sql/0006_job_dedup.sql).
 *
 * @internal
 */
export const holdsDedupKey = (job: MemoryJob): boolean =>
  job.dedupKey !== null && !job.dedupReleased &&
  (job.state === "ready" || job.state === "running" || job.state === "succeeded" ||
    (job.state === "dead" && job.dedupKeepDead))

/** Frees a job's dedup key for good, whatever its state (as a dedup window's supersede does). @internal */
export const releaseDedupKey = (job: MemoryJob): void => {
  job.dedupReleased = true
}

/** @internal */
export const wake = (state: State, queue: string): void => {
  state.woken.add(queue)
}

const flushWakeups = (state: State): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (state.woken.size === 0) return Effect.void
    const queues = [...state.woken]
    state.woken.clear()
    return PubSub.publishAll(state.wakeups, queues)
  })

/** Runs one synchronous step at the clock's now, then publishes the queues it woke. @internal */
export const withNow = <A>(state: State, f: (now: number) => A): Effect.Effect<A> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => f(now))).pipe(
    Effect.zipLeft(flushWakeups(state))
  )

/** @internal */
export const clearLease = (state: State, job: MemoryJob): void => {
  job.leaseOwner = null
  job.leaseExpiresAt = null
  state.running.delete(job)
}

/** The running job a lease still holds (owner, attempt and claim epoch all match), if any. @internal */
export const holds = (state: State, lease: Lease): MemoryJob | undefined => {
  const job = state.jobs.get(Number(lease.id))
  return job !== undefined && job.state === "running" && job.leaseOwner === lease.owner &&
      job.attempt === lease.attempt && job.epoch === lease.epoch
    ? job
    : undefined
}

/** Moves a job to the dead-letter queue. @internal */
export const bury = (state: State, job: MemoryJob, reason: DeadLetter.Reason, now: number): void => {
  clearLease(state, job)
  job.state = "dead"
  job.finishedAt = now
  state.deadLetters.set(job.id, {
    job,
    reason,
    deadLetteredAt: now,
    status: "pending",
    replayedAs: null,
    replayedAt: null,
    discardedAt: null
  })
}

/** Puts a job back in its queue's ready set, waking the queue if it is due. @internal */
export const makeReady = (state: State, job: MemoryJob, now: number): void => {
  clearLease(state, job)
  job.state = "ready"
  readySet(state, job.queue).add(job)
  if (job.runAt <= now) wake(state, job.queue)
}

/** @internal */
export const create = (
  state: State,
  input: Omit<
    MemoryJob,
    | "id"
    | "state"
    | "attempt"
    | "epoch"
    | "startedAt"
    | "finishedAt"
    | "leaseOwner"
    | "leaseExpiresAt"
    | "errors"
    | "dedupKeepDead"
    | "dedupReleased"
    | "progress"
    | "result"
  >,
  now: number
): MemoryJob => {
  const job: MemoryJob = {
    ...input,
    id: state.nextId++,
    state: "ready",
    attempt: 0,
    epoch: 0,
    startedAt: null,
    finishedAt: null,
    leaseOwner: null,
    leaseExpiresAt: null,
    errors: [],
    dedupKeepDead: false,
    dedupReleased: false,
    progress: null,
    result: Option.none()
  }
  state.jobs.set(job.id, job)
  readySet(state, job.queue).add(job)
  if (job.runAt <= now) wake(state, job.queue)
  return job
}

/** Forgets a job row, and its dedup key if it holds it (a pruned job no longer deduplicates). @internal */
export const forget = (state: State, job: MemoryJob): void => {
  state.jobs.delete(job.id)
  if (job.dedupKey !== null) {
    const slot = dedupSlot(job.queue, job.kind, job.dedupKey)
    if (state.dedup.get(slot) === job) state.dedup.delete(slot)
  }
}
