/**
 * The jobs dashboard: queue depth per tier, the backlog's age and paused
 * queues, the dead-letter queue, throughput, retries, and how long jobs wait
 * and run.
 */
import * as common from "@grafana/grafana-foundation-sdk/common"
import { type Dashboard, RowBuilder } from "@grafana/grafana-foundation-sdk/dashboard"
import type * as Dashboards from "../Dashboards.js"
import { M } from "./metrics.js"
import { dashboard, labelVariable, numberPanels, quantile, rate, stacked, stat, target, timeseries } from "./panels.js"
import { defaults } from "./provisioning.js"
import * as Validate from "./validate.js"

const queue = `queue=~"$queue"`

/**
 * Depth gauges are read from the shared backend by every worker process, so
 * they are combined with `max` (the same number, reported N times), never `sum`.
 */
const depth = (metric: string, matchers: string, by: string) => `max by (${by}) (${metric}{${matchers}})`

const percentiles = (histogram: string) =>
  ([[0.5, "A"], [0.95, "B"], [0.99, "C"]] as const).map(([q, refId]) =>
    target(quantile(q, histogram, queue, ["queue"]), `{{queue}} p${Math.round(q * 100)}`, refId)
  )

const build = (datasourceUid: string): Dashboard => {
  const wait = timeseries(
    "Wait time (due → started)",
    "How long jobs waited from being due (enqueued, or their run-at time) to a worker starting them: p50, p95, p99.",
    "s"
  )
  for (const query of percentiles(M.jobWait)) wait.withTarget(query)
  const run = timeseries("Run time", "How long jobs ran, by queue: p50, p95, p99.", "s")
  for (const query of percentiles(M.jobDuration)) run.withTarget(query)

  return dashboard({
    uid: "bulwark-jobs",
    title: "Bulwark / Jobs and dead letters",
    description: "Durable job queues (tiers): depth, dead-letter queue, throughput, retries, wait and run time.",
    datasourceUid
  })
    .withVariable(labelVariable("queue", "Queue", M.jobQueueDepth))
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Queues"))
    .withPanel(
      stat("Ready jobs", "Jobs due and waiting for a worker, all selected queues.", "short", [100, 1000])
        .withTarget(target(`sum(${depth(M.jobQueueDepth, `${queue}, state="ready"`, "queue")})`, "ready"))
    )
    .withPanel(
      stat("Running jobs", "Jobs leased by a worker right now.", "short", [1000, 10000])
        .withTarget(target(`sum(${depth(M.jobQueueDepth, `${queue}, state="running"`, "queue")})`, "running"))
    )
    .withPanel(
      stat("Dead letters", "Jobs in the dead-letter queues, waiting for a human.", "short", [1, 10])
        .withTarget(target(`sum(${depth(M.deadLetterDepth, queue, "queue")})`, "dead letters"))
    )
    .withPanel(
      stat("Dead-lettered (1h)", "Jobs that failed for good in the last hour.", "short", [1, 10])
        .withTarget(target(`sum(increase(${M.jobs}{${queue}, outcome="dead_lettered"}[1h]))`, "dead-lettered"))
    )
    .withPanel(
      stacked(
        "Depth per tier",
        "Jobs per queue and state: ready (due), scheduled (future run-at or backing off before a retry), running.",
        "short"
      )
        .withTarget(target(depth(M.jobQueueDepth, queue, "queue, state"), "{{queue}} {{state}}"))
    )
    .withPanel(
      timeseries("Ready jobs per tier", "The backlog of each tier: due jobs no worker has taken yet.", "short")
        .withTarget(target(depth(M.jobQueueDepth, `${queue}, state="ready"`, "queue"), "{{queue}}"))
    )
    .withPanel(
      timeseries(
        "Oldest ready job per tier",
        "How long the oldest due job of each tier has waited for a worker: the backlog against the tier's " +
          "start-within target (the BulwarkJobBacklogAboveTarget alert).",
        "s"
      )
        .withTarget(target(depth(M.oldestReady, queue, "queue"), "{{queue}}"))
    )
    .withPanel(
      timeseries(
        "Paused queues",
        "1 while a queue is paused (JobQueue.pause, `bulwark queues pause`): no worker claims its jobs.",
        "short"
      )
        .lineInterpolation(common.LineInterpolation.StepAfter)
        .withTarget(target(depth(M.queuePaused, queue, "queue"), "{{queue}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Dead-letter queue"))
    .withPanel(
      timeseries("Dead-letter depth", "Entries waiting in each queue's dead-letter queue.", "short")
        .withTarget(target(depth(M.deadLetterDepth, queue, "queue"), "{{queue}}"))
    )
    .withPanel(
      timeseries(
        "Dead-letter growth",
        "Net change of each dead-letter queue per hour (arrivals minus replays and discards), and arrivals per hour.",
        "short"
      )
        .withTarget(target(`max by (queue) (delta(${M.deadLetterDepth}{${queue}}[1h]))`, "{{queue}} net change", "A"))
        .withTarget(target(
          `sum by (queue) (increase(${M.jobs}{${queue}, outcome="dead_lettered"}[1h]))`,
          "{{queue}} arrivals",
          "B"
        ))
    )
    .withPanel(
      timeseries(
        "Replayed and discarded",
        "Dead-letter entries an operator replayed or discarded, from any process (the bulwark CLI included): the " +
          "change of the table's counts.",
        "short"
      )
        .drawStyle(common.GraphDrawStyle.Bars)
        .withTarget(target(
          `max by (queue, status) (clamp_min(delta(${M.deadLetterEntries}{${queue}, status=~"replayed|discarded"}` +
            `[$__rate_interval]), 0))`,
          "{{queue}} {{status}}"
        ))
    )
    .withPanel(
      stacked(
        "Dead-letter entries by status",
        "Entries of each queue's dead-letter queue by status: pending, replayed, discarded (until retention " +
          "prunes settled ones).",
        "short"
      )
        .withTarget(target(depth(M.deadLetterEntries, queue, "queue, status"), "{{queue}} {{status}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Throughput"))
    .withPanel(
      stacked(
        "Job outcomes",
        "Jobs finished per second by outcome: succeeded, retried, dead-lettered, cancelled.",
        "ops"
      )
        .withTarget(target(
          `sum by (queue, outcome) (${
            rate(`${M.jobs}{${queue}, outcome=~"succeeded|retried|dead_lettered|cancelled"}`)
          })`,
          "{{queue}} {{outcome}}"
        ))
    )
    .withPanel(
      timeseries("Retries", "Attempts that failed transiently and were scheduled again, per queue.", "ops")
        .withTarget(target(`sum by (queue) (${rate(`${M.jobs}{${queue}, outcome="retried"}`)})`, "{{queue}}"))
    )
    // -------------------------------------------------------------------------
    .withRow(new RowBuilder("Latency"))
    .withPanel(wait)
    .withPanel(run)
    .build()
}

/** @internal */
export const jobs = (options: Dashboards.Options = {}): Dashboard =>
  numberPanels(build(Validate.datasourceUid("Dashboards", options.datasourceUid ?? defaults.datasourceUid)))
