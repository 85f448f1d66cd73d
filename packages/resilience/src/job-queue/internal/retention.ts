/**
 * Retention (`JobQueue.prune`, `startRetention`, `layerRetention`): options validated, the store's bounded prune
 * repeated until a batch comes back short, and the background runs.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Periodic from "../../internal/periodic.js"
import type { JobQueue, JobStoreError, Pruned, PruneOptions, RetentionOptions } from "../JobQueue.js"
import { tag } from "./tag.js"

const field = (option: string): Options.Field => ({ component: "JobQueue.prune", option })

/** @internal */
export const defaults = {
  keepSucceeded: Duration.days(7),
  keepSettledDeadLetters: Duration.days(30),
  batchSize: 1_000,
  maxBatches: 100,
  interval: Duration.minutes(1)
} as const

interface Valid {
  readonly keepSucceeded: Duration.Duration
  readonly keepSettledDeadLetters: Duration.Duration
  readonly batchSize: number
  readonly maxBatches: number
}

const validate = (options: PruneOptions): Options.Check<Valid> =>
  Either.map(
    Either.all({
      keepSucceeded: Options.duration(field("keepSucceeded"), options.keepSucceeded ?? defaults.keepSucceeded),
      keepSettledDeadLetters: Options.duration(
        field("keepSettledDeadLetters"),
        options.keepSettledDeadLetters ?? defaults.keepSettledDeadLetters
      ),
      limits: Options.batchLimits(field, {
        batchSize: options.batchSize ?? defaults.batchSize,
        maxBatches: options.maxBatches ?? defaults.maxBatches
      })
    }),
    ({ keepSettledDeadLetters, keepSucceeded, limits }) => ({ keepSucceeded, keepSettledDeadLetters, ...limits })
  )

const runValid = (valid: Valid): Effect.Effect<Pruned, JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (queue) => {
    const request = {
      keepSucceeded: valid.keepSucceeded,
      keepSettledDeadLetters: valid.keepSettledDeadLetters,
      limit: valid.batchSize
    }
    // A batch that came back full in either kind may have left more behind.
    return Effect.iterate({ succeeded: 0, cancelled: 0, deadLetters: 0, batches: 0, full: true }, {
      while: (state) => state.full && state.batches < valid.maxBatches,
      body: (state) =>
        Effect.map(queue.store.prune(request), (pruned) => ({
          succeeded: state.succeeded + pruned.succeeded,
          cancelled: state.cancelled + pruned.cancelled,
          deadLetters: state.deadLetters + pruned.deadLetters,
          batches: state.batches + 1,
          full: pruned.succeeded >= valid.batchSize || pruned.cancelled >= valid.batchSize ||
            pruned.deadLetters >= valid.batchSize
        }))
    }).pipe(Effect.map((state): Pruned => ({
      succeeded: state.succeeded,
      cancelled: state.cancelled,
      deadLetters: state.deadLetters
    })))
  })

/** @internal */
export const prune = (
  options: PruneOptions = {}
): Effect.Effect<Pruned, JobStoreError | InvalidOptionsError, JobQueue> => Effect.flatMap(validate(options), runValid)

/** @internal */
export const startRetention = (
  options: RetentionOptions = {}
): Effect.Effect<void, InvalidOptionsError, JobQueue | Scope.Scope> =>
  Effect.gen(function*() {
    const valid = yield* validate(options)
    const interval = yield* Options.duration(field("interval"), options.interval ?? defaults.interval, {
      allowZero: false
    })
    const once = Effect.tap(runValid(valid), (pruned) =>
      pruned.succeeded + pruned.cancelled + pruned.deadLetters > 0
        ? Effect.logDebug(
          `Job retention deleted ${pruned.succeeded} succeeded jobs, ${pruned.cancelled} cancelled jobs and ` +
            `${pruned.deadLetters} settled dead letters`
        )
        : Effect.void)
    yield* Periodic.every(once, { interval, name: "Job retention" })
  })

/** @internal */
export const layerRetention = (options?: RetentionOptions): Layer.Layer<never, InvalidOptionsError, JobQueue> =>
  Layer.scopedDiscard(startRetention(options))
