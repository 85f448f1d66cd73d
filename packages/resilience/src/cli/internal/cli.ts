import * as Args from "@effect/cli/Args"
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Options from "@effect/cli/Options"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import * as DeadLetter from "../../job-queue/DeadLetter.js"
import * as JobQueue from "../../job-queue/JobQueue.js"
import * as SqlJobQueue from "../../job-queue/SqlJobQueue.js"
import type { Options as CliOptions } from "../Cli.js"
import * as database from "./database.js"
import { type CliError, type DatabaseError, ExitCode, exitCodeOf, NotFoundError, UsageError } from "./errors.js"
import * as output from "./output.js"
import * as parse from "./parse.js"
import * as render from "./render.js"
import { version } from "./version.js"

// -----------------------------------------------------------------------------
// Options shared by the commands
// -----------------------------------------------------------------------------

const databaseUrl = Options.text("database-url").pipe(
  Options.withDescription(
    "PostgreSQL URL (postgres://user@host:5432/db). Default: the DATABASE_URL environment variable"
  ),
  Options.optional
)

const json = Options.boolean("json").pipe(Options.withDescription("Print JSON (for scripts) instead of a table"))

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
const jobsModule = Options.text("jobs").pipe(
  Options.withDescription(
    "A module exporting your JobQueue.define(...) definitions: their Schemas validate an edited --payload"
  ),
  Options.optional
)

const ids = (description: string) => Args.text({ name: "id" }).pipe(Args.withDescription(description), Args.repeated)

interface Filters {
  readonly queue: Option.Option<string>
  readonly kind: Option.Option<string>
  readonly errorTag: Option.Option<string>
  readonly since: Option.Option<string>
}

const filterOf = (filters: Filters, now: Date): Either.Either<DeadLetter.Filter, UsageError> =>
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

const JOB_ID = /^[1-9]\d{0,18}$/

const checkIds = (given: ReadonlyArray<string>): Effect.Effect<ReadonlyArray<string>, UsageError> => {
  const bad = given.filter((id) => !JOB_ID.test(id))
  return bad.length > 0
    ? Effect.fail(new UsageError({ message: `Not a job id: ${bad.join(", ")} (ids are positive integers)` }))
    : Effect.succeed([...new Set(given)])
}

// -----------------------------------------------------------------------------
// Connecting: the job queue service over the database the command points at
// -----------------------------------------------------------------------------

const storeFailed = (error: JobQueue.JobStoreError): DatabaseError => database.statementFailed(error.operation, error)

/**
 * What a command works with: the job queue service over the database the
 * command points at, and a way to get one that also knows more queues.
 */
interface Connection {
  readonly service: JobQueue.JobQueue
  /** The service with these queues configured too (replaying an edited payload re-checks it against its queue). */
  readonly withQueues: (queues: ReadonlyArray<string>) => Effect.Effect<JobQueue.JobQueue, UsageError>
}

/**
 * Stands in when the database has no queue at all: the service needs one
 * configured queue, and dead-letter reads and writes go to the store whatever
 * the configured queues are. It is never written anywhere.
 */
const PLACEHOLDER_QUEUE = "bulwark-cli"

/**
 * The CLI serves whatever queues the database holds: the service is
 * configured with the queues that have jobs or pending dead letters (plus
 * those of the given job definitions), since an operator tool does not know
 * the application's worker settings and does not need them.
 */
const connect = <A, E, R>(
  flag: Option.Option<string>,
  definitions: ReadonlyArray<JobQueue.JobDefinition.Any>,
  use: (connection: Connection) => Effect.Effect<A, E, R>
): Effect.Effect<A, E | CliError, Exclude<Exclude<R, Scope.Scope>, PgClient.PgClient>> =>
  Effect.flatMap(database.resolveUrl(flag), (url) =>
    Effect.gen(function*() {
      const store = yield* SqlJobQueue.makeStore().pipe(
        Effect.mapError((error) => new UsageError({ message: error.message }))
      )
      const present = yield* Effect.mapError(store.stats, storeFailed)
      const known = [...present.map((row) => row.queue), ...definitions.map((definition) => definition.queue)]
      const withQueues = (queues: ReadonlyArray<string>): Effect.Effect<JobQueue.JobQueue, UsageError> => {
        const names = new Set([...known, ...queues])
        if (names.size === 0) names.add(PLACEHOLDER_QUEUE)
        const config = JobQueue.makeConfig({
          queues: Object.fromEntries([...names].map((name) => [name, {}])),
          jobs: definitions
        })
        return Either.isLeft(config)
          ? Effect.fail(new UsageError({ message: config.left.message }))
          : Effect.succeed(JobQueue.make(config.right, store))
      }
      return yield* use({ service: yield* withQueues([]), withQueues })
    }).pipe(Effect.scoped, Effect.provide(database.layer(url))))

const print = (text: string) => Console.log(text)

// -----------------------------------------------------------------------------
// bulwark dlq list
// -----------------------------------------------------------------------------

const list = Command.make(
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
          Effect.catchTags({
            InvalidOptionsError: (error) => Effect.fail(new UsageError({ message: error.message })),
            JobStoreError: (error) => Effect.fail(storeFailed(error))
          })
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

const show = Command.make(
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

// -----------------------------------------------------------------------------
// bulwark dlq replay
// -----------------------------------------------------------------------------

/** Most entries one `--all` run replays or discards unless `--limit` says otherwise. */
const DEFAULT_BULK_LIMIT = 1000
const PAGE = 500

interface ReplayLine {
  readonly id: string
  readonly queue: string | null
  readonly outcome: "replayed" | "already_replayed" | "not_found" | "discarded"
  readonly job: string | null
}

const replayLine = (result: DeadLetter.ReplayResult): ReplayLine => {
  switch (result._tag) {
    case "Replayed":
      return {
        id: result.id,
        queue: result.queue,
        outcome: result.created ? "replayed" : "already_replayed",
        job: result.job
      }
    case "NotFound":
      return { id: result.id, queue: null, outcome: "not_found", job: null }
    case "Discarded":
      return { id: result.id, queue: null, outcome: "discarded", job: null }
  }
}

const describeReplay = (line: ReplayLine): string => {
  switch (line.outcome) {
    case "replayed":
      return `${line.id}: replayed as job ${line.job} in queue ${line.queue}`
    case "already_replayed":
      return `${line.id}: already replayed as job ${line.job} (nothing new created)`
    case "not_found":
      return `${line.id}: not found`
    case "discarded":
      return `${line.id}: discarded, not replayed`
  }
}

const summary = (lines: ReadonlyArray<{ readonly outcome: string }>): string => {
  const counts = new Map<string, number>()
  for (const line of lines) counts.set(line.outcome, (counts.get(line.outcome) ?? 0) + 1)
  return [...counts].map(([outcome, count]) => `${count} ${outcome.replace(/_/g, " ")}`).join(", ")
}

const replayError = (error: DeadLetter.ReplayError): CliError => {
  switch (error._tag) {
    case "JobStoreError":
      return storeFailed(error)
    case "DeadLetterNotFoundError":
      return new NotFoundError({ ids: [error.id] })
    default:
      return new UsageError({ message: error.message })
  }
}

/**
 * Loads job definitions from a module: every export that is a definition,
 * or an array of them.
 */
const loadDefinitions = (
  path: string
): Effect.Effect<ReadonlyArray<JobQueue.JobDefinition.Any>, UsageError> =>
  Effect.tryPromise({
    try: async () => {
      const loaded: unknown = await import(pathToFileURL(resolve(path)).href)
      const found = Object.values(typeof loaded === "object" && loaded !== null ? loaded : {}).flatMap((
        value
      ): ReadonlyArray<unknown> => Array.isArray(value) ? value : [value])
      // A module often exports each definition and also a list of them: keep one per kind.
      return [
        ...new Map(found.filter(JobQueue.isJobDefinition).map((definition) => [definition.kind, definition])).values()
      ]
    },
    catch: (cause) =>
      new UsageError({
        message: `--jobs ${path}: cannot load the module (${cause instanceof Error ? cause.message : String(cause)})`
      })
  }).pipe(
    Effect.filterOrFail(
      (definitions) => definitions.length > 0,
      () => new UsageError({ message: `--jobs ${path}: the module exports no JobQueue.define(...) definitions` })
    )
  )

const replay = (options: CliOptions) =>
  Command.make(
    "replay",
    {
      databaseUrl,
      json,
      ids: ids("Entries to replay"),
      all: Options.boolean("all").pipe(
        Options.withDescription("Replay every pending entry matching the filters (oldest first) instead of ids")
      ),
      queue,
      kind,
      errorTag,
      since,
      limit: Options.integer("limit").pipe(
        Options.withDescription(`With --all: replay at most this many entries (default ${DEFAULT_BULK_LIMIT})`),
        Options.optional
      ),
      payload: Options.text("payload").pipe(
        Options.withDescription(
          "With exactly one id: replay with this JSON payload instead, validated by the kind's Schema (see --jobs)"
        ),
        Options.optional
      ),
      jobs: jobsModule
    },
    (input) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const filters = hasFilter(input)
        if (input.all && input.ids.length > 0) {
          return yield* new UsageError({ message: "Give ids or --all with filters, not both" })
        }
        if (!input.all && input.ids.length === 0) {
          return yield* new UsageError({ message: "Give the ids to replay, or --all (with --queue, --error-tag, …)" })
        }
        if (!input.all && (filters || Option.isSome(input.limit))) {
          return yield* new UsageError({ message: "Filters and --limit select entries for --all; with ids, drop them" })
        }
        if (Option.isSome(input.payload) && (input.all || input.ids.length !== 1)) {
          return yield* new UsageError({ message: "--payload edits one entry: give exactly one id" })
        }
        const limit = Option.getOrElse(input.limit, () => DEFAULT_BULK_LIMIT)
        if (limit < 1) return yield* new UsageError({ message: `--limit ${limit} must be at least 1` })
        const filter = yield* filterOf(input, new Date(now))
        const edited = Option.isSome(input.payload)
          ? Option.some(yield* parse.payload(input.payload.value))
          : Option.none()
        const definitions = [
          ...new Map(
            [...(options.jobs ?? []), ...(Option.isSome(input.jobs) ? yield* loadDefinitions(input.jobs.value) : [])]
              .map((definition) => [definition.kind, definition])
          ).values()
        ]
        const wanted = yield* checkIds(input.ids)

        const lines = yield* connect(input.databaseUrl, definitions, ({ service, withQueues }) =>
          Effect.gen(function*() {
            if (input.all) {
              // Only entries dead-lettered before this command started: a replayed job that dies again at once
              // becomes a new entry, which must not be replayed again by the same run (a poison loop).
              const until = new Date(now)
              const done: Array<ReplayLine> = []
              while (done.length < limit) {
                const batch = yield* DeadLetter.replayWhere({
                  ...filter,
                  until,
                  limit: Math.min(PAGE, limit - done.length)
                }).pipe(
                  Effect.provideService(JobQueue.JobQueue, service),
                  Effect.catchTags({
                    InvalidOptionsError: (error) => Effect.fail(new UsageError({ message: error.message })),
                    JobStoreError: (error) => Effect.fail(storeFailed(error))
                  })
                )
                done.push(...batch.map(replayLine))
                if (!batch.some((result) => result._tag === "Replayed" && result.created)) break
              }
              return done
            }
            // By id: every id must exist and none may be discarded, or nothing is replayed.
            const entries = yield* fetchEntries(service, wanted)
            const discarded = entries.filter((entry) => entry.status === "discarded").map((entry) => entry.id)
            if (discarded.length > 0) {
              return yield* new UsageError({
                message: `Cannot replay discarded ${discarded.length === 1 ? "entry" : "entries"} ${
                  discarded.join(", ")
                }`
              })
            }
            const entry = entries[0]
            if (Option.isSome(edited) && entry !== undefined) {
              if (!definitions.some((definition) => definition.kind === entry.kind)) {
                return yield* new UsageError({
                  message: `--payload for kind "${entry.kind}" needs its Schema: pass --jobs <module> exporting ` +
                    `its JobQueue.define(...) definition`
                })
              }
              // The edited payload is checked against its queue's settings too (its size limit), so that queue must
              // be configured even when it holds nothing else right now.
              const result = yield* DeadLetter.replay(entry.id, { payload: edited.value }).pipe(
                Effect.provideService(JobQueue.JobQueue, yield* withQueues([entry.queue])),
                Effect.mapError(replayError)
              )
              return [replayLine(result)]
            }
            const results = yield* DeadLetter.replayMany(wanted).pipe(
              Effect.provideService(JobQueue.JobQueue, service),
              Effect.mapError(storeFailed)
            )
            return results.map(replayLine)
          }))

        if (input.json) {
          yield* print(parse.toJson({ results: lines }))
        } else if (lines.length === 0) {
          yield* print("Nothing to replay: no pending entry matches.")
        } else {
          for (const line of lines) yield* print(describeReplay(line))
          yield* print(`\n${summary(lines)}`)
        }
      })
  ).pipe(Command.withDescription("Replay entries as fresh jobs in their source queues (idempotent per entry)"))

// -----------------------------------------------------------------------------
// bulwark dlq discard
// -----------------------------------------------------------------------------

const discard = Command.make(
  "discard",
  {
    databaseUrl,
    json,
    ids: ids("Entries to discard"),
    all: Options.boolean("all").pipe(
      Options.withDescription("Discard every pending entry matching the filters instead of ids")
    ),
    queue,
    kind,
    errorTag,
    since,
    limit: Options.integer("limit").pipe(
      Options.withDescription(`With --all: discard at most this many entries (default ${DEFAULT_BULK_LIMIT})`),
      Options.optional
    ),
    yes: Options.boolean("yes").pipe(
      Options.withAlias("y"),
      Options.withDescription("Really discard (without it, nothing is changed and the command says what it would do)")
    )
  },
  (input) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      if (input.all && input.ids.length > 0) {
        return yield* new UsageError({ message: "Give ids or --all with filters, not both" })
      }
      if (!input.all && input.ids.length === 0) {
        return yield* new UsageError({ message: "Give the ids to discard, or --all (with --queue, --error-tag, …)" })
      }
      if (!input.all && (hasFilter(input) || Option.isSome(input.limit))) {
        return yield* new UsageError({ message: "Filters and --limit select entries for --all; with ids, drop them" })
      }
      const limit = Option.getOrElse(input.limit, () => DEFAULT_BULK_LIMIT)
      if (limit < 1) return yield* new UsageError({ message: `--limit ${limit} must be at least 1` })
      const filter = yield* filterOf(input, new Date(now))
      const wanted = yield* checkIds(input.ids)

      const results = yield* connect(input.databaseUrl, [], ({ service }) =>
        Effect.gen(function*() {
          let selected: ReadonlyArray<string> = []
          if (input.all) {
            selected = yield* pendingIds(service, { ...filter, until: new Date(now) }, limit)
          } else {
            // By id: every id must exist and none may be replayed, or nothing is discarded.
            const entries = yield* fetchEntries(service, wanted)
            const replayed = entries.filter((entry) => entry.status === "replayed").map((entry) => entry.id)
            if (replayed.length > 0) {
              return yield* new UsageError({
                message: `Cannot discard replayed ${replayed.length === 1 ? "entry" : "entries"} ${replayed.join(", ")}`
              })
            }
            selected = entries.map((entry) => entry.id)
          }
          if (!input.yes) {
            return yield* new UsageError({
              message: selected.length === 0
                ? "Nothing would be discarded: no pending entry matches"
                : `Would discard ${selected.length} ${selected.length === 1 ? "entry" : "entries"} ` +
                  `(${selected.slice(0, 20).join(", ")}${selected.length > 20 ? ", …" : ""}); ` +
                  "nothing was changed: re-run with --yes to discard"
            })
          }
          if (selected.length === 0) return []
          return yield* DeadLetter.discardMany(selected).pipe(
            Effect.provideService(JobQueue.JobQueue, service),
            Effect.mapError(storeFailed)
          )
        }))

      const lines = results.map((result) => ({
        id: result.id,
        queue: Option.getOrNull(result.queue),
        outcome: result.outcome
      }))
      if (input.json) {
        yield* print(parse.toJson({ results: lines }))
      } else if (lines.length === 0) {
        yield* print("Nothing to discard: no pending entry matches.")
      } else {
        for (const line of lines) yield* print(`${line.id}: ${line.outcome.replace(/_/g, " ")}`)
        yield* print(`\n${summary(lines)}`)
      }
    })
).pipe(Command.withDescription("Discard entries (kept for audit as discarded); needs --yes"))

/** Ids of pending entries matching a filter, oldest first, at most `limit`. */
const pendingIds = (
  service: JobQueue.JobQueue,
  filter: DeadLetter.Filter,
  limit: number
): Effect.Effect<ReadonlyArray<string>, UsageError | DatabaseError> =>
  Effect.gen(function*() {
    const found: Array<string> = []
    let cursor: string | undefined = undefined
    while (found.length < limit) {
      const result: DeadLetter.Page = yield* DeadLetter.list({
        ...filter,
        status: "pending",
        order: "oldest",
        limit: Math.min(1000, limit - found.length),
        ...(cursor === undefined ? {} : { cursor })
      })
      found.push(...result.entries.map((entry) => entry.id))
      if (Option.isNone(result.next)) break
      cursor = result.next.value
    }
    return found
  }).pipe(
    Effect.provideService(JobQueue.JobQueue, service),
    Effect.catchTags({
      InvalidOptionsError: (error) => Effect.fail(new UsageError({ message: error.message })),
      JobStoreError: (error) => Effect.fail(storeFailed(error))
    })
  )

// -----------------------------------------------------------------------------
// bulwark queues stats
// -----------------------------------------------------------------------------

const stats = Command.make(
  "stats",
  { databaseUrl, json },
  (input) =>
    Effect.gen(function*() {
      // The store's own counts: every queue that has jobs or pending dead letters (not the CLI's placeholder).
      const rows = yield* connect(input.databaseUrl, [], ({ service }) =>
        Effect.mapError(service.store.stats, storeFailed))
      yield* print(input.json ? parse.toJson(render.statsJson(rows)) : render.stats(rows))
    })
).pipe(Command.withDescription("Jobs per queue and state, and dead-letter depth"))

// -----------------------------------------------------------------------------
// The tree
// -----------------------------------------------------------------------------

const pickSubcommand = (parent: string, children: ReadonlyArray<string>) =>
  Effect.fail(
    new UsageError({
      message: `Missing subcommand: ${["bulwark", parent, children.join("|")].filter((part) => part !== "").join(" ")}`,
      showUsage: true
    })
  )

/** @internal */
export const command = (options: CliOptions = {}) =>
  Command.make("bulwark", {}, () => pickSubcommand("", ["dlq", "queues"])).pipe(
    Command.withDescription("Operate Bulwark's Postgres job queue: dead letters and queue depth"),
    Command.withSubcommands([
      Command.make("dlq", {}, () => pickSubcommand("dlq", ["list", "show", "replay", "discard"])).pipe(
        Command.withDescription("The dead-letter queue"),
        Command.withSubcommands([list, show, replay(options), discard])
      ),
      Command.make("queues", {}, () => pickSubcommand("queues", ["stats"])).pipe(
        Command.withDescription("Queue depth"),
        Command.withSubcommands([stats])
      )
    ])
  )

// -----------------------------------------------------------------------------
// Usage, printed under a malformed command line
// -----------------------------------------------------------------------------

interface Leaf {
  readonly name: string
  readonly usage: Usage.Usage
}

/** The name is typed as the command's own, so the two cannot drift apart. */
const leaf = <Name extends string, R, E, A>(name: Name, self: Command.Command<Name, R, E, A>): Leaf => ({
  name,
  usage: Command.getUsage(self)
})

/** The tree of {@link command}, for usage: a leaf's usage does not depend on the CLI's options. */
const groups: ReadonlyArray<{ readonly name: string; readonly leaves: ReadonlyArray<Leaf> }> = [
  {
    name: "dlq",
    leaves: [leaf("list", list), leaf("show", show), leaf("replay", replay({})), leaf("discard", discard)]
  },
  { name: "queues", leaves: [leaf("stats", stats)] }
]

/**
 * The usage of the command the arguments name, or of every command under the
 * group they name, or of all of them: `bulwark dlq list --frob` shows
 * `bulwark dlq list …`, `bulwark dlq explode` the four `dlq` commands.
 */
const usage = (args: ReadonlyArray<string>): HelpDoc.HelpDoc => {
  const [first, second] = args
  const group = groups.find((candidate) => candidate.name === first)
  const named = group?.leaves.find((candidate) => candidate.name === second)
  const shown = group === undefined
    ? groups.flatMap(({ leaves, name }) => leaves.map((leaf) => [name, leaf] as const))
    : group.leaves.filter((leaf) => named === undefined || leaf === named).map((leaf) => [group.name, leaf] as const)
  const path = ["bulwark", ...(group === undefined ? [] : [group.name]), ...(named === undefined ? [] : [named.name])]
  return HelpDoc.blocks([
    HelpDoc.h1("USAGE"),
    ...shown.flatMap(([name, leaf]) =>
      Usage.enumerate(leaf.usage, CliConfig.defaultConfig).map((span) =>
        HelpDoc.p(Span.concat(Span.text(`$ bulwark ${name} `), span))
      )
    ),
    HelpDoc.p(`Run '${path.join(" ")} --help' for ${named === undefined ? "the commands and options" : "the options"}.`)
  ])
}

const printUsage = (argv: ReadonlyArray<string>) => Console.error(HelpDoc.toAnsiText(usage(argv.slice(2))))

/**
 * Runs the CLI on `argv` (as `process.argv`: node, script, arguments…) and
 * answers the exit code. Errors are printed to stderr as one line; @effect/cli
 * prints its own for a malformed command line, and the usage follows it. Help,
 * errors and output are plain text on a stream that is not a terminal, or when
 * `NO_COLOR` is set.
 *
 * @internal
 */
export const run = (options: CliOptions = {}) => {
  const tree = command(options)
  return (argv: ReadonlyArray<string>) =>
    Effect.flatMap(version, (version) => Command.run(tree, { name: "bulwark", version })(argv)).pipe(
      Effect.as<ExitCode>(ExitCode.ok),
      Effect.catchIf(ValidationError.isValidationError, () => Effect.as(printUsage(argv), ExitCode.usage)),
      Effect.catchAll((error: CliError) =>
        Effect.as(
          error._tag === "UsageError" && error.showUsage === true
            ? Effect.zipRight(Console.error(`bulwark: ${error.message}\n`), printUsage(argv))
            : Console.error(`bulwark: ${error.message}`),
          exitCodeOf(error)
        )
      ),
      output.withPlainOutput
    )
}
