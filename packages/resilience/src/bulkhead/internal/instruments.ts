/**
 * The metric updates of one bulkhead, shared by `Bulkhead` and `TBulkhead`:
 * both variants report the same series under the same `bulkhead` label.
 *
 * @internal
 */
import * as MetricLabel from "effect/MetricLabel"
import * as Metric from "../../internal/metric.js"
import * as Metrics from "../../Metrics.js"

/**
 * Pre-labelled, synchronous metric updates (see `internal/metric.ts`). The
 * gauges move by deltas, in the same synchronous step as the count they
 * mirror (by the releaser for a hand-over), or, for the STM bulkhead, right
 * after the commit that moved it, so at rest they equal the snapshot. Fiber
 * metric labels (`Effect.tagMetrics`) are
 * deliberately not applied: a gauge's +1 and its -1 may run under different
 * fibers, and must land on the same series.
 *
 * @internal
 */
export class Instruments {
  readonly active: (delta: number) => void
  readonly queued: (delta: number) => void
  readonly rejected: (amount?: number) => void

  constructor(name: string) {
    const labels: ReadonlyArray<MetricLabel.MetricLabel> = [MetricLabel.make("bulkhead", name)]
    // Moved twice per call: the series keeps its hook (see `internal/metric.ts`).
    this.active = Metric.gaugeSeries("bulwark_bulkhead_active", { bulkhead: name }).modify
    this.queued = (delta) => Metrics.bulkheadQueued.unsafeModify(delta, labels)
    this.rejected = Metric.counter(Metrics.bulkheadRejected, { bulkhead: name })
    // Registers the series at their current value, so they are exported before the first call.
    this.active(0)
    this.queued(0)
    this.rejected(0)
  }
}
