import type * as Metric from "effect/Metric"
import * as MetricLabel from "effect/MetricLabel"

/**
 * Pre-labelled, synchronous metric updates for hot paths.
 *
 * `Metric.tagged(m, k, v)` builds a fresh label array on every update, which
 * misses effect's per-array hook cache and re-hashes the metric key each time
 * (several µs a call in effect 3.22), and `Metric.increment` adds a FiberRef
 * read. Here the label array is built once and reused, so the registry hook is
 * found by identity, and the update is a plain function call.
 *
 * Labels set on the fiber with `Effect.tagMetrics` are deliberately not added:
 * Bulwark's label sets are a fixed contract (see `Metrics.catalog`) that the
 * dashboards and alert rules rely on.
 *
 * @internal
 */
export type Labels = Readonly<Record<string, string>>

const labelsOf = (labels: Labels): ReadonlyArray<MetricLabel.MetricLabel> =>
  Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value))

/** @internal */
export const counter = (metric: Metric.Metric.Counter<number>, labels: Labels): (amount?: number) => void => {
  const stable = labelsOf(labels)
  return (amount = 1) => metric.unsafeUpdate(amount, stable)
}

/** @internal */
export const gauge = (metric: Metric.Metric.Gauge<number>, labels: Labels): (value: number) => void => {
  const stable = labelsOf(labels)
  return (value) => metric.unsafeUpdate(value, stable)
}

/** @internal */
export const histogram = (metric: Metric.Metric.Histogram<number>, labels: Labels): (value: number) => void => {
  const stable = labelsOf(labels)
  return (value) => metric.unsafeUpdate(value, stable)
}
