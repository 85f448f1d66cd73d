/**
 * Grafana dashboards, Prometheus alert rules and provisioning for Bulwark, as
 * code, built from the metric catalogue so they can only name metrics that
 * exist. The `bulwark-dashboards` bin writes them, with the provisioning
 * files, into a folder (`npx bulwark-dashboards --out ./grafana`).
 *
 * @since 0.1.0
 */

/**
 * The overview, jobs and HTTP dependencies dashboards.
 *
 * @since 0.1.0
 */
export * as Dashboards from "./Dashboards.js"

/**
 * Prometheus alerting rules from typed thresholds.
 *
 * @since 0.1.0
 */
export * as AlertRules from "./AlertRules.js"

/**
 * Grafana datasource and dashboard provisioning, and prometheus.yml.
 *
 * @since 0.1.0
 */
export * as Provisioning from "./Provisioning.js"

/**
 * Writes (or checks) every generated file of a `grafana/` folder.
 *
 * @since 0.1.0
 */
export * as Build from "./Build.js"
