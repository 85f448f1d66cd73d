/**
 * Worker options resolved against the job queue's configuration: one handler per kind, the queues served with
 * their concurrency, the worker id and the grace period.
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import { hostname } from "node:os"
import type { InvalidOptionsError } from "../../../Failure.js"
import * as check from "../../../internal/options.js"
import type { JobQueue, QueueConfig } from "../../JobQueue.js"
import type { Handler, Options } from "../../JobWorker.js"
import type { UnknownQueueError } from "../errors.js"
import { checkInterval } from "../metrics.js"
import { findQueue } from "../validate.js"
import { HandlerTypeId } from "./handler.js"

const field = (option: string): check.Field => ({ component: "JobWorker", option })

/** @internal */
export interface Resolved<R> {
  readonly id: string
  readonly handlers: ReadonlyMap<string, Handler<R>>
  readonly pools: ReadonlyArray<{ readonly queue: QueueConfig; readonly concurrency: number }>
  readonly gracePeriod: Duration.Duration
  /** How often the worker reports the queue gauges; none: it does not. */
  readonly metricsInterval: Option.Option<Duration.Duration>
}

const isList = (u: unknown): u is ReadonlyArray<unknown> => Array.isArray(u)

/** @internal */
export const resolve = <R>(
  options: Options<R>,
  queue: JobQueue
): Either.Either<Resolved<R>, InvalidOptionsError | UnknownQueueError> =>
  Either.gen(function*() {
    if (typeof options !== "object" || options === null || !isList(options.handlers)) {
      return yield* Either.left(check.invalid(field("handlers"), options, "an array of JobWorker.handler(...)"))
    }
    const handlers = new Map<string, Handler<R>>()
    for (const [index, candidate] of options.handlers.entries()) {
      if (typeof candidate !== "object" || candidate === null || !(HandlerTypeId in candidate)) {
        return yield* Either.left(check.invalid(field(`handlers[${index}]`), candidate, "a JobWorker.handler(...)"))
      }
      const kind = candidate.definition.kind
      if (handlers.has(kind)) {
        return yield* Either.left(check.invalid(field(`handlers[${index}]`), kind, "one handler per job kind"))
      }
      handlers.set(kind, candidate)
    }
    const names = options.queues ?? [...new Set([...handlers.values()].map((h) => h.definition.queue))]
    if (names.length === 0) {
      return yield* Either.left(check.invalid(field("queues"), names, "at least one queue (or one handler)"))
    }
    const pools: Array<{ queue: QueueConfig; concurrency: number }> = []
    for (const name of new Set(names)) {
      const config = yield* findQueue(queue.config, name)
      const override = options.concurrency?.[name]
      const concurrency = override === undefined
        ? config.concurrency
        : yield* check.number(field(`concurrency.${name}`), override, { min: 1, max: 10_000, integer: true })
      pools.push({ queue: config, concurrency })
    }
    for (const name of Object.keys(options.concurrency ?? {})) {
      if (!names.includes(name)) {
        return yield* Either.left(check.invalid(field(`concurrency.${name}`), name, "a queue this worker serves"))
      }
    }
    const id = options.workerId ?? `${hostname()}:${process.pid}:${Math.random().toString(36).slice(2, 8)}`
    if (typeof id !== "string" || id.length === 0 || id.length > 200) {
      return yield* Either.left(check.invalid(field("workerId"), id, "1 to 200 characters"))
    }
    const gracePeriod = yield* check.duration(field("gracePeriod"), options.gracePeriod ?? Duration.seconds(30))
    const metricsInterval = options.reportMetrics === false
      ? Option.none()
      : Option.some(yield* checkInterval("JobWorker", "reportMetrics.interval", options.reportMetrics?.interval))
    return { id, handlers, pools, gracePeriod, metricsInterval }
  })
