/**
 * The product-page example end to end, over real HTTP: `examples/product-page/main.ts` runs in a
 * child process as `npm run example:product-page` runs it (tsx), with its simulated recommendations
 * service in process, and the test breaks and mends that service through its admin route.
 *
 * Once on the embedded PGlite (what the one command uses), once on a real PostgreSQL server
 * through `DATABASE_URL` (a scratch database on 127.0.0.1:5432, failing loudly when it is not
 * there), where the database itself is also taken away.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as ScratchPostgres from "../support/postgres.js"
import * as Process from "../support/process.js"

// -----------------------------------------------------------------------------
// The example as a process
// -----------------------------------------------------------------------------

interface Running {
  readonly page: string
  readonly recommendations: string
  readonly output: () => string
}

const STARTUP = Duration.seconds(90)

/** Starts `main.ts` (PORT=0) and waits for both servers' lines; stops it with SIGTERM (SIGKILL after 5 s). */
const startExample = (env: Record<string, string>): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.gen(function*() {
    const child = yield* Process.scopedTs("examples/product-page/main.ts", [], {
      env: { PORT: "0", ...env },
      graceMillis: 5_000
    })
    const listening = (what: string) =>
      child.waitFor(new RegExp(`${what} listening on (http://\\S+)`), {
        from: "output",
        timeoutMillis: Duration.toMillis(STARTUP)
      }).then((match) => match[1] ?? "")
    // A rejection (exited, or not up in time; with the output) is a defect: the test cannot go on.
    const [page, recommendations] = yield* Effect.promise(() =>
      Promise.all([listening("product page"), listening("recommendations")])
    )
    return { page, recommendations, output: child.output }
  })

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

const Item = Schema.Struct({ id: Schema.Number, name: Schema.String, priceCents: Schema.Number })

const Page = Schema.Struct({
  product: Schema.Struct({ id: Schema.Number, name: Schema.String }),
  recommendations: Schema.Struct({
    source: Schema.Literal("primary", "cache", "secondary", "default"),
    stale: Schema.Boolean,
    items: Schema.Array(Item),
    storedAt: Schema.optional(Schema.String),
    ageSeconds: Schema.optional(Schema.Number),
    reason: Schema.optional(Schema.String)
  }),
  degraded: Schema.Array(Schema.String)
})

const Problem = Schema.Struct({ status: Schema.Number, title: Schema.String, detail: Schema.String })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly text: string
}

const request = (url: string, init?: RequestInit): Effect.Effect<Reply> =>
  Effect.promise(async () => {
    const response = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
    return { status: response.status, headers: response.headers, text: await response.text() }
  })

const decode = <A, I>(schema: Schema.Schema<A, I>, reply: Reply): Effect.Effect<A> =>
  Schema.decodeUnknown(Schema.parseJson(schema))(reply.text).pipe(
    Effect.orDieWith((error) => new Error(`unexpected answer (${reply.status}): ${reply.text}\n${error.message}`))
  )

const page = (app: Running, id: number) =>
  Effect.gen(function*() {
    const reply = yield* request(`${app.page}/products/${id}`)
    assert.strictEqual(reply.status, 200, `${reply.text}\n--- output\n${app.output()}`)
    return { headers: reply.headers, body: yield* decode(Page, reply) }
  })

const setFaults = (app: Running, faults: { readonly outage: boolean }) =>
  Effect.gen(function*() {
    const reply = yield* request(`${app.recommendations}/admin/faults`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(faults)
    })
    assert.strictEqual(reply.status, 200, reply.text)
  })

/** Asks again until `check` holds (the breaker half-opens on its own time), failing after `within`. */
const eventually = <A>(
  attempt: Effect.Effect<A>,
  check: (a: A) => boolean,
  within: Duration.DurationInput
): Effect.Effect<A> =>
  Effect.gen(function*() {
    const deadline = Date.now() + Duration.toMillis(within)
    while (true) {
      const value = yield* attempt
      if (check(value)) return value
      if (Date.now() > deadline) return yield* Effect.dieMessage(`still not there: ${JSON.stringify(value)}`)
      yield* Effect.sleep("200 millis")
    }
  })

const counter = (metrics: string, operation: string, source: string): number => {
  const line = metrics.split("\n").find((l) =>
    l.startsWith(`bulwark_fallback_total{operation="${operation}",source="${source}"}`)
  )
  return line === undefined ? 0 : Number(line.split(" ").at(-1))
}

/** The recommendations story every database runs: fresh, outage (cache, then popular), recovery, 404. */
const recommendationsStory = (app: Running) =>
  Effect.gen(function*() {
    // Healthy: the service answers, nothing is degraded.
    const fresh = yield* page(app, 1)
    assert.strictEqual(fresh.body.product.name, "Oak desk")
    assert.strictEqual(fresh.body.recommendations.source, "primary")
    assert.isFalse(fresh.body.recommendations.stale)
    assert.deepStrictEqual(fresh.body.degraded, [])
    assert.isNull(fresh.headers.get("x-degraded"))
    assert.isAbove(fresh.body.recommendations.items.length, 0)

    // Outage: the page still loads; product 1 shows its last good recommendations, marked stale.
    yield* setFaults(app, { outage: true })
    const cached = yield* page(app, 1)
    assert.strictEqual(cached.body.product.name, "Oak desk")
    assert.strictEqual(cached.body.recommendations.source, "cache")
    assert.isTrue(cached.body.recommendations.stale)
    assert.deepStrictEqual(cached.body.recommendations.items, fresh.body.recommendations.items)
    assert.isString(cached.body.recommendations.storedAt)
    assert.isString(cached.body.recommendations.reason)
    assert.deepStrictEqual(cached.body.degraded, ["recommendations"])
    assert.strictEqual(cached.headers.get("x-degraded"), "recommendations")

    // A product never shown before has no last good answer: popular products from the database, marked stale.
    const popular = yield* page(app, 5)
    assert.strictEqual(popular.body.product.name, "Cable tray")
    assert.strictEqual(popular.body.recommendations.source, "default")
    assert.isTrue(popular.body.recommendations.stale)
    assert.deepStrictEqual(popular.body.recommendations.items.map((item) => item.name), [
      "Desk lamp",
      "Desk mat",
      "Office chair"
    ])

    // An unknown product is a 404, outage or not.
    const missing = yield* request(`${app.page}/products/9999`)
    assert.strictEqual(missing.status, 404, missing.text)
    assert.strictEqual((yield* decode(Problem, missing)).detail, "No product 9999.")

    // Recovery: once the breaker half-opens, the service answers again.
    yield* setFaults(app, { outage: false })
    const recovered = yield* eventually(
      page(app, 5),
      (p) => p.body.recommendations.source === "primary",
      "15 seconds"
    )
    assert.isFalse(recovered.body.recommendations.stale)
    assert.deepStrictEqual(recovered.body.degraded, [])

    // Every source that answered was counted.
    const metrics = (yield* request(`${app.page}/metrics`)).text
    assert.isAtLeast(counter(metrics, "recommendations", "primary"), 2)
    assert.isAtLeast(counter(metrics, "recommendations", "cache"), 1)
    assert.isAtLeast(counter(metrics, "recommendations", "default"), 1)
    assert.isAtLeast(counter(metrics, "product-db", "primary"), 4)

    const health = yield* request(`${app.page}/healthz`)
    assert.strictEqual(health.status, 200, health.text)
  })

const fastRecovery = { RECOMMENDATIONS_BREAKER_OPEN: "1 second" }

// -----------------------------------------------------------------------------
// Tests
// -----------------------------------------------------------------------------

describe("npm run example:product-page (embedded PGlite)", () => {
  it.scopedLive(
    "degrades recommendations to stale and popular items during an outage, and recovers",
    () =>
      Effect.gen(function*() {
        const app = yield* startExample(fastRecovery)
        yield* recommendationsStory(app)
      }),
    150_000
  )
})

describe("the product page on a PostgreSQL server (DATABASE_URL)", () => {
  it.scopedLive(
    "degrades recommendations the same way, and answers 503 while the database is down",
    () =>
      Effect.gen(function*() {
        const database = yield* ScratchPostgres.ScratchDatabase
        // A database cannot refuse connections while the session saying so is connected to it.
        const server = yield* Layer.build(
          PgClient.layer({ url: Redacted.make(ScratchPostgres.serverUrl), maxConnections: 1 })
        ).pipe(Effect.map(Context.get(PgClient.PgClient)))
        const app = yield* startExample({ ...fastRecovery, DATABASE_URL: database.url })
        yield* recommendationsStory(app)

        // The database goes away: no new connections, existing ones cut.
        yield* server.unsafe(`ALTER DATABASE ${database.name} WITH ALLOW_CONNECTIONS false`)
        yield* server`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${database.name}`
        const down = yield* request(`${app.page}/products/1`)
        assert.strictEqual(down.status, 503, `${down.text}\n--- output\n${app.output()}`)
        assert.strictEqual(down.headers.get("retry-after"), "5")
        assert.match((yield* decode(Problem, down)).detail, /^Dependency "product-db" is unavailable/)
        assert.strictEqual((yield* request(`${app.page}/healthz`)).status, 503)

        // It comes back: so does the page.
        yield* server.unsafe(`ALTER DATABASE ${database.name} WITH ALLOW_CONNECTIONS true`)
        const back = yield* eventually(request(`${app.page}/products/1`), (reply) => reply.status === 200, "15 seconds")
        assert.strictEqual((yield* decode(Page, back)).product.name, "Oak desk")
      }).pipe(Effect.provide(ScratchPostgres.layer({ maxConnections: 1 }))),
    150_000
  )
})
