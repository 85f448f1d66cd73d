import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Metric from "effect/Metric"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Trace from "../../internal/trace.js"
import { attributes as A } from "../../internal/tracingAttributes.js"
import * as Metrics from "../../Metrics.js"
import type * as Timeout from "../Timeout.js"
import { TimeoutError } from "./errors.js"

const component = "Timeout"

const onUninterruptible = (input: unknown): Options.Check<Timeout.OnUninterruptible> =>
  input === undefined || input === "wait"
    ? Either.right("wait")
    : input === "abandon"
    ? Either.right("abandon")
    : Either.left(Options.invalid({ component, option: "onUninterruptible" }, input, `"wait" or "abandon"`))

/** @internal */
export const validate = (options: Timeout.Timeout.Options): Options.Check<Timeout.Policy> =>
  Either.map(
    Either.all({
      operation: Options.name({ component, option: "operation" }, options.operation),
      limit: Options.duration({ component, option: "limit" }, options.limit, { allowZero: false }),
      onUninterruptible: onUninterruptible(options.onUninterruptible)
    }),
    ({ limit, onUninterruptible, operation }): Timeout.Policy => ({
      operation,
      limit,
      onUninterruptible,
      counter: Metric.tagged(Metrics.timeouts, "operation", operation),
      abandoned: Metric.tagged(Metrics.timeoutAbandoned, "operation", operation)
    })
  )

/** @internal */
export const make = (options: Timeout.Timeout.Options): Effect.Effect<Timeout.Policy, InvalidOptionsError> =>
  validate(options)

/** @internal */
export const unsafeMake = (options: Timeout.Timeout.Options): Timeout.Policy =>
  Either.getOrThrowWith(validate(options), (error) => error)

/** A timeout as a layer of a traced call: it names the span when outermost, and adds its operation and limit. */
class TimeoutLayer<A, E, R> implements Trace.Traceable {
  constructor(private readonly policy: Timeout.Policy, private readonly self: Effect.Effect<A, E, R>) {}

  spanName(): string {
    return `bulwark.timeout ${this.policy.operation}`
  }

  describe(attributes: Trace.Attributes): void {
    Trace.setOnce(attributes, A.timeoutOperation, this.policy.operation)
    Trace.setOnce(attributes, A.timeoutLimitMs, Duration.toMillis(this.policy.limit))
    Trace.describeInner(this.self, attributes)
  }
}

/** Counts, logs and traces a timeout, then fails with its error; called by the fiber that runs the timeout. */
const timedOut = (policy: Timeout.Policy): Effect.Effect<never, TimeoutError> => {
  const error = new TimeoutError({ operation: policy.operation, limit: policy.limit })
  // Its traced call, if any, records when the limit struck.
  Trace.current()?.event("timeout", {
    [A.timeoutOperation]: policy.operation,
    [A.timeoutLimitMs]: Duration.toMillis(policy.limit)
  })
  return Metric.increment(policy.counter).pipe(
    Effect.zipRight(
      Effect.logWarning(error.message).pipe(
        Effect.annotateLogs({
          "timeout.operation": policy.operation,
          "timeout.limit_ms": Duration.toMillis(policy.limit)
        })
      )
    ),
    Effect.zipRight(Effect.fail(error))
  )
}

/** Interrupts `self` at the limit and waits until it has stopped (uninterruptible work ends first). */
const waiting = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  policy: Timeout.Policy
): Effect.Effect<A, E | TimeoutError, R> =>
  Effect.flatten(
    Effect.timeoutTo(self, { duration: policy.limit, onSuccess: Effect.succeed<A>, onTimeout: () => timedOut(policy) })
  )

const resultOf = (exit: Exit.Exit<unknown, unknown>): "succeeded" | "failed" | "interrupted" =>
  Exit.isSuccess(exit) ? "succeeded" : Cause.isInterruptedOnly(exit.cause) ? "interrupted" : "failed"

/**
 * Interrupts `self` at the limit and answers at once; what does not stop at
 * once (an uninterruptible region) finishes in the background and is counted
 * when it ends. Unlike `Effect.disconnect` (a daemon fiber), the work is a
 * child of the calling fiber: that fiber interrupts it when interrupted and
 * waits for it when it ends, so the work never outlives its owner.
 */
const abandoning = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  policy: Timeout.Policy
): Effect.Effect<A, E | TimeoutError, R> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.suspend(() => {
      let abandoned = false
      const counted = Effect.onExit(
        restore(self),
        (exit) => abandoned ? Metric.increment(Metric.tagged(policy.abandoned, "result", resultOf(exit))) : Effect.void
      )
      return Effect.flatMap(Effect.fork(counted), (work) =>
        Effect.flatten(
          restore(Effect.timeoutTo(Fiber.join(work), {
            duration: policy.limit,
            onSuccess: Effect.succeed<A>,
            onTimeout: () => {
              abandoned = true
              return Effect.zipRight(Effect.fiberIdWith((id) => Fiber.interruptAsFork(work, id)), timedOut(policy))
            }
          }))
        ).pipe(Effect.onInterrupt(() => Effect.fiberIdWith((id) => Fiber.interruptAsFork(work, id)))))
    })
  )

const timeoutWith = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  policy: Timeout.Policy
): Effect.Effect<A, E | TimeoutError, R> => {
  const limited = (effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | TimeoutError, R> =>
    policy.onUninterruptible === "abandon" ? abandoning(effect, policy) : waiting(effect, policy)
  const layer = new TimeoutLayer(policy, self)
  const untraced = limited(self)
  let traced: Effect.Effect<A, E | TimeoutError, R> | undefined
  // A timeout costs a fiber per call: the question whether the call is traced is small beside it.
  return Trace.mark(
    Effect.suspend(() => Trace.tracing() ? traced ??= Trace.inCall(layer, limited(Trace.operation(self))) : untraced),
    layer
  )
}

/** @internal */
export const timeout = dual(2, timeoutWith)
