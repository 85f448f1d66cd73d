import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { Cluster, Redis } from "ioredis"
import * as CircuitBreaker from "../../circuit-breaker/CircuitBreaker.js"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as RedisClient from "../../internal/redis.js"
import type * as RateLimiter from "../RateLimiter.js"
import type * as RedisRateLimiter from "../RedisRateLimiter.js"
import type { Spec } from "./algorithms.js"
import type { Config } from "./config.js"
import { wholeMillis } from "./config.js"
import * as Lua from "./lua.js"
import { RateLimiterStore } from "./store.js"

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
/** A misconfigured client's answer: refused whatever the failure policy, so that it cannot pass unnoticed. */
const MISCONFIGURED: RateLimiter.StoreDecision = {
  allowed: false,
  delay: 0,
  remaining: 0,
  reset: 1_000,
  retryAfter: 1_000,
  degraded: true
}

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

type Script = RedisClient.Script
const { isNoScript, script } = RedisClient

/** The scripts of one clock: each algorithm's decision and refund. */
type Scripts = Readonly<Record<Spec["_tag"], { readonly decide: Script; readonly refund: Script }>>

const scriptsFor = (clock: Lua.Clock): Scripts => ({
  TokenBucket: { decide: script(Lua.tokenBucket(clock)), refund: script(Lua.refundTokenBucket) },
  FixedWindow: { decide: script(Lua.fixedWindow(clock)), refund: script(Lua.refundFixedWindow) },
  SlidingWindowLog: { decide: script(Lua.slidingWindowLog(clock)), refund: script(Lua.refundSlidingWindowLog) },
  SlidingWindowCounter: {
    decide: script(Lua.slidingWindowCounter(clock)),
    refund: script(Lua.refundSlidingWindowCounter)
  },
  LeakyBucket: { decide: script(Lua.leakyBucket(clock)), refund: script(Lua.refundTat) },
  Gcra: { decide: script(Lua.gcra(clock)), refund: script(Lua.refundTat) }
})

/**
 * The scripts for Redis' clock and for the application's (which sends `now`,
 * and keeps state much longer past its reset: see `LOCAL_SLACK_MS`).
 *
 * @internal
 */
export const scripts: { readonly redis: Scripts; readonly local: Scripts } = {
  redis: scriptsFor({ source: "redis", slack: SLACK_MS }),
  local: scriptsFor({ source: "local", slack: LOCAL_SLACK_MS })
}

/** The burst (or capacity) of the algorithms that have one, for both decision and refund scripts. */
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

const isNumber = (u: unknown): u is number => typeof u === "number"

/**
 * The scripts' compact answers (see `lua.ts`); `undefined` for anything
 * else. Allowed-now decisions have the algorithms' shape, so that both stores
 * hand the limiter objects of one hidden class.
 */
const parseReply = (reply: unknown): RateLimiter.StoreDecision | undefined => {
  if (!Array.isArray(reply)) return undefined
  const values: ReadonlyArray<unknown> = reply
  const head = values[0]
  const remaining = values[1]
  const reset = values[2]
  if (!isNumber(head) || !isNumber(remaining) || !isNumber(reset)) return undefined
  if (values.length === 3) {
    return head >= 0
      ? { allowed: true, delay: head, remaining, reset, retryAfter: 0 }
      : { allowed: false, delay: 0, remaining, reset, retryAfter: -1 - head }
  }
  const at = values[3]
  const frac = values[4]
  if (values.length !== 5 || head <= 0 || !isNumber(at) || !isNumber(frac)) return undefined
  return { allowed: true, delay: head, remaining, reset, retryAfter: 0, reservation: { at, frac } }
}

/** Commands sent in one socket write at most; see {@link coalescer}. */
const FLUSH_EVERY = 16

/**
 * Sends the commands a tick issues in a few socket writes instead of one
 * each. ioredis writes every command to the socket at once, one syscall
 * each: on loopback or a fast network that write was about 40 % of a
 * decision's CPU time in Node, and Redis then reads commands one by one too.
 * The socket is corked while a tick issues commands and flushed every
 * {@link FLUSH_EVERY} commands and at the end of the tick (flushing only at
 * the end would leave Redis idle while Node works through a whole tick).
 * Every reply still settles its own call as soon as it is read, unlike a
 * pipeline or ioredis' auto-pipelining, which answer a batch at once and keep
 * one in flight.
 *
 * @internal
 */
export const coalescer = (client: Redis): (send: () => void) => void => {
  let corked: Redis["stream"] | undefined = undefined
  let pending = 0
  const uncork = () => {
    const stream = corked
    corked = undefined
    stream?.uncork()
  }
  return (send) => {
    if (corked === undefined && client.status === "ready") {
      corked = client.stream
      corked.cork()
      pending = 0
      process.nextTick(uncork)
    }
    send()
    if (corked !== undefined && ++pending >= FLUSH_EVERY) {
      pending = 0
      corked.uncork()
      corked.cork()
    }
  }
}

/**
 * The same for a Redis Cluster, whose commands go to one socket per node, chosen by ioredis inside the call (a
 * ready Cluster writes a command to its node's socket synchronously, like a single node). A tick's first command is
 * written as issued: a tick of one command has nothing to coalesce, and corking every node for it cost more than
 * it saved (measured at one decision in flight). At its second command the stream of every master whose connection
 * is ready and writable is corked (an idle one costs nothing: uncorking an empty socket writes nothing; finding
 * each command's node from its key's slot would need ioredis' `cluster-key-slot`, not a dependency here); they are
 * flushed every {@link FLUSH_EVERY} commands per corked node (keys spread over the nodes by hash, so about that
 * many each) and at the end of the tick. Measured on loopback with 32 decisions in flight, this saves about 2 µs of
 * Node CPU a decision (about 16 against 18). Only the streams corked in this tick are uncorked, never a node's
 * current one: a node that reconnects meanwhile (a new stream) leaves no corked socket behind. A command ioredis
 * sends elsewhere (after a redirection, or to a node still connecting) simply goes as ioredis sends it.
 *
 * @internal
 */
export const clusterCoalescer = (cluster: Cluster): (send: () => void) => void => {
  let corked: Array<Redis["stream"]> | undefined = undefined
  let issued = 0
  let pending = 0
  let limit = 0
  const endOfTick = () => {
    const streams = corked
    corked = undefined
    issued = 0
    if (streams !== undefined) { for (const stream of streams) stream.uncork() }
  }
  return (send) => {
    if (issued++ === 0) {
      process.nextTick(endOfTick)
    } else if (corked === undefined && cluster.status === "ready") {
      const streams: Array<Redis["stream"]> = []
      for (const node of cluster.nodes("master")) {
        const stream = node.stream
        if (node.status === "ready" && stream.writable) {
          stream.cork()
          streams.push(stream)
        }
      }
      corked = streams
      pending = 0
      limit = FLUSH_EVERY * streams.length
    }
    send()
    if (corked !== undefined && ++pending >= limit) {
      pending = 0
      for (const stream of corked) {
        stream.uncork()
        stream.cork()
      }
    }
  }
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

/** @internal */
export const make = (
  options: RedisRateLimiter.Options = {}
): Effect.Effect<RateLimiter.Store, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    yield* RedisClient.validateConnection(component, options)
    const valid = yield* validate(options)
    const client = yield* RedisClient.acquireClient({
      client: options.client,
      redis: options.redis,
      cluster: options.cluster,
      commandTimeoutMs: valid.commandTimeout,
      unreachable: (message) =>
        `Rate limiter store: Redis is unreachable at startup (${message}); ` +
        `deciding with the ${valid.onFailure} policy until it connects`
    })
    const breaker = yield* CircuitBreaker.make<RedisStoreError>({
      name: valid.breakerName,
      trip: CircuitBreaker.consecutiveFailures(valid.breakerFailures),
      openDuration: Duration.millis(valid.breakerOpenDuration),
      halfOpen: { permits: 1, closeAfter: 1 }
    })
    const misconfiguration = RedisClient.misconfiguration({
      what: "Rate limiter store",
      component,
      label: "rate_limiter",
      connection: options,
      countAnnotation: "rate_limiter.misconfigurations"
    })
    yield* misconfiguration.checkAtStartup(client, valid.commandTimeout)
    // Load the scripts up front when Redis is there; EVALSHA falls back to EVAL after a flush or failover.
    yield* RedisClient.loadScripts(
      client,
      Object.values(scripts[valid.clock]).flatMap((pair) => [pair.decide.lua, pair.refund.lua])
    )

    const coalesce = RedisClient.isCluster(client) ? clusterCoalescer(client) : coalescer(client)

    /** EVALSHA, or EVAL when Redis has lost the script (after SCRIPT FLUSH or a failover). */
    const evaluate = (
      script: Script,
      redisKey: string,
      args: ReadonlyArray<number>,
      onReply: (reply: unknown) => void,
      onError: (cause: unknown) => void
    ): void => {
      coalesce(() =>
        void client.evalsha(script.sha, 1, redisKey, ...args).then(onReply, (error: unknown) => {
          if (isNoScript(error)) void client.eval(script.lua, 1, redisKey, ...args).then(onReply, onError)
          else onError(error)
        })
      )
    }

    // The breaker's bookkeeping (two STM commits a call) would cost a third of the throughput on a healthy
    // Redis. Its trip strategy counts consecutive failures, and a run of successes counts as one success, so
    // while nothing has failed calls go straight to Redis; a failure is recorded through the breaker and
    // makes every call go through it (open: skip Redis; half-open: probe) until one succeeds again.
    let suspect = false
    let failures = 0
    let lastLoggedAt = -Infinity

    /**
     * Redis answered with a redirection: not an outage (the breaker is left alone, Redis did answer) but a
     * deployment error, counted, logged at error level (throttled) and refused: never a silent fail-open.
     */
    const misconfigured = (config: Config, cause: unknown): Effect.Effect<RateLimiter.StoreDecision> =>
      Effect.as(
        misconfiguration.report(cause, "refusing calls whatever the failure policy", {
          "rate_limiter.limiter": config.name,
          "rate_limiter.store": "redis"
        }),
        MISCONFIGURED
      )

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
        const { decide: decideScript, refund: refundScript } = scripts[valid.clock][spec._tag]
        const base = `${valid.prefix}${config.id}:`
        const { limit, window } = spec
        const extra = extraOf(spec)
        const hasExtra = spec._tag === "TokenBucket" || spec._tag === "Gcra" || spec._tag === "LeakyBucket"
        // The decision script's arguments (see lua.ts): `now` only on the application's clock, no unused burst.
        const argsOf: (now: number, cost: number, maxDelay: number) => ReadonlyArray<number> = valid.clock === "redis"
          ? hasExtra
            ? (_now, cost, maxDelay) => [cost, maxDelay, limit, window, extra]
            : (_now, cost, maxDelay) => [cost, maxDelay, limit, window]
          : hasExtra
          ? (now, cost, maxDelay) => [now, cost, maxDelay, limit, window, extra]
          : (now, cost, maxDelay) => [now, cost, maxDelay, limit, window]
        const storeError = (cause: unknown) => new RedisStoreError({ message: RedisClient.messageOf(cause), cause })
        const unexpected = () => new RedisStoreError({ message: "Redis answered the rate-limit script unexpectedly" })

        /** Through the breaker: while it is open calls skip Redis, half-open it lets a probe through. */
        const guarded = (redisKey: string, now: number, cost: number, maxDelay: number) =>
          Effect.matchEffect(
            breaker.protect(Effect.async<RateLimiter.StoreDecision, RedisStoreError>((resume) =>
              evaluate(
                decideScript,
                redisKey,
                argsOf(now, cost, maxDelay),
                (reply) => {
                  const decision = parseReply(reply)
                  resume(decision === undefined ? Effect.fail(unexpected()) : Effect.succeed(decision))
                },
                (cause) =>
                  resume(
                    RedisClient.isMisconfiguration(cause)
                      ? misconfigured(config, cause)
                      : Effect.fail(storeError(cause))
                  )
              )
            )),
            {
              onSuccess: (decision) => {
                suspect = false
                return Effect.succeed(decision)
              },
              onFailure: (error) => onFailure(config, error)
            }
          )

        /** The first failure after a healthy run: recorded by the breaker, answered by the failure policy. */
        const firstFailure = (error: RedisStoreError) => {
          suspect = true
          return Effect.zipRight(Effect.ignore(breaker.protect(Effect.fail(error))), onFailure(config, error))
        }

        // One async step per call, choosing its path when it runs (an effect may be built once and run often).
        const decide = (redisKey: string, now: number, cost: number, maxDelay: number) =>
          Effect.async<RateLimiter.StoreDecision>((resume) => {
            if (suspect) return resume(guarded(redisKey, now, cost, maxDelay))
            evaluate(
              decideScript,
              redisKey,
              argsOf(now, cost, maxDelay),
              (reply) => {
                const decision = parseReply(reply)
                resume(decision === undefined ? firstFailure(unexpected()) : Effect.succeed(decision))
              },
              (cause) =>
                resume(
                  RedisClient.isMisconfiguration(cause) ? misconfigured(config, cause) : firstFailure(storeError(cause))
                )
            )
          })

        // Best effort: while Redis is failing, or if the refund fails, the slot stays taken (never more admitted).
        const refund = (redisKey: string, now: number, cost: number, reservation: RateLimiter.Reservation) =>
          Effect.async<boolean>((resume) => {
            if (suspect) return resume(Effect.succeed(false))
            evaluate(
              refundScript,
              redisKey,
              [now, cost, reservation.at, reservation.frac, limit, window, extra],
              (reply) => resume(Effect.succeed(reply === 1)),
              (cause) =>
                resume(
                  RedisClient.isMisconfiguration(cause)
                    ? Effect.as(misconfigured(config, cause), false)
                    : Effect.succeed(false)
                )
            )
          })

        return valid.clock === "redis"
          ? {
            decide: (key, cost, maxDelay) => decide(base + key, -1, cost, maxDelay),
            refund: (key, cost, reservation) => refund(base + key, -1, cost, reservation)
          }
          : {
            decide: (key, cost, maxDelay) =>
              Effect.clockWith((clock) => decide(base + key, clock.unsafeCurrentTimeMillis(), cost, maxDelay)),
            refund: (key, cost, reservation) =>
              Effect.clockWith((clock) => refund(base + key, clock.unsafeCurrentTimeMillis(), cost, reservation))
          }
      })

    const store: RateLimiter.Store = { backend: "redis", bind }
    return store
  })

/** @internal */
export const layer = (
  options: RedisRateLimiter.Options = {}
): Layer.Layer<RateLimiterStore, InvalidOptionsError> => Layer.scoped(RateLimiterStore, make(options))
