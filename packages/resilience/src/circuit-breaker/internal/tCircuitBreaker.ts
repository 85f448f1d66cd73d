/**
 * The STM circuit breaker: the state machine of `transition.ts` (the same
 * one the synchronous breaker runs) with its state in a `TRef`, each step
 * an `STM` value.
 *
 * - **Steps.** `stepIn(signal, now)` reads the state, runs `transition` and
 *   writes the next state back only when it changed (an unchanged state is
 *   not written, so a closed breaker's permits commit read-only and wake no
 *   waiting transaction). The deadline of the state (`deadline`) lives in a
 *   `TRef` of its own, written only when it moves: the timer waits on it, and
 *   calls on a closed breaker never wake the timer.
 * - **Reporting.** Metrics, logs and events are side effects, which a
 *   transaction cannot run (it may run again, or roll back). `protect` and
 *   the Effect-level members report their own steps right after their commit.
 *   A transaction a user composes appends its steps to the outbox `TRef`, in
 *   the same transaction: they are reported, in commit order, by the
 *   reporter fiber once it commits, and never when it rolls back.
 * - **Time.** Every step reads the Clock of the fiber that made the breaker,
 *   when the step runs: a transaction run again reads the time again.
 * - **`protect` without a commit.** Every transaction that writes the state
 *   moves a plain counter while it runs (`writes`). The state one of
 *   `protect`'s own transactions saw stays the committed state while the
 *   counter has not moved, so on the happy path (a closed breaker, a success
 *   that changes no window) `protect` decides and records from it with no
 *   commit, exactly as the read-only transactions would have: about the cost
 *   of the synchronous breaker. Anything else commits.
 * - **Openings.** A jittered open-duration schedule draws each opening's
 *   duration once: a transaction that opens the breaker and is run again
 *   (after `STM.retry`) gets the same duration for the same opening epoch.
 *
 * @internal
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as STM from "effect/STM"
import * as Stream from "effect/Stream"
import * as TRef from "effect/TRef"
import type { InvalidOptionsError } from "../../Failure.js"
import type * as Region from "../../internal/region.js"
import * as Trace from "../../internal/trace.js"
import { attributes as TraceAttributes } from "../../internal/tracingAttributes.js"
import type { Options, RecordedCall, State } from "../CircuitBreaker.js"
import type { TCircuitBreaker } from "../TCircuitBreaker.js"
import { CONTROLS, TypeId } from "./circuitBreaker.js"
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
  type Settings,
  type Signal,
  type Step,
  TICK,
  transition
} from "./transition.js"

/** @internal */
export const TTypeId: unique symbol = Symbol.for("@bulwark/resilience/TCircuitBreaker")

/** A committed step of a user's transaction, waiting for the reporter fiber. */
interface Pending {
  readonly step: Step
  readonly now: number
}

type Rejection = Extract<MachineEvent, { readonly _tag: "Rejected" }>

const NO_PENDING: ReadonlyArray<Pending> = []

/** Whether reporting the step would do anything: a lone `Permitted` reports nothing. */
const reportable = (step: Step): boolean => step[1].some((event) => event._tag !== "Permitted")

/**
 * The settings with open durations drawn once per opening epoch (see the
 * module's notes): the schedule driver behind `openDurationMillis` steps its
 * schedule on every call.
 */
const drawOncePerOpening = (settings: Settings): Settings => {
  let drawnEpoch = -1
  let drawn = 0
  return {
    ...settings,
    openDurationMillis: (opening, now, epoch) => {
      if (epoch !== drawnEpoch) {
        drawn = settings.openDurationMillis(opening, now, epoch)
        drawnEpoch = epoch
      }
      return drawn
    }
  }
}

class Permit implements TCircuitBreaker.Permit {
  constructor(readonly breaker: string, readonly epoch: number, readonly startedAt: number) {}
}

/** @internal */
export class TCircuitBreakerImpl<in E, in A> implements TCircuitBreaker<E, A> {
  readonly [TypeId]: TCircuitBreaker<E, A>[typeof TypeId] = { _E: () => undefined, _A: () => undefined }
  readonly [TTypeId]: typeof TTypeId = TTypeId
  readonly name: string
  readonly state: Effect.Effect<State>
  readonly events: TCircuitBreaker<E, A>["events"]
  readonly subscribe: TCircuitBreaker<E, A>["subscribe"]
  readonly isolate: Effect.Effect<void>
  readonly close: Effect.Effect<void>
  readonly disable: Effect.Effect<void>
  readonly metricsOnly: Effect.Effect<void>
  readonly reset: Effect.Effect<void>
  readonly transactions: TCircuitBreaker.Transactions
  /** Sends `TICK` at each deadline; forked in the breaker's scope. */
  readonly timer: Effect.Effect<never>
  /** Reports the steps users' transactions committed; forked in the breaker's scope. */
  readonly reporting: Effect.Effect<never>

  private readonly settings: Settings
  private readonly classify: ReturnType<typeof classifier<E, A>>

  constructor(
    private readonly resolved: Resolved<E, A>,
    private readonly reporter: Reporter,
    private readonly clock: Clock.Clock,
    private readonly current: TRef.TRef<MachineState>,
    private readonly due: TRef.TRef<number>,
    private readonly outbox: TRef.TRef<ReadonlyArray<Pending>>,
    initialState: MachineState
  ) {
    this.known = initialState
    this.name = resolved.name
    this.settings = drawOncePerOpening(resolved.settings)
    this.classify = classifier(resolved)
    this.read = TRef.get(current)
    this.readRemembered = STM.map(this.read, (state) => {
      this.remember(state)
      return state
    })
    this.events = Stream.unwrapScoped(Effect.map(reporter.subscribe, (queue) => Stream.fromQueue(queue)))
    this.subscribe = reporter.subscribe
    this.state = Effect.suspend(() => {
      const now = this.now()
      return Effect.flatMap(STM.commit(this.stepIn(OBSERVE, now)), (step) => this.reported(step, now, step[0]._tag))
    })
    const control = (signal: Signal): Effect.Effect<void> =>
      Effect.suspend(() => {
        const now = this.now()
        return Effect.flatMap(STM.commit(this.stepIn(signal, now)), (step) => this.reported(step, now, undefined))
      })
    this.isolate = control(CONTROLS.isolate)
    this.close = control(CONTROLS.close)
    this.disable = control(CONTROLS.disable)
    this.metricsOnly = control(CONTROLS.metricsOnly)
    this.reset = control(CONTROLS.reset)
    this.transactions = this.makeTransactions()
    this.timer = this.makeTimer()
    this.reporting = Effect.forever(
      Effect.flatMap(
        STM.commit(
          STM.flatMap(
            TRef.get(outbox),
            (pending) => pending.length === 0 ? STM.retry : STM.as(TRef.set(outbox, NO_PENDING), pending)
          )
        ),
        (pending) =>
          Effect.forEach(pending, ({ now, step }) => this.reporter.report(step, now) ?? Effect.void, {
            discard: true
          })
      )
    )
  }

  private now(): number {
    return this.clock.unsafeCurrentTimeMillis()
  }

  /** Runs what reporting the step leaves to run, then succeeds with `value`. */
  private reported<X>(step: Step, now: number, value: X): Effect.Effect<X> {
    const announce = this.reporter.report(step, now)
    return announce === undefined ? Effect.succeed(value) : Effect.as(announce, value)
  }

  /** One signal as a transaction: read, compute, write back what changed. */
  private stepIn(signal: Signal, now: number): STM.STM<Step> {
    return STM.flatMap(
      this.read,
      (state) => this.write(state, transition(state, signal, now, this.settings))
    )
  }

  /**
   * Writes the state. Called only while a transaction runs (in a
   * `flatMap`), so `writes` moves before the write can commit; see `known`.
   */
  private set(next: MachineState): STM.STM<void> {
    this.writes++
    return TRef.set(this.current, next)
  }

  private write(state: MachineState, step: Step): STM.STM<Step> {
    const next = step[0]
    if (next === state) return STM.succeed(step)
    const due = deadline(next)
    const written = this.set(next)
    return STM.as(due === deadline(state) ? written : STM.zipRight(written, TRef.set(this.due, due)), step)
  }

  /** A user's step: its reportable events go to the outbox, in the same transaction. */
  private queued(step: Step, now: number): STM.STM<Step> {
    if (!reportable(step)) return STM.succeed(step)
    return STM.as(TRef.update(this.outbox, (pending) => [...pending, { step, now }]), step)
  }

  private stepQueued(signal: Signal): STM.STM<Step> {
    return STM.suspend(() => {
      const now = this.now()
      return STM.flatMap(this.stepIn(signal, now), (step) => this.queued(step, now))
    })
  }

  private rejection(decision: Rejection): CircuitOpenError {
    return new CircuitOpenError({
      breaker: this.name,
      state: decision.state,
      retryAfter: Duration.millis(decision.retryAfterMillis)
    })
  }

  private makeTransactions(): TCircuitBreaker.Transactions {
    const finish = (permit: TCircuitBreaker.Permit, failure: boolean | undefined): STM.STM<void> =>
      STM.suspend(() => {
        const now = this.now()
        const durationMillis = Math.max(0, now - permit.startedAt)
        const signal: Signal = failure === undefined
          ? { _tag: "Release", epoch: permit.epoch, durationMillis }
          : {
            _tag: "Record",
            epoch: permit.epoch,
            call: { failure, slow: durationMillis > this.resolved.slowCallMillis, durationMillis }
          }
        return STM.asVoid(STM.flatMap(this.stepIn(signal, now), (step) => this.queued(step, now)))
      })
    const state = STM.map(this.stepQueued(OBSERVE), (step): State => step[0]._tag)
    return {
      admit: STM.suspend(() => {
        const now = this.now()
        return STM.flatMap(this.stepIn(ACQUIRE, now), (step) => {
          const decision = decisionOf(step[1])
          if (decision === undefined) return STM.dieMessage(`Circuit breaker "${this.name}": no permit decision`)
          // A refusal rolls the transaction back, and what it would have reported with it.
          if (decision._tag === "Rejected") return STM.fail(this.rejection(decision))
          return STM.as(this.queued(step, now), new Permit(this.name, decision.epoch, now))
        })
      }),
      recordSuccess: (permit) => finish(permit, false),
      recordFailure: (permit) => finish(permit, true),
      release: (permit) => finish(permit, undefined),
      state,
      awaitNotOpen: STM.flatMap(
        state,
        (current) => current === "Open" || current === "ForcedOpen" ? STM.retry : STM.succeed(current)
      ),
      isolate: STM.asVoid(this.stepQueued(CONTROLS.isolate)),
      close: STM.asVoid(this.stepQueued(CONTROLS.close)),
      disable: STM.asVoid(this.stepQueued(CONTROLS.disable)),
      metricsOnly: STM.asVoid(this.stepQueued(CONTROLS.metricsOnly)),
      reset: STM.asVoid(this.stepQueued(CONTROLS.reset))
    }
  }

  /**
   * Sleeps until the deadline, sends a `TICK`, and sleeps again, woken early
   * when the deadline moves. The same step a call or a state read at that
   * instant would make, reported the same way.
   */
  private makeTimer(): Effect.Effect<never> {
    const moved = (seen: number) =>
      STM.commit(STM.flatMap(TRef.get(this.due), (due) => due === seen ? STM.retry : STM.void))
    return Effect.forever(Effect.flatMap(STM.commit(TRef.get(this.due)), (due) => {
      const now = this.now()
      if (due <= now) {
        return Effect.uninterruptible(
          Effect.flatMap(STM.commit(this.stepIn(TICK, now)), (step) => this.reported(step, now, undefined))
        )
      }
      return due === Infinity ? moved(due) : Effect.race(moved(due), Effect.sleep(due - now))
    }))
  }

  /** The state, read in a transaction (built once: `TRef.get` allocates). */
  private readonly read: STM.STM<MachineState>
  /** `read`, as `protect`'s own read-only transaction: it refreshes `known`. */
  private readonly readRemembered: STM.STM<MachineState>
  /**
   * Moved by every transaction that writes the state, while it runs, before
   * it can commit (`set`). A transaction runs and commits in one synchronous
   * step (STM in a single-threaded runtime), so a state `protect`'s own
   * transaction saw, with the count it saw, stays the committed state for as
   * long as the count has not moved: `protect` then decides from it with no
   * commit (`recall`), exactly as the read-only transaction would have. A
   * transaction that moved the count and then rolled back costs one commit,
   * never a wrong answer.
   */
  private writes = 0
  private known: MachineState
  private knownAt = 0

  /** `protect`'s admission off the happy path: the whole step. */
  private admitAt(now: number): STM.STM<Step> {
    return STM.flatMap(this.read, (state) => this.write(state, transition(state, ACQUIRE, now, this.settings)))
  }

  /**
   * Records `protect`'s call: `undefined` when `quickRecord` answered (only
   * the call to count). A transaction of `protect`'s own, which commits as
   * soon as it has run: what it leaves is `known` (see there).
   */
  private recordAt(
    epoch: number,
    call: RecordedCall,
    now: number,
    known: MachineState | undefined,
    precomputed: MachineState | undefined
  ): STM.STM<Step | undefined> {
    return STM.flatMap(this.read, (state): STM.STM<Step | undefined> => {
      // `quickRecord` is pure: computed for this very state before the commit, it need not run again.
      const quick = state === known ? precomputed : quickRecord(state, epoch, call, now)
      if (quick === undefined) {
        const step = transition(state, { _tag: "Record", epoch, call }, now, this.settings)
        const written = this.write(state, step)
        this.remember(step[0])
        return written
      }
      if (quick === state) {
        this.remember(state)
        return STM.succeed(undefined)
      }
      const written = STM.as(this.set(quick), undefined)
      this.remember(quick)
      return written
    })
  }

  /**
   * Records that `state` is the committed state as of the current `writes`.
   * Called only while one of `protect`'s own transactions runs, which then
   * commits in the same synchronous step.
   */
  private remember(state: MachineState): void {
    this.known = state
    this.knownAt = this.writes
  }

  /** The committed state without a commit, when `known` is still true; `undefined` when a commit must read it. */
  private recall(): MachineState | undefined {
    return this.writes === this.knownAt ? this.known : undefined
  }

  /**
   * Records a finished call of `protect` (`failure`), or hands its permit
   * back (`undefined`), then ends as `end`. The happy path (a `quickRecord`,
   * nobody listening) is one commit and one counter.
   */
  private finished<X, Y>(
    epoch: number,
    startedAt: number,
    failure: boolean | undefined,
    end: Effect.Effect<X, Y>
  ): Effect.Effect<X, Y> {
    const now = this.now()
    const durationMillis = Math.max(0, now - startedAt)
    if (failure === undefined) {
      const released: Signal = { _tag: "Release", epoch, durationMillis }
      return Effect.flatMap(STM.commit(this.stepIn(released, now)), (step) => this.reportThen(step, now, end))
    }
    const call: RecordedCall = { failure, slow: durationMillis > this.resolved.slowCallMillis, durationMillis }
    const known = this.recall()
    const precomputed = known === undefined ? undefined : quickRecord(known, epoch, call, now)
    // Nothing to write (a success on a clean window): the transaction would only read, so it need not run.
    if (known !== undefined && precomputed === known) return this.counted(call, now, end)
    return Effect.flatMap(
      STM.commit(this.recordAt(epoch, call, now, known, precomputed)),
      (step) => step === undefined ? this.counted(call, now, end) : this.reportThen(step, now, end)
    )
  }

  /** Counts a call `quickRecord` recorded (and publishes it, when someone listens), then runs `end`. */
  private counted<X, Y>(call: RecordedCall, now: number, end: Effect.Effect<X, Y>): Effect.Effect<X, Y> {
    const outcome = outcomeOf(call)
    this.reporter.call(outcome)
    if (this.reporter.subscribers === 0) return end
    const published = this.reporter.publish({
      _tag: "CallRecorded",
      breaker: this.name,
      outcome,
      duration: Duration.millis(call.durationMillis),
      at: now
    })
    return published === undefined ? end : Effect.zipRight(published, end)
  }

  /** Reports the step, then runs `end`. */
  private reportThen<X, Y>(step: Step, now: number, end: Effect.Effect<X, Y>): Effect.Effect<X, Y> {
    const announce = this.reporter.report(step, now)
    return announce === undefined ? end : Effect.zipRight(announce, end)
  }

  /** `f` of the committed state: `known` when still true, or a read-only commit (which refreshes `known`). */
  private withState<X, Y, Z>(f: (state: MachineState) => Effect.Effect<X, Y, Z>): Effect.Effect<X, Y, Z> {
    const known = this.recall()
    return known === undefined ? Effect.flatMap(STM.commit(this.readRemembered), f) : f(known)
  }

  /** Runs the admitted call under `restore` and records how it ended, whatever happens to it. */
  private run<A2 extends A, E2 extends E, R>(
    restore: Region.Restore,
    self: Effect.Effect<A2, E2, R>,
    epoch: number,
    startedAt: number
  ): Effect.Effect<A2, E2, R> {
    return Effect.matchCauseEffect(restore(self), {
      onSuccess: (value) => this.finished(epoch, startedAt, this.classify.successFails(value), Effect.succeed(value)),
      onFailure: (cause) =>
        this.finished(epoch, startedAt, this.classify.failureCounts(cause) ? true : undefined, Effect.failCause(cause))
    })
  }

  /**
   * Takes a permit and installs its record in one uninterruptible stretch,
   * so every admitted call's end is recorded (interrupted: its permit handed
   * back), as in `TSemaphore.withPermit`. Already inside the mask, a
   * `matchCauseEffect` does what `onExit` would, without a second mask.
   */
  readonly protect = <A2 extends A, E2 extends E, R>(
    self: Effect.Effect<A2, E2, R>
  ): Effect.Effect<A2, E2 | CircuitOpenError, R> => {
    const layer: Trace.Traceable = {
      spanName: () => `bulwark.circuit_breaker ${this.name}`,
      describe: (attributes) => {
        Trace.setOnce(attributes, TraceAttributes.breakerName, this.name)
        Trace.describeInner(self, attributes)
      }
    }
    const guarded = (restore: Region.Restore, effect: Effect.Effect<A2, E2, R>, traced: boolean) =>
      this.withState((state): Effect.Effect<A2, E2 | CircuitOpenError, R> => {
        const startedAt = this.now()
        const quick = quickPermit(state)
        if (quick !== undefined) {
          if (traced) this.traceState(state._tag)
          return this.run(restore, effect, quick, startedAt)
        }
        return Effect.flatMap(STM.commit(this.admitAt(startedAt)), (admission) => {
          const decision = decisionOf(admission[1])
          if (traced) this.traceState(decision?._tag === "Rejected" ? decision.state : admission[0]._tag)
          const announce = this.reporter.report(admission, startedAt)
          const next: Effect.Effect<A2, E2 | CircuitOpenError, R> = decision === undefined
            ? Effect.dieMessage(`Circuit breaker "${this.name}": no permit decision`)
            : decision._tag === "Rejected"
            ? Effect.fail(this.rejection(decision))
            : this.run(restore, effect, decision.epoch, startedAt)
          return announce === undefined ? next : Effect.zipRight(announce, next)
        })
      })
    return Trace.mark(
      Effect.uninterruptibleMask((restore) =>
        Trace.tracing()
          // Deferred, so the admission runs in the call's context, where its state is recorded.
          ? Trace.inCall(layer, Effect.suspend(() => guarded(restore, Trace.operation(self), true)))
          : guarded(restore, self, false)
      ),
      layer
    )
  }

  /** Records on the traced call the state that admitted it (a probe: half_open) or refused it, when this breaker names the call. */
  private traceState(state: State): void {
    const call = Trace.current()
    if (call?.holds(TraceAttributes.breakerName, this.name) === true) {
      call.attribute(TraceAttributes.breakerState, STATE_LABELS[state])
    }
  }
}

/** @internal */
export const makeIn = <E = unknown, A = unknown>(
  options: Options<E, A>,
  scope: Scope.Scope
): Effect.Effect<TCircuitBreaker<E, A>, InvalidOptionsError> =>
  Effect.gen(function*() {
    const resolved = yield* resolve(options)
    const reporter = yield* Reporter.make(resolved.name, resolved.settings.permits, resolved.initialState)
    const clock = yield* Effect.clock
    const state = initial(resolved.initialState, resolved.settings)
    const breaker = new TCircuitBreakerImpl(
      resolved,
      reporter,
      clock,
      yield* TRef.make(state),
      yield* TRef.make(deadline(state)),
      yield* TRef.make(NO_PENDING),
      state
    )
    yield* Effect.forkIn(breaker.timer, scope)
    yield* Effect.forkIn(breaker.reporting, scope)
    return breaker
  })

/** @internal */
export const make = <E = unknown, A = unknown>(
  options: Options<E, A>
): Effect.Effect<TCircuitBreaker<E, A>, InvalidOptionsError, Scope.Scope> =>
  Effect.flatMap(Effect.scope, (scope) => makeIn(options, scope))
