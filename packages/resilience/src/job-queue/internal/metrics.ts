/**
 * The queue metrics reporter: depth, oldest ready age, paused and dead-letter gauges, read from the backend by one
 * process per backend and one reader per store in a process.
 *
 * Every reporter of a store in this process (`JobQueue.reportMetrics`, each worker) shares one {@link Reader}: a
 * reporter's tick reads only when no tick of the reader read (or tried to) within that reporter's interval, so the
 * reader reads at the shortest interval asked for (a reporter's first tick reads at once). Before reading, the
 * reader takes or renews the store's `reporterLock` for three of its longest interval (on PostgreSQL a lease row:
 * one process per database); a process without it skips. A reader that stops reading (it lost the lock, or its
 * last reporter left) sets every series it wrote back to 0, so `max by (queue)` across processes is the reading
 * process's value.
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { globalValue } from "effect/GlobalValue"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as check from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import type { JobQueue } from "../JobQueue.js"
import type { JobStore, ReporterLock } from "../JobStore.js"
import { tag } from "./tag.js"

/** The reporter lock is taken for this many of the reporters' longest interval. */
const LEASE_INTERVALS = 3

/** The dead-letter statuses, each a series of `bulwark_dead_letter_entries` for every listed queue. */
const STATUSES = ["pending", "replayed", "discarded"] as const

/** The gauges the reporter writes. */
const gauges = {
  depth: Metrics.jobQueueDepth,
  oldestReady: Metrics.jobQueueOldestReady,
  paused: Metrics.jobQueuePaused,
  deadLetters: Metrics.deadLetterDepth,
  deadLetterEntries: Metrics.deadLetterEntries
} as const

/** One gauge series to write: which gauge, its labels, its value. */
interface Point {
  readonly gauge: keyof typeof gauges
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

/** The reporting state of one store in this process. */
interface Reader {
  /** The interval of each reporter of this store in this process, in ms. */
  readonly intervals: Array<number>
  /** This process's clock at the last read, or attempt to take the lock: the next tick waits its interval. */
  lastTick: number | undefined
  /** Whether the last tick read (the gauges are this process's). */
  leading: boolean
  /** The store's reporter lock, while a reporter is subscribed. */
  lock: { readonly scope: Scope.CloseableScope; readonly lock: ReporterLock } | undefined
  /** One tick at a time. */
  readonly mutex: Effect.Semaphore
  /** Every series written, by metric and labels: a series missing from a read, or all of them on stop, go to 0. */
  readonly series: Map<string, (value: number) => void>
}

const readers = globalValue(
  Symbol.for("@bulwark/resilience/JobQueue/metricsReaders"),
  () => new WeakMap<JobStore, Reader>()
)

const readerOf = (store: JobStore): Reader => {
  let reader = readers.get(store)
  if (reader === undefined) {
    reader = {
      intervals: [],
      lastTick: undefined,
      leading: false,
      lock: undefined,
      mutex: Effect.unsafeMakeSemaphore(1),
      series: new Map()
    }
    readers.set(store, reader)
  }
  return reader
}

const keyOf = (point: Point): string =>
  [point.gauge, ...Object.entries(point.labels).map(([key, value]) => `${key}=${value}`)].join("\u0000")

/** Writes the points, and 0 to every series written before that is not among them. */
const write = (reader: Reader, points: ReadonlyArray<Point>): void => {
  const missing = new Set(reader.series.keys())
  for (const point of points) {
    const key = keyOf(point)
    let update = reader.series.get(key)
    if (update === undefined) {
      update = Metric.gauge(gauges[point.gauge], point.labels)
      reader.series.set(key, update)
    }
    update(point.value)
    missing.delete(key)
  }
  for (const key of missing) reader.series.get(key)?.(0)
}

const zeroAll = (reader: Reader): void => {
  for (const update of reader.series.values()) update(0)
}

/** One read of the backend, as the points of every gauge: every listed queue, with zeros where nothing is. */
const read = (queue: JobQueue) =>
  Effect.map(Effect.all([queue.stats, queue.store.deadLetterCounts]), ([stats, counts]) => {
    const points: Array<Point> = []
    const entries = new Map<string, number>()
    for (const row of stats) {
      const labels = { queue: row.queue }
      points.push(
        { gauge: "depth", labels: { ...labels, state: "ready" }, value: row.ready },
        // Retries waiting out their backoff are not due yet either: the `scheduled` state covers both.
        { gauge: "depth", labels: { ...labels, state: "scheduled" }, value: row.scheduled + row.retrying },
        { gauge: "depth", labels: { ...labels, state: "running" }, value: row.running },
        {
          gauge: "oldestReady",
          labels,
          value: Option.match(row.oldestReadyAge, { onNone: () => 0, onSome: (age) => Duration.toSeconds(age) })
        },
        { gauge: "paused", labels, value: row.paused ? 1 : 0 },
        { gauge: "deadLetters", labels, value: row.deadLetters }
      )
      for (const status of STATUSES) entries.set(`${row.queue}\u0000${status}`, 0)
    }
    for (const count of counts) entries.set(`${count.queue}\u0000${count.status}`, count.count)
    for (const [key, value] of entries) {
      const [queueName = "", status = ""] = key.split("\u0000")
      points.push({ gauge: "deadLetterEntries", labels: { queue: queueName, status }, value })
    }
    return points
  })

/** Gives up reading: the gauges go to 0 (another process, or none, reads now) and the lock is handed back. */
const stop = (reader: Reader): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (reader.leading) zeroAll(reader)
    reader.leading = false
    reader.lastTick = undefined
    const lock = reader.lock
    reader.lock = undefined
    return lock === undefined ? Effect.void : Scope.close(lock.scope, Exit.void)
  })

/** One tick of a reporter; `first`: its first, which reads whenever the last read was (a new reporter wants news). */
const tick = (reader: Reader, queue: JobQueue, intervalMillis: number, first: boolean): Effect.Effect<void> =>
  reader.mutex.withPermits(1)(Effect.gen(function*() {
    const now = yield* Clock.currentTimeMillis
    if (!first && reader.lastTick !== undefined && now - reader.lastTick < intervalMillis) return
    reader.lastTick = now
    if (reader.lock === undefined) {
      const scope = yield* Scope.make()
      reader.lock = { scope, lock: yield* Scope.extend(queue.store.reporterLock, scope) }
    }
    // Renewed at every read: long enough for the slowest reporter's next tick, with room for a late one.
    const ttl = Duration.millis(LEASE_INTERVALS * Math.max(intervalMillis, ...reader.intervals))
    if (!(yield* reader.lock.lock.held(ttl))) {
      if (reader.leading) zeroAll(reader)
      reader.leading = false
      return
    }
    reader.leading = true
    yield* read(queue).pipe(
      Effect.tap((points) => Effect.sync(() => write(reader, points))),
      Effect.catchAll((error) => Effect.logWarning("Could not read job queue depth", error))
    )
  })).pipe(Effect.annotateLogs("module", "JobQueue.reportMetrics"))

/**
 * Subscribes a reporter with this interval to its store's reader while the scope is open.
 *
 * @internal
 */
export const startReporter = (queue: JobQueue, interval: Duration.Duration): Effect.Effect<void, never, Scope.Scope> =>
  Effect.gen(function*() {
    const reader = readerOf(queue.store)
    const millis = Duration.toMillis(interval)
    reader.intervals.push(millis)
    // Added before the loop's fiber, so it runs after that fiber is interrupted.
    yield* Effect.addFinalizer(() =>
      reader.mutex.withPermits(1)(Effect.suspend(() => {
        reader.intervals.splice(reader.intervals.indexOf(millis), 1)
        return reader.intervals.length > 0 ? Effect.void : stop(reader)
      }))
    )
    yield* Effect.forkScoped(
      Effect.zipRight(
        tick(reader, queue, millis, true),
        Effect.schedule(tick(reader, queue, millis, false), Schedule.spaced(interval))
      )
    )
  })

/** Default interval of `reportMetrics` and of workers' reporting. @internal */
export const DEFAULT_INTERVAL: Duration.Duration = Duration.seconds(15)

/** @internal */
export const checkInterval = (
  component: string,
  option: string,
  interval: Duration.DurationInput | undefined
): Either.Either<Duration.Duration, InvalidOptionsError> =>
  check.duration({ component, option }, interval ?? DEFAULT_INTERVAL, { allowZero: false })

/** @internal */
export const reportMetrics = (
  options: { readonly interval?: Duration.DurationInput } = {}
): Effect.Effect<void, InvalidOptionsError, JobQueue | Scope.Scope> =>
  Effect.gen(function*() {
    const interval = yield* Either.match(checkInterval("JobQueue.reportMetrics", "interval", options.interval), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    yield* startReporter(yield* tag, interval)
  })

/** @internal */
export const layerMetrics = (
  options: { readonly interval?: Duration.DurationInput } = {}
): Layer.Layer<never, InvalidOptionsError, JobQueue> => Layer.scopedDiscard(reportMetrics(options))
