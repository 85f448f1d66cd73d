import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { dirname, join } from "node:path"
import type * as Build from "../Build.js"
import * as AlertRules from "./alertRules.js"
import { http } from "./http.js"
import { jobs } from "./jobs.js"
import { overview } from "./overview.js"
import * as Provisioning from "./provisioning.js"

const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`

/** @internal */
export const files = (options: Build.Options = {}): ReadonlyArray<Build.File> => [
  { path: "dashboards/bulwark-overview.json", content: json(overview()) },
  { path: "dashboards/bulwark-jobs.json", content: json(jobs()) },
  { path: "dashboards/bulwark-http.json", content: json(http()) },
  { path: "alerts/bulwark.yml", content: AlertRules.toYaml(AlertRules.make(options.alerts)) },
  { path: "provisioning/datasources/bulwark.yml", content: Provisioning.datasource(options.provisioning) },
  { path: "provisioning/dashboards/bulwark.yml", content: Provisioning.dashboardProvider(options.provisioning) },
  { path: "prometheus.yml", content: Provisioning.prometheusConfig(options.provisioning) }
]

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
