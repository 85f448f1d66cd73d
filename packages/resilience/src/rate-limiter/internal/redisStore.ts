import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { Redis } from "ioredis"
import { createHash } from "node:crypto"
import * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as RateLimiter from "../RateLimiter.js"
import type * as RedisRateLimiter from "../RedisRateLimiter.js"
import type { Spec } from "./algorithms.js"
import type { Config } from "./config.js"
import { wholeMillis } from "./config.js"
import * as Lua from "./lua.js"

// RateLimiter.ts does not import this module; RedisRateLimiter.ts does, so its values are only touched lazily.

const component = "RedisRateLimiter"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  prefix: "bulwark:rl:",
  onFailure: "fail-open",
  clock: "redis",
  commandTimeout: Duration.seconds(1),
  breakerName: "rate-limiter.redis",
  breakerFailures: 5,
  breakerOpenDuration: Duration.seconds(5)
} as const

/** How long a key outlives its reset: covers clock skew between Redis replicas; harmless (a stale state is inert). */
const SLACK_MS = 1_000
/** With the application's clock (tests drive it by hand), expiry in Redis time must never run ahead of it. */
const LOCAL_SLACK_MS = 3_600_000
/** Failures are logged at most this often (each is counted by the breaker's metrics). */
const LOG_EVERY_MS = 10_000

/**
 * A Redis call failed or answered something unexpected. Counted as a failure
 * by the store's circuit breaker; callers never see it (the failure policy
 * decides instead).
 *
 * @internal
 */
export class RedisStoreError extends Data.TaggedError("RedisStoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

interface Script {
  readonly lua: string
  readonly sha: string
}

const script = (lua: string): Script => ({ lua, sha: createHash("sha1").update(lua).digest("hex") })

/** @internal */
export const scripts: Readonly<Record<Spec["_tag"], Script>> = {
  TokenBucket: script(Lua.tokenBucket),
  FixedWindow: script(Lua.fixedWindow),
  SlidingWindowLog: script(Lua.slidingWindowLog),
  SlidingWindowCounter: script(Lua.slidingWindowCounter),
  LeakyBucket: script(Lua.leakyBucket),
  Gcra: script(Lua.gcra)
}

/** The burst (or capacity) argument of a spec's script. */
const extraOf = (spec: Spec): number => {
  switch (spec._tag) {
    case "TokenBucket":
    case "Gcra":
      return spec.burst
    case "LeakyBucket":
      return spec.capacity
    case "FixedWindow":
    case "SlidingWindowLog":
    case "SlidingWindowCounter":
      return 0
  }
}

const isNoScript = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "message" in error && typeof error.message === "string" &&
  error.message.startsWith("NOSCRIPT")

const messageOf = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string"
    ? cause.message
    : String(cause)

const parseReply = (reply: unknown): Either.Either<RateLimiter.StoreDecision, RedisStoreError> => {
  if (Array.isArray(reply) && reply.length === 5) {
    const values: ReadonlyArray<unknown> = reply
    const [allowed, delay, remaining, reset, retryAfter] = values
    if (
      typeof allowed === "number" && typeof delay === "number" && typeof remaining === "number" &&
      typeof reset === "number" && typeof retryAfter === "number"
    ) {
      return Either.right({ allowed: allowed === 1, delay, remaining, reset, retryAfter })
    }
  }
  return Either.left(new RedisStoreError({ message: "Redis answered the rate-limit script unexpectedly" }))
}

interface Valid {
  readonly prefix: string
  readonly onFailure: "fail-open" | "fail-closed"
  readonly clock: "redis" | "local"
  readonly commandTimeout: number
  readonly breakerName: string
  readonly breakerFailures: number
  readonly breakerOpenDuration: number
}

const validate = (options: RedisRateLimiter.Options): Options.Check<Valid> =>
  Either.all({
    prefix: typeof (options.prefix ?? defaults.prefix) === "string" && (options.prefix ?? defaults.prefix).length <= 128
      ? Either.right(options.prefix ?? defaults.prefix)
      : Either.left(Options.invalid(field("prefix"), options.prefix, "a string of at most 128 characters")),
    onFailure: options.onFailure === undefined || options.onFailure === "fail-open" ||
        options.onFailure === "fail-closed"
      ? Either.right(options.onFailure ?? defaults.onFailure)
      : Either.left(Options.invalid(field("onFailure"), options.onFailure, `"fail-open" or "fail-closed"`)),
    clock: options.clock === undefined || options.clock === "redis" || options.clock === "local"
      ? Either.right(options.clock ?? defaults.clock)
      : Either.left(Options.invalid(field("clock"), options.clock, `"redis" or "local"`)),
    commandTimeout: wholeMillis("commandTimeout", options.commandTimeout ?? defaults.commandTimeout, {
      min: 1,
      max: 600_000
    }),
    breakerName: Options.name(field("circuitBreaker.name"), options.circuitBreaker?.name ?? defaults.breakerName),
    breakerFailures: Options.number(
      field("circuitBreaker.failures"),
      options.circuitBreaker?.failures ?? defaults.breakerFailures,
      { min: 1, max: 1_000_000, integer: true }
    ),
    breakerOpenDuration: wholeMillis(
      "circuitBreaker.openDuration",
      options.circuitBreaker?.openDuration ?? defaults.breakerOpenDuration,
      { min: 1, max: 3_600_000 }
    )
  })

/** An ioredis client the store made (and closes), or the caller's (left alone). */
const acquireClient = (options: RedisRateLimiter.Options, valid: Valid): Effect.Effect<Redis, never, Scope.Scope> => {
  const given = options.client
  if (given !== undefined) return Effect.succeed(given)
  return Effect.acquireRelease(
    Effect.sync(() => {
      const client = new Redis({
        lazyConnect: true,
        // Fail fast while disconnected: the circuit breaker and failure policy take over, nothing queues up.
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        commandTimeout: valid.commandTimeout,
        connectTimeout: Math.max(valid.commandTimeout, 1_000),
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
        Effect.catchAll((cause) =>
          Effect.logWarning(
            `Rate limiter store: Redis is unreachable at startup (${messageOf(cause)}); ` +
              `deciding with the ${valid.onFailure} policy until it connects`
          )
        )
      )
    )
  )
}

/** @internal */
export const make = (
  options: RedisRateLimiter.Options = {}
): Effect.Effect<RateLimiter.Store, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const valid = yield* validate(options)
    const client = yield* acquireClient(options, valid)
    const breaker = yield* CircuitBreaker.make<RedisStoreError>({
      name: valid.breakerName,
      trip: CircuitBreaker.consecutiveFailures(valid.breakerFailures),
      openDuration: Duration.millis(valid.breakerOpenDuration),
      halfOpen: { permits: 1, closeAfter: 1 }
    })
    // Load the scripts up front when Redis is there; EVALSHA falls back to EVAL after a flush or failover.
    yield* Effect.forEach(Object.values(scripts), (s) => Effect.tryPromise(() => client.script("LOAD", s.lua)), {
      discard: true
    }).pipe(Effect.ignore)

    const slack = valid.clock === "local" ? LOCAL_SLACK_MS : SLACK_MS
    // The breaker's bookkeeping (two STM commits a call) would cost a third of the throughput on a healthy
    // Redis. Its trip strategy counts consecutive failures, and a run of successes counts as one success, so
    // while nothing has failed calls go straight to Redis; a failure is recorded through the breaker and
    // makes every call go through it (open: skip Redis; half-open: probe) until one succeeds again.
    let suspect = false
    let failures = 0
    let lastLoggedAt = -Infinity

    const onFailure = (
      config: Config,
      error: RedisStoreError | CircuitBreaker.CircuitOpenError
    ): Effect.Effect<RateLimiter.StoreDecision> =>
      Effect.clockWith((clock) => {
        failures++
        const decision: RateLimiter.StoreDecision = valid.onFailure === "fail-open"
          ? { allowed: true, delay: 0, remaining: config.quota, reset: 0, retryAfter: 0, degraded: true }
          : (() => {
            const retryAfter = error._tag === "CircuitOpenError"
              ? Math.max(1, Math.ceil(Duration.toMillis(error.retryAfter)))
              : 1_000
            return { allowed: false, delay: 0, remaining: 0, reset: retryAfter, retryAfter, degraded: true }
          })()
        const now = clock.unsafeCurrentTimeMillis()
        if (now - lastLoggedAt < LOG_EVERY_MS) return Effect.succeed(decision)
        lastLoggedAt = now
        const count = failures
        failures = 0
        return Effect.logWarning(
          `Rate limiter store unavailable (${error.message}); ${
            valid.onFailure === "fail-open" ? "allowing calls (fail-open)" : "refusing calls (fail-closed)"
          }`
        ).pipe(
          Effect.annotateLogs({
            "rate_limiter.limiter": config.name,
            "rate_limiter.store": "redis",
            "rate_limiter.on_failure": valid.onFailure,
            "rate_limiter.failures": count,
            "error.tag": error._tag
          }),
          Effect.as(decision)
        )
      })

    const bind = (config: Config) =>
      Effect.sync((): RateLimiter.Binding => {
        const spec = config.spec
        const { lua, sha } = scripts[spec._tag]
        const base = `${valid.prefix}${config.id}:`
        const extra = extraOf(spec)
        const failed = (cause: unknown) => Either.left(new RedisStoreError({ message: messageOf(cause), cause }))
        // One async step per call (not tryPromise + catch + parse): this is the hot path of every distributed limit.
        const evaluate = (redisKey: string, now: number, cost: number, maxDelay: number) =>
          Effect.async<RateLimiter.StoreDecision, RedisStoreError>((resume) => {
            const args = [now, cost, maxDelay, spec.limit, spec.window, extra, slack] as const
            const settle = (reply: unknown) => resume(parseReply(reply))
            const fail = (cause: unknown) => resume(failed(cause))
            void client.evalsha(sha, 1, redisKey, ...args).then(settle, (error: unknown) =>
              // After SCRIPT FLUSH or a failover the script is gone: EVAL loads it again.
              isNoScript(error) ? client.eval(lua, 1, redisKey, ...args).then(settle, fail) : fail(error))
          })
        const decide = (redisKey: string, now: number, cost: number, maxDelay: number) => {
          const call = evaluate(redisKey, now, cost, maxDelay)
          if (!suspect) {
            return Effect.catchAll(call, (error) => {
              suspect = true
              return Effect.zipRight(Effect.ignore(breaker.protect(Effect.fail(error))), onFailure(config, error))
            })
          }
          return Effect.matchEffect(breaker.protect(call), {
            onSuccess: (decision) => {
              suspect = false
              return Effect.succeed(decision)
            },
            onFailure: (error) => onFailure(config, error)
          })
        }
        return valid.clock === "redis"
          ? (key, cost, maxDelay) => decide(base + key, -1, cost, maxDelay)
          : (key, cost, maxDelay) =>
            Effect.clockWith((clock) => decide(base + key, clock.unsafeCurrentTimeMillis(), cost, maxDelay))
      })

    const store: RateLimiter.Store = { backend: "redis", bind }
    return store
  })

/** @internal */
export const layer = (
  options: RedisRateLimiter.Options = {}
): Layer.Layer<RateLimiter.RateLimiterStore, InvalidOptionsError> =>
  Layer.scoped(RateLimiter.RateLimiterStore, make(options))
