/**
 * The Redis side of a shared breaker: the connections, the scripts of
 * `fleetLua.ts` as a `fleet.ts` `Store`, option validation, and the
 * constructors behind `RedisCircuitBreaker`.
 *
 * @internal
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Check from "../../internal/options.js"
import * as RedisClient from "../../internal/redis.js"
import type { CircuitBreaker, Options as BreakerOptions, RegistryService } from "../CircuitBreaker.js"
import type * as RedisCircuitBreaker from "../RedisCircuitBreaker.js"
import { resolve } from "./config.js"
import * as Fleet from "./fleet.js"
import * as Lua from "./fleetLua.js"
import { makeService, Registry, statesOneByOne } from "./registry.js"

/** @internal */
export const defaults = {
  prefix: "bulwark:cb:",
  syncInterval: Duration.seconds(1),
  probeTimeout: Duration.seconds(30),
  commandTimeout: Duration.seconds(1)
} as const

/** How long a breaker's key outlives its last write: its generation grows with Redis time, so expiry is safe. */
const KEEP_MS = 86_400_000

const COMPONENT = "RedisCircuitBreaker"

/**
 * A Redis command of a shared breaker failed or answered something
 * unexpected. Callers never see it: the breaker decides alone meanwhile.
 *
 * @internal
 */
export class SharedStoreError extends Data.TaggedError("SharedStoreError")<{
  readonly message: string
  readonly cause?: unknown
}> {}

const { isNoScript, script } = RedisClient

const SCRIPTS = {
  read: script(Lua.read),
  open: script(Lua.open),
  probe: script(Lua.probe),
  report: script(Lua.report),
  release: script(Lua.release)
} as const

const isNumber = (u: unknown): u is number => typeof u === "number"

const parseStatus = (reply: unknown): Fleet.Status | undefined => {
  if (!Array.isArray(reply) || reply.length !== 3) return undefined
  const values: ReadonlyArray<unknown> = reply
  const [code, gen, value] = values
  return isNumber(code) && isNumber(gen) && isNumber(value) ? { code, gen, value } : undefined
}

/** An announcement: `"<generation> o <open ms>"` or `"<generation> c 0"`. @internal */
export const parseMessage = (message: string): Fleet.Status | undefined => {
  const match = /^(\d+) ([oc]) (-?\d+)$/.exec(message)
  if (match === null) return undefined
  return { code: match[2] === "o" ? Fleet.OPEN : Fleet.CLOSED, gen: Number(match[1]), value: Number(match[3]) }
}

// -----------------------------------------------------------------------------
// Options
// -----------------------------------------------------------------------------

/** @internal */
export interface Valid {
  readonly prefix: string
  readonly syncIntervalMillis: number
  readonly probeTimeoutMillis: number
  readonly commandTimeoutMillis: number
}

const millis = (
  option: string,
  input: Duration.DurationInput,
  component: string,
  max: number
): Check.Check<number> =>
  Either.flatMap(
    Check.duration({ component, option }, input, { allowZero: false }),
    (duration) => {
      const value = Math.ceil(Duration.toMillis(duration))
      return value <= max
        ? Either.right(value)
        : Either.left(Check.invalid({ component, option }, input, `a positive duration of at most ${max} ms`))
    }
  )

/** @internal */
export const validate = (options: RedisCircuitBreaker.SharingOptions, component = COMPONENT): Check.Check<Valid> => {
  const prefix = options.prefix ?? defaults.prefix
  return Either.flatMap(RedisClient.validateConnection(component, options), () =>
    Either.all({
      prefix: typeof prefix === "string" && prefix.length <= 128 && !/[{}]/.test(prefix)
        ? Either.right(prefix)
        : Either.left(
          Check.invalid(
            { component, option: "prefix" },
            options.prefix,
            "a string of at most 128 characters without { }"
          )
        ),
      syncIntervalMillis: millis("syncInterval", options.syncInterval ?? defaults.syncInterval, component, 3_600_000),
      probeTimeoutMillis: millis("probeTimeout", options.probeTimeout ?? defaults.probeTimeout, component, 86_400_000),
      commandTimeoutMillis: millis(
        "commandTimeout",
        options.commandTimeout ?? defaults.commandTimeout,
        component,
        600_000
      )
    }))
}

// -----------------------------------------------------------------------------
// Connections
// -----------------------------------------------------------------------------

interface Listener {
  readonly onMessage: (message: string) => void
  readonly onSubscribed: () => void
}

/** The command client and the subscriber connection, shared by every breaker made with them. */
interface Connection {
  readonly client: RedisClient.Client
  readonly listen: (channel: string, listener: Listener) => Effect.Effect<void, never, Scope.Scope>
}

const connect = (
  options: RedisCircuitBreaker.ConnectionOptions,
  valid: Valid
): Effect.Effect<Connection, never, Scope.Scope> =>
  Effect.gen(function*() {
    const client = yield* RedisClient.acquireClient({
      client: options.client,
      redis: options.redis,
      cluster: options.cluster,
      commandTimeoutMs: valid.commandTimeoutMillis,
      unreachable: (message) =>
        `Shared circuit breaker: Redis is unreachable at startup (${message}); ` +
        "each instance decides alone until it connects"
    })
    // Loaded up front where Redis is there, so an opening's first script is not an EVALSHA miss plus an EVAL.
    yield* RedisClient.loadScripts(client, Object.values(SCRIPTS).map((s) => s.lua))
    const listeners = new Map<string, Listener>()
    // Pub/sub needs a connection of its own; ioredis subscribes it again after every reconnection.
    const subscriber = yield* Effect.acquireRelease(
      Effect.sync((): RedisClient.Client => {
        const connection = RedisClient.isCluster(client) ? client.duplicate() : client.duplicate({ lazyConnect: true })
        connection.on("error", () => undefined)
        connection.on("message", (channel: string, message: string) => listeners.get(channel)?.onMessage(message))
        connection.on("ready", () => {
          for (const [channel, listener] of listeners) void subscribe(connection, channel, listener)
        })
        return connection
      }),
      (connection) => Effect.promise(() => connection.quit().then(() => undefined, () => connection.disconnect()))
    )
    // A duplicate of a client that is not lazy connects by itself; `connect` then fails, harmlessly.
    yield* Effect.promise(() => subscriber.connect().then(() => undefined, () => undefined))
    const listen = (channel: string, listener: Listener) =>
      Effect.acquireRelease(
        Effect.promise(() => {
          listeners.set(channel, listener)
          return subscriber.status === "ready" ? subscribe(subscriber, channel, listener) : Promise.resolve()
        }),
        () =>
          Effect.promise(() => {
            listeners.delete(channel)
            return subscriber.status === "ready"
              ? subscriber.unsubscribe(channel).then(() => undefined, () => undefined)
              : Promise.resolve()
          })
      )
    return { client, listen }
  })

/** Subscribes, then tells the listener (which reads the state: nothing announced before is missed). */
const subscribe = (connection: RedisClient.Client, channel: string, listener: Listener): Promise<void> =>
  connection.subscribe(channel).then(() => listener.onSubscribed(), () => undefined)

// -----------------------------------------------------------------------------
// The store of one breaker
// -----------------------------------------------------------------------------

const storeOf = (
  connection: Connection,
  name: string,
  valid: Valid,
  settings: { readonly permits: number; readonly closeAfter: number; readonly failureLimit: number }
): Fleet.Store => {
  const { client } = connection
  // One hash tag per breaker: every key of it is in one Redis Cluster slot.
  const base = `${valid.prefix}{${name}}`
  const key = `${base}:state`
  const channel = `${base}:events`
  const evaluate = (
    s: RedisClient.Script,
    args: ReadonlyArray<string | number>
  ): Effect.Effect<Fleet.Status, SharedStoreError> =>
    Effect.flatMap(
      Effect.tryPromise({
        // EVAL when Redis has lost the script (after SCRIPT FLUSH or a failover).
        try: (): Promise<unknown> =>
          client.evalsha(s.sha, 1, key, KEEP_MS, channel, ...args).catch((error: unknown) =>
            isNoScript(error)
              ? client.eval(s.lua, 1, key, KEEP_MS, channel, ...args)
              : Promise.reject(new SharedStoreError({ message: RedisClient.messageOf(error), cause: error }))
          ),
        catch: (cause) =>
          cause instanceof SharedStoreError
            ? cause
            : new SharedStoreError({ message: RedisClient.messageOf(cause), cause })
      }),
      (reply) => {
        const status = parseStatus(reply)
        return status === undefined
          ? Effect.fail(new SharedStoreError({ message: "Redis answered the breaker's script unexpectedly" }))
          : Effect.succeed(status)
      }
    )
  return {
    read: evaluate(SCRIPTS.read, []),
    open: (openFor) => evaluate(SCRIPTS.open, [Math.max(1, Math.ceil(openFor))]),
    probe: evaluate(SCRIPTS.probe, [settings.permits, valid.probeTimeoutMillis]),
    report: (gen, failed, openFor) =>
      evaluate(SCRIPTS.report, [
        gen,
        failed ? 1 : 0,
        settings.permits,
        settings.closeAfter,
        settings.failureLimit,
        Math.max(1, Math.ceil(openFor))
      ]),
    release: (gen) => evaluate(SCRIPTS.release, [gen]),
    listen: (onStatus, onSubscribed) =>
      connection.listen(channel, {
        onMessage: (message) => {
          const status = parseMessage(message)
          if (status !== undefined) onStatus(status)
        },
        onSubscribed
      })
  }
}

/** A shared breaker over an open connection, its fibers and subscription in the current scope. */
const makeOver = <E, A>(
  connection: Connection,
  valid: Valid,
  options: BreakerOptions<E, A>
): Effect.Effect<CircuitBreaker<E, A>, InvalidOptionsError, Scope.Scope> =>
  Effect.flatMap(
    resolve(options),
    (resolved) =>
      Fleet.make(options, storeOf(connection, resolved.name, valid, resolved.settings), {
        syncIntervalMillis: valid.syncIntervalMillis
      })
  )

/** @internal */
export const make = <E = unknown, A = unknown>(
  options: RedisCircuitBreaker.Options<E, A>
): Effect.Effect<CircuitBreaker<E, A>, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const valid = yield* validate(options, `${COMPONENT} "${options.name}"`)
    // Invalid breaker options fail before any connection is made.
    yield* resolve(options)
    const connection = yield* connect(options, valid)
    return yield* makeOver(connection, valid, options)
  })

/** @internal */
export const layer = (
  config: RedisCircuitBreaker.RegistryConfig = {}
): Layer.Layer<Registry, InvalidOptionsError> =>
  Layer.scoped(
    Registry,
    Effect.gen(function*() {
      const valid = yield* validate(config)
      yield* resolve({ ...config.defaults, name: "defaults" })
      const connection = yield* connect(config, valid)
      const service: RegistryService = yield* makeService(
        config,
        (options, scope) => Scope.extend(makeOver(connection, valid, options), scope),
        statesOneByOne
      )
      return service
    })
  )
