/**
 * Spans of Bulwark's layers (circuit breaker, bulkhead, retry, timeout): one
 * span per protected call, named after the call's outermost layer, to which
 * every layer of the stack adds its attributes and events.
 *
 * Whether a call is traced is decided per call, not when the protected effect
 * is built: a protected effect is built once and run by any fiber, of a
 * program that traces or of one that does not. A fiber traces Bulwark's
 * layers when a `Tracing` layer switched them on for its program (the
 * FiberRef `enabled`, set for the layer's scope and inherited by every fiber
 * forked later, as the tracer that layer installs is) and Effect's tracer is
 * enabled there (`Effect.withTracerEnabled`). While no such layer is open
 * anywhere in the process, {@link tracing} is one read of a counter and the
 * fiber is not looked at: the untraced happy path pays nothing else.
 *
 * A traced layer runs its slower, unfused form: the outermost opens the span
 * and puts it in the context as the parent span and the current call
 * ({@link inCall}); the layers inside join that call and record into it; the
 * protected effect itself runs under the span but with no current call
 * ({@link operation}), so a protected call made inside it opens a span of its
 * own, a child of the first. A traced call thus changes the context twice
 * (the costliest part of it, with the span itself: about 15–20 µs a call with
 * Effect's own tracer on this kind of machine).
 *
 * Inside a `ResilientHttpClient` span no layer makes a span: the client records
 * its breaker, bulkhead, retry and timeout on its own call and attempt spans.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import { globalValue } from "effect/GlobalValue"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as Tracer from "effect/Tracer"
import { attributes as A } from "./tracingAttributes.js"

/** Span attributes being gathered for a span about to open. */
export type Attributes = Record<string, unknown>

/** What a layer tells a traced call about itself. */
export interface Traceable {
  /** The span's name when this layer is the outermost of the call. */
  spanName(): string
  /** Adds the attributes of this layer and of the layers inside it, outermost first (see {@link setOnce}). */
  describe(attributes: Attributes): void
}

const TraceableId: unique symbol = Symbol.for("@bulwark/resilience/internal/Trace/Traceable")

type TraceableEffect<A, E, R> = Effect.Effect<A, E, R> & { readonly [TraceableId]: Traceable }

const isTraceable = <A, E, R>(self: Effect.Effect<A, E, R>): self is TraceableEffect<A, E, R> =>
  hasProperty(self, TraceableId)

/** Marks `self` as a Bulwark layer: a layer around it joins its call instead of running it as the operation. */
export const mark = <A, E, R>(self: Effect.Effect<A, E, R>, traceable: Traceable): Effect.Effect<A, E, R> =>
  Object.assign(self, { [TraceableId]: traceable })

/** The layer `self` is, if it is one. */
export const traceableOf = <A, E, R>(self: Effect.Effect<A, E, R>): Traceable | undefined =>
  isTraceable(self) ? self[TraceableId] : undefined

/** Adds the attributes of the layers `self` is made of, if it is a layer. */
export const describeInner = <A, E, R>(self: Effect.Effect<A, E, R>, attributes: Attributes): void =>
  traceableOf(self)?.describe(attributes)

/**
 * Sets an attribute unless an outer layer already did: of two layers of one
 * kind in a stack (two breakers), the span names the outermost.
 */
export const setOnce = (attributes: Attributes, key: string, value: unknown): void => {
  if (!(key in attributes)) attributes[key] = value
}

/**
 * One traced call: its span, and the Clock of the fiber that opened it (for
 * the time of events).
 */
export class Call {
  constructor(readonly span: Tracer.Span, private readonly clock: Clock.Clock) {}

  attribute(key: string, value: unknown): void {
    this.span.attribute(key, value)
  }

  event(name: string, attributes: Attributes): void {
    this.span.event(name, this.clock.unsafeCurrentTimeNanos(), attributes)
  }

  /** Whether the span's `key` holds `value`: a layer records its state only on a span that names it. */
  holds(key: string, value: unknown): boolean {
    return this.span.attributes.get(key) === value
  }
}

/** How many layers switching the layers' spans on are open in this process. */
const switches = globalValue(Symbol.for("@bulwark/resilience/internal/Trace/switches"), () => ({ open: 0 }))

const enabled = globalValue(
  Symbol.for("@bulwark/resilience/internal/Trace/enabled"),
  () => FiberRef.unsafeMake(false)
)

interface CurrentCall {
  readonly _: unique symbol
}

/**
 * The traced call the layers record into, in the context beside the span it
 * is the parent of: one context change per call provides both.
 */
const CurrentCall = Context.GenericTag<CurrentCall, Call | undefined>("@bulwark/resilience/internal/Trace/CurrentCall")

const callIn = (context: Context.Context<never>): Call | undefined =>
  Context.getOrElse(context, CurrentCall, () => undefined)

/** Switches the layers' spans on for the program it is provided to, for as long as it is open. */
export const layer: Layer.Layer<never> = Layer.scopedDiscard(
  Effect.zipRight(
    Effect.acquireRelease(
      Effect.sync(() => {
        switches.open++
      }),
      () =>
        Effect.sync(() => {
          switches.open--
        })
    ),
    Effect.locallyScoped(enabled, true)
  )
)

/** `ResilientHttpClient`'s spans: it records its layers itself. */
const recordsItsLayers = (span: Tracer.AnySpan): boolean =>
  span._tag === "Span" && span.name.startsWith("bulwark.http_client")

const fiberTraces = (fiber: Fiber.RuntimeFiber<unknown, unknown>): boolean => {
  if (!fiber.getFiberRef(enabled) || !fiber.getFiberRef(FiberRef.currentTracerEnabled)) return false
  if (callIn(fiber.currentContext) !== undefined) return true
  const parent = fiber.currentSpan
  return parent === undefined || !recordsItsLayers(parent)
}

/**
 * Whether the running fiber traces this call. Only for synchronous code a
 * fiber runs (an effect's callback), where the runtime has set the current
 * fiber. When no switch is open it reads one counter.
 */
export const tracing = (): boolean => {
  if (switches.open === 0) return false
  const fiber = Fiber.getCurrentFiber()
  return Option.isSome(fiber) && fiberTraces(fiber.value)
}

/** The traced call the running fiber is in (see {@link tracing} for where it may be called). */
export const current = (): Call | undefined => {
  if (switches.open === 0) return undefined
  const fiber = Fiber.getCurrentFiber()
  return Option.isSome(fiber) ? callIn(fiber.value.currentContext) : undefined
}

/**
 * The protected effect at the bottom of a stack: in the call's span, but
 * outside the call (a protected call in it opens a span of its own), unless
 * it is a layer of the same stack.
 */
export const operation = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  isTraceable(self)
    ? self
    : Effect.mapInputContext(self, (context: Context.Context<R>) => Context.add(context, CurrentCall, undefined))

const outcomeOf = (exit: Exit.Exit<unknown, unknown>): { readonly outcome: string; readonly type?: string } => {
  if (Exit.isSuccess(exit)) return { outcome: "success" }
  const failure = Cause.failureOption(exit.cause)
  if (Option.isNone(failure)) {
    return Cause.isInterruptedOnly(exit.cause) ? { outcome: "interrupted" } : { outcome: "defect" }
  }
  const type = hasProperty(failure.value, "_tag") && typeof failure.value._tag === "string"
    ? failure.value._tag
    : "unknown"
  switch (type) {
    case "CircuitOpenError":
      return { outcome: "circuit_open", type }
    case "BulkheadFullError":
    case "PartitionedBulkheadFullError":
    case "ConcurrencyLimitError":
      return { outcome: "bulkhead_full", type }
    case "TimeoutError":
      return { outcome: "timeout", type }
    case "RetriesExhausted":
      return { outcome: "retries_exhausted", type }
    default:
      return { outcome: "failure", type }
  }
}

/**
 * `body` as part of the call the fiber is in, or as a new call: a span named
 * after `layer`, with the attributes of the whole stack, current for `body`,
 * and ended with the call's outcome.
 */
export const inCall = <A, E, R>(layer: Traceable, body: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) => {
    if (callIn(fiber.currentContext) !== undefined) return body
    const attributes: Attributes = {}
    layer.describe(attributes)
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    // No stack trace: it would point into Bulwark, and capturing it costs more than the span.
    return Effect.useSpan(layer.spanName(), { attributes, captureStackTrace: false }, (span) =>
      body.pipe(
        Effect.mapInputContext((context: Context.Context<R>) =>
          Context.add(Context.add(context, Tracer.ParentSpan, span), CurrentCall, new Call(span, clock))
        ),
        Effect.onExit((exit) =>
          Effect.sync(() => {
            const { outcome, type } = outcomeOf(exit)
            span.attribute(A.outcome, outcome)
            if (type !== undefined) span.attribute("error.type", type)
          })
        )
      ))
  })

/**
 * `Effect.annotateCurrentSpan` without its cost when there is no span: Effect's version looks the span up through
 * `Effect.currentSpan`, which fails with a `NoSuchElementException` (an `Error`, so a stack trace: tens of
 * microseconds) whenever the fiber has none, as on every untraced request. Like Effect's, it annotates the nearest
 * span that does not disable propagation.
 */
export const annotateCurrentSpan = (attributes: Readonly<Record<string, unknown>>): Effect.Effect<void> =>
  Effect.contextWith((context) => {
    let span = Context.getOption(context, Tracer.ParentSpan)
    while (Option.isSome(span)) {
      const current: Tracer.AnySpan = span.value
      if (!Context.get(current.context, Tracer.DisablePropagation)) {
        if (current._tag === "Span") {
          for (const key in attributes) current.attribute(key, attributes[key])
        }
        return
      }
      span = current._tag === "Span" ? current.parent : Option.none()
    }
  })
