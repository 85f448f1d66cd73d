import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as Effect from "effect/Effect"
import * as Bulkhead from "../../bulkhead/Bulkhead.js"
import type * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import * as Metric from "../../internal/metric.js"
import * as Metrics from "../../Metrics.js"
import { hostLabel, type HostSettings, type Resolved } from "./config.js"
import { HostNotAllowedError } from "./errors.js"

/**
 * What the client keeps per host: its breaker and bulkhead, and its metric
 * series, labelled once. A host is admitted once (listed, or while fewer
 * than `maxHosts` are known) and kept for the client's life: Effect never
 * forgets a label set, so the number of hosts must stay bounded.
 *
 * @internal
 */
export interface HostEntry {
  /** The `host` label: `URL.host`, without IPv6 brackets. */
  readonly host: string
  readonly breaker: CircuitBreaker.CircuitBreaker | undefined
  readonly bulkhead: Bulkhead.Bulkhead | undefined
  /** Counts a request by method and outcome, and records its duration when it went out. */
  readonly record: (method: HttpMethod, outcome: string, seconds: number | undefined) => void
}

/** @internal */
export interface Hosts {
  /** The entry of a host, made on first use. */
  readonly get: (host: string) => Effect.Effect<HostEntry, HostNotAllowedError>
  /** The entry of a host already in use. */
  readonly find: (host: string) => HostEntry | undefined
  readonly all: () => ReadonlyArray<HostEntry>
}

const recorder = (host: string): HostEntry["record"] => {
  const counters = new Map<string, (amount?: number) => void>()
  const durations = new Map<string, (value: number) => void>()
  return (method, outcome, seconds) => {
    const key = `${method} ${outcome}`
    let count = counters.get(key)
    if (count === undefined) {
      count = Metric.counter(Metrics.httpClientRequests, { method, host, status: outcome })
      counters.set(key, count)
    }
    count()
    if (seconds === undefined) return
    let observe = durations.get(method)
    if (observe === undefined) {
      observe = Metric.histogram(Metrics.httpClientRequestDuration, { method, host })
      durations.set(method, observe)
    }
    observe(seconds)
  }
}

/** @internal */
export const make = (
  resolved: Resolved,
  breakers: CircuitBreaker.RegistryService | undefined
): Effect.Effect<Hosts> =>
  Effect.gen(function*() {
    const entries = new Map<string, HostEntry>()
    // Creation is serialised, so two fibers calling a new host at once share one breaker and one bulkhead.
    const creating = yield* Effect.makeSemaphore(1)

    const refuse = (host: string, reason: HostNotAllowedError["reason"]) =>
      Effect.fail(new HostNotAllowedError({ client: resolved.name, host, reason, maxHosts: resolved.maxHosts }))

    const create = (label: string, settings: HostSettings): Effect.Effect<HostEntry> =>
      Effect.gen(function*() {
        const name = `${resolved.name}/${label}`
        // Options were validated when the client was made: a failure here is a bug, not bad input.
        const breaker = breakers === undefined ? undefined : yield* Effect.orDie(breakers.get(name))
        const bulkhead = settings.bulkhead === undefined
          ? undefined
          : yield* Effect.orDie(Bulkhead.make({ name, ...settings.bulkhead }))
        const entry: HostEntry = { host: label, breaker, bulkhead, record: recorder(label) }
        entries.set(label, entry)
        return entry
      })

    const get = (host: string): Effect.Effect<HostEntry, HostNotAllowedError> => {
      const label = hostLabel(host)
      if (label === undefined) return refuse(host, "InvalidHost")
      const existing = entries.get(label)
      if (existing !== undefined) return Effect.succeed(existing)
      return creating.withPermits(1)(Effect.suspend(() => {
        const created = entries.get(label)
        if (created !== undefined) return Effect.succeed(created)
        if (resolved.listed !== undefined) {
          const settings = resolved.listed.get(label)
          return settings === undefined ? refuse(label, "NotListed") : create(label, settings)
        }
        if (entries.size >= resolved.maxHosts) return refuse(label, "TooManyHosts")
        return create(label, resolved.unlisted)
      }))
    }

    return {
      get,
      find: (host) => {
        const label = hostLabel(host)
        return label === undefined ? undefined : entries.get(label)
      },
      all: () => Array.from(entries.values())
    }
  })
