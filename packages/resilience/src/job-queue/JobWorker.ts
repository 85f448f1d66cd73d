/**
 * Pull workers for the job queue.
 *
 * A worker serves one or more queues (tiers), each with a dedicated pool of
 * `concurrency` slots, so a flood of batch jobs can never take a slot of a
 * latency-sensitive tier. Each pool:
 *
 * - **claims in batches**: one statement leases as many due jobs as it has
 *   free slots (highest priority, then oldest due first; `FOR UPDATE SKIP
 *   LOCKED` on Postgres), so workers never block each other;
 * - **claims ahead** when jobs are short: it also leases the jobs its slots
 *   will finish during one claim round trip (from the recent handler time and
 *   round trip, up to the queue's `prefetch`), holds them in a local queue
 *   and starts each the moment a slot frees, so slots do not idle while the
 *   next claim runs. Slow jobs, or a handler that hangs, turn this off: they
 *   are claimed one free slot at a time and never hoarded;
 * - **completes in the background**: a slot is free again as soon as its
 *   handler succeeded; one statement writes the completions that piled up,
 *   each fenced by its lease. A completion refused because the lease was lost
 *   meanwhile is logged and counted (`lateOutcomesRejected`): the job runs
 *   again elsewhere, as at-least-once delivery allows;
 * - **wakes up** on a notification when a job is enqueued (LISTEN/NOTIFY on
 *   Postgres, reconnected when the listener drops) and otherwise polls every
 *   `pollInterval`;
 * - **keeps its leases**: a heartbeat fiber renews the lease of every job it
 *   holds (running, waiting in its local queue, or being completed) each
 *   `heartbeatInterval`; a job whose lease was lost (it lapsed and
 *   another worker reclaimed it) is interrupted, and its late outcome is
 *   rejected by the backend (every write is fenced by lease owner, attempt
 *   and claim epoch);
 * - **reclaims** jobs whose lease lapsed (a crashed worker) every
 *   `reclaimInterval`: back to `retrying` with the attempt counted, or to the
 *   dead-letter queue when none are left;
 * - **limits run time** when the queue sets `maxRunTime` (default: no limit):
 *   a handler still running after it (on the Effect `Clock`) is interrupted
 *   and its attempt fails with the transient {@link JobTimeoutError}, so a
 *   hanging handler no longer holds its slot (and, through the heartbeat, its
 *   lease) forever;
 * - **retries** a transient failure after `min(base·2^(n-1)·(1±jitter), cap)`
 *   and sends a terminal one (`Failure.Terminal`, a classifier verdict, a
 *   payload that no longer decodes) straight to the dead-letter queue;
 * - **stops cancelled jobs**: a job cancelled with `JobQueue.cancel` while
 *   its handler runs is interrupted within about a second (a check every
 *   second while the pool holds jobs, or the heartbeat when it is more
 *   frequent), its finalizers run and nothing more is written (the backend
 *   already holds the `cancelled` outcome, and fences off a late one); a
 *   cancelled job waiting in the local queue never starts;
 * - **reports progress and results**: a handler calls {@link progress}
 *   (fenced by its lease, shown by `JobQueue.status`), and what it returns is
 *   stored with the succeeded job when its definition has a `result` Schema.
 *
 * Shutdown (closing the worker's scope, or {@link JobWorker.shutdown}) is
 * graceful: claiming stops, the jobs waiting in the local queues are handed
 * back at once, running jobs get `gracePeriod` to finish, the ones still
 * running are interrupted and their leases handed back (the job is `queued`
 * again and the attempt is not burned), and it ends once the completions of
 * the finished ones are written.
 *
 * Metrics: `bulwark_jobs_total{queue,outcome}` (succeeded, retried,
 * dead_lettered; `cancelled` is counted by `JobQueue.cancel`),
 * `bulwark_job_duration_seconds{queue}`, `bulwark_job_wait_seconds{queue}`
 * (from due to start); and, unless the
 * `reportMetrics` option is `false`, the queue gauges of
 * `JobQueue.reportMetrics` (depth, oldest ready age, paused, dead letters),
 * read by one process per backend.
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Failure.js"
import {
  InvalidResultError,
  JobTimeoutError,
  NoHandlerError,
  PayloadDecodeError,
  ResultTooLargeError
} from "./internal/errors.js"
import * as context from "./internal/worker/context.js"
import * as handlers from "./internal/worker/handler.js"
import * as internal from "./internal/worker/worker.js"
import type { JobDefinition, JobId, JobQueue, UnknownQueueError } from "./JobQueue.js"

/**
 * @since 0.1.0
 * @category Symbols
 */
export const HandlerTypeId: typeof handlers.HandlerTypeId = handlers.HandlerTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type HandlerTypeId = typeof HandlerTypeId

// Declared in `internal/errors.ts`, a leaf the internals import.
export { InvalidResultError, JobTimeoutError, NoHandlerError, PayloadDecodeError, ResultTooLargeError }

/**
 * What a handler knows about the job it runs, and how it reports progress.
 * It is also the {@link JobContext} service inside the handler.
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobContext {
  readonly id: JobId
  readonly queue: string
  readonly kind: string
  /** 1 for the first attempt. */
  readonly attempt: number
  readonly maxAttempts: number
  readonly enqueuedAt: Date
  readonly dedupKey: Option.Option<string>
  /** The worker running it (the lease owner). */
  readonly workerId: string
  /** Reports progress: see {@link progress}. */
  readonly progress: (value: number, message?: string) => Effect.Effect<void>
}

/**
 * The job a handler runs, as a service: every handler has it in context, so
 * code deep inside it can read the job and report progress without passing
 * the `job` argument down.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobWorker } from "@bulwark/resilience"
 *
 * // Called from inside a handler: no `job` argument to pass around.
 * const audit = (what: string) =>
 *   Effect.flatMap(JobWorker.JobContext, (job) => Effect.log(`${what} (job ${job.id}, attempt ${job.attempt})`))
 * ```
 *
 * @since 0.1.0
 * @category Context
 */
export const JobContext: Context.Tag<JobContext, JobContext> = context.tag

/**
 * Reports how far the running job is: `value` is a percentage (clamped to
 * 0–100; for done out of total, `100 * done / total`), `message` a short note
 * (cut to 256 characters). It is stored at once, fenced by the job's lease
 * (a report after the lease was lost or the job cancelled changes nothing),
 * replaces the previous one, and is kept once the job finished;
 * `JobQueue.status` and `bulwark jobs show` print it. Each call is one write
 * to the backend: report per step or batch, not per item. It never fails the
 * job: a report the backend could not take is logged and dropped. `NaN` is a
 * defect.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobWorker } from "@bulwark/resilience"
 *
 * const Import = JobQueue.define({ kind: "import", queue: "batch", payload: Schema.Struct({ files: Schema.Number }) })
 *
 * const importFiles = JobWorker.handler(Import, ({ files }) =>
 *   Effect.forEach(Array.from({ length: files }, (_, n) => n), (n) =>
 *     Effect.log(`importing file ${n}`).pipe(
 *       Effect.zipRight(JobWorker.progress((100 * (n + 1)) / files, `${n + 1} of ${files} files`))
 *     ), { discard: true }))
 * ```
 *
 * @since 0.1.0
 * @category Context
 */
export const progress: (value: number, message?: string) => Effect.Effect<void, never, JobContext> = context.progress

/**
 * Runs the jobs of one kind. Build it with {@link handler}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Handler<out R = never> {
  readonly [HandlerTypeId]: HandlerTypeId
  readonly definition: JobDefinition.Any
  /**
   * Decodes the stored payload, runs the handler with the job in context and encodes what it returned with the
   * definition's `result` Schema (`None` without one). Decoding and encoding failures are terminal.
   */
  readonly run: (payload: unknown, job: JobContext) => Effect.Effect<Option.Option<unknown>, unknown, R>
}

/**
 * A handler for one job definition. Fail with a transient error (or any
 * unclassified one) to retry with backoff, with a terminal one
 * (`Failure.TerminalError`, or anything the `Failure` classifier calls
 * terminal) to dead-letter at once. Interruption is reserved for shutdown,
 * lost leases, cancellation (`JobQueue.cancel`) and the queue's `maxRunTime`
 * (which fails the attempt with {@link JobTimeoutError}).
 *
 * When the definition has a `result` Schema, the handler returns its decoded
 * side and a success stores it encoded (up to the queue's `maxResultBytes`:
 * a larger one fails the attempt with the terminal
 * {@link ResultTooLargeError}, one that does not encode with
 * {@link InvalidResultError}); otherwise what it returns is ignored. The job
 * is in context as the {@link JobContext} service.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobWorker } from "@bulwark/resilience"
 *
 * const SendReceipt = JobQueue.define({
 *   kind: "send-receipt",
 *   queue: "default",
 *   payload: Schema.Struct({ orderId: Schema.String })
 * })
 *
 * const sendReceipt = JobWorker.handler(SendReceipt, (payload, job) =>
 *   Effect.log(`receipt for ${payload.orderId}, attempt ${job.attempt}`))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const handler: <D extends JobDefinition.Any, A extends JobDefinition.Result<D>, E, R>(
  definition: D,
  run: (payload: JobDefinition.Payload<D>, job: JobContext) => Effect.Effect<A, E, R>
) => Handler<Exclude<R, JobContext>> = handlers.handler

/**
 * Worker options.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options<R> {
  /** One handler per kind (a kind listed twice is an `InvalidOptionsError`). */
  readonly handlers: ReadonlyArray<Handler<R>>
  /**
   * The queues to serve; each gets its own pool. Default: the queues of the handlers' definitions. A job whose kind
   * has no handler here fails transiently (`UnknownJobKind`), so a mixed deployment retries it elsewhere or, in the
   * end, dead-letters it.
   */
  readonly queues?: ReadonlyArray<string>
  /** The lease owner recorded on claimed jobs. Default `<hostname>:<pid>:<random>`; 1–200 characters. */
  readonly workerId?: string
  /** Per-queue concurrency overrides for this worker (1–10,000). Default: each queue's `concurrency`. */
  readonly concurrency?: Readonly<Record<string, number>>
  /** How long shutdown waits for running jobs before interrupting them and handing back their leases. Default 30 s. */
  readonly gracePeriod?: Duration.DurationInput
  /**
   * The queue gauges (depth, oldest ready age, paused, dead letters by status; see `JobQueue.reportMetrics`),
   * reported by the worker itself, so no other process needs to run `JobQueue.reportMetrics`. Still one reader per
   * backend: every reporter of a store in a process shares one, and across processes only the holder of the
   * backend's reporter lock reads. Default `{ interval: "15 seconds" }`; `false` turns it off.
   */
  readonly reportMetrics?: false | { readonly interval?: Duration.DurationInput }
}

/**
 * Counters of one worker since it started (in-process; the durable truth is
 * the backend and the `bulwark_jobs_total` metric).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Stats {
  readonly claimed: number
  readonly succeeded: number
  readonly retried: number
  readonly deadLettered: number
  /** Leases handed back at shutdown (jobs waiting in the local queue, and running jobs past the grace period). */
  readonly released: number
  /** Lapsed leases (of any worker) this worker put back or dead-lettered. */
  readonly reclaimed: number
  /** Jobs whose lease this worker lost while running them (interrupted; their outcome discarded). */
  readonly leasesLost: number
  /** Completions or failures the backend refused because the lease no longer matched. */
  readonly lateOutcomesRejected: number
  /** Jobs cancelled while this worker held them: running handlers interrupted, waiting jobs dropped. */
  readonly cancelled: number
}

/**
 * A running worker.
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobWorker {
  readonly id: string
  readonly queues: ReadonlyArray<string>
  /** Graceful shutdown (idempotent); closing the worker's scope does the same. */
  readonly shutdown: Effect.Effect<void>
  /** Handlers running now (and failures being recorded); not the jobs waiting locally or being completed. */
  readonly inFlight: Effect.Effect<number>
  /** Whether the backend's wake-up listener is connected. */
  readonly listening: Effect.Effect<boolean>
  readonly stats: Effect.Effect<Stats>
}

/**
 * Starts a worker in the current scope on the {@link JobQueue} in context.
 * Bad options fail with `InvalidOptionsError`, a queue the backend does not
 * know with `UnknownQueueError`.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobWorker } from "@bulwark/resilience"
 *
 * const Resize = JobQueue.define({ kind: "resize", queue: "batch", payload: Schema.Struct({ key: Schema.String }) })
 *
 * const program = Effect.scoped(Effect.gen(function*() {
 *   yield* JobWorker.make({
 *     handlers: [JobWorker.handler(Resize, ({ key }) => Effect.log(`resizing ${key}`))],
 *     gracePeriod: "10 seconds"
 *   })
 *   yield* JobQueue.enqueue(Resize, { key: "cat.png" })
 *   yield* Effect.sleep("1 second")
 * })).pipe(Effect.provide(JobQueue.layerMemory({ queues: { batch: { concurrency: 2 } } })))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <R>(
  options: Options<R>
) => Effect.Effect<JobWorker, InvalidOptionsError | UnknownQueueError, JobQueue | Scope.Scope | R> = internal.make

/**
 * {@link make} as a layer: the worker runs while the layer is alive.
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: <R>(
  options: Options<R>
) => Layer.Layer<never, InvalidOptionsError | UnknownQueueError, JobQueue | Exclude<R, Scope.Scope>> = internal.layer
