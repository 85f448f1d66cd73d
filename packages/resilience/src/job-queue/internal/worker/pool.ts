/**
 * A worker's state: the leases it holds ({@link Held}), one pool of slots per queue ({@link Pool}) and what the
 * whole worker shares ({@link Worker}), with the small helpers every part uses (logging, persisting a report,
 * ringing a pool's doorbell).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type * as FiberSet from "effect/FiberSet"
import type * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Failure from "../../../Failure.js"
import * as Metric from "../../../internal/metric.js"
import * as Metrics from "../../../Metrics.js"
import type { QueueConfig } from "../../JobQueue.js"
import type { ClaimedJob, JobStore } from "../../JobStore.js"
import type { JobContext } from "../../JobWorker.js"
import type { JobStoreError } from "../errors.js"

/**
 * A lease this worker holds. `waiting`: claimed ahead of a free slot, in the pool's local queue; `running`: its
 * handler runs; `reporting`: its failure (or hand-back) is being written, the slot still taken; `completing`: it
 * succeeded and its slot is free again while the batched completion is written. Heartbeats renew all of them.
 *
 * @internal
 */
export interface Held {
  readonly job: ClaimedJob
  phase: "waiting" | "running" | "reporting" | "completing"
  /** The lease is gone (another worker holds the job, or it surely lapsed): never start it, drop its outcome. */
  lost: boolean
  /** Shutdown interrupted the handler: the lease is handed back. */
  stopped: boolean
  /** The job was cancelled (the backend said so): never start it, write no outcome (`lost` is set too). */
  cancelled?: boolean
  /** What its handler returned, encoded and sized, stored with its completion. */
  result?: Option.Option<unknown>
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

/**
 * One queue's pool of slots.
 *
 * @internal
 */
export interface Pool {
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

/** A worker's counters since it started (`JobWorker.Stats`). @internal */
export interface Counters {
  claimed: number
  succeeded: number
  retried: number
  deadLettered: number
  released: number
  reclaimed: number
  leasesLost: number
  lateOutcomesRejected: number
  cancelled: number
}

/**
 * What the whole worker shares.
 *
 * @internal
 */
export interface Worker {
  readonly id: string
  readonly store: JobStore
  /** Each kind's handler, its services provided. */
  readonly handlers: ReadonlyMap<
    string,
    (payload: unknown, job: JobContext) => Effect.Effect<Option.Option<unknown>, unknown>
  >
  readonly classifier: Failure.Classifier
  readonly counters: Counters
  readonly pools: ReadonlyMap<string, Pool>
  /** The fibers running handlers (and writing their failures). */
  readonly runners: FiberSet.FiberSet<void, never>
  /** Set when shutdown begins: no waiting job starts any more. */
  draining: boolean
}

/** Most completions written by one statement. @internal */
export const MAX_COMPLETIONS = 500

/** @internal */
export const makePool = (queue: QueueConfig, concurrency: number): Effect.Effect<Pool> =>
  Effect.gen(function*() {
    const labels = { queue: queue.name }
    return {
      queue,
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
    }
  })

/** @internal */
export const log = <A, E, R>(worker: Worker, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  effect.pipe(Effect.annotateLogs({ module: "JobWorker", workerId: worker.id }))

/** Reports outlive a flaky connection: retried until they land or the lease would have lapsed anyway. @internal */
export const persist = <A>(
  worker: Worker,
  pool: Pool,
  operation: string,
  effect: Effect.Effect<A, JobStoreError>
): Effect.Effect<Option.Option<A>> =>
  effect.pipe(
    Effect.retry(
      Schedule.exponential(Duration.millis(50)).pipe(
        Schedule.union(Schedule.spaced(Duration.seconds(1))),
        Schedule.upTo(pool.queue.visibilityTimeout)
      )
    ),
    Effect.tapError((error) => log(worker, Effect.logError(`Could not ${operation}; the lease will lapse`, error))),
    Effect.option
  )

/** New work may be due, or a slot was freed. @internal */
export const ring = (pool: Pool): Effect.Effect<boolean> => Queue.offer(pool.doorbell, undefined)

/** Weight of the latest sample in the moving averages of run and round-trip times. */
const SMOOTHING = 0.2

/** @internal */
export const average = (mean: number | undefined, sample: number): number =>
  mean === undefined ? sample : mean + SMOOTHING * (sample - mean)
