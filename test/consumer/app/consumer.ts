// A TypeScript consumer, type-checked with `tsc --strict`, NodeNext and without
// exactOptionalPropertyTypes: Bulwark's declarations must hold under a user's flags, not only the repo's.
import { Effect } from "effect"
import { Bulkhead, CircuitBreaker, Failure, Retry, Timeout } from "@bulwark/resilience"
import * as RetryModule from "@bulwark/resilience/Retry"

const getStock = (sku: string): Effect.Effect<number, Failure.TransientError | Failure.TerminalError> =>
  sku.length > 0
    ? Effect.succeed(sku.length)
    : Effect.fail(new Failure.TerminalError({ reason: "Lifted", message: "empty sku" }))

export const program = Effect.gen(function*() {
  const policy = yield* Retry.make({ name: "inventory", maxAttempts: 3, jitter: "full", maxElapsed: undefined })
  const breaker = yield* CircuitBreaker.make({ name: "inventory", openDuration: "10 seconds" })
  const bulkhead = yield* Bulkhead.make({ name: "inventory", maxConcurrent: 4 })
  const perAttempt = yield* Timeout.make({ operation: "inventory", limit: "1 second" })
  return yield* getStock("desk").pipe(
    Timeout.timeout(perAttempt),
    Retry.retry(policy),
    Bulkhead.protect(bulkhead),
    CircuitBreaker.protect(breaker)
  )
})

// Retrying removes the transient failure from the error type: what is left is terminal, exhausted or refused.
type ProgramError = Effect.Effect.Error<typeof program>
export const handled: Effect.Effect<number | string, never, never> = Effect.scoped(program).pipe(
  Effect.catchTags({
    TerminalError: (error) => Effect.succeed(`terminal: ${error.message}`),
    RetriesExhausted: (error) => Effect.succeed(`gave up after ${error.attempts} attempts`),
    CircuitOpenError: () => Effect.succeed("breaker open"),
    BulkheadFullError: () => Effect.succeed("bulkhead full"),
    InvalidOptionsError: (error) => Effect.succeed(`bad options: ${error.message}`)
  })
)

// @ts-expect-error: a TransientError never reaches the caller of a retried effect
export const noTransient: Extract<ProgramError, Failure.TransientError> extends never ? never : true = true

export const sameModule: typeof Retry.make = RetryModule.make
