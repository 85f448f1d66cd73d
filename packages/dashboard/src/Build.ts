/**
 * Writes every generated file of a Grafana/Prometheus folder: the dashboards,
 * the alert rules (with their promtool unit tests when the thresholds are the
 * defaults), the provisioning files and prometheus.yml. The
 * `bulwark-dashboards` bin runs it (`npx bulwark-dashboards --out ./grafana`);
 * in this repository `npm run dashboards` writes the repository's `grafana/`,
 * and a test fails when the committed files differ from what the code
 * generates.
 *
 * Other files in the folder are left alone.
 *
 * @example
 * ```ts
 * import { Build } from "@bulwark/dashboard"
 *
 * // your own thresholds and scrape targets, into your own folder
 * Build.write("ops/grafana", {
 *   alerts: { deadLetterDepth: { threshold: 0 } },
 *   provisioning: { scrapeTargets: ["api-1:3000", "api-2:3000"], jobName: "checkout" }
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as AlertRules from "./AlertRules.js"
import * as internal from "./internal/build.js"
import type * as Provisioning from "./Provisioning.js"

/**
 * The options of the alert rules and of the provisioning files;
 * `provisioning.datasourceUid` is also the datasource the dashboards'
 * `datasource` variable starts on.
 *
 * @example
 * ```ts
 * import type { Build } from "@bulwark/dashboard"
 *
 * const options: Build.Options = {
 *   alerts: { jobWait: { targets: { payments: "2s", reports: "30m" } } },
 *   provisioning: { datasourceUid: "prom-main", prometheusUrl: "http://prometheus:9090" }
 * }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly alerts?: AlertRules.Options
  readonly provisioning?: Provisioning.Options
}

/**
 * A generated file: its path inside the output folder and its content.
 *
 * @example
 * ```ts
 * import { Build } from "@bulwark/dashboard"
 *
 * const paths = Build.files().map((file: Build.File) => file.path)
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface File {
  readonly path: string
  readonly content: string
}

/**
 * Every generated file, in memory: `dashboards/bulwark-{overview,jobs,http}.json`,
 * `alerts/bulwark.yml`, `provisioning/datasources/bulwark.yml`,
 * `provisioning/dashboards/bulwark.yml` and `prometheus.yml`. Invalid options
 * throw `InvalidOptionsError` naming the option.
 *
 * `alerts/bulwark.test.yml`, the package's hand-written promtool unit tests
 * (a firing and a not-firing case for every alert, `promtool test rules`),
 * is included only when the rules are exactly the default ones: its cases
 * are written against the default thresholds, windows and queue tiers, so
 * with other options they would fail (or, worse, pass for the wrong
 * reasons). Test your own thresholds with your own unit tests.
 *
 * @example
 * ```ts
 * import { Build } from "@bulwark/dashboard"
 *
 * Build.files().some((file) => file.path === "alerts/bulwark.test.yml") // true
 * Build.files({ alerts: { breakerOpen: { for: "10m" } } }).some((file) => file.path === "alerts/bulwark.test.yml") // false
 * ```
 *
 * @since 0.1.0
 * @category Build
 */
export const files: (options?: Options) => ReadonlyArray<File> = internal.files

/**
 * Writes the files under `directory` (creating folders), skipping files that
 * are already up to date. Returns the paths it wrote, relative to `directory`.
 *
 * @example
 * ```ts
 * import { Build } from "@bulwark/dashboard"
 *
 * const written = Build.write("grafana", { provisioning: { scrapeTargets: ["api:3000"] } })
 * ```
 *
 * @since 0.1.0
 * @category Build
 */
export const write: (directory: string, options?: Options) => ReadonlyArray<string> = internal.write

/**
 * The paths under `directory` that are missing or differ from what
 * {@link files} generates: empty when the folder is up to date.
 *
 * @example
 * ```ts
 * import { Build } from "@bulwark/dashboard"
 *
 * if (Build.stale("grafana").length > 0) process.exitCode = 1
 * ```
 *
 * @since 0.1.0
 * @category Build
 */
export const stale: (directory: string, options?: Options) => ReadonlyArray<string> = internal.stale
