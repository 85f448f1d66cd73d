/**
 * Bulwark's Grafana dashboards, as code (@grafana/grafana-foundation-sdk).
 * `Build` (and the `bulwark-dashboards` bin) writes them to `dashboards/*.json`.
 *
 * Every panel follows the `datasource` template variable, so the JSON works
 * with any Prometheus datasource, provisioned or imported. The variable
 * starts on the datasource whose uid is `datasourceUid` (default
 * `bulwark-prometheus`, the one `Provisioning.datasource` provisions); a
 * Grafana without it falls back to another Prometheus datasource. Each dashboard
 * filters by template variables over Bulwark's own labels: `breaker`,
 * `policy`, `bulkhead`, `limiter` and `operation` on the overview, `queue` on
 * jobs, `host` on HTTP dependencies. They only query metrics declared in
 * `Metrics.catalog` (the build fails otherwise, and a test parses every
 * expression to check it).
 *
 * @example
 * ```ts
 * import { writeFileSync } from "node:fs"
 * import { Dashboards } from "@bulwark/dashboard"
 *
 * writeFileSync("overview.json", JSON.stringify(Dashboards.overview({ datasourceUid: "prom-main" }), null, 2))
 * ```
 *
 * @since 0.1.0
 */
import type { Dashboard as GrafanaDashboard } from "@grafana/grafana-foundation-sdk/dashboard"
import { http as httpDashboard } from "./internal/http.js"
import { jobs as jobsDashboard } from "./internal/jobs.js"
import { overview as overviewDashboard } from "./internal/overview.js"

/**
 * A Grafana dashboard model (schema version 42), ready for `JSON.stringify`.
 *
 * @example
 * ```ts
 * import { Dashboards } from "@bulwark/dashboard"
 *
 * const dashboard: Dashboards.Dashboard = Dashboards.jobs()
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export type Dashboard = GrafanaDashboard

/**
 * What the dashboards are built with.
 *
 * @example
 * ```ts
 * import type { Dashboards } from "@bulwark/dashboard"
 *
 * const options: Dashboards.Options = { datasourceUid: "prom-main" }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  /**
   * The uid of the datasource the `datasource` variable starts on (1 to 40
   * characters of `A-Z a-z 0-9 _ -`; an invalid one throws
   * `InvalidOptionsError`). Default `bulwark-prometheus`.
   */
  readonly datasourceUid?: string
}

/**
 * "Bulwark / Resilience overview" (uid `bulwark-overview`): breaker state
 * timeline and call outcomes, transitions; retries by result, exhaustion ratio,
 * retries per call, budget refusals; bulkhead in use, queue and rejections;
 * rate-limit decisions and rejection ratio; timeouts; answers by fallback
 * source and fallback ratio; idempotency results, replays and conflicts.
 *
 * @example
 * ```ts
 * import { Dashboards } from "@bulwark/dashboard"
 *
 * const json = JSON.stringify(Dashboards.overview(), null, 2)
 * ```
 *
 * @since 0.1.0
 * @category Dashboards
 */
export const overview: (options?: Options) => Dashboard = overviewDashboard

/**
 * "Bulwark / Jobs and dead letters" (uid `bulwark-jobs`): depth per tier and
 * state, dead-letter depth and growth, replays and discards, outcomes and
 * retries, wait and run time percentiles.
 *
 * @example
 * ```ts
 * import { Dashboards } from "@bulwark/dashboard"
 *
 * const json = JSON.stringify(Dashboards.jobs({ datasourceUid: "prom-main" }), null, 2)
 * ```
 *
 * @since 0.1.0
 * @category Dashboards
 */
export const jobs: (options?: Options) => Dashboard = jobsDashboard

/**
 * "Bulwark / HTTP dependencies" (uid `bulwark-http`): per-host request rate,
 * error ratio (5xx and unanswered), latency percentiles, status and method
 * breakdowns.
 *
 * @example
 * ```ts
 * import { Dashboards } from "@bulwark/dashboard"
 *
 * const json = JSON.stringify(Dashboards.http(), null, 2)
 * ```
 *
 * @since 0.1.0
 * @category Dashboards
 */
export const http: (options?: Options) => Dashboard = httpDashboard
