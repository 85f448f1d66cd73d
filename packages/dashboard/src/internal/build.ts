import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import type * as Build from "../Build.js"
import * as AlertRules from "./alertRules.js"
import { http } from "./http.js"
import { jobs } from "./jobs.js"
import { overview } from "./overview.js"
import * as Provisioning from "./provisioning.js"

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`

/**
 * The hand-written promtool unit tests of the default rules, shipped in the
 * package's `assets/` folder: two levels up from this module, in `src/internal/`
 * as in `dist/internal/`.
 */
const UNIT_TESTS = new URL("../../assets/bulwark.test.yml", import.meta.url)

let unitTestsText: string | undefined

/** @internal */
export const unitTests = (): string => (unitTestsText ??= readFileSync(UNIT_TESTS, "utf8"))

let defaultRulesText: string | undefined
const defaultRules = (): string => (defaultRulesText ??= AlertRules.toYaml(AlertRules.make()))

/** @internal */
export const files = (options: Build.Options = {}): ReadonlyArray<Build.File> => {
  // validates every provisioning option first, so a bad datasourceUid is reported as a provisioning option
  const { datasourceUid } = Provisioning.resolve(options.provisioning)
  const rules = AlertRules.toYaml(AlertRules.make(options.alerts))
  // the unit tests expect the default thresholds, windows and tiers: other rules would fail them
  const tests: ReadonlyArray<Build.File> = rules === defaultRules()
    ? [{ path: "alerts/bulwark.test.yml", content: unitTests() }]
    : []
  return [
    { path: "dashboards/bulwark-overview.json", content: json(overview({ datasourceUid })) },
    { path: "dashboards/bulwark-jobs.json", content: json(jobs({ datasourceUid })) },
    { path: "dashboards/bulwark-http.json", content: json(http({ datasourceUid })) },
    { path: "alerts/bulwark.yml", content: rules },
    ...tests,
    { path: "provisioning/datasources/bulwark.yml", content: Provisioning.datasource(options.provisioning) },
    { path: "provisioning/dashboards/bulwark.yml", content: Provisioning.dashboardProvider(options.provisioning) },
    { path: "prometheus.yml", content: Provisioning.prometheusConfig(options.provisioning) }
  ]
}

const readOrUndefined = (path: string): string | undefined => {
  try {
    return readFileSync(path, "utf8")
  } catch {
    return undefined
  }
}

/** @internal */
export const stale = (directory: string, options: Build.Options = {}): ReadonlyArray<string> =>
  files(options).filter((file) => readOrUndefined(join(directory, file.path)) !== file.content).map((file) => file.path)

/** @internal */
export const write = (directory: string, options: Build.Options = {}): ReadonlyArray<string> => {
  const written: Array<string> = []
  for (const file of files(options)) {
    const path = join(directory, file.path)
    if (readOrUndefined(path) === file.content) continue
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, file.content)
    written.push(file.path)
  }
  return written
}
