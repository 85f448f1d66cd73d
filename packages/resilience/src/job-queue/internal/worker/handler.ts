/**
 * Job handlers (`JobWorker.handler`): a definition and a function, the stored payload decoded with the
 * definition's Schema before the function runs (a payload that no longer decodes is a terminal failure).
 */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { JobDefinition } from "../../JobQueue.js"
import type { Handler, JobContext } from "../../JobWorker.js"
import { PayloadDecodeError } from "../errors.js"

/** @internal */
export const HandlerTypeId: unique symbol = Symbol.for("@bulwark/resilience/JobWorker/Handler")

/** @internal */
export const handler = <D extends JobDefinition.Any, A, E, R>(
  definition: D,
  run: (payload: JobDefinition.Payload<D>, job: JobContext) => Effect.Effect<A, E, R>
): Handler<R> => {
  const decode = Schema.decodeUnknown(definition.payload)
  return {
    [HandlerTypeId]: HandlerTypeId,
    definition,
    run: (payload, job) =>
      decode(payload).pipe(
        Effect.mapError((error) =>
          new PayloadDecodeError({
            kind: definition.kind,
            issue: ParseResult.TreeFormatter.formatErrorSync(error)
          })
        ),
        Effect.flatMap((decoded: JobDefinition.Payload<D>) => run(decoded, job)),
        Effect.asVoid
      )
  }
}
