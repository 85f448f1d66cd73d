import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Metric from "effect/Metric"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import * as Timeout from "../Timeout.js"

const component = "Timeout"

/** @internal */
export const validate = (options: Timeout.Timeout.Options): Options.Check<Timeout.Policy> =>
  Either.map(
    Either.all({
      operation: Options.name({ component, option: "operation" }, options.operation),
      limit: Options.duration({ component, option: "limit" }, options.limit, { allowZero: false })
    }),
    ({ limit, operation }): Timeout.Policy => ({
      operation,
      limit,
      counter: Metric.tagged(Metrics.timeouts, "operation", operation)
    })
  )

/** @internal */
export const make = (options: Timeout.Timeout.Options): Effect.Effect<Timeout.Policy, InvalidOptionsError> =>
  validate(options)

/** @internal */
export const unsafeMake = (options: Timeout.Timeout.Options): Timeout.Policy =>
  Either.getOrThrowWith(validate(options), (error) => error)

const timeoutWith = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  policy: Timeout.Policy
): Effect.Effect<A, E | Timeout.TimeoutError, R> =>
  Effect.flatten(
    Effect.timeoutTo(self, {
      duration: policy.limit,
      onSuccess: Effect.succeed<A>,
      onTimeout: () => {
        const error = new Timeout.TimeoutError({ operation: policy.operation, limit: policy.limit })
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
    })
  )

/** @internal */
export const timeout = dual(2, timeoutWith)
