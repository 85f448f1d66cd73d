/**
 * The idempotency service tags (see `IdempotencyStore.ts` and
 * `IdempotencyHttp.ts`, which re-export them). A leaf: it reads no module of
 * this folder for its values, so the internals use these tags without
 * importing their public modules.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import type { Execution } from "../Idempotency.js"
import type { Service } from "../IdempotencyStore.js"

/**
 * The store `Idempotency.run` uses.
 *
 * @since 0.1.0
 * @category Tags
 */
export class IdempotencyStore
  extends Context.Tag("@bulwark/resilience/IdempotencyStore")<IdempotencyStore, Service>()
{}

/**
 * The execution a handler behind `IdempotencyHttp.middleware` or
 * `IdempotencyHttp.handler` runs as: `Some` with the attempt number and
 * whether it is recovering a crashed attempt, `None` outside the middleware
 * (or for a request without a key).
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Effect, Option } from "effect"
 * import { IdempotencyHttp } from "@bulwark/resilience"
 *
 * const handler = Effect.gen(function*() {
 *   const execution = yield* IdempotencyHttp.CurrentExecution
 *   // pass a key derived from ours downstream, so the payment provider deduplicates too
 *   const downstreamKey = Option.map(execution, (e) => `payments-${e.key}`)
 *   return HttpServerResponse.text(Option.getOrElse(downstreamKey, () => "none"))
 * })
 * ```
 *
 * @since 0.1.0
 * @category Execution
 */
export class CurrentExecution extends Context.Reference<CurrentExecution>()(
  "@bulwark/resilience/IdempotencyHttp/CurrentExecution",
  { defaultValue: (): Option.Option<Execution> => Option.none() }
) {}
