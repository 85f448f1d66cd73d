/**
 * The PostgreSQL idempotency store, on `@effect/sql` (`@effect/sql-pg` in
 * practice; the SQL is PostgreSQL's, and PGlite runs it too).
 *
 * Each operation is one round trip: a call of a PL/pgSQL function that the
 * migrations create beside the table (`bulwark_idempotency_keys_claim`,
 * `_heartbeat`, `_complete`, `_release`). PL/pgSQL keeps each statement's plan
 * for the session, which `@effect/sql-pg` (it never prepares statements)
 * cannot do for SQL text.
 *
 * - **Claim.** One function decides every claim, single or batched:
 *   `<table>_claim_one` (`0005_idempotency_claim_one.sql`), where the claim
 *   rule is stated once. It first reads the key with an indexed `SELECT`. A
 *   record that cannot be claimed (completed, in progress with a live lease,
 *   another fingerprint) is answered from that read: no lock and no write, so
 *   a replay commits without waiting for a WAL flush. A completed record is
 *   immutable until it expires, so that read is its final answer. An absent
 *   key is inserted (`ON CONFLICT DO NOTHING`); a claimable record is read
 *   again `FOR UPDATE` and decided again on its latest version before it is
 *   updated: of any number of concurrent claims on a key, across connections
 *   and processes, exactly one takes it.
 * - **Fencing.** Heartbeats, completions and releases are `UPDATE`s fenced by
 *   `(owner_token, attempt)`.
 * - **Time.** All times are the server's `now()`, so processes with skewed
 *   clocks agree on leases and expiry.
 *
 * A new key costs two round trips (claim, complete); a replay costs one
 * read-only one. Under load, concurrent claims (and completions) share a
 * round trip: see {@link Options.batching}. The table and functions come from
 * migrations `0001_idempotency.sql`, `0004_idempotency_batches.sql` and
 * `0005_idempotency_claim_one.sql` (run them with `Migrations.run`); for
 * another table name, {@link createTable} runs them under that name. The
 * store's batching fibers live in the scope it is made in (the layer's), so
 * {@link make} needs a `Scope`.
 *
 * Inside an application's `sql.withTransaction`, every call goes through that
 * transaction: the claim becomes visible to other requests only on commit
 * (their claims of the same key wait for it), and `now()` stands still for the
 * transaction. Under REPEATABLE READ or SERIALIZABLE, a statement that meets a
 * key changed after the transaction's snapshot fails with a serialization
 * failure; any failed statement aborts the transaction, so the store's error
 * then carries `abortedTransaction: true`: run the whole transaction again.
 * Outside a transaction each statement is its own, and one refused with a
 * serialization failure or deadlock (possible when
 * `default_transaction_isolation` is above READ COMMITTED) is sent again, up
 * to five times.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../Failure.js"
import type { IdempotencyStore, Service } from "./IdempotencyStore.js"
import * as internal from "./internal/sqlStore.js"

/**
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /**
   * The table, optionally schema-qualified (`schema.table`); a lower-case identifier, the table's own name at most
   * 51 characters. The table and its functions (`<table>_claim`, `<table>_claim_one`, `<table>_heartbeat`,
   * `<table>_complete`, `<table>_release`, `<table>_claim_batch`, `<table>_complete_batch`) are what the migrations
   * (`0001_idempotency.sql`, `0004_idempotency_batches.sql`, `0005_idempotency_claim_one.sql`) create for the default
   * name; {@link createTable} creates them for another. Default `"bulwark_idempotency_keys"` (the migrations').
   */
  readonly tableName?: string
  /**
   * Claims and completions made concurrently (by different requests, fibers, jobs) share round trips: while
   * `maxInFlight` statements of one kind are out, later calls queue, and go together, up to `maxBatch`, as one
   * statement (`<table>_claim_batch`, `<table>_complete_batch`, from `0004_idempotency_batches.sql`) as soon as
   * one returns. An idle store sends each call at once, alone: batching adds no latency, only fewer round trips
   * under load. Each key in a batch is decided exactly as alone (the batch functions call the one-key functions,
   * in key order, so concurrent batches cannot deadlock); a batch that fails fails each of its calls with the
   * same `IdempotencyStoreError`. A batch of completions carries at most about 1 MiB of stored results (a larger
   * one goes alone). A table made by {@link createTable} before the batch functions existed has none: the store then
   * sends one call per statement, and logs a warning once. Inside a transaction (`transactional: true`, or an application's), calls go
   * through the transaction's connection, alone.
   *
   * `false` sends every call alone. Default `true`: `maxBatch` 64, `maxInFlight` 2 (per kind: up to four of the
   * pool's connections). A lower `maxInFlight` makes larger batches and fewer round trips under load (a load test
   * with 32 concurrent callers served 15–25 % more new keys per second at 1 than at 4); a higher one keeps one slow
   * statement (a claim waiting on a row lock) from holding up the calls queued behind it.
   */
  readonly batching?: boolean | { readonly maxBatch?: number; readonly maxInFlight?: number }
}

/**
 * Makes the store on the `SqlClient` in context. Invalid options fail with `InvalidOptionsError`. The fibers
 * that send batched calls live in the current scope: closing it interrupts them, and the calls they carry.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (
  options?: Options
) => Effect.Effect<Service, InvalidOptionsError, SqlClient.SqlClient | Scope.Scope> = internal.make

/**
 * The store as a layer.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import { Effect, Layer, Redacted, Schema } from "effect"
 * import { Idempotency } from "@bulwark/resilience"
 * import * as Migrations from "@bulwark/resilience/Migrations"
 * import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
 *
 * const Pg = PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") })
 * const Store = SqlIdempotencyStore.layer().pipe(Layer.provide(Pg))
 *
 * const program = Effect.gen(function*() {
 *   yield* Migrations.run
 *   return yield* Idempotency.run({
 *     scope: "POST /orders",
 *     key: "order-123",
 *     fingerprint: "sha256:…",
 *     success: Schema.Struct({ orderId: Schema.String }),
 *     failure: Schema.Never
 *   })(() => Effect.succeed({ orderId: "o-1" }))
 * }).pipe(Effect.provide(Layer.merge(Store, Pg)))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (options?: Options) => Layer.Layer<IdempotencyStore, InvalidOptionsError, SqlClient.SqlClient> =
  internal.layer

/**
 * Creates the store's table and functions under `options.tableName`: it runs
 * the idempotency migrations (`0001_idempotency.sql`,
 * `0004_idempotency_batches.sql`, `0005_idempotency_claim_one.sql`) with their
 * `:BULWARK_IDEMPOTENCY_TABLE` placeholders standing for the given table
 * instead of the default one, so every object is named after it. For
 * applications that keep several stores apart, and for tests; the default
 * table comes from `Migrations.run`. Fails if the table already exists.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
 *
 * const program = Effect.gen(function*() {
 *   yield* SqlIdempotencyStore.createTable({ tableName: "billing.idempotency_keys" })
 *   return yield* SqlIdempotencyStore.make({ tableName: "billing.idempotency_keys" })
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const createTable: (
  options?: Options
) => Effect.Effect<void, InvalidOptionsError | SqlError, SqlClient.SqlClient> = internal.createTable
