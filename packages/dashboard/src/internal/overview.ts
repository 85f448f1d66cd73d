/**
 * The overview dashboard: every synchronous defence at a glance — breakers,
 * retries, bulkheads, rate limiters, timeouts, fallbacks and idempotency keys.
 */
import * as common from "@grafana/grafana-foundation-sdk/common"
import { type Dashboard, MappingType, RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard"
import { PanelBuilder as StateTimelinePanel } from "@grafana/grafana-foundation-sdk/statetimeline"
import type * as Dashboards from "../Dashboards.js"
import { M } from "./metrics.js"
import {
  dashboard,
  datasource,
  labelVariable,
  numberPanels,
  rate,
  stacked,
  stat,
  target,
  timeseries
} from "./panels.js"
import { defaults } from "./provisioning.js"
import * as Validate from "./validate.js"

/**
 * Breaker states as one number per breaker, worst last, so `max` across
 * instances shows the worst state and the state timeline can colour it.
 *
 * @internal
 */
export const BREAKER_STATE_CODES: ReadonlyArray<readonly [state: string, code: number, color: string]> = [
  ["closed", 0, "green"],
  ["metrics_only", 1, "blue"],
  ["disabled", 2, "text"],
  ["half_open", 3, "yellow"],
  ["open", 4, "red"],
  ["forced_open", 5, "purple"]
]

const breaker = `breaker=~"$breaker"`
const policy = `policy=~"$policy"`
const bulkhead = `bulkhead=~"$bulkhead"`
const limiter = `limiter=~"$limiter"`
const operation = `operation=~"$operation"`

/**
 * The gauge is 1 on the current state's series only; `== 1` keeps that
 * series and `* code` turns its state label into the value.
 */
const breakerStateExpr = `max by (breaker) (\n${
  BREAKER_STATE_CODES.map(([state, code]) => `  (${M.breakerState}{${breaker}, state="${state}"} == 1) * ${code}`)
    .join("\n  or\n")
}\n)`

const ratio = (numerator: string, denominator: string, by: string) =>
  `sum by (${by}) (${rate(numerator)})\n/\nsum by (${by}) (${rate(denominator)})`

const build = (datasourceUid: string): Dashboard =>
  dashboard({
    uid: "bulwark-overview",
    title: "Bulwark / Resilience overview",
    description:
      "Circuit breakers, retries, bulkheads, rate limiters, timeouts, fallbacks and idempotency keys, from Bulwark's metrics.",
    datasourceUid
  })
    .withVariable(labelVariable("breaker", "Breaker", M.breakerState))
    .withVariable(labelVariable("policy", "Retry policy", M.retryCalls))
    .withVariable(labelVariable("bulkhead", "Bulkhead", M.bulkheadActive))
    .withVariable(labelVariable("limiter", "Rate limiter", M.rateLimiterDecisions))
    .withVariable(labelVariable("operation", "Operation", M.timeouts))
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("At a glance"))
    .withPanel(
      stat(
        "Breakers not closed",
        "Breakers currently open, half-open or forced open (any instance).",
        "none",
        [1, 3]
      ).withTarget(target(
        `count(max by (breaker) (${M.breakerState}{${breaker}, state=~"open|half_open|forced_open"}) == 1)`,
        "not closed"
      ))
    )
    .withPanel(
      stat(
        "Calls rejected by open breakers",
        "Share of breaker calls refused without running, over the dashboard's rate interval.",
        "percentunit",
        [0.01, 0.1]
      ).withTarget(target(
        `sum(${rate(`${M.breakerCalls}{${breaker}, outcome="rejected"}`)})\n/\nsum(${
          rate(`${M.breakerCalls}{${breaker}}`)
        })`,
        "rejected"
      ))
    )
    .withPanel(
      stat("Retries exhausted", "Share of retried calls that gave up, all policies.", "percentunit", [0.01, 0.1])
        .withTarget(target(
          `sum(${rate(`${M.retryCalls}{${policy}, result="exhausted"}`)})\n/\nsum(${
            rate(`${M.retryCalls}{${policy}}`)
          })`,
          "exhausted"
        ))
    )
    .withPanel(
      stat("Fallback answers", "Share of calls answered by a fallback (cache, secondary or default).", "percentunit", [
        0.1,
        0.5
      ])
        .withTarget(target(
          `sum(${rate(`${M.fallbacks}{${operation}, source!="primary"}`)})\n/\nsum(${
            rate(`${M.fallbacks}{${operation}}`)
          })`,
          "fallback"
        ))
    )
    .withRow(new RowBuilder("Circuit breakers"))
    .withPanel(
      new StateTimelinePanel()
        .title("Breaker state")
        .description(
          "The worst state of each breaker across instances: closed, metrics only, disabled, half-open, open, forced open."
        )
        .datasource(datasource)
        .mappings([{
          type: MappingType.ValueToText,
          options: Object.fromEntries(
            BREAKER_STATE_CODES.map(([state, code, color]) => [
              String(code),
              { text: state.replace("_", " "), color, index: code }
            ])
          )
        }])
        .showValue(common.VisibilityMode.Never)
        .mergeValues(true)
        .rowHeight(0.8)
        .height(8)
        .span(24)
        .withTarget(target(breakerStateExpr, "{{breaker}}"))
    )
    .withPanel(
      stacked("Breaker calls by outcome", "Calls through each breaker, by how they ended.", "reqps")
        .withTarget(
          target(`sum by (breaker, outcome) (${rate(`${M.breakerCalls}{${breaker}}`)})`, "{{breaker}} {{outcome}}")
        )
    )
    .withPanel(
      timeseries(
        "Breaker transitions",
        "State changes per breaker. Many closed → open transitions in a short time is flapping.",
        "short"
      )
        .drawStyle(common.GraphDrawStyle.Bars)
        .withTarget(target(
          `sum by (breaker, from, to) (increase(${M.breakerTransitions}{${breaker}}[$__rate_interval]))`,
          "{{breaker}} {{from}} → {{to}}"
        ))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Retries"))
    .withPanel(
      stacked("Retried calls by result", "Logical calls through each retry policy, by how they ended.", "reqps")
        .withTarget(target(`sum by (policy, result) (${rate(`${M.retryCalls}{${policy}}`)})`, "{{policy}} {{result}}"))
    )
    .withPanel(
      timeseries("Retry exhaustion ratio", "Share of calls that used every attempt or the time budget.", "percentunit")
        .max(1)
        .withTarget(target(
          ratio(`${M.retryCalls}{${policy}, result="exhausted"}`, `${M.retryCalls}{${policy}}`, "policy"),
          "{{policy}}"
        ))
    )
    .withPanel(
      timeseries(
        "Retries per call",
        "Re-executions per logical call: 0 when every call succeeds at once; near the attempt limit when the dependency is down.",
        "short"
      )
        .withTarget(
          target(ratio(`${M.retryAttempts}{${policy}}`, `${M.retryCalls}{${policy}}`, "policy"), "{{policy}}")
        )
    )
    .withPanel(
      timeseries("Retries refused by the budget", "Retries the shared retry budget refused (retry storm guard).", "ops")
        .withTarget(target(`sum by (policy) (${rate(`${M.retryBudgetDenied}{${policy}}`)})`, "{{policy}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Bulkheads"))
    .withPanel(
      timeseries("Bulkhead in use", "Calls holding a permit, summed over instances.", "short")
        .withTarget(target(`sum by (bulkhead) (${M.bulkheadActive}{${bulkhead}})`, "{{bulkhead}}"))
    )
    .withPanel(
      timeseries(
        "Bulkhead queue",
        "Calls waiting for a permit: a queue that stays above 0 is a saturated bulkhead.",
        "short"
      )
        .withTarget(target(`sum by (bulkhead) (${M.bulkheadQueued}{${bulkhead}})`, "{{bulkhead}}"))
    )
    .withPanel(
      timeseries(
        "Bulkhead rejections",
        "Calls refused because every permit and queue slot was taken, or the wait ran out.",
        "ops"
      )
        .withTarget(target(`sum by (bulkhead) (${rate(`${M.bulkheadRejected}{${bulkhead}}`)})`, "{{bulkhead}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Load shedding"))
    .withPanel(
      timeseries(
        "Adaptive concurrency: limit and in flight",
        "The concurrency each adaptive limiter learned from latency, and the calls running under it, summed over " +
          "instances: in flight pinned at the limit means the excess is being refused.",
        "short"
      )
        .withTarget(target(`sum by (limiter) (${M.adaptiveLimit})`, "{{limiter}} limit"))
        .withTarget(target(`sum by (limiter) (${M.adaptiveInflight})`, "{{limiter}} in flight", "B"))
    )
    .withPanel(
      timeseries(
        "Load shed",
        "Calls refused at once (HTTP: 503 + Retry-After) because the adaptive limit was reached.",
        "ops"
      )
        .withTarget(target(`sum by (limiter) (${rate(M.adaptiveRejected)})`, "{{limiter}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Rate limiters"))
    .withPanel(
      stacked("Rate limit decisions", "Admissions by limiter: allowed at once, delayed, or rejected.", "reqps")
        .withTarget(target(
          `sum by (limiter, decision) (${rate(`${M.rateLimiterDecisions}{${limiter}}`)})`,
          "{{limiter}} {{decision}}"
        ))
    )
    .withPanel(
      timeseries("Rate limit rejection ratio", "Share of requests each limiter rejected.", "percentunit")
        .max(1)
        .withTarget(target(
          ratio(
            `${M.rateLimiterDecisions}{${limiter}, decision="rejected"}`,
            `${M.rateLimiterDecisions}{${limiter}}`,
            "limiter"
          ),
          "{{limiter}}"
        ))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Timeouts, fallbacks and chaos"))
    .withPanel(
      timeseries("Timeouts", "Operations interrupted because they ran out of time.", "ops")
        .withTarget(target(`sum by (operation) (${rate(`${M.timeouts}{${operation}}`)})`, "{{operation}}"))
    )
    .withPanel(
      timeseries(
        "Abandoned after timeout",
        "Timed-out work left to finish in the background (onUninterruptible: abandon), by how it ended.",
        "ops"
      )
        .withTarget(target(
          `sum by (operation, result) (${rate(`${M.timeoutAbandoned}{${operation}}`)})`,
          "{{operation}} {{result}}"
        ))
    )
    .withPanel(
      stacked(
        "Answers by source",
        "Who answered each call with fallbacks: primary, cache, secondary or default.",
        "reqps"
      )
        .withTarget(target(
          `sum by (operation, source) (${rate(`${M.fallbacks}{${operation}}`)})`,
          "{{operation}} {{source}}"
        ))
    )
    .withPanel(
      timeseries("Fallback ratio", "Share of calls not answered by the primary.", "percentunit")
        .max(1)
        .withTarget(target(
          ratio(`${M.fallbacks}{${operation}, source!="primary"}`, `${M.fallbacks}{${operation}}`, "operation"),
          "{{operation}}"
        ))
    )
    .withPanel(
      stacked(
        "Chaos injections",
        "Faults, latency, outcomes and behaviours injected by chaos policies (should be zero outside tests and drills).",
        "ops"
      )
        .withTarget(target(`sum by (policy, kind) (${rate(M.chaosInjections)})`, "{{policy}} {{kind}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Idempotency keys"))
    .withPanel(
      stacked(
        "Idempotent requests by result",
        "Requests with an idempotency key, by what Bulwark did with them.",
        "reqps"
      )
        .withTarget(target(`sum by (scope, result) (${rate(M.idempotencyRequests)})`, "{{scope}} {{result}}"))
    )
    .withPanel(
      timeseries(
        "Replays and conflicts",
        "Stored results replayed, requests refused while the same key was in flight, keys reused with another payload.",
        "reqps"
      )
        .withTarget(target(
          `sum by (scope, result) (${
            rate(`${M.idempotencyRequests}{result=~"replayed|in_flight_conflict|fingerprint_mismatch"}`)
          })`,
          "{{scope}} {{result}}"
        ))
    )
    .build()

/** @internal */
export const overview = (options: Dashboards.Options = {}): Dashboard =>
  numberPanels(build(Validate.datasourceUid("Dashboards", options.datasourceUid ?? defaults.datasourceUid)))
