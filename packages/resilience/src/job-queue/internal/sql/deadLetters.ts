/**
 * The dead-letter queue on PostgreSQL: `listDeadLetters` (filters and keyset pagination), `getDeadLetter`,
 * `replayDeadLetters` (a fresh job per pending entry, once, even under concurrent replays) and
 * `discardDeadLetters`.
 */
import type * as Statement from "@effect/sql/Statement"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as DeadLetter from "../../DeadLetter.js"
import type { JobId } from "../../JobQueue.js"
import { encodeCursor } from "../cursor.js"
import type { JobStoreError } from "../errors.js"
import { AttemptErrors, BIGINT, NullableTimestamp, run, type Store, Timestamp } from "./shared.js"

const EntryRow = Schema.Struct({
  job_id: Schema.String,
  queue: Schema.String,
  kind: Schema.String,
  payload: Schema.Unknown,
  priority: Schema.Number,
  dedup_key: Schema.NullOr(Schema.String),
  attempts: Schema.Number,
  max_attempts: Schema.Number,
  errors: AttemptErrors,
  reason: Schema.Literal("terminal", "exhausted"),
  enqueued_at: Timestamp,
  dead_lettered_at: Timestamp,
  status: Schema.Literal("pending", "replayed", "discarded"),
  replayed_job_id: Schema.NullOr(Schema.String),
  replayed_at: NullableTimestamp,
  discarded_at: NullableTimestamp,
  replay_of: Schema.NullOr(Schema.String)
})

const ReplayRow = Schema.Struct({
  ord: Schema.Number,
  id: Schema.String,
  queue: Schema.NullOr(Schema.String),
  status: Schema.NullOr(Schema.String),
  job: Schema.NullOr(Schema.String),
  created: Schema.Boolean
})

const DiscardRow = Schema.Struct({
  ord: Schema.Number,
  id: Schema.String,
  queue: Schema.NullOr(Schema.String),
  status: Schema.NullOr(Schema.String),
  discarded: Schema.Boolean
})

// Row decoders are built once: a Schema parser is memoised per schema, so a fresh Schema.Array per call would be

const EntryRows = Schema.Array(EntryRow)
const ReplayRows = Schema.Array(ReplayRow)
const DiscardRows = Schema.Array(DiscardRow)

const entryOf = (row: typeof EntryRow.Type): DeadLetter.Entry => ({
  id: row.job_id,
  queue: row.queue,
  kind: row.kind,
  payload: row.payload,
  priority: row.priority,
  dedupKey: Option.fromNullable(row.dedup_key),
  attempts: row.attempts,
  maxAttempts: row.max_attempts,
  errors: row.errors,
  reason: row.reason,
  enqueuedAt: row.enqueued_at,
  deadLetteredAt: row.dead_lettered_at,
  status: row.status,
  replayedAs: Option.fromNullable(row.replayed_job_id),
  replayedAt: Option.fromNullable(row.replayed_at),
  discardedAt: Option.fromNullable(row.discarded_at),
  replayOf: Option.fromNullable(row.replay_of)
})

const ENTRY_COLUMNS = `job_id::text AS job_id, queue, kind, payload, priority, dedup_key, attempts, max_attempts,
  errors, reason, enqueued_at, dead_lettered_at, status, replayed_job_id::text AS replayed_job_id, replayed_at,
  discarded_at, replay_of::text AS replay_of`

/** @internal */
export const listDeadLetters =
  ({ sql }: Store) => (query: DeadLetter.Query): Effect.Effect<DeadLetter.Page, JobStoreError> => {
    const newest = query.order === "newest"
    const clauses: Array<Statement.Fragment> = []
    if (query.status !== "all") clauses.push(sql`status = ${query.status}`)
    if (Option.isSome(query.queue)) clauses.push(sql`queue = ${query.queue.value}`)
    if (Option.isSome(query.kind)) clauses.push(sql`kind = ${query.kind.value}`)
    if (Option.isSome(query.errorTag)) clauses.push(sql`errors -> -1 ->> 'tag' = ${query.errorTag.value}`)
    if (Option.isSome(query.since)) {
      clauses.push(sql`dead_lettered_at >= ${query.since.value.toISOString()}::timestamptz`)
    }
    if (Option.isSome(query.until)) {
      clauses.push(sql`dead_lettered_at < ${query.until.value.toISOString()}::timestamptz`)
    }
    if (Option.isSome(query.after) && BIGINT.test(query.after.value.id)) {
      const at = query.after.value.deadLetteredAt.toISOString()
      const id = query.after.value.id
      clauses.push(
        newest
          ? sql`(dead_lettered_at, job_id) < (${at}::timestamptz, ${id}::bigint)`
          : sql`(dead_lettered_at, job_id) > (${at}::timestamptz, ${id}::bigint)`
      )
    }
    const where = clauses.length === 0 ? sql`TRUE` : sql.and(clauses)
    const order = newest ? sql.literal("dead_lettered_at DESC, job_id DESC") : sql.literal("dead_lettered_at, job_id")
    return run(
      "listDeadLetters",
      EntryRows,
      sql`SELECT ${sql.literal(ENTRY_COLUMNS)} FROM bulwark_dead_letters WHERE ${where} ORDER BY ${order}
      LIMIT ${query.limit + 1}`
    ).pipe(Effect.map((rows): DeadLetter.Page => {
      const entries = rows.slice(0, query.limit).map(entryOf)
      const last = entries.at(-1)
      return {
        entries,
        next: rows.length > query.limit && last !== undefined
          ? Option.some(encodeCursor({ deadLetteredAt: last.deadLetteredAt, id: last.id }))
          : Option.none()
      }
    }))
  }

/** @internal */
export const getDeadLetter =
  ({ sql }: Store) => (id: JobId): Effect.Effect<Option.Option<DeadLetter.Entry>, JobStoreError> => {
    if (!BIGINT.test(id)) return Effect.succeed(Option.none())
    return run(
      "getDeadLetter",
      EntryRows,
      sql`SELECT ${sql.literal(ENTRY_COLUMNS)} FROM bulwark_dead_letters WHERE job_id = ${id}::bigint`
    ).pipe(Effect.map((rows) => Option.map(Option.fromNullable(rows[0]), entryOf)))
  }

const distinctIds = (ids: ReadonlyArray<JobId>): ReadonlyArray<JobId> => [...new Set(ids)]

/** @internal */
export const replayDeadLetters = ({ channel, sql }: Store) =>
(
  requests: ReadonlyArray<DeadLetter.ReplayRequest>
): Effect.Effect<ReadonlyArray<DeadLetter.ReplayResult>, JobStoreError> =>
  Effect.suspend(() => {
    const seen = new Set<JobId>()
    const unique = requests.filter((r) => (seen.has(r.id) ? false : (seen.add(r.id), true)))
    const valid = unique.filter((r) => BIGINT.test(r.id))
    const byId = new Map<JobId, DeadLetter.ReplayResult>()
    const answer = () => unique.map((r): DeadLetter.ReplayResult => byId.get(r.id) ?? { _tag: "NotFound", id: r.id })
    if (valid.length === 0) return Effect.succeed(answer())
    const json = JSON.stringify(valid.map((r, ord) => ({
      ord,
      id: r.id,
      payload: Option.getOrNull(r.payload),
      has_payload: Option.isSome(r.payload)
    })))
    return run(
      "replayDeadLetters",
      ReplayRows,
      sql`
        WITH req AS MATERIALIZED (
          SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS r(ord int, id bigint, payload jsonb, has_payload boolean)
        ), target AS MATERIALIZED (
          -- Locks the entries (in id order, against deadlocks) and reads their latest committed version: a
          -- concurrent replay that committed first is seen as 'replayed' here, so each entry yields one job.
          SELECT d.job_id, d.status, d.replayed_job_id, d.queue
          FROM bulwark_dead_letters d WHERE d.job_id IN (SELECT id FROM req)
          ORDER BY d.job_id
          FOR UPDATE
        ), fresh AS MATERIALIZED (
          SELECT t.job_id, nextval(pg_get_serial_sequence('bulwark_jobs', 'id')) AS new_id
          FROM target t WHERE t.status = 'pending'
        ), inserted AS (
          INSERT INTO bulwark_jobs (id, queue, kind, payload, priority, max_attempts, replay_of)
          SELECT f.new_id, d.queue, d.kind, CASE WHEN r.has_payload THEN r.payload ELSE d.payload END, d.priority,
            d.max_attempts, d.job_id
          FROM fresh f JOIN bulwark_dead_letters d ON d.job_id = f.job_id JOIN req r ON r.id = f.job_id
          RETURNING id, queue
        ), marked AS (
          UPDATE bulwark_dead_letters d
          SET status = 'replayed', replayed_job_id = f.new_id, replayed_at = date_trunc('milliseconds', now())
          FROM fresh f WHERE d.job_id = f.job_id
          RETURNING d.job_id
        ), woken AS (
          SELECT pg_notify(${channel}, q.queue) FROM (SELECT DISTINCT queue FROM inserted) q
        )
        SELECT r.ord, r.id::text AS id, t.queue, t.status, coalesce(f.new_id, t.replayed_job_id)::text AS job,
          (f.new_id IS NOT NULL) AS created
        FROM req r LEFT JOIN target t ON t.job_id = r.id LEFT JOIN fresh f ON f.job_id = r.id
        WHERE (SELECT count(*) FROM inserted) >= 0 AND (SELECT count(*) FROM marked) >= 0
          AND (SELECT count(*) FROM woken) >= 0
        ORDER BY r.ord`
    ).pipe(Effect.map((rows) => {
      for (const row of rows) {
        if (row.status === null || row.queue === null) continue
        if (row.status === "discarded") byId.set(row.id, { _tag: "Discarded", id: row.id })
        else if (row.job !== null) {
          byId.set(row.id, { _tag: "Replayed", id: row.id, queue: row.queue, job: row.job, created: row.created })
        }
      }
      return answer()
    }))
  })

/** @internal */
export const discardDeadLetters = ({ sql }: Store) =>
(
  ids: ReadonlyArray<JobId>
): Effect.Effect<ReadonlyArray<DeadLetter.DiscardResult>, JobStoreError> =>
  Effect.suspend(() => {
    const unique = distinctIds(ids)
    const valid = unique.filter((id) => BIGINT.test(id))
    const byId = new Map<JobId, DeadLetter.DiscardResult>()
    const answer = () =>
      unique.map((id): DeadLetter.DiscardResult => byId.get(id) ?? { id, queue: Option.none(), outcome: "not_found" })
    if (valid.length === 0) return Effect.succeed(answer())
    const json = JSON.stringify(valid.map((id, ord) => ({ ord, id })))
    return run(
      "discardDeadLetters",
      DiscardRows,
      sql`
        WITH req AS MATERIALIZED (
          SELECT * FROM jsonb_to_recordset(${json}::jsonb) AS r(ord int, id bigint)
        ), target AS MATERIALIZED (
          SELECT d.job_id, d.status, d.queue
          FROM bulwark_dead_letters d WHERE d.job_id IN (SELECT id FROM req)
          ORDER BY d.job_id
          FOR UPDATE
        ), marked AS (
          UPDATE bulwark_dead_letters d
          SET status = 'discarded', discarded_at = date_trunc('milliseconds', now())
          FROM target t WHERE d.job_id = t.job_id AND t.status = 'pending'
          RETURNING d.job_id
        )
        SELECT r.ord, r.id::text AS id, t.queue, t.status, (m.job_id IS NOT NULL) AS discarded
        FROM req r LEFT JOIN target t ON t.job_id = r.id LEFT JOIN marked m ON m.job_id = r.id
        ORDER BY r.ord`
    ).pipe(Effect.map((rows) => {
      for (const row of rows) {
        if (row.status === null || row.queue === null) continue
        const queue = Option.some(row.queue)
        const outcome: DeadLetter.DiscardResult["outcome"] = row.discarded
          ? "discarded"
          : row.status === "discarded"
          ? "already_discarded"
          : "replayed"
        byId.set(row.id, { id: row.id, queue, outcome })
      }
      return answer()
    }))
  })
