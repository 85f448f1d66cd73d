/**
 * Job definitions (`JobQueue.define`), the requests of `enqueueMany` and dedup keys derived from an owner and an
 * operation. Pure.
 */
import * as Option from "effect/Option"
import type * as Schema from "effect/Schema"
import { createHash } from "node:crypto"
import type { EnqueueOptions, JobDefinition, JobRequest } from "../JobQueue.js"

/** @internal */
export const DefinitionTypeId: unique symbol = Symbol.for("@bulwark/resilience/JobQueue/JobDefinition")

/** @internal */
export const define = <
  const Kind extends string,
  Payload extends Schema.Schema.AnyNoContext,
  Result extends Schema.Schema.AnyNoContext = never
>(
  options: JobDefinition.Options<Kind, Payload, Result>
): JobDefinition<Kind, Payload, Result> => ({
  [DefinitionTypeId]: DefinitionTypeId,
  kind: options.kind,
  queue: options.queue,
  payload: options.payload,
  result: Option.fromNullable(options.result),
  maxAttempts: Option.fromNullable(options.maxAttempts),
  priority: options.priority ?? 0
})

/** @internal */
export const isJobDefinition = (u: unknown): u is JobDefinition.Any =>
  typeof u === "object" && u !== null && DefinitionTypeId in u

/** @internal */
export const job = <D extends JobDefinition.Any>(
  definition: D,
  payload: JobDefinition.Payload<D>,
  options: EnqueueOptions = {}
): JobRequest => ({ definition, payload, options })

/** JSON with object keys sorted at every level, so equal values hash equally whatever their key order. */
const canonical = (value: unknown): string => {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  if (typeof value === "object" && value !== null) {
    if (value instanceof Date) return JSON.stringify(value)
    const entries = Object.entries(value).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : 1))
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
  }
  return JSON.stringify(value) ?? "null"
}

/** @internal */
export const dedupKey = (owner: string, operation: unknown): string =>
  `${owner}:${createHash("sha256").update(canonical(operation)).digest("base64url")}`
