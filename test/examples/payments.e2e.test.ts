/**
 * The payments example end to end, over real HTTP: `examples/payments/main.ts`
 * runs as a child process (the one command), on the embedded PGlite with the
 * simulated gateway in process, and then on the real PostgreSQL
 * (`DATABASE_URL`, a scratch database) with the gateway as a separate process
 * (`GATEWAY_URL`). The tests break the gateway through its admin routes and
 * check, among the rest, the invariant that matters: the gateway never holds
 * two charges for one payment.
 */
import { afterAll, assert, beforeAll, describe, it, onTestFinished } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { randomUUID } from "node:crypto"
import * as Postgres from "../support/postgres.js"
import * as Process from "../support/process.js"

// -----------------------------------------------------------------------------
// Processes
// -----------------------------------------------------------------------------

interface Started {
  readonly child: Process.Child
  readonly ready: RegExpExecArray
  readonly output: () => string
}

/** Runs `node --import tsx <file>` and waits for its output to match `ready` (killed if it does not in 90 s). */
const startProcess = async (file: string, env: Record<string, string>, ready: RegExp): Promise<Started> => {
  const child = Process.startTs(file, [], { env })
  const match = await child.waitFor(ready, { from: "output", timeoutMillis: 90_000 }).catch((error: unknown) => {
    child.kill("SIGKILL")
    throw error
  })
  return { child, ready: match, output: () => child.output().slice(-20_000) }
}

/** SIGTERM, then the exit code (SIGKILL after 20 s). */
const stopProcess = (child: Process.Child): Promise<number | null> => child.stop(20_000).then(({ code }) => code)

/** The exit code of a process that ends by itself (SIGKILL after 30 s). */
const exitOf = (child: Process.Child): Promise<number | null> => {
  const timer = setTimeout(() => child.kill("SIGKILL"), 30_000)
  return child.exited.then(({ code }) => {
    clearTimeout(timer)
    return code
  })
}

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

const PaymentView = Schema.Struct({
  id: Schema.String,
  status: Schema.Literal("pending", "charged", "failed", "dead_lettered"),
  amount: Schema.Number,
  currency: Schema.String,
  customer: Schema.String,
  chargeId: Schema.optional(Schema.String),
  attempts: Schema.Number,
  lastError: Schema.optional(Schema.String)
})

const Problem = Schema.Struct({ status: Schema.Number, title: Schema.String, detail: Schema.String })

const Charges = Schema.Struct({
  charges: Schema.Array(Schema.Struct({
    chargeId: Schema.String,
    paymentId: Schema.String,
    idempotencyKey: Schema.NullOr(Schema.String)
  })),
  total: Schema.Number
})

const Breakers = Schema.Array(Schema.Struct({ name: Schema.String, host: Schema.String, state: Schema.String }))

const DeadLetters = Schema.Struct({
  items: Schema.Array(Schema.Struct({
    id: Schema.String,
    queue: Schema.String,
    kind: Schema.String,
    payload: Schema.Struct({ paymentId: Schema.String, customer: Schema.String }, {
      key: Schema.String,
      value: Schema.Unknown
    }),
    attempts: Schema.Number,
    lastError: Schema.String,
    status: Schema.String
  })),
  depth: Schema.Number
})

const Replayed = Schema.Struct({ id: Schema.String, job: Schema.String, created: Schema.Boolean })

const Summary = Schema.Struct({
  payments: Schema.Struct({
    pending: Schema.Number,
    charged: Schema.Number,
    failed: Schema.Number,
    dead_lettered: Schema.Number,
    total: Schema.Number
  }),
  queues: Schema.Array(Schema.Struct({ queue: Schema.String, dead: Schema.Number })),
  breakers: Breakers
})

const Health = Schema.Struct({ status: Schema.String, database: Schema.String })

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const request = async (
  url: string,
  init: { readonly method?: string; readonly body?: unknown; readonly key?: string } = {}
): Promise<Answer> => {
  const headers: Record<string, string> = {}
  if (init.body !== undefined) headers["content-type"] = "application/json"
  if (init.key !== undefined) headers["idempotency-key"] = init.key
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers,
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    signal: AbortSignal.timeout(20_000)
  })
  return { status: response.status, headers: response.headers, text: await response.text() }
}

const read = <A, I>(schema: Schema.Schema<A, I>, answer: Answer): A =>
  Schema.decodeUnknownSync(Schema.parseJson(schema))(answer.text)

/** Polls `check` until it returns a value (every 150 ms, up to `timeoutMs`). */
const eventually = async <A>(what: string, timeoutMs: number, check: () => Promise<A | undefined>): Promise<A> => {
  const deadline = Date.now() + timeoutMs
  let last = ""
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (error) {
      last = error instanceof Error ? error.message : "a non-Error failure"
    }
    await new Promise((resolve) => setTimeout(resolve, 150))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === "" ? "" : `: ${last}`}`)
}

// -----------------------------------------------------------------------------
// Scenarios
// -----------------------------------------------------------------------------

/** Tuned so breaker, backoff and reconciliation play out in seconds. */
const tuning: Record<string, string> = {
  PORT: "0",
  LOG_LEVEL: "warn",
  BREAKER_FAILURES: "3",
  BREAKER_OPEN_DURATION: "1 second",
  GATEWAY_ATTEMPT_TIMEOUT: "1 second",
  CHARGE_RETRY_BASE: "200 millis",
  CHARGE_RETRY_CAP: "1 second",
  CHARGE_MAX_ATTEMPTS: "60",
  RECONCILE_DELAY: "300 millis",
  JOB_POLL_INTERVAL: "100 millis"
}

interface Service {
  readonly payments: string
  readonly gateway: string
  readonly database: "embedded" | "server"
  readonly main: Started
}

const order = (customer: string, amount = 1_250) => ({ amount, currency: "EUR", customer })

const setFaults = async (service: Service, faults: Record<string, unknown>) => {
  const answer = await request(`${service.gateway}/admin/faults`, { method: "PUT", body: faults })
  assert.strictEqual(answer.status, 200, answer.text)
}

const pay = async (service: Service, key: string, body: unknown) =>
  request(`${service.payments}/payments`, { body, key })

const chargesAtGateway = async (service: Service) => read(Charges, await request(`${service.gateway}/v1/charges`))

const waitCharged = (service: Service, id: string) =>
  eventually(`payment ${id} to be charged`, 30_000, async () => {
    const payment = read(PaymentView, await request(`${service.payments}/payments/${id}`))
    return payment.status === "charged" ? payment : undefined
  })

const scenarios = (service: () => Service, options: { readonly full: boolean }) => {
  it("answers /healthz with 200 once the database answers", async () => {
    const answer = await request(`${service().payments}/healthz`)
    assert.strictEqual(answer.status, 200)
    assert.deepStrictEqual(read(Health, answer), { status: "ok", database: service().database })
  })

  it("refuses a payment without an Idempotency-Key with a 400 problem", async () => {
    const answer = await request(`${service().payments}/payments`, { body: order("alice") })
    assert.strictEqual(answer.status, 400)
    assert.match(answer.headers.get("content-type") ?? "", /application\/problem\+json/)
    assert.match(read(Problem, answer).detail, /Idempotency-Key/)
  })

  it("charges a payment with 201 and replays the identical answer for the same key", async () => {
    const key = randomUUID()
    const first = await pay(service(), key, order("alice"))
    assert.strictEqual(first.status, 201, first.text)
    const payment = read(PaymentView, first)
    assert.strictEqual(payment.status, "charged")
    assert.isString(payment.chargeId)

    const again = await pay(service(), key, order("alice"))
    assert.strictEqual(again.status, 201)
    assert.strictEqual(again.text, first.text, "the replay is byte for byte the first answer")
    assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
    assert.isNull(first.headers.get("idempotent-replayed"))

    const atGateway = (await chargesAtGateway(service())).charges.filter((c) => c.paymentId === payment.id)
    assert.strictEqual(atGateway.length, 1)
    assert.strictEqual(atGateway[0]?.idempotencyKey, payment.id, "the gateway is asked with the payment's own key")
  })

  it("refuses the same key with a different body with 422", async () => {
    const key = randomUUID()
    assert.strictEqual((await pay(service(), key, order("bob", 100))).status, 201)
    const other = await pay(service(), key, order("bob", 200))
    assert.strictEqual(other.status, 422)
    assert.match(read(Problem, other).detail, /different request/)
  })

  it("charges once when the same request is sent many times at once", async () => {
    const key = randomUUID()
    const answers = await Promise.all(Array.from({ length: 6 }, () => pay(service(), key, order("carol"))))
    const statuses = answers.map((a) => a.status)
    assert.isTrue(statuses.every((s) => s === 201 || s === 409), statuses.join(","))
    const charged = answers.filter((a) => a.status === 201)
    assert.isAtLeast(charged.length, 1)
    const ids = new Set(charged.map((a) => read(PaymentView, a).id))
    assert.strictEqual(ids.size, 1, "every 201 is the same payment")
    const [id] = ids
    const atGateway = (await chargesAtGateway(service())).charges.filter((c) => c.paymentId === id)
    assert.strictEqual(atGateway.length, 1)
  })

  it(
    "accepts orders as pending during a gateway outage, opens the breaker, and charges them when it is back",
    async () => {
      await setFaults(service(), { outage: true })
      const accepted: Array<string> = []
      try {
        for (let i = 0; i < 6; i++) {
          const answer = await pay(service(), randomUUID(), order(`outage-${i}`))
          assert.strictEqual(answer.status, 202, answer.text)
          const payment = read(PaymentView, answer)
          assert.strictEqual(payment.status, "pending")
          accepted.push(payment.id)
        }
        // The breaker opened after three failed attempts: later orders were not even sent.
        const lastErrors = await Promise.all(
          accepted.map(async (id) => read(PaymentView, await request(`${service().payments}/payments/${id}`)).lastError)
        )
        assert.isTrue(
          lastErrors.some((e) => e !== undefined && /Circuit breaker .* is open/.test(e)),
          lastErrors.join("\n")
        )
        const metrics = await request(`${service().payments}/metrics`)
        assert.match(metrics.text, /bulwark_circuit_breaker_transitions_total\{[^}]*to="open"[^}]*\} [1-9]/)
      } finally {
        await setFaults(service(), { outage: false })
      }
      for (const id of accepted) {
        const payment = await waitCharged(service(), id)
        assert.isString(payment.chargeId)
      }
      const charges = await chargesAtGateway(service())
      for (const id of accepted) {
        assert.strictEqual(charges.charges.filter((c) => c.paymentId === id).length, 1, `one charge for ${id}`)
      }
      const breakers = read(Breakers, await request(`${service().payments}/admin/breakers`))
      assert.strictEqual(breakers.length, 1)
      assert.match(breakers[0]?.name ?? "", /^gateway\/127\.0\.0\.1:\d+$/)
    },
    60_000
  )

  it("reconciles a charge whose answer timed out instead of charging it again", async () => {
    // The gateway charges at once and answers after 1.5 s; the service gives up after 1 s.
    await setFaults(service(), { latencyMs: 1_500 })
    let id: string
    try {
      const answer = await pay(service(), randomUUID(), order("dave"))
      assert.strictEqual(answer.status, 202, answer.text)
      const payment = read(PaymentView, answer)
      assert.match(payment.lastError ?? "", /outcome unknown/)
      id = payment.id
    } finally {
      await setFaults(service(), { latencyMs: 0 })
    }
    const charged = await waitCharged(service(), id)
    const atGateway = (await chargesAtGateway(service())).charges.filter((c) => c.paymentId === id)
    assert.strictEqual(atGateway.length, 1, "the job adopted the charge instead of making a second one")
    assert.strictEqual(charged.chargeId, atGateway[0]?.chargeId)
  }, 60_000)

  if (options.full) {
    it("stores and replays a 400 for an invalid body", async () => {
      const key = randomUUID()
      const first = await pay(service(), key, { amount: -5, currency: "EUR", customer: "erin" })
      assert.strictEqual(first.status, 400)
      const again = await pay(service(), key, { amount: -5, currency: "EUR", customer: "erin" })
      assert.strictEqual(again.status, 400)
      assert.strictEqual(again.headers.get("idempotent-replayed"), "true")
    })

    it("dead-letters a poison webhook with its envelope and replays it from the admin route", async () => {
      const answer = await pay(service(), randomUUID(), order("poison-frank"))
      assert.strictEqual(answer.status, 201, answer.text)
      const payment = read(PaymentView, answer)
      const entry = await eventually("the poison webhook in the dead-letter queue", 30_000, async () => {
        const page = read(DeadLetters, await request(`${service().payments}/admin/dead-letters`))
        return page.items.find((item) => item.payload.paymentId === payment.id)
      })
      assert.strictEqual(entry.kind, "send-webhook")
      assert.strictEqual(entry.queue, "notifications")
      assert.strictEqual(entry.payload.customer, "poison-frank")
      assert.strictEqual(entry.attempts, 1, "a terminal failure is not retried")
      assert.match(entry.lastError, /410 Gone/)

      // Replayed with the customer fixed, it is delivered and leaves the queue.
      const replay = await request(`${service().payments}/admin/dead-letters/${entry.id}/replay`, {
        body: { payload: { ...entry.payload, customer: "frank" } }
      })
      assert.strictEqual(replay.status, 200, replay.text)
      assert.isTrue(read(Replayed, replay).created)
      await eventually("the dead-letter queue to drain", 30_000, async () => {
        const page = read(DeadLetters, await request(`${service().payments}/admin/dead-letters`))
        return page.items.some((item) => item.payload.paymentId === payment.id) ? undefined : page
      })
      const all = read(DeadLetters, await request(`${service().payments}/admin/dead-letters?status=all`))
      assert.strictEqual(all.items.find((item) => item.id === entry.id)?.status, "replayed")
      const missing = await request(`${service().payments}/admin/dead-letters/999999/replay`, { method: "POST" })
      assert.strictEqual(missing.status, 404)
    }, 60_000)

    it("serves Bulwark's metrics on /metrics", async () => {
      const answer = await request(`${service().payments}/metrics`)
      assert.strictEqual(answer.status, 200)
      for (
        const series of [
          "bulwark_idempotency_requests_total",
          "bulwark_circuit_breaker_state",
          "bulwark_jobs_total",
          "bulwark_retry_calls_total",
          "bulwark_job_queue_depth",
          "http_client_requests_total"
        ]
      ) {
        assert.include(answer.text, series)
      }
    })
  }

  it("never made two gateway charges for one payment, and every charged payment has one", async () => {
    const summary = read(Summary, await request(`${service().payments}/admin/summary`))
    const charges = await chargesAtGateway(service())
    const perPayment = new Map<string, number>()
    for (const charge of charges.charges) perPayment.set(charge.paymentId, (perPayment.get(charge.paymentId) ?? 0) + 1)
    const doubled = [...perPayment].filter(([, n]) => n > 1)
    assert.deepStrictEqual(doubled, [])
    assert.strictEqual(perPayment.size, summary.payments.charged)
    assert.strictEqual(summary.payments.pending, 0)
  })

  it("stops gracefully on SIGTERM", async () => {
    const code = await stopProcess(service().main.child)
    assert.strictEqual(code, 0, service().main.output())
  }, 30_000)
}

// -----------------------------------------------------------------------------
// Setups
// -----------------------------------------------------------------------------

const READY = /gateway (?:listening on|at) (http:\/\/\S+)[\s\S]*payments listening on (http:\/\/\S+)/

describe("npm run example:payments on the embedded PGlite, gateway in process", () => {
  let service: Service | undefined
  beforeAll(async () => {
    const main = await startProcess("examples/payments/main.ts", tuning, READY)
    service = { gateway: main.ready[1] ?? "", payments: main.ready[2] ?? "", database: "embedded", main }
  }, 120_000)
  afterAll(async () => {
    if (service !== undefined) await stopProcess(service.main.child)
  }, 30_000)
  scenarios(() => service ?? assert.fail("the service did not start"), { full: true })
})

describe("the payments example on PostgreSQL (DATABASE_URL) with a separate gateway (GATEWAY_URL)", () => {
  let service: Service | undefined
  let gateway: Started | undefined
  const scope = Effect.runSync(Scope.make())
  beforeAll(async () => {
    const context = await Effect.runPromise(Layer.buildWithScope(Postgres.layer(), scope))
    const database = Context.get(context, Postgres.ScratchDatabase)
    gateway = await startProcess("examples/payments/Gateway.ts", {}, /gateway listening on (http:\/\/\S+)/)
    const gatewayUrl = gateway.ready[1] ?? ""
    const main = await startProcess(
      "examples/payments/main.ts",
      { ...tuning, GATEWAY_URL: gatewayUrl, DATABASE_URL: database.url, DATABASE_POOL_SIZE: "4" },
      READY
    )
    service = { gateway: gatewayUrl, payments: main.ready[2] ?? "", database: "server", main }
  }, 120_000)
  afterAll(async () => {
    if (service !== undefined) await stopProcess(service.main.child)
    if (gateway !== undefined) await stopProcess(gateway.child)
    await Effect.runPromise(Scope.close(scope, Exit.void))
  }, 60_000)
  scenarios(() => service ?? assert.fail("the service did not start"), { full: false })
})

const RaceReport = Schema.parseJson(Schema.Struct({
  scenarios: Schema.Array(Schema.Struct({
    name: Schema.String,
    payments: Schema.Number,
    gatewayCharges: Schema.Number,
    doubled: Schema.Array(Schema.String),
    uncharged: Schema.Array(Schema.String),
    charged: Schema.Number,
    outcomes: Schema.Record({ key: Schema.String, value: Schema.Number })
  }))
}))

describe("chargers racing on the same payments (examples/payments/check-races.ts on PostgreSQL)", () => {
  const scope = Effect.runSync(Scope.make())
  afterAll(() => Effect.runPromise(Scope.close(scope, Exit.void)), 30_000)

  it(
    "makes exactly one gateway charge per payment: concurrent chargers, after an unknown outcome, after a lapsed lease",
    async () => {
      const context = await Effect.runPromise(Layer.buildWithScope(Postgres.layer(), scope))
      const database = Context.get(context, Postgres.ScratchDatabase)
      const check = await startProcess("examples/payments/check-races.ts", { DATABASE_URL: database.url }, /^\{.*\}$/m)
      onTestFinished(() => stopProcess(check.child).then(() => undefined))
      const report = Schema.decodeUnknownSync(RaceReport)(check.ready[0])
      assert.deepStrictEqual(report.scenarios.map((s) => s.name), ["concurrent", "after-unknown", "lease-lapsed"])
      for (const scenario of report.scenarios) {
        assert.deepStrictEqual(scenario.doubled, [], `${scenario.name}: no payment charged twice`)
        assert.deepStrictEqual(scenario.uncharged, [], `${scenario.name}: every payment charged`)
        assert.strictEqual(scenario.gatewayCharges, scenario.payments, scenario.name)
        assert.strictEqual(scenario.charged, scenario.payments, `${scenario.name}: every row says charged`)
      }
      const [concurrent, afterUnknown, leaseLapsed] = report.scenarios
      // Four chargers per payment: each one charged it, adopted it, or found it busy; never an error.
      assert.deepStrictEqual(Object.keys(concurrent?.outcomes ?? {}).filter((o) => o !== "Charged" && o !== "Busy"), [])
      assert.strictEqual((concurrent?.outcomes["Charged"] ?? 0) + (concurrent?.outcomes["Busy"] ?? 0), 32)
      // The first attempts timed out (charged, unknown to the service): all pending, none charged twice afterwards.
      assert.strictEqual(afterUnknown?.outcomes["first:Pending"], 8)
      // The charger whose lease lapsed was fenced out; the one that took over adopted its charge.
      assert.strictEqual(leaseLapsed?.outcomes["slow:Busy"], 8)
      assert.strictEqual(leaseLapsed?.outcomes["takeover:Charged"], 8)
      assert.strictEqual(await exitOf(check.child), 0, check.output())
    },
    90_000
  )
})
