import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { createHash } from "node:crypto"
import * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as RedisClient from "../../internal/redis.js"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import type * as RedisIdempotencyCache from "../RedisIdempotencyCache.js"
import * as Tags from "./tags.js"

const component = "RedisIdempotencyCache"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  prefix: "bulwark:idem:",
  ttl: Duration.hours(1),
  commandTimeout: Duration.millis(500),
  breakerName: "idempotency.redis",
  breakerFailures: 5,
  breakerOpenDuration: Duration.seconds(5)
} as const

/**
 * A record is cached for its remaining life minus this, so the cached copy
 * always expires before the store's (the remaining life was measured a
 * round trip ago). Records with less life than this left are not cached.
 */
const SLACK_MS = 1_000
/** Failures are logged at most this often (each is counted by the breaker's metrics). */
const LOG_EVERY_MS = 10_000

/** @internal */
export class RedisCacheError extends Data.TaggedError("RedisCacheError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

const Cached = Schema.parseJson(Schema.Struct({
  fingerprint: Schema.String,
  attempt: Schema.Number,
  outcome: Schema.Literal("success", "failure", "too_large", "unencodable"),
  payload: Schema.String
}))

interface Valid {
  readonly prefix: string
  readonly ttlMs: number
  readonly commandTimeoutMs: number
  readonly breakerName: string
  readonly breakerFailures: number
  readonly breakerOpenDuration: Duration.Duration
}

const validate = (options: RedisIdempotencyCache.Options): Options.Check<Valid> =>
  Either.all({
    prefix: typeof (options.prefix ?? defaults.prefix) === "string" && (options.prefix ?? defaults.prefix).length <= 128
      ? Either.right(options.prefix ?? defaults.prefix)
      : Either.left(Options.invalid(field("prefix"), options.prefix, "a string of at most 128 characters")),
    ttlMs: Either.map(
      Options.duration(field("ttl"), options.ttl ?? defaults.ttl, { allowZero: false }),
      (ttl) => Math.max(1, Math.floor(Duration.toMillis(ttl)))
    ),
    commandTimeoutMs: Either.map(
      Options.duration(field("commandTimeout"), options.commandTimeout ?? defaults.commandTimeout, {
        allowZero: false
      }),
      (timeout) => Math.max(1, Math.ceil(Duration.toMillis(timeout)))
    ),
    breakerName: Options.name(field("circuitBreaker.name"), options.circuitBreaker?.name ?? defaults.breakerName),
    breakerFailures: Options.number(
      field("circuitBreaker.failures"),
      options.circuitBreaker?.failures ?? defaults.breakerFailures,
      { min: 1, max: 1_000_000, integer: true }
    ),
    breakerOpenDuration: Options.duration(
      field("circuitBreaker.openDuration"),
      options.circuitBreaker?.openDuration ?? defaults.breakerOpenDuration,
      { allowZero: false }
    )
  })

/** @internal */
export const make = (
  store: IdempotencyStore.Service,
  options: RedisIdempotencyCache.Options = {}
): Effect.Effect<IdempotencyStore.Service, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* RedisClient.validateConnection(component, options)
    const valid = yield* validate(options)
    const client = yield* RedisClient.acquireClient({
      client: options.client,
      redis: options.redis,
      cluster: options.cluster,
      commandTimeoutMs: valid.commandTimeoutMs,
      unreachable: (message) =>
        `Idempotency cache: Redis is unreachable at startup (${message}); the store answers until it connects`
    })
    const misconfiguration = RedisClient.misconfiguration({
      what: "Idempotency cache",
      component,
      label: "idempotency_cache",
      connection: options,
      countAnnotation: "idempotency.cache_misconfigurations"
    })
    yield* misconfiguration.checkAtStartup(client, valid.commandTimeoutMs)
    const breaker = yield* CircuitBreaker.make<RedisCacheError>({
      name: valid.breakerName,
      trip: CircuitBreaker.consecutiveFailures(valid.breakerFailures),
      openDuration: valid.breakerOpenDuration,
      halfOpen: { permits: 1, closeAfter: 1 },
      // A misconfiguration is no outage: the breaker must keep letting the calls Redis can answer through.
      ignoreError: (error) => RedisClient.isMisconfiguration(error.cause)
    })

    let failures = 0
    let lastLoggedAt = -Infinity

    /**
     * A redirection (`MOVED`, `ASK`) means a single-node client on a cluster node: a deployment error, counted and
     * logged at error level (throttled). The store answers, as in an outage, but the breaker ignores it: Redis did
     * answer, and the calls it owns still hit the cache.
     */
    const misconfigured = (error: RedisCacheError, key: IdempotencyStore.RecordKey) =>
      misconfiguration.report(error.cause, `answering from the ${store.backend} store`, {
        "idempotency.scope": key.scope,
        "idempotency.cache": "redis"
      })

    const redisKey = (key: IdempotencyStore.RecordKey): string =>
      valid.prefix + createHash("sha256").update(JSON.stringify([key.scope, key.partition, key.key])).digest("hex")

    const call = <A>(what: string, f: () => Promise<A>): Effect.Effect<A, RedisCacheError> =>
      Effect.tryPromise({
        try: f,
        catch: (cause) => new RedisCacheError({ message: `${what}: ${RedisClient.messageOf(cause)}`, cause })
      })

    /** Runs a Redis call through the breaker; on failure, logs (throttled) and answers `None`. */
    const guarded = <A>(
      what: string,
      f: () => Promise<A>,
      key: IdempotencyStore.RecordKey
    ): Effect.Effect<Option.Option<A>> =>
      breaker.protect(call(what, f)).pipe(
        Effect.map(Option.some),
        Effect.catchAll((error) =>
          error._tag === "RedisCacheError" && RedisClient.isMisconfiguration(error.cause)
            ? Effect.as(misconfigured(error, key), Option.none())
            : Effect.clockWith((clock) => {
              failures++
              const now = clock.unsafeCurrentTimeMillis()
              if (now - lastLoggedAt < LOG_EVERY_MS) return Effect.succeed(Option.none())
              lastLoggedAt = now
              const count = failures
              failures = 0
              return Effect.logWarning(
                `Idempotency cache unavailable (${error.message}); answering from the ${store.backend} store`
              ).pipe(
                Effect.annotateLogs({
                  "idempotency.scope": key.scope,
                  "idempotency.cache": "redis",
                  "idempotency.cache_failures": count,
                  "error.tag": error._tag
                }),
                Effect.as(Option.none())
              )
            })
        )
      )

    const read = (key: IdempotencyStore.RecordKey) =>
      guarded("GET", async () => {
        const k = redisKey(key)
        const replies = await client.pipeline().get(k).pttl(k).exec()
        if (replies === null) throw new Error("the pipeline was discarded")
        const [got, ttl] = replies
        if (got === undefined || ttl === undefined || got[0] !== null || ttl[0] !== null) {
          throw got?.[0] ?? ttl?.[0] ?? new Error("unexpected pipeline reply")
        }
        return { value: got[1], ttl: ttl[1] }
      }, key).pipe(
        Effect.map(Option.flatMap(({ ttl, value }) => {
          if (typeof value !== "string" || typeof ttl !== "number" || ttl <= 0) return Option.none()
          return Option.map(Either.getRight(Schema.decodeEither(Cached)(value)), (record) => ({ record, ttl }))
        }))
      )

    const write = (key: IdempotencyStore.RecordKey, record: IdempotencyStore.CompletedRecord) => {
      const ttl = Math.min(valid.ttlMs, Math.floor(Duration.toMillis(record.expiresIn)) - SLACK_MS)
      if (ttl <= 0) return Effect.void
      const value = Schema.encodeSync(Cached)({
        fingerprint: record.fingerprint,
        attempt: record.attempt,
        outcome: record.outcome,
        payload: record.payload
      })
      return Effect.asVoid(guarded("SET", () => client.set(redisKey(key), value, "PX", ttl), key))
    }

    const claim = (request: IdempotencyStore.ClaimRequest) =>
      Effect.flatMap(
        read(request),
        (cached): Effect.Effect<IdempotencyStore.ClaimResult, IdempotencyStore.IdempotencyStoreError> => {
          if (Option.isSome(cached)) {
            const { record, ttl } = cached.value
            if (record.fingerprint !== request.fingerprint) return Effect.succeed({ _tag: "Mismatch" })
            return Effect.succeed({ _tag: "Completed", record: { ...record, expiresIn: Duration.millis(ttl) } })
          }
          return Effect.tap(
            store.claim(request),
            (result) => result._tag === "Completed" ? write(request, result.record) : Effect.void
          )
        }
      )

    // A completion inside a transaction is not written through: it may still roll back. The first replay after the
    // commit reads the store and fills the cache (`claim` above).
    const inTransaction = FiberRef.unsafeMake(false)

    const complete = (lease: IdempotencyStore.Lease, result: IdempotencyStore.StoredResult) =>
      Effect.tap(store.complete(lease, result), (written) =>
        FiberRef.getWith(inTransaction, (deferred) =>
          written && !deferred
            ? write(lease, {
              ...result,
              fingerprint: lease.fingerprint,
              attempt: lease.attempt,
              expiresIn: lease.ttl
            })
            : Effect.void))

    const storeTransaction = store.transaction
    const transaction = storeTransaction === undefined ?
      undefined :
      <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        storeTransaction(Effect.locally(effect, inTransaction, true))

    const service: IdempotencyStore.Service = {
      backend: `redis+${store.backend}`,
      claim,
      heartbeat: store.heartbeat,
      complete,
      release: store.release,
      lookup: store.lookup,
      deleteExpired: store.deleteExpired,
      ...(transaction === undefined ? {} : { transaction })
    }
    return service
  })

/** @internal */
export const layer = (
  options: RedisIdempotencyCache.Options = {}
): Layer.Layer<IdempotencyStore.IdempotencyStore, InvalidOptionsError, IdempotencyStore.IdempotencyStore> =>
  Layer.scoped(
    Tags.IdempotencyStore,
    Effect.flatMap(Tags.IdempotencyStore, (store) => make(store, options))
  )
