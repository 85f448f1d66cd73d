/**
 * The HTTP dependencies dashboard: per-host request rate, error ratio and
 * latency percentiles of outgoing calls.
 */
import { type Dashboard, RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard"
import type * as Dashboards from "../Dashboards.js"
import { M } from "./metrics.js"
import { dashboard, labelVariable, numberPanels, quantile, rate, stacked, stat, target, timeseries } from "./panels.js"
import { defaults } from "./provisioning.js"
import * as Validate from "./validate.js"

const host = `host=~"$host"`

/**
 * An error is a 5xx, or any status that is not a number (a request that got
 * no response); 4xx answers are the caller's mistakes, not the dependency's.
 */
const errors = `${M.httpRequests}{${host}, status!~"[1-4].."}`

const build = (datasourceUid: string): Dashboard => {
  const latency = timeseries("Latency", "Outgoing request duration per host: p50, p95, p99.", "s")
  for (const [q, refId] of [[0.5, "A"], [0.95, "B"], [0.99, "C"]] as const) {
    latency.withTarget(target(quantile(q, M.httpDuration, host, ["host"]), `{{host}} p${Math.round(q * 100)}`, refId))
  }
  return dashboard({
    uid: "bulwark-http",
    title: "Bulwark / HTTP dependencies",
    description: "Outgoing HTTP calls per host: rate, error ratio and latency.",
    datasourceUid
  })
    .withVariable(labelVariable("host", "Host", M.httpRequests))
    .withRow(new RowBuilder("Overview"))
    .withPanel(
      stat("Requests", "Outgoing requests per second, selected hosts.", "reqps")
        .withTarget(target(`sum(${rate(`${M.httpRequests}{${host}}`)})`, "requests"))
    )
    .withPanel(
      stat("Error ratio", "Share of requests answered 5xx or not answered at all.", "percentunit", [0.01, 0.05])
        .withTarget(target(`sum(${rate(errors)})\n/\nsum(${rate(`${M.httpRequests}{${host}}`)})`, "errors"))
    )
    .withPanel(
      stat("p95 latency", "95th percentile of request duration, selected hosts.", "s", [0.5, 2])
        .withTarget(target(quantile(0.95, M.httpDuration, host, []), "p95"))
    )
    .withPanel(
      stat("Hosts", "Hosts called in the time range.", "none")
        .withTarget(target(`count(count by (host) (${M.httpRequests}{${host}}))`, "hosts"))
    )
    .withRow(new RowBuilder("Per host"))
    .withPanel(
      timeseries("Request rate", "Outgoing requests per second, by host.", "reqps")
        .withTarget(target(`sum by (host) (${rate(`${M.httpRequests}{${host}}`)})`, "{{host}}"))
    )
    .withPanel(
      timeseries("Error ratio", "Share of each host's requests answered 5xx or not answered at all.", "percentunit")
        .max(1)
        .withTarget(target(
          `sum by (host) (${rate(errors)})\n/\nsum by (host) (${rate(`${M.httpRequests}{${host}}`)})`,
          "{{host}}"
        ))
    )
    .withPanel(latency)
    .withPanel(
      stacked("Responses by status", "Requests per second by host and status code.", "reqps")
        .withTarget(target(`sum by (host, status) (${rate(`${M.httpRequests}{${host}}`)})`, "{{host}} {{status}}"))
    )
    .withPanel(
      stacked("Requests by method", "Requests per second by host and method.", "reqps")
        .withTarget(target(`sum by (host, method) (${rate(`${M.httpRequests}{${host}}`)})`, "{{host}} {{method}}"))
    )
    .build()
}

/** @internal */
export const http = (options: Dashboards.Options = {}): Dashboard =>
  numberPanels(build(Validate.datasourceUid("Dashboards", options.datasourceUid ?? defaults.datasourceUid)))
