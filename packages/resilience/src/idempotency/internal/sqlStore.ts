import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Batcher from "../../internal/batcher.js"
import * as Options from "../../internal/options.js"
import * as Migrations from "../../sql/internal/migrations.js"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import type * as SqlIdempotencyStore from "../SqlIdempotencyStore.js"
import { IdempotencyStoreError } from "./errors.js"
import * as Record from "./record.js"
import * as Tags from "./tags.js"

const backend = "postgres"

/** @internal */
export const defaults = {
  tableName: Migrations.defaultNames.idempotencyTable,
  maxBatch: 64,
  maxInFlight: 2
} as const

/**
 * A claim answered with a record the claim rule would have taken (`Stale`: the
 * same fingerprint, not completed, no live lease) is tried again. The claim
 * function only answers with records it refused, so this is a safety net, not
 * a path taken in practice.
 */
const MAX_STALE_RETRIES = 10

/** PostgreSQL's `undefined_function`: what calling a batch function that a table does not have fails with. */
const UNDEFINED_FUNCTION = "42883"

/**
 * PostgreSQL's `serialization_failure` and `deadlock_detected`: the server rolled the transaction back, and running
 * it again is expected to succeed. A claim meets them only above READ COMMITTED (a caller's REPEATABLE READ or
 * SERIALIZABLE transaction, or `default_transaction_isolation`): its snapshot did not show a key another transaction
 * claimed or changed meanwhile.
 */
const RETRY_TRANSACTION = new Set(["40001", "40P01"])

/**
 * How many times a statement that is its own transaction (no transaction around it) is sent again after one of
 * {@link RETRY_TRANSACTION}: at once, since the transaction it conflicted with has finished (its next snapshot sees
 * it). The statements are single-row writes or reads, each answer decided again from scratch, so repeating one is
 * safe.
 */
const STATEMENT_RETRIES = 5

const sqlStateOf = (error: SqlError): string | undefined =>
  hasProperty(error.cause, "code") && typeof error.cause.code === "string" ? error.cause.code : undefined

const mustRetryTransaction = (error: SqlError): boolean => {
  const code = sqlStateOf(error)
  return code !== undefined && RETRY_TRANSACTION.has(code)
}

/** A statement sent on its own, again after a serialization failure or deadlock (see {@link STATEMENT_RETRIES}). */
const retryAlone = <A>(statement: Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> =>
  Effect.retry(statement, { times: STATEMENT_RETRIES, while: mustRetryTransaction })

/** The payload characters one batch of completions carries at most (one larger payload goes alone). */
const MAX_BATCH_PAYLOAD_CHARS = 1_048_576

const State = Schema.Literal("in_progress", "completed", "released")
const Outcome = Schema.Literal("success", "failure", "too_large", "unencodable")

const existingFields = {
  state: State,
  fingerprint: Schema.String,
  attempt: Schema.Number,
  recovery: Schema.Boolean,
  lease_remaining_ms: Schema.NullOr(Schema.Number),
  expires_in_ms: Schema.Number,
  outcome: Schema.NullOr(Outcome),
  payload: Schema.NullOr(Schema.String)
}

const ExistingRow = Schema.Struct({ ...existingFields, owner_token: Schema.NullOr(Schema.String) })

const ClaimRow = Schema.Union(
  Schema.Struct({ claimed: Schema.Literal(true), attempt: Schema.Number, recovery: Schema.Boolean }),
  Schema.Struct({ claimed: Schema.Literal(false), ...existingFields })
)

const WrittenRow = Schema.Struct({ written: Schema.Boolean })
/** A batch function's rows also carry the 1-based position of their item in the batch. */
const Ordinal = Schema.Struct({ ordinal: Schema.Number })
const CountRow = Schema.Struct({ count: Schema.Number })

// Built once: a decoder made per call (e.g. around `Schema.Array(row)`) would be rebuilt on every request.
const decodeClaimRow = Schema.decodeUnknownEither(ClaimRow)
const decodeExistingRow = Schema.decodeUnknownEither(ExistingRow)
const decodeWrittenRow = Schema.decodeUnknownEither(WrittenRow)
const decodeCountRow = Schema.decodeUnknownEither(CountRow)
const decodeOrdinal = Schema.decodeUnknownEither(Ordinal)

const rowOf = (row: Omit<typeof ExistingRow.Type, "owner_token">): Record.Row => ({
  state: row.state,
  fingerprint: row.fingerprint,
  attempt: row.attempt,
  recovery: row.recovery,
  leaseRemainingMs: row.lease_remaining_ms,
  expiresInMs: row.expires_in_ms,
  outcome: row.outcome,
  payload: row.payload
})

interface Valid {
  readonly tableName: string
  /** `undefined`: every call is its own round trip. */
  readonly batching: { readonly maxBatch: number; readonly maxInFlight: number } | undefined
}

const field = (option: string): Options.Field => ({ component: "SqlIdempotencyStore", option })

const validate = (options: SqlIdempotencyStore.Options): Options.Check<Valid> => {
  const tableName = options.tableName ?? defaults.tableName
  if (!Migrations.isTableName(tableName)) {
    return Either.left(
      Options.invalid(
        field("tableName"),
        options.tableName,
        "a lower-case SQL identifier of at most 51 characters, optionally schema-qualified (schema.table)"
      )
    )
  }
  const batching = options.batching ?? true
  if (batching === false) return Either.right({ tableName, batching: undefined })
  if (batching !== true && (typeof batching !== "object" || batching === null)) {
    return Either.left(Options.invalid(field("batching"), batching, "a boolean or { maxBatch, maxInFlight }"))
  }
  const limits = batching === true ? {} : batching
  const maxBatch = Options.number(field("batching.maxBatch"), limits.maxBatch ?? defaults.maxBatch, {
    min: 1,
    max: 1_000,
    integer: true
  })
  if (Either.isLeft(maxBatch)) return Either.left(maxBatch.left)
  const maxInFlight = Options.number(field("batching.maxInFlight"), limits.maxInFlight ?? defaults.maxInFlight, {
    min: 1,
    max: 1_000,
    integer: true
  })
  if (Either.isLeft(maxInFlight)) return Either.left(maxInFlight.left)
  return Either.right({ tableName, batching: { maxBatch: maxBatch.right, maxInFlight: maxInFlight.right } })
}

/** `"a.b"` → `"a"."b"`: the names are validated lower-case identifiers, quoting only guards keywords. */
const quote = (name: string): string => name.split(".").map((part) => `"${part}"`).join(".")

const millis = (duration: Duration.Duration): number => Duration.toMillis(duration)

/**
 * The positions of a batch's items sorted by key: every batch takes its rows' locks in this one order, so two
 * batches sharing keys cannot deadlock. Any total order does; this is JavaScript's string order.
 */
const lockOrder = (
  items: ReadonlyArray<{ readonly scope: string; readonly partition: string; readonly key: string }>
): ReadonlyArray<number> => {
  const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)
  return items.map((_, i) => i).sort((i, j) => {
    const a = items[i]
    const b = items[j]
    if (a === undefined || b === undefined) return 0
    return compare(a.scope, b.scope) || compare(a.partition, b.partition) || compare(a.key, b.key)
  })
}

/** How the effect run in a transaction ended (not a success), on its way through `withTransaction`. */
class Inner<E> {
  constructor(readonly cause: Cause.Cause<E>) {}
}

/**
 * The store. Its batchers' fibers live in the current scope.
 *
 * @internal
 */
export const make = (
  options: SqlIdempotencyStore.Options = {}
): Effect.Effect<IdempotencyStore.Service, InvalidOptionsError, SqlClient.SqlClient | Scope.Scope> =>
  Effect.gen(function*() {
    const { tableName, batching } = yield* validate(options)
    // Column names are ours: an application's result-name transforms (snake → camel) must not rename them.
    const sql = (yield* SqlClient.SqlClient).withoutTransforms()
    const table = sql(tableName)

    // The statements are fixed texts (no per-call compilation); the functions they call keep their plans.
    const call = (suffix: string, parameters: number) =>
      `${quote(`${tableName}_${suffix}`)}(${Array.from({ length: parameters }, (_, i) => `$${i + 1}`).join(", ")})`
    const CLAIM = `SELECT claimed, state, fingerprint, attempt, recovery, lease_remaining_ms, expires_in_ms, outcome,
      payload FROM ${call("claim", 7)}`
    const HEARTBEAT = `SELECT ${call("heartbeat", 6)} AS written`
    const COMPLETE = `SELECT ${call("complete", 8)} AS written`
    const CLAIM_BATCH = `SELECT ordinal, claimed, state, fingerprint, attempt, recovery, lease_remaining_ms,
      expires_in_ms, outcome, payload FROM ${call("claim_batch", 7)}`
    const COMPLETE_BATCH = `SELECT ordinal, written FROM ${call("complete_batch", 8)}`
    const RELEASE = `SELECT ${call("release", 5)} AS written`

    const failed = (operation: IdempotencyStore.Operation) => (cause: SqlError | Error) =>
      new IdempotencyStoreError({ backend, operation, cause })

    /**
     * A statement, its failure a store error. Inside a transaction (the caller's, or `transactional`'s) a failed
     * statement aborted that transaction: the error says so, and nothing can be retried within it (the caller must
     * run the whole transaction again; a COMMIT now would only roll back). Alone, the statement is its own
     * transaction, sent again after a serialization failure or deadlock.
     */
    const guard =
      (operation: IdempotencyStore.Operation) =>
      <A>(statement: Effect.Effect<A, SqlError>): Effect.Effect<A, IdempotencyStore.IdempotencyStoreError> =>
        Effect.flatMap(
          Effect.serviceOption(SqlClient.TransactionConnection),
          (transaction) =>
            Option.isSome(transaction)
              ? Effect.mapError(
                statement,
                (cause) => new IdempotencyStoreError({ backend, operation, cause, abortedTransaction: true })
              )
              : Effect.mapError(retryAlone(statement), failed(operation))
        )

    /** The statement's only row, decoded. */
    const single = <A>(
      decode: (row: unknown) => Either.Either<A, Error>,
      operation: IdempotencyStore.Operation
    ) =>
    (rows: ReadonlyArray<unknown>): Effect.Effect<A, IdempotencyStore.IdempotencyStoreError> =>
      rows.length === 1
        ? Either.mapLeft(decode(rows[0]), failed(operation))
        : Effect.fail(failed(operation)(new Error(`expected one row, got ${rows.length}`)))

    /**
     * A batch's rows, each put back at its item's position (`order[i]` is the position of the batch's i-th item).
     */
    const inOrder = <A>(
      decode: (row: unknown) => Either.Either<A, Error>,
      operation: IdempotencyStore.Operation,
      order: ReadonlyArray<number>
    ) =>
    (rows: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<A>, IdempotencyStore.IdempotencyStoreError> => {
      const results: Array<A | undefined> = Array.from({ length: order.length }, () => undefined)
      for (const row of rows) {
        const position = Either.flatMap(decodeOrdinal(row), ({ ordinal }) => {
          const at = order[ordinal - 1]
          return at === undefined ? Either.left(new Error(`no item at ordinal ${ordinal}`)) : Either.right(at)
        })
        if (Either.isLeft(position)) return Effect.fail(failed(operation)(position.left))
        const decoded = decode(row)
        if (Either.isLeft(decoded)) return Effect.fail(failed(operation)(decoded.left))
        results[position.right] = decoded.right
      }
      const complete: Array<A> = []
      for (const result of results) {
        if (result === undefined) {
          return Effect.fail(failed(operation)(new Error(`expected ${order.length} rows, got ${rows.length}`)))
        }
        complete.push(result)
      }
      return Effect.succeed(complete)
    }

    const claimRow = (request: IdempotencyStore.ClaimRequest) =>
      sql.unsafe(CLAIM, [
        request.scope,
        request.partition,
        request.key,
        request.fingerprint,
        request.owner,
        millis(request.lease),
        millis(request.ttl)
      ]).pipe(guard("claim"), Effect.flatMap(single(decodeClaimRow, "claim")))

    // A table made by `createTable` before the batch functions existed has none: its batches go one call per
    // statement from then on, with one warning, rather than failing.
    let batchFunctionsMissing = false
    const batchOrAlone = <A>(
      statement: Effect.Effect<ReadonlyArray<unknown>, SqlError>,
      operation: IdempotencyStore.Operation,
      decodeRows: (
        rows: ReadonlyArray<unknown>
      ) => Effect.Effect<ReadonlyArray<A>, IdempotencyStore.IdempotencyStoreError>,
      alone: Effect.Effect<ReadonlyArray<A>, IdempotencyStore.IdempotencyStoreError>
    ) =>
      // Batches are never sent inside a transaction (calls there go alone): a batch is its own transaction.
      Effect.matchEffect(retryAlone(statement), {
        onFailure: (error) => {
          if (!(hasProperty(error.cause, "code") && error.cause.code === UNDEFINED_FUNCTION)) {
            return Effect.fail(failed(operation)(error))
          }
          const warn = batchFunctionsMissing ? Effect.void : Effect.logWarning(
            `${tableName}'s batch functions are missing (a table made before 0004_idempotency_batches.sql): calls go one per statement; run createTable for a new table, or Migrations.run for the default one`
          )
          batchFunctionsMissing = true
          return Effect.zipRight(warn, alone)
        },
        onSuccess: decodeRows
      })

    const claimRows = (
      requests: ReadonlyArray<IdempotencyStore.ClaimRequest>
    ): Effect.Effect<ReadonlyArray<typeof ClaimRow.Type>, IdempotencyStore.IdempotencyStoreError> => {
      const alone = Effect.forEach(requests, claimRow, { concurrency: "unbounded" })
      if (requests.length === 1 || batchFunctionsMissing) return alone
      const order = lockOrder(requests)
      const sorted = order.map((i) => requests[i]).filter((request) => request !== undefined)
      return batchOrAlone(
        sql.unsafe(CLAIM_BATCH, [
          sorted.map((request) => request.scope),
          sorted.map((request) => request.partition),
          sorted.map((request) => request.key),
          sorted.map((request) => request.fingerprint),
          sorted.map((request) => request.owner),
          sorted.map((request) => millis(request.lease)),
          sorted.map((request) => millis(request.ttl))
        ]),
        "claim",
        inOrder(decodeClaimRow, "claim", order),
        alone
      )
    }

    const leaseOf = (request: IdempotencyStore.ClaimRequest, attempt: number, recovery: boolean) => ({
      scope: request.scope,
      partition: request.partition,
      key: request.key,
      fingerprint: request.fingerprint,
      owner: request.owner,
      attempt,
      recovery,
      lease: request.lease,
      ttl: request.ttl
    })

    const releaseRow = (lease: IdempotencyStore.Lease) => written("release")(sql.unsafe(RELEASE, fence(lease)))

    const batchedClaim = batching === undefined ? undefined : yield* Batcher.make({
      send: claimRows,
      ...batching,
      // A key claimed for a caller that went away meanwhile is given back at once, rather than left to lapse.
      onAbandoned: (request, row) =>
        row.claimed ? Effect.ignore(releaseRow(leaseOf(request, row.attempt, row.recovery))) : Effect.void
    })

    const claimOnce = (request: IdempotencyStore.ClaimRequest) =>
      Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        (transaction) =>
          batchedClaim === undefined || Option.isSome(transaction) ? claimRow(request) : batchedClaim(request)
      ).pipe(
        Effect.map((row): Record.Classification | IdempotencyStore.ClaimResult => {
          if (row.claimed) return { _tag: "Claimed", lease: leaseOf(request, row.attempt, row.recovery) }
          return Record.classifyExisting(rowOf(row), request.fingerprint)
        })
      )

    const claim = (request: IdempotencyStore.ClaimRequest): Effect.Effect<
      IdempotencyStore.ClaimResult,
      IdempotencyStore.IdempotencyStoreError
    > => {
      const loop = (
        tries: number
      ): Effect.Effect<IdempotencyStore.ClaimResult, IdempotencyStore.IdempotencyStoreError> =>
        Effect.flatMap(claimOnce(request), (result) => {
          if (result._tag !== "Stale") return Effect.succeed(result)
          if (tries >= MAX_STALE_RETRIES) {
            return Effect.fail(failed("claim")(new Error(`no consistent answer after ${tries} tries`)))
          }
          return loop(tries + 1)
        })
      return loop(1)
    }

    const written = (operation: IdempotencyStore.Operation) =>
    <E extends SqlError>(
      statement: Effect.Effect<ReadonlyArray<unknown>, E>
    ): Effect.Effect<boolean, IdempotencyStore.IdempotencyStoreError> =>
      statement.pipe(
        guard(operation),
        Effect.flatMap(single(decodeWrittenRow, operation)),
        Effect.map((row) => row.written)
      )

    const fence = (
      lease: IdempotencyStore.Lease
    ) => [lease.scope, lease.partition, lease.key, lease.owner, lease.attempt]

    const heartbeat = (lease: IdempotencyStore.Lease) =>
      written("heartbeat")(sql.unsafe(HEARTBEAT, [...fence(lease), millis(lease.lease)]))

    const completeRow = (lease: IdempotencyStore.Lease, result: IdempotencyStore.StoredResult) =>
      written("complete")(sql.unsafe(COMPLETE, [...fence(lease), result.outcome, result.payload, millis(lease.ttl)]))

    interface Completion {
      readonly scope: string
      readonly partition: string
      readonly key: string
      readonly lease: IdempotencyStore.Lease
      readonly result: IdempotencyStore.StoredResult
    }

    const completeRows = (
      completions: ReadonlyArray<Completion>
    ): Effect.Effect<ReadonlyArray<boolean>, IdempotencyStore.IdempotencyStoreError> => {
      const alone = Effect.forEach(completions, ({ lease, result }) => completeRow(lease, result), {
        concurrency: "unbounded"
      })
      if (completions.length === 1 || batchFunctionsMissing) return alone
      const order = lockOrder(completions)
      const sorted = order.map((i) => completions[i]).filter((completion) => completion !== undefined)
      return batchOrAlone(
        sql.unsafe(COMPLETE_BATCH, [
          sorted.map(({ lease }) => lease.scope),
          sorted.map(({ lease }) => lease.partition),
          sorted.map(({ lease }) => lease.key),
          sorted.map(({ lease }) => lease.owner),
          sorted.map(({ lease }) => lease.attempt),
          sorted.map(({ result }) => result.outcome),
          sorted.map(({ result }) => result.payload),
          sorted.map(({ lease }) => millis(lease.ttl))
        ]),
        "complete",
        (rows) =>
          Effect.map(inOrder(decodeWrittenRow, "complete", order)(rows), (all) => all.map((row) => row.written)),
        alone
      )
    }

    // Stored results can be large (up to `maxStoredBytes` each): a batch carries at most about 1 MiB of them.
    const batchedComplete = batching === undefined ? undefined : yield* Batcher.make({
      send: completeRows,
      ...batching,
      maxWeight: MAX_BATCH_PAYLOAD_CHARS,
      weigh: (completion) => completion.result.payload.length
    })

    // Inside a transaction (the `transactional` option's, or an application's), the completion must go through
    // the transaction's connection: it commits or rolls back with the handler's writes.
    const complete = (lease: IdempotencyStore.Lease, result: IdempotencyStore.StoredResult) =>
      Effect.flatMap(
        Effect.serviceOption(SqlClient.TransactionConnection),
        (transaction) =>
          batchedComplete === undefined || Option.isSome(transaction)
            ? completeRow(lease, result)
            : batchedComplete({ scope: lease.scope, partition: lease.partition, key: lease.key, lease, result })
      )

    const release = releaseRow

    // Lease and expiry columns as milliseconds from the server's now(), so no clock but Postgres' is involved.
    const remaining = (column: string) => sql.literal(`(extract(epoch from (${column} - now())) * 1000)::float8`)

    const lookup = (key: IdempotencyStore.RecordKey) =>
      sql`
        SELECT state, fingerprint, attempt, recovery, owner_token,
          ${remaining("lease_expires_at")} AS lease_remaining_ms, ${remaining("expires_at")} AS expires_in_ms,
          outcome, payload
        FROM ${table}
        WHERE scope = ${key.scope} AND partition_key = ${key.partition} AND idempotency_key = ${key.key}
      `.pipe(
        guard("lookup"),
        Effect.flatMap(
          (rows): Effect.Effect<Option.Option<IdempotencyStore.RecordInfo>, IdempotencyStore.IdempotencyStoreError> => {
            if (rows.length === 0) return Effect.succeed(Option.none())
            return Effect.map(single(decodeExistingRow, "lookup")(rows), (row) => {
              if (Record.isExpired(rowOf(row))) return Option.none()
              return Option.some({
                scope: key.scope,
                partition: key.partition,
                key: key.key,
                state: row.state,
                fingerprint: row.fingerprint,
                attempt: row.attempt,
                recovery: row.recovery,
                owner: Option.fromNullable(row.owner_token),
                leaseExpiresIn: row.lease_remaining_ms === null
                  ? Option.none()
                  : Option.some(Duration.millis(Math.max(0, row.lease_remaining_ms))),
                expiresIn: Duration.millis(Math.max(0, row.expires_in_ms)),
                result: row.outcome === null || row.payload === null
                  ? Option.none()
                  : Option.some({ outcome: row.outcome, payload: row.payload })
              })
            })
          }
        )
      )

    // SKIP LOCKED: concurrent cleaners (one per process) split the work instead of queueing on each other, and rows
    // a claim is busy with are left for the next batch. FOR UPDATE re-checks the condition on the latest version.
    const deleteExpired = (limit: number) =>
      sql`
        WITH doomed AS (
          SELECT scope, partition_key, idempotency_key FROM ${table}
          WHERE expires_at <= now() AND (state <> 'in_progress' OR lease_expires_at <= now())
          ORDER BY expires_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        ), deleted AS (
          DELETE FROM ${table} AS t USING doomed
          WHERE t.scope = doomed.scope AND t.partition_key = doomed.partition_key
            AND t.idempotency_key = doomed.idempotency_key
          RETURNING 1
        )
        SELECT count(*)::int AS count FROM deleted
      `.pipe(
        guard("deleteExpired"),
        Effect.flatMap(single(decodeCountRow, "deleteExpired")),
        Effect.map((row) => row.count)
      )

    // The effect's own failures and defects are carried through the transaction boxed, so that they cannot be
    // mistaken for the transaction's own SqlErrors, whatever their type: BEGIN's (failures) and COMMIT's or
    // ROLLBACK's (which `withTransaction` turns into defects; under SERIALIZABLE a COMMIT can fail with 40001).
    const transaction = <A, E, R>(
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, E | IdempotencyStore.IdempotencyStoreError, R> => {
      const boxed: Effect.Effect<A, Inner<E>, R> = Effect.flatMap(
        Effect.exit(effect),
        (exit) => Exit.isSuccess(exit) ? Effect.succeed(exit.value) : Effect.fail(new Inner(exit.cause))
      )
      return Effect.catchAllCause(
        sql.withTransaction(boxed),
        (cause): Effect.Effect<never, E | IdempotencyStore.IdempotencyStoreError> => {
          const failure = Cause.failureOption(cause)
          if (Option.isSome(failure)) {
            return failure.value instanceof Inner
              ? Effect.failCause(failure.value.cause)
              : Effect.fail(failed("transaction")(failure.value))
          }
          const defect = Cause.dieOption(cause)
          if (Option.isSome(defect) && defect.value instanceof SqlError) {
            return Effect.fail(failed("transaction")(defect.value))
          }
          // No failure: an interruption, or a defect that is not the transaction's.
          return Effect.failCause(Cause.stripFailures(cause))
        }
      )
    }

    const service: IdempotencyStore.Service = {
      backend,
      claim,
      heartbeat,
      complete,
      release,
      lookup,
      deleteExpired,
      transaction
    }
    return service
  })

/** @internal */
export const layer = (
  options: SqlIdempotencyStore.Options = {}
): Layer.Layer<IdempotencyStore.IdempotencyStore, InvalidOptionsError, SqlClient.SqlClient> =>
  Layer.scoped(Tags.IdempotencyStore, make(options))

/**
 * Runs, under `options.tableName`, every Bulwark migration that names objects after the idempotency table (those
 * written with its placeholders), in order.
 *
 * @internal
 */
export const createTable = (
  options: SqlIdempotencyStore.Options = {}
): Effect.Effect<void, InvalidOptionsError | SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const { tableName } = yield* validate(options)
    const sql = yield* SqlClient.SqlClient
    const files = yield* Effect.orDie(Migrations.readFiles(Migrations.directory()))
    for (const file of files) {
      if (!Migrations.namesIdempotencyTable(file.text)) continue
      // The name is valid (checked above): rendering fails only on a placeholder this version does not know.
      const text = yield* Effect.orDie(Migrations.render(file.text, { idempotencyTable: tableName }))
      // Several statements in one text: sent without parameters, as the migrator does.
      yield* sql.unsafe(text).raw
    }
  })
