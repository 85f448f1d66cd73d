import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as IdempotencyStore from "../IdempotencyStore.js"

// IdempotencyStore.ts imports this module, so its values are only touched inside functions.

const field = (option: string): Options.Field => ({ component: "IdempotencyStore.cleanup", option })

/** @internal */
export const defaults = { batchSize: 1_000, maxBatches: 100, interval: Duration.minutes(1) } as const

interface Valid {
  readonly batchSize: number
  readonly maxBatches: number
}

const validate = (options: IdempotencyStore.CleanupOptions): Options.Check<Valid> =>
  Options.batchLimits(field, {
    batchSize: options.batchSize ?? defaults.batchSize,
    maxBatches: options.maxBatches ?? defaults.maxBatches
  })

const runValid = (valid: Valid) =>
  Effect.flatMap(
    IdempotencyStore.IdempotencyStore,
    (store) =>
      Effect.iterate({ deleted: 0, batches: 0, last: valid.batchSize }, {
        while: (state) => state.last >= valid.batchSize && state.batches < valid.maxBatches,
        body: (state) =>
          Effect.map(store.deleteExpired(valid.batchSize), (count) => ({
            deleted: state.deleted + count,
            batches: state.batches + 1,
            last: count
          }))
      }).pipe(Effect.map((state) => state.deleted))
  )

/** @internal */
export const cleanup = (
  options: IdempotencyStore.CleanupOptions = {}
): Effect.Effect<
  number,
  IdempotencyStore.IdempotencyStoreError | InvalidOptionsError,
  IdempotencyStore.IdempotencyStore
> => Effect.flatMap(validate(options), runValid)

/** @internal */
export const startCleanup = (
  options: IdempotencyStore.BackgroundCleanupOptions = {}
) =>
  Effect.gen(function*() {
    const valid = yield* validate(options)
    const interval = yield* Options.duration(field("interval"), options.interval ?? defaults.interval, {
      allowZero: false
    })
    const once = runValid(valid).pipe(
      Effect.tap((deleted) =>
        deleted > 0 ? Effect.logDebug(`Idempotency cleanup deleted ${deleted} expired records`) : Effect.void
      ),
      Effect.catchAll((error) =>
        Effect.logWarning(`Idempotency cleanup failed; trying again in ${Duration.format(interval)}`, error)
      )
    )
    yield* Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(interval), once)))
  })
