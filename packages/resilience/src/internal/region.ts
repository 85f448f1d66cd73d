/**
 * One uninterruptible region for a stack of isolation layers (circuit
 * breakers, bulkheads) around an effect.
 *
 * Every layer must see every call it admitted end, interruption included, so
 * each one takes its permit with interruption off and runs the call under
 * `restore`. In effect 3.22 that mask costs four runtime-flag changes and
 * their revert frames, about 0.4 µs a call: more than the layer's own work.
 * Nested layers each paid it. Here a layer contributes a {@link Gate} (a
 * synchronous admission step and synchronous exit steps) and a layer's
 * `protect`, applied to an effect that is already a region, adds its gate to
 * that region instead of nesting a second one. So a breaker around a bulkhead
 * pays one mask.
 *
 * The behaviour is that of the nested layers:
 * - Gates are entered outermost first and exited innermost first, all in one
 *   synchronous step each way, with interruption off; each gate sees the
 *   outcome the nested layers inside it would have produced (a refusal of an
 *   inner gate is a failure to the outer ones).
 * - A gate that cannot decide at once (a bulkhead that must queue) answers
 *   {@link Wait}: the layers from it inward then run nested, the standard way,
 *   inside the outer gates, which still see the outcome.
 * - Logs and events a gate returns run after the synchronous steps, in the
 *   order the nested layers would have run them.
 * The one difference is for the better: nested layers leave an interruptible
 * instant between two layers' admissions; a region has none.
 *
 * Per call, a region reads the Clock only for a gate that asks for the time
 * (about 50 ns a read on this kind of machine). When no gate needs the start
 * time of a call, the bracket around the effect is not built per call either:
 * the one built for the same tokens (a breaker's epoch changes only with its
 * state) is used again, so the happy path allocates nothing of its own.
 *
 * A retry around a region takes its first attempt through the same region
 * ({@link Fusable.firstTry}): the region's entry time is the retry's start,
 * and the region's failure handler hands a typed failure to the retry as a
 * `catchAll` around the region would (see {@link recovering}), so the retry's
 * happy path adds no step of its own.
 *
 * When the fiber traces Bulwark's layers (see `internal/trace.ts`), a region
 * runs its gates nested instead, one region each, inside one span for the
 * call: the same behaviour, slower, and only then. The question costs one
 * read of a counter per call while no `Tracing` layer is open.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Fiber from "effect/Fiber"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as Trace from "./trace.js"

/** The `restore` of `Effect.uninterruptibleMask`. */
export type Restore = <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>

/** A permit taken with something to log or publish before the call runs. */
export class Admitted {
  constructor(readonly token: number, readonly announce: Effect.Effect<void>) {}
}

/** No permit: the call fails at once with `effect` (which may log first). */
export class Refused<E> {
  constructor(readonly effect: Effect.Effect<never, E>) {}
}

/**
 * No decision now: the gate's layer must run around the rest the standard way
 * (for a bulkhead: queue). Answering it must not have changed any state.
 */
export interface Wait<in A, in E, out E2> {
  readonly _tag: "Wait"
  readonly run: <A2 extends A, E3 extends E, R>(
    restore: Restore,
    self: Effect.Effect<A2, E3, R>
  ) => Effect.Effect<A2, E3 | E2, R>
}

/**
 * What a gate answers for one call: a token (a number the gate gets back when
 * the call ends, such as the breaker's epoch), or one of the classes above.
 */
export type Admission<A, E, E2> = number | Admitted | Refused<E2> | Wait<A, E, E2>

/**
 * When a call started and when it ended. `startedAt` is the Clock's time on
 * entry when a gate asked for it (see {@link Gate.needsStart}), `NaN`
 * otherwise; `endedAt` reads the Clock, only when called.
 */
export interface Span {
  readonly startedAt: number
  endedAt(): number
}

/** What a gate adds to a traced call (see `internal/trace.ts`). Called with interruption off; must not throw. */
export interface GateTrace {
  /** The span's name when this gate is the call's outermost layer. */
  readonly spanName: () => string
  /** Adds the gate's own attributes (its name) with `Trace.setOnce`. */
  readonly describe: (attributes: Trace.Attributes) => void
  /** Records what entering found (a breaker's state), once `enter` has answered. */
  readonly entered?: (call: Trace.Call) => void
  /** Records how long the call waited after `enter` answered {@link Wait}, once it is admitted. */
  readonly waited?: (call: Trace.Call, millis: number) => void
}

/**
 * One isolation layer's synchronous steps. `A` and `E` are what the effect
 * inside it produces; `E2` is the error its refusals add. Every step is
 * called with interruption off and must not throw.
 */
export interface Gate<in A, in E, out E2> {
  /** What the gate adds to a traced call; nothing when left out. */
  readonly trace?: GateTrace
  /** Whether this call needs its start time: `false` for never, or asked once per call, just before `enter`. */
  readonly needsStart: false | (() => boolean)
  readonly enter: (span: Span) => Admission<A, E, E2>
  /** The call succeeded; answers what to log or publish, if anything. */
  readonly exitSuccess: (token: number, value: A, span: Span) => Effect.Effect<void> | undefined
  /** The call failed, died or was interrupted; answers what to log or publish, if anything. */
  readonly exitFailure: (token: number, cause: Cause.Cause<E>, span: Span) => Effect.Effect<void> | undefined
}

/** What a region offers to the layer or retry put around it. */
export interface Fusable<A, E, R> {
  /** The region with one more gate, outermost. */
  readonly wrap: <E2>(gate: Gate<A, E, E2>) => Effect.Effect<A, E | E2, R>
  /**
   * The region as a retry's first attempt, equal to
   * `Effect.catchAll(Effect.tap(region, succeeded), (error) => recover(error, startedAt))`
   * where `startedAt` is the Clock's time when the region was entered. When
   * the fiber traces the call, `traced()` runs instead: the retry's traced
   * form, which runs this region as its effect.
   */
  readonly firstTry: <A2, E2, R2>(
    succeeded: () => void,
    recover: (error: E, startedAt: number) => Effect.Effect<A2, E2, R2>,
    traced: () => Effect.Effect<A | A2, E2, R | R2>
  ) => Effect.Effect<A | A2, E2, R | R2>
}

const FusableId: unique symbol = Symbol.for("@bulwark/resilience/internal/Region")

type RegionEffect<A, E, R> = Effect.Effect<A, E, R> & { readonly [FusableId]: Fusable<A, E, R> }

const isRegion = <A, E, R>(self: Effect.Effect<A, E, R>): self is RegionEffect<A, E, R> => FusableId in self

/** The region `self` is, if it is one. */
export const fusable = <A, E, R>(self: Effect.Effect<A, E, R>): Fusable<A, E, R> | undefined =>
  isRegion(self) ? self[FusableId] : undefined

/**
 * The Clock of the fiber running this synchronous code. Called only inside a
 * mask callback or a handler, where the runtime has set the current fiber,
 * so it costs no extra effect (an `Effect.clockWith` is one more step).
 */
const currentClock = (): Clock.Clock | undefined => {
  const fiber = Fiber.getCurrentFiber()
  if (Option.isNone(fiber)) return undefined
  const services = fiber.value.currentDefaultServices
  // Fibers share their default services unless one is provided (a TestClock): remember the last lookup.
  if (services !== lastLookup.services) {
    lastLookup.services = services
    lastLookup.clock = Context.get(services, Clock.Clock)
  }
  return lastLookup.clock
}

const lastLookup = globalValue(
  Symbol.for("@bulwark/resilience/internal/Region/lastClock"),
  (): { services: Context.Context<never> | undefined; clock: Clock.Clock | undefined } => ({
    services: undefined,
    clock: undefined
  })
)

/**
 * The state of a call in a region: every gate's token (gate `i`, counted from
 * the innermost, in `token<i>`: plain fields, as an array costs one more
 * allocation per call) and the start time. The end time is read afresh, from
 * the running fiber's Clock, each time a gate asks for it.
 */
class Call implements Span {
  token0 = 0
  token1 = 0
  token2 = 0
  more: Array<number> | undefined = undefined
  /** Announcements of admitted gates, by gate index (outermost has the highest). */
  announces: Array<Effect.Effect<void> | undefined> | undefined = undefined

  constructor(public startedAt: number) {}

  endedAt(): number {
    return currentClock()?.unsafeCurrentTimeMillis() ?? 0
  }

  /** A span of its own, for exits after this synchronous step (this object may be shared). */
  detach(): Span {
    return new Call(this.startedAt)
  }

  token(index: number): number {
    switch (index) {
      case 0:
        return this.token0
      case 1:
        return this.token1
      case 2:
        return this.token2
      default:
        return this.more?.[index - 3] ?? 0
    }
  }

  setToken(index: number, token: number): void {
    switch (index) {
      case 0:
        this.token0 = token
        break
      case 1:
        this.token1 = token
        break
      case 2:
        this.token2 = token
        break
      default:
        ;(this.more ??= [])[index - 3] = token
    }
  }

  /** Whether a bracket built for `other` serves this call: same tokens, same start time (or none). */
  sameKey(other: Call, size: number): boolean {
    if (!sameStart(this.startedAt, other.startedAt)) return false
    for (let i = 0; i < size; i++) if (this.token(i) !== other.token(i)) return false
    return true
  }
}

/** The exit steps' effects, innermost gate's first. */
type Afters = Array<Effect.Effect<void>> | undefined

const ADMITTED: unique symbol = Symbol("Admitted")

/**
 * Gates over an effect, outermost first. `EX` is the error of the effect at
 * the bottom: on the fast path every gate sees the bottom's outcome.
 */
interface Stack<A, E, R, EX extends E> {
  readonly size: number
  readonly bottom: Effect.Effect<A, EX, R>
  /** These layers on their own: the bottom effect, or the region of these gates. */
  readonly effect: Effect.Effect<A, E, R>
  /** Whether any gate needs this call's start time; `false` when none ever does. */
  readonly needsStart: false | (() => boolean)
  /** The gate, when the stack is one gate over the bottom effect: regions run those on a shorter path. */
  readonly single: Gate<A, EX, E> | undefined
  /**
   * Enters every gate, outermost first. `ADMITTED` when all took a permit
   * (the bottom may run); otherwise the effect to run instead, which already
   * exits the gates entered. `call` may be shared: it is read only in this
   * synchronous step.
   */
  readonly enter: (call: Call, restore: Restore) => typeof ADMITTED | Effect.Effect<A, E, R>
  readonly exitSuccess: (call: Call, value: A, afters: Afters) => Afters
  readonly exitFailure: (call: Call, cause: Cause.Cause<EX>, afters: Afters) => Afters
  /** These layers for a traced call: one region per gate, nested; built on first use. */
  readonly traced: () => Effect.Effect<A, E, R>
  /** The name of a traced call's span when these layers are the outermost. */
  readonly spanName: () => string
  /** Adds the attributes of these layers and of the layers inside the bottom effect. */
  readonly describe: (attributes: Trace.Attributes) => void
}

const push = (afters: Afters, after: Effect.Effect<void> | undefined): Afters => {
  if (after === undefined) return afters
  if (afters === undefined) return [after]
  afters.push(after)
  return afters
}

const runAll = (effects: ReadonlyArray<Effect.Effect<void>>): Effect.Effect<void> =>
  effects.length === 1 && effects[0] !== undefined ? effects[0] : Effect.all(effects, { discard: true })

const withAfters = <A, E, R>(afters: Afters, result: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  afters === undefined ? result : Effect.zipRight(runAll(afters), result)

const bottomOf = <A, E, R>(self: Effect.Effect<A, E, R>): Stack<A, E, R, E> => ({
  size: 0,
  bottom: self,
  effect: self,
  needsStart: false,
  single: undefined,
  enter: () => ADMITTED,
  exitSuccess: (_call, _value, afters) => afters,
  exitFailure: (_call, _cause, afters) => afters,
  traced: () => Trace.operation(self),
  spanName: () => Trace.traceableOf(self)?.spanName() ?? UNNAMED,
  describe: (attributes) => Trace.describeInner(self, attributes)
})

/** The span's name for a call whose outermost layer has no name of its own. */
const UNNAMED = "bulwark.protect"

const needsStartOf = (
  gate: false | (() => boolean),
  below: false | (() => boolean)
): false | (() => boolean) => {
  if (gate === false) return below
  if (below === false) return gate
  return () => gate() || below()
}

const layerOf = <A, EB, E2, R, EX extends EB>(
  gate: Gate<A, EB, E2>,
  below: Stack<A, EB, R, EX>
): Stack<A, EB | E2, R, EX> => {
  const index = below.size

  /** What a nested layer does around `effect` (a slow path or a refusal further in), for a permit it holds. */
  const around = (
    span: Span,
    token: number,
    effect: Effect.Effect<A, EB, R>
  ): Effect.Effect<A, EB | E2, R> =>
    Effect.matchCauseEffect(effect, {
      onFailure: (cause) => {
        const after = gate.exitFailure(token, cause, span)
        return after === undefined ? Effect.failCause(cause) : Effect.zipRight(after, Effect.failCause(cause))
      },
      onSuccess: (value) => {
        const after = gate.exitSuccess(token, value, span)
        return after === undefined ? Effect.succeed(value) : Effect.as(after, value)
      }
    })

  let region: Effect.Effect<A, EB | E2, R> | undefined
  let traced: Effect.Effect<A, EB | E2, R> | undefined
  const stack: Stack<A, EB | E2, R, EX> = {
    size: index + 1,
    bottom: below.bottom,
    get effect() {
      return region ??= regionOf(stack)
    },
    needsStart: needsStartOf(gate.needsStart, below.needsStart),
    single: index === 0 ? gate : undefined,
    enter: (call, restore) => {
      const admission = gate.enter(call)
      let announce: Effect.Effect<void> | undefined
      if (typeof admission === "number") {
        call.setToken(index, admission)
      } else if (admission instanceof Admitted) {
        call.setToken(index, admission.token)
        announce = admission.announce
        ;(call.announces ??= [])[index] = announce
      } else if (admission instanceof Refused) {
        return admission.effect
      } else {
        return admission.run(restore, below.effect)
      }
      const inner = below.enter(call, restore)
      if (inner === ADMITTED) return ADMITTED
      return around(call.detach(), call.token(index), announce === undefined ? inner : Effect.zipRight(announce, inner))
    },
    exitSuccess: (call, value, afters) =>
      push(below.exitSuccess(call, value, afters), gate.exitSuccess(call.token(index), value, call)),
    exitFailure: (call, cause, afters) =>
      push(below.exitFailure(call, cause, afters), gate.exitFailure(call.token(index), cause, call)),
    traced: () => traced ??= untracedRegion(recordingGate(gate), below.traced()),
    spanName: () => gate.trace?.spanName() ?? UNNAMED,
    describe: (attributes) => {
      gate.trace?.describe(attributes)
      below.describe(attributes)
    }
  }
  return stack
}

/**
 * `gate` recording into the fiber's traced call what entering found and how
 * long a call waited to be admitted.
 */
const recordingGate = <A, E, E2>(gate: Gate<A, E, E2>): Gate<A, E, E2> => {
  const trace = gate.trace
  if (trace === undefined) return gate
  return {
    trace,
    needsStart: gate.needsStart,
    enter: (span) => {
      const admission = gate.enter(span)
      const call = Trace.current()
      if (call === undefined) return admission
      trace.entered?.(call)
      if (typeof admission === "number" || admission instanceof Admitted || admission instanceof Refused) {
        return admission
      }
      const waited = trace.waited
      const since = currentClock()?.unsafeCurrentTimeMillis()
      if (waited === undefined || since === undefined) return admission
      const timed: Wait<A, E, E2> = {
        _tag: "Wait",
        run: (restore, self) =>
          admission.run(
            restore,
            Effect.suspend(() => {
              waited(call, (currentClock()?.unsafeCurrentTimeMillis() ?? since) - since)
              return self
            })
          )
      }
      return timed
    },
    exitSuccess: gate.exitSuccess,
    exitFailure: gate.exitFailure
  }
}

/** `self` under `gate` in a region of its own that never takes the traced path (it is part of one). */
const untracedRegion = <A, E, R, E2>(gate: Gate<A, E, E2>, self: Effect.Effect<A, E, R>): Effect.Effect<A, E | E2, R> =>
  run(layerOf(gate, bottomOf(self)), plain(undefined))

/**
 * A value built once for each of the two `restore` functions effect hands out
 * (the caller was interruptible or not).
 */
const perRestore = <T>(build: (restore: Restore) => T): (restore: Restore) => T => {
  let restore1: Restore | undefined
  let value1: T | undefined
  let restore2: Restore | undefined
  let value2: T | undefined
  return (restore) => {
    if (restore === restore1 && value1 !== undefined) return value1
    if (restore === restore2 && value2 !== undefined) return value2
    const value = build(restore)
    if (restore1 === undefined) {
      restore1 = restore
      value1 = value
    } else {
      restore2 = restore
      value2 = value
    }
    return value
  }
}

/** How a region ends: on its own, or as a retry's first attempt. */
interface Ending<A, E, R, EX extends E, A2, E2, R2> {
  /** What runs instead, under `restore`, when the fiber traces the call; `undefined` for a region already traced. */
  readonly traced: (() => Effect.Effect<A | A2, E2, R | R2>) | undefined
  /** Whether every call needs its start time. */
  readonly needsStart: boolean
  readonly succeeded: () => void
  /** After the exit steps of a failed call, inside the mask. */
  readonly failed: (cause: Cause.Cause<EX>, startedAt: number, restore: Restore) => Effect.Effect<A2, E2, R2>
  /** Around the effect a slow path or refusal answered, inside the mask. */
  readonly other: <R>(
    effect: Effect.Effect<A, E, R>,
    startedAt: number,
    restore: Restore
  ) => Effect.Effect<A | A2, E2, R | R2>
}

const noop = (): void => {}

const plain = <A, E, R, EX extends E>(
  traced: (() => Effect.Effect<A, E, R>) | undefined
): Ending<A, E, R, EX, never, E, never> => ({
  traced,
  needsStart: false,
  succeeded: noop,
  failed: (cause) => Effect.failCause(cause),
  other: (effect) => effect
})

/**
 * What `Effect.catchAll(region, recover)` does with a failed call's cause,
 * done by the region's own handler, still inside its mask: a typed failure
 * goes to `recover`, under `restore`, so it runs with the caller's
 * interruptibility; anything else goes on unchanged. As with `catchAll`, an
 * interruptible caller whose fiber is being interrupted does not recover:
 * `restore` meets the interruption before `recover` runs (the exit then
 * names the interruption where `catchAll` would keep the stripped cause).
 */
const recovering = <E, A2, E2, R2>(
  cause: Cause.Cause<E>,
  restore: Restore,
  recover: (error: E) => Effect.Effect<A2, E2, R2>
): Effect.Effect<A2, E2, R2> => {
  const failure = Cause.failureOrCause(cause)
  return Either.isRight(failure)
    ? Effect.failCause(failure.right)
    : restore(Effect.suspend(() => recover(failure.left)))
}

const firstAttempt = <A, E, R, EX extends E, A2, E2, R2>(
  succeeded: () => void,
  recover: (error: E, startedAt: number) => Effect.Effect<A2, E2, R2>,
  traced: () => Effect.Effect<A | A2, E2, R | R2>
): Ending<A, E, R, EX, A2, E2, R2> => ({
  traced,
  needsStart: true,
  succeeded,
  failed: (cause, startedAt, restore) => recovering(cause, restore, (error) => recover(error, startedAt)),
  other: (effect, startedAt, restore) =>
    Effect.matchCauseEffect(effect, {
      onFailure: (cause) => recovering(cause, restore, (error) => recover(error, startedAt)),
      onSuccess: (value) => {
        succeeded()
        return Effect.succeed(value)
      }
    })
})

/** Where every call is entered; read only in the synchronous step of the entry. */
const SCRATCH = new Call(Number.NaN)

const run = <A, E, R, EX extends E, A2, E2, R2>(
  stack: Stack<A, E, R, EX>,
  ending: Ending<A, E, R, EX, A2, E2, R2>
): Effect.Effect<A | A2, E2, R | R2> => {
  const restored = perRestore((restore) => restore(stack.bottom))
  const needsStart = stack.needsStart
  const traced = ending.traced

  const onFailure = (call: Call, cause: Cause.Cause<EX>, restore: Restore): Effect.Effect<A2, E2, R2> =>
    withAfters(stack.exitFailure(call, cause, undefined), ending.failed(cause, call.startedAt, restore))

  const onSuccess = (call: Call, value: A): Effect.Effect<A> => {
    const afters = stack.exitSuccess(call, value, undefined)
    ending.succeeded()
    return withAfters(afters, Effect.succeed(value))
  }

  interface Last {
    call: Call
    bracket: Effect.Effect<A | A2, E2, R | R2> | undefined
  }
  /** The last bracket built for each `restore`, with the key it was built for. */
  const brackets = perRestore((): Last => ({ call: new Call(Number.NaN), bracket: undefined }))

  /**
   * The bracket for the call just entered in `SCRATCH`. The clock has
   * millisecond resolution, so calls that need their start time share a
   * bracket too while they start in the same millisecond.
   */
  const reused = (restore: Restore): Effect.Effect<A | A2, E2, R | R2> => {
    const last = brackets(restore)
    if (last.bracket !== undefined && SCRATCH.sameKey(last.call, stack.size)) return last.bracket
    const call = new Call(SCRATCH.startedAt)
    for (let i = 0; i < stack.size; i++) call.setToken(i, SCRATCH.token(i))
    const bracket = Effect.matchCauseEffect(restored(restore), {
      onFailure: (cause) => onFailure(call, cause, restore),
      onSuccess: (value) => onSuccess(call, value)
    })
    last.call = call
    last.bracket = bracket
    return bracket
  }

  const enterStack = (restore: Restore, startedAt: number): Effect.Effect<A | A2, E2, R | R2> => {
    SCRATCH.announces = undefined
    SCRATCH.startedAt = startedAt
    const entered = stack.enter(SCRATCH, restore)
    if (entered !== ADMITTED) return ending.other(entered, startedAt, restore)
    return withAnnounces(SCRATCH, reused(restore))
  }

  const single = stack.single
  const enter = single === undefined ? enterStack : singleEntry(single, stack.bottom, ending, restored)

  return Effect.uninterruptibleMask((restore) => {
    if (traced !== undefined && Trace.tracing()) return restore(traced())
    if (ending.needsStart || (needsStart !== false && needsStart())) {
      const clock = currentClock()
      return clock === undefined
        ? Effect.clockWith((clock) => enter(restore, clock.unsafeCurrentTimeMillis()))
        : enter(restore, clock.unsafeCurrentTimeMillis())
    }
    return enter(restore, Number.NaN)
  })
}

/**
 * `enter` for a region of one gate: the same steps as the stack's with fewer
 * calls, as most protected effects have one layer.
 */
const singleEntry = <A, E, R, EX extends E, A2, E2, R2>(
  gate: Gate<A, EX, E>,
  bottom: Effect.Effect<A, EX, R>,
  ending: Ending<A, E, R, EX, A2, E2, R2>,
  restored: (restore: Restore) => Effect.Effect<A, EX, R>
) => {
  interface Last {
    token: number
    startedAt: number
    bracket: Effect.Effect<A | A2, E2, R | R2> | undefined
  }
  const brackets = perRestore((): Last => ({ token: 0, startedAt: Number.NaN, bracket: undefined }))

  const bracketFor = (restore: Restore, token: number, startedAt: number): Effect.Effect<A | A2, E2, R | R2> => {
    const last = brackets(restore)
    if (last.bracket !== undefined && last.token === token && sameStart(last.startedAt, startedAt)) return last.bracket
    const span = new Call(startedAt)
    const bracket = Effect.matchCauseEffect(restored(restore), {
      onFailure: (cause) => {
        const after = gate.exitFailure(token, cause, span)
        const failed = ending.failed(cause, startedAt, restore)
        return after === undefined ? failed : Effect.zipRight(after, failed)
      },
      onSuccess: (value) => {
        const after = gate.exitSuccess(token, value, span)
        ending.succeeded()
        return after === undefined ? Effect.succeed(value) : Effect.as(after, value)
      }
    })
    last.token = token
    last.startedAt = startedAt
    last.bracket = bracket
    return bracket
  }

  return (restore: Restore, startedAt: number): Effect.Effect<A | A2, E2, R | R2> => {
    SCRATCH.startedAt = startedAt
    const admission = gate.enter(SCRATCH)
    if (typeof admission === "number") return bracketFor(restore, admission, startedAt)
    if (admission instanceof Admitted) {
      return Effect.zipRight(admission.announce, bracketFor(restore, admission.token, startedAt))
    }
    if (admission instanceof Refused) return ending.other(admission.effect, startedAt, restore)
    return ending.other(admission.run(restore, bottom), startedAt, restore)
  }
}

const sameStart = (a: number, b: number): boolean => a === b || (Number.isNaN(a) && Number.isNaN(b))

/** The effect, after the announcements of the gates that made any, outermost first. */
const withAnnounces = <A, E, R>(call: Call, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (call.announces === undefined) return self
  const announces = call.announces.filter((announce) => announce !== undefined).reverse()
  return announces.length === 0 ? self : Effect.zipRight(runAll(announces), self)
}

/** What a region offers to the layer put around it, and to a traced call. */
class Handle<A, E, R, EX extends E> implements Fusable<A, E, R>, Trace.Traceable {
  private traced: Effect.Effect<A, E, R> | undefined

  constructor(private readonly stack: Stack<A, E, R, EX>) {}

  wrap<E2>(gate: Gate<A, E, E2>): Effect.Effect<A, E | E2, R> {
    return layerOf(gate, this.stack).effect
  }

  firstTry<A2, E2, R2>(
    succeeded: () => void,
    recover: (error: E, startedAt: number) => Effect.Effect<A2, E2, R2>,
    traced: () => Effect.Effect<A | A2, E2, R | R2>
  ): Effect.Effect<A | A2, E2, R | R2> {
    return run(this.stack, firstAttempt<A, E, R, EX, A2, E2, R2>(succeeded, recover, traced))
  }

  spanName(): string {
    return this.stack.spanName()
  }

  describe(attributes: Trace.Attributes): void {
    this.stack.describe(attributes)
  }

  /** The region for a traced call: its gates nested, in the fiber's call or in one it opens. */
  tracedRegion(): Effect.Effect<A, E, R> {
    return this.traced ??= Trace.inCall(this, this.stack.traced())
  }
}

const regionOf = <A, E, R, EX extends E>(stack: Stack<A, E, R, EX>): Effect.Effect<A, E, R> => {
  const handle = new Handle(stack)
  const effect: Effect.Effect<A, E, R> = run(stack, plain<A, E, R, EX>(() => handle.tracedRegion()))
  return Trace.mark(Object.assign(effect, { [FusableId]: handle }), handle)
}

/**
 * `self` under `gate`: joins the region `self` is, or starts one.
 */
export const protect = <A, E, R, E2>(
  self: Effect.Effect<A, E, R>,
  gate: Gate<A, E, E2>
): Effect.Effect<A, E | E2, R> => {
  const region = fusable(self)
  return region === undefined ? layerOf(gate, bottomOf(self)).effect : region.wrap(gate)
}
