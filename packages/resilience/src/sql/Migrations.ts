/**
 * Bulwark's PostgreSQL schema, as numbered, append-only migrations.
 *
 * The files live in `packages/resilience/sql/` (`0001_idempotency.sql`,
 * `0002_job_queue.sql`, …) and run through `@effect/sql`'s Migrator, recorded
 * in their own table (`bulwark_migrations`) so they never collide with an
 * application's migrations. The Migrator takes a table lock, so many processes
 * may run `Migrations.run` at start-up at once.
 *
 * Objects named after a configurable name are written with placeholders in
 * the files, replaced before a text runs (as graphile-worker's
 * `:GRAPHILE_WORKER_SCHEMA`): `:BULWARK_IDEMPOTENCY_TABLE` is the idempotency
 * table (optionally schema-qualified; its functions are
 * `:BULWARK_IDEMPOTENCY_TABLE_claim`, …), and `:BULWARK_IDEMPOTENCY_TABLE_NAME`
 * the same name without its schema (for constraints and indexes). The
 * loaders here replace them with the default names
 * (`bulwark_idempotency_keys`); `SqlIdempotencyStore.createTable` runs the
 * idempotency migrations with another, validated, table name.
 *
 * @example
 * ```ts
 * import { PgClient } from "@effect/sql-pg"
 * import * as Migrations from "@bulwark/resilience/Migrations"
 * import { Effect, Redacted } from "effect"
 *
 * const program = Migrations.run.pipe(
 *   Effect.provide(PgClient.layer({ url: Redacted.make("postgres://127.0.0.1/app") }))
 * )
 * ```
 *
 * @since 0.1.0
 */
import type * as Migrator from "@effect/sql/Migrator"
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import type * as Effect from "effect/Effect"
import * as internal from "./internal/migrations.js"

/**
 * The table that records which Bulwark migrations have run.
 *
 * @since 0.1.0
 * @category Constants
 */
export const table: string = internal.table

/**
 * The directory holding Bulwark's `.sql` migrations.
 *
 * @since 0.1.0
 * @category Constants
 */
export const directory: () => string = internal.directory

/**
 * Loads `NNNN_name.sql` files from a directory, in id order, with their
 * placeholders replaced by the default names. A file with a placeholder this
 * version does not know fails to load (`MigrationError`).
 *
 * @since 0.1.0
 * @category Loaders
 */
export const fromDirectory: (path: string) => Migrator.Loader = internal.fromDirectory

/**
 * Loads Bulwark's own migrations.
 *
 * @since 0.1.0
 * @category Loaders
 */
export const loader: Migrator.Loader = internal.loader

/**
 * Runs every pending Bulwark migration; returns those that ran.
 *
 * @since 0.1.0
 * @category Running
 */
export const run: Effect.Effect<
  ReadonlyArray<readonly [id: number, name: string]>,
  Migrator.MigrationError | SqlError,
  SqlClient.SqlClient
> = internal.run
