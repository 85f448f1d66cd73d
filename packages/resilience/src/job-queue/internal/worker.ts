import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Queue from "effect/Queue"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { hostname } from "node:os"
import type { InvalidOptionsError, Verdict } from "../../Failure.js"
import * as Failure from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as check from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import { attributes } from "../../observability/internal/tracingAttributes.js"
import type { ClaimedJob, JobDefinition, JobQueue, JobStore, QueueConfig } from "../JobQueue.js"
import type * as JobQueueApi from "../JobQueue.js"
import type { Handler, JobContext, JobWorker, Options, Stats } from "../JobWorker.js"
import * as JobWorkerApi from "../JobWorker.js"
import { retryDelay } from "./backoff.js"
import { MAX_CAUSE, truncate } from "./status.js"
import { tag } from "./tag.js"
import { findQueue } from "./validate.js"

// Only JobWorker.ts imports this module (see tag.ts); values from it are only touched inside functions.

/** @internal */
export const handler = <D extends JobDefinition.Any, A, E, R>(
  definition: D,
  run: (payload: JobDefinition.Payload<D>, job: JobContext) => Effect.Effect<A, E, R>
): Handler<R> => {
  const decode = Schema.decodeUnknown(definition.payload)
  return {
    [JobWorkerApi.HandlerTypeId]: JobWorkerApi.HandlerTypeId,
    definition,
    run: (payload, job) =>
      decode(payload).pipe(
        Effect.mapError((error) =>
          new JobWorkerApi.PayloadDecodeError({
            kind: definition.kind,
            issue: ParseResult.TreeFormatter.formatErrorSync(error)
          })
        ),
        Effect.flatMap((decoded: JobDefinition.Payload<D>) => run(decoded, job)),
        Effect.asVoid
      )
  }
}

const COMPONENT = "JobWorker"
/** Most completions written by one statement. */
const MAX_COMPLETIONS = 500
const field = (option: string): check.Field => ({ component: COMPONENT, option })

interface Resolved<R> {
  readonly id: string
  readonly handlers: ReadonlyMap<string, Handler<R>>
  readonly pools: ReadonlyArray<{ readonly queue: QueueConfig; readonly concurrency: number }>
  readonly gracePeriod: Duration.Duration
}

const isList = (u: unknown): u is ReadonlyArray<unknown> => Array.isArray(u)

const resolve = <R>(
  options: Options<R>,
  queue: JobQueue
): Either.Either<Resolved<R>, InvalidOptionsError | JobQueueApi.UnknownQueueError> =>
  Either.gen(function*() {
    if (typeof options !== "object" || options === null || !isList(options.handlers)) {
      return yield* Either.left(check.invalid(field("handlers"), options, "an array of JobWorker.handler(...)"))
    }
    const handlers = new Map<string, Handler<R>>()
    for (const [index, candidate] of options.handlers.entries()) {
      if (typeof candidate !== "object" || candidate === null || !(JobWorkerApi.HandlerTypeId in candidate)) {
        return yield* Either.left(check.invalid(field(`handlers[${index}]`), candidate, "a JobWorker.handler(...)"))
      }
      const kind = candidate.definition.kind
      if (handlers.has(kind)) {
        return yield* Either.left(check.invalid(field(`handlers[${index}]`), kind, "one handler per job kind"))
      }
      handlers.set(kind, candidate)
    }
    const names = options.queues ?? [...new Set([...handlers.values()].map((h) => h.definition.queue))]
    if (names.length === 0) {
      return yield* Either.left(check.invalid(field("queues"), names, "at least one queue (or one handler)"))
    }
    const pools: Array<{ queue: QueueConfig; concurrency: number }> = []
    for (const name of new Set(names)) {
      const config = yield* findQueue(queue.config, name)
      const override = options.concurrency?.[name]
      const concurrency = override === undefined
        ? config.concurrency
        : yield* check.number(field(`concurrency.${name}`), override, { min: 1, max: 10_000, integer: true })
      pools.push({ queue: config, concurrency })
    }
    for (const name of Object.keys(options.concurrency ?? {})) {
      if (!names.includes(name)) {
        return yield* Either.left(check.invalid(field(`concurrency.${name}`), name, "a queue this worker serves"))
      }
    }
    const id = options.workerId ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`
    if (typeof id !== "string" || id.length === 0 || id.length > 200) {
      return yield* Either.left(check.invalid(field("workerId"), id, "1 to 200 characters"))
    }
    const gracePeriod = yield* check.duration(field("gracePeriod"), options.gracePeriod ?? Duration.seconds(30))
    return { id, handlers, pools, gracePeriod }
  })

/**
 * A lease this worker holds. `waiting`: claimed ahead of a free slot, in the pool's local queue; `running`: its
 * handler runs; `reporting`: its failure (or hand-back) is being written, the slot still taken; `completing`: it
 * succeeded and its slot is free again while the batched completion is written. Heartbeats renew all of them.
 */
interface Held {
  readonly job: ClaimedJob
  phase: "waiting" | "running" | "reporting" | "completing"
  /** The lease is gone (another worker holds the job, or it surely lapsed): never start it, drop its outcome. */
  lost: boolean
  /** Shutdown interrupted the handler: the lease is handed back. */
  stopped: boolean
  fiber: Fiber.RuntimeFiber<void, unknown> | undefined
  /**
   * When the lease surely lapsed, on this process's clock: the last successful claim or heartbeat plus the lease,
   * counted from just before the request was sent (so never later than the backend's own expiry).
   */
  deadline: number
  /** This process's clock when the claim returned (the local part of the wait histogram). */
  readonly claimedLocally: number
  /** This process's clock when its handler started. */
  startedAt: number
}

interface Pool {
  readonly queue: QueueConfig
  readonly concurrency: number
  /** Every lease held (one job may be held twice: a lost lease still completing, and the job claimed again). */
  readonly held: Set<Held>
  /** Claimed jobs waiting for a slot, oldest first. */
  readonly waiting: Array<Held>
  /** Slots taken: handlers running, failures and hand-backs being written. */
  busy: number
  /** Successes whose completion is not written yet; `allCompleted` is open exactly when there are none. */
  completing: number
  readonly allCompleted: Effect.Latch
  /** Moving averages of a handler's run time and of a claim's round trip, in ms (`undefined`: none seen yet). */
  meanRunMillis: number | undefined
  meanClaimMillis: number | undefined
  /** The jobs whose handler runs now. */
  readonly running: Set<Held>
  /** New work may be due, or a slot was freed. Sliding: one pending ring is enough. */
  readonly doorbell: Queue.Queue<void>
  /** Successes waiting for their completion to be written; one statement writes all that piled up. */
  readonly completions: Queue.Queue<Held>
  readonly succeeded: () => void
  readonly retried: () => void
  readonly deadLettered: () => void
  readonly duration: (seconds: number) => void
  readonly wait: (seconds: number) => void
}

const errorTag = (error: unknown): string => {
  if (typeof error === "object" && error !== null) {
    if ("_tag" in error && typeof error._tag === "string") return error._tag
    if (error instanceof Error) return error.name
  }
  return "Error"
}

const errorMessage = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string") {
    return error.message
  }
  return String(error)
}

/**
 * What a failed attempt was: the first typed failure decides (branded
 * errors keep their brand, then the classifier, then the queue's
 * `unclassified` verdict); a defect or a stray interruption is `unclassified`.
 */
const describeFailure = (
  cause: Cause.Cause<unknown>,
  classifier: Failure.Classifier,
  unclassified: Verdict
): { tag: string; message: string; cause: string; verdict: Verdict } => {
  const pretty = truncate(Cause.pretty(cause), MAX_CAUSE)
  const failure = Cause.failureOption(cause)
  if (Option.isSome(failure)) {
    const error = failure.value
    const verdict: Verdict = Failure.isTerminal(error)
      ? "terminal"
      : Failure.isTransient(error)
      ? "transient"
      : Option.getOrElse(Failure.classifyError(error, classifier), () => unclassified)
    return { tag: errorTag(error), message: truncate(errorMessage(error), 2048), cause: pretty, verdict }
  }
  const defect = Cause.dieOption(cause)
  if (Option.isSome(defect)) {
    return {
      tag: "Defect",
      message: truncate(errorMessage(defect.value), 2048),
      cause: pretty,
      verdict: unclassified
    }
  }
  return { tag: "Interrupted", message: "the handler was interrupted", cause: pretty, verdict: unclassified }
}

const ring = (pool: Pool) => Queue.offer(pool.doorbell, undefined)

/** Most successes awaiting their completion before a pool stops claiming (the completion writer is behind). */
const MAX_PENDING_COMPLETIONS = 4 * MAX_COMPLETIONS

/** Weight of the latest sample in the moving averages of run and round-trip times. */
const SMOOTHING = 0.2

const average = (mean: number | undefined, sample: number): number =>
  mean === undefined ? sample : mean + SMOOTHING * (sample - mean)

/**
 * How many jobs a pool claims now. It wants, when the claim returns, its slots full plus the jobs its slots will
 * finish during the next round trip waiting (so no slot idles while that claim runs). Its slots finish about
 * `concurrency · roundTrip / runTime` jobs per round trip, so it claims:
 *
 *   concurrency + ahead − (held − finishing)
 *
 * with `held` the jobs it runs or holds waiting, `finishing` those of them that will be done when the claim
 * returns (at most that per-round-trip figure) and `ahead` that figure capped by the queue's `prefetch` (0 turns
 * both off). `roundTrip` is the moving average of claims; `runTime` the moving average of handlers, or the age of
 * the oldest one still running if that is longer (a handler that hangs stops the claiming ahead at once). Slow
 * jobs, or a backend that answers at once (memory), make both 0: one claim per free slot, nothing hoarded. Fast jobs
 * make it claim full batches (`batchSize`) back to back.
 */
const wanted = (pool: Pool, now: number): number => {
  if (pool.completing >= MAX_PENDING_COMPLETIONS) return 0
  const held = pool.busy + pool.waiting.length
  let perRoundTrip = 0
  if (pool.meanRunMillis !== undefined && pool.meanClaimMillis !== undefined && pool.meanClaimMillis > 0) {
    let runTime = pool.meanRunMillis
    for (const entry of pool.running) runTime = Math.max(runTime, now - entry.startedAt)
    perRoundTrip = runTime === 0 ? Infinity : Math.floor((pool.concurrency * pool.meanClaimMillis) / runTime)
  }
  const ahead = Math.min(pool.queue.prefetch, perRoundTrip)
  const finishing = pool.queue.prefetch === 0 ? 0 : Math.min(held, perRoundTrip)
  return Math.min(pool.queue.batchSize, pool.concurrency + ahead - (held - finishing))
}

/** @internal */
export const make = <R>(
  options: Options<R>
): Effect.Effect<JobWorker, InvalidOptionsError | JobQueueApi.UnknownQueueError, JobQueue | Scope.Scope | R> =>
  Effect.gen(function*() {
    const queue = yield* tag
    const resolved = yield* Either.match(resolve(options, queue), { onLeft: Effect.fail, onRight: Effect.succeed })
    const context = yield* Effect.context<R>()
    const classifier = yield* Failure.CurrentClassifier
    const store: JobStore = queue.store
    const workerId = resolved.id
    const counters = {
      claimed: 0,
      succeeded: 0,
      retried: 0,
      deadLettered: 0,
      released: 0,
      reclaimed: 0,
      leasesLost: 0,
      lateOutcomesRejected: 0
    }
    /** Set when shutdown begins: no waiting job starts any more. */
    let draining = false

    const pools = new Map<string, Pool>()
    for (const { concurrency, queue: config } of resolved.pools) {
      const labels = { queue: config.name }
      pools.set(config.name, {
        queue: config,
        concurrency,
        held: new Set(),
        waiting: [],
        busy: 0,
        completing: 0,
        allCompleted: yield* Effect.makeLatch(true),
        meanRunMillis: undefined,
        meanClaimMillis: undefined,
        running: new Set(),
        doorbell: yield* Queue.sliding<void>(1),
        completions: yield* Queue.unbounded<Held>(),
        succeeded: Metric.counter(Metrics.jobs, { ...labels, outcome: "succeeded" }),
        retried: Metric.counter(Metrics.jobs, { ...labels, outcome: "retried" }),
        deadLettered: Metric.counter(Metrics.jobs, { ...labels, outcome: "dead_lettered" }),
        duration: Metric.histogram(Metrics.jobDuration, labels),
        wait: Metric.histogram(Metrics.jobWait, labels)
      })
    }

    // Order matters: finalizers run in reverse, so `shutdown` (added last) runs before these sets are interrupted.
    const runners = yield* FiberSet.make<void, never>()
    const services = yield* FiberSet.make<void, never>()
    const claimLoops = yield* FiberSet.make<void, never>()

    const log = <A, E, R2>(effect: Effect.Effect<A, E, R2>) =>
      effect.pipe(Effect.annotateLogs({ module: "JobWorker", workerId }))

    // Reports outlive a flaky connection: retried until they land or the lease would have lapsed anyway.
    const persist = <A>(pool: Pool, operation: string, effect: Effect.Effect<A, JobQueueApi.JobStoreError>) =>
      effect.pipe(
        Effect.retry(
          Schedule.exponential(Duration.millis(50)).pipe(
            Schedule.union(Schedule.spaced(Duration.seconds(1))),
            Schedule.upTo(pool.queue.visibilityTimeout)
          )
        ),
        Effect.tapError((error) => log(Effect.logError(`Could not ${operation}; the lease will lapse`, error))),
        Effect.option
      )

    /** Failures and hand-backs, written while the slot is still taken. */
    const reportFailure = (pool: Pool, job: ClaimedJob, entry: Held, exit: Exit.Failure<void, unknown>, ms: number) =>
      Effect.gen(function*() {
        entry.phase = "reporting"
        if (entry.stopped && Cause.isInterruptedOnly(exit.cause)) {
          const released = yield* persist(pool, "hand back a lease", store.release([job.lease]))
          if (Option.isSome(released) && released.value.length > 0) counters.released += 1
          return
        }
        if (entry.lost && Cause.isInterruptedOnly(exit.cause)) {
          counters.leasesLost += 1
          return
        }
        pool.duration(ms / 1000)
        const failure = describeFailure(exit.cause, classifier, pool.queue.unclassified)
        const exhausted = job.lease.attempt >= job.maxAttempts
        const retryIn = failure.verdict === "terminal" || exhausted
          ? Option.none()
          : Option.some(retryDelay(pool.queue.retry, job.lease.attempt, yield* Random.next))
        const outcome = yield* persist(
          pool,
          "record a failed job",
          store.fail({ lease: job.lease, error: failure, retryIn })
        )
        if (Option.isNone(outcome)) return
        switch (outcome.value._tag) {
          case "Retrying":
            counters.retried += 1
            pool.retried()
            return
          case "Dead":
            counters.deadLettered += 1
            pool.deadLettered()
            yield* log(
              Effect.logWarning(
                `Job ${job.lease.id} (${job.kind}) moved to the dead-letter queue after attempt ${job.lease.attempt}: ` +
                  `${failure.tag}: ${failure.message}`
              )
            )
            return
          case "Rejected":
            counters.lateOutcomesRejected += 1
            yield* log(Effect.logWarning(`Failure of job ${job.lease.id} rejected: its lease was lost`))
            return
        }
      })

    /** Gives a slot back and starts the next waiting job in it. Synchronous, so slots are never double-counted. */
    const freeSlot = (pool: Pool) => {
      pool.busy -= 1
      return Effect.zipRight(fill(pool), ring(pool))
    }

    /** Runs one job in a slot taken for it, then reports; the slot is freed as soon as the outcome allows. */
    const runJob = (pool: Pool, entry: Held): Effect.Effect<void> => {
      const job = entry.job
      let slotTaken = true
      return Effect.gen(function*() {
        const handler = resolved.handlers.get(job.kind)
        const jobContext: JobContext = {
          id: job.lease.id,
          queue: job.queue,
          kind: job.kind,
          attempt: job.lease.attempt,
          maxAttempts: job.maxAttempts,
          enqueuedAt: job.enqueuedAt,
          dedupKey: job.dedupKey,
          workerId
        }
        const run: Effect.Effect<void, unknown> = handler === undefined
          ? Effect.fail(new JobWorkerApi.NoHandlerError({ kind: job.kind, workerId }))
          : Effect.provide(handler.run(job.payload, jobContext), context)
        // On the Effect Clock: the handler is interrupted at the limit and the attempt fails transiently.
        const work = Option.match(pool.queue.maxRunTime, {
          onNone: () => run,
          onSome: (limit) =>
            Effect.timeoutFail(run, {
              duration: limit,
              onTimeout: () =>
                new JobWorkerApi.JobTimeoutError({ queue: job.queue, kind: job.kind, jobId: job.lease.id, limit })
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
        if (Exit.isSuccess(exit)) {
          // The slot is free at once; completeLoop writes the completion in a batch, fenced by the lease, and keeps
          // the lease renewed until then.
          pool.duration((finished - started) / 1000)
          entry.phase = "completing"
          if (pool.completing === 0) pool.allCompleted.unsafeClose()
          pool.completing += 1
          yield* Queue.offer(pool.completions, entry)
          slotTaken = false
          yield* freeSlot(pool)
        } else {
          yield* reportFailure(pool, job, entry, exit, finished - started)
        }
      }).pipe(
        Effect.ensuring(Effect.suspend(() => {
          if (entry.phase !== "completing") pool.held.delete(entry)
          if (!slotTaken) return Effect.void
          slotTaken = false
          return freeSlot(pool)
        })),
        Effect.uninterruptible,
        Effect.annotateLogs({ jobId: job.lease.id, kind: job.kind, queue: job.queue })
      )
    }

    /** Starts waiting jobs while slots are free (never once shutdown began). */
    const fill = (pool: Pool): Effect.Effect<void> =>
      Effect.suspend(() => {
        const starting: Array<Held> = []
        while (!draining && pool.busy < pool.concurrency && pool.waiting.length > 0) {
          const entry = pool.waiting.shift()
          if (entry === undefined) break
          if (entry.lost) continue
          pool.busy += 1
          entry.phase = "running"
          starting.push(entry)
        }
        return Effect.forEach(starting, (entry) => FiberSet.run(runners, runJob(pool, entry)), { discard: true })
      })

    /** Claims and queues as one uninterruptible step, so a claimed job is always either run or handed back. */
    const claimAndStart = (pool: Pool, limit: number) =>
      Effect.gen(function*() {
        const sentAt = yield* Clock.currentTimeMillis
        const claimed = yield* store.claim({
          queue: pool.queue.name,
          limit,
          owner: workerId,
          lease: pool.queue.visibilityTimeout
        })
        const now = yield* Clock.currentTimeMillis
        pool.meanClaimMillis = average(pool.meanClaimMillis, now - sentAt)
        const deadline = sentAt + Duration.toMillis(pool.queue.visibilityTimeout)
        for (const job of claimed) {
          counters.claimed += 1
          const entry: Held = {
            job,
            phase: "waiting",
            lost: false,
            stopped: false,
            fiber: undefined,
            deadline,
            claimedLocally: now,
            startedAt: now
          }
          pool.held.add(entry)
          pool.waiting.push(entry)
        }
        yield* fill(pool)
        return claimed.length
      }).pipe(Effect.uninterruptible)

    const claimLoop = (pool: Pool): Effect.Effect<void> =>
      Effect.gen(function*() {
        const waitForRing = Queue.take(pool.doorbell).pipe(Effect.timeout(pool.queue.pollInterval), Effect.ignore)
        while (true) {
          const limit = wanted(pool, yield* Clock.currentTimeMillis)
          if (limit <= 0) {
            yield* Queue.take(pool.doorbell)
            continue
          }
          const claimed = yield* claimAndStart(pool, limit).pipe(
            // A failed claim (even a defect) must never end the loop: log it and try again after a poll.
            Effect.catchAllCause((cause) =>
              log(Effect.logWarning(`Could not claim jobs from queue ${pool.queue.name}`, cause)).pipe(Effect.as(0))
            )
          )
          if (claimed < limit) yield* waitForRing
        }
      })

    /** Drops a lease: a waiting job never starts, a running handler is interrupted, a late outcome is fenced off. */
    const lose = (pool: Pool, entry: Held, why: string) =>
      Effect.gen(function*() {
        if (entry.lost || !pool.held.has(entry)) return
        switch (entry.phase) {
          case "waiting": {
            entry.lost = true
            pool.held.delete(entry)
            const at = pool.waiting.indexOf(entry)
            if (at >= 0) pool.waiting.splice(at, 1)
            counters.leasesLost += 1
            yield* log(Effect.logWarning(`Lost the lease of waiting job ${entry.job.lease.id} (${why}); dropping it`))
            return
          }
          case "running": {
            entry.lost = true
            if (entry.fiber !== undefined) yield* Fiber.interruptFork(entry.fiber)
            yield* log(Effect.logWarning(`Lost the lease of job ${entry.job.lease.id} (${why}); interrupting it`))
            return
          }
          // An outcome being written is fenced by the backend: a lost lease makes it a rejected late outcome.
          case "reporting":
          case "completing":
            return
        }
      })

    const heartbeatLoop = (pool: Pool): Effect.Effect<void> => {
      const leaseMillis = Duration.toMillis(pool.queue.visibilityTimeout)
      // Renewals that fail (the database is unreachable from here) must not let a handler run on past its lease
      // while another worker may already have reclaimed the job: once the lease surely lapsed, the handler stops.
      const expire = Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        for (const entry of [...pool.held]) {
          if (entry.deadline <= now) yield* lose(pool, entry, "it could not be renewed in time")
        }
      })
      const beat = Effect.gen(function*() {
        yield* expire
        const entries = [...pool.held].filter((entry) => !entry.lost && !entry.stopped)
        if (entries.length === 0) return
        const sentAt = yield* Clock.currentTimeMillis
        const held = new Set(
          yield* store.heartbeat(entries.map((entry) => entry.job.lease), pool.queue.visibilityTimeout)
        )
        for (const entry of entries) {
          if (held.has(entry.job.lease.id)) entry.deadline = sentAt + leaseMillis
          else yield* lose(pool, entry, "another worker holds it now")
        }
      }).pipe(Effect.catchAllCause((cause) => log(Effect.logWarning("Could not renew job leases", cause))))
      return Effect.repeat(beat, Schedule.spaced(pool.queue.heartbeatInterval)).pipe(Effect.asVoid)
    }

    /**
     * Writes completions in batches: whatever piled up while the previous
     * statement ran goes in the next one, so an idle pool completes a job at
     * once and a busy one completes many per round trip. A completion the
     * backend refuses (the lease was lost meanwhile: it lapsed and another
     * worker took the job) is logged and counted; the job runs again there,
     * as at-least-once delivery allows.
     */
    const completeLoop = (pool: Pool): Effect.Effect<void> =>
      Effect.forever(
        Effect.gen(function*() {
          const batch = Chunk.toReadonlyArray(yield* Queue.takeBetween(pool.completions, 1, MAX_COMPLETIONS))
          yield* settle(pool, batch).pipe(Effect.uninterruptible)
        })
      )

    const settle = (pool: Pool, batch: ReadonlyArray<Held>) =>
      Effect.gen(function*() {
        const accepted = yield* persist(pool, "complete jobs", store.complete(batch.map((entry) => entry.job.lease)))
        const ids = Option.map(accepted, (list) => new Set(list))
        for (const entry of batch) {
          const id = entry.job.lease.id
          pool.held.delete(entry)
          if (Option.isNone(ids)) continue
          if (ids.value.has(id)) {
            counters.succeeded += 1
            pool.succeeded()
          } else {
            counters.lateOutcomesRejected += 1
            yield* log(Effect.logWarning(`Completion of job ${id} rejected: its lease was lost`)).pipe(
              Effect.annotateLogs({ jobId: id, kind: entry.job.kind, queue: entry.job.queue })
            )
          }
        }
        pool.completing -= batch.length
        if (pool.completing === 0) pool.allCompleted.unsafeOpen()
      })

    const reclaimLoop = (pool: Pool): Effect.Effect<void> => {
      const sweep = Effect.gen(function*() {
        const reclaimed = yield* store.reclaim([pool.queue.name], 100)
        for (const job of reclaimed) {
          counters.reclaimed += 1
          if (job.outcome === "Dead") {
            counters.deadLettered += 1
            pool.deadLettered()
          } else {
            counters.retried += 1
            pool.retried()
          }
        }
        if (reclaimed.length > 0) {
          yield* log(Effect.logWarning(`Reclaimed ${reclaimed.length} job(s) whose lease lapsed`, reclaimed))
          yield* ring(pool)
        }
      }).pipe(Effect.catchAllCause((cause) => log(Effect.logWarning("Could not reclaim lapsed leases", cause))))
      return Effect.repeat(sweep, Schedule.spaced(pool.queue.reclaimInterval)).pipe(Effect.asVoid)
    }

    const wakeups = store.wakeups.pipe(
      Stream.runForEach((name) => {
        const pool = pools.get(name)
        return pool === undefined ? Effect.void : ring(pool)
      })
    )

    yield* FiberSet.run(services, wakeups)
    for (const pool of pools.values()) {
      yield* FiberSet.run(services, heartbeatLoop(pool))
      yield* FiberSet.run(services, completeLoop(pool))
      yield* FiberSet.run(services, reclaimLoop(pool))
      yield* FiberSet.run(claimLoops, claimLoop(pool))
    }

    const handlersRunning = () =>
      [...pools.values()].flatMap((pool) =>
        [...pool.held].filter((entry) => entry.phase === "running" || entry.phase === "reporting")
      )

    /** Shutdown hands the jobs of the local queues back at once (not burning their attempt), for others to run. */
    const releaseWaiting = (pool: Pool) =>
      Effect.gen(function*() {
        const entries = pool.waiting.splice(0).filter((entry) => !entry.lost)
        if (entries.length === 0) return
        const released = yield* persist(pool, "hand back waiting jobs", store.release(entries.map((e) => e.job.lease)))
        for (const entry of entries) pool.held.delete(entry)
        if (Option.isSome(released)) counters.released += released.value.length
      })

    const drain = Effect.gen(function*() {
      draining = true
      yield* FiberSet.clear(claimLoops)
      yield* Effect.forEach(pools.values(), releaseWaiting, { discard: true, concurrency: "unbounded" })
      // Shutdown usually runs as a finalizer (uninterruptible): the wait itself must stay interruptible for the
      // timeout to end it.
      const finished = yield* FiberSet.awaitEmpty(runners).pipe(
        Effect.interruptible,
        Effect.timeoutOption(resolved.gracePeriod)
      )
      if (Option.isNone(finished)) {
        const left = handlersRunning().filter((entry) => entry.phase === "running")
        yield* log(Effect.logWarning(`Grace period over: handing back ${left.length} running job(s)`))
        for (const entry of left) {
          entry.stopped = true
          if (entry.fiber !== undefined) yield* Fiber.interruptFork(entry.fiber)
        }
        yield* FiberSet.awaitEmpty(runners)
      }
      // Successes whose completion is still being written (it gives up once the lease would have lapsed anyway).
      yield* Effect.forEach(pools.values(), (pool) => pool.allCompleted.await, { discard: true })
      yield* FiberSet.clear(services)
    }).pipe(log)
    const shutdown = yield* Effect.cached(drain)
    yield* Effect.addFinalizer(() => shutdown)

    return {
      id: workerId,
      queues: [...pools.keys()],
      shutdown,
      inFlight: Effect.sync(() => handlersRunning().length),
      listening: store.listening,
      stats: Effect.sync((): Stats => ({ ...counters }))
    }
  })

/** @internal */
export const layer = <R>(
  options: Options<R>
): Layer.Layer<never, InvalidOptionsError | JobQueueApi.UnknownQueueError, JobQueue | Exclude<R, Scope.Scope>> =>
  Layer.scopedDiscard(make(options))
