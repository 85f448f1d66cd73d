/**
 * The contract of DESIGN §4: dashboards and alert rules may only reference
 * metrics that Metrics.ts declares. Every PromQL expression is parsed with
 * Prometheus' own grammar (@prometheus-io/lezer-promql); every metric
 * selector must name a declared metric (histograms through their
 * `_bucket` / `_sum` / `_count` series), every label matcher a label of that
 * metric, and every value of an enumerated label one of its declared values.
 */
import { AlertRules } from "@bulwark/dashboard"
import * as Metrics from "@bulwark/resilience/Metrics"
import { assert, describe, it } from "@effect/vitest"
import { readFileSync } from "node:fs"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { labelValuesOf, queriesOf, readDashboards } from "./support/grafana.js"
import { check, parse, resolve as resolveMetric, substituteGrafana } from "./support/promql.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const grafana = join(root, "grafana")
const dashboards = readDashboards(join(grafana, "dashboards"))
const catalog = Metrics.catalog

/** The rule file's expressions; the committed YAML is exactly their serialization (checked below). */
const rules = AlertRules.make().groups.flatMap((group) => group.rules)

describe("metric references in dashboards and alert rules", () => {
  it("the committed rule file is the serialization of the rules checked here", () => {
    assert.strictEqual(readFileSync(join(grafana, "alerts/bulwark.yml"), "utf8"), AlertRules.toYaml(AlertRules.make()))
  })

  it("every dashboard query names only declared metrics, labels and label values", () => {
    const queries = dashboards.flatMap(queriesOf)
    assert.isAbove(queries.length, 30)
    for (const query of queries) {
      const problems = check(substituteGrafana(query.expr), catalog)
      assert.deepStrictEqual(problems, [], `${query.dashboard} / ${query.panel}: ${query.expr}`)
    }
  })

  it("every template variable lists values of a declared label of a declared metric", () => {
    const variables = dashboards.flatMap(labelValuesOf)
    assert.deepStrictEqual(variables.map((variable) => variable.variable).sort(), [
      "breaker",
      "bulkhead",
      "host",
      "limiter",
      "operation",
      "policy",
      "queue"
    ])
    for (const variable of variables) {
      const resolved = resolveMetric(variable.metric, catalog)
      assert.isDefined(resolved, `${variable.dashboard} $${variable.variable}: ${variable.metric} is declared`)
      assert.include(resolved?.descriptor.labels ?? [], variable.label, `${variable.metric} has ${variable.label}`)
    }
  })

  it("every alert rule names only declared metrics, labels and label values", () => {
    for (const rule of rules) assert.deepStrictEqual(check(rule.expr, catalog), [], `${rule.alert}: ${rule.expr}`)
  })

  it("the promtool unit tests feed only declared series to the rules", () => {
    const text = readFileSync(join(grafana, "alerts/bulwark.test.yml"), "utf8")
    const series = [...text.matchAll(/series: '([^']+)'/g)].map((match) => match[1] ?? "")
    assert.isAbove(series.length, 20)
    for (const selector of series) assert.deepStrictEqual(check(selector, catalog), [], selector)
  })

  it("between them, the dashboards and rules use every declared metric", () => {
    const used = new Set<string>()
    const exprs = [
      ...dashboards.flatMap(queriesOf).map((query) => substituteGrafana(query.expr)),
      ...rules.map((rule) => rule.expr)
    ]
    for (const expr of exprs) {
      for (const selector of parse(expr).selectors) {
        const resolved = selector.metric === undefined ? undefined : resolveMetric(selector.metric, catalog)
        if (resolved !== undefined) used.add(resolved.descriptor.name)
      }
    }
    assert.deepStrictEqual(catalog.map((metric) => metric.name).filter((name) => !used.has(name)), [])
  })

  it("the checker itself catches each kind of mistake", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["rate(bulwark_retries_total[5m])", "bulwark_retries_total is not declared"],
      ["bulwark_job_wait_seconds", "bulwark_job_wait_seconds is not declared"], // a histogram has no plain series
      ["rate(bulwark_retry_calls_total_bucket[5m])", "is not declared"],
      [`bulwark_retry_calls_total{polcy="x"}`, "has no label polcy"],
      [`bulwark_retry_calls_total{result="exhaust"}`, `is never "exhaust"`],
      [`bulwark_circuit_breaker_state{state=~"open|halfopen"}`, `is never "halfopen"`],
      [`sum by (brekaer) (bulwark_circuit_breaker_state)`, "groups by brekaer"],
      [`sum(rate(bulwark_timeouts_total[5m]) by`, "syntax error"],
      [`{__name__="bulwark_nope"}`, "bulwark_nope is not declared"]
    ]
    for (const [expr, problem] of cases) {
      assert.include(check(expr, catalog).join("\n"), problem, expr)
    }
    assert.deepStrictEqual(
      check(
        `histogram_quantile(0.9, sum by (le, queue) (rate(bulwark_job_wait_seconds_bucket{queue="a"}[5m])))`,
        catalog
      ),
      []
    )
    assert.deepStrictEqual(check(`bulwark_job_wait_seconds_count{job="api", instance="x:1"}`, catalog), [])
  })
})
