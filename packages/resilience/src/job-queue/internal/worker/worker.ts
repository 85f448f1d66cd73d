/**
 * A worker (`JobWorker.make`) assembled: options resolved, one pool per queue, and per pool a claim loop
 * (claim.ts), a heartbeat (heartbeat.ts), a completion writer (complete.ts) and a reclaim sweep (reclaim.ts), all
 * in the worker's scope, plus the wake-up subscription that rings the pools; closing the scope shuts it down
 * gracefully (shutdown.ts).
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { InvalidOptionsError } from "../../../Failure.js"
import * as Failure from "../../../Failure.js"
import type { JobQueue } from "../../JobQueue.js"
import type { JobContext, JobWorker, Options, Stats } from "../../JobWorker.js"
import type { UnknownQueueError } from "../errors.js"
import { startReporter } from "../metrics.js"
import { tag } from "../tag.js"
import { cancelLoop } from "./cancel.js"
import { claimLoop } from "./claim.js"
import { completeLoop } from "./complete.js"
import { heartbeatLoop } from "./heartbeat.js"
import { resolve } from "./options.js"
import { makePool, type Pool, ring, type Worker } from "./pool.js"
import { reclaimLoop } from "./reclaim.js"
import { drain, handlersRunning } from "./shutdown.js"

/** @internal */
export const make = <R>(
  options: Options<R>
): Effect.Effect<JobWorker, InvalidOptionsError | UnknownQueueError, JobQueue | Scope.Scope | R> =>
  Effect.gen(function*() {
    const queue = yield* tag
    const resolved = yield* Either.match(resolve(options, queue), { onLeft: Effect.fail, onRight: Effect.succeed })
    const context = yield* Effect.context<R>()
    const handlers = new Map<
      string,
      (payload: unknown, job: JobContext) => Effect.Effect<Option.Option<unknown>, unknown>
    >()
    for (const [kind, handler] of resolved.handlers) {
      handlers.set(kind, (payload, job) => Effect.provide(handler.run(payload, job), context))
    }
    const pools = new Map<string, Pool>()
    for (const { concurrency, queue: config } of resolved.pools) {
      pools.set(config.name, yield* makePool(config, concurrency))
    }

    // Order matters: finalizers run in reverse, so `shutdown` (added last) runs before these sets are interrupted.
    const runners = yield* FiberSet.make<void, never>()
    const services = yield* FiberSet.make<void, never>()
    const claimLoops = yield* FiberSet.make<void, never>()

    const worker: Worker = {
      id: resolved.id,
      store: queue.store,
      handlers,
      classifier: yield* Failure.CurrentClassifier,
      counters: {
        claimed: 0,
        succeeded: 0,
        retried: 0,
        deadLettered: 0,
        released: 0,
        reclaimed: 0,
        leasesLost: 0,
        lateOutcomesRejected: 0,
        cancelled: 0
      },
      pools,
      runners,
      draining: false
    }

    const wakeups = worker.store.wakeups.pipe(
      Stream.runForEach((name) => {
        const pool = pools.get(name)
        return pool === undefined ? Effect.void : ring(pool)
      })
    )

    yield* FiberSet.run(services, wakeups)
    for (const pool of pools.values()) {
      yield* FiberSet.run(services, heartbeatLoop(worker, pool))
      yield* FiberSet.run(services, cancelLoop(worker, pool))
      yield* FiberSet.run(services, completeLoop(worker, pool))
      yield* FiberSet.run(services, reclaimLoop(worker, pool))
      yield* FiberSet.run(claimLoops, claimLoop(worker, pool))
    }

    // Before the shutdown finalizer, so the gauges are reported until the worker has drained.
    if (Option.isSome(resolved.metricsInterval)) yield* startReporter(queue, resolved.metricsInterval.value)

    const shutdown = yield* Effect.cached(drain(worker, { claimLoops, services }, resolved.gracePeriod))
    yield* Effect.addFinalizer(() => shutdown)

    return {
      id: worker.id,
      queues: [...pools.keys()],
      shutdown,
      inFlight: Effect.sync(() => handlersRunning(worker).length),
      listening: worker.store.listening,
      stats: Effect.sync((): Stats => ({ ...worker.counters }))
    }
  })

/** @internal */
export const layer = <R>(
  options: Options<R>
): Layer.Layer<never, InvalidOptionsError | UnknownQueueError, JobQueue | Exclude<R, Scope.Scope>> =>
  Layer.scopedDiscard(make(options))
