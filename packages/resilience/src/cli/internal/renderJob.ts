/**
 * How `bulwark jobs show` and `bulwark jobs cancel` print: the `--json`
 * documents (plain objects, `null` for absent values, ISO times) and the text
 * for people.
 */
import * as Option from "effect/Option"
import type { CancelResult, JobInfo, JobProgress } from "../../job-queue/JobQueue.js"
import { attemptJson, attempts, iso, pretty } from "./render.js"
import * as table from "./table.js"

const orNull = <A>(option: Option.Option<A>): A | null => Option.getOrNull(option)

const progressJson = (progress: JobProgress) => ({
  value: progress.value,
  message: orNull(progress.message),
  attempt: progress.attempt,
  updatedAt: progress.updatedAt
})

/** @internal */
export const jobJson = (job: JobInfo) => ({
  id: job.id,
  queue: job.queue,
  kind: job.kind,
  status: job.status,
  priority: job.priority,
  attempts: job.attempts,
  maxAttempts: job.maxAttempts,
  dedupKey: orNull(job.dedupKey),
  enqueuedAt: job.enqueuedAt,
  runAt: job.runAt,
  startedAt: orNull(job.startedAt),
  finishedAt: orNull(job.finishedAt),
  leaseOwner: orNull(job.leaseOwner),
  leaseExpiresAt: orNull(job.leaseExpiresAt),
  replayOf: orNull(job.replayOf),
  progress: orNull(Option.map(job.progress, progressJson)),
  // `null` is a result too: `hasResult` tells it from none.
  hasResult: Option.isSome(job.result),
  result: orNull(job.result),
  payload: job.payload,
  errors: job.errors.map(attemptJson)
})

const percent = (value: number): string => `${Number.isInteger(value) ? value : value.toFixed(1)}%`

/** @internal */
export const job = (job: JobInfo): string => {
  const optional = (option: Option.Option<string>) => Option.getOrElse(option, () => "-")
  const time = (option: Option.Option<Date>) => Option.match(option, { onNone: () => "-", onSome: iso })
  const lease = Option.match(job.leaseOwner, {
    onNone: () => "-",
    onSome: (owner) => `${owner} until ${time(job.leaseExpiresAt)}`
  })
  const progress = Option.match(job.progress, {
    onNone: () => "-",
    onSome: (p) =>
      `${percent(p.value)}${Option.match(p.message, { onNone: () => "", onSome: (m) => ` ${m}` })} ` +
      `(attempt ${p.attempt}, ${iso(p.updatedAt)})`
  })
  const header = table.fields([
    ["id", job.id],
    ["status", job.status],
    ["queue", job.queue],
    ["kind", job.kind],
    ["attempts", `${job.attempts} of ${job.maxAttempts}`],
    ["priority", String(job.priority)],
    ["dedup key", optional(job.dedupKey)],
    ["progress", progress],
    ["enqueued at", iso(job.enqueuedAt)],
    ["run at", iso(job.runAt)],
    ["started at", time(job.startedAt)],
    ["finished at", time(job.finishedAt)],
    ["lease", lease],
    ["replay of", optional(job.replayOf)]
  ])
  const result = Option.match(job.result, { onNone: () => "  (none)", onSome: (value) => table.indent(pretty(value)) })
  return `Job ${job.id}\n\n${table.indent(header)}\n\npayload:\n${
    table.indent(pretty(job.payload))
  }\n\nresult:\n${result}` +
    `\n\nattempts (oldest first):\n${attempts(job.errors)}`
}

/** The outcome of a cancel as `--json` and the summary line print it. @internal */
export const cancelOutcome = (result: CancelResult): string => {
  switch (result._tag) {
    case "Cancelled":
      return "cancelled"
    case "AlreadyFinished":
      return `already_${result.status}`
    case "NotFound":
      return "not_found"
  }
}

/** @internal */
export const cancelJson = (result: CancelResult) => ({
  id: result.id,
  outcome: cancelOutcome(result),
  queue: result._tag === "NotFound" ? null : result.queue,
  previous: result._tag === "Cancelled" ? result.previous : null
})

/** @internal */
export const cancelled = (result: CancelResult & { readonly _tag: "Cancelled" }): string =>
  result.previous === "running"
    ? `Job ${result.id}: cancelled (it was running: its worker interrupts it within about a second)`
    : `Job ${result.id}: cancelled (it was ${result.previous}; it will not run)`
