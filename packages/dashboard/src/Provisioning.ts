/**
 * Grafana provisioning files and a prometheus.yml, so Grafana and Prometheus
 * can use the generated folder as it is. Every option is validated: an
 * invalid one throws `InvalidOptionsError` naming it.
 *
 * @example
 * ```ts
 * import { Provisioning } from "@bulwark/dashboard"
 *
 * const yaml = Provisioning.prometheusConfig({ jobName: "checkout", scrapeTargets: ["api-1:3000", "api-2:3000"] })
 * ```
 *
 * @since 0.1.0
 */
import * as internal from "./internal/provisioning.js"

/**
 * Where things are. Every field is optional (see {@link defaults}).
 *
 * @example
 * ```ts
 * import type { Provisioning } from "@bulwark/dashboard"
 *
 * const options: Provisioning.Options = { prometheusUrl: "http://prometheus:9090", jobName: "checkout" }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /** Prometheus as Grafana's server reaches it (`http://` or `https://`). Default `http://localhost:9090`. */
  readonly prometheusUrl?: string
  /**
   * The uid of the provisioned Prometheus datasource (1 to 40 characters of
   * `A-Z a-z 0-9 _ -`, Grafana's rule). `Build` also makes it the default
   * value of the dashboards' `datasource` variable. Default `bulwark-prometheus`.
   */
  readonly datasourceUid?: string
  /** Where Grafana sees the generated `dashboards/` folder (a volume mount). Default `/var/lib/grafana/dashboards/bulwark`. */
  readonly dashboardsPath?: string
  /**
   * The `job_name` of prometheus.yml's scrape config, hence the `job` label of
   * every Bulwark series (1 to 128 printable characters, no quotes or
   * backslashes). Default `bulwark`.
   */
  readonly jobName?: string
  /** `host:port` of the application instances serving `/metrics` (at least one). Default `["localhost:3000"]`. */
  readonly scrapeTargets?: ReadonlyArray<string>
  /** The path of the metrics endpoint. Default `/metrics`. */
  readonly metricsPath?: string
  /** Prometheus' scrape interval, also Grafana's `timeInterval` (drives `$__rate_interval`). Default `15s`. */
  readonly scrapeInterval?: string
  /** How often Prometheus evaluates the alert rules. Default `30s`. */
  readonly evaluationInterval?: string
}

/**
 * The value of every option left out.
 *
 * @example
 * ```ts
 * import { Provisioning } from "@bulwark/dashboard"
 *
 * console.log(Provisioning.defaults.datasourceUid) // "bulwark-prometheus"
 * ```
 *
 * @since 0.1.0
 * @category Defaults
 */
export const defaults: typeof internal.defaults = internal.defaults

/**
 * `provisioning/datasources/bulwark.yml`: a Prometheus datasource named
 * "Prometheus" (uid `datasourceUid`, the default datasource).
 *
 * @example
 * ```ts
 * import { Provisioning } from "@bulwark/dashboard"
 *
 * const yaml = Provisioning.datasource({ prometheusUrl: "http://prometheus:9090", datasourceUid: "prom-main" })
 * ```
 *
 * @since 0.1.0
 * @category Files
 */
export const datasource: (options?: Options) => string = internal.datasource

/**
 * `provisioning/dashboards/bulwark.yml`: a file provider loading the
 * dashboards into a "Bulwark" folder.
 *
 * @example
 * ```ts
 * import { Provisioning } from "@bulwark/dashboard"
 *
 * const yaml = Provisioning.dashboardProvider({ dashboardsPath: "/etc/dashboards/bulwark" })
 * ```
 *
 * @since 0.1.0
 * @category Files
 */
export const dashboardProvider: (options?: Options) => string = internal.dashboardProvider

/**
 * `prometheus.yml`: scrapes the application (job `jobName`) and loads
 * `alerts/bulwark.yml`.
 *
 * @example
 * ```ts
 * import { Provisioning } from "@bulwark/dashboard"
 *
 * const yaml = Provisioning.prometheusConfig({ jobName: "checkout", scrapeTargets: ["api-1:3000"] })
 * ```
 *
 * @since 0.1.0
 * @category Files
 */
export const prometheusConfig: (options?: Options) => string = internal.prometheusConfig
