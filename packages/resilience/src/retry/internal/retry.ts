import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import { globalValue } from "effect/GlobalValue"
import * as Option from "effect/Option"
import * as ScheduleDecision from "effect/ScheduleDecision"
import * as ScheduleIntervals from "effect/ScheduleIntervals"
import type { Transient } from "../../Failure.js"
import * as Failure from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Region from "../../internal/region.js"
import * as Trace from "../../internal/trace.js"
import { attributes as A } from "../../internal/tracingAttributes.js"
import * as Metrics from "../../Metrics.js"
import type * as Retry from "../Retry.js"

type Outcome = "success_first_try" | "success_after_retry" | "exhausted" | "terminal"

interface PolicyMetrics {
  readonly calls: Record<Outcome, () => void>
  readonly attempts: () => void
  readonly budgetDenied: () => void
}

/** One set of series per policy, shared by every copy of this module. */
const metricsByPolicy = globalValue(
  Symbol.for("@bulwark/resilience/Retry/metricsByPolicy"),
  () => new Map<string, PolicyMetrics>()
)

const metricsFor = (policy: string): PolicyMetrics => {
  const cached = metricsByPolicy.get(policy)
  if (cached !== undefined) return cached
  const created: PolicyMetrics = {
    calls: {
      // Counted on every call: the series keeps its hook (see `internal/metric.ts`).
      success_first_try: Metric.counterSeries("bulwark_retry_calls_total", { policy, result: "success_first_try" }),
      success_after_retry: Metric.counter(Metrics.retryCalls, { policy, result: "success_after_retry" }),
      exhausted: Metric.counter(Metrics.retryCalls, { policy, result: "exhausted" }),
      terminal: Metric.counter(Metrics.retryCalls, { policy, result: "terminal" })
    },
    attempts: Metric.counter(Metrics.retryAttempts, { policy }),
    budgetDenied: Metric.counter(Metrics.retryBudgetDenied, { policy })
  }
  metricsByPolicy.set(policy, created)
  return created
}

const isNotTransient = <E>(error: E): error is Exclude<E, Transient> => !Failure.isTransient(error)
const isTransient = <E>(error: E): error is Extract<E, Transient> => Failure.isTransient(error)

const tagOf = (error: unknown): string =>
  typeof error === "object" && error !== null && "_tag" in error && typeof error._tag === "string"
    ? error._tag
    : "unknown"

type Retried<E> = Exclude<E, Transient> | Failure.RetriesExhausted<Extract<E, Transient>>

/** What a retried attempt fails with when the time budget cuts it off: never seen outside this module. */
const CUT_OFF: unique symbol = Symbol("@bulwark/resilience/Retry/cutOff")

/** A retry as a layer of a traced call: it names the span when outermost, and adds its policy. */
class RetryLayer<A, E, R> implements Trace.Traceable {
  constructor(private readonly policy: Retry.Policy, private readonly self: Effect.Effect<A, E, R>) {}

  spanName(): string {
    return `bulwark.retry ${this.policy.name}`
  }

  describe(attributes: Trace.Attributes): void {
    Trace.setOnce(attributes, A.retryPolicy, this.policy.name)
    Trace.describeInner(this.self, attributes)
  }
}

const retryWith = <A, E, R>(self: Effect.Effect<A, E, R>, policy: Retry.Policy): Effect.Effect<A, Retried<E>, R> => {
  const metrics = metricsFor(policy.name)
  // The time budget in milliseconds, `undefined` for none: read once per protected effect.
  const maxElapsed = Option.getOrUndefined(Option.map(policy.maxElapsed, Duration.toMillis))
  const layer = new RetryLayer(policy, self)

  /**
   * The retry of `attempt`, built once per protected effect: the happy path
   * per call is one clock read and one catchAll. `traced` is the form a
   * traced call takes, when this is the form that asks.
   */
  const retrying = (
    attempt: Effect.Effect<A, E, R>,
    traced: (() => Effect.Effect<A, Retried<E>, R>) | undefined
  ) => {
    const firstTry = Effect.map(attempt, (value) => {
      metrics.calls.success_first_try()
      return value
    })
    const afterRetry = Effect.map(attempt, (value) => {
      metrics.calls.success_after_retry()
      return value
    })

    const onFailure = (error: E, startedAt: number): Effect.Effect<A, Retried<E>, R> => {
      if (isNotTransient(error)) {
        metrics.calls.terminal()
        return Effect.fail(error)
      }
      if (isTransient(error)) return Effect.clockWith((clock) => retryLoop(clock, startedAt, error))
      return Effect.die(error)
    }

    // The slow path: per-call state lives here, created on the first transient failure.
    const retryLoop = (
      clock: Clock.Clock,
      startedAt: number,
      firstFailure: Extract<E, Transient>
    ): Effect.Effect<A, Retried<E>, R> => {
      let attempts = 1
      let scheduleState: unknown = policy.schedule.initial
      // The traced call this retry records its retries into, if the fiber traces it.
      const call = Trace.current()

      const giveUp = (
        reason: Failure.ExhaustionReason,
        lastFailure: Extract<E, Transient>,
        elapsed: number
      ): Effect.Effect<never, Retried<E>> => {
        const error = new Failure.RetriesExhausted({
          policy: policy.name,
          reason,
          attempts,
          elapsed: Duration.millis(elapsed),
          lastFailure
        })
        metrics.calls.exhausted()
        return Effect.logWarning(error.message).pipe(
          Effect.annotateLogs({ "retry.policy": policy.name, "retry.reason": reason, "retry.attempts": attempts }),
          Effect.zipRight(Effect.fail(error))
        )
      }

      const retryAfter = (
        failure: Extract<E, Transient>,
        elapsed: number,
        delay: number
      ): Effect.Effect<A, Retried<E>, R> => {
        call?.event("retry", {
          [A.retryAttempt]: attempts + 1,
          [A.retryDelayMs]: delay,
          "error.type": tagOf(failure)
        })
        return Effect.logWarning(`Retrying "${policy.name}" after a transient failure`).pipe(
          Effect.annotateLogs({
            "retry.policy": policy.name,
            "retry.attempt": attempts + 1,
            "retry.delay_ms": delay,
            "retry.elapsed_ms": elapsed,
            "error.tag": tagOf(failure)
          }),
          Effect.zipRight(Effect.sleep(Duration.millis(delay))),
          Effect.zipRight(Effect.suspend(() => nextAttempt(failure)))
        )
      }

      const countAttempt = (): void => {
        attempts++
        call?.attribute(A.retryAttempts, attempts)
        metrics.attempts()
      }

      /**
       * The next attempt, after the failure `previous`. With a time budget,
       * the attempt gets what is left of it: still running when the budget is
       * spent, it is interrupted (its finalizers run before the call goes on)
       * and the call gives up with `previous` as its last failure.
       */
      const nextAttempt = (previous: Extract<E, Transient>): Effect.Effect<A, Retried<E>, R> => {
        if (maxElapsed === undefined) {
          countAttempt()
          return Effect.catchAll(afterRetry, onTransientOrOther)
        }
        const elapsed = clock.unsafeCurrentTimeMillis() - startedAt
        const left = maxElapsed - elapsed
        // A wait that overslept the budget leaves the attempt no time: it is not started.
        if (left <= 0) return giveUp("MaxElapsed", previous, elapsed)
        countAttempt()
        return Effect.catchAll(
          Effect.timeoutFail(afterRetry, { duration: Duration.millis(left), onTimeout: (): typeof CUT_OFF => CUT_OFF }),
          (error) =>
            error === CUT_OFF
              ? giveUp("MaxElapsed", previous, clock.unsafeCurrentTimeMillis() - startedAt)
              : onTransientOrOther(error)
        )
      }

      const onTransient = (failure: Extract<E, Transient>): Effect.Effect<A, Retried<E>, R> => {
        const now = clock.unsafeCurrentTimeMillis()
        const elapsed = now - startedAt
        if (attempts >= policy.maxAttempts) return giveUp("MaxAttempts", failure, elapsed)
        return Effect.flatMap(policy.schedule.step(now, failure, scheduleState), ([nextState, _out, decision]) => {
          if (ScheduleDecision.isDone(decision)) return giveUp("ScheduleDone", failure, elapsed)
          const backoff = Math.max(0, ScheduleIntervals.start(decision.intervals) - now)
          const hint = policy.respectRetryAfter
            ? Option.match(Failure.retryAfterOf(failure), { onNone: () => 0, onSome: Duration.toMillis })
            : 0
          // Timers have millisecond resolution; rounding up keeps "at least retryAfter" exact.
          const delay = Math.ceil(Math.max(backoff, hint))
          // Checked before sleeping, so a wait that would reach the budget (and leave no time for an attempt)
          // is never started.
          if (maxElapsed !== undefined && elapsed + delay >= maxElapsed) {
            return giveUp("MaxElapsed", failure, elapsed)
          }
          scheduleState = nextState
          return Option.match(policy.budget, {
            onNone: () => retryAfter(failure, elapsed, delay),
            onSome: (budget) =>
              Effect.flatMap(budget.tryWithdraw, (allowed) => {
                if (allowed) return retryAfter(failure, elapsed, delay)
                metrics.budgetDenied()
                return giveUp("Budget", failure, elapsed)
              })
          })
        })
      }

      const onTransientOrOther = (error: E): Effect.Effect<A, Retried<E>, R> => {
        if (isTransient(error)) return onTransient(error)
        return onFailure(error, startedAt)
      }

      return onTransient(firstFailure)
    }

    const run = Effect.clockWith((clock) => {
      if (traced !== undefined && Trace.tracing()) return traced()
      const startedAt = clock.unsafeCurrentTimeMillis()
      return Effect.catchAll(firstTry, (error) => onFailure(error, startedAt))
    })
    return { onFailure, run }
  }

  // A traced call runs the unfused form, with `self` outside the call unless it is a layer of the same stack.
  let tracedRun: Effect.Effect<A, Retried<E>, R> | undefined
  const traced = () =>
    tracedRun ??= Trace.inCall(
      layer,
      Effect.zipRight(
        Effect.sync(() => Trace.current()?.attribute(A.retryAttempts, 1)),
        retrying(Trace.operation(self), undefined).run
      )
    )

  const untraced = retrying(self, traced)
  // Around a circuit breaker or bulkhead, the first attempt goes through their region (see `internal/region.ts`), which
  // reads the clock on entry and catches the failure in its own handler: the retry's happy path is then a counter.
  const region = Region.fusable(self)
  const run = region === undefined
    ? untraced.run
    : region.firstTry(metrics.calls.success_first_try, untraced.onFailure, traced)
  return Trace.mark(
    Option.match(policy.budget, {
      onNone: () => run,
      onSome: (budget) => Effect.zipRight(budget.deposit, run)
    }),
    layer
  )
}

/** @internal */
export const retry = dual(2, retryWith)
