/**
 * Grafana provisioning files and a prometheus.yml, so Grafana and Prometheus
 * can use the generated `grafana/` folder as it is.
 *
 * @since 0.1.0
 */
import * as internal from "./internal/provisioning.js"

/**
 * Where things are. Every field is optional (see {@link defaults}).
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** Prometheus as Grafana's server reaches it. Default `http://localhost:9090`. */
  readonly prometheusUrl?: string
  /** Where Grafana sees `grafana/dashboards` (a volume mount). Default `/var/lib/grafana/dashboards/bulwark`. */
  readonly dashboardsPath?: string
  /** `host:port` of the application instances serving `/metrics`. Default `["localhost:3000"]`. */
  readonly scrapeTargets?: ReadonlyArray<string>
  /** The path of the metrics endpoint. Default `/metrics`. */
  readonly metricsPath?: string
  /** Prometheus' scrape interval, also Grafana's `timeInterval` (drives `$__rate_interval`). Default `15s`. */
  readonly scrapeInterval?: string
  /** How often Prometheus evaluates the alert rules. Default `30s`. */
  readonly evaluationInterval?: string
}

/**
 * @since 0.1.0
 * @category Defaults
 */
export const defaults: typeof internal.defaults = internal.defaults

/**
 * `provisioning/datasources/bulwark.yml`: a Prometheus datasource (uid
 * `bulwark-prometheus`, the default datasource).
 *
 * @since 0.1.0
 * @category Files
 */
export const datasource: (options?: Options) => string = internal.datasource

/**
 * `provisioning/dashboards/bulwark.yml`: a file provider loading the
 * dashboards into a "Bulwark" folder.
 *
 * @since 0.1.0
 * @category Files
 */
export const dashboardProvider: (options?: Options) => string = internal.dashboardProvider

/**
 * `prometheus.yml`: scrapes the application and loads `alerts/bulwark.yml`.
 *
 * @since 0.1.0
 * @category Files
 */
export const prometheusConfig: (options?: Options) => string = internal.prometheusConfig
