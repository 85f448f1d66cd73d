/**
 * One labelled series of a catalogue metric (see `Metrics.ts`), updated with
 * no lookup at all.
 *
 * `metric.unsafeUpdate(value, labels)` with a label array built once (see
 * `internal/metric.ts`) still finds the series' hook in a `WeakMap` keyed by
 * that array on every update, about 10 ns in effect 3.22. A metric made from
 * the series' own key (the catalogue key with the labels appended) keeps its
 * hook in a plain variable instead: the same series, in the same registry,
 * updated as `metric.unsafeUpdate(value, [])`. Isolation layers update two to
 * four series per call, so this is worth its few lines.
 *
 * The key is rebuilt from the catalogue's descriptor the way `Metrics.ts`
 * builds it (counters are `incremental`, gauges plain). If the two ever
 * differed, updates would land on a series the catalogue metric does not
 * see; the breaker, bulkhead and retry tests read every series they update
 * through the catalogue metrics, so they would fail.
 *
 * @internal
 */
import * as Metric from "effect/Metric"
import * as MetricKey from "effect/MetricKey"
import * as MetricLabel from "effect/MetricLabel"
import * as Metrics from "../Metrics.js"

const NO_LABELS: ReadonlyArray<MetricLabel.MetricLabel> = []

const descriptor = (name: string, type: Metrics.Descriptor["type"]): Metrics.Descriptor => {
  const found = Metrics.catalog.find((entry) => entry.name === name)
  if (found === undefined || found.type !== type) throw new Error(`Bulwark has no ${type} named ${name}`)
  return found
}

const labelsOf = (labels: Readonly<Record<string, string>>): ReadonlyArray<MetricLabel.MetricLabel> =>
  Object.entries(labels).map(([key, value]) => MetricLabel.make(key, value))

/** Adds to one series of a catalogue counter. */
export const counter = (name: string, labels: Readonly<Record<string, string>>): (amount?: number) => void => {
  const { help } = descriptor(name, "counter")
  const series = Metric.fromMetricKey(
    MetricKey.taggedWithLabels(MetricKey.counter(name, { description: help, incremental: true }), labelsOf(labels))
  )
  return (amount = 1) => series.unsafeUpdate(amount, NO_LABELS)
}

/** Sets, or moves by a delta, one series of a catalogue gauge. */
export const gauge = (
  name: string,
  labels: Readonly<Record<string, string>>
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
