import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as check from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import type { JobQueue, QueueStats } from "../JobQueue.js"
import { tag } from "./tag.js"

interface Gauges {
  readonly ready: (value: number) => void
  readonly scheduled: (value: number) => void
  readonly running: (value: number) => void
  readonly deadLetters: (value: number) => void
}

const gaugesFor = (queue: string): Gauges => ({
  ready: Metric.gauge(Metrics.jobQueueDepth, { queue, state: "ready" }),
  scheduled: Metric.gauge(Metrics.jobQueueDepth, { queue, state: "scheduled" }),
  running: Metric.gauge(Metrics.jobQueueDepth, { queue, state: "running" }),
  deadLetters: Metric.gauge(Metrics.deadLetterDepth, { queue })
})

/**
 * Depth gauges come from the backend (one aggregate read), never from a
 * process's memory, so every process reports the same truth and a restarted
 * exporter is right at once.
 *
 * @internal
 */
export const reportMetrics = (
  options: { readonly interval?: Duration.DurationInput } = {}
): Effect.Effect<void, InvalidOptionsError, JobQueue | Scope.Scope> =>
  Effect.gen(function*() {
    const interval = yield* Either.match(
      check.duration({ component: "JobQueue.reportMetrics", option: "interval" }, options.interval ?? "15 seconds", {
        allowZero: false
      }),
      { onLeft: Effect.fail, onRight: Effect.succeed }
    )
    const queue = yield* tag
    const gauges = new Map<string, Gauges>()
    const set = (stats: QueueStats) => {
      let found = gauges.get(stats.queue)
      if (found === undefined) {
        found = gaugesFor(stats.queue)
        gauges.set(stats.queue, found)
      }
      found.ready(stats.ready)
      // Retries waiting out their backoff are not due yet either: the `scheduled` state of the gauge covers both.
      found.scheduled(stats.scheduled + stats.retrying)
      found.running(stats.running)
      found.deadLetters(stats.deadLetters)
    }
    const poll = queue.stats.pipe(
      Effect.tap((rows) => Effect.sync(() => rows.forEach(set))),
      Effect.catchAll((error) => Effect.logWarning("Could not read job queue depth", error)),
      Effect.annotateLogs("module", "JobQueue.reportMetrics")
    )
    yield* Effect.forkScoped(Effect.repeat(poll, Schedule.spaced(interval)))
  })

/** @internal */
export const layerMetrics = (
  options: { readonly interval?: Duration.DurationInput } = {}
): Layer.Layer<never, InvalidOptionsError, JobQueue> => Layer.scopedDiscard(reportMetrics(options))
