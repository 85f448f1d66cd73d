/**
 * `bulwark jobs show` (one job: state, attempts, every error, progress,
 * result, dedup key, times) and `bulwark jobs cancel` (stops a job that has
 * not finished).
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { connect, databaseUrl, json, print, storeFailed } from "./common.js"
import { checkIds } from "./dlq.js"
import { NotFoundError, UsageError } from "./errors.js"
import * as parse from "./parse.js"
import * as renderJob from "./renderJob.js"

const jobId = (what: string) => Args.text({ name: "id" }).pipe(Args.withDescription(what))

const oneId = (given: string) =>
  Effect.flatMap(
    checkIds([given]),
    (ids) => ids[0] === undefined ? Effect.dieMessage("checkIds returned no id") : Effect.succeed(ids[0])
  )

/** @internal */
export const show = Command.make(
  "show",
  { databaseUrl, json, id: jobId("The job") },
  (input) =>
    Effect.gen(function*() {
      const id = yield* oneId(input.id)
      const found = yield* connect(input.databaseUrl, [], ({ service }) =>
        Effect.mapError(service.status(id), storeFailed))
      if (Option.isNone(found)) {
        return yield* new NotFoundError({ ids: [id], what: "job" })
      }
      yield* print(input.json ? parse.toJson(renderJob.jobJson(found.value)) : renderJob.job(found.value))
    })
).pipe(Command.withDescription("Show one job: state, attempts, every error, progress, result, dedup key, times"))

/**
 * Cancels one job. With `--json` the outcome is printed whatever it is; a job
 * that already succeeded or died is then a usage error (exit 2: nothing was
 * changed), an unknown id a not-found one (exit 3). Cancelling a cancelled job
 * again succeeds.
 *
 * @internal
 */
export const cancel = Command.make(
  "cancel",
  { databaseUrl, json, id: jobId("The job to cancel") },
  (input) =>
    Effect.gen(function*() {
      const id = yield* oneId(input.id)
      const result = yield* connect(input.databaseUrl, [], ({ service }) =>
        Effect.mapError(service.cancel(id), storeFailed))
      if (input.json) {
        yield* print(parse.toJson(renderJob.cancelJson(result)))
      }
      switch (result._tag) {
        case "Cancelled":
          if (!input.json) {
            yield* print(renderJob.cancelled(result))
          }
          return
        case "AlreadyFinished":
          if (result.status === "cancelled") {
            if (!input.json) {
              yield* print(`Job ${id} was already cancelled.`)
            }
            return
          }
          return yield* new UsageError({
            message: `Job ${id} already ${result.status === "dead" ? "died (see bulwark dlq show)" : "succeeded"}: ` +
              "there is nothing to cancel"
          })
        case "NotFound":
          return yield* new NotFoundError({ ids: [id], what: "job" })
      }
    })
).pipe(
  Command.withDescription("Cancel a job that has not finished (a running one is interrupted within about a second)")
)
