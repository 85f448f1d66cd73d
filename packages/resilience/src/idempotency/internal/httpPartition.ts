/**
 * Who a key belongs to. A key is looked up per `(scope, partition)`; with no
 * partition every caller shares one namespace, so a second caller who sends
 * the same key and body gets the first caller's stored answer. That is rarely
 * what a multi-user service wants, so a route without a partition function is
 * reported once, and a route that means it says so with `globalPartition`.
 */
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import type { PartitionFunction } from "../IdempotencyHttp.js"

/** Scopes are routes; the cap only guards against scopes made per request. */
const MAX_WARNED_SCOPES = 1_000

/** @internal */
export const globalPartition: PartitionFunction<unknown> = () => Effect.succeed("")

/** @internal */
export const partitionByHeader =
  (header: string): PartitionFunction<HttpServerRequest.HttpServerRequest> => (request) =>
    Effect.succeed(request.headers[header.toLowerCase()] ?? "")

/**
 * The start-up warning of a middleware or handler: for a route without a
 * partition function, one warning per scope, on its first keyed request (a
 * route has no start-up hook of its own); nothing with a partition function,
 * `globalPartition` included.
 *
 * @internal
 */
export const globalKeysWarning = (partition: unknown): (scope: string) => Effect.Effect<void> => {
  if (partition !== undefined) return () => Effect.void
  const warned = new Set<string>()
  return (scope) =>
    Effect.suspend(() => {
      if (warned.has(scope) || warned.size >= MAX_WARNED_SCOPES) return Effect.void
      warned.add(scope)
      return Effect.logWarning(
        `Idempotency keys of "${scope}" are global: any caller with the same key and body receives the first caller's answer. Set \`partition\` (e.g. from the authenticated principal), or \`partition: IdempotencyHttp.globalPartition\` when one namespace for every caller is intended.`
      ).pipe(Effect.annotateLogs({ "idempotency.scope": scope }))
    })
}
