/**
 * The PostgreSQL schedule store (`SqlJobSchedule`): table `bulwark_job_schedules` (`sql/0009_job_schedules.sql`).
 * `lockSchedule` creates or locks a schedule's row, the step enqueues its ticks on the same transaction, and
 * `advanceSchedule` records the newest; `listSchedules` reads them all.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Advance, ScheduleInfo, ScheduleRecord, ScheduleState, ScheduleStore } from "../../JobSchedule.js"
import { JobStoreError } from "../errors.js"
import { NullableTimestamp, run, Timestamp } from "../sql/shared.js"
import { storeTag } from "./tag.js"

const StateRows = Schema.Array(Schema.Struct({ known_since: Timestamp, last_tick: NullableTimestamp }))

const AdvancedRows = Schema.Array(Schema.Struct({ name: Schema.String }))

const InfoRows = Schema.Array(Schema.Struct({
  name: Schema.String,
  cron: Schema.String,
  time_zone: Schema.String,
  known_since: Timestamp,
  last_tick: NullableTimestamp,
  next_run: NullableTimestamp,
  updated_at: Timestamp
}))

const isoOrNull = (date: Option.Option<Date>): string | null =>
  Option.match(date, { onNone: () => null, onSome: (at) => at.toISOString() })

/** A failure of the step, carried through `withTransaction` apart from the transaction's own `SqlError`s. */
class Inner<E> {
  constructor(readonly error: E) {}
}

/** @internal */
export const makeWith = (client: SqlClient.SqlClient): ScheduleStore => {
  // Column names are ours: an application's result-name transforms must not rename them.
  const sql = client.withoutTransforms()

  const advance = <A extends Advance, E, R>(
    record: ScheduleRecord,
    step: (state: ScheduleState) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | JobStoreError, R> => {
    const body = Effect.gen(function*() {
      // Creates the row the first time; otherwise locks it (the no-op update) until the commit, so concurrent
      // schedulers of this name take turns and each reads the last tick the previous one committed.
      const [row] = yield* run(
        "lockSchedule",
        StateRows,
        sql`
          INSERT INTO bulwark_job_schedules AS s (name, cron, time_zone, known_since, updated_at)
          VALUES (${record.name}, ${record.cron}, ${record.timeZone}, ${record.startedAt.toISOString()}::timestamptz,
            ${record.now.toISOString()}::timestamptz)
          ON CONFLICT (name) DO UPDATE SET updated_at = s.updated_at
          RETURNING known_since, last_tick`
      )
      if (row === undefined) return yield* Effect.dieMessage("lockSchedule returned no row")
      const advanced = yield* Effect.mapError(
        step({ knownSince: row.known_since, lastTick: Option.fromNullable(row.last_tick) }),
        (error) => new Inner(error)
      )
      yield* run(
        "advanceSchedule",
        AdvancedRows,
        sql`
          UPDATE bulwark_job_schedules
          SET cron = ${record.cron}, time_zone = ${record.timeZone},
            last_tick = ${isoOrNull(advanced.lastTick)}::timestamptz,
            next_run = ${isoOrNull(advanced.nextRun)}::timestamptz,
            updated_at = greatest(updated_at, ${record.now.toISOString()}::timestamptz)
          WHERE name = ${record.name}
          RETURNING name`
      )
      return advanced
    })
    // The step's enqueue runs on the transaction's connection (the SqlClient in context), so its jobs commit with
    // the row. The step's own failures are boxed, so that they cannot be mistaken for BEGIN's or COMMIT's.
    return Effect.catchAll(
      sql.withTransaction(body),
      (error: Inner<E> | JobStoreError | SqlError): Effect.Effect<never, E | JobStoreError> =>
        error instanceof Inner
          ? Effect.fail(error.error)
          : error._tag === "JobStoreError"
          ? Effect.fail(error)
          : Effect.fail(new JobStoreError({ operation: "scheduleTransaction", cause: error }))
    )
  }

  const list = run(
    "listSchedules",
    InfoRows,
    sql`
      SELECT name, cron, time_zone, known_since, last_tick, next_run, updated_at
      FROM bulwark_job_schedules ORDER BY name`
  ).pipe(Effect.map((rows) =>
    rows.map((row): ScheduleInfo => ({
      name: row.name,
      cron: row.cron,
      timeZone: row.time_zone,
      knownSince: row.known_since,
      lastTick: Option.fromNullable(row.last_tick),
      nextRun: Option.fromNullable(row.next_run),
      updatedAt: row.updated_at
    }))
  ))

  return { backend: "postgres", advance, list }
}

/** @internal */
export const make: Effect.Effect<ScheduleStore, never, SqlClient.SqlClient> = Effect.map(SqlClient.SqlClient, makeWith)

/** @internal */
export const layerStore: Layer.Layer<ScheduleStore, never, SqlClient.SqlClient> = Layer.effect(storeTag, make)

/** @internal */
export const list: Effect.Effect<ReadonlyArray<ScheduleInfo>, JobStoreError, SqlClient.SqlClient> = Effect.flatMap(
  make,
  (store) => store.list
)
