/**
 * The `JobQueue` service over a backend store: per-job validation (`prepare`), admission control, all-or-nothing
 * enqueue, status and statistics, and the accessors that find the service in context.
 */
import * as Arr from "effect/Array"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import * as check from "../../internal/options.js"
import type {
  Config,
  DedupOptions,
  Enqueued,
  EnqueueError,
  EnqueueOptions,
  JobDefinition,
  JobId,
  JobInfo,
  JobQueue,
  JobRequest,
  QueueConfig,
  QueueStats
} from "../JobQueue.js"
import type { DedupPolicy, JobStore, NewJob } from "../JobStore.js"
import { cancelWith } from "./cancel.js"
import { checkDefinition, MAX_ATTEMPTS, PRIORITY } from "./config.js"
import { AdmissionRejectedError, type DedupConflictError, type JobStoreError } from "./errors.js"
import { pauseWith, resumeWith } from "./pause.js"
import { tag, TypeId } from "./tag.js"
import { encodePayload, findQueue } from "./validate.js"

const MAX_DEDUP_KEY = 512
const ENQUEUE = "JobQueue.enqueue"

const invalid = (option: string, value: unknown, expected: string): InvalidOptionsError =>
  check.invalid({ component: ENQUEUE, option }, value, expected)

/** @internal */
export interface Prepared {
  readonly queue: QueueConfig
  readonly job: NewJob
}

const runAtOf = (options: EnqueueOptions): Either.Either<Option.Option<Date>, InvalidOptionsError> => {
  if (options.runAt === undefined) return Either.right(Option.none())
  const runAt = options.runAt
  const date = runAt instanceof Date ? runAt : DateTime.isDateTime(runAt) ? DateTime.toDate(runAt) : undefined
  if (date === undefined || Number.isNaN(date.getTime())) {
    return Either.left(invalid("runAt", runAt, "a valid Date or DateTime"))
  }
  return Either.right(Option.some(date))
}

const ON_CONFLICT: ReadonlyArray<DedupPolicy["onConflict"]> = ["error", "replace", "ignore"]

const keyOf = (option: string, key: unknown): Either.Either<string, InvalidOptionsError> =>
  typeof key === "string" && key.length > 0 && key.length <= MAX_DEDUP_KEY
    ? Either.right(key)
    : Either.left(
      invalid(option, typeof key === "string" ? { length: key.length } : key, `1 to ${MAX_DEDUP_KEY} characters`)
    )

/**
 * The dedup key and policy of one enqueue: `dedupKey` is `dedup: { key }` (mode "error"); `replaces` records which
 * of the fields a replace may overwrite were given.
 */
const dedupOf = (
  options: EnqueueOptions
): Either.Either<Option.Option<{ readonly key: string; readonly policy: DedupPolicy }>, InvalidOptionsError> => {
  if (options.dedupKey === undefined && options.dedup === undefined) return Either.right(Option.none())
  if (options.dedupKey !== undefined && options.dedup !== undefined) {
    return Either.left(invalid("dedup", options.dedup, "either dedupKey or dedup, not both"))
  }
  const dedup: DedupOptions | undefined = options.dedup
  if (dedup !== undefined && (typeof dedup !== "object" || dedup === null)) {
    return Either.left(invalid("dedup", dedup, "an object with a key"))
  }
  const key = dedup === undefined ? keyOf("dedupKey", options.dedupKey) : keyOf("dedup.key", dedup.key)
  if (Either.isLeft(key)) return Either.left(key.left)
  const onConflict = dedup?.onConflict ?? "error"
  if (!ON_CONFLICT.includes(onConflict)) {
    return Either.left(invalid("dedup.onConflict", onConflict, `one of ${ON_CONFLICT.join(", ")}`))
  }
  const keepAfterDeath = dedup?.keepAfterDeath ?? false
  if (typeof keepAfterDeath !== "boolean") {
    return Either.left(invalid("dedup.keepAfterDeath", keepAfterDeath, "a boolean"))
  }
  const window = dedup?.window === undefined
    ? Either.right(Option.none())
    : Either.map(
      check.duration({ component: ENQUEUE, option: "dedup.window" }, dedup.window, { allowZero: false }),
      Option.some
    )
  if (Either.isLeft(window)) return Either.left(window.left)
  return Either.right(Option.some({
    key: key.right,
    policy: {
      onConflict,
      keepAfterDeath,
      window: window.right,
      replaces: {
        priority: options.priority !== undefined,
        maxAttempts: options.maxAttempts !== undefined,
        runAt: options.runAt !== undefined || options.delay !== undefined
      }
    }
  }))
}

/**
 * Definitions are immutable values from `JobQueue.define`: each is checked once, the first time it is enqueued, not
 * on every call.
 */
const checkedDefinitions = new WeakSet<object>()

const definitionOf = (candidate: JobDefinition.Any): Either.Either<JobDefinition.Any, InvalidOptionsError> => {
  if (typeof candidate === "object" && candidate !== null && checkedDefinitions.has(candidate)) {
    return Either.right(candidate)
  }
  return checkDefinition(candidate, "definition").pipe(
    Either.map((definition) => {
      checkedDefinitions.add(definition)
      return definition
    }),
    Either.mapLeft((error) => invalid(error.option, error.value, error.expected))
  )
}

const integerOption = (option: string, value: number, range: { readonly min: number; readonly max: number }) =>
  // The common valid case without building the error text.
  Number.isInteger(value) && value >= range.min && value <= range.max
    ? Either.right(value)
    : check.number({ component: ENQUEUE, option }, value, { ...range, integer: true })

/**
 * Validates one enqueue request. Written as plain early returns (not `Either.gen`): it runs once per job on the
 * enqueue path.
 *
 * @internal
 */
export const prepare = (
  config: Config,
  request: JobRequest,
  index: number | undefined
): Either.Either<Prepared, Exclude<EnqueueError, AdmissionRejectedError | DedupConflictError | JobStoreError>> => {
  const checked = definitionOf(request.definition)
  if (Either.isLeft(checked)) return Either.left(checked.left)
  const definition = checked.right
  const options = request.options
  const found = findQueue(config, options.queue ?? definition.queue)
  if (Either.isLeft(found)) return Either.left(found.left)
  const queue = found.right
  const dedup = dedupOf(options)
  if (Either.isLeft(dedup)) return Either.left(dedup.left)
  // The definition's and the queue's defaults were checked with them.
  const priority = options.priority === undefined
    ? Either.right(definition.priority)
    : integerOption("priority", options.priority, PRIORITY)
  if (Either.isLeft(priority)) return Either.left(priority.left)
  const maxAttempts = options.maxAttempts === undefined
    ? Either.right(Option.getOrElse(definition.maxAttempts, () => queue.retry.maxAttempts))
    : integerOption("maxAttempts", options.maxAttempts, { min: 1, max: MAX_ATTEMPTS })
  if (Either.isLeft(maxAttempts)) return Either.left(maxAttempts.left)
  const runAt = runAtOf(options)
  if (Either.isLeft(runAt)) return Either.left(runAt.left)
  const delay = options.delay === undefined
    ? Either.right(Duration.zero)
    : check.duration({ component: ENQUEUE, option: "delay" }, options.delay)
  if (Either.isLeft(delay)) return Either.left(delay.left)
  const payload = encodePayload(definition, queue, request.payload, index)
  if (Either.isLeft(payload)) return Either.left(payload.left)
  return Either.right({
    queue,
    job: {
      queue: queue.name,
      kind: definition.kind,
      payload: payload.right,
      priority: priority.right,
      maxAttempts: maxAttempts.right,
      dedupKey: Option.map(dedup.right, ({ key }) => key),
      runAt: runAt.right,
      delay: delay.right,
      ...(Option.isSome(dedup.right) ? { dedup: dedup.right.value.policy } : {})
    }
  })
}

const admit = (queue: QueueConfig, cost: number): Effect.Effect<void, AdmissionRejectedError> => {
  if (Option.isNone(queue.admission)) return Effect.void
  const { key, limiter, maxWait, onLimited } = queue.admission.value
  const rejected = (reason: AdmissionRejectedError["reason"], retryAfter: Duration.Duration) =>
    new AdmissionRejectedError({ queue: queue.name, limiter: limiter.name, reason, retryAfter })
  const tooLarge = () => rejected("BatchExceedsQuota", Duration.infinity)
  if (onLimited === "reject") {
    return limiter.tryConsume(key, cost).pipe(
      Effect.catchTag("InvalidOptionsError", () => Effect.fail(tooLarge())),
      Effect.flatMap((decision) =>
        decision.outcome === "rejected"
          ? Effect.fail(rejected(decision.degraded ? "StoreUnavailable" : "LimitExceeded", decision.retryAfter))
          : Effect.void
      )
    )
  }
  return limiter.admit(key, cost, Option.getOrUndefined(maxWait)).pipe(
    Effect.catchTags({
      InvalidOptionsError: () => Effect.fail(tooLarge()),
      RateLimitedError: (error) => Effect.fail(rejected(error.reason, error.retryAfter))
    }),
    Effect.asVoid
  )
}

/** Admission for jobs of these queues (one entry per job): one limiter call per queue, its cost that queue's jobs. */
const admitAll = (queues: ReadonlyArray<QueueConfig>): Effect.Effect<void, AdmissionRejectedError> => {
  const costs = new Map<string, { queue: QueueConfig; cost: number }>()
  for (const queue of queues) {
    const entry = costs.get(queue.name)
    if (entry === undefined) costs.set(queue.name, { queue, cost: 1 })
    else entry.cost += 1
  }
  return Effect.forEach(costs.values(), ({ cost, queue }) => admit(queue, cost), { discard: true })
}

/** @internal */
export const make = (config: Config, store: JobStore): JobQueue => {
  const enqueueMany = (requests: ReadonlyArray<JobRequest>): Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError> => {
      const prepared: Array<Prepared> = []
      for (const [index, request] of requests.entries()) {
        const one = prepare(config, request, requests.length === 1 ? undefined : index)
        if (Either.isLeft(one)) return Effect.fail(one.left)
        prepared.push(one.right)
      }
      if (prepared.length === 0) return Effect.succeed([])
      const jobs = prepared.map((p) => p.job)
      // Admission counts only the jobs actually inserted. Without dedup keys that is every job, admitted before the
      // insert; with them, the store calls `admit` with the jobs it is about to create, inside its atomic insert.
      const insert = !prepared.some((p) => Option.isSome(p.queue.admission))
        ? store.insert(jobs)
        : jobs.some((job) => Option.isSome(job.dedupKey))
        ? store.insert(jobs, (created) => {
          const queues = new Map(prepared.map((p) => [p.queue.name, p.queue]))
          return admitAll(created.flatMap((job) => queues.get(job.queue) ?? []))
        })
        : Effect.zipRight(admitAll(prepared.map((p) => p.queue)), store.insert(jobs))
      return insert.pipe(
        Effect.flatMap((rows) =>
          rows.length === prepared.length
            ? Effect.succeed(
              Arr.zipWith(prepared, rows, ({ queue }, row): Enqueued => ({
                id: row.id,
                queue: queue.name,
                deduplicated: row.deduplicated,
                replaced: row.replaced
              }))
            )
            : Effect.dieMessage(`Job store ${store.backend} returned ${rows.length} rows for ${prepared.length} jobs`)
        )
      )
    })
  const stats: Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError> = Effect.map(
    store.stats,
    (rows) => {
      const byQueue = new Map(rows.map((row) => [row.queue, row]))
      const listed: Array<QueueStats> = [...config.queues.keys()].map((queue) =>
        byQueue.get(queue) ??
          {
            queue,
            ready: 0,
            scheduled: 0,
            retrying: 0,
            running: 0,
            deadLetters: 0,
            oldestReadyAge: Option.none(),
            paused: false
          }
      )
      for (const row of rows) if (!config.queues.has(row.queue)) listed.push(row)
      return listed
    }
  )
  return {
    [TypeId]: TypeId,
    config,
    store,
    enqueue: (definition, payload, options) =>
      Effect.flatMap(
        enqueueMany([{ definition, payload, options: options ?? {} }]),
        (rows) => rows[0] === undefined ? Effect.dieMessage("Job store returned no row") : Effect.succeed(rows[0])
      ),
    enqueueMany,
    status: (id: JobId): Effect.Effect<Option.Option<JobInfo>, JobStoreError> => store.status(id),
    pause: pauseWith(config, store),
    resume: resumeWith(config, store),
    cancel: cancelWith(store),
    stats
  }
}

/** @internal */
export const enqueue = <D extends JobDefinition.Any>(
  definition: D,
  payload: JobDefinition.Payload<D>,
  options?: EnqueueOptions
): Effect.Effect<Enqueued, EnqueueError, JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.enqueue(definition, payload, options))

/** @internal */
export const enqueueMany = (
  jobs: ReadonlyArray<JobRequest>
): Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError, JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.enqueueMany(jobs))

/** @internal */
export const status = (id: JobId): Effect.Effect<Option.Option<JobInfo>, JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.status(id))

/** @internal */
export const stats: Effect.Effect<ReadonlyArray<QueueStats>, JobStoreError, JobQueue> = Effect
  .flatMap(tag, (queue) => queue.stats)
