import * as PgClient from "@effect/sql-pg/PgClient"
import { SqlError } from "@effect/sql/SqlError"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import { DatabaseError, UsageError } from "./errors.js"

/**
 * The database URL: `--database-url`, else `DATABASE_URL`. There is no
 * default on purpose: an operator tool that can discard dead letters must
 * never guess which database it is pointed at.
 *
 * @internal
 */
export const resolveUrl = (flag: Option.Option<string>): Effect.Effect<string, UsageError> =>
  Option.match(flag, {
    onSome: Effect.succeed,
    onNone: () =>
      Config.string("DATABASE_URL").pipe(
        Effect.orElseSucceed(() => ""),
        Effect.map((url) => url.trim())
      )
  }).pipe(
    Effect.flatMap((url) =>
      url.length === 0
        ? Effect.fail(
          new UsageError({
            message: "No database: pass --database-url postgres://user@host:5432/db or set DATABASE_URL"
          })
        )
        : validUrl(url)
    )
  )

const validUrl = (url: string): Effect.Effect<string, UsageError> => {
  try {
    const parsed = new URL(url)
    if (parsed.protocol !== "postgres:" && parsed.protocol !== "postgresql:") {
      return Effect.fail(
        new UsageError({ message: `The database URL must start with postgres:// (got ${parsed.protocol}//…)` })
      )
    }
    return Effect.succeed(url)
  } catch {
    return Effect.fail(
      new UsageError({ message: "The database URL is not a URL (expected postgres://user@host:5432/db)" })
    )
  }
}

/**
 * The URL with its password masked, for error messages.
 *
 * @internal
 */
export const displayUrl = (url: string): string => {
  try {
    const parsed = new URL(url)
    if (parsed.password !== "") parsed.password = "***"
    return parsed.toString()
  } catch {
    return "(unparseable URL)"
  }
}

const describe = (cause: unknown): string => {
  if (cause instanceof SqlError) {
    const inner = cause.cause
    return inner instanceof Error ? `${cause.message}: ${inner.message}` : cause.message
  }
  return cause instanceof Error ? cause.message : String(cause)
}

/**
 * A small pool (the CLI runs a handful of statements) that fails with a
 * `DatabaseError` naming the server when it cannot connect.
 *
 * @internal
 */
export const layer = (url: string): Layer.Layer<PgClient.PgClient, DatabaseError> =>
  PgClient.layer({
    url: Redacted.make(url),
    maxConnections: 2,
    connectTimeout: "5 seconds",
    applicationName: "bulwark-cli"
  }).pipe(
    Layer.mapError((cause) =>
      new DatabaseError({
        message: `Cannot connect to PostgreSQL at ${displayUrl(url)} (${describe(cause)})`,
        cause
      })
    )
  )

const UNDEFINED_TABLE = "42P01"

const codeOf = (cause: unknown): string | undefined => {
  const inner = cause instanceof SqlError ? cause.cause : cause
  if (typeof inner === "object" && inner !== null && "code" in inner && typeof inner.code === "string") {
    return inner.code
  }
  return undefined
}

/**
 * Turns a failed statement into a `DatabaseError`, with a hint when Bulwark's
 * tables are missing (the migrations have not run on that database).
 *
 * @internal
 */
export const statementFailed = (operation: string, cause: unknown): DatabaseError => {
  const inner = typeof cause === "object" && cause !== null && "cause" in cause ? cause.cause : cause
  const hint = codeOf(inner) === UNDEFINED_TABLE
    ? " — Bulwark's tables are missing: run its migrations (Migrations.run) on this database first"
    : ""
  return new DatabaseError({ message: `${operation} failed: ${describe(inner)}${hint}`, cause })
}
