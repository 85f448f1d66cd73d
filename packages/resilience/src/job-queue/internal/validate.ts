/**
 * Payload validation and queue lookup, shared by enqueue (jobQueue.ts), worker start-up (worker/options.ts) and
 * replays (deadLetter.ts).
 */
import * as Either from "effect/Either"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Config, JobDefinition, QueueConfig } from "../JobQueue.js"
import { InvalidPayloadError, PayloadTooLargeError, UnknownQueueError } from "./errors.js"
import { describe } from "./status.js"

/** @internal */
export const issueOf = (error: ParseResult.ParseError): string => ParseResult.TreeFormatter.formatErrorSync(error)

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
): Either.Either<unknown, InvalidPayloadError | PayloadTooLargeError> => {
  const where = index === undefined ? {} : { index }
  const encoded = Schema.encodeUnknownEither(definition.payload)(payload)
  if (Either.isLeft(encoded)) {
    return Either.left(
      new InvalidPayloadError({
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
    return Either.left(
      new InvalidPayloadError({
        kind: definition.kind,
        queue: queue.name,
        ...where,
        issue: `the encoded payload is not JSON: ${describe(cause)}`
      })
    )
  }
  if (json === undefined) {
    return Either.left(
      new InvalidPayloadError({
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
      new PayloadTooLargeError({
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
export const findQueue = (config: Config, name: string): Either.Either<QueueConfig, UnknownQueueError> => {
  const queue = config.queues.get(name)
  return queue === undefined
    ? Either.left(new UnknownQueueError({ queue: name, known: [...config.queues.keys()] }))
    : Either.right(queue)
}
