/**
 * What a breaker's steps tell the world: metrics, logs and events. Shared by
 * the synchronous breaker and the STM one, so both report a step the same way.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as MetricLabel from "effect/MetricLabel"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Metric from "../../internal/metric.js"
import * as Metrics from "../../Metrics.js"
import type { Event, Outcome, State, StateLabel } from "../CircuitBreaker.js"
import { logTransition } from "./log.js"
import type { MachineEvent, MachineState, Step } from "./transition.js"

/** Events kept for a subscriber that falls behind; older ones are dropped, calls never wait. */
const EVENT_CAPACITY = 1024

const STATES: ReadonlyArray<State> = ["Closed", "Open", "HalfOpen", "ForcedOpen", "Disabled", "MetricsOnly"]

/** @internal */
export const STATE_LABELS: Readonly<Record<State, StateLabel>> = {
  Closed: "closed",
  Open: "open",
  HalfOpen: "half_open",
  ForcedOpen: "forced_open",
  Disabled: "disabled",
  MetricsOnly: "metrics_only"
}

interface BreakerMetrics {
  readonly state: (current: State) => void
  readonly call: (outcome: Outcome) => void
  readonly transition: (from: State, to: State) => void
}

/**
 * Every series' labels are built once here and passed to the untagged metric:
 * Effect caches a series' hook by the identity of that label array, while
 * `Metric.tagged` would build a new array (and hash the key again) on every
 * update. Updates bypass fiber-level metric tags on purpose: the only label
 * values are the breaker's name and fixed words, which keeps series bounded.
 */
const makeMetrics = (name: string): BreakerMetrics => {
  const breaker = MetricLabel.make("breaker", name)
  const gauges = STATES.map((state) => [state, [breaker, MetricLabel.make("state", STATE_LABELS[state])]] as const)
  // Counted on every call: each outcome's series keeps its hook (see `internal/metric.ts`).
  const outcomeSeries = (outcome: Outcome) =>
    Metric.counterSeries("bulwark_circuit_breaker_calls_total", { breaker: name, outcome })
  const calls: Readonly<Record<Outcome, (amount?: number) => void>> = {
    success: outcomeSeries("success"),
    failure: outcomeSeries("failure"),
    slow_success: outcomeSeries("slow_success"),
    slow_failure: outcomeSeries("slow_failure"),
    rejected: outcomeSeries("rejected"),
    ignored: outcomeSeries("ignored")
  }
  const transitions = new Map<string, ReadonlyArray<MetricLabel.MetricLabel>>()
  return {
    state: (current) => {
      for (const [state, labels] of gauges) Metrics.circuitBreakerState.unsafeUpdate(state === current ? 1 : 0, labels)
    },
    call: (outcome) => calls[outcome](),
    transition: (from, to) => {
      const key = `${from}>${to}`
      let labels = transitions.get(key)
      if (labels === undefined) {
        labels = [breaker, MetricLabel.make("from", STATE_LABELS[from]), MetricLabel.make("to", STATE_LABELS[to])]
        transitions.set(key, labels)
      }
      Metrics.circuitBreakerTransitions.unsafeUpdate(1, labels)
    }
  }
}

/**
 * One breaker's metrics, logs and event stream.
 *
 * @internal
 */
export class Reporter {
  /** Events are only built when someone listens: the hot path pays nothing for the stream otherwise. */
  subscribers = 0
  private readonly metrics: BreakerMetrics
  /**
   * The epoch of the state the gauge shows. A state's epoch grows with every
   * move, so a step reported after a later one (possible when steps commit in
   * STM and are reported after their commit) cannot set the gauge back.
   */
  private gaugeEpoch = -1
  readonly subscribe: Effect.Effect<Queue.Dequeue<Event>, never, Scope.Scope>

  constructor(
    readonly name: string,
    private readonly permits: number,
    initialState: State,
    private readonly pubsub: PubSub.PubSub<Event>
  ) {
    this.metrics = makeMetrics(name)
    this.metrics.state(initialState)
    this.subscribe = Effect.zipRight(
      Effect.acquireRelease(
        Effect.sync(() => {
          this.subscribers++
        }),
        () =>
          Effect.sync(() => {
            this.subscribers--
          })
      ),
      PubSub.subscribe(pubsub)
    )
  }

  static make(name: string, permits: number, initialState: State): Effect.Effect<Reporter> {
    return Effect.map(
      PubSub.sliding<Event>(EVENT_CAPACITY),
      (pubsub) => new Reporter(name, permits, initialState, pubsub)
    )
  }

  /** Counts one call outcome. */
  call(outcome: Outcome): void {
    this.metrics.call(outcome)
  }

  /** Publishes one event, when someone listens. */
  publish(event: Event): Effect.Effect<void> | undefined {
    return this.subscribers === 0 ? undefined : PubSub.publish(this.pubsub, event)
  }

  private showState(state: MachineState): void {
    if (state.epoch < this.gaugeEpoch) return
    this.gaugeEpoch = state.epoch
    this.metrics.state(state._tag)
  }

  /**
   * Updates the metrics at once (so the gauge always shows the state just
   * written) and returns what must still run as an effect: logs of
   * transitions and the events for subscribers. `undefined` when there is
   * nothing, which is the happy path. `measured` is false for a call whose
   * duration was not measured: no `CallRecorded` event is published for it.
   */
  report([state, events]: Step, now: number, measured = true): Effect.Effect<void> | undefined {
    if (events.length === 0) return undefined
    const name = this.name
    let effects: Array<Effect.Effect<void>> | undefined
    const published: Array<Event> | undefined = this.subscribers > 0 ? [] : undefined
    for (const event of events) {
      switch (event._tag) {
        case "Permitted":
          break
        case "Rejected":
          this.metrics.call("rejected")
          published?.push({
            _tag: "CallRejected",
            breaker: name,
            state: event.state,
            retryAfter: Duration.millis(event.retryAfterMillis),
            at: now
          })
          break
        case "Recorded":
          this.metrics.call(event.outcome)
          if (measured) {
            published?.push({
              _tag: "CallRecorded",
              breaker: name,
              outcome: event.outcome,
              duration: Duration.millis(event.durationMillis),
              at: now
            })
          }
          break
        case "Transitioned":
          this.metrics.transition(event.from, event.to)
          this.showState(state)
          ;(effects ??= []).push(logTransition(name, event, this.permits))
          published?.push({
            _tag: "StateChanged",
            breaker: name,
            from: event.from,
            to: event.to,
            reason: event.reason,
            at: now
          })
          break
        case "ThresholdExceeded":
          ;(effects ??= []).push(
            Effect.annotateLogs(
              Effect.logWarning(
                `Circuit breaker "${name}" would have opened (metrics only): ${event.trip.description}`
              ),
              { breaker: name, strategy: event.trip.strategy, observed: event.trip.observed }
            )
          )
          published?.push({ _tag: "ThresholdExceeded", breaker: name, trip: event.trip, at: now })
          break
        case "Reset":
          ;(effects ??= []).push(
            Effect.annotateLogs(Effect.logInfo(`Circuit breaker "${name}" was reset`), { breaker: name })
          )
          published?.push({ _tag: "Reset", breaker: name, at: now })
          break
      }
    }
    if (published !== undefined && published.length > 0) {
      ;(effects ??= []).push(PubSub.publishAll(this.pubsub, published))
    }
    if (effects === undefined) return undefined
    return effects.length === 1 && effects[0] !== undefined ? effects[0] : Effect.all(effects, { discard: true })
  }
}

/** @internal */
export type Decision = Extract<MachineEvent, { readonly _tag: "Permitted" | "Rejected" }>

/** The permit decision among a step's events (the last one: an expiry may come first). @internal */
export const decisionOf = (events: ReadonlyArray<MachineEvent>): Decision | undefined => {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]
    if (event !== undefined && (event._tag === "Permitted" || event._tag === "Rejected")) return event
  }
  return undefined
}
