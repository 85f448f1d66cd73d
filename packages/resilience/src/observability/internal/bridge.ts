/**
 * The prom-client side of the bridge: one prom-client metric object per
 * bridged name whose `get()` reads Effect's metric registry at scrape time.
 *
 * prom-client's registry only accepts its own `Counter` / `Gauge` /
 * `Histogram` instances, so the collectors subclass them and replace the
 * values they report; prom-client's own stores stay empty. The envelope
 * (`name`, `help`, `type`, `aggregator`) comes from prom-client itself, so the
 * text format, OpenMetrics `_total` handling, default labels, label escaping
 * and cluster aggregation all behave as for any prom-client metric.
 */
import { globalValue } from "effect/GlobalValue"
import * as Metric from "effect/Metric"
import * as MetricKeyType from "effect/MetricKeyType"
import type * as MetricPair from "effect/MetricPair"
import * as MetricState from "effect/MetricState"
import { Counter, Gauge, Histogram } from "prom-client"
import type * as Metrics from "../../Metrics.js"

type Labels = Record<string, string>

interface Sample {
  readonly labels: Labels
  readonly value: number
}

interface HistogramSample {
  readonly metricName: string
  readonly labels: Labels
  readonly value: number
}

// -----------------------------------------------------------------------------
// Reading Effect's registry
// -----------------------------------------------------------------------------

/** The snapshot of the scrape under way, shared by every copy of this module. */
const memo = globalValue(
  Symbol.for("@bulwark/resilience/PrometheusMetrics/snapshot"),
  (): { current: Map<string, Array<MetricPair.MetricPair.Untyped>> | undefined } => ({ current: undefined })
)

/**
 * Effect's registry grouped by metric name. A scrape calls every collector's
 * `get()` in one synchronous pass, so the snapshot is taken once per scrape
 * (and the metrics of one scrape agree with each other), then dropped at the
 * next microtask.
 */
const snapshotByName = (): Map<string, Array<MetricPair.MetricPair.Untyped>> => {
  if (memo.current !== undefined) return memo.current
  const byName = new Map<string, Array<MetricPair.MetricPair.Untyped>>()
  for (const pair of Metric.unsafeSnapshot()) {
    const pairs = byName.get(pair.metricKey.name)
    if (pairs === undefined) byName.set(pair.metricKey.name, [pair])
    else pairs.push(pair)
  }
  memo.current = byName
  queueMicrotask(() => {
    memo.current = undefined
  })
  return byName
}

const INVALID_LABEL_CHARACTERS = /[^a-zA-Z0-9_]/g

/** Effect tag keys may hold any character; Prometheus label names may not. */
const labelName = (key: string): string => {
  const sanitized = key.replace(INVALID_LABEL_CHARACTERS, "_")
  if (sanitized === "" || /^[0-9]/.test(sanitized)) return `_${sanitized}`
  // `__` is reserved for Prometheus' internal labels
  return sanitized.startsWith("__") ? `exported_${sanitized}` : sanitized
}

const labelsOf = (pair: MetricPair.MetricPair.Untyped, reserved?: string): Labels => {
  const labels: Labels = {}
  for (const tag of pair.metricKey.tags) {
    const name = labelName(tag.key)
    labels[name === reserved ? `exported_${name}` : name] = tag.value
  }
  return labels
}

const labelKey = (labels: Labels): string =>
  Object.keys(labels).sort().map((key) => `${key}=${labels[key] ?? ""}`).join("\u0000")

/** Stable output: series sorted by their labels, whatever order Effect's hash map iterates in. */
const sortByLabels = <A extends { readonly labels: Labels }>(entries: Array<A>): Array<A> =>
  entries
    .map((entry) => [labelKey(entry.labels), entry] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, entry]) => entry)

/** @internal */
export const counterSamples = (name: string): Array<Sample> => {
  const samples: Array<Sample> = []
  for (const pair of snapshotByName().get(name) ?? []) {
    const keyType = pair.metricKey.keyType
    const state = pair.metricState
    if (MetricKeyType.isCounterKey(keyType) && keyType.incremental && MetricState.isCounterState(state)) {
      samples.push({ labels: labelsOf(pair), value: Number(state.count) })
    }
  }
  return sortByLabels(samples)
}

/** @internal */
export const gaugeSamples = (name: string): Array<Sample> => {
  const samples: Array<Sample> = []
  for (const pair of snapshotByName().get(name) ?? []) {
    const keyType = pair.metricKey.keyType
    const state = pair.metricState
    if (MetricState.isGaugeState(state)) {
      samples.push({ labels: labelsOf(pair), value: Number(state.value) })
    } else if (MetricKeyType.isCounterKey(keyType) && !keyType.incremental && MetricState.isCounterState(state)) {
      // a non-incremental Effect counter accepts negative updates: it is a gauge
      samples.push({ labels: labelsOf(pair), value: Number(state.count) })
    }
  }
  return sortByLabels(samples)
}

const formatBound = (bound: number): string => (bound === Infinity ? "+Inf" : String(bound))

/** @internal */
export const histogramSamples = (name: string): Array<HistogramSample> => {
  const series: Array<{ readonly labels: Labels; readonly state: MetricState.MetricState.Histogram }> = []
  for (const pair of snapshotByName().get(name) ?? []) {
    const state = pair.metricState
    if (MetricState.isHistogramState(state)) series.push({ labels: labelsOf(pair, "le"), state })
  }
  const samples: Array<HistogramSample> = []
  for (const { labels, state } of sortByLabels(series)) {
    // Effect's buckets are already cumulative, ascending, ending with +Infinity
    let sawInfinity = false
    for (const [bound, count] of state.buckets) {
      if (bound === Infinity) sawInfinity = true
      samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: formatBound(bound) }, value: count })
    }
    if (!sawInfinity) {
      samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: state.count })
    }
    samples.push({ metricName: `${name}_sum`, labels, value: state.sum })
    samples.push({ metricName: `${name}_count`, labels, value: state.count })
  }
  return samples
}

// -----------------------------------------------------------------------------
// prom-client collectors
// -----------------------------------------------------------------------------

/**
 * Marks the collectors, so registering twice is recognised as the same
 * bridge (and a foreign metric of the same name as a conflict).
 *
 * @internal
 */
export const BridgedTypeId: unique symbol = Symbol.for("@bulwark/resilience/PrometheusMetrics/Bridged")

class BridgedCounter extends Counter<string> {
  readonly [BridgedTypeId]: string
  constructor(descriptor: Metrics.Descriptor) {
    super({ name: descriptor.name, help: descriptor.help, labelNames: [...descriptor.labels], registers: [] })
    this[BridgedTypeId] = descriptor.name
  }
  override async get() {
    // read before the first await: every collector of a scrape shares one snapshot
    const values = counterSamples(this[BridgedTypeId])
    const envelope = await super.get()
    return { ...envelope, values }
  }
}

class BridgedGauge extends Gauge<string> {
  readonly [BridgedTypeId]: string
  constructor(descriptor: Metrics.Descriptor) {
    super({ name: descriptor.name, help: descriptor.help, labelNames: [...descriptor.labels], registers: [] })
    this[BridgedTypeId] = descriptor.name
  }
  override async get() {
    const values = gaugeSamples(this[BridgedTypeId])
    const envelope = await super.get()
    return { ...envelope, values }
  }
}

class BridgedHistogram extends Histogram<string> {
  readonly [BridgedTypeId]: string
  /** An empty, unregistered histogram of the same name: the envelope of what `get()` returns. */
  private readonly bulwarkEnvelope: Histogram<string>
  constructor(descriptor: Metrics.Descriptor) {
    const configuration = {
      name: descriptor.name,
      help: descriptor.help,
      labelNames: [...descriptor.labels],
      buckets: [...descriptor.buckets],
      registers: []
    }
    super(configuration)
    this[BridgedTypeId] = descriptor.name
    this.bulwarkEnvelope = new Histogram(configuration)
  }
  override async get() {
    const values = histogramSamples(this[BridgedTypeId])
    const envelope = await this.bulwarkEnvelope.get()
    return { ...envelope, values }
  }
  /** prom-client's registry prefers this to `get()` when a metric has it, as `Histogram` does. */
  getForPromString() {
    return this.get()
  }
}

/** @internal */
export type Bridged = BridgedCounter | BridgedGauge | BridgedHistogram

/** @internal */
export const make = (descriptor: Metrics.Descriptor): Bridged => {
  switch (descriptor.type) {
    case "counter":
      return new BridgedCounter(descriptor)
    case "gauge":
      return new BridgedGauge(descriptor)
    case "histogram":
      return new BridgedHistogram(descriptor)
  }
}

/**
 * The name a bridge collector reads, or undefined for any other metric. By
 * symbol rather than `instanceof`, so two copies of the package agree.
 *
 * @internal
 */
export const bridgedName = (u: unknown): string | undefined => {
  if (typeof u !== "object" || u === null || !(BridgedTypeId in u)) return undefined
  const name: unknown = u[BridgedTypeId]
  return typeof name === "string" ? name : undefined
}
