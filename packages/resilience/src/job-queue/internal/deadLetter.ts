/**
 * The dead-letter API (`DeadLetter`): list queries validated from options, replays (an edited payload re-validated
 * by its kind's Schema) and discards on the store in context, and their counters.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as check from "../../internal/options.js"
import * as Metrics from "../../Metrics.js"
import type * as DeadLetter from "../DeadLetter.js"
import type { JobId, JobQueue } from "../JobQueue.js"
import { decodeCursor, encodeCursor as encode } from "./cursor.js"
import {
  DeadLetterConflictError,
  DeadLetterNotFoundError,
  InvalidPayloadError,
  type JobStoreError,
  UnknownJobKindError
} from "./errors.js"
import { tag } from "./tag.js"
import { encodePayload, findQueue } from "./validate.js"

/** @internal */
export const encodeCursor = encode

const COMPONENT = "DeadLetter"
const field = (option: string): check.Field => ({ component: COMPONENT, option })

// Operator actions are rare: a labelled counter built per call is fine here.
const count = (queue: string, outcome: "replayed" | "discarded") => Metric.counter(Metrics.jobs, { queue, outcome })()

const recordReplays = (results: ReadonlyArray<DeadLetter.ReplayResult>) =>
  Effect.sync(() => {
    for (const result of results) if (result._tag === "Replayed" && result.created) count(result.queue, "replayed")
  })

const recordDiscards = (results: ReadonlyArray<DeadLetter.DiscardResult>) =>
  Effect.sync(() => {
    for (const result of results) {
      if (result.outcome === "discarded" && Option.isSome(result.queue)) count(result.queue.value, "discarded")
    }
  })

const optionalText = (
  option: string,
  value: string | undefined
): Either.Either<Option.Option<string>, InvalidOptionsError> =>
  value === undefined
    ? Either.right(Option.none())
    : typeof value === "string" && value.length > 0 && value.length <= 512
    ? Either.right(Option.some(value))
    : Either.left(check.invalid(field(option), value, "1 to 512 characters"))

const optionalDate = (
  option: string,
  value: Date | undefined
): Either.Either<Option.Option<Date>, InvalidOptionsError> =>
  value === undefined
    ? Either.right(Option.none())
    : value instanceof Date && !Number.isNaN(value.getTime())
    ? Either.right(Option.some(value))
    : Either.left(check.invalid(field(option), value, "a valid Date"))

/** @internal */
export const makeQuery = (
  options: DeadLetter.ListOptions,
  defaultLimit: number
): Either.Either<DeadLetter.Query, InvalidOptionsError> =>
  Either.gen(function*() {
    const status = options.status ?? "pending"
    if (status !== "pending" && status !== "replayed" && status !== "discarded" && status !== "all") {
      return yield* Either.left(check.invalid(field("status"), status, `"pending", "replayed", "discarded" or "all"`))
    }
    const order = options.order ?? "newest"
    if (order !== "newest" && order !== "oldest") {
      return yield* Either.left(check.invalid(field("order"), order, `"newest" or "oldest"`))
    }
    const limit = yield* check.number(field("limit"), options.limit ?? defaultLimit, {
      min: 1,
      max: 1000,
      integer: true
    })
    let after: DeadLetter.Query["after"] = Option.none()
    if (options.cursor !== undefined) {
      const decoded = decodeCursor(options.cursor)
      if (Option.isNone(decoded)) {
        return yield* Either.left(check.invalid(field("cursor"), options.cursor, "a cursor from a previous page"))
      }
      after = decoded
    }
    return {
      queue: yield* optionalText("queue", options.queue),
      kind: yield* optionalText("kind", options.kind),
      status,
      errorTag: yield* optionalText("errorTag", options.errorTag),
      since: yield* optionalDate("since", options.since),
      until: yield* optionalDate("until", options.until),
      order,
      limit,
      after
    }
  })

const fromEither = <A, E>(either: Either.Either<A, E>): Effect.Effect<A, E> =>
  Either.match(either, { onLeft: Effect.fail, onRight: Effect.succeed })

/** @internal */
export const list = (
  options: DeadLetter.ListOptions = {}
): Effect.Effect<DeadLetter.Page, JobStoreError | InvalidOptionsError, JobQueue> =>
  Effect.flatMap(
    tag,
    (queue) => Effect.flatMap(fromEither(makeQuery(options, 50)), (query) => queue.store.listDeadLetters(query))
  )

/** @internal */
export const show = (id: JobId): Effect.Effect<Option.Option<DeadLetter.Entry>, JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (queue) => queue.store.getDeadLetter(id))

/** @internal */
export const replay = (
  id: JobId,
  options: DeadLetter.ReplayOptions = {}
): Effect.Effect<Extract<DeadLetter.ReplayResult, { _tag: "Replayed" }>, DeadLetter.ReplayError, JobQueue> =>
  Effect.gen(function*() {
    const queue = yield* tag
    let payload: Option.Option<unknown> = Option.none()
    if ("payload" in options) {
      const entry = yield* queue.store.getDeadLetter(id)
      if (Option.isNone(entry)) return yield* new DeadLetterNotFoundError({ id })
      const definition = queue.config.jobs.get(entry.value.kind)
      if (definition === undefined) {
        return yield* new UnknownJobKindError({
          kind: entry.value.kind,
          known: [...queue.config.jobs.keys()]
        })
      }
      const target = yield* fromEither(findQueue(queue.config, entry.value.queue))
      // The edited payload arrives in its encoded (JSON) form: decode it to validate, then encode it again.
      const decoded = Schema.decodeUnknownEither(definition.payload)(options.payload)
      if (Either.isLeft(decoded)) {
        return yield* new InvalidPayloadError({
          kind: definition.kind,
          queue: target.name,
          issue: ParseResult.TreeFormatter.formatErrorSync(decoded.left)
        })
      }
      payload = Option.some(yield* fromEither(encodePayload(definition, target, decoded.right, undefined)))
    }
    const results = yield* queue.store.replayDeadLetters([{ id, payload }])
    yield* recordReplays(results)
    const result = results[0]
    if (result === undefined || result._tag === "NotFound") {
      return yield* new DeadLetterNotFoundError({ id })
    }
    if (result._tag === "Discarded") {
      return yield* new DeadLetterConflictError({ id, status: "discarded", operation: "replay" })
    }
    return result
  })

/** @internal */
export const replayMany = (
  ids: ReadonlyArray<JobId>
): Effect.Effect<ReadonlyArray<DeadLetter.ReplayResult>, JobStoreError, JobQueue> =>
  Effect.flatMap(tag, (queue) =>
    ids.length === 0
      ? Effect.succeed([])
      : queue.store.replayDeadLetters(ids.map((id) => ({ id, payload: Option.none() }))).pipe(
        Effect.tap(recordReplays)
      ))

/** @internal */
export const replayWhere = (
  filter: Omit<DeadLetter.Filter, "status"> & { readonly limit?: number }
): Effect.Effect<ReadonlyArray<DeadLetter.ReplayResult>, JobStoreError | InvalidOptionsError, JobQueue> =>
  Effect.gen(function*() {
    const queue = yield* tag
    const query = yield* fromEither(makeQuery({ ...filter, status: "pending", order: "oldest" }, 100))
    const page = yield* queue.store.listDeadLetters(query)
    if (page.entries.length === 0) return []
    const results = yield* queue.store.replayDeadLetters(
      page.entries.map((entry) => ({ id: entry.id, payload: Option.none() }))
    )
    yield* recordReplays(results)
    return results
  })

/** @internal */
export const discard = (
  id: JobId
): Effect.Effect<
  DeadLetter.DiscardResult,
  DeadLetterNotFoundError | DeadLetterConflictError | JobStoreError,
  JobQueue
> =>
  Effect.gen(function*() {
    const queue = yield* tag
    const results = yield* queue.store.discardDeadLetters([id])
    yield* recordDiscards(results)
    const result = results[0]
    if (result === undefined || result.outcome === "not_found") {
      return yield* new DeadLetterNotFoundError({ id })
    }
    if (result.outcome === "replayed") {
      return yield* new DeadLetterConflictError({ id, status: "replayed", operation: "discard" })
    }
    return result
  })

/** @internal */
export const discardMany = (
  ids: ReadonlyArray<JobId>
): Effect.Effect<ReadonlyArray<DeadLetter.DiscardResult>, JobStoreError, JobQueue> =>
  Effect.flatMap(
    tag,
    (queue) =>
      ids.length === 0 ? Effect.succeed([]) : queue.store.discardDeadLetters(ids).pipe(Effect.tap(recordDiscards))
  )
