/**
 * What the committed dashboard JSON asks Prometheus: every panel target's
 * `expr`, and every query variable's `label_values(metric, label)`.
 */
import { readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"

export interface Query {
  readonly dashboard: string
  readonly panel: string
  readonly expr: string
}

export interface LabelValuesQuery {
  readonly dashboard: string
  readonly variable: string
  readonly metric: string
  readonly label: string
}

const isRecord = (u: unknown): u is Readonly<Record<string, unknown>> => typeof u === "object" && u !== null

const arrayOf = (u: unknown): ReadonlyArray<unknown> => (Array.isArray(u) ? u : [])

const stringOf = (u: unknown): string => (typeof u === "string" ? u : "")

export interface DashboardFile {
  readonly file: string
  readonly json: Readonly<Record<string, unknown>>
}

export const readDashboards = (directory: string): ReadonlyArray<DashboardFile> =>
  readdirSync(directory).filter((file) => file.endsWith(".json")).sort().map((file) => {
    const json: unknown = JSON.parse(readFileSync(join(directory, file), "utf8"))
    if (!isRecord(json)) throw new Error(`${file} is not a JSON object`)
    return { file, json }
  })

export const panelsOf = (dashboard: DashboardFile): ReadonlyArray<Readonly<Record<string, unknown>>> =>
  arrayOf(dashboard.json["panels"]).flatMap((panel) =>
    isRecord(panel) ? [panel, ...arrayOf(panel["panels"]).filter(isRecord)] : []
  )

export const variablesOf = (dashboard: DashboardFile): ReadonlyArray<Readonly<Record<string, unknown>>> => {
  const templating = dashboard.json["templating"]
  return isRecord(templating) ? arrayOf(templating["list"]).filter(isRecord) : []
}

export const queriesOf = (dashboard: DashboardFile): ReadonlyArray<Query> =>
  panelsOf(dashboard).flatMap((panel) =>
    arrayOf(panel["targets"]).filter(isRecord).map((target) => ({
      dashboard: dashboard.file,
      panel: stringOf(panel["title"]),
      expr: stringOf(target["expr"])
    }))
  )

const LABEL_VALUES = /^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$/

export const labelValuesOf = (dashboard: DashboardFile): ReadonlyArray<LabelValuesQuery> =>
  variablesOf(dashboard).filter((variable) => variable["type"] === "query").map((variable) => {
    const query = variable["query"]
    const text = isRecord(query) ? stringOf(query["query"]) : stringOf(query)
    const match = LABEL_VALUES.exec(text)
    if (match?.[1] === undefined || match[2] === undefined) {
      throw new Error(`${dashboard.file}: variable ${stringOf(variable["name"])} is not label_values(metric, label)`)
    }
    return { dashboard: dashboard.file, variable: stringOf(variable["name"]), metric: match[1], label: match[2] }
  })

export { isRecord, stringOf }
