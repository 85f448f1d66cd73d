/**
 * The alert rules in grafana/alerts/ run through the real promtool: `check
 * rules`, and `test rules` on the hand-written unit tests (kept in
 * packages/dashboard/assets/, written beside the default rules by Build),
 * which hold a firing and a not-firing case for every alert. Mutated
 * thresholds make those unit tests fail, so they do test the thresholds.
 * Fails (never skips) when /usr/bin/promtool is missing.
 */
import { AlertRules } from "@bulwark/dashboard"
import { InvalidOptionsError } from "@bulwark/resilience/Failure"
import { assert, describe, it } from "@effect/vitest"
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { promtool } from "./support/promtool.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const grafana = join(root, "grafana")
const rulesFile = join(grafana, "alerts/bulwark.yml")
const testsFile = join(grafana, "alerts/bulwark.test.yml")

const ALERTS = [
  "BulwarkDeadLetterQueueDepth",
  "BulwarkDeadLetterQueueGrowing",
  "BulwarkCircuitBreakerOpen",
  "BulwarkCircuitBreakerFlapping",
  "BulwarkCircuitBreakerSharedStoreDown",
  "BulwarkRedisMisconfigured",
  "BulwarkRetryExhaustionHigh",
  "BulwarkFallbackRatioHigh",
  "BulwarkJobWaitAboveTarget",
  "BulwarkJobBacklogAboveTarget",
  "BulwarkJobQueueDepthAbsent"
] as const

/** Runs the committed unit tests against rules generated with `options`, in a scratch folder. */
const testRulesWith = (options: AlertRules.Options) => {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-rules-"))
  try {
    writeFileSync(join(directory, "bulwark.yml"), AlertRules.toYaml(AlertRules.make(options)))
    copyFileSync(testsFile, join(directory, "bulwark.test.yml"))
    return promtool(["test", "rules", join(directory, "bulwark.test.yml")])
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

describe("Prometheus alert rules (grafana/alerts)", () => {
  it("pass promtool check rules", () => {
    const run = promtool(["check", "rules", rulesFile])
    assert.strictEqual(run.code, 0, run.output)
    assert.include(run.output, `SUCCESS: ${ALERTS.length} rules found`)
  })

  it("define each alert the issue asks for, once, with a severity and a runbook-style description", () => {
    const rules = AlertRules.make().groups.flatMap((group) => group.rules)
    assert.deepStrictEqual([...rules.map((rule) => rule.alert)].sort(), [...ALERTS].sort())
    for (const rule of rules) {
      assert.oneOf(rule.labels["severity"], ["warning", "critical"], rule.alert)
      assert.isAbove((rule.annotations["summary"] ?? "").length, 10, rule.alert)
      assert.isAbove((rule.annotations["description"] ?? "").length, 60, rule.alert)
    }
  })

  it("pass their promtool unit tests", () => {
    const run = promtool(["test", "rules", testsFile])
    assert.strictEqual(run.code, 0, run.output)
    assert.include(run.output, "SUCCESS")
  })

  it("have a firing and a not-firing case for every alert in the unit tests", () => {
    const text = readFileSync(testsFile, "utf8")
    const cases = text.split(/^\s+- eval_time: /m).slice(1).map((block) => ({
      alert: /alertname: (\w+)/.exec(block)?.[1],
      firing: !/exp_alerts: \[\]/.test(block)
    }))
    for (const alert of ALERTS) {
      const mine = cases.filter((c) => c.alert === alert)
      assert.isTrue(mine.some((c) => c.firing), `${alert} has a firing case`)
      assert.isTrue(mine.some((c) => !c.firing), `${alert} has a not-firing case`)
    }
  })

  it("have unit tests that fail when a threshold or window changes", () => {
    const mutations: ReadonlyArray<readonly [string, AlertRules.Options]> = [
      ["BulwarkDeadLetterQueueDepth", { deadLetterDepth: { threshold: 12 } }],
      ["BulwarkDeadLetterQueueGrowing", { deadLetterGrowth: { for: "20m" } }],
      ["BulwarkCircuitBreakerOpen", { breakerOpen: { for: "10m" } }],
      ["BulwarkCircuitBreakerFlapping", { breakerFlapping: { openings: 7 } }],
      ["BulwarkCircuitBreakerSharedStoreDown", { breakerSharedStoreDown: { for: "5m" } }],
      ["BulwarkRetryExhaustionHigh", { retryExhaustion: { ratio: 0.04 } }],
      ["BulwarkFallbackRatioHigh", { fallback: { ratio: 0.7 } }],
      ["BulwarkJobWaitAboveTarget", { jobWait: { targets: { high_priority: "10s", default: "1m", batch: "15m" } } }],
      ["BulwarkJobWaitAboveTarget", { jobWait: { defaultTarget: "15m" } }],
      ["BulwarkJobBacklogAboveTarget", { jobBacklog: { targets: { high_priority: "2m", default: "5m" } } }],
      ["BulwarkJobBacklogAboveTarget", { jobBacklog: { targets: { high_priority: "30s", default: "10m" } } }],
      ["BulwarkJobBacklogAboveTarget", { jobBacklog: { defaultTarget: "30m" } }],
      ["BulwarkJobBacklogAboveTarget", { jobBacklog: { for: "5m" } }],
      ["BulwarkJobQueueDepthAbsent", { depthAbsent: { for: "30m" } }],
      ["BulwarkJobQueueDepthAbsent", { depthAbsent: false }]
    ]
    for (const [alert, options] of mutations) {
      const run = testRulesWith(options)
      assert.notStrictEqual(run.code, 0, `${alert} with ${JSON.stringify(options)} still passes`)
      assert.include(run.output, `alertname: ${alert}`)
    }
    // and the defaults, written the same way, pass: the failures above come from the mutations
    assert.strictEqual(testRulesWith({}).code, 0)
  })

  it("stay valid with custom tiers, including queue names PromQL regexes must escape", () => {
    const directory = mkdtempSync(join(tmpdir(), "bulwark-rules-"))
    try {
      const file = join(directory, "custom.yml")
      writeFileSync(
        file,
        AlertRules.toYaml(AlertRules.make({
          jobWait: { targets: { "emails.transactional": "30s", "reports/nightly": "1h" }, defaultTarget: "2m" },
          jobBacklog: { targets: { "emails.transactional": "10s" }, defaultTarget: "1h" },
          deadLetterDepth: { threshold: 0, for: "1m" }
        }))
      )
      const run = promtool(["check", "rules", file])
      assert.strictEqual(run.code, 0, run.output)
      const text = readFileSync(file, "utf8")
      assert.include(text, `queue!~"emails\\\\.transactional|reports/nightly"`)
      assert.include(text, `queue="emails.transactional"`)
      assert.include(text, `bulwark_job_queue_oldest_ready_seconds{queue!~"emails\\\\.transactional"}`)
      assert.include(text, `"target", "1h"`)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  })

  it("reject invalid options with InvalidOptionsError naming the option", () => {
    const cases: ReadonlyArray<readonly [string, AlertRules.Options]> = [
      ["deadLetterDepth.threshold", { deadLetterDepth: { threshold: -1 } }],
      ["deadLetterGrowth.window", { deadLetterGrowth: { window: "30 minutes" } }],
      ["breakerFlapping.openings", { breakerFlapping: { openings: 1.5 } }],
      ["breakerSharedStoreDown.for", { breakerSharedStoreDown: { for: "1 minute" } }],
      ["retryExhaustion.ratio", { retryExhaustion: { ratio: 0 } }],
      ["fallback.ratio", { fallback: { ratio: 1.5 } }],
      ["jobWait.quantile", { jobWait: { quantile: 1 } }],
      ["jobWait.targets", { jobWait: { targets: { "bad queue": "1m" } } }],
      ["jobWait.targets.fast", { jobWait: { targets: { fast: "soon" } } }],
      ["jobBacklog.targets", { jobBacklog: { targets: { "bad queue": "30s" } } }],
      ["jobBacklog.targets.high_priority", { jobBacklog: { targets: { high_priority: "0s" } } }],
      ["jobBacklog.defaultTarget", { jobBacklog: { defaultTarget: "an hour" } }],
      ["depthAbsent.for", { depthAbsent: { for: "-1m" } }]
    ]
    for (const [option, options] of cases) {
      assert.throws(() => AlertRules.make(options), InvalidOptionsError, `option "${option}"`)
    }
  })

  it("are written as YAML that reads back exactly (checked by promtool against a JSON copy)", () => {
    const tricky = [
      "plain",
      "true",
      "5m",
      "-1",
      "a: b # not a comment",
      `say "hi"`,
      "it's",
      `both ' and "`,
      "#hash",
      "[flow]",
      "{flow: map}",
      "  leading spaces",
      "trailing space ",
      "line one\nline two",
      "  indented first line\nsecond",
      "tab\tinside",
      "ünïcödé ✓",
      "back\\slash",
      ""
    ]
    const annotations = Object.fromEntries(tricky.map((value, i) => [`a${i}`, value]))
    const directory = mkdtempSync(join(tmpdir(), "bulwark-yaml-"))
    try {
      writeFileSync(
        join(directory, "rules.yml"),
        AlertRules.toYaml({
          groups: [{ name: "yaml", rules: [{ alert: "Tricky", expr: "vector(1)", labels: {}, annotations }] }]
        })
      )
      // JSON is YAML too: the expectation does not go through Bulwark's writer
      const tests = {
        rule_files: ["rules.yml"],
        tests: [{
          input_series: [],
          alert_rule_test: [{
            eval_time: "0m",
            alertname: "Tricky",
            exp_alerts: [{ exp_labels: {}, exp_annotations: annotations }]
          }]
        }]
      }
      writeFileSync(join(directory, "rules.test.yml"), JSON.stringify(tests))
      const run = promtool(["test", "rules", join(directory, "rules.test.yml")])
      assert.strictEqual(run.code, 0, run.output)
    } finally {
      rmSync(directory, { recursive: true, force: true })
    }
  })

  it("prometheus.yml is a valid configuration that loads the rules", () => {
    const run = promtool(["check", "config", join(grafana, "prometheus.yml")])
    assert.strictEqual(run.code, 0, run.output)
    assert.include(run.output, "SUCCESS: 1 rule files found")
  })
})
