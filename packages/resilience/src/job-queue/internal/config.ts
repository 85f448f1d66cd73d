/**
 * Backend options validated into a `Config` (`JobQueue.makeConfig`): each queue's settings with their defaults,
 * and the registered job definitions.
 */
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../Failure.js"
import * as check from "../../internal/options.js"
import type { Config, JobDefinition, Options, QueueConfig, QueueOptions } from "../JobQueue.js"
import { isJobDefinition } from "./definition.js"

const COMPONENT = "JobQueue"

/** Defaults, documented on `JobQueue.QueueOptions`. */
export const defaults = {
  concurrency: 10,
  visibilityTimeout: Duration.seconds(30),
  pollInterval: Duration.seconds(1),
  maxReclaimInterval: Duration.seconds(5),
  retryBase: Duration.seconds(5),
  retryCap: Duration.minutes(5),
  jitter: 0.25,
  maxAttempts: 5,
  maxPayloadBytes: 256 * 1024,
  maxResultBytes: 64 * 1024
} as const

/** @internal */
export const MAX_BATCH = 1000
/** @internal */
export const PRIORITY = { min: -32768, max: 32767 } as const
/** @internal */
export const MAX_ATTEMPTS = 1000

const field = (option: string): check.Field => ({ component: COMPONENT, option })

const queueConfig = (name: string, options: QueueOptions): Either.Either<QueueConfig, InvalidOptionsError> =>
  Either.gen(function*() {
    const at = (option: string) => field(`queues.${name}.${option}`)
    yield* check.name(field(`queues.${name}`), name)
    const concurrency = yield* check.number(at("concurrency"), options.concurrency ?? defaults.concurrency, {
      min: 1,
      max: 10_000,
      integer: true
    })
    const prefetch = yield* check.number(at("prefetch"), options.prefetch ?? concurrency, {
      min: 0,
      max: 10_000,
      integer: true
    })
    const batchSize = yield* check.number(
      at("batchSize"),
      options.batchSize ?? Math.min(concurrency + prefetch, MAX_BATCH),
      {
        min: 1,
        max: MAX_BATCH,
        integer: true
      }
    )
    const visibilityTimeout = yield* check.duration(
      at("visibilityTimeout"),
      options.visibilityTimeout ?? defaults.visibilityTimeout
    )
    if (Duration.lessThan(visibilityTimeout, Duration.millis(100))) {
      return yield* Either.left(check.invalid(at("visibilityTimeout"), options.visibilityTimeout, "at least 100 ms"))
    }
    const heartbeatInterval = yield* check.duration(
      at("heartbeatInterval"),
      options.heartbeatInterval ?? Duration.millis(Math.floor(Duration.toMillis(visibilityTimeout) / 3)),
      { allowZero: false }
    )
    if (!Duration.lessThan(heartbeatInterval, visibilityTimeout)) {
      return yield* Either.left(
        check.invalid(at("heartbeatInterval"), options.heartbeatInterval, "a duration below visibilityTimeout")
      )
    }
    const pollInterval = yield* check.duration(at("pollInterval"), options.pollInterval ?? defaults.pollInterval, {
      allowZero: false
    })
    const reclaimInterval = yield* check.duration(
      at("reclaimInterval"),
      options.reclaimInterval ??
        Duration.min(
          Duration.millis(Math.floor(Duration.toMillis(visibilityTimeout) / 2)),
          defaults.maxReclaimInterval
        ),
      { allowZero: false }
    )
    const maxRunTime = yield* check.optionalDuration(at("maxRunTime"), options.maxRunTime, { allowZero: false })
    const retry = options.retry ?? {}
    const base = yield* check.duration(at("retry.base"), retry.base ?? defaults.retryBase)
    const cap = yield* check.duration(at("retry.cap"), retry.cap ?? defaults.retryCap)
    if (Duration.lessThan(cap, base)) {
      return yield* Either.left(check.invalid(at("retry.cap"), retry.cap, "a duration at least retry.base"))
    }
    const jitter = yield* check.number(at("retry.jitter"), retry.jitter ?? defaults.jitter, { min: 0, max: 1 })
    const maxAttempts = yield* check.number(at("retry.maxAttempts"), retry.maxAttempts ?? defaults.maxAttempts, {
      min: 1,
      max: MAX_ATTEMPTS,
      integer: true
    })
    const maxPayloadBytes = yield* check.number(
      at("maxPayloadBytes"),
      options.maxPayloadBytes ?? defaults.maxPayloadBytes,
      { min: 1, max: 64 * 1024 * 1024, integer: true }
    )
    const maxResultBytes = yield* check.number(
      at("maxResultBytes"),
      options.maxResultBytes ?? defaults.maxResultBytes,
      { min: 1, max: 64 * 1024 * 1024, integer: true }
    )
    const unclassified = options.unclassified ?? "transient"
    if (unclassified !== "transient" && unclassified !== "terminal") {
      return yield* Either.left(check.invalid(at("unclassified"), unclassified, `"transient" or "terminal"`))
    }
    let admission: QueueConfig["admission"] = Option.none()
    if (options.admission !== undefined) {
      const given = options.admission
      if (typeof given.limiter !== "object" || given.limiter === null || typeof given.limiter.admit !== "function") {
        return yield* Either.left(check.invalid(at("admission.limiter"), given.limiter, "a RateLimiter"))
      }
      const onLimited = given.onLimited ?? "reject"
      if (onLimited !== "reject" && onLimited !== "wait") {
        return yield* Either.left(check.invalid(at("admission.onLimited"), onLimited, `"reject" or "wait"`))
      }
      const maxWait = yield* check.optionalDuration(at("admission.maxWait"), given.maxWait)
      const key = given.key ?? name
      if (typeof key !== "string" || key.length === 0 || key.length > 256) {
        return yield* Either.left(check.invalid(at("admission.key"), key, "1 to 256 characters"))
      }
      admission = Option.some({ limiter: given.limiter, onLimited, maxWait: Option.fromNullable(maxWait), key })
    }
    return {
      name,
      concurrency,
      prefetch,
      batchSize,
      visibilityTimeout,
      heartbeatInterval,
      pollInterval,
      reclaimInterval,
      maxRunTime: Option.fromNullable(maxRunTime),
      retry: { base, cap, jitter, maxAttempts },
      maxPayloadBytes,
      maxResultBytes,
      admission,
      unclassified
    }
  })

/** @internal */
export const checkDefinition = (
  definition: JobDefinition.Any,
  option: string
): Either.Either<JobDefinition.Any, InvalidOptionsError> =>
  Either.gen(function*() {
    if (!isJobDefinition(definition)) {
      return yield* Either.left(check.invalid(field(option), definition, "a definition from JobQueue.define"))
    }
    yield* check.name(field(`${option}.kind`), definition.kind)
    yield* check.name(field(`${option}.queue`), definition.queue)
    yield* check.number(field(`${option}.priority`), definition.priority, { ...PRIORITY, integer: true })
    if (Option.isSome(definition.maxAttempts)) {
      yield* check.number(field(`${option}.maxAttempts`), definition.maxAttempts.value, {
        min: 1,
        max: MAX_ATTEMPTS,
        integer: true
      })
    }
    return definition
  })

/** @internal */
export const makeConfig = (options: Options): Either.Either<Config, InvalidOptionsError> =>
  Either.gen(function*() {
    if (typeof options !== "object" || options === null || typeof options.queues !== "object") {
      return yield* Either.left(check.invalid(field("queues"), options, "a record of queue options"))
    }
    const entries = Object.entries(options.queues)
    if (entries.length === 0) {
      return yield* Either.left(check.invalid(field("queues"), options.queues, "at least one queue"))
    }
    const queues = new Map<string, QueueConfig>()
    for (const [name, queue] of entries) queues.set(name, yield* queueConfig(name, queue))
    const jobs = new Map<string, JobDefinition.Any>()
    for (const [index, definition] of (options.jobs ?? []).entries()) {
      const checked = yield* checkDefinition(definition, `jobs[${index}]`)
      if (jobs.has(checked.kind)) {
        return yield* Either.left(check.invalid(field(`jobs[${index}].kind`), checked.kind, "a kind listed once"))
      }
      jobs.set(checked.kind, checked)
    }
    return { queues, jobs }
  })
