/**
 * Recurring jobs: cron schedules (effect's `Cron`, in a time zone) whose ticks
 * are enqueued as jobs, exactly once per tick however many processes run the
 * schedule, with a backfill window for ticks missed while none ran.
 *
 * ```text
 *   every process running JobSchedule.layer([...])          the schedule store (one row per name)
 *     start ─▶ advance up to now (backfill) ─┐
 *     sleep until the next tick (Clock) ◀────┤   advance: lock the row ─▶ ticks in (last tick, now]
 *     wake ─▶ advance up to now ─────────────┘            ─▶ enqueue their jobs ─▶ last tick := newest
 *                                                          (one transaction on PostgreSQL)
 * ```
 *
 * **Exactly once.** The store keeps, per schedule name, the last tick
 * enqueued. A scheduler that wakes locks that record (a row lock on
 * PostgreSQL, a lock in memory), enqueues the ticks after it up to its own
 * now, and moves it forward. On PostgreSQL the enqueue joins the same
 * transaction, so a tick's job and the record that says it was enqueued
 * commit together or not at all: a process killed in between leaves the tick
 * to the next scheduler, never a tick recorded without its job nor a job
 * enqueued twice. The others, waking for the same tick, find it done. Each
 * tick's job also carries the dedup key {@link tickKey} and `runAt` = the
 * tick.
 *
 * **Catch-up.** A running scheduler enqueues every tick after it started,
 * however late it wakes (a stalled event loop enqueues the ticks it slept
 * through). Ticks before it started — missed while no scheduler of that name
 * ran — are enqueued at its start when they are at most `backfill` old
 * (default zero: none, as graphile-worker's crontab), oldest first, and
 * never before the schedule was first seen by the store.
 *
 * **Time.** Ticks follow the expression in the schedule's `timeZone`
 * (default UTC, whatever each machine's zone), DST included: a wall-clock
 * time that does not exist (spring forward) fires at the first instant after
 * the gap, one that happens twice (fall back) fires once. Schedulers sleep
 * and read "now" on the Effect `Clock`, so `TestClock` drives them; across
 * machines, a clock ahead of the others enqueues a tick early, never twice.
 *
 * Backends: {@link layerMemoryStore} (one process, with `JobQueue.layerMemory`)
 * and `SqlJobSchedule` (PostgreSQL, with `SqlJobQueue`; table
 * `bulwark_job_schedules`, migration `0009_job_schedules.sql`).
 *
 * @example
 * ```ts
 * import { Layer, Schema } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 *
 * const NightlyReport = JobQueue.define({
 *   kind: "nightly-report",
 *   queue: "batch",
 *   payload: Schema.Struct({ day: Schema.String })
 * })
 *
 * const nightly = JobSchedule.cron({
 *   name: "nightly-report",
 *   cron: "0 2 * * *",
 *   timeZone: "Europe/Paris",
 *   backfill: "1 day",
 *   job: NightlyReport,
 *   payload: (tick) => ({ day: tick.at.toISOString().slice(0, 10) })
 * })
 *
 * const Queue = JobQueue.layerMemory({ queues: { batch: {} } })
 * const Scheduled = JobSchedule.layer([nightly]).pipe(
 *   Layer.provide(Layer.merge(Queue, JobSchedule.layerMemoryStore))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as Context from "effect/Context"
import type * as Cron from "effect/Cron"
import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Failure.js"
import * as memoryStore from "./internal/schedule/memoryStore.js"
import * as schedule from "./internal/schedule/schedule.js"
import * as scheduler from "./internal/schedule/scheduler.js"
import * as tag from "./internal/schedule/tag.js"
import type { JobDefinition, JobQueue, JobStoreError } from "./JobQueue.js"

// -----------------------------------------------------------------------------
// Schedules
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: typeof tag.TypeId = tag.TypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TypeId = typeof TypeId

/**
 * One tick of a schedule, handed to its `payload` function.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Tick {
  /** The schedule's name. */
  readonly schedule: string
  /** The tick's instant (also the job's `runAt`). */
  readonly at: Date
  /** Enqueued by a scheduler's start-up catch-up: the tick came before that scheduler started (see `backfill`). */
  readonly backfilled: boolean
}

/**
 * A recurring job: a name, a cron expression read in a time zone, and the
 * job each tick enqueues. Built by {@link cron}; checked when a scheduler
 * starts ({@link layer}).
 *
 * @since 0.1.0
 * @category Models
 */
export interface JobSchedule<D extends JobDefinition.Any = JobDefinition.Any> extends JobSchedule.Options<D> {
  readonly [TypeId]: TypeId
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace JobSchedule {
  /**
   * Any schedule.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Any = JobSchedule<JobDefinition.Any>

  /**
   * What {@link cron} takes.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options<D extends JobDefinition.Any> {
    /**
     * Identifies the schedule in the store, across processes and restarts: 1–128 characters of
     * `A-Z a-z 0-9 _ . : / -`. Processes running a schedule of the same name share its ticks.
     */
    readonly name: string
    /**
     * A cron expression (five fields, or six with seconds first: `"0 2 * * *"`, `"0,30 * * * * *"`), or a
     * `Cron.Cron` value.
     */
    readonly cron: string | Cron.Cron
    /**
     * The zone the expression is read in: an IANA name (`"Europe/Paris"`), an offset (`"+02:00"`) or a
     * `DateTime.TimeZone`. Default: the `Cron` value's own zone, else UTC.
     */
    readonly timeZone?: string | DateTime.TimeZone
    /** The job each tick enqueues. */
    readonly job: D
    /** The payload of a tick's job (a function that throws counts as a failed enqueue, retried). */
    readonly payload: (tick: Tick) => JobDefinition.Payload<D>
    /**
     * How far back a starting scheduler enqueues the ticks missed while no scheduler of this name ran. Default
     * zero: missed ticks are skipped.
     */
    readonly backfill?: Duration.DurationInput
    /** A configured queue other than the definition's. */
    readonly queue?: string
    /** −32,768 to 32,767, higher first. Default: the definition's. */
    readonly priority?: number
    /** Attempts before the dead-letter queue, 1–1,000. Default: the definition's, else the queue's. */
    readonly maxAttempts?: number
  }
}

/**
 * Declares a recurring job. Pure: the name, expression, time zone, backfill
 * window and queue are checked when a scheduler starts ({@link layer} fails
 * with `InvalidOptionsError` naming the option, e.g. `schedules[0].cron`).
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 *
 * const Cleanup = JobQueue.define({ kind: "cleanup", queue: "default", payload: Schema.Struct({ at: Schema.Date }) })
 *
 * // Every 15 minutes, on the quarter hour (UTC); the tick's instant in the payload.
 * const cleanup = JobSchedule.cron({ name: "cleanup", cron: "0,15,30,45 * * * *", job: Cleanup, payload: (tick) => tick })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const cron: <D extends JobDefinition.Any>(options: JobSchedule.Options<D>) => JobSchedule<D> = schedule.cron

/**
 * @since 0.1.0
 * @category Guards
 */
export const isJobSchedule: (u: unknown) => u is JobSchedule.Any = schedule.isJobSchedule

/**
 * The dedup key a tick's job carries: `schedule:<name>:<ISO instant>`.
 *
 * @example
 * ```ts
 * import { JobSchedule } from "@bulwark/resilience"
 *
 * JobSchedule.tickKey("nightly-report", new Date("2026-03-01T01:00:00Z"))
 * // "schedule:nightly-report:2026-03-01T01:00:00.000Z"
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const tickKey: (name: string, at: Date) => string = schedule.tickKey

// -----------------------------------------------------------------------------
// The store
// -----------------------------------------------------------------------------

/**
 * What a scheduler tells the store about itself when it advances a schedule.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface ScheduleRecord {
  readonly name: string
  /** The expression as given (a `Cron` value: its fields, six of them). Recorded for operators. */
  readonly cron: string
  readonly timeZone: string
  /** When the scheduler started: the schedule is "known since" then if the store has not seen it before. */
  readonly startedAt: Date
  /** The scheduler's now (recorded as the last time a scheduler advanced the schedule). */
  readonly now: Date
}

/**
 * A schedule's durable state, as a step reads it.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface ScheduleState {
  /** When a scheduler of this name first advanced it: no earlier tick is ever enqueued. */
  readonly knownSince: Date
  /** The newest tick enqueued. */
  readonly lastTick: Option.Option<Date>
}

/**
 * What a step writes back: the newest tick enqueued and the next tick to come.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface Advance {
  readonly lastTick: Option.Option<Date>
  readonly nextRun: Option.Option<Date>
}

/**
 * A schedule as the store knows it ({@link list}, `bulwark schedules list`).
 *
 * @since 0.1.0
 * @category Models
 */
export interface ScheduleInfo {
  readonly name: string
  readonly cron: string
  readonly timeZone: string
  readonly knownSince: Date
  readonly lastTick: Option.Option<Date>
  /** The next tick, as of the last time a scheduler advanced the schedule. */
  readonly nextRun: Option.Option<Date>
  /** The last time a scheduler advanced it (on that scheduler's clock): an old one means none is running. */
  readonly updatedAt: Date
}

/**
 * Where schedules keep their last tick: the contract of a backend
 * ({@link layerMemoryStore}, `SqlJobSchedule.layerStore`).
 *
 * `advance` runs `step` on a schedule's state exclusively among every
 * scheduler sharing the store (PostgreSQL: a row lock; memory: a lock per
 * name) and writes back what it returns, all-or-nothing with the jobs `step`
 * enqueued: on PostgreSQL one transaction, which the enqueue joins (so the
 * job queue must run on the same database, through the same `SqlClient`); in
 * memory the step runs uninterrupted and a failed step writes nothing.
 *
 * @since 0.1.0
 * @category Backend
 */
export interface ScheduleStore {
  /** `"memory"` or `"postgres"`: must match the job queue's backend. */
  readonly backend: string
  readonly advance: <A extends Advance, E, R>(
    record: ScheduleRecord,
    step: (state: ScheduleState) => Effect.Effect<A, E, R>
  ) => Effect.Effect<A, E | JobStoreError, R>
  /** Every schedule the store knows, by name. */
  readonly list: Effect.Effect<ReadonlyArray<ScheduleInfo>, JobStoreError>
}

/**
 * The {@link ScheduleStore} service tag.
 *
 * @since 0.1.0
 * @category Tags
 */
export const ScheduleStore: Context.Tag<ScheduleStore, ScheduleStore> = tag.storeTag

/**
 * An in-memory schedule store, for one process (with `JobQueue.layerMemory`):
 * schedulers sharing it enqueue each tick once.
 *
 * @since 0.1.0
 * @category Backend
 */
export const makeMemoryStore: Effect.Effect<ScheduleStore> = memoryStore.make

/**
 * {@link makeMemoryStore} as a layer. Provide it once, to every scheduler of
 * the process.
 *
 * @example
 * ```ts
 * import { Layer } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 *
 * const Backend = Layer.merge(JobQueue.layerMemory({ queues: { default: {} } }), JobSchedule.layerMemoryStore)
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerMemoryStore: Layer.Layer<ScheduleStore> = memoryStore.layer

// -----------------------------------------------------------------------------
// Running schedules
// -----------------------------------------------------------------------------

/**
 * Starts one scheduler fiber per schedule, alive as long as the scope: each
 * first catches up (see `backfill`), then sleeps until its next tick and
 * enqueues it. Returns once every schedule made its first attempt.
 *
 * Fails with `InvalidOptionsError` for a bad schedule (its option named:
 * `schedules[1].timeZone`), a queue the `JobQueue` is not configured with, two
 * schedules of one name, or a store on another backend than the queue. A
 * failed enqueue (store unavailable, admission rejected, a `payload` that
 * throws) is logged as a warning and tried again after 1 s, doubling up to 1
 * minute; its ticks are not lost.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 *
 * const Ping = JobQueue.define({ kind: "ping", queue: "default", payload: Schema.Struct({}) })
 *
 * const program = Effect.scoped(
 *   JobSchedule.start([JobSchedule.cron({ name: "ping", cron: "* * * * *", job: Ping, payload: () => ({}) })]).pipe(
 *     Effect.zipRight(Effect.never)
 *   )
 * ).pipe(
 *   Effect.provide(JobQueue.layerMemory({ queues: { default: {} } })),
 *   Effect.provide(JobSchedule.layerMemoryStore)
 * )
 * ```
 *
 * @since 0.1.0
 * @category Running
 */
export const start: (
  schedules: ReadonlyArray<JobSchedule.Any>
) => Effect.Effect<void, InvalidOptionsError, JobQueue | ScheduleStore | Scope.Scope> = scheduler.start

/**
 * {@link start} as a layer: the schedulers run while the layer is alive, in
 * every process that builds it.
 *
 * @example
 * ```ts
 * import { Layer, Schema } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 *
 * const Digest = JobQueue.define({ kind: "digest", queue: "default", payload: Schema.Struct({ at: Schema.Date }) })
 *
 * const Schedules = JobSchedule.layer([
 *   JobSchedule.cron({ name: "digest", cron: "0 8 * * 1-5", timeZone: "America/New_York", job: Digest, payload: (t) => t })
 * ]).pipe(Layer.provide(Layer.merge(JobQueue.layerMemory({ queues: { default: {} } }), JobSchedule.layerMemoryStore)))
 * ```
 *
 * @since 0.1.0
 * @category Running
 */
export const layer: (
  schedules: ReadonlyArray<JobSchedule.Any>
) => Layer.Layer<never, InvalidOptionsError, JobQueue | ScheduleStore> = scheduler.layer

/**
 * Every schedule the store knows: expression, zone, last tick, next run.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobSchedule } from "@bulwark/resilience"
 *
 * const program = JobSchedule.list.pipe(
 *   Effect.tap((schedules) => Effect.log(schedules.map((s) => s.name))),
 *   Effect.provide(JobSchedule.layerMemoryStore)
 * )
 * ```
 *
 * @since 0.1.0
 * @category Inspection
 */
export const list: Effect.Effect<ReadonlyArray<ScheduleInfo>, JobStoreError, ScheduleStore> = scheduler.list
