/**
 * Writes every generated file of the `grafana/` folder: the dashboards, the
 * alert rules, the provisioning files and prometheus.yml. `npm run dashboards`
 * runs it on the repository's `grafana/`; a test fails when the committed
 * files differ from what the code generates.
 *
 * Hand-written files in the folder (the promtool unit tests
 * `alerts/bulwark.test.yml`) are left alone.
 *
 * @example
 * ```ts
 * import { Build } from "@bulwark/dashboard"
 *
 * // your own thresholds and scrape targets, into your own folder
 * Build.write("ops/grafana", {
 *   alerts: { deadLetterDepth: { threshold: 0 } },
 *   provisioning: { scrapeTargets: ["api-1:3000", "api-2:3000"] }
 * })
 * ```
 *
 * @since 0.1.0
 */
import type * as AlertRules from "./AlertRules.js"
import * as internal from "./internal/build.js"
import type * as Provisioning from "./Provisioning.js"

/**
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
 * @since 0.1.0
 * @category Models
 */
export interface File {
  readonly path: string
  readonly content: string
}

/**
 * Every generated file, in memory.
 *
 * @since 0.1.0
 * @category Build
 */
export const files: (options?: Options) => ReadonlyArray<File> = internal.files

/**
 * Writes the files under `directory` (creating folders), skipping files that
 * are already up to date. Returns the paths it wrote.
 *
 * @since 0.1.0
 * @category Build
 */
export const write: (directory: string, options?: Options) => ReadonlyArray<string> = internal.write

/**
 * The paths under `directory` that are missing or differ from what
 * {@link files} generates: empty when the folder is up to date.
 *
 * @since 0.1.0
 * @category Build
 */
export const stale: (directory: string, options?: Options) => ReadonlyArray<string> = internal.stale
