/**
 * Several instances of one shared breaker (`RedisCircuitBreaker`) in one process, on a real three-master Redis
 * Cluster started for this file (`../support/redisCluster.ts`; fails, never skips, without redis-server). Each
 * instance has its own Cluster client and its own pub/sub Cluster connection (`duplicate()`), as separate processes
 * would. A breaker's keys share its `{name}` hash tag, so its scripts run on the one node owning that slot, and their
 * `PUBLISH` reaches subscribers on every node through the cluster bus. The single-node version is `fleet.test.ts`.
 */
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as RedisCircuitBreaker from "@bulwark/resilience/RedisCircuitBreaker"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import { Cluster } from "ioredis"
import * as TestCluster from "../support/redisCluster.js"
import { at, failing, refusal, trip, unique } from "./support.js"

// The cluster is this file's alone (and removed afterwards), so keys need no cleanup; unique names keep tests apart.
const prefix = "bulwark-test:cb-cluster:"
let cluster: TestCluster.TestCluster

beforeAll(async () => {
  cluster = await TestCluster.start()
}, 60_000)

afterAll(() => cluster?.stop())

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

/** A Cluster client of the test's own (closed with the scope), for an instance given `client`. */
const clusterClient = Effect.acquireRelease(
  Effect.promise(async () => {
    const client = new Cluster(cluster.nodes.map((node) => ({ ...node })), {
      lazyConnect: true,
      enableOfflineQueue: false,
      retryDelayOnClusterDown: 0,
      redisOptions: { maxRetriesPerRequest: 1, commandTimeout: 1_000 }
    })
    client.on("error", () => undefined)
    await client.connect()
    return client
  }),
  (client) => Effect.sync(() => client.disconnect())
)

/**
 * `count` instances of a breaker, each with its own connections; with `given`, the first on a Cluster client it is
 * given, the others on one they make from the seed nodes.
 */
const fleet = (
  count: number,
  options: RedisCircuitBreaker.Options,
  given = false
): Effect.Effect<ReadonlyArray<CircuitBreaker.CircuitBreaker>, never, Scope.Scope> =>
  Effect.orDie(Effect.forEach(
    Array.from({ length: count }, (_, i) => i),
    (i) =>
      given && i === 0
        ? Effect.flatMap(clusterClient, (client) => RedisCircuitBreaker.make({ ...options, client, prefix }))
        : RedisCircuitBreaker.make({ cluster: { nodes: cluster.nodes }, ...options, prefix })
  ))

const states = (instances: ReadonlyArray<CircuitBreaker.CircuitBreaker>) => Effect.forEach(instances, (b) => b.state)

describe("a circuit breaker shared through a Redis Cluster, several instances in one process", () => {
  it.scopedLive("one instance opening opens the others by its announcement, heard on every node of the cluster", () =>
    Effect.gen(function*() {
      const name = unique("open")
      const stateKey = `${prefix}{${name}}:state`
      const channel = `${prefix}{${name}}:events`
      // A subscriber on each node: the script's PUBLISH on the key's node reaches all three (the cluster bus).
      const heard: Array<Array<string>> = [[], [], []]
      yield* Effect.forEach([0, 1, 2], (i) =>
        Effect.promise(async () => {
          const subscriber = cluster.node(i)
          subscriber.on("message", (_channel: string, message: string) => heard[i]?.push(message))
          await subscriber.subscribe(channel)
        }))
      // A read every minute: only the announcement can explain a quick propagation.
      const options: RedisCircuitBreaker.Options = {
        name,
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "10 seconds",
        syncInterval: "1 minute"
      }
      const [a, b, c] = yield* fleet(3, options, true)
      if (a === undefined || b === undefined || c === undefined) return assert.fail("three instances")
      // Tripped on the instance whose Cluster client was given: the others made theirs from the seed nodes.
      yield* trip(a)
      assert.strictEqual(yield* a.state, "Open")
      const delay = yield* eventually(
        Effect.all([b.state, c.state]),
        (s) => s.every((state) => state === "Open"),
        1_000
      )
      console.log(`[fleet-cluster] open propagated to two other instances in ${delay} ms`)
      assert.isAtMost(delay, 500)
      yield* eventually(Effect.sync(() => heard), (h) => h.every((messages) => messages.length === 1), 1_000)
      for (const messages of heard) assert.match(messages[0] ?? "", /^\d+ o 10000$/)
      // The state is one key, on the node owning the name's slot, and nowhere else.
      const owner = yield* Effect.promise(() => cluster.nodeOf(stateKey))
      for (const i of [0, 1, 2]) {
        const exists = yield* Effect.promise(() => cluster.node(i).exists(stateKey).catch(() => 0))
        assert.strictEqual(exists, i === owner ? 1 : 0, `node ${i}`)
      }
      const error = yield* refusal(b)
      assert.strictEqual(error.state, "Open")
      assert.isAbove(Duration.toMillis(error.retryAfter), 9_000)
      // An instance joining now starts open: it reads the fleet's state when it is made.
      const [late] = yield* fleet(1, options)
      if (late === undefined) return assert.fail("one instance")
      assert.strictEqual(yield* late.state, "Open")
    }))

  it.scopedLive("half-open lets N probes through across the fleet, not N per instance; their successes close every instance", () =>
    Effect.gen(function*() {
      const instances = yield* fleet(3, {
        name: unique("probes"),
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "300 millis",
        halfOpen: { permits: 2, closeAfter: 2 },
        syncInterval: "1 minute"
      })
      yield* trip(at(instances, 1))
      yield* eventually(states(instances), (s) => s.every((x) => x === "Open"))
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
      const delay = yield* eventually(states(instances), (s) => s.every((state) => state === "Closed"), 1_000)
      console.log(`[fleet-cluster] the probes' close reached every instance in ${delay} ms`)
      assert.strictEqual(yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(at(instances, 2))), "ok")
    }))

  it.scopedLive("a failed probe reopens the fleet for every instance", () =>
    Effect.gen(function*() {
      const instances = yield* fleet(3, {
        name: unique("reopen"),
        trip: CircuitBreaker.consecutiveFailures(2),
        openDuration: "300 millis",
        halfOpen: { permits: 1, closeAfter: 1 },
        syncInterval: "1 minute"
      })
      const [a, b, c] = instances
      if (a === undefined || b === undefined || c === undefined) return assert.fail("three instances")
      yield* trip(a)
      yield* eventually(states(instances), (s) => s.every((x) => x === "Open"))
      yield* Effect.sleep("400 millis")
      yield* Effect.ignore(failing.pipe(CircuitBreaker.protect(b)))
      yield* eventually(Effect.all([a.state, c.state]), (s) => s.every((x) => x === "Open"), 1_000)
      assert.strictEqual((yield* refusal(c)).state, "Open")
    }))

  it.scopedLive(
    "when the node owning the breaker's slot dies, every instance decides alone (gauge 0, one warning each), and shares again once it is back",
    () => {
      const logs: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        logs.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
      })
      return Effect.gen(function*() {
        const name = unique("outage")
        const owner = yield* Effect.promise(() => cluster.nodeOf(`${prefix}{${name}}:state`))
        const instances = yield* fleet(3, {
          name,
          trip: CircuitBreaker.consecutiveFailures(2),
          openDuration: "20 seconds",
          syncInterval: "100 millis",
          commandTimeout: "200 millis"
        })
        const [a, b, c] = instances
        if (a === undefined || b === undefined || c === undefined) return assert.fail("three instances")
        const gauge = Metric.value(Metrics.circuitBreakerSharedStoreUp.pipe(Metric.tagged("breaker", name)))
        assert.strictEqual((yield* gauge).value, 1)

        yield* Effect.promise(() => cluster.kill(owner))
        yield* eventually(gauge, (g) => g.value === 0, 5_000)
        const warnings = () => logs.filter((line) => line.startsWith("WARN") && line.includes("shared store"))
        // One warning per instance for the outage, whatever the failed reads.
        yield* eventually(Effect.sync(warnings), (w) => w.length === 3, 5_000)
        // Alone, each still protects: a's local breaker opens; the others do not hear of it.
        yield* trip(a)
        assert.strictEqual(yield* a.state, "Open")
        yield* Effect.sleep("300 millis")
        assert.deepStrictEqual(yield* Effect.all([b.state, c.state]), ["Closed", "Closed"])
        assert.strictEqual(yield* Effect.succeed("ok").pipe(CircuitBreaker.protect(b)), "ok")
        assert.strictEqual(warnings().length, 3)

        yield* Effect.promise(() => cluster.restart(owner))
        yield* eventually(gauge, (g) => g.value === 1, 10_000)
        // The opening a made alone is shared once the node answers.
        yield* eventually(Effect.all([b.state, c.state]), (s) => s.every((x) => x === "Open"), 5_000)
        assert.strictEqual(yield* a.state, "Open")
        assert.isTrue(logs.some((line) => line.startsWith("INFO") && line.includes("answers again")))
      }).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    },
    60_000
  )

  it.scopedLive(
    "an instance whose subscriber's node dies hears announcements again once the node is back",
    () =>
      Effect.gen(function*() {
        const name = unique("resubscribe")
        const owner = yield* Effect.promise(() => cluster.nodeOf(`${prefix}{${name}}:state`))
        const nodes = [0, 1, 2].map((i) => cluster.node(i))
        /** The node a named client's pub/sub connection is on (`CLIENT LIST TYPE pubsub`), or -1. */
        const subscribedOn = (connectionName: string) =>
          Effect.promise(async () => {
            for (const [i, node] of nodes.entries()) {
              const list = await node.call("CLIENT", "LIST", "TYPE", "pubsub").catch(() => "")
              if (String(list).includes(`(subscriber):${connectionName} `)) return i
            }
            return -1
          })
        // Instances until one listens on a node other than the breaker's own (ioredis picks a node at random).
        let listener: { breaker: CircuitBreaker.CircuitBreaker; node: number } | undefined
        for (let i = 0; listener === undefined; i++) {
          if (i > 30) return assert.fail("no subscriber away from the breaker's node")
          const connectionName = `${name}-${i}`
          const [breaker] = yield* Effect.orDie(
            RedisCircuitBreaker.make({
              name,
              trip: CircuitBreaker.consecutiveFailures(2),
              openDuration: "10 seconds",
              // A read every minute: only an announcement can explain a quick propagation.
              syncInterval: "1 minute",
              prefix,
              cluster: { nodes: cluster.nodes, options: { redisOptions: { connectionName } } }
            }).pipe(Effect.map((b) => [b]))
          )
          const node = yield* subscribedOn(connectionName)
          if (breaker !== undefined && node !== -1 && node !== owner) listener = { breaker, node }
        }
        const [tripper] = yield* fleet(1, {
          name,
          trip: CircuitBreaker.consecutiveFailures(2),
          openDuration: "10 seconds",
          syncInterval: "1 minute"
        })
        if (tripper === undefined) return assert.fail("one instance")
        yield* Effect.promise(() => cluster.kill(listener.node))
        yield* Effect.promise(() => cluster.waitForState("fail"))
        yield* Effect.promise(() => cluster.restart(listener.node))
        // The tripping instance's own commands may meet the cluster still settling: retry until it is open.
        yield* eventually(Effect.zipRight(trip(tripper), tripper.state), (s) => s === "Open", 5_000)
        const delay = yield* eventually(listener.breaker.state, (s) => s === "Open", 1_000)
        console.log(`[fleet-cluster] after its node's restart, the open reached a resubscribed instance in ${delay} ms`)
      }),
    60_000
  )
})
