/**
 * `bulwark queues stats`: jobs per queue and state (ready, scheduled,
 * retrying, running), pending dead letters, and the age of the oldest ready
 * job.
 */
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import { connect, databaseUrl, json, print, storeFailed } from "./common.js"
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
).pipe(Command.withDescription("Jobs per queue and state, and dead-letter depth"))
