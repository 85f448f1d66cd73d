import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as Stream from "effect/Stream"
import type { InvalidOptionsError } from "../../Failure.js"
import type * as DeadLetter from "../DeadLetter.js"
import type {
  ClaimedJob,
  FailOutcome,
  FailRequest,
  JobId,
  JobInfo,
  JobStore,
  Lease,
  NewJob,
  Options,
  Pruned,
  PruneRequest,
  QueueStats,
  Reclaimed
} from "../JobQueue.js"
import * as JobQueue from "../JobQueue.js"
import { encodeCursor } from "./cursor.js"
import { statusOf, type StoredState } from "./status.js"
import { tag } from "./tag.js"

// Only JobQueue.ts and its own internal modules import this one (see tag.ts); values from JobQueue.ts are only
// touched inside functions.

interface MemoryJob {
  readonly id: number
  readonly queue: string
  readonly kind: string
  readonly payload: unknown
  readonly priority: number
  readonly maxAttempts: number
  readonly dedupKey: string | null
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
  errors: Array<JobQueue.AttemptError>
}

interface MemoryEntry {
  readonly job: MemoryJob
  readonly reason: DeadLetter.Reason
  readonly deadLetteredAt: number
  status: DeadLetter.EntryStatus
  replayedAs: number | null
  replayedAt: number | null
  discardedAt: number | null
}

const date = (ms: number): Date => new Date(ms)
/** `true` when the filter is absent or the value passes it. */
const holdsFor = <A>(filter: Option.Option<A>, predicate: (a: A) => boolean): boolean =>
  Option.isNone(filter) || predicate(filter.value)
const optionalDate = (ms: number | null): Option.Option<Date> => (ms === null ? Option.none() : Option.some(date(ms)))
const idOf = (id: number): JobId => String(id)

/** Claim order: highest priority, then earliest due, then oldest. */
const claimOrder = (a: MemoryJob, b: MemoryJob): number => b.priority - a.priority || a.runAt - b.runAt || a.id - b.id

/**
 * One process's job store. Every operation reads the clock, then runs one
 * synchronous read-modify-write on plain maps, so it is atomic on the JS
 * thread; time comes from Effect's `Clock`, so `TestClock` drives leases and
 * backoffs.
 *
 * @internal
 */
export const make: Effect.Effect<JobStore> = Effect.gen(function*() {
  const jobs = new Map<number, MemoryJob>()
  const ready = new Map<string, Set<MemoryJob>>()
  const running = new Set<MemoryJob>()
  const dedup = new Map<string, MemoryJob>()
  const deadLetters = new Map<number, MemoryEntry>()
  const wakeups = yield* PubSub.sliding<string>(1024)
  let nextId = 1

  const readySet = (queue: string): Set<MemoryJob> => {
    let set = ready.get(queue)
    if (set === undefined) {
      set = new Set()
      ready.set(queue, set)
    }
    return set
  }
  const dedupSlot = (queue: string, key: string) => `${queue}\u0000${key}`
  // Operations stay synchronous; the queues they woke are published right after.
  const woken = new Set<string>()
  const wake = (queue: string) => {
    woken.add(queue)
  }
  const flushWakeups = Effect.suspend(() => {
    if (woken.size === 0) return Effect.void
    const queues = [...woken]
    woken.clear()
    return PubSub.publishAll(wakeups, queues)
  })

  const withNow = <A>(f: (now: number) => A): Effect.Effect<A> =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => Effect.sync(() => f(now))).pipe(Effect.zipLeft(flushWakeups))

  const clearLease = (job: MemoryJob) => {
    job.leaseOwner = null
    job.leaseExpiresAt = null
    running.delete(job)
  }

  const holds = (lease: Lease): MemoryJob | undefined => {
    const job = jobs.get(Number(lease.id))
    return job !== undefined && job.state === "running" && job.leaseOwner === lease.owner &&
        job.attempt === lease.attempt && job.epoch === lease.epoch
      ? job
      : undefined
  }

  const bury = (job: MemoryJob, reason: DeadLetter.Reason, now: number) => {
    clearLease(job)
    job.state = "dead"
    job.finishedAt = now
    deadLetters.set(job.id, {
      job,
      reason,
      deadLetteredAt: now,
      status: "pending",
      replayedAs: null,
      replayedAt: null,
      discardedAt: null
    })
  }

  const create = (
    input: Omit<
      MemoryJob,
      "id" | "state" | "attempt" | "epoch" | "startedAt" | "finishedAt" | "leaseOwner" | "leaseExpiresAt" | "errors"
    >,
    now: number
  ): MemoryJob => {
    const job: MemoryJob = {
      ...input,
      id: nextId++,
      state: "ready",
      attempt: 0,
      epoch: 0,
      startedAt: null,
      finishedAt: null,
      leaseOwner: null,
      leaseExpiresAt: null,
      errors: []
    }
    jobs.set(job.id, job)
    readySet(job.queue).add(job)
    if (job.runAt <= now) wake(job.queue)
    return job
  }

  const insert = (newJobs: ReadonlyArray<NewJob>) =>
    withNow((now) =>
      newJobs.map((input) => {
        if (Option.isSome(input.dedupKey)) {
          const existing = dedup.get(dedupSlot(input.queue, input.dedupKey.value))
          if (existing !== undefined) return { id: idOf(existing.id), deduplicated: true }
        }
        const runAt = Option.match(input.runAt, {
          onNone: () => now + Duration.toMillis(input.delay),
          onSome: (at) => at.getTime()
        })
        const job = create({
          queue: input.queue,
          kind: input.kind,
          payload: input.payload,
          priority: input.priority,
          maxAttempts: input.maxAttempts,
          dedupKey: Option.getOrNull(input.dedupKey),
          enqueuedAt: now,
          replayOf: null,
          runAt
        }, now)
        if (job.dedupKey !== null) dedup.set(dedupSlot(job.queue, job.dedupKey), job)
        return { id: idOf(job.id), deduplicated: false }
      })
    )

  const claim = (request: Parameters<JobStore["claim"]>[0]) =>
    withNow((now): ReadonlyArray<ClaimedJob> => {
      const candidates = [...readySet(request.queue)].filter((job) => job.runAt <= now).sort(claimOrder)
      const leaseMillis = Duration.toMillis(request.lease)
      return candidates.slice(0, request.limit).map((job): ClaimedJob => {
        readySet(job.queue).delete(job)
        running.add(job)
        job.state = "running"
        job.attempt += 1
        job.epoch += 1
        job.leaseOwner = request.owner
        job.leaseExpiresAt = now + leaseMillis
        job.startedAt = now
        return {
          lease: { id: idOf(job.id), owner: request.owner, attempt: job.attempt, epoch: job.epoch },
          queue: job.queue,
          kind: job.kind,
          payload: job.payload,
          priority: job.priority,
          maxAttempts: job.maxAttempts,
          dedupKey: Option.fromNullable(job.dedupKey),
          enqueuedAt: date(job.enqueuedAt),
          runAt: date(job.runAt),
          claimedAt: date(now),
          leaseExpiresAt: date(now + leaseMillis)
        }
      })
    })

  const heartbeat = (leases: ReadonlyArray<Lease>, lease: Duration.Duration) =>
    withNow((now) =>
      leases.flatMap((held) => {
        const job = holds(held)
        if (job === undefined) return []
        job.leaseExpiresAt = now + Duration.toMillis(lease)
        return [held.id]
      })
    )

  const complete = (leases: ReadonlyArray<Lease>) =>
    withNow((now) =>
      leases.flatMap((held) => {
        const job = holds(held)
        if (job === undefined) return []
        clearLease(job)
        job.state = "succeeded"
        job.finishedAt = now
        return [held.id]
      })
    )

  const fail = (request: FailRequest) =>
    withNow((now): FailOutcome => {
      const job = holds(request.lease)
      if (job === undefined) return { _tag: "Rejected" }
      job.errors.push(
        new JobQueue.AttemptError({
          attempt: job.attempt,
          tag: request.error.tag,
          message: request.error.message,
          cause: request.error.cause,
          verdict: request.error.verdict,
          workerId: request.lease.owner,
          startedAt: job.startedAt === null ? null : date(job.startedAt),
          failedAt: date(now)
        })
      )
      if (Option.isNone(request.retryIn)) {
        bury(job, request.error.verdict === "terminal" ? "terminal" : "exhausted", now)
        return { _tag: "Dead" }
      }
      clearLease(job)
      job.state = "ready"
      job.runAt = now + Duration.toMillis(request.retryIn.value)
      readySet(job.queue).add(job)
      if (job.runAt <= now) wake(job.queue)
      return { _tag: "Retrying", runAt: date(job.runAt) }
    })

  const release = (leases: ReadonlyArray<Lease>) =>
    withNow(() =>
      leases.flatMap((held) => {
        const job = holds(held)
        if (job === undefined) return []
        clearLease(job)
        job.state = "ready"
        job.attempt -= 1
        readySet(job.queue).add(job)
        wake(job.queue)
        return [held.id]
      })
    )

  const reclaim = (queues: ReadonlyArray<string>, limit: number) =>
    withNow((now): ReadonlyArray<Reclaimed> => {
      const wanted = new Set(queues)
      const lapsed = [...running]
        .filter((job) => wanted.has(job.queue) && job.leaseExpiresAt !== null && job.leaseExpiresAt < now)
        .sort((a, b) => a.id - b.id)
        .slice(0, limit)
      return lapsed.map((job): Reclaimed => {
        const previousOwner = job.leaseOwner ?? ""
        job.errors.push(
          new JobQueue.AttemptError({
            attempt: job.attempt,
            tag: "LeaseExpired",
            message: `the lease of worker ${previousOwner} lapsed before the job finished`,
            cause: null,
            verdict: "transient",
            workerId: previousOwner,
            startedAt: job.startedAt === null ? null : date(job.startedAt),
            failedAt: date(now)
          })
        )
        if (job.attempt >= job.maxAttempts) {
          bury(job, "exhausted", now)
          return { id: idOf(job.id), queue: job.queue, outcome: "Dead", previousOwner }
        }
        clearLease(job)
        job.state = "ready"
        job.runAt = now
        readySet(job.queue).add(job)
        wake(job.queue)
        return { id: idOf(job.id), queue: job.queue, outcome: "Retrying", previousOwner }
      })
    })

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
    replayOf: Option.map(Option.fromNullable(job.replayOf), idOf)
  })

  const status = (id: JobId) =>
    withNow((now) => {
      const job = /^\d+$/.test(id) ? jobs.get(Number(id)) : undefined
      return job === undefined ? Option.none() : Option.some(info(job, now))
    })

  const stats = withNow((now): ReadonlyArray<QueueStats> => {
    const byQueue = new Map<string, {
      ready: number
      scheduled: number
      retrying: number
      running: number
      deadLetters: number
      oldest: number | null
    }>()
    const row = (queue: string) => {
      let found = byQueue.get(queue)
      if (found === undefined) {
        found = { ready: 0, scheduled: 0, retrying: 0, running: 0, deadLetters: 0, oldest: null }
        byQueue.set(queue, found)
      }
      return found
    }
    for (const [queue, set] of ready) {
      for (const job of set) {
        const counts = row(queue)
        if (job.runAt <= now) {
          counts.ready += 1
          counts.oldest = counts.oldest === null ? job.runAt : Math.min(counts.oldest, job.runAt)
        } else if (job.attempt > 0) counts.retrying += 1
        else counts.scheduled += 1
      }
    }
    for (const job of running) row(job.queue).running += 1
    for (const entry of deadLetters.values()) if (entry.status === "pending") row(entry.job.queue).deadLetters += 1
    return [...byQueue].filter(([, c]) => c.ready + c.scheduled + c.retrying + c.running + c.deadLetters > 0).map((
      [queue, c]
    ) => ({
      queue,
      ready: c.ready,
      scheduled: c.scheduled,
      retrying: c.retrying,
      running: c.running,
      deadLetters: c.deadLetters,
      oldestReadyAge: c.oldest === null ? Option.none() : Option.some(Duration.millis(now - c.oldest))
    }))
  })

  const entryOf = (entry: MemoryEntry): DeadLetter.Entry => ({
    id: idOf(entry.job.id),
    queue: entry.job.queue,
    kind: entry.job.kind,
    payload: entry.job.payload,
    priority: entry.job.priority,
    dedupKey: Option.fromNullable(entry.job.dedupKey),
    attempts: entry.job.attempt,
    maxAttempts: entry.job.maxAttempts,
    errors: [...entry.job.errors],
    reason: entry.reason,
    enqueuedAt: date(entry.job.enqueuedAt),
    deadLetteredAt: date(entry.deadLetteredAt),
    status: entry.status,
    replayedAs: Option.map(Option.fromNullable(entry.replayedAs), idOf),
    replayedAt: optionalDate(entry.replayedAt),
    discardedAt: optionalDate(entry.discardedAt),
    replayOf: Option.map(Option.fromNullable(entry.job.replayOf), idOf)
  })

  const listDeadLetters = (query: DeadLetter.Query) =>
    Effect.sync((): DeadLetter.Page => {
      const sign = query.order === "newest" ? -1 : 1
      const compare = (a: { at: number; id: number }, b: { at: number; id: number }) =>
        sign * (a.at - b.at || a.id - b.id)
      const after = Option.map(query.after, (position) => ({
        at: position.deadLetteredAt.getTime(),
        id: Number(position.id)
      }))
      const matching = [...deadLetters.values()].filter((entry) => {
        const lastTag = entry.job.errors.at(-1)?.tag
        return (query.status === "all" || entry.status === query.status) &&
          holdsFor(query.queue, (queue) => entry.job.queue === queue) &&
          holdsFor(query.kind, (kind) => entry.job.kind === kind) &&
          holdsFor(query.errorTag, (tag) => lastTag === tag) &&
          holdsFor(query.since, (since) => entry.deadLetteredAt >= since.getTime()) &&
          holdsFor(query.until, (until) => entry.deadLetteredAt < until.getTime()) &&
          holdsFor(after, (position) => compare({ at: entry.deadLetteredAt, id: entry.job.id }, position) > 0)
      }).sort((a, b) => compare({ at: a.deadLetteredAt, id: a.job.id }, { at: b.deadLetteredAt, id: b.job.id }))
      const page = matching.slice(0, query.limit)
      const last = page.at(-1)
      return {
        entries: page.map(entryOf),
        next: matching.length > query.limit && last !== undefined
          ? Option.some(
            encodeCursor({ deadLetteredAt: date(last.deadLetteredAt), id: idOf(last.job.id) })
          )
          : Option.none()
      }
    })

  const getDeadLetter = (id: JobId) =>
    Effect.sync(() => {
      const entry = /^\d+$/.test(id) ? deadLetters.get(Number(id)) : undefined
      return entry === undefined ? Option.none() : Option.some(entryOf(entry))
    })

  const distinct = <A extends { readonly id: JobId }>(items: ReadonlyArray<A>): ReadonlyArray<A> => {
    const seen = new Set<JobId>()
    return items.filter((item) => (seen.has(item.id) ? false : (seen.add(item.id), true)))
  }

  const replayDeadLetters = (requests: ReadonlyArray<DeadLetter.ReplayRequest>) =>
    withNow((now) =>
      distinct(requests).map((request): DeadLetter.ReplayResult => {
        const entry = /^\d+$/.test(request.id) ? deadLetters.get(Number(request.id)) : undefined
        if (entry === undefined) return { _tag: "NotFound", id: request.id }
        if (entry.status === "discarded") return { _tag: "Discarded", id: request.id }
        if (entry.status === "replayed" && entry.replayedAs !== null) {
          return {
            _tag: "Replayed",
            id: request.id,
            queue: entry.job.queue,
            job: idOf(entry.replayedAs),
            created: false
          }
        }
        const job = create({
          queue: entry.job.queue,
          kind: entry.job.kind,
          payload: Option.getOrElse(request.payload, () => entry.job.payload),
          priority: entry.job.priority,
          maxAttempts: entry.job.maxAttempts,
          dedupKey: null,
          enqueuedAt: now,
          replayOf: entry.job.id,
          runAt: now
        }, now)
        entry.status = "replayed"
        entry.replayedAs = job.id
        entry.replayedAt = now
        return { _tag: "Replayed", id: request.id, queue: entry.job.queue, job: idOf(job.id), created: true }
      })
    )

  const discardDeadLetters = (ids: ReadonlyArray<JobId>) =>
    withNow((now) =>
      distinct(ids.map((id) => ({ id }))).map(({ id }): DeadLetter.DiscardResult => {
        const entry = /^\d+$/.test(id) ? deadLetters.get(Number(id)) : undefined
        if (entry === undefined) return { id, queue: Option.none(), outcome: "not_found" }
        const queue = Option.some(entry.job.queue)
        switch (entry.status) {
          case "discarded":
            return { id, queue, outcome: "already_discarded" }
          case "replayed":
            return { id, queue, outcome: "replayed" }
          case "pending":
            entry.status = "discarded"
            entry.discardedAt = now
            return { id, queue, outcome: "discarded" }
        }
      })
    )

  /** Forgets a job row, and its dedup key if it holds it (a pruned job no longer deduplicates). */
  const forget = (job: MemoryJob) => {
    jobs.delete(job.id)
    if (job.dedupKey !== null) {
      const slot = dedupSlot(job.queue, job.dedupKey)
      if (dedup.get(slot) === job) dedup.delete(slot)
    }
  }

  const settledAt = (entry: MemoryEntry): number | null =>
    entry.status === "replayed" ? entry.replayedAt : entry.status === "discarded" ? entry.discardedAt : null

  const prune = (request: PruneRequest) =>
    withNow((now): Pruned => {
      const succeededBefore = now - Duration.toMillis(request.keepSucceeded)
      const settledBefore = now - Duration.toMillis(request.keepSettledDeadLetters)
      const succeeded = [...jobs.values()]
        .filter((job) => job.state === "succeeded" && job.finishedAt !== null && job.finishedAt < succeededBefore)
        .sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0) || a.id - b.id)
        .slice(0, request.limit)
      for (const job of succeeded) forget(job)
      const settled = [...deadLetters.values()]
        .flatMap((entry) => {
          const at = settledAt(entry)
          return at !== null && at < settledBefore ? [{ entry, at }] : []
        })
        .sort((a, b) => a.at - b.at || a.entry.job.id - b.entry.job.id)
        .slice(0, request.limit)
      for (const { entry } of settled) {
        deadLetters.delete(entry.job.id)
        if (entry.job.state === "dead") forget(entry.job)
      }
      return { succeeded: succeeded.length, deadLetters: settled.length }
    })

  return {
    backend: "memory",
    insert,
    claim,
    heartbeat,
    complete,
    fail,
    release,
    reclaim,
    status,
    stats,
    wakeups: Stream.fromPubSub(wakeups),
    listening: Effect.succeed(true),
    listDeadLetters,
    getDeadLetter,
    replayDeadLetters,
    discardDeadLetters,
    prune
  }
})

/** @internal */
export const layer = (options: Options): Layer.Layer<JobQueue.JobQueue, InvalidOptionsError> =>
  Layer.effect(
    tag,
    Effect.gen(function*() {
      const config = yield* Either.match(JobQueue.makeConfig(options), { onLeft: Effect.fail, onRight: Effect.succeed })
      const store = yield* make
      return JobQueue.make(config, store)
    })
  )
