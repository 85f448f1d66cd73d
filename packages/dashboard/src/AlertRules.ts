/**
 * Prometheus alerting rules for Bulwark, generated from typed options.
 * `Build` (and the `bulwark-dashboards` bin) writes them to
 * `alerts/bulwark.yml`; with the default options, `alerts/bulwark.test.yml`
 * beside them unit-tests every alert with promtool (`promtool test rules`).
 *
 * Why code rather than hand-written YAML: the thresholds, windows and
 * per-tier wait targets are options with validated defaults (regenerate with
 * your own), the metric names come from `Metrics.catalog` (a renamed metric
 * fails the build), and the same catalogue drives the dashboards. Durations
 * are Prometheus durations (`30s`, `5m`, `1h30m`, units from largest to
 * smallest), the rules' own vocabulary; windows and targets are above zero,
 * a `for` may be `0s`.
 *
 * | alert | fires when | default |
 * |---|---|---|
 * | `BulwarkDeadLetterQueueDepth` | a queue's dead-letter queue holds more than `threshold` jobs | > 10 for 5m |
 * | `BulwarkDeadLetterQueueGrowing` | a dead-letter queue grew in every `window` for `for` | 30m / 30m |
 * | `BulwarkCircuitBreakerOpen` | a breaker has been open or half-open (not closed) for `for` | 5m |
 * | `BulwarkCircuitBreakerFlapping` | a breaker opened from closed `openings` times within `window` | 3 in 30m |
 * | `BulwarkCircuitBreakerSharedStoreDown` | an instance's shared breaker (`RedisCircuitBreaker`) has not reached its Redis store for `for`: it decides alone | 1m |
 * | `BulwarkRedisMisconfigured` | a running process counted a Redis answer showing a single-node client on a Redis Cluster (`bulwark_redis_config_errors_total`) | any, at once |
 * | `BulwarkRetryExhaustionHigh` | more than `ratio` of a policy's calls ended in `RetriesExhausted` | 10 % for 10m |
 * | `BulwarkFallbackRatioHigh` | more than `ratio` of an operation's answers came from a fallback | 50 % for 10m |
 * | `BulwarkJobWaitAboveTarget` | a queue's p95 wait (due → started) is above its tier's target | 5s / 1m / 15m, else 5m, for 10m |
 * | `BulwarkJobBacklogAboveTarget` | a tier's oldest ready job has waited longer than the tier's start-within target, and the queue is not paused | high_priority 30s, default 5m, for 1m |
 * | `BulwarkJobQueueDepthAbsent` | no process reports `bulwark_job_queue_depth` (no worker, no `reportMetrics`, or no scrape) | for 10m |
 *
 * @example
 * ```ts
 * import { writeFileSync } from "node:fs"
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * const rules = AlertRules.make({
 *   deadLetterDepth: { threshold: 0 },
 *   jobWait: { targets: { payments: "2s", reports: "30m" }, defaultTarget: "2m" }
 * })
 * writeFileSync("bulwark.yml", AlertRules.toYaml(rules))
 * ```
 *
 * @since 0.1.0
 */
import * as internal from "./internal/alertRules.js"

/**
 * A Prometheus duration: `30s`, `5m`, `1h30m`, `1d`…
 *
 * @example
 * ```ts
 * import type { AlertRules } from "@bulwark/dashboard"
 *
 * const window: AlertRules.PromDuration = "1h30m"
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export type PromDuration = string

/**
 * Thresholds and windows of the rules; every field is optional (see
 * {@link defaults}). Invalid values throw `InvalidOptionsError` naming the option.
 *
 * @example
 * ```ts
 * import type { AlertRules } from "@bulwark/dashboard"
 *
 * const options: AlertRules.Options = { deadLetterDepth: { threshold: 0, for: "1m" } }
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Options {
  readonly deadLetterDepth?: {
    /** Fires above this many dead-letter entries in one queue. Default 10. */
    readonly threshold?: number
    readonly for?: PromDuration
  }
  readonly deadLetterGrowth?: {
    /** The window `delta()` looks at. Default 30m. */
    readonly window?: PromDuration
    /** How long it must keep growing. Default 30m (≥ `window`, so one burst does not fire). */
    readonly for?: PromDuration
  }
  readonly breakerOpen?: {
    /** How long a breaker may stay open or half-open. Default 5m. */
    readonly for?: PromDuration
  }
  readonly breakerFlapping?: {
    /** closed → open transitions that count as flapping. Default 3. */
    readonly openings?: number
    readonly window?: PromDuration
  }
  readonly breakerSharedStoreDown?: {
    /** How long a shared breaker may miss its store (`bulwark_circuit_breaker_shared_store_up` 0). Default 1m. */
    readonly for?: PromDuration
  }
  readonly retryExhaustion?: {
    /** Share of calls ending in `RetriesExhausted`, in (0, 1]. Default 0.1. */
    readonly ratio?: number
    readonly window?: PromDuration
    readonly for?: PromDuration
  }
  readonly fallback?: {
    /** Share of answers not from the primary, in (0, 1]. Default 0.5. */
    readonly ratio?: number
    readonly window?: PromDuration
    readonly for?: PromDuration
  }
  readonly jobWait?: {
    /** The wait quantile compared with the targets, in (0, 1). Default 0.95. */
    readonly quantile?: number
    readonly window?: PromDuration
    readonly for?: PromDuration
    /**
     * The wait target of each queue (tier). Default
     * `{ high_priority: "5s", default: "1m", batch: "15m" }`. Pick bucket
     * bounds of `bulwark_job_wait_seconds` (1s, 5s, 10s, 30s, 1m, 5m, 15m,
     * 1h) so the quantile is exact at the target.
     */
    readonly targets?: Readonly<Record<string, PromDuration>>
    /** The target of every other queue. Default 5m. */
    readonly defaultTarget?: PromDuration
  }
  readonly jobBacklog?: {
    /**
     * The start-within target of each queue (tier): the alert fires when the
     * oldest ready job of the queue (`bulwark_job_queue_oldest_ready_seconds`)
     * has been due longer, unless the queue is paused. Default
     * `{ high_priority: "30s", default: "5m" }`.
     */
    readonly targets?: Readonly<Record<string, PromDuration>>
    /** The target of every other queue. Default: none (other queues, such as `batch`, are not checked). */
    readonly defaultTarget?: PromDuration
    /** Default 1m. */
    readonly for?: PromDuration
  }
  /**
   * The alert that no process reports the queue depth at all. `false` leaves
   * it out (an application without job queues). Default `{ for: "10m" }`.
   */
  readonly depthAbsent?: false | {
    readonly for?: PromDuration
  }
}

/**
 * One alerting rule, as Prometheus reads it.
 *
 * @example
 * ```ts
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * const rule: AlertRules.AlertingRule | undefined = AlertRules.make().groups[0]?.rules[0]
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface AlertingRule {
  readonly alert: string
  readonly expr: string
  readonly for?: PromDuration
  readonly labels: Readonly<Record<string, string>>
  readonly annotations: Readonly<Record<string, string>>
}

/**
 * @example
 * ```ts
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * const names = AlertRules.make().groups.map((group: AlertRules.RuleGroup) => group.name)
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface RuleGroup {
  readonly name: string
  readonly interval?: PromDuration
  readonly rules: ReadonlyArray<AlertingRule>
}

/**
 * A rule file: what `rule_files` in prometheus.yml loads.
 *
 * @example
 * ```ts
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * const file: AlertRules.RuleFile = AlertRules.make({ breakerOpen: { for: "10m" } })
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface RuleFile {
  readonly groups: ReadonlyArray<RuleGroup>
}

/**
 * The default thresholds, windows and tier targets.
 *
 * @example
 * ```ts
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * console.log(AlertRules.defaults.jobWait.targets) // { high_priority: "5s", default: "1m", batch: "15m" }
 * ```
 *
 * @since 0.1.0
 * @category Defaults
 */
export const defaults: typeof internal.defaults = internal.defaults

/**
 * The rules for `options` (defaults for what is left out): group
 * `bulwark-resilience` (breakers, shared breakers' store, Redis client
 * misconfiguration, retries, fallbacks) and group `bulwark-jobs` (dead
 * letters, wait and backlog targets, absent depth; the wait and the backlog
 * rules have one branch per tier with a target, tagged with a `target`
 * label, plus one for the other queues when a default is set).
 *
 * @example
 * ```ts
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * const rules = AlertRules.make({ jobWait: { targets: { payments: "2s" }, defaultTarget: "2m" } })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: (options?: Options) => RuleFile = internal.make

/**
 * The rule file as YAML, ready for `promtool check rules` and `rule_files`.
 *
 * @example
 * ```ts
 * import { AlertRules } from "@bulwark/dashboard"
 *
 * const yaml = AlertRules.toYaml(AlertRules.make())
 * ```
 *
 * @since 0.1.0
 * @category Encoding
 */
export const toYaml: (rules: RuleFile) => string = internal.toYaml
