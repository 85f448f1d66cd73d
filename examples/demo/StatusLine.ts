/**
 * The one live line: elapsed time, phase, throughput, answers by status,
 * breaker states, client retries, queue and DLQ depth. On a terminal it is
 * redrawn in place (`\r` + clear line); elsewhere (CI logs) a plain line is
 * printed every few seconds instead.
 */

export interface QueueDepth {
  readonly ready: number
  readonly scheduled: number
  readonly running: number
}

export interface StatusSnapshot {
  readonly elapsedMs: number
  /** The phase, or "serve" after the report. */
  readonly phase: string
  /** Sends answered (or given up) per second, lately. */
  readonly requestsPerSecond: number
  /** Final answers by status ("201", "202", "409", "422", "5xx", "gave up"). */
  readonly statusCounts: ReadonlyMap<string, number>
  readonly breakers: ReadonlyArray<{ readonly name: string; readonly state: string }>
  /** Retries the client made (same key, after a transient answer). */
  readonly retries: number
  readonly queue: QueueDepth
  readonly deadLetters: number
  /** Payments the service holds as pending. */
  readonly pending: number
}

const ORDER = ["201", "202", "400", "409", "422", "5xx", "gave up"]

const byOrder = (a: string, b: string): number => {
  const rank = (key: string) => ORDER.includes(key) ? ORDER.indexOf(key) : ORDER.length
  return rank(a) - rank(b) || a.localeCompare(b)
}

export const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

/** A breaker's name without its host (`gateway/127.0.0.1:4242` → `gateway`): the line is short on room. */
const shortName = (name: string): string => name.split("/")[0] ?? name

const full = (snapshot: StatusSnapshot, statuses: string, breakers: string): string =>
  [
    `${seconds(snapshot.elapsedMs).padStart(6)} ${snapshot.phase.padEnd(8)}`,
    `${snapshot.requestsPerSecond.toFixed(1).padStart(5)} req/s`,
    statuses === "" ? "no answers yet" : statuses,
    `breaker ${breakers}`,
    `retries ${snapshot.retries}`,
    `pending ${snapshot.pending}`,
    `queue ${snapshot.queue.ready} ready ${snapshot.queue.scheduled} scheduled ${snapshot.queue.running} running`,
    `DLQ ${snapshot.deadLetters}`
  ].join(" │ ")

/** The same facts in about 80 columns. */
const compact = (snapshot: StatusSnapshot, statuses: string, breakers: string): string =>
  [
    `${seconds(snapshot.elapsedMs)} ${snapshot.phase}`,
    `${snapshot.requestsPerSecond.toFixed(0)}/s`,
    statuses === "" ? "-" : statuses,
    breakers,
    `retry ${snapshot.retries}`,
    `pend ${snapshot.pending}`,
    `q ${snapshot.queue.ready}/${snapshot.queue.scheduled}/${snapshot.queue.running}`,
    `DLQ ${snapshot.deadLetters}`
  ].join("│")

/**
 * The line, without colour. Given a terminal width, a line that does not fit is given in its compact form (no
 * labels, short names), and cut with "…" if even that does not fit.
 */
export const format = (snapshot: StatusSnapshot, width?: number): string => {
  const answers = [...snapshot.statusCounts].sort(([a], [b]) => byOrder(a, b))
  const statuses = answers.map(([status, count]) => `${status}:${count}`).join(" ")
  const breakers = snapshot.breakers.length === 0
    ? "?"
    : snapshot.breakers.map((breaker) => `${shortName(breaker.name)} ${breaker.state}`).join(", ")
  const line = full(snapshot, statuses, breakers)
  if (width === undefined || width <= 1 || line.length <= width) return line
  const short = compact(snapshot, statuses, breakers)
  return short.length > width ? short.slice(0, width - 1) + "…" : short
}

/** What to write for an update: a redraw in place on a terminal, a whole line otherwise. */
export const render = (line: string, tty: boolean): string => tty ? `\r\x1b[2K${line}` : `${line}\n`

/** Ends a redrawn line so that what follows starts on a line of its own. */
export const finish = (tty: boolean): string => tty ? "\n" : ""
