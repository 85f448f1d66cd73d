/**
 * `bulwark dlq replay`: entries become fresh jobs in their source queues, by
 * id (one of them with an edited `--payload`, checked by its kind's Schema
 * from `--jobs` or the embedding application's definitions) or `--all` by
 * filters. Also how a `--jobs` module is loaded.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import * as DeadLetter from "../../job-queue/DeadLetter.js"
import * as JobQueue from "../../job-queue/JobQueue.js"
import type { Options as CliOptions } from "../Cli.js"
import { connect, databaseUrl, json, print, storeFailed } from "./common.js"
import * as dlq from "./dlq.js"
import { type CliError, NotFoundError, UsageError } from "./errors.js"
import * as parse from "./parse.js"
import * as render from "./render.js"

/** Entries one statement of an `--all` run replays. */
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

const jobsModule = Options.text("jobs").pipe(
  Options.withDescription(
    "A module exporting your JobQueue.define(...) definitions: their Schemas validate an edited --payload"
  ),
  Options.optional
)

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

/** @internal */
export const replay = (options: CliOptions) =>
  Command.make(
    "replay",
    {
      databaseUrl,
      json,
      ...dlq.selection("replay", "Replay every pending entry matching the filters (oldest first) instead of ids"),
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
        yield* dlq.checkSelection("replay", input)
        if (Option.isSome(input.payload) && (input.all || input.ids.length !== 1)) {
          return yield* new UsageError({ message: "--payload edits one entry: give exactly one id" })
        }
        const limit = yield* dlq.limitOf(input)
        const filter = yield* dlq.filterOf(input, new Date(now))
        const edited = Option.isSome(input.payload)
          ? Option.some(yield* parse.payload(input.payload.value))
          : Option.none()
        const definitions = [
          ...new Map(
            [...(options.jobs ?? []), ...(Option.isSome(input.jobs) ? yield* loadDefinitions(input.jobs.value) : [])]
              .map((definition) => [definition.kind, definition])
          ).values()
        ]
        const wanted = yield* dlq.checkIds(input.ids)

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
                  dlq.queryFailed
                )
                done.push(...batch.map(replayLine))
                if (!batch.some((result) => result._tag === "Replayed" && result.created)) break
              }
              return done
            }
            // By id: every id must exist and none may be discarded, or nothing is replayed.
            const entries = yield* dlq.fetchActionable(service, wanted, "replay", "discarded")
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
          yield* print(`\n${render.summary(lines)}`)
        }
      })
  ).pipe(Command.withDescription("Replay entries as fresh jobs in their source queues (idempotent per entry)"))
