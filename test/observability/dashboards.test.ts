/**
 * The dashboards in grafana/dashboards are what packages/dashboard generates
 * (a stale commit fails here: run `npm run dashboards`), every panel follows
 * the datasource variable, the template variables the issue names exist, and
 * every PromQL expression is valid for the real Prometheus parser (promtool).
 */
import { Build, Dashboards } from "@bulwark/dashboard"
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { isRecord, panelsOf, queriesOf, readDashboards, stringOf, variablesOf } from "./support/grafana.js"
import { substituteGrafana } from "./support/promql.js"
import { promtool } from "./support/promtool.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const grafana = join(root, "grafana")
const dashboards = readDashboards(join(grafana, "dashboards"))
const byUid = new Map(dashboards.map((dashboard) => [stringOf(dashboard.json["uid"]), dashboard]))

describe("Grafana dashboards (grafana/dashboards)", () => {
  it("are exactly what `npm run dashboards` generates, like every generated file of grafana/", () => {
    assert.deepStrictEqual(
      Build.stale(grafana),
      [],
      "grafana/ is stale: run `npm run dashboards` and commit the result"
    )
    assert.deepStrictEqual(
      dashboards.map((dashboard) => dashboard.file),
      ["bulwark-http.json", "bulwark-jobs.json", "bulwark-overview.json"]
    )
  })

  it("detect staleness: a changed file is reported", () => {
    const directory = mkdtempSync(join(tmpdir(), "bulwark-grafana-"))
    try {
      assert.strictEqual(Build.stale(directory).length, Build.files().length)
      Build.write(directory)
      assert.deepStrictEqual(Build.stale(directory), [])
      writeFileSync(join(directory, "dashboards/bulwark-jobs.json"), "{}\n")
      assert.deepStrictEqual(Build.stale(directory), ["dashboards/bulwark-jobs.json"])
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  })

  it("have stable uids and the template variables of the issue: datasource, breaker, queue, host", () => {
    const expected: ReadonlyArray<readonly [string, ReadonlyArray<string>]> = [
      ["bulwark-overview", ["datasource", "breaker", "policy", "bulkhead", "limiter", "operation"]],
      ["bulwark-jobs", ["datasource", "queue"]],
      ["bulwark-http", ["datasource", "host"]]
    ]
    for (const [uid, variables] of expected) {
      const dashboard = byUid.get(uid)
      if (dashboard === undefined) return assert.fail(`no dashboard with uid ${uid}`)
      assert.deepStrictEqual(variablesOf(dashboard).map((variable) => variable["name"]), [...variables], uid)
      const datasource = variablesOf(dashboard)[0]
      assert.strictEqual(datasource?.["type"], "datasource")
      assert.strictEqual(datasource?.["query"], "prometheus")
      for (const variable of variablesOf(dashboard).slice(1)) {
        assert.strictEqual(variable["multi"], true)
        assert.strictEqual(variable["includeAll"], true)
      }
    }
    assert.strictEqual(Dashboards.overview().uid, "bulwark-overview")
  })

  it("point every panel and query at the datasource variable, with unique panel ids", () => {
    for (const dashboard of dashboards) {
      const panels = panelsOf(dashboard)
      const ids = panels.map((panel) => panel["id"])
      assert.strictEqual(new Set(ids).size, ids.length, `${dashboard.file}: panel ids are unique`)
      for (const panel of panels.filter((panel) => panel["type"] !== "row")) {
        const title = `${dashboard.file} / ${stringOf(panel["title"])}`
        assert.deepStrictEqual(panel["datasource"], { type: "prometheus", uid: "${datasource}" }, title)
        const targets = Array.isArray(panel["targets"]) ? panel["targets"] : []
        assert.isAbove(targets.length, 0, `${title} has a query`)
        for (const target of targets) {
          assert.isTrue(isRecord(target) && isRecord(target["datasource"]), title)
          if (isRecord(target)) assert.deepStrictEqual(target["datasource"], panel["datasource"], title)
        }
        assert.isAbove(stringOf(panel["description"]).length, 10, `${title} has a description`)
      }
    }
  })

  it("cover what the issue lists for each dashboard", () => {
    const exprs = (uid: string) => {
      const dashboard = byUid.get(uid)
      return dashboard === undefined ? "" : queriesOf(dashboard).map((query) => query.expr).join("\n")
    }
    const overview = exprs("bulwark-overview")
    for (
      const metric of [
        "bulwark_circuit_breaker_state",
        "bulwark_circuit_breaker_calls_total",
        "bulwark_retry_calls_total",
        "bulwark_bulkhead_active",
        "bulwark_bulkhead_queued",
        "bulwark_bulkhead_rejected_total",
        "bulwark_rate_limiter_decisions_total",
        "bulwark_timeouts_total",
        "bulwark_fallback_total",
        "bulwark_idempotency_requests_total"
      ]
    ) assert.include(overview, metric)
    assert.include(overview, `result="exhausted"`)
    assert.include(overview, `replayed|in_flight_conflict|fingerprint_mismatch`)
    const jobs = exprs("bulwark-jobs")
    for (
      const metric of [
        "bulwark_job_queue_depth",
        "bulwark_job_queue_oldest_ready_seconds",
        "bulwark_job_queue_paused",
        "bulwark_dead_letter_depth",
        "bulwark_dead_letter_entries",
        "bulwark_jobs_total",
        "bulwark_job_wait_seconds_bucket",
        "bulwark_job_duration_seconds_bucket"
      ]
    ) assert.include(jobs, metric)
    assert.include(jobs, `outcome="retried"`)
    const http = exprs("bulwark-http")
    assert.include(http, "http_client_requests_total")
    assert.include(http, "http_client_request_duration_seconds_bucket")
    assert.include(http, "sum by (host)")
  })

  it("only hold PromQL that Prometheus' own parser accepts (promtool check rules)", () => {
    const queries = dashboards.flatMap(queriesOf)
    assert.isAbove(queries.length, 30)
    // every expression as a recording rule: promtool parses and type-checks each one
    const rules = queries.map((query, i) =>
      `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(substituteGrafana(query.expr))}`
    )
    const directory = mkdtempSync(join(tmpdir(), "bulwark-dashboard-promql-"))
    try {
      const file = join(directory, "dashboard-queries.yml")
      writeFileSync(file, `groups:\n  - name: dashboard-queries\n    rules:\n${rules.join("\n")}\n`)
      const run = promtool(["check", "rules", file])
      assert.strictEqual(run.code, 0, run.output)
      assert.include(run.output, `SUCCESS: ${queries.length} rules found`)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  })
})
