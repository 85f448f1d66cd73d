/**
 * `bulwark dlq discard`: marks entries discarded (kept for audit), by id or
 * `--all` by filters. Without `--yes` it changes nothing and says what it
 * would discard.
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as DeadLetter from "../../job-queue/DeadLetter.js"
import * as JobQueue from "../../job-queue/JobQueue.js"
import { connect, databaseUrl, json, print, storeFailed } from "./common.js"
import * as dlq from "./dlq.js"
import { type DatabaseError, UsageError } from "./errors.js"
import * as parse from "./parse.js"
import * as render from "./render.js"

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
    dlq.queryFailed
  )

/** @internal */
export const discard = Command.make(
  "discard",
  {
    databaseUrl,
    json,
    ...dlq.selection("discard", "Discard every pending entry matching the filters instead of ids"),
    yes: Options.boolean("yes").pipe(
      Options.withAlias("y"),
      Options.withDescription("Really discard (without it, nothing is changed and the command says what it would do)")
    )
  },
  (input) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      yield* dlq.checkSelection("discard", input)
      const limit = yield* dlq.limitOf(input)
      const filter = yield* dlq.filterOf(input, new Date(now))
      const wanted = yield* dlq.checkIds(input.ids)

      const results = yield* connect(input.databaseUrl, [], ({ service }) =>
        Effect.gen(function*() {
          // --all: the pending entries that match. By id: every id must exist and none may be replayed, or nothing is
          // discarded.
          const selected = input.all
            ? yield* pendingIds(service, { ...filter, until: new Date(now) }, limit)
            : (yield* dlq.fetchActionable(service, wanted, "discard", "replayed")).map((entry) => entry.id)
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
        yield* print(`\n${render.summary(lines)}`)
      }
    })
).pipe(Command.withDescription("Discard entries (kept for audit as discarded); needs --yes"))
