/**
 * Prometheus alerting rules for Bulwark, generated from typed options so the
 * thresholds, windows and per-tier wait targets are data, and the metric
 * names come from the catalogue.
 */
import type * as AlertRules from "../AlertRules.js"
import { M } from "./metrics.js"
import * as Validate from "./validate.js"
import * as Yaml from "./yaml.js"

const component = "AlertRules"
const NAME = /^[A-Za-z0-9_.:/-]{1,128}$/

const invalid = (option: string, value: unknown, expected: string): never =>
  Validate.invalid(component, option, value, expected)

/** A window or a target: above zero. */
const duration = (option: string, value: string): string => Validate.duration(component, option, value)

/** How long a condition must hold: `0s` fires at once. */
const forDuration = (option: string, value: string): string =>
  Validate.duration(component, option, value, { zero: true })

const number = (
  option: string,
  value: number,
  range: { readonly min: number; readonly max?: number; readonly integer?: boolean; readonly exclusiveMin?: boolean }
): number => {
  const max = range.max ?? Infinity
  const ok = typeof value === "number" && Number.isFinite(value) && value <= max &&
    (range.exclusiveMin ? value > range.min : value >= range.min) && (!range.integer || Number.isInteger(value))
  if (ok) return value
  const lower = `${range.exclusiveMin ? ">" : "≥"} ${range.min}`
  return invalid(
    option,
    value,
    `${range.integer ? "an integer" : "a number"} ${lower}${Number.isFinite(max) ? ` and ≤ ${max}` : ""}`
  )
}

/** Queue names may hold `.`, which PromQL regexes must escape (twice: once for the regex, once for the string). */
const regexEscape = (name: string) => name.replace(/[.]/g, "\\\\.")

/** @internal */
export const defaults = {
  deadLetterDepth: { threshold: 10, for: "5m" },
  deadLetterGrowth: { window: "30m", for: "30m" },
  breakerOpen: { for: "5m" },
  breakerFlapping: { openings: 3, window: "30m" },
  breakerSharedStoreDown: { for: "1m" },
  retryExhaustion: { ratio: 0.1, window: "5m", for: "10m" },
  fallback: { ratio: 0.5, window: "5m", for: "10m" },
  jobWait: {
    quantile: 0.95,
    window: "5m",
    for: "10m",
    targets: { high_priority: "5s", default: "1m", batch: "15m" },
    defaultTarget: "5m"
  },
  jobBacklog: {
    for: "1m",
    targets: { high_priority: "30s", default: "5m" }
  },
  depthAbsent: { for: "10m" }
} as const

const percent = (ratio: number) => `${Math.round(ratio * 1000) / 10}%`

/** Per-tier targets: queue names as the job queue validates them, durations above zero. */
const tierTargets = (
  option: string,
  targets: Readonly<Record<string, string>>
): ReadonlyArray<readonly [string, string]> =>
  Object.entries(targets).map(([queue, target]) => {
    if (!NAME.test(queue)) invalid(option, queue, "queue names of 1 to 128 characters of A-Z a-z 0-9 _ . : / -")
    return [queue, duration(`${option}.${queue}`, target)] as const
  })

/**
 * The queue gauges' rules: the backlog of each tier against its start-within target (the age of its oldest ready
 * job, paused queues left out), and depth reported by no process at all.
 */
const queueRules = (options: AlertRules.Options): ReadonlyArray<AlertRules.AlertingRule> => {
  const targets = tierTargets("jobBacklog.targets", options.jobBacklog?.targets ?? defaults.jobBacklog.targets)
  const defaultTarget = options.jobBacklog?.defaultTarget === undefined
    ? undefined
    : duration("jobBacklog.defaultTarget", options.jobBacklog.defaultTarget)
  const backlogFor = forDuration("jobBacklog.for", options.jobBacklog?.for ?? defaults.jobBacklog.for)
  const absent = options.depthAbsent
  if (absent !== undefined && absent !== false && (typeof absent !== "object" || absent === null)) {
    invalid("depthAbsent", absent, "false, or an object with an optional `for`")
  }
  const absentFor = absent === false
    ? undefined
    : forDuration("depthAbsent.for", absent?.for ?? defaults.depthAbsent.for)

  /** Like the wait rule: one branch per target, tagged with a `target` label, and one for the other queues. */
  const branch = (matcher: string, target: string) =>
    `label_replace(\n  (max by (queue) (${M.oldestReady}{${matcher}}) > ${
      Validate.seconds(target)
    })\n    unless on (queue) (max by (queue) (${M.queuePaused}) == 1),\n  "target", "${target}", "", ""\n)`
  const branches = [
    ...targets.map(([queue, target]) => branch(`queue="${queue}"`, target)),
    ...(defaultTarget === undefined ? [] : [
      branch(
        targets.length === 0 ? "" : `queue!~"${targets.map(([queue]) => regexEscape(queue)).join("|")}"`,
        defaultTarget
      )
    ])
  ]
  const rules: Array<AlertRules.AlertingRule> = []
  if (branches.length > 0) {
    rules.push({
      alert: "BulwarkJobBacklogAboveTarget",
      expr: branches.join("\nor\n"),
      for: backlogFor,
      labels: { severity: "critical" },
      annotations: {
        summary: `Jobs of queue {{ $labels.queue }} do not start within their {{ $labels.target }} target`,
        description: `The oldest ready job of queue {{ $labels.queue }} has been due for ` +
          `{{ $value | humanizeDuration }}, longer than the {{ $labels.target }} its jobs must start within, for ` +
          `${backlogFor}, and the queue is not paused. Its workers are too few, stuck or not running: check its ` +
          `ready and running jobs on the Jobs dashboard, then add workers or concurrency, or find what holds them.`
      }
    })
  }
  if (absentFor !== undefined) {
    rules.push({
      alert: "BulwarkJobQueueDepthAbsent",
      expr: `absent(${M.jobQueueDepth})`,
      for: absentFor,
      labels: { severity: "warning" },
      annotations: {
        summary: "No process reports the job queue depth",
        description: `No ${M.jobQueueDepth} series was scraped for ${absentFor}: no worker runs (each reports the ` +
          `queue gauges unless told not to) and no process runs JobQueue.reportMetrics, or Prometheus does not ` +
          `scrape them. Meanwhile the backlog and dead-letter alerts cannot fire. Check the workers and their ` +
          `/metrics scrape target.`
      }
    })
  }
  return rules
}

/** @internal */
export const make = (options: AlertRules.Options = {}): AlertRules.RuleFile => {
  const dlqDepth = {
    threshold: number(
      "deadLetterDepth.threshold",
      options.deadLetterDepth?.threshold ?? defaults.deadLetterDepth.threshold,
      {
        min: 0
      }
    ),
    for: forDuration("deadLetterDepth.for", options.deadLetterDepth?.for ?? defaults.deadLetterDepth.for)
  }
  const dlqGrowth = {
    window: duration("deadLetterGrowth.window", options.deadLetterGrowth?.window ?? defaults.deadLetterGrowth.window),
    for: forDuration("deadLetterGrowth.for", options.deadLetterGrowth?.for ?? defaults.deadLetterGrowth.for)
  }
  const breakerOpen = { for: forDuration("breakerOpen.for", options.breakerOpen?.for ?? defaults.breakerOpen.for) }
  const flapping = {
    openings: number(
      "breakerFlapping.openings",
      options.breakerFlapping?.openings ?? defaults.breakerFlapping.openings,
      { min: 1, integer: true }
    ),
    window: duration("breakerFlapping.window", options.breakerFlapping?.window ?? defaults.breakerFlapping.window)
  }
  const sharedStoreDown = {
    for: forDuration(
      "breakerSharedStoreDown.for",
      options.breakerSharedStoreDown?.for ?? defaults.breakerSharedStoreDown.for
    )
  }
  const exhaustion = {
    ratio: number("retryExhaustion.ratio", options.retryExhaustion?.ratio ?? defaults.retryExhaustion.ratio, {
      min: 0,
      max: 1,
      exclusiveMin: true
    }),
    window: duration("retryExhaustion.window", options.retryExhaustion?.window ?? defaults.retryExhaustion.window),
    for: forDuration("retryExhaustion.for", options.retryExhaustion?.for ?? defaults.retryExhaustion.for)
  }
  const fallback = {
    ratio: number("fallback.ratio", options.fallback?.ratio ?? defaults.fallback.ratio, {
      min: 0,
      max: 1,
      exclusiveMin: true
    }),
    window: duration("fallback.window", options.fallback?.window ?? defaults.fallback.window),
    for: forDuration("fallback.for", options.fallback?.for ?? defaults.fallback.for)
  }
  const targets = tierTargets("jobWait.targets", options.jobWait?.targets ?? defaults.jobWait.targets)
  const jobWait = {
    quantile: number("jobWait.quantile", options.jobWait?.quantile ?? defaults.jobWait.quantile, {
      min: 0,
      max: 0.999,
      exclusiveMin: true
    }),
    window: duration("jobWait.window", options.jobWait?.window ?? defaults.jobWait.window),
    for: forDuration("jobWait.for", options.jobWait?.for ?? defaults.jobWait.for),
    defaultTarget: duration("jobWait.defaultTarget", options.jobWait?.defaultTarget ?? defaults.jobWait.defaultTarget)
  }
  const p = `p${Math.round(jobWait.quantile * 1000) / 10}`

  /**
   * One rule for every tier: a branch per target, each tagging its result with
   * a `target` label (so the alert says which target it broke, and two tiers
   * with the same target stay distinct), and a branch for the other queues.
   */
  const waitBranch = (matcher: string, target: string) =>
    `label_replace(\n  histogram_quantile(${jobWait.quantile}, sum by (queue, le) (rate(${M.jobWait}_bucket{${matcher}}[${jobWait.window}])))\n    > ${
      Validate.seconds(target)
    },\n  "target", "${target}", "", ""\n)`
  const waitBranches = [
    ...targets.map(([queue, target]) => waitBranch(`queue="${queue}"`, target)),
    waitBranch(
      targets.length === 0 ? "" : `queue!~"${targets.map(([queue]) => regexEscape(queue)).join("|")}"`,
      jobWait.defaultTarget
    )
  ]
  const waitRule: AlertRules.AlertingRule = {
    alert: "BulwarkJobWaitAboveTarget",
    expr: waitBranches.join("\nor\n"),
    for: jobWait.for,
    labels: { severity: "warning" },
    annotations: {
      summary: `Jobs of queue {{ $labels.queue }} wait longer than their {{ $labels.target }} target`,
      description: `The ${p} wait (due to started) of queue {{ $labels.queue }} is {{ $value | humanizeDuration }}, ` +
        `above its target of {{ $labels.target }}, for ${jobWait.for}. Workers are too few or too slow for the ` +
        `load: check ready depth and run time on the Jobs dashboard, then add workers or concurrency, or find the ` +
        `slow handler.`
    }
  }

  return {
    groups: [
      {
        name: "bulwark-resilience",
        rules: [
          {
            alert: "BulwarkCircuitBreakerOpen",
            expr: `max without (state) (${M.breakerState}{state=~"open|half_open"}) == 1`,
            for: breakerOpen.for,
            labels: { severity: "critical" },
            annotations: {
              summary: `Circuit breaker {{ $labels.breaker }} has not closed for ${breakerOpen.for}`,
              description: `Breaker {{ $labels.breaker }} has been open or half-open (its probes failing) for ` +
                `${breakerOpen.for}: calls to that dependency fail fast. Check the dependency's health and the ` +
                `breaker's failures on the overview dashboard.`
            }
          },
          {
            alert: "BulwarkCircuitBreakerFlapping",
            expr:
              `sum without (from, to) (\n  increase(${M.breakerTransitions}{from="closed", to="open"}[${flapping.window}])\n) >= ${flapping.openings}`,
            labels: { severity: "warning" },
            annotations: {
              summary: `Circuit breaker {{ $labels.breaker }} keeps opening and closing`,
              description: `Breaker {{ $labels.breaker }} opened from closed {{ $value | humanize }} times in ` +
                `${flapping.window}: the dependency fails intermittently, or the trip threshold is too tight for its ` +
                `normal error rate.`
            }
          },
          {
            alert: "BulwarkCircuitBreakerSharedStoreDown",
            expr: `${M.breakerSharedStoreUp} == 0`,
            for: sharedStoreDown.for,
            labels: { severity: "warning" },
            annotations: {
              summary: `Shared circuit breaker {{ $labels.breaker }} has lost its store on {{ $labels.instance }}`,
              description: `The shared breaker {{ $labels.breaker }} (RedisCircuitBreaker) on ` +
                `{{ $labels.instance }} has not reached its Redis store for ${sharedStoreDown.for}. It still ` +
                `protects with its local breaker alone, but the fleet no longer opens together: that instance ` +
                `neither announces its openings nor follows the others', and its half-open probes are not counted ` +
                `with theirs. Check Redis and the network path from that instance; when Redis is back the breaker ` +
                `shares any opening it made alone and resyncs.`
            }
          },
          // The count itself, not increase(): the series only appears with its first error (increase() would miss
          // that one), and the misconfigured client stays wrong until its process is replaced, which resolves it.
          {
            alert: "BulwarkRedisMisconfigured",
            expr: `sum by (component) (${M.redisConfigErrors}) > 0`,
            labels: { severity: "critical" },
            annotations: {
              summary: `The {{ $labels.component }} uses a single-node Redis client pointed at a Redis Cluster`,
              description: `Redis answered the {{ $labels.component }} {{ $value | humanize }} times with MOVED, ` +
                `ASK or CROSSSLOT since its processes started: a single-node client talks to a Redis Cluster node, ` +
                `a deployment error rather than an outage. Until it is fixed the rate limiter refuses the calls ` +
                `Redis redirects (whatever onFailure says) and the idempotency cache is bypassed for them (the ` +
                `store answers). Pass an ioredis Cluster as "client" or use the "cluster" option, then redeploy: ` +
                `the alert resolves once no running process has counted an error.`
            }
          },
          {
            alert: "BulwarkRetryExhaustionHigh",
            expr:
              `(\n  sum without (result) (rate(${M.retryCalls}{result="exhausted"}[${exhaustion.window}]))\n/\n  sum without (result) (rate(${M.retryCalls}[${exhaustion.window}]))\n) > ${exhaustion.ratio}`,
            for: exhaustion.for,
            labels: { severity: "warning" },
            annotations: {
              summary: `Retry policy {{ $labels.policy }} gives up on more than ${percent(exhaustion.ratio)} of calls`,
              description: `{{ $value | humanizePercentage }} of the calls through retry policy {{ $labels.policy }} ` +
                `used every attempt or their time budget and failed with RetriesExhausted, for ${exhaustion.for}. ` +
                `The dependency is failing beyond what retries can hide.`
            }
          },
          {
            alert: "BulwarkFallbackRatioHigh",
            expr:
              `(\n  sum without (source) (rate(${M.fallbacks}{source!="primary"}[${fallback.window}]))\n/\n  sum without (source) (rate(${M.fallbacks}[${fallback.window}]))\n) > ${fallback.ratio}`,
            for: fallback.for,
            labels: { severity: "warning" },
            annotations: {
              summary: `Operation {{ $labels.operation }} is mostly answered by fallbacks`,
              description: `{{ $value | humanizePercentage }} of the answers of {{ $labels.operation }} came from a ` +
                `fallback (cache, secondary or default) rather than the primary, for ${fallback.for}. Users see ` +
                `degraded results: check why the primary fails.`
            }
          }
        ]
      },
      {
        name: "bulwark-jobs",
        rules: [
          {
            alert: "BulwarkDeadLetterQueueDepth",
            expr: `max by (queue) (${M.deadLetterDepth}) > ${dlqDepth.threshold}`,
            for: dlqDepth.for,
            labels: { severity: "warning" },
            annotations: {
              summary: `Dead-letter queue of {{ $labels.queue }} holds {{ $value }} jobs`,
              description: `More than ${dlqDepth.threshold} jobs of queue {{ $labels.queue }} failed for good and ` +
                `wait for a human. Inspect them with \`npm run bulwark -- dlq list --queue {{ $labels.queue }}\`, ` +
                `fix the cause, then \`dlq replay\` or \`dlq discard\` them.`
            }
          },
          {
            alert: "BulwarkDeadLetterQueueGrowing",
            expr: `max by (queue) (delta(${M.deadLetterDepth}[${dlqGrowth.window}])) > 0`,
            for: dlqGrowth.for,
            labels: { severity: "warning" },
            annotations: {
              summary: `Dead-letter queue of {{ $labels.queue }} keeps growing`,
              description: `The dead-letter queue of {{ $labels.queue }} grew in every ${dlqGrowth.window} window ` +
                `for ${dlqGrowth.for} (by {{ $value | humanize }} in the last one): jobs keep failing for good. ` +
                `Look at the newest entries' errors with \`npm run bulwark -- dlq list --queue {{ $labels.queue }} --since 1h\`.`
            }
          },
          waitRule,
          ...queueRules(options)
        ]
      }
    ]
  }
}

/** @internal */
export const toYaml = (rules: AlertRules.RuleFile): string =>
  Yaml.stringify(
    {
      groups: rules.groups.map((group) => ({
        name: group.name,
        interval: group.interval,
        rules: group.rules.map((rule) => ({
          alert: rule.alert,
          expr: rule.expr,
          for: rule.for,
          labels: rule.labels,
          annotations: rule.annotations
        }))
      }))
    },
    [
      "Generated by @bulwark/dashboard (AlertRules.make, the bulwark-dashboards bin): regenerate it with your own",
      "thresholds rather than editing it. With the default thresholds, bulwark.test.yml beside this file unit-tests",
      "every alert (promtool test rules <folder>/alerts/bulwark.test.yml)."
    ]
  )
