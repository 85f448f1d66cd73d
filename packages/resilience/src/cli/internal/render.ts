/**
 * How results print: the `--json` documents (plain objects, `null` for absent
 * values, ISO times) and the text for people (tables, an entry's envelope,
 * the outcome summary of `replay` and `discard`).
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import type * as DeadLetter from "../../job-queue/DeadLetter.js"
import type { AttemptError, QueueStats } from "../../job-queue/JobQueue.js"
import * as table from "./table.js"

// -----------------------------------------------------------------------------
// JSON shapes (`--json`): plain objects, `null` for absent values, ISO times
// -----------------------------------------------------------------------------

const orNull = <A>(option: Option.Option<A>): A | null => Option.getOrNull(option)

/** @internal */
export const attemptJson = (error: AttemptError) => ({
  attempt: error.attempt,
  tag: error.tag,
  message: error.message,
  verdict: error.verdict,
  workerId: error.workerId,
  startedAt: error.startedAt,
  failedAt: error.failedAt,
  cause: error.cause
})

/** @internal */
export const entryJson = (entry: DeadLetter.Entry, options: { readonly full: boolean }) => {
  const last = entry.errors.at(-1)
  return {
    id: entry.id,
    queue: entry.queue,
    kind: entry.kind,
    status: entry.status,
    reason: entry.reason,
    attempts: entry.attempts,
    maxAttempts: entry.maxAttempts,
    priority: entry.priority,
    dedupKey: orNull(entry.dedupKey),
    errorTag: last?.tag ?? null,
    errorMessage: last?.message ?? null,
    enqueuedAt: entry.enqueuedAt,
    deadLetteredAt: entry.deadLetteredAt,
    replayedAs: orNull(entry.replayedAs),
    replayedAt: orNull(entry.replayedAt),
    discardedAt: orNull(entry.discardedAt),
    replayOf: orNull(entry.replayOf),
    payload: entry.payload,
    ...(options.full ? { errors: entry.errors.map(attemptJson) } : {})
  }
}

/** @internal */
export const statsJson = (stats: ReadonlyArray<QueueStats>) => ({
  queues: stats.map((queue) => ({
    queue: queue.queue,
    ready: queue.ready,
    scheduled: queue.scheduled,
    retrying: queue.retrying,
    running: queue.running,
    deadLetters: queue.deadLetters,
    oldestReadyAgeMs: Option.match(queue.oldestReadyAge, { onNone: () => null, onSome: Duration.toMillis }),
    paused: queue.paused
  })),
  totals: totals(stats)
})

const totals = (stats: ReadonlyArray<QueueStats>) =>
  stats.reduce(
    (sum, queue) => ({
      ready: sum.ready + queue.ready,
      scheduled: sum.scheduled + queue.scheduled,
      retrying: sum.retrying + queue.retrying,
      running: sum.running + queue.running,
      deadLetters: sum.deadLetters + queue.deadLetters
    }),
    { ready: 0, scheduled: 0, retrying: 0, running: 0, deadLetters: 0 }
  )

// -----------------------------------------------------------------------------
// Human output
// -----------------------------------------------------------------------------

/**
 * "42s ago", "3m ago", "5h ago", "2d ago": enough to triage, exact times are
 * in `show` and `--json`.
 *
 * @internal
 */
export const age = (at: Date, now: number): string => {
  const seconds = Math.max(0, Math.round((now - at.getTime()) / 1000))
  if (seconds < 90) return `${seconds}s ago`
  const minutes = Math.round(seconds / 60)
  if (minutes < 90) return `${minutes}m ago`
  const hours = Math.round(minutes / 60)
  if (hours < 36) return `${hours}h ago`
  return `${Math.round(hours / 24)}d ago`
}

/**
 * The last line of `replay` and `discard`: how many entries had each outcome
 * ("2 replayed, 1 already replayed").
 *
 * @internal
 */
export const summary = (lines: ReadonlyArray<{ readonly outcome: string }>): string => {
  const counts = new Map<string, number>()
  for (const line of lines) counts.set(line.outcome, (counts.get(line.outcome) ?? 0) + 1)
  return [...counts].map(([outcome, count]) => `${count} ${outcome.replace(/_/g, " ")}`).join(", ")
}

/** @internal */
export const duration = (millis: number): string => {
  if (millis < 1000) return `${Math.round(millis)}ms`
  if (millis < 90_000) return `${(millis / 1000).toFixed(1)}s`
  if (millis < 5_400_000) return `${Math.round(millis / 60_000)}m`
  return `${(millis / 3_600_000).toFixed(1)}h`
}

/** @internal */
export const iso = (date: Date): string => date.toISOString()

const lastError = (entry: DeadLetter.Entry): AttemptError | undefined => entry.errors.at(-1)

/** @internal */
export const page = (result: DeadLetter.Page, now: number): string => {
  if (result.entries.length === 0) return "No dead-letter entries match."
  const rows = table.render<DeadLetter.Entry>([
    { header: "ID", cell: (entry) => entry.id, align: "right" },
    { header: "QUEUE", cell: (entry) => entry.queue, maxWidth: 24 },
    { header: "KIND", cell: (entry) => entry.kind, maxWidth: 28 },
    { header: "ERROR", cell: (entry) => lastError(entry)?.tag ?? "-", maxWidth: 28 },
    { header: "ATTEMPTS", cell: (entry) => `${entry.attempts}/${entry.maxAttempts}`, align: "right" },
    { header: "DIED", cell: (entry) => age(entry.deadLetteredAt, now), align: "right" },
    { header: "STATUS", cell: (entry) => entry.status },
    { header: "MESSAGE", cell: (entry) => lastError(entry)?.message ?? "", maxWidth: 60 }
  ], result.entries)
  const more = Option.match(result.next, {
    onNone: () => "",
    onSome: (cursor) => `\n\nMore entries: repeat with --cursor ${cursor}`
  })
  return `${rows}${more}`
}

/** @internal */
export const pretty = (value: unknown): string => {
  try {
    return JSON.stringify(value, null, 2) ?? String(value)
  } catch {
    return String(value)
  }
}

/** Stack lines of an attempt's cause shown by `show`; `--json` carries the whole cause. */
const CAUSE_LINES = 6

/**
 * The cause without the "Tag: message" lines that repeat the message above
 * it, cut to a few lines.
 */
const causeLines = (error: AttemptError): ReadonlyArray<string> => {
  if (error.cause === null) return []
  let text = error.cause
  for (const prefix of [`${error.tag}: ${error.message}`, error.message]) {
    if (text.startsWith(prefix)) {
      text = text.slice(prefix.length)
      break
    }
  }
  const lines = text.split("\n").filter((line) => line.trim().length > 0)
  if (lines.length <= CAUSE_LINES) return lines
  return [...lines.slice(0, CAUSE_LINES), `… ${lines.length - CAUSE_LINES} more lines (--json prints the whole cause)`]
}

/** @internal */
export const entry = (entry: DeadLetter.Entry): string => {
  const optional = (option: Option.Option<string>) => Option.getOrElse(option, () => "-")
  const reason = entry.reason === "exhausted"
    ? `exhausted: ${entry.attempts} of ${entry.maxAttempts} attempts failed`
    : `terminal failure on attempt ${entry.attempts} of ${entry.maxAttempts}`
  const header = table.fields([
    ["id", entry.id],
    ["status", entry.status],
    ["queue", entry.queue],
    ["kind", entry.kind],
    ["reason", reason],
    ["priority", String(entry.priority)],
    ["dedup key", optional(entry.dedupKey)],
    ["enqueued at", iso(entry.enqueuedAt)],
    ["dead-lettered at", iso(entry.deadLetteredAt)],
    ["replay of", optional(entry.replayOf)],
    ["replayed as", optional(entry.replayedAs)],
    ["replayed at", Option.match(entry.replayedAt, { onNone: () => "-", onSome: iso })],
    ["discarded at", Option.match(entry.discardedAt, { onNone: () => "-", onSome: iso })]
  ])
  return `Dead-letter entry ${entry.id}\n\n${table.indent(header)}\n\npayload:\n${
    table.indent(pretty(entry.payload))
  }\n\nattempts (oldest first):\n${attempts(entry.errors)}`
}

/**
 * Every failed attempt, oldest first: when, the error's tag and verdict, the
 * worker, how long it ran, the message and the first lines of its cause.
 *
 * @internal
 */
export const attempts = (errors: ReadonlyArray<AttemptError>): string =>
  errors.length === 0
    ? "  (none recorded)"
    : errors.map((error) => {
      const ran = error.startedAt === null
        ? ""
        : ` after ${duration(error.failedAt.getTime() - error.startedAt.getTime())}`
      const lines = [
        `#${error.attempt}  ${iso(error.failedAt)}  ${error.tag} (${error.verdict}) on ${error.workerId}${ran}`,
        table.indent(error.message, "    ")
      ]
      const cause = causeLines(error)
      if (cause.length > 0) lines.push(table.indent(cause.join("\n"), "    | "))
      return table.indent(lines.join("\n"))
    }).join("\n")

/** @internal */
export const stats = (stats: ReadonlyArray<QueueStats>): string => {
  if (stats.length === 0) return "No queues have jobs or dead letters."
  const sum = totals(stats)
  const total: QueueStats = { queue: "TOTAL", ...sum, oldestReadyAge: Option.none(), paused: false }
  const rows: ReadonlyArray<QueueStats> = [...stats, total]
  return table.render<QueueStats>([
    { header: "QUEUE", cell: (queue) => queue.queue, maxWidth: 40 },
    { header: "READY", cell: (queue) => String(queue.ready), align: "right" },
    { header: "SCHEDULED", cell: (queue) => String(queue.scheduled), align: "right" },
    { header: "RETRYING", cell: (queue) => String(queue.retrying), align: "right" },
    { header: "RUNNING", cell: (queue) => String(queue.running), align: "right" },
    { header: "DEAD LETTERS", cell: (queue) => String(queue.deadLetters), align: "right" },
    {
      header: "OLDEST READY",
      cell: (queue) =>
        Option.match(queue.oldestReadyAge, { onNone: () => "-", onSome: (age) => duration(Duration.toMillis(age)) }),
      align: "right"
    },
    { header: "PAUSED", cell: (queue) => queue === total ? "" : queue.paused ? "yes" : "no" }
  ], rows)
}
