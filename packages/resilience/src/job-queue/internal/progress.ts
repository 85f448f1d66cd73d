/**
 * A running job's progress, as handlers report it (`JobWorker.progress`) and backends store it, in a leaf module:
 * the stores build it, and `JobQueue` re-exports it unchanged.
 */
import * as Cause from "effect/Cause"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { ProgressReport } from "../JobStore.js"
import { truncate } from "./status.js"

/**
 * The latest progress a job's handler reported: `value` is a percentage from
 * 0 to 100, `message` a short note (at most 256 characters), `attempt` the
 * attempt that reported it, `updatedAt` when the backend stored it (its own
 * clock). Persisted as JSON, hence a Schema class. It is kept once the job
 * finished, so a succeeded job shows where it ended and a failed one where it
 * stopped.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { JobQueue } from "@bulwark/resilience"
 *
 * const showProgress = (id: string) =>
 *   JobQueue.status(id).pipe(
 *     Effect.map(Option.flatMap((info) => info.progress)),
 *     Effect.tap(Option.match({
 *       onNone: () => Effect.log("no progress reported"),
 *       onSome: (p) => Effect.log(`${p.value}% ${Option.getOrElse(p.message, () => "")}`)
 *     }))
 *   )
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export class JobProgress extends Schema.Class<JobProgress>("@bulwark/resilience/JobQueue/JobProgress")({
  value: Schema.Number,
  message: Schema.OptionFromNullOr(Schema.String),
  attempt: Schema.Number,
  updatedAt: Schema.Date
}) {}

/** Progress messages are cut to this many characters before they are stored. @internal */
export const MAX_PROGRESS_MESSAGE = 256

/**
 * A report from what a handler passed: the value clamped to 0–100, the message cut to
 * {@link MAX_PROGRESS_MESSAGE} characters; `NaN` is a bug in the handler (a defect).
 *
 * @internal
 */
export const progressReport = (
  value: number,
  message: string | undefined
): Either.Either<ProgressReport, Cause.IllegalArgumentException> =>
  typeof value !== "number" || Number.isNaN(value)
    ? Either.left(new Cause.IllegalArgumentException(`JobWorker.progress: ${String(value)} is not a number`))
    : Either.right({
      value: Math.min(100, Math.max(0, value)),
      message: Option.map(Option.fromNullable(message), (text) => truncate(String(text), MAX_PROGRESS_MESSAGE))
    })
