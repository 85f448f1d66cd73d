/**
 * Bulwark's Grafana dashboards, as code (@grafana/grafana-foundation-sdk).
 * `npm run dashboards` writes them to `grafana/dashboards/*.json`.
 *
 * Every panel follows the `datasource` template variable, so the JSON works
 * with any Prometheus datasource, provisioned or imported. Each dashboard
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
 * writeFileSync("overview.json", JSON.stringify(Dashboards.overview(), null, 2))
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
 * @since 0.1.0
 * @category Models
 */
export type Dashboard = GrafanaDashboard

/**
 * "Bulwark / Resilience overview" (uid `bulwark-overview`): breaker state
 * timeline and call outcomes, transitions; retries by result, exhaustion ratio,
 * retries per call, budget refusals; bulkhead in use, queue and rejections;
 * rate-limit decisions and rejection ratio; timeouts; answers by fallback
 * source and fallback ratio; idempotency results, replays and conflicts.
 *
 * @since 0.1.0
 * @category Dashboards
 */
export const overview: () => Dashboard = overviewDashboard

/**
 * "Bulwark / Jobs and dead letters" (uid `bulwark-jobs`): depth per tier and
 * state, dead-letter depth and growth, replays and discards, outcomes and
 * retries, wait and run time percentiles.
 *
 * @since 0.1.0
 * @category Dashboards
 */
export const jobs: () => Dashboard = jobsDashboard

/**
 * "Bulwark / HTTP dependencies" (uid `bulwark-http`): per-host request rate,
 * error ratio (5xx and unanswered), latency percentiles, status and method
 * breakdowns.
 *
 * @since 0.1.0
 * @category Dashboards
 */
export const http: () => Dashboard = httpDashboard
