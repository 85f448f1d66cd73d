import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import type * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Failure from "../../Failure.js"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Region from "../../internal/region.js"
import * as Trace from "../../internal/trace.js"
import { attributes as TraceAttributes } from "../../internal/tracingAttributes.js"
import * as Metrics from "../../Metrics.js"
import type { CircuitBreaker as Breaker, Event, Options, Outcome, RecordedCall, State } from "../CircuitBreaker.js"
import type * as CircuitBreaker from "../CircuitBreaker.js"
import { resolve, type Resolved } from "./config.js"
import { CircuitOpenError } from "./errors.js"
import { logTransition } from "./log.js"
import {
  ACQUIRE,
  deadline,
  initial,
  type MachineEvent,
  type MachineState,
  OBSERVE,
  outcomeOf,
  quickPermit,
  quickRecord,
  type Signal,
  type Step,
  TICK,
  transition
} from "./transition.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/CircuitBreaker")

/** Events kept for a subscriber that falls behind; older ones are dropped, calls never wait. */
const EVENT_CAPACITY = 1024

const STATES: ReadonlyArray<State> = ["Closed", "Open", "HalfOpen", "ForcedOpen", "Disabled", "MetricsOnly"]

/** @internal */
export const STATE_LABELS: Readonly<Record<State, CircuitBreaker.StateLabel>> = {
  Closed: "closed",
  Open: "open",
  HalfOpen: "half_open",
  ForcedOpen: "forced_open",
  Disabled: "disabled",
  MetricsOnly: "metrics_only"
}

const FORCE_OPEN: Signal = { _tag: "ForceOpen" }
const CLOSE: Signal = { _tag: "Close" }
const DISABLE: Signal = { _tag: "Disable" }
const METRICS_ONLY: Signal = { _tag: "MetricsOnly" }
const RESET: Signal = { _tag: "Reset" }

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

/** @internal */
export const isCircuitOpenError = (u: unknown): u is CircuitOpenError => u instanceof CircuitOpenError

/**
 * What count-based windows are given for a call that was not measured: they
 * read only `failure` and `slow` (no slow-call duration is set, so no call is
 * slow). Its duration is not known; nothing reads it.
 */
const UNMEASURED_SUCCESS: RecordedCall = { failure: false, slow: false, durationMillis: 0 }
const UNMEASURED_FAILURE: RecordedCall = { failure: true, slow: false, durationMillis: 0 }

type Decision = Extract<MachineEvent, { readonly _tag: "Permitted" | "Rejected" }>

/** How deep `RetriesExhausted` wrappers are unwrapped: enough for any real stack, and no loop on a cyclic one. */
const MAX_UNWRAP = 32

/**
 * Whether a local policy refused the call (`Failure.isRejection`), also when
 * the refusal is the last failure of an exhausted retry, however many retry
 * layers wrap it: retries that only ever met a full bulkhead, an open inner
 * breaker or a rate limit never reached the dependency, so they say nothing
 * about its health.
 *
 * @internal
 */
export const isRejectionDeep = (error: unknown): boolean => {
  let current = error
  for (let depth = 0; depth <= MAX_UNWRAP; depth++) {
    if (Failure.isRejection(current)) return true
    if (!Failure.isRetriesExhausted(current)) return false
    current = current.lastFailure
  }
  return false
}

const decisionOf = (events: ReadonlyArray<MachineEvent>): Decision | undefined => {
  for (let i = events.length - 1; i >= 0; i--) {
    const event = events[i]
    if (event !== undefined && (event._tag === "Permitted" || event._tag === "Rejected")) return event
  }
  return undefined
}

interface Built<E, A> {
  readonly breaker: Breaker<E, A>
  /**
   * Moves the state when its time comes (`deadline`) with no call: sleeps
   * until the deadline, sends a `TICK`, and sleeps again, woken early when
   * the state changes. Runs forever; a scoped breaker forks it in its scope.
   */
  readonly timer: Effect.Effect<never>
}

const build = <E, A>(
  resolved: Resolved<E, A>,
  pubsub: PubSub.PubSub<Event>
): Built<E, A> => {
  const { name, settings } = resolved
  const metrics = makeMetrics(name)
  metrics.state(resolved.initialState)
  // Events are only built when someone listens: the hot path pays nothing for the stream otherwise.
  let subscribers = 0

  // One synchronous transition per step is atomic: fibers interleave only between effects; an STM commit costs ~2.6 µs, more than the rest of a call.
  let current: MachineState = initial(resolved.initialState, settings)

  /** Bumped whenever the deadline changes; the timer's wake-up, when it waits. */
  let version = 0
  let wake: (() => void) | undefined

  /** Applies one signal: read, compute, write back, in one synchronous step. */
  const step = (signal: Signal, now: number): Step => {
    const next = transition(current, signal, now, settings)
    if (next[0] !== current && deadline(next[0]) !== deadline(current)) {
      version++
      wake?.()
    }
    current = next[0]
    return next
  }

  /**
   * Updates the metrics at once (so the gauge always shows the state just
   * written) and returns what must still run as an effect: logs of
   * transitions and the events for subscribers. `undefined` when there is
   * nothing, which is the happy path.
   */
  const report = ([state, events]: Step, now: number, measured = true): Effect.Effect<void> | undefined => {
    if (events.length === 0) return undefined
    let effects: Array<Effect.Effect<void>> | undefined
    const published: Array<Event> | undefined = subscribers > 0 ? [] : undefined
    for (const event of events) {
      switch (event._tag) {
        case "Permitted":
          break
        case "Rejected":
          metrics.call("rejected")
          published?.push({
            _tag: "CallRejected",
            breaker: name,
            state: event.state,
            retryAfter: Duration.millis(event.retryAfterMillis),
            at: now
          })
          break
        case "Recorded":
          metrics.call(event.outcome)
          // A call that was not measured began while nobody listened: it has no duration to tell.
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
          metrics.transition(event.from, event.to)
          metrics.state(state._tag)
          ;(effects ??= []).push(logTransition(name, event, settings.permits))
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
    if (published !== undefined && published.length > 0) (effects ??= []).push(PubSub.publishAll(pubsub, published))
    if (effects === undefined) return undefined
    return effects.length === 1 && effects[0] !== undefined ? effects[0] : Effect.all(effects, { discard: true })
  }

  const errorCounts = (error: E): boolean => {
    if (resolved.ignoreError?.(error) === true) return false
    if (resolved.recordError?.(error) === true) return true
    if (isRejectionDeep(error)) return resolved.countRejections
    return !Failure.isTerminal(error)
  }

  /** Whether a success counts as a failure. A throwing predicate must not skip the record (that would leak a half-open permit): the call counts as failed. */
  const successFails = (value: A): boolean => {
    try {
      return resolved.recordResult !== undefined && resolved.recordResult(value)
    } catch {
      return true
    }
  }

  /** Whether a failed call counts as a failure; `undefined` when it hands its permit back uncounted. */
  const failureCounts = (cause: Cause.Cause<E>): true | undefined => {
    try {
      if (Cause.isDie(cause)) return true
      const error = Cause.failureOption(cause)
      // Interrupted calls and errors that do not count hand their permit back.
      return Option.isSome(error) && errorCounts(error.value) ? true : undefined
    } catch {
      return true
    }
  }

  /**
   * Records a finished call. When `quickRecord` answers, that is all
   * `transition` would have done, and `report` of its lone `Recorded` event
   * comes down to the call counter and, for subscribers, one event.
   *
   * A call is measured (its duration and end time read from the Clock) when
   * the options need every call measured (see `measureEveryCall`) or when it
   * was admitted while the breaker had a subscriber. Otherwise the windows
   * are count-based and read neither; the end time is then read only for a
   * call that changes more than the windows (a trip, a probe), and no
   * `CallRecorded` event is published for it (it began while nobody listened).
   */
  const record = (epoch: number, failure: boolean, span: Region.Span): Effect.Effect<void> | undefined => {
    if (!Number.isNaN(span.startedAt) && (resolved.measureEveryCall || subscribers > 0)) {
      const now = span.endedAt()
      const durationMillis = now - span.startedAt
      const call: RecordedCall = { failure, slow: durationMillis > resolved.slowCallMillis, durationMillis }
      const next = quickRecord(current, epoch, call, now)
      if (next === undefined) return report(step({ _tag: "Record", epoch, call }, now), now)
      current = next
      const outcome = outcomeOf(call)
      metrics.call(outcome)
      if (subscribers === 0) return undefined
      return PubSub.publish(pubsub, {
        _tag: "CallRecorded",
        breaker: name,
        outcome,
        duration: Duration.millis(durationMillis),
        at: now
      })
    }
    const call = failure ? UNMEASURED_FAILURE : UNMEASURED_SUCCESS
    const next = quickRecord(current, epoch, call, span.startedAt)
    if (next !== undefined) {
      current = next
      metrics.call(outcomeOf(call))
      return undefined
    }
    const now = span.endedAt()
    return report(step({ _tag: "Record", epoch, call }, now), now, false)
  }

  /** Hands a permit back uncounted (an interrupted call, an error that does not count). */
  const release = (epoch: number, span: Region.Span): Effect.Effect<void> | undefined => {
    const now = span.endedAt()
    const measured = !Number.isNaN(span.startedAt)
    return report(
      step({ _tag: "Release", epoch, durationMillis: measured ? now - span.startedAt : 0 }, now),
      now,
      measured
    )
  }

  const rejected = (decision: Extract<MachineEvent, { readonly _tag: "Rejected" }>) =>
    Effect.fail(
      new CircuitOpenError({
        breaker: name,
        state: decision.state,
        retryAfter: Duration.millis(decision.retryAfterMillis)
      })
    )

  /**
   * The breaker's steps in an isolation region (see `internal/region.ts`),
   * run with interruption off: taking the permit and installing its release
   * leave no interruption window, and the call's outcome is recorded whatever
   * happens to it, so a permit is always handed back. The token is the
   * permit's epoch.
   */
  const spanName = `bulwark.circuit_breaker ${name}`
  const gate: Region.Gate<A, E, CircuitOpenError> = {
    trace: {
      spanName: () => spanName,
      describe: (attributes) => Trace.setOnce(attributes, TraceAttributes.breakerName, name),
      // After `enter`: the state that admitted the call (a probe: half_open) or refused it.
      entered: (call) => {
        if (call.holds(TraceAttributes.breakerName, name)) {
          call.attribute(TraceAttributes.breakerState, STATE_LABELS[current._tag])
        }
      }
    },
    // The start time is read only for what uses a call's duration or the time on entry (see `record`).
    needsStart: () => resolved.measureEveryCall || subscribers > 0 || quickPermit(current) === undefined,
    enter: (span) => {
      const quick = quickPermit(current)
      if (quick !== undefined) return quick
      const now = span.startedAt
      const acquired = step(ACQUIRE, now)
      const announce = report(acquired, now)
      const decision = decisionOf(acquired[1])
      if (decision === undefined || decision._tag === "Rejected") {
        const refused = decision === undefined
          ? Effect.dieMessage(`Circuit breaker "${name}": no permit decision`)
          : rejected(decision)
        return new Region.Refused(announce === undefined ? refused : Effect.zipRight(announce, refused))
      }
      return announce === undefined ? decision.epoch : new Region.Admitted(decision.epoch, announce)
    },
    exitSuccess: (epoch, value, span) => record(epoch, successFails(value), span),
    exitFailure: (epoch, cause, span) =>
      failureCounts(cause) === true ? record(epoch, true, span) : release(epoch, span)
  }

  const protect = <A2 extends A, E2 extends E, R>(
    self: Effect.Effect<A2, E2, R>
  ): Effect.Effect<A2, E2 | CircuitOpenError, R> => Region.protect(self, gate)

  const control = (signal: Signal): Effect.Effect<void> =>
    Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      return report(step(signal, now), now) ?? Effect.void
    })

  const subscribe: Effect.Effect<Queue.Dequeue<Event>, never, Scope.Scope> = Effect.zipRight(
    Effect.acquireRelease(
      Effect.sync(() => {
        subscribers++
      }),
      () =>
        Effect.sync(() => {
          subscribers--
        })
    ),
    PubSub.subscribe(pubsub)
  )

  /** Resumes once the deadline has changed since `seen` (at once when it already has). */
  const changedSince = (seen: number): Effect.Effect<void> =>
    Effect.async<void>((resume) => {
      if (version !== seen) return resume(Effect.void)
      wake = () => {
        wake = undefined
        resume(Effect.void)
      }
      return Effect.sync(() => {
        wake = undefined
      })
    })

  const timer: Effect.Effect<never> = Effect.clockWith((clock) =>
    Effect.forever(Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      const due = deadline(current)
      if (due <= now) {
        // The same step, metrics, log and event as a call or state read at this instant would make.
        return Effect.uninterruptible(report(step(TICK, now), now) ?? Effect.void)
      }
      const changed = changedSince(version)
      return due === Infinity ? changed : Effect.race(changed, Effect.sleep(due - now))
    }))
  )

  const breaker: Breaker<E, A> = {
    [TypeId]: { _E: () => undefined, _A: () => undefined },
    name,
    state: Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      const observed = step(OBSERVE, now)
      const state: State = observed[0]._tag
      const announce = report(observed, now)
      return announce === undefined ? Effect.succeed(state) : Effect.as(announce, state)
    }),
    protect,
    events: Stream.unwrapScoped(Effect.map(subscribe, (queue) => Stream.fromQueue(queue))),
    subscribe,
    isolate: control(FORCE_OPEN),
    close: control(CLOSE),
    disable: control(DISABLE),
    metricsOnly: control(METRICS_ONLY),
    reset: control(RESET)
  }
  return { breaker, timer }
}

const makeBuilt = <E, A>(options: Options<E, A>): Effect.Effect<Built<E, A>, InvalidOptionsError> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const pubsub = yield* PubSub.sliding<Event>(EVENT_CAPACITY)
    return build(resolved, pubsub)
  })

/** @internal */
export const make = <E = unknown, A = unknown>(
  options: Options<E, A>
): Effect.Effect<Breaker<E, A>, InvalidOptionsError> => Effect.map(makeBuilt(options), (built) => built.breaker)

/**
 * A breaker whose timer fiber runs in `scope` (interrupted when it closes;
 * the breaker then goes on lazily, as one from `make`).
 *
 * @internal
 */
export const makeIn = <E = unknown, A = unknown>(
  options: Options<E, A>,
  scope: Scope.Scope
): Effect.Effect<Breaker<E, A>, InvalidOptionsError> =>
  Effect.flatMap(makeBuilt(options), (built) => Effect.as(Effect.forkIn(built.timer, scope), built.breaker))

/** @internal */
export const makeScoped = <E = unknown, A = unknown>(
  options: Options<E, A>
): Effect.Effect<Breaker<E, A>, InvalidOptionsError, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) => makeIn(options, scope))

/** @internal */
export const protect = dual(
  2,
  <A extends A0, E extends E0, R, E0, A0>(
    self: Effect.Effect<A, E, R>,
    breaker: Breaker<E0, A0>
  ): Effect.Effect<A, E | CircuitOpenError, R> => breaker.protect(self)
)

const isOtherError = <E>(error: E): error is Exclude<E, CircuitOpenError> => !isCircuitOpenError(error)

/** @internal */
export const orElseIfOpen = dual(
  2,
  <A, E, R, A2, E2, R2>(
    self: Effect.Effect<A, E, R>,
    fallback: (error: CircuitOpenError) => Effect.Effect<A2, E2, R2>
  ): Effect.Effect<A | A2, Exclude<E, CircuitOpenError> | E2, R | R2> =>
    Effect.catchAll(self, (error): Effect.Effect<A2, Exclude<E, CircuitOpenError> | E2, R2> => {
      if (isOtherError(error)) return Effect.fail(error)
      if (isCircuitOpenError(error)) return fallback(error)
      return Effect.die(error)
    })
)
