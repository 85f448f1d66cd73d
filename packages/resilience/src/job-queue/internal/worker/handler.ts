/**
 * Job handlers (`JobWorker.handler`): a definition and a function, the stored payload decoded with the
 * definition's Schema before the function runs (a payload that no longer decodes is a terminal failure), the job
 * provided as the `JobWorker.JobContext` service, and what the function returns encoded with the definition's
 * `result` Schema (a result that does not encode is a terminal failure too).
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { JobDefinition } from "../../JobQueue.js"
import type { Handler, JobContext } from "../../JobWorker.js"
import { InvalidResultError, PayloadDecodeError } from "../errors.js"
import { tag } from "./context.js"

/** @internal */
export const HandlerTypeId: unique symbol = Symbol.for("@bulwark/resilience/JobWorker/Handler")

/** @internal */
export const handler = <D extends JobDefinition.Any, A extends JobDefinition.Result<D>, E, R>(
  definition: D,
  run: (payload: JobDefinition.Payload<D>, job: JobContext) => Effect.Effect<A, E, R>
): Handler<Exclude<R, JobContext>> => {
  const decode = Schema.decodeUnknown(definition.payload)
  const encode = Option.map(definition.result, (schema) => Schema.encodeUnknown(schema))
  const encodeResult = (value: A): Effect.Effect<Option.Option<unknown>, InvalidResultError> =>
    Option.match(encode, {
      onNone: () => Effect.succeedNone,
      onSome: (encodeWith) =>
        encodeWith(value).pipe(
          Effect.mapError((error) =>
            new InvalidResultError({ kind: definition.kind, issue: ParseResult.TreeFormatter.formatErrorSync(error) })
          ),
          Effect.map(Option.some)
        )
    })
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
        Effect.flatMap((decoded: JobDefinition.Payload<D>) => Effect.provideService(run(decoded, job), tag, job)),
        Effect.flatMap(encodeResult)
      )
  }
}
