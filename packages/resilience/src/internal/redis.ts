/**
 * The ioredis client of Bulwark's Redis-backed parts (the rate-limiter store, the idempotency cache): made the same
 * way for both, so that a Redis outage looks the same to both.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Redis, type RedisOptions } from "ioredis"

/** An error's message, or the value as text. */
export const messageOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : String(cause)

/**
 * The caller's client (left alone), or one made for the scope and closed with it: lazily connected, failing fast
 * while disconnected (no offline queue, one retry per request) so the caller's own failure policy takes over at once.
 * A failed first connection is logged with `unreachable`'s text; ioredis keeps reconnecting.
 */
export const acquireClient = (options: {
  readonly client: Redis | undefined
  readonly redis: RedisOptions | undefined
  readonly commandTimeoutMs: number
  readonly unreachable: (message: string) => string
}): Effect.Effect<Redis, never, Scope.Scope> => {
  if (options.client !== undefined) return Effect.succeed(options.client)
  return Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis({
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: options.commandTimeoutMs,
        connectTimeout: Math.max(options.commandTimeoutMs, 1_000),
        ...options.redis
      })
      // Connection errors surface through the calls (counted, logged, breaker); keep ioredis from printing them.
      client.on("error", () => undefined)
      return client
    }),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  ).pipe(
    Effect.tap((client) =>
      Effect.tryPromise(() => client.connect()).pipe(
        Effect.catchAll((cause) => Effect.logWarning(options.unreachable(messageOf(cause))))
      )
    )
  )
}
