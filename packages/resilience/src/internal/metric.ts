/**
 * Synchronous metric updates for hot paths, in two flavours.
 *
 * **Pre-labelled** (`counter`, `gauge`, `histogram`): `Metric.tagged(m, k, v)`
 * builds a fresh label array on every update, which misses effect's per-array
 * hook cache and re-hashes the metric key each time (several µs a call in
 * effect 3.22), and `Metric.increment` adds a FiberRef read. Here the label
 * array is built once and reused, so the registry hook is found by identity,
 * and the update is a plain function call.
 *
 * **One series** (`counterSeries`, `gaugeSeries`): `metric.unsafeUpdate(value,
 * labels)` with a label array built once still finds the series' hook in a
 * `WeakMap` keyed by that array on every update, about 10 ns in effect 3.22.
 * A metric made from the series' own key (the catalogue key with the labels
 * appended) keeps its hook in a plain variable instead: the same series, in
 * the same registry, updated as `metric.unsafeUpdate(value, [])`. Isolation
 * layers update two to four series per call, so this is worth its few lines.
 * The key is rebuilt from the catalogue's descriptor the way `Metrics.ts`
 * builds it (counters are `incremental`, gauges plain). If the two ever
 * differed, updates would land on a series the catalogue metric does not
 * see; the breaker, bulkhead and retry tests read every series they update
 * through the catalogue metrics, so they would fail.
 *
 * Labels set on the fiber with `Effect.tagMetrics` are deliberately not added:
 * Bulwark's label sets are a fixed contract (see `Metrics.catalog`) that the
 * dashboards and alert rules rely on.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as Metrics from "../Metrics.js"

/** @internal */
export type Labels = Readonly<Record<string, string>>

const NO_LABELS: ReadonlyArray<MetricLabel.MetricLabel> = []

const labelsOf = (labels: Labels): ReadonlyArray<MetricLabel.MetricLabel> =>
  Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value))

// -----------------------------------------------------------------------------
// Pre-labelled
// -----------------------------------------------------------------------------

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

// -----------------------------------------------------------------------------
// One series
// -----------------------------------------------------------------------------

const descriptor = (name: string, type: Metrics.Descriptor["type"]): Metrics.Descriptor => {
  const found = Metrics.catalog.find((entry) => entry.name === name)
  if (found === undefined || found.type !== type) throw new Error(`Bulwark has no ${type} named ${name}`)
  return found
}

/**
 * Adds to one series of a catalogue counter.
 *
 * @internal
 */
export const counterSeries = (name: string, labels: Labels): (amount?: number) => void => {
  const { help } = descriptor(name, "counter")
  const series = Metric.fromMetricKey(
    MetricKey.taggedWithLabels(MetricKey.counter(name, { description: help, incremental: true }), labelsOf(labels))
  )
  return (amount = 1) => series.unsafeUpdate(amount, NO_LABELS)
}

/**
 * Sets, or moves by a delta, one series of a catalogue gauge.
 *
 * @internal
 */
export const gaugeSeries = (
  name: string,
  labels: Labels
): { readonly set: (value: number) => void; readonly modify: (delta: number) => void } => {
  const { help } = descriptor(name, "gauge")
  const series = Metric.fromMetricKey(
    MetricKey.taggedWithLabels(MetricKey.gauge(name, { description: help }), labelsOf(labels))
  )
  return {
    set: (value) => series.unsafeUpdate(value, NO_LABELS),
    modify: (delta) => series.unsafeModify(delta, NO_LABELS)
  }
}
