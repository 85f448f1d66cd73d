/**
 * Pausing and resuming a queue through the `JobQueue` service: the queue must be configured (a typo is an
 * `UnknownQueueError`, not a pause of nothing), then the store pauses it for every worker of the backend.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type { Config, JobQueue } from "../JobQueue.js"
import type { JobStore } from "../JobStore.js"
import type { JobStoreError, UnknownQueueError } from "./errors.js"
import { tag } from "./tag.js"
import { findQueue } from "./validate.js"

const configured = (
  config: Config,
  queue: string,
  operation: (queue: string) => Effect.Effect<boolean, JobStoreError>
): Effect.Effect<boolean, UnknownQueueError | JobStoreError> =>
  Either.match(findQueue(config, queue), { onLeft: Effect.fail, onRight: (found) => operation(found.name) })

/** The service's `pause`. @internal */
export const pauseWith =
  (config: Config, store: JobStore) => (queue: string): Effect.Effect<boolean, UnknownQueueError | JobStoreError> =>
    configured(config, queue, store.pause)

/** The service's `resume`. @internal */
export const resumeWith =
  (config: Config, store: JobStore) => (queue: string): Effect.Effect<boolean, UnknownQueueError | JobStoreError> =>
    configured(config, queue, store.resume)

/** @internal */
export const pause = (queue: string): Effect.Effect<boolean, UnknownQueueError | JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (service) => service.pause(queue))

/** @internal */
export const resume = (queue: string): Effect.Effect<boolean, UnknownQueueError | JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (service) => service.resume(queue))
