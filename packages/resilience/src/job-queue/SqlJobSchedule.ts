/**
 * Recurring jobs on PostgreSQL: the `JobSchedule` store in table
 * `bulwark_job_schedules` (`packages/resilience/sql/0009_job_schedules.sql`;
 * run `Migrations.run` first), for schedulers in any number of processes
 * over one database, with `SqlJobQueue`.
 *
 * A scheduler advances a schedule in one transaction: `INSERT … ON CONFLICT
 * DO UPDATE` creates or locks the schedule's row, the ticks after its
 * `last_tick` (up to the scheduler's now) are enqueued through the
 * `JobQueue` on the same connection, and `last_tick` moves to the newest. So
 * concurrent schedulers take turns on the row, and a tick's job and the
 * `last_tick` that covers it commit together: each tick is enqueued exactly
 * once, also when a process dies mid-way (its transaction rolls back and the
 * next scheduler enqueues the tick). The store and `SqlJobQueue` must use
 * one database: provide both with the same `PgClient`.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted, Schema } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 * import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
 * import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
 *
 * const Invoices = JobQueue.define({
 *   kind: "monthly-invoices",
 *   queue: "batch",
 *   payload: Schema.Struct({ month: Schema.String })
 * })
 *
 * const Database = PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") })
 * const Queue = SqlJobQueue.layer({ queues: { batch: {} } }).pipe(Layer.provide(Database))
 *
 * // In every process that should keep the schedule running: each tick is enqueued once.
 * const Schedules = SqlJobSchedule.layer([
 *   JobSchedule.cron({
 *     name: "monthly-invoices",
 *     cron: "0 6 1 * *",
 *     timeZone: "Europe/Berlin",
 *     backfill: "3 days",
 *     job: Invoices,
 *     payload: (tick) => ({ month: tick.at.toISOString().slice(0, 7) })
 *   })
 * ]).pipe(Layer.provide(Layer.merge(Queue, Database)))
 * ```
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../Failure.js"
import * as scheduler from "./internal/schedule/scheduler.js"
import * as internal from "./internal/schedule/sqlStore.js"
import type { JobQueue, JobStoreError } from "./JobQueue.js"
import type { JobSchedule, ScheduleInfo, ScheduleStore } from "./JobSchedule.js"

/**
 * The schedule store on the `SqlClient` in context.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
 *
 * // A tool reading the schedules through the store itself.
 * const program = Effect.flatMap(SqlJobSchedule.makeStore, (store) => store.list).pipe(
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeStore: Effect.Effect<ScheduleStore, never, SqlClient.SqlClient> = internal.make

/**
 * The {@link ScheduleStore} service on PostgreSQL.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted } from "effect"
 * import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
 *
 * const Store = SqlJobSchedule.layerStore.pipe(
 *   Layer.provide(PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerStore: Layer.Layer<ScheduleStore, never, SqlClient.SqlClient> = internal.layerStore

/**
 * `JobSchedule.layer` on the PostgreSQL store: the schedulers run while the
 * layer is alive, with the `JobQueue` (`SqlJobQueue.layer`) and `SqlClient`
 * of the same database.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Layer, Redacted, Schema } from "effect"
 * import { JobQueue, JobSchedule } from "@bulwark/resilience"
 * import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
 * import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
 *
 * const Heartbeat = JobQueue.define({ kind: "heartbeat", queue: "default", payload: Schema.Struct({ at: Schema.Date }) })
 *
 * const Database = PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") })
 * const Queue = SqlJobQueue.layer({ queues: { default: {} } }).pipe(Layer.provide(Database))
 * const Schedules = SqlJobSchedule.layer([
 *   JobSchedule.cron({ name: "heartbeat", cron: "* * * * *", job: Heartbeat, payload: (tick) => ({ at: tick.at }) })
 * ]).pipe(Layer.provide(Layer.merge(Queue, Database)))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer = (
  schedules: ReadonlyArray<JobSchedule.Any>
): Layer.Layer<never, InvalidOptionsError, JobQueue | SqlClient.SqlClient> =>
  scheduler.layer(schedules).pipe(Layer.provide(internal.layerStore))

/**
 * Every schedule in `bulwark_job_schedules`: expression, zone, last tick,
 * next run, last advance (what `bulwark schedules list` prints).
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Redacted } from "effect"
 * import * as SqlJobSchedule from "@bulwark/resilience/SqlJobSchedule"
 *
 * const program = SqlJobSchedule.list.pipe(
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category Inspection
 */
export const list: Effect.Effect<ReadonlyArray<ScheduleInfo>, JobStoreError, SqlClient.SqlClient> = internal.list
