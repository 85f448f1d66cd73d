import * as Data from "effect/Data"

/**
 * Exit codes of the `bulwark` command. Scripts branch on them, so they are
 * part of the CLI's contract.
 *
 * @internal
 */
export const ExitCode = {
  /** The command did what was asked. */
  ok: 0,
  /** PostgreSQL could not be reached or a statement failed. */
  databaseError: 1,
  /** The command line was wrong: unknown command or flag, bad value, missing database URL, missing `--yes`. */
  usage: 2,
  /** A dead-letter entry or job named by id does not exist (nothing was changed). */
  notFound: 3
} as const

/** @internal */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

/**
 * The command line asked for something impossible; nothing was changed.
 *
 * @internal
 */
export class UsageError extends Data.TaggedError("UsageError")<{
  readonly message: string
  /** Print the commands' usage under the message (the command line named no command to run). */
  readonly showUsage?: true
}> {}

/**
 * PostgreSQL was unreachable or a statement failed.
 *
 * @internal
 */
export class DatabaseError extends Data.TaggedError("DatabaseError")<{
  readonly message: string
  readonly cause: unknown
}> {}

/**
 * Dead-letter entries (or, `what: "job"`, jobs) named by id were not found;
 * nothing was changed.
 *
 * @internal
 */
export class NotFoundError extends Data.TaggedError("NotFoundError")<{
  readonly ids: ReadonlyArray<string>
  readonly what?: "job"
}> {
  override get message(): string {
    const one = this.ids.length === 1
    const noun = this.what === "job" ? (one ? "job" : "jobs") : `dead-letter ${one ? "entry" : "entries"}`
    return `no ${noun} with id ${this.ids.join(", ")}`
  }
}

/** @internal */
export type CliError = UsageError | DatabaseError | NotFoundError

/** @internal */
export const exitCodeOf = (error: CliError): ExitCode => {
  switch (error._tag) {
    case "UsageError":
      return ExitCode.usage
    case "DatabaseError":
      return ExitCode.databaseError
    case "NotFoundError":
      return ExitCode.notFound
  }
}
