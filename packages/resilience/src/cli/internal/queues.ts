/**
 * `bulwark queues`: `stats` (jobs per queue and state — ready, scheduled,
 * retrying, running —, pending dead letters, the age of the oldest ready job,
 * and whether the queue is paused), `pause <queue>` and `resume <queue>`.
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as check from "../../internal/options.js"
import { connect, databaseUrl, json, print, storeFailed } from "./common.js"
import { UsageError } from "./errors.js"
import * as parse from "./parse.js"
import * as render from "./render.js"

/** @internal */
export const stats = Command.make(
  "stats",
  { databaseUrl, json },
  (input) =>
    Effect.gen(function*() {
      // The store's own counts: every queue that has jobs or pending dead letters (not the CLI's placeholder).
      const rows = yield* connect(input.databaseUrl, [], ({ service }) =>
        Effect.mapError(service.store.stats, storeFailed))
      yield* print(input.json ? parse.toJson(render.statsJson(rows)) : render.stats(rows))
    })
).pipe(Command.withDescription("Jobs per queue and state, dead-letter depth, and paused queues"))

const queueArg = (verb: string) => Args.text({ name: "queue" }).pipe(Args.withDescription(`The queue to ${verb}`))

/**
 * `pause` and `resume`: one store call on the named queue. The CLI does not know the application's queues, so any
 * well-formed name is accepted; one the database has never seen (no job, dead letter or pause) is said so, in case
 * it is a typo.
 */
const toggle = (action: "pause" | "resume") =>
  Command.make(
    action,
    { databaseUrl, json, queue: queueArg(action) },
    (input) =>
      Effect.gen(function*() {
        const queue = yield* Either.match(check.name({ component: "bulwark", option: "queue" }, input.queue), {
          onLeft: (error) =>
            Effect.fail(
              new UsageError({ message: `Not a queue name: ${JSON.stringify(input.queue)} (${error.expected})` })
            ),
          onRight: Effect.succeed
        })
        const { changed, known } = yield* connect(input.databaseUrl, [], ({ service }) =>
          Effect.gen(function*() {
            const known = service.config.queues.has(queue)
            const operation = action === "pause" ? service.store.pause : service.store.resume
            const changed = yield* Effect.mapError(operation(queue), storeFailed)
            return { changed, known }
          }))
        const paused = action === "pause"
        if (input.json) return yield* print(parse.toJson({ queue, paused, changed, known }))
        const done = paused
          ? changed
            ? `Paused queue ${queue}: no worker claims its jobs until \`bulwark queues resume ${queue}\`; ` +
              "jobs already running finish."
            : `Queue ${queue} was already paused.`
          : changed
          ? `Resumed queue ${queue}: its workers were woken and claim its jobs again.`
          : `Queue ${queue} was not paused.`
        yield* print(known ? done : `${done}\nNote: queue ${queue} has no jobs or dead letters: check its name.`)
      })
  ).pipe(
    Command.withDescription(
      action === "pause"
        ? "Pause a queue: every worker stops claiming its jobs (running jobs finish)"
        : "Resume a paused queue and wake its workers"
    )
  )

/** @internal */
export const pause = toggle("pause")

/** @internal */
export const resume = toggle("resume")
