/**
 * `bulwark dlq list` and `bulwark dlq show`, the dead-letter commands that
 * read, and how every `dlq` command chooses entries: by id (`<id>...`) or by
 * filters (`--queue`, `--kind`, `--error-tag`, `--since`) with `--all`.
 * `dlqReplay.ts` and `dlqDiscard.ts` hold the commands that write.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import * as DeadLetter from "../../job-queue/DeadLetter.js"
import * as JobQueue from "../../job-queue/JobQueue.js"
import { connect, databaseUrl, json, print, storeFailed } from "./common.js"
import { type DatabaseError, NotFoundError, UsageError } from "./errors.js"
import * as parse from "./parse.js"
import * as render from "./render.js"

// -----------------------------------------------------------------------------
// Choosing entries: ids, or filters with --all
// -----------------------------------------------------------------------------

const queue = Options.text("queue").pipe(
  Options.withDescription("Only entries from this source queue"),
  Options.optional
)
const kind = Options.text("kind").pipe(Options.withDescription("Only entries of this job kind"), Options.optional)
const errorTag = Options.text("error-tag").pipe(
  Options.withDescription("Only entries whose last error has this tag (e.g. PaymentDeclined, LeaseExpired)"),
  Options.optional
)
const since = Options.text("since").pipe(
  Options.withDescription(
    "Only entries dead-lettered since a date (2026-03-01T12:00:00Z) or an age (90s, 15m, 2h, 7d)"
  ),
  Options.optional
)

/** Most entries one `--all` run replays or discards unless `--limit` says otherwise. */
const DEFAULT_BULK_LIMIT = 1000

/**
 * The options of `replay` and `discard`, which act on entries chosen by id
 * (`<id>...`) or by filters (`--all`, at most `--limit`); `all` describes
 * `--all`.
 *
 * @internal
 */
export const selection = (verb: "replay" | "discard", all: string) => ({
  ids: Args.text({ name: "id" }).pipe(Args.withDescription(`Entries to ${verb}`), Args.repeated),
  all: Options.boolean("all").pipe(Options.withDescription(all)),
  queue,
  kind,
  errorTag,
  since,
  limit: Options.integer("limit").pipe(
    Options.withDescription(`With --all: ${verb} at most this many entries (default ${DEFAULT_BULK_LIMIT})`),
    Options.optional
  )
})

/** @internal */
export interface Filters {
  readonly queue: Option.Option<string>
  readonly kind: Option.Option<string>
  readonly errorTag: Option.Option<string>
  readonly since: Option.Option<string>
}

/** @internal */
export const filterOf = (filters: Filters, now: Date): Either.Either<DeadLetter.Filter, UsageError> =>
  Either.gen(function*() {
    const sinceDate = Option.isSome(filters.since) ? yield* parse.since(filters.since.value, now) : undefined
    return {
      ...Option.match(filters.queue, { onNone: () => ({}), onSome: (value) => ({ queue: value }) }),
      ...Option.match(filters.kind, { onNone: () => ({}), onSome: (value) => ({ kind: value }) }),
      ...Option.match(filters.errorTag, { onNone: () => ({}), onSome: (value) => ({ errorTag: value }) }),
      ...(sinceDate === undefined ? {} : { since: sinceDate })
    }
  })

const hasFilter = (filters: Filters): boolean =>
  Option.isSome(filters.queue) || Option.isSome(filters.kind) || Option.isSome(filters.errorTag) ||
  Option.isSome(filters.since)

/**
 * What `replay` and `discard` are given: ids, or `--all` with filters and a
 * `--limit`.
 *
 * @internal
 */
export interface Selection extends Filters {
  readonly ids: ReadonlyArray<string>
  readonly all: boolean
  readonly limit: Option.Option<number>
}

/**
 * Refuses ids together with `--all`, neither of them, and filters or
 * `--limit` beside ids.
 *
 * @internal
 */
export const checkSelection = (verb: "replay" | "discard", input: Selection): Effect.Effect<void, UsageError> => {
  if (input.all && input.ids.length > 0) {
    return Effect.fail(new UsageError({ message: "Give ids or --all with filters, not both" }))
  }
  if (!input.all && input.ids.length === 0) {
    return Effect.fail(new UsageError({ message: `Give the ids to ${verb}, or --all (with --queue, --error-tag, …)` }))
  }
  if (!input.all && (hasFilter(input) || Option.isSome(input.limit))) {
    return Effect.fail(new UsageError({ message: "Filters and --limit select entries for --all; with ids, drop them" }))
  }
  return Effect.void
}

/**
 * The most entries an `--all` run acts on: `--limit`, else {@link DEFAULT_BULK_LIMIT}.
 *
 * @internal
 */
export const limitOf = (input: Selection): Effect.Effect<number, UsageError> => {
  const limit = Option.getOrElse(input.limit, () => DEFAULT_BULK_LIMIT)
  return limit < 1
    ? Effect.fail(new UsageError({ message: `--limit ${limit} must be at least 1` }))
    : Effect.succeed(limit)
}

const JOB_ID = /^[1-9]\d{0,18}$/

/** @internal */
export const checkIds = (given: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<string>, UsageError> => {
  const bad = given.filter((id) => !JOB_ID.test(id))
  return bad.length > 0
    ? Effect.fail(new UsageError({ message: `Not a job id: ${bad.join(", ")} (ids are positive integers)` }))
    : Effect.succeed([...new Set(given)])
}

/**
 * A dead-letter query's failures as the CLI's: options it refuses are a usage
 * error, a failed statement a database error.
 *
 * @internal
 */
export const queryFailed = <A, R>(
  self: Effect.Effect<A, InvalidOptionsError | JobQueue.JobStoreError, R>
): Effect.Effect<A, UsageError | DatabaseError, R> =>
  Effect.catchTags(self, {
    InvalidOptionsError: (error) => Effect.fail(new UsageError({ message: error.message })),
    JobStoreError: (error) => Effect.fail(storeFailed(error))
  })

const fetchEntries = (
  service: JobQueue.JobQueue,
  wanted: ReadonlyArray<string>
): Effect.Effect<ReadonlyArray<DeadLetter.Entry>, NotFoundError | DatabaseError> =>
  Effect.forEach(wanted, (id) => DeadLetter.show(id)).pipe(
    Effect.provideService(JobQueue.JobQueue, service),
    Effect.mapError(storeFailed),
    Effect.flatMap((found) => {
      const missing = wanted.filter((_, i) => Option.isNone(found[i] ?? Option.none()))
      return missing.length > 0
        ? Effect.fail(new NotFoundError({ ids: missing }))
        : Effect.succeed(found.flatMap((entry) => Option.toArray(entry)))
    })
  )

/**
 * The entries named by id, for a command that acts on all of them or on none:
 * every id must exist and none may be in the state `refused` (a discarded
 * entry cannot be replayed, a replayed one cannot be discarded).
 *
 * @internal
 */
export const fetchActionable = (
  service: JobQueue.JobQueue,
  wanted: ReadonlyArray<string>,
  verb: "replay" | "discard",
  refused: DeadLetter.EntryStatus
): Effect.Effect<ReadonlyArray<DeadLetter.Entry>, UsageError | NotFoundError | DatabaseError> =>
  Effect.flatMap(fetchEntries(service, wanted), (entries) => {
    const blocked = entries.filter((entry) => entry.status === refused).map((entry) => entry.id)
    return blocked.length > 0
      ? Effect.fail(
        new UsageError({
          message: `Cannot ${verb} ${refused} ${blocked.length === 1 ? "entry" : "entries"} ${blocked.join(", ")}`
        })
      )
      : Effect.succeed(entries)
  })

// -----------------------------------------------------------------------------
// bulwark dlq list
// -----------------------------------------------------------------------------

/** @internal */
export const list = Command.make(
  "list",
  {
    databaseUrl,
    json,
    queue,
    kind,
    errorTag,
    since,
    status: Options.choice("status", ["pending", "replayed", "discarded", "all"]).pipe(
      Options.withDescription("Entries in this state"),
      Options.withDefault("pending" as const)
    ),
    limit: Options.integer("limit").pipe(Options.withDescription("Entries per page, 1–1000"), Options.withDefault(50)),
    cursor: Options.text("cursor").pipe(
      Options.withDescription("Continue after the previous page (the cursor it printed)"),
      Options.optional
    ),
    oldest: Options.boolean("oldest").pipe(
      Options.withDescription("Oldest dead-lettered first (default: newest first)")
    )
  },
  (input) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (input.limit < 1 || input.limit > 1000) {
        return yield* new UsageError({ message: `--limit ${input.limit} is out of range (1–1000)` })
      }
      const filter = yield* filterOf(input, new Date(now))
      const options: DeadLetter.ListOptions = {
        ...filter,
        status: input.status,
        order: input.oldest ? "oldest" : "newest",
        limit: input.limit,
        ...Option.match(input.cursor, { onNone: () => ({}), onSome: (cursor) => ({ cursor }) })
      }
      const result = yield* connect(input.databaseUrl, [], ({ service }) =>
        DeadLetter.list(options).pipe(
          Effect.provideService(JobQueue.JobQueue, service),
          queryFailed
        ))
      yield* print(
        input.json
          ? parse.toJson({
            entries: result.entries.map((entry) => render.entryJson(entry, { full: false })),
            next: Option.getOrNull(result.next)
          })
          : render.page(result, now)
      )
    })
).pipe(Command.withDescription("List dead-letter entries, newest first, with filters and pagination"))

// -----------------------------------------------------------------------------
// bulwark dlq show
// -----------------------------------------------------------------------------

/** @internal */
export const show = Command.make(
  "show",
  {
    databaseUrl,
    json,
    id: Args.text({ name: "id" }).pipe(Args.withDescription("The dead-letter entry (the dead job's id)"))
  },
  (input) =>
    Effect.gen(function*() {
      const [id] = yield* checkIds([input.id])
      const entries = yield* connect(input.databaseUrl, [], ({ service }) =>
        fetchEntries(service, id === undefined ? [] : [id]))
      for (const entry of entries) {
        yield* print(input.json ? parse.toJson(render.entryJson(entry, { full: true })) : render.entry(entry))
      }
    })
).pipe(Command.withDescription("Show one entry: payload, every attempt's error, times"))
