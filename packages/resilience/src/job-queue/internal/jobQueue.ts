import * as Arr from "effect/Array"
import * as Context from "effect/Context"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { InvalidOptionsError } from "../../Failure.js"
import * as check from "../../internal/options.js"
import type {
  Config,
  Enqueued,
  EnqueueError,
  EnqueueOptions,
  JobDefinition,
  JobId,
  JobInfo,
  JobRequest,
  JobStore,
  NewJob,
  QueueConfig,
  QueueStats
} from "../JobQueue.js"
import * as JobQueue from "../JobQueue.js"
import { checkDefinition, MAX_ATTEMPTS, PRIORITY } from "./config.js"

// JobQueue.ts imports this module, so values from it are only touched inside functions.

/** @internal */
export const tag = Context.GenericTag<JobQueue.JobQueue>("@bulwark/resilience/JobQueue")

/** @internal */
export const millis = (duration: Duration.Duration): number => Duration.toMillis(duration)

/** @internal */
export const describe = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string") {
    return cause.message
  }
  return String(cause)
}

const MAX_DEDUP_KEY = 512
const ENQUEUE = "JobQueue.enqueue"

const invalid = (option: string, value: unknown, expected: string): InvalidOptionsError =>
  check.invalid({ component: ENQUEUE, option }, value, expected)

/** @internal */
export interface Prepared {
  readonly queue: QueueConfig
  readonly job: NewJob
}

const issueOf = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)

/**
 * Validates, encodes and sizes a payload for a queue. The stored value is the
 * JSON round trip of the Schema's encoded side, so both backends store (and
 * workers decode) exactly what Postgres' `jsonb` would hold.
 *
 * @internal
 */
export const encodePayload = (
  definition: JobDefinition.Any,
  queue: QueueConfig,
  payload: unknown,
  index: number | undefined
): Either.Either<unknown, JobQueue.InvalidPayloadError | JobQueue.PayloadTooLargeError> => {
  const where = index === undefined ? {} : { index }
  const encoded = Schema.encodeUnknownEither(definition.payload)(payload)
  if (Either.isLeft(encoded)) {
    return Either.left(
      new JobQueue.InvalidPayloadError({
        kind: definition.kind,
        queue: queue.name,
        ...where,
        issue: issueOf(encoded.left)
      })
    )
  }
  let json: string | undefined
  try {
    json = JSON.stringify(encoded.right)
  } catch (cause) {
    json = undefined
    return Either.left(
      new JobQueue.InvalidPayloadError({
        kind: definition.kind,
        queue: queue.name,
        ...where,
        issue: `the encoded payload is not JSON: ${describe(cause)}`
      })
    )
  }
  if (json === undefined) {
    return Either.left(
      new JobQueue.InvalidPayloadError({
        kind: definition.kind,
        queue: queue.name,
        ...where,
        issue: "the encoded payload is not JSON"
      })
    )
  }
  const bytes = Buffer.byteLength(json, "utf8")
  if (bytes > queue.maxPayloadBytes) {
    return Either.left(
      new JobQueue.PayloadTooLargeError({
        kind: definition.kind,
        queue: queue.name,
        ...where,
        bytes,
        limit: queue.maxPayloadBytes
      })
    )
  }
  const parsed: unknown = JSON.parse(json)
  return Either.right(parsed)
}

/** @internal */
export const findQueue = (config: Config, name: string): Either.Either<QueueConfig, JobQueue.UnknownQueueError> => {
  const queue = config.queues.get(name)
  return queue === undefined
    ? Either.left(new JobQueue.UnknownQueueError({ queue: name, known: [...config.queues.keys()] }))
    : Either.right(queue)
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

/** @internal */
export const prepare = (
  config: Config,
  request: JobRequest,
  index: number | undefined
): Either.Either<Prepared, Exclude<EnqueueError, JobQueue.AdmissionRejectedError | JobQueue.JobStoreError>> =>
  Either.gen(function*() {
    const definition = yield* checkDefinition(request.definition, "definition").pipe(
      Either.mapLeft((error) => invalid(error.option, error.value, error.expected))
    )
    const options = request.options
    const queue = yield* findQueue(config, options.queue ?? definition.queue)
    const dedupKey = options.dedupKey
    if (
      dedupKey !== undefined &&
      (typeof dedupKey !== "string" || dedupKey.length === 0 || dedupKey.length > MAX_DEDUP_KEY)
    ) {
      const value = typeof dedupKey === "string" ? { length: dedupKey.length } : dedupKey
      return yield* Either.left(invalid("dedupKey", value, `1 to ${MAX_DEDUP_KEY} characters`))
    }
    const priority = yield* check.number(
      { component: ENQUEUE, option: "priority" },
      options.priority ?? definition.priority,
      { ...PRIORITY, integer: true }
    )
    const maxAttempts = yield* check.number(
      { component: ENQUEUE, option: "maxAttempts" },
      options.maxAttempts ?? Option.getOrElse(definition.maxAttempts, () => queue.retry.maxAttempts),
      { min: 1, max: MAX_ATTEMPTS, integer: true }
    )
    const runAt = yield* runAtOf(options)
    const delay = yield* check.duration({ component: ENQUEUE, option: "delay" }, options.delay ?? Duration.zero)
    const payload = yield* encodePayload(definition, queue, request.payload, index)
    return {
      queue,
      job: {
        queue: queue.name,
        kind: definition.kind,
        payload,
        priority,
        maxAttempts,
        dedupKey: Option.fromNullable(dedupKey),
        runAt,
        delay
      }
    }
  })

const admit = (queue: QueueConfig, cost: number): Effect.Effect<void, JobQueue.AdmissionRejectedError> => {
  if (Option.isNone(queue.admission)) return Effect.void
  const { key, limiter, maxWait, onLimited } = queue.admission.value
  const rejected = (reason: JobQueue.AdmissionRejectedError["reason"], retryAfter: Duration.Duration) =>
    new JobQueue.AdmissionRejectedError({ queue: queue.name, limiter: limiter.name, reason, retryAfter })
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

const admitAll = (prepared: ReadonlyArray<Prepared>): Effect.Effect<void, JobQueue.AdmissionRejectedError> => {
  const costs = new Map<string, { queue: QueueConfig; cost: number }>()
  for (const { queue } of prepared) {
    const entry = costs.get(queue.name)
    if (entry === undefined) costs.set(queue.name, { queue, cost: 1 })
    else entry.cost += 1
  }
  return Effect.forEach(costs.values(), ({ cost, queue }) => admit(queue, cost), { discard: true })
}

/** @internal */
export const make = (config: Config, store: JobStore): JobQueue.JobQueue => {
  const enqueueMany = (requests: ReadonlyArray<JobRequest>): Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError> =>
    Effect.suspend((): Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError> => {
      const prepared: Array<Prepared> = []
      for (const [index, request] of requests.entries()) {
        const one = prepare(config, request, requests.length === 1 ? undefined : index)
        if (Either.isLeft(one)) return Effect.fail(one.left)
        prepared.push(one.right)
      }
      if (prepared.length === 0) return Effect.succeed([])
      return admitAll(prepared).pipe(
        Effect.zipRight(store.insert(prepared.map((p) => p.job))),
        Effect.flatMap((rows) =>
          rows.length === prepared.length
            ? Effect.succeed(
              Arr.zipWith(prepared, rows, ({ queue }, row): Enqueued => ({
                id: row.id,
                queue: queue.name,
                deduplicated: row.deduplicated
              }))
            )
            : Effect.dieMessage(`Job store ${store.backend} returned ${rows.length} rows for ${prepared.length} jobs`)
        )
      )
    })
  const stats: Effect.Effect<ReadonlyArray<QueueStats>, JobQueue.JobStoreError> = Effect.map(
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
            oldestReadyAge: Option.none()
          }
      )
      for (const row of rows) if (!config.queues.has(row.queue)) listed.push(row)
      return listed
    }
  )
  return {
    [JobQueue.TypeId]: JobQueue.TypeId,
    config,
    store,
    enqueue: (definition, payload, options) =>
      Effect.flatMap(
        enqueueMany([{ definition, payload, options: options ?? {} }]),
        (rows) => rows[0] === undefined ? Effect.dieMessage("Job store returned no row") : Effect.succeed(rows[0])
      ),
    enqueueMany,
    status: (id: JobId): Effect.Effect<Option.Option<JobInfo>, JobQueue.JobStoreError> => store.status(id),
    stats
  }
}

/** @internal */
export const enqueue = <D extends JobDefinition.Any>(
  definition: D,
  payload: JobDefinition.Payload<D>,
  options?: EnqueueOptions
): Effect.Effect<Enqueued, EnqueueError, JobQueue.JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.enqueue(definition, payload, options))

/** @internal */
export const enqueueMany = (
  jobs: ReadonlyArray<JobRequest>
): Effect.Effect<ReadonlyArray<Enqueued>, EnqueueError, JobQueue.JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.enqueueMany(jobs))

/** @internal */
export const status = (id: JobId): Effect.Effect<Option.Option<JobInfo>, JobQueue.JobStoreError, JobQueue.JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.status(id))

/** @internal */
export const stats: Effect.Effect<ReadonlyArray<QueueStats>, JobQueue.JobStoreError, JobQueue.JobQueue> = Effect
  .flatMap(tag, (queue) => queue.stats)
