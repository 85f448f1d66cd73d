import type * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Region from "../../internal/region.js"
import * as Trace from "../../internal/trace.js"
import { attributes as TraceAttributes } from "../../internal/tracingAttributes.js"
import type { CircuitBreaker as Breaker, Options, RecordedCall, State } from "../CircuitBreaker.js"
import { classifier } from "./classify.js"
import { resolve, type Resolved } from "./config.js"
import { CircuitOpenError } from "./errors.js"
import { decisionOf, Reporter, STATE_LABELS } from "./report.js"
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

/** @internal */
export const isCircuitOpenError = (u: unknown): u is CircuitOpenError => u instanceof CircuitOpenError

/**
 * What count-based windows are given for a call that was not measured: they
 * read only `failure` and `slow` (no slow-call duration is set, so no call is
 * slow). Its duration is not known; nothing reads it.
 */
const UNMEASURED_SUCCESS: RecordedCall = { failure: false, slow: false, durationMillis: 0 }
const UNMEASURED_FAILURE: RecordedCall = { failure: true, slow: false, durationMillis: 0 }

/**
 * The operators' signals, by the name of the control that sends them.
 *
 * @internal
 */
export const CONTROLS: Readonly<Record<"isolate" | "close" | "disable" | "metricsOnly" | "reset", Signal>> = {
  isolate: { _tag: "ForceOpen" },
  close: { _tag: "Close" },
  disable: { _tag: "Disable" },
  metricsOnly: { _tag: "MetricsOnly" },
  reset: { _tag: "Reset" }
}

/**
 * What a shared breaker (`fleet.ts`) adds to the shell. Neither is consulted
 * on the closed happy path (`quickPermit`, `quickRecord`), so a shared breaker
 * costs what a local one costs while it is closed.
 *
 * @internal
 */
export interface Extension<E, A> {
  /** Sees every full step (a transition, a probe's outcome); synchronous, must not throw. */
  readonly stepped: (signal: Signal, step: Step, now: number) => void
  /**
   * Asked when a call finds no quick permit: a refusal or a wait (ask the
   * fleet, then admit locally) when the fleet decides, `undefined` when the
   * local machine does. Must not change the state.
   */
  readonly admit: (
    state: MachineState,
    now: number
  ) => Region.Refused<CircuitOpenError> | Region.Wait<A, E, CircuitOpenError> | undefined
}

/**
 * The shell's parts an {@link Extension} drives.
 *
 * @internal
 */
export interface Shell<E, A> {
  readonly name: string
  readonly settings: Resolved<E, A>["settings"]
  readonly current: () => MachineState
  /** Applies one signal now; answers what must still run (logs, events). */
  readonly send: (signal: Signal, now: number) => Effect.Effect<void> | undefined
  /**
   * `self` through the local machine alone: takes a permit (or is refused),
   * runs `self` under `restore`, records how it ended. For a wait's
   * continuation, with interruption off.
   */
  readonly admitLocally: <A2 extends A, E2 extends E, R>(
    restore: Region.Restore,
    self: Effect.Effect<A2, E2, R>,
    startedAt: number,
    /** Told, in the step that decided, the permit's epoch, or `undefined` for a refusal. */
    admitted?: (epoch: number | undefined) => void
  ) => Effect.Effect<A2, E2 | CircuitOpenError, R>
  /** A refused call, counted and published as the machine's refusals are. */
  readonly refuse: (
    state: "Open" | "HalfOpen",
    retryAfterMillis: number,
    now: number
  ) => Effect.Effect<never, CircuitOpenError>
}

interface Built<E, A> {
  readonly breaker: Breaker<E, A>
  readonly shell: Shell<E, A>
  /**
   * Moves the state when its time comes (`deadline`) with no call: sleeps
   * until the deadline, sends a `TICK`, and sleeps again, woken early when
   * the state changes. Runs forever; a scoped breaker forks it in its scope.
   */
  readonly timer: Effect.Effect<never>
}

const build = <E, A>(
  resolved: Resolved<E, A>,
  reporter: Reporter,
  extend?: (shell: Shell<E, A>) => Extension<E, A>
): Built<E, A> => {
  const { name, settings } = resolved
  const { successFails, failureCounts } = classifier(resolved)

  // One synchronous transition per step is atomic: fibers interleave only between effects; an STM commit costs ~2.6 µs, more than the rest of a call.
  let current: MachineState = initial(resolved.initialState, settings)
  /** Set once the shell below exists (the extension is built over it). */
  let extension: Extension<E, A> | undefined = undefined

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
    extension?.stepped(signal, next, now)
    return next
  }

  const report = (step: Step, now: number, measured = true) => reporter.report(step, now, measured)

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
    if (!Number.isNaN(span.startedAt) && (resolved.measureEveryCall || reporter.subscribers > 0)) {
      const now = span.endedAt()
      const durationMillis = now - span.startedAt
      const call: RecordedCall = { failure, slow: durationMillis > resolved.slowCallMillis, durationMillis }
      const next = quickRecord(current, epoch, call, now)
      if (next === undefined) return report(step({ _tag: "Record", epoch, call }, now), now)
      current = next
      const outcome = outcomeOf(call)
      reporter.call(outcome)
      return reporter.publish({
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
      reporter.call(outcomeOf(call))
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

  /** The local machine's admission: a permit's epoch, or a refusal. */
  const enterLocally = (now: number): number | Region.Admitted | Region.Refused<CircuitOpenError> => {
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
  }

  const exitSuccess = (epoch: number, value: A, span: Region.Span) => record(epoch, successFails(value), span)
  const exitFailure = (epoch: number, cause: Cause.Cause<E>, span: Region.Span) =>
    failureCounts(cause) ? record(epoch, true, span) : release(epoch, span)

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
    needsStart: () => resolved.measureEveryCall || reporter.subscribers > 0 || quickPermit(current) === undefined,
    enter: (span) => {
      const quick = quickPermit(current)
      if (quick !== undefined) return quick
      return extension?.admit(current, span.startedAt) ?? enterLocally(span.startedAt)
    },
    exitSuccess,
    exitFailure
  }

  const admitLocally = <A2 extends A, E2 extends E, R>(
    restore: Region.Restore,
    self: Effect.Effect<A2, E2, R>,
    startedAt: number,
    admitted?: (epoch: number | undefined) => void
  ): Effect.Effect<A2, E2 | CircuitOpenError, R> =>
    Effect.clockWith((clock): Effect.Effect<A2, E2 | CircuitOpenError, R> => {
      const span: Region.Span = { startedAt, endedAt: () => clock.unsafeCurrentTimeMillis() }
      const admission = enterLocally(clock.unsafeCurrentTimeMillis())
      if (admission instanceof Region.Refused) {
        admitted?.(undefined)
        return admission.effect
      }
      const epoch = typeof admission === "number" ? admission : admission.token
      admitted?.(epoch)
      const run = Effect.matchCauseEffect(restore(self), {
        onFailure: (cause) => {
          const after = exitFailure(epoch, cause, span)
          return after === undefined ? Effect.failCause(cause) : Effect.zipRight(after, Effect.failCause(cause))
        },
        onSuccess: (value) => {
          const after = exitSuccess(epoch, value, span)
          return after === undefined ? Effect.succeed(value) : Effect.as(after, value)
        }
      })
      return typeof admission === "number" ? run : Effect.zipRight(admission.announce, run)
    })

  const refuse = (state: "Open" | "HalfOpen", retryAfterMillis: number, now: number) => {
    const refused = rejected({ _tag: "Rejected", state, retryAfterMillis })
    const announce = report([current, [{ _tag: "Rejected", state, retryAfterMillis }]], now)
    return announce === undefined ? refused : Effect.zipRight(announce, refused)
  }

  const protect = <A2 extends A, E2 extends E, R>(
    self: Effect.Effect<A2, E2, R>
  ): Effect.Effect<A2, E2 | CircuitOpenError, R> => Region.protect(self, gate)

  const control = (signal: Signal): Effect.Effect<void> =>
    Effect.clockWith((clock) => {
      const now = clock.unsafeCurrentTimeMillis()
      return report(step(signal, now), now) ?? Effect.void
    })

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

  const shell: Shell<E, A> = {
    name,
    settings,
    current: () => current,
    send: (signal, now) => report(step(signal, now), now),
    admitLocally,
    refuse
  }
  extension = extend?.(shell)

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
    events: Stream.unwrapScoped(Effect.map(reporter.subscribe, (queue) => Stream.fromQueue(queue))),
    subscribe: reporter.subscribe,
    isolate: control(CONTROLS.isolate),
    close: control(CONTROLS.close),
    disable: control(CONTROLS.disable),
    metricsOnly: control(CONTROLS.metricsOnly),
    reset: control(CONTROLS.reset)
  }
  return { breaker, shell, timer }
}

const makeBuilt = <E, A>(
  options: Options<E, A>,
  extend?: (shell: Shell<E, A>) => Extension<E, A>
): Effect.Effect<Built<E, A>, InvalidOptionsError> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const reporter = yield* Reporter.make(resolved.name, resolved.settings.permits, resolved.initialState)
    return build(resolved, reporter, extend)
  })

/**
 * A breaker extended by `extend` (a shared breaker), its timer in `scope`.
 *
 * @internal
 */
export const makeExtended = <E, A>(
  options: Options<E, A>,
  scope: Scope.Scope,
  extend: (shell: Shell<E, A>) => Extension<E, A>
): Effect.Effect<Breaker<E, A>, InvalidOptionsError> =>
  Effect.flatMap(makeBuilt(options, extend), (built) => Effect.as(Effect.forkIn(built.timer, scope), built.breaker))

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
