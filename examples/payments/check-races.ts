/**
 * A self-check of the exactly-once charge under races, run by
 * `test/examples/payments.e2e.test.ts` (and by hand:
 * `npx tsx --conditions=bulwark-source examples/payments/check-races.ts`). It drives `chargePayment`
 * directly — several fibers at once on the same payments, as an HTTP handler
 * re-run and a `charge-payment` job would — against the simulated gateway,
 * on the embedded PGlite (or `DATABASE_URL`), and prints one JSON line:
 *
 *   {"scenarios":[{"name":…,"payments":n,"gatewayCharges":n,"doubled":[],"outcomes":{…}}]}
 *
 * Scenarios:
 * - `concurrent`: four chargers at once per payment, slow gateway (300 ms);
 * - `after-unknown`: the first attempt times out although the gateway charged
 *   (latency 1.2 s, attempt timeout 400 ms); then four chargers at once;
 * - `lease-lapsed`: a charger whose lease lapses mid-charge (lease 150 ms,
 *   gateway 800 ms) and a second one that takes the payment over.
 */
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Config from "effect/Config"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { randomUUID } from "node:crypto"
import * as Database from "../shared/Database.js"
import { ChargeList, startGateway } from "./Gateway.js"
import * as GatewayClient from "./GatewayClient.js"
import * as Jobs from "./Jobs.js"
import * as Payments from "./Payments.js"

const program = Effect.gen(function*() {
  const gateway = yield* startGateway()
  const faults = (body: Record<string, unknown>) =>
    Effect.promise(() =>
      fetch(`${gateway.url}/admin/faults`, { method: "PUT", body: JSON.stringify(body) }).then((r) => r.text())
    )
  const chargesAt = Effect.promise(() => fetch(`${gateway.url}/v1/charges`).then((r) => r.json())).pipe(
    Effect.flatMap(Schema.decodeUnknown(ChargeList)),
    Effect.orDie
  )
  const databaseUrl = yield* Config.option(Config.redacted("DATABASE_URL"))

  const run = (
    name: string,
    attemptTimeout: Duration.DurationInput,
    scenario: (ids: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<string>, unknown, Deps>
  ) =>
    Effect.gen(function*() {
      const ids: Array<string> = []
      for (let i = 0; i < 8; i++) {
        const payment = yield* Payments.createOrFind(randomUUID(), { amount: 500 + i, currency: "EUR", customer: name })
        ids.push(payment.id)
      }
      const outcomes = yield* scenario(ids)
      const charges = (yield* chargesAt).charges.filter((c) => ids.includes(c.paymentId))
      const perPayment = new Map<string, number>()
      for (const c of charges) perPayment.set(c.paymentId, (perPayment.get(c.paymentId) ?? 0) + 1)
      const final = yield* Effect.forEach(ids, (id) => Effect.map(Payments.find(id), Option.map((p) => p.status)))
      const counted: Record<string, number> = {}
      for (const outcome of outcomes) counted[outcome] = (counted[outcome] ?? 0) + 1
      return {
        name,
        payments: ids.length,
        gatewayCharges: charges.length,
        doubled: [...perPayment].filter(([, n]) => n > 1).map(([id]) => id),
        uncharged: ids.filter((id) => !perPayment.has(id)),
        charged: final.filter((s) => Option.getOrUndefined(s) === "charged").length,
        outcomes: counted
      }
    }).pipe(
      // a breaker that never opens here: these scenarios are about races, not outages
      Effect.provide(
        GatewayClient.layer({ url: gateway.url, attemptTimeout, chargeAttempts: 1, breakerFailures: 1_000 })
      ),
      Effect.provide(FetchHttpClient.layer),
      Effect.annotateLogs("scenario", name)
    )

  type Deps = Effect.Effect.Context<ReturnType<typeof Payments.chargePayment>>

  const charge = (id: string, tuning: Payments.ChargeTuning) =>
    Effect.map(Payments.chargePayment(id, { tuning, lastChance: false }), (result) => result._tag)

  const concurrent = (ids: ReadonlyArray<string>, tuning: Payments.ChargeTuning) =>
    Effect.forEach(ids, (id) => Effect.all(Array.from({ length: 4 }, () => charge(id, tuning)), { concurrency: 4 }), {
      concurrency: "unbounded"
    }).pipe(Effect.map((all) => all.flat()))

  const quick: Payments.ChargeTuning = { lease: "60 seconds", budget: "10 seconds", reconcileDelay: "0 millis" }
  const short: Payments.ChargeTuning = { lease: "150 millis", budget: "10 seconds", reconcileDelay: "0 millis" }

  const scenarios = yield* Effect.gen(function*() {
    yield* Payments.ensureSchema
    yield* faults({ latencyMs: 300 })
    const first = yield* run("concurrent", "5 seconds", (ids) => concurrent(ids, quick))

    yield* faults({ latencyMs: 1_200 })
    const second = yield* run("after-unknown", "400 millis", (ids) =>
      Effect.gen(function*() {
        const before = yield* Effect.forEach(ids, (id) => charge(id, quick), { concurrency: "unbounded" })
        // the slow answers land meanwhile; the charges were made on receipt
        yield* faults({ latencyMs: 0 })
        const after = yield* concurrent(ids, quick)
        return [...before.map((t) => `first:${t}`), ...after]
      }))

    yield* faults({ latencyMs: 800 })
    const third = yield* run("lease-lapsed", "5 seconds", (ids) =>
      Effect.gen(function*() {
        const slow = yield* Effect.fork(Effect.forEach(ids, (id) => charge(id, short), { concurrency: "unbounded" }))
        yield* Effect.sleep("400 millis")
        yield* faults({ latencyMs: 0 })
        const takeover = yield* Effect.forEach(ids, (id) => charge(id, short), { concurrency: "unbounded" })
        const late = yield* slow.await.pipe(Effect.flatten)
        return [...late.map((t) => `slow:${t}`), ...takeover.map((t) => `takeover:${t}`)]
      }))
    return [first, second, third]
  }).pipe(
    Effect.provide(
      SqlJobQueue.layer(Jobs.queueOptions({
        pollInterval: "1 second",
        chargeRetryBase: "1 second",
        chargeRetryCap: "1 second",
        chargeMaxAttempts: 5,
        notificationMaxAttempts: 1
      })).pipe(Layer.provideMerge(Database.layer({ url: Option.getOrUndefined(databaseUrl) })))
    )
  )
  yield* Effect.sync(() => process.stdout.write(`${JSON.stringify({ scenarios })}\n`))
})

NodeRuntime.runMain(Effect.scoped(program).pipe(Logger.withMinimumLogLevel(LogLevel.Error)))
