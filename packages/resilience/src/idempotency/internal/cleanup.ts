import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Periodic from "../../internal/periodic.js"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import type { IdempotencyStoreError } from "./errors.js"
import * as Tags from "./tags.js"

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

const runValid = (valid: Valid): Effect.Effect<number, IdempotencyStoreError, IdempotencyStore.IdempotencyStore> =>
  Effect.flatMap(
    Tags.IdempotencyStore,
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
): Effect.Effect<number, IdempotencyStoreError | InvalidOptionsError, IdempotencyStore.IdempotencyStore> =>
  Effect.flatMap(validate(options), runValid)

/** @internal */
export const startCleanup = (
  options: IdempotencyStore.BackgroundCleanupOptions = {}
): Effect.Effect<void, InvalidOptionsError, IdempotencyStore.IdempotencyStore | Scope.Scope> =>
  Effect.gen(function*() {
    const valid = yield* validate(options)
    const interval = yield* Options.duration(field("interval"), options.interval ?? defaults.interval, {
      allowZero: false
    })
    const once = Effect.tap(
      runValid(valid),
      (deleted) => deleted > 0 ? Effect.logDebug(`Idempotency cleanup deleted ${deleted} expired records`) : Effect.void
    )
    yield* Periodic.every(once, { interval, name: "Idempotency cleanup" })
  })
