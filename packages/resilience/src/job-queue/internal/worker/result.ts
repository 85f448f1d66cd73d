/**
 * A handler's result on its way to the backend: the encoded value sized against the queue's `maxResultBytes`
 * and put through a JSON round trip, so both backends store exactly what PostgreSQL's `jsonb` would hold.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { QueueConfig } from "../../JobQueue.js"
import type { ClaimedJob } from "../../JobStore.js"
import { InvalidResultError, ResultTooLargeError } from "../errors.js"
import { describe } from "../status.js"

/** @internal */
export const storableResult = (
  queue: QueueConfig,
  job: ClaimedJob,
  encoded: Option.Option<unknown>
): Effect.Effect<Option.Option<unknown>, InvalidResultError | ResultTooLargeError> => {
  if (Option.isNone(encoded)) return Effect.succeed(Option.none())
  let json: string | undefined
  try {
    json = JSON.stringify(encoded.value)
  } catch (cause) {
    return Effect.fail(
      new InvalidResultError({ kind: job.kind, issue: `the encoded result is not JSON: ${describe(cause)}` })
    )
  }
  if (json === undefined) {
    return Effect.fail(new InvalidResultError({ kind: job.kind, issue: "the encoded result is not JSON" }))
  }
  const bytes = Buffer.byteLength(json, "utf8")
  if (bytes > queue.maxResultBytes) {
    return Effect.fail(
      new ResultTooLargeError({
        queue: job.queue,
        kind: job.kind,
        jobId: job.lease.id,
        bytes,
        limit: queue.maxResultBytes
      })
    )
  }
  const parsed: unknown = JSON.parse(json)
  return Effect.succeed(Option.some(parsed))
}
