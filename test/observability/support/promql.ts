/**
 * Reads PromQL with Prometheus' own grammar (@prometheus-io/lezer-promql) and
 * checks every metric selector against Bulwark's metric catalogue.
 */
import type * as Metrics from "@bulwark/resilience/Metrics"
import { parser } from "@prometheus-io/lezer-promql"

export interface Matcher {
  readonly label: string
  readonly op: string
  readonly value: string
}

export interface Selector {
  readonly metric: string | undefined
  readonly matchers: ReadonlyArray<Matcher>
}

export interface Parsed {
  readonly selectors: ReadonlyArray<Selector>
  /** Labels named in `by (…)`, `without (…)`, `on (…)`, `ignoring (…)`. */
  readonly grouping: ReadonlyArray<string>
  readonly errors: ReadonlyArray<string>
}

const unquote = (literal: string): string => {
  if (literal.startsWith("`")) return literal.slice(1, -1)
  // PromQL strings use Go's escapes; JSON's are the same for what dashboards and rules contain
  const body = literal.slice(1, -1)
  return literal.startsWith("'") ? body.replace(/\\'/g, "'").replace(/\\\\/g, "\\") : JSON.parse(`"${body}"`) as string
}

export const parse = (expr: string): Parsed => {
  const selectors: Array<Selector> = []
  const grouping: Array<string> = []
  const errors: Array<string> = []
  const text = (from: number, to: number) => expr.slice(from, to)
  const cursor = parser.parse(expr).cursor()
  do {
    if (cursor.type.isError) errors.push(`syntax error at ${cursor.from}: "${text(cursor.from, cursor.to + 10)}"`)
    if (cursor.name === "GroupingLabels") {
      const node = cursor.node
      for (let child = node.firstChild; child !== null; child = child.nextSibling) {
        if (child.name === "LabelName") grouping.push(text(child.from, child.to))
      }
    }
    if (cursor.name === "VectorSelector") {
      const node = cursor.node
      let metric: string | undefined
      const matchers: Array<Matcher> = []
      for (let child = node.firstChild; child !== null; child = child.nextSibling) {
        if (child.name === "Identifier") metric = text(child.from, child.to)
        if (child.name !== "LabelMatchers") continue
        for (let matcher = child.firstChild; matcher !== null; matcher = matcher.nextSibling) {
          if (matcher.name !== "UnquotedLabelMatcher" && matcher.name !== "QuotedLabelMatcher") continue
          const name = matcher.getChild("LabelName") ?? matcher.getChild("QuotedLabelName")
          const op = matcher.getChild("MatchOp")
          const values = matcher.getChildren("StringLiteral")
          const value = values[values.length - 1]
          if (name === null || op === null || value === undefined) {
            errors.push(`unreadable matcher "${text(matcher.from, matcher.to)}"`)
            continue
          }
          const label = name.name === "QuotedLabelName" ? unquote(text(name.from, name.to)) : text(name.from, name.to)
          const parsed = { label, op: text(op.from, op.to), value: unquote(text(value.from, value.to)) }
          if (parsed.label === "__name__" && parsed.op === "=") metric = parsed.value
          else matchers.push(parsed)
        }
      }
      selectors.push({ metric, matchers })
    }
  } while (cursor.next())
  return { selectors, grouping, errors }
}

/**
 * Grafana's variables, replaced the way Grafana would before Prometheus sees
 * the query: intervals by durations, template variables by "All" (`.*`).
 */
export const substituteGrafana = (expr: string): string =>
  expr
    .replaceAll("$__rate_interval", "5m")
    .replaceAll("$__interval", "1m")
    .replaceAll("$__range", "1h")
    .replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*\}?/g, ".*")

/** Labels every scraped series may carry whatever its metric: the target labels Prometheus adds. */
const TARGET_LABELS = new Set(["job", "instance"])

export interface Resolved {
  readonly descriptor: Metrics.Descriptor
  /** `_bucket`, `_sum` or `_count` for a histogram's series, else "". */
  readonly suffix: string
}

/** The catalogue entry a series name belongs to: histograms are only queried through their three series. */
export const resolve = (metric: string, catalog: ReadonlyArray<Metrics.Descriptor>): Resolved | undefined => {
  for (const descriptor of catalog) {
    if (descriptor.type !== "histogram") {
      if (descriptor.name === metric) return { descriptor, suffix: "" }
      continue
    }
    for (const suffix of ["_bucket", "_sum", "_count"]) {
      if (metric === `${descriptor.name}${suffix}`) return { descriptor, suffix }
    }
  }
  return undefined
}

const SIMPLE_ALTERNATION = /^[A-Za-z0-9_]+(?:\|[A-Za-z0-9_]+)*$/

/**
 * Every way `expr` could query something Bulwark never emits: a syntax
 * error, a metric not in the catalogue, a label the metric does not have, or
 * a value outside an enumerated label's set. Empty when it is sound.
 */
export const check = (expr: string, catalog: ReadonlyArray<Metrics.Descriptor>): ReadonlyArray<string> => {
  const { errors, grouping, selectors } = parse(expr)
  const problems = [...errors]
  if (selectors.length === 0) problems.push("no metric selector")
  const labelsInScope = new Set([...TARGET_LABELS])
  for (const selector of selectors) {
    if (selector.metric === undefined) {
      problems.push("a selector without a metric name")
      continue
    }
    const resolved = resolve(selector.metric, catalog)
    if (resolved === undefined) {
      problems.push(`${selector.metric} is not declared in Metrics.catalog`)
      continue
    }
    const { descriptor, suffix } = resolved
    const labels = new Set([...descriptor.labels, ...TARGET_LABELS, ...(suffix === "_bucket" ? ["le"] : [])])
    for (const label of labels) labelsInScope.add(label)
    for (const matcher of selector.matchers) {
      if (!labels.has(matcher.label)) {
        problems.push(`${selector.metric} has no label ${matcher.label}`)
        continue
      }
      const allowed = descriptor.labelValues[matcher.label]
      if (allowed === undefined) continue
      const values = matcher.op === "=" || matcher.op === "!="
        ? [matcher.value]
        : SIMPLE_ALTERNATION.test(matcher.value)
        ? matcher.value.split("|")
        : []
      for (const value of values) {
        if (!allowed.includes(value)) problems.push(`${selector.metric}{${matcher.label}} is never "${value}"`)
      }
    }
  }
  for (const label of grouping) {
    if (!labelsInScope.has(label)) problems.push(`groups by ${label}, which none of its metrics has`)
  }
  return problems
}
