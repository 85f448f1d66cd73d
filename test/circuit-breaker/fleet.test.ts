/**
 * Several instances of one shared breaker (`RedisCircuitBreaker`) in one process, on the tests' Redis
 * (127.0.0.1:6379; fails, never skips, when it is not there). Each instance has its own connections, as separate
 * processes would; `fleet-processes.test.ts` does the same with three OS processes.
 */
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RedisCircuitBreaker from "@bulwark/resilience/RedisCircuitBreaker"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import * as TestRedis from "../support/redis.js"
import * as Proxy from "./proxy.js"
import { at, failing, refusal, trip, unique } from "./support.js"

/** Polls `read` every 5 ms until `done` holds; fails after `timeoutMillis`. Answers the milliseconds it took. */
const eventually = <A>(
  read: Effect.Effect<A>,
  done: (a: A) => boolean,
  timeoutMillis = 3_000
): Effect.Effect<number> =>
  Effect.gen(function*() {
    const since = Date.now()
    for (;;) {
      const value = yield* read
      if (done(value)) return Date.now() - since
      if (Date.now() - since > timeoutMillis) {
        return yield* Effect.dieMessage(`not within ${timeoutMillis} ms; last value: ${JSON.stringify(value)}`)
      }
      yield* Effect.sleep("5 millis")
    }
  })

/** `count` instances of the breaker `name` under `prefix`, each with its own connections. */
const fleet = (
  count: number,
  options: Omit<RedisCircuitBreaker.Options, "prefix">,
  prefix: string
): Effect.Effect<ReadonlyArray<CircuitBreaker.CircuitBreaker>, never, Scope.Scope> =>
  Effect.orDie(Effect.forEach(
    Array.from({ length: count }),
    () => RedisCircuitBreaker.make({ redis: TestRedis.connection, ...options, prefix })
  ))

describe("a circuit breaker shared through Redis, several instances in one process", () => {
  it.scopedLive("one instance opening opens the others by its announcement, long before any periodic read", () =>
    Effect.gen(function*() {
      const prefix = yield* TestRedis.scopedPrefix("cb-fleet")
      const name = unique("open")
      // A read every minute: only the announcement can explain a quick propagation.
      const options: Omit<RedisCircuitBreaker.Options, "prefix"> = {
        name,
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "10 seconds",
        syncInterval: "1 minute"
      }
      const [a, b, c] = yield* fleet(3, options, prefix)
      if (a === undefined || b === undefined || c === undefined) return assert.fail("three instances")
      yield* trip(a)
      assert.strictEqual(yield* a.state, "Open")
      const delay = yield* eventually(
        Effect.all([b.state, c.state]),
        (states) => states.every((state) => state === "Open"),
        1_000
      )
      console.log(`[fleet] open propagated to two other instances in ${delay} ms`)
      assert.isAtMost(delay, 500)
      const error = yield* refusal(b)
      assert.strictEqual(error.state, "Open")
      assert.isAbove(Duration.toMillis(error.retryAfter), 9_000)
      // An instance joining now starts open: it reads the fleet's state when it is made.
      const [late] = yield* fleet(1, options, prefix)
      if (late === undefined) return assert.fail("one instance")
      assert.strictEqual(yield* late.state, "Open")
    }))

  it.scopedLive("half-open lets N probes through across the fleet, not N per instance; their successes close every instance", () =>
    Effect.gen(function*() {
      const prefix = yield* TestRedis.scopedPrefix("cb-fleet")
      const name = unique("probes")
      const instances = yield* fleet(3, {
        name,
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "300 millis",
        halfOpen: { permits: 2, closeAfter: 2 },
        syncInterval: "1 minute"
      }, prefix)
      yield* trip(at(instances, 0))
      yield* eventually(Effect.forEach(instances, (b) => b.state), (s) => s.every((x) => x === "Open"))
      yield* Effect.sleep("400 millis")
      let ran = 0
      const probe = Effect.zipRight(Effect.sleep("100 millis"), Effect.sync(() => ++ran))
      // 5 calls on each instance at once: 15 candidates for 2 permits.
      const results = yield* Effect.forEach(
        instances,
        (breaker) =>
          Effect.forEach(Array.from({ length: 5 }), () => Effect.either(probe.pipe(CircuitBreaker.protect(breaker))), {
            concurrency: "unbounded"
          }),
        { concurrency: "unbounded" }
      )
      const refused = results.flat().filter(Either.isLeft)
      assert.strictEqual(ran, 2, "probes that reached the dependency")
      assert.strictEqual(refused.length, 13)
      for (const r of refused) assert.isTrue(CircuitBreaker.isCircuitOpenError(r.left))
      const delay = yield* eventually(
        Effect.forEach(instances, (b) => b.state),
        (states) => states.every((state) => state === "Closed"),
        1_000
      )
      console.log(`[fleet] the probes' close reached every instance in ${delay} ms`)
      assert.strictEqual(yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(at(instances, 2))), "ok")
    }))

  it.scopedLive("a failed probe reopens the fleet for every instance", () =>
    Effect.gen(function*() {
      const prefix = yield* TestRedis.scopedPrefix("cb-fleet")
      const name = unique("reopen")
      const instances = yield* fleet(3, {
        name,
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "300 millis",
        halfOpen: { permits: 1, closeAfter: 1 },
        syncInterval: "1 minute"
      }, prefix)
      const [a, b, c] = instances
      if (a === undefined || b === undefined || c === undefined) return assert.fail("three instances")
      yield* trip(a)
      yield* eventually(Effect.forEach(instances, (x) => x.state), (s) => s.every((x) => x === "Open"))
      yield* Effect.sleep("400 millis")
      // The probe fails on b: the fleet opens again, for the open duration b draws.
      yield* Effect.ignore(failing.pipe(CircuitBreaker.protect(b)))
      yield* eventually(Effect.all([a.state, c.state]), (s) => s.every((x) => x === "Open"), 1_000)
      const error = yield* refusal(c)
      assert.strictEqual(error.state, "Open")
    }))

  it.scopedLive("announcements of an older generation are ignored", () =>
    Effect.gen(function*() {
      const prefix = yield* TestRedis.scopedPrefix("cb-fleet")
      const name = unique("stale")
      const [a, b] = yield* fleet(2, {
        name,
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "10 seconds",
        syncInterval: "1 minute"
      }, prefix)
      if (a === undefined || b === undefined) return assert.fail("two instances")
      const admin = yield* Effect.acquireRelease(
        Effect.promise(TestRedis.connect),
        (c) => Effect.promise(() => c.quit())
      )
      yield* trip(a)
      yield* eventually(b.state, (s) => s === "Open")
      const gen = Number(yield* Effect.promise(() => admin.hget(`${prefix}{${name}}:state`, "g")))
      const channel = `${prefix}{${name}}:events`
      yield* Effect.promise(() => admin.publish(channel, `${gen - 1} c 0`))
      yield* Effect.sleep("200 millis")
      assert.strictEqual(yield* b.state, "Open", "a closing of an older generation changes nothing")
      // The same channel with a newer generation is heard: the older one was ignored, not lost.
      yield* Effect.promise(() => admin.publish(channel, `${gen + 1} c 0`))
      yield* eventually(b.state, (s) => s === "Closed", 1_000)
    }))

  it.scopedLive("an instance that loses Redis decides alone, says so once in a log and a gauge, and shares its opening when Redis returns", () => {
    const logs: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
    })
    return Effect.gen(function*() {
      const prefix = yield* TestRedis.scopedPrefix("cb-fleet")
      const name = unique("outage")
      const proxy = yield* Proxy.make
      const options: RedisCircuitBreaker.Options = {
        name,
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "20 seconds",
        syncInterval: "100 millis",
        commandTimeout: "200 millis",
        prefix
      }
      const cut = yield* Effect.orDie(RedisCircuitBreaker.make({
        ...options,
        redis: { host: "127.0.0.1", port: proxy.port, retryStrategy: () => 50 }
      }))
      const [other] = yield* fleet(1, options, prefix)
      if (cut === undefined || other === undefined) return assert.fail("two instances")
      const gauge = Metric.value(Metrics.circuitBreakerSharedStoreUp.pipe(Metric.tagged("breaker", name)))
      assert.strictEqual((yield* gauge).value, 1)

      yield* proxy.cut
      yield* eventually(gauge, (g) => g.value === 0)
      const warnings = () => logs.filter((line) => line.startsWith("WARN") && line.includes("shared store"))
      yield* eventually(Effect.sync(warnings), (w) => w.length === 1)
      // Alone, it still protects: its local breaker opens; the fleet does not hear of it.
      yield* trip(cut)
      assert.strictEqual(yield* cut.state, "Open")
      yield* Effect.sleep("300 millis")
      assert.strictEqual(yield* other.state, "Closed")
      assert.strictEqual(warnings().length, 1, "one warning for the outage, whatever the failed reads")

      yield* proxy.restore
      yield* eventually(gauge, (g) => g.value === 1, 5_000)
      // The opening it made alone is shared once Redis answers.
      yield* eventually(other.state, (s) => s === "Open", 2_000)
      assert.strictEqual(yield* cut.state, "Open")
      assert.isTrue(logs.some((line) => line.startsWith("INFO") && line.includes("answers again")))
    }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.scopedLive("registries of shared breakers (one connection pair each) share every breaker they name", () =>
    Effect.gen(function*() {
      const prefix = yield* TestRedis.scopedPrefix("cb-fleet")
      const name = unique("registry")
      const config: RedisCircuitBreaker.RegistryConfig = {
        redis: TestRedis.connection,
        prefix,
        syncInterval: "1 minute",
        breakers: { [name]: { trip: CircuitBreaker.consecutiveFailures(2), openDuration: "10 seconds" } }
      }
      const [one, two] = yield* Effect.orDie(
        Effect.forEach(
          [config, config],
          (c) =>
            Effect.map(
              Layer.build(RedisCircuitBreaker.layer(c)),
              (context) => Context.get(context, CircuitBreaker.Registry)
            )
        )
      )
      if (one === undefined || two === undefined) return assert.fail("two registries")
      const first = yield* Effect.orDie(one.get(name))
      const second = yield* Effect.orDie(two.get(name))
      yield* trip(first)
      yield* eventually(second.state, (s) => s === "Open", 1_000)
      assert.deepStrictEqual(yield* two.states, [{ name, state: "Open" }])
    }))
})
