/**
 * Grafana dashboards and Prometheus alert rules for Bulwark, as code, built
 * from the metric catalogue so they can only name metrics that exist.
 * (A skeleton until the observability work lands.)
 *
 * @since 0.1.0
 */
import { Metrics } from "@bulwark/resilience"

/**
 * The metric names dashboards may reference.
 *
 * @since 0.1.0
 */
export const metricNames: ReadonlyArray<string> = Metrics.catalog.map((metric) => metric.name)
