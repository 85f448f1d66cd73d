import { NodeHttpServer } from "@effect/platform-node"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { assert, describe, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import * as RateLimiter from "./RateLimiter.js"
import * as RateLimiterHttp from "./RateLimiterHttp.js"

let counter = 0
const uniqueName = (prefix: string) => `${prefix}-${++counter}`

type Middleware = <E, R0>(app: HttpApp.Default<E, R0>) => HttpApp.Default<E, R0>

/** Serves the routes behind the middleware on 127.0.0.1, on a free port; returns the base URL. */
const serve = (limiter: RateLimiter.RateLimiter, options?: RateLimiterHttp.MiddlewareOptions) =>
  serveBehind(RateLimiterHttp.middleware(limiter, options))

/** Serves the routes behind `middlewares`, the last one outermost (it decides first). */
const serveBehind = (...middlewares: ReadonlyArray<Middleware>) =>
  Effect.gen(function*() {
    const routes = HttpRouter.empty.pipe(
      HttpRouter.get("/hello", HttpServerResponse.text("hello")),
      HttpRouter.get("/boom", Effect.die("boom"))
    )
    const app = middlewares.reduce<HttpApp.Default<unknown, HttpServerRequest.HttpServerRequest>>(
      (inner, middleware) => middleware(inner),
      routes
    )
    yield* HttpServer.serveEffect(app)
    const server = yield* HttpServer.HttpServer
    const address = server.address
    if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
    return `http://127.0.0.1:${address.port}`
  })

const ServerLive = NodeHttpServer.layer(() => createServer(), { port: 0, host: "127.0.0.1" })

interface Reply {
  readonly status: number
  readonly headers: Headers
  readonly body: string
}

const get = (url: string, headers: Record<string, string> = {}) =>
  Effect.promise(async (): Promise<Reply> => {
    const response = await fetch(url, { headers })
    return { status: response.status, headers: response.headers, body: await response.text() }
  })

const withServer = <A, E>(
  effect: Effect.Effect<A, E, RateLimiter.RateLimiterStore | HttpServer.HttpServer | Scope.Scope>,
  store: Layer.Layer<RateLimiter.RateLimiterStore> = RateLimiter.layerMemory().pipe(Layer.orDie)
) => effect.pipe(Effect.provide(Layer.merge(ServerLive, store)), Effect.scoped)

/** A store that cannot reach its backend and fails closed. */
const unavailable: RateLimiter.Binding = {
  decide: () =>
    Effect.succeed({ allowed: false, delay: 0, remaining: 0, reset: 2_500, retryAfter: 2_500, degraded: true }),
  refund: () => Effect.succeed(false)
}

/** A store whose every decision is `binding`'s. */
const down = (binding: RateLimiter.Binding): Layer.Layer<RateLimiter.RateLimiterStore> =>
  Layer.succeed(RateLimiter.RateLimiterStore, { backend: "down", bind: () => Effect.succeed(binding) })

/** A store that cannot reach its backend and fails open. */
const failingOpen: RateLimiter.Binding = {
  decide: () => Effect.succeed({ allowed: true, delay: 0, remaining: 99, reset: 0, retryAfter: 0, degraded: true }),
  refund: () => Effect.succeed(false)
}

describe("RateLimiterHttp.middleware over a real server", () => {
  it.live("puts the rate-limit headers on allowed responses and answers 429 with Retry-After and a problem", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: "api",
        // not a fixed window: on the real clock, a window boundary could fall between the requests
        algorithm: RateLimiter.slidingWindowLog({ limit: 2, window: "1 minute" })
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.global })
      const first = yield* get(`${base}/hello`)
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.body, "hello")
      assert.strictEqual(first.headers.get("ratelimit-policy"), `"api";q=2;w=60`)
      assert.match(first.headers.get("ratelimit") ?? "", /^"api";r=1;t=([1-5]?[0-9]|60)$/)
      assert.strictEqual(first.headers.get("x-ratelimit-limit"), "2")
      assert.strictEqual(first.headers.get("x-ratelimit-remaining"), "1")
      assert.isNull(first.headers.get("retry-after"))
      const second = yield* get(`${base}/hello`)
      assert.strictEqual(second.headers.get("x-ratelimit-remaining"), "0")
      const refused = yield* get(`${base}/hello`)
      assert.strictEqual(refused.status, 429)
      const retryAfter = Number(refused.headers.get("retry-after"))
      assert.isTrue(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`)
      assert.strictEqual(refused.headers.get("x-ratelimit-remaining"), "0")
      assert.strictEqual(refused.headers.get("ratelimit-policy"), `"api";q=2;w=60`)
      assert.match(refused.headers.get("ratelimit") ?? "", /^"api";r=0;t=\d+$/)
      assert.strictEqual(refused.headers.get("content-type"), "application/problem+json")
      const body: unknown = JSON.parse(refused.body)
      assert.deepStrictEqual(body, {
        type: "https://iana.org/assignments/http-problem-types#quota-exceeded",
        title: "Request cannot be satisfied as assigned quota has been exceeded",
        status: 429,
        detail: `Rate limit "api" exceeded: 2 per 60 s; retry after ${retryAfter} s.`,
        "violated-policies": ["api"]
      })
    })))

  it.live("limits each key on its own, and carries the headers on the app's error responses", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("keys"),
        algorithm: RateLimiter.tokenBucket({ limit: 1, window: "1 minute" })
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.byHeader("x-api-key"), policyName: "per-key" })
      const boom = yield* get(`${base}/boom`, { "x-api-key": "alpha" })
      assert.strictEqual(boom.status, 500)
      assert.strictEqual(boom.headers.get("ratelimit-policy"), `"per-key";q=1;w=60`)
      assert.strictEqual(boom.headers.get("x-ratelimit-remaining"), "0")
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": "alpha" })).status, 429)
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": "beta" })).status, 200)
      // no header: falls back to the client's address
      assert.strictEqual((yield* get(`${base}/hello`)).status, 200)
      assert.strictEqual((yield* get(`${base}/hello`)).status, 429)
    })))

  it.live("limits a key longer than the limiter takes (a client's header, a long path) by its hash, never a 400", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("long-keys"),
        algorithm: RateLimiter.tokenBucket({ limit: 1, window: "1 minute" }),
        maxKeyLength: 100
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.byHeader("x-api-key") })
      const long = "k".repeat(4_000)
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": long })).status, 200)
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": long })).status, 429)
      // another long key, the same up to its last character: a bucket of its own
      assert.strictEqual((yield* get(`${base}/hello`, { "x-api-key": `${long.slice(1)}j` })).status, 200)
    })))

  it.live("answers 503 when the store is down and fails closed: the policy and Retry-After, no made-up state", () =>
    withServer(
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "guarded",
          algorithm: RateLimiter.gcra({ limit: 10, window: "1 second" })
        })
        const base = yield* serve(limiter)
        const reply = yield* get(`${base}/hello`)
        assert.strictEqual(reply.status, 503)
        assert.strictEqual(reply.headers.get("retry-after"), "3")
        assert.strictEqual(reply.headers.get("ratelimit-policy"), `"guarded";q=10;w=1`)
        for (const made_up of ["ratelimit", "x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"]) {
          assert.isNull(reply.headers.get(made_up), made_up)
        }
        const body: unknown = JSON.parse(reply.body)
        assert.deepStrictEqual(body, {
          type: "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity",
          title: "Request cannot be satisfied due to temporary server capacity constraints",
          status: 503,
          detail: `The rate limiter "guarded" cannot reach its store; retry after 3 s.`
        })
      }),
      down(unavailable)
    ))

  it.live("answers 400 when the key function yields no usable key, and charges per-request costs", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("cost"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 5, window: "1 minute" })
      })
      const base = yield* serve(limiter, {
        key: (request) => Effect.succeed(request.headers["x-tenant"] ?? ""),
        cost: (request) => (request.url.includes("bulk") ? 3 : 1)
      })
      const missing = yield* get(`${base}/hello`)
      assert.strictEqual(missing.status, 400)
      assert.strictEqual(missing.headers.get("content-type"), "application/problem+json")
      assert.include(missing.body, "\"title\":\"Bad Request\"")
      const bulk = yield* get(`${base}/hello?bulk=1`, { "x-tenant": "t1" })
      assert.strictEqual(bulk.headers.get("x-ratelimit-remaining"), "2")
      const reset = Number(bulk.headers.get("x-ratelimit-reset"))
      assert.strictEqual(reset, Duration.toSeconds(Duration.minutes(1)))
    })))
})

describe("RateLimiterHttp with several limiters on one route", () => {
  it.live("advertises every policy in decision order, and X-RateLimit-* for the one that binds first", () =>
    withServer(Effect.gen(function*() {
      const hourly = yield* RateLimiter.make({
        name: uniqueName("hourly"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 5, window: "1 hour" })
      })
      const minute = yield* RateLimiter.make({
        name: uniqueName("minute"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 2, window: "1 minute" })
      })
      // The hourly limiter is outermost: it decides first, and is listed first.
      const base = yield* serveBehind(
        RateLimiterHttp.middleware(minute, { key: RateLimiterHttp.global, policyName: "minute" }),
        RateLimiterHttp.middleware(hourly, { key: RateLimiterHttp.global, policyName: "hourly" })
      )
      const first = yield* get(`${base}/hello`)
      assert.strictEqual(first.status, 200)
      assert.strictEqual(first.headers.get("ratelimit-policy"), `"hourly";q=5;w=3600, "minute";q=2;w=60`)
      assert.strictEqual(first.headers.get("ratelimit"), `"hourly";r=4;t=3600, "minute";r=1;t=60`)
      assert.strictEqual(first.headers.get("x-ratelimit-limit"), "2")
      assert.strictEqual(first.headers.get("x-ratelimit-remaining"), "1")
      assert.strictEqual(first.headers.get("x-ratelimit-reset"), "60")
      // An error response made after the limiters carries both as well.
      const boom = yield* get(`${base}/boom`)
      assert.strictEqual(boom.status, 500)
      assert.strictEqual(boom.headers.get("ratelimit"), `"hourly";r=3;t=3600, "minute";r=0;t=60`)
      assert.strictEqual(boom.headers.get("x-ratelimit-remaining"), "0")
      // The inner limiter refuses: the outer one's policy and state are advertised too (it took its unit).
      const refused = yield* get(`${base}/hello`)
      assert.strictEqual(refused.status, 429)
      assert.strictEqual(refused.headers.get("ratelimit-policy"), `"hourly";q=5;w=3600, "minute";q=2;w=60`)
      assert.strictEqual(refused.headers.get("ratelimit"), `"hourly";r=2;t=3600, "minute";r=0;t=60`)
      assert.strictEqual(refused.headers.get("retry-after"), "60")
      assert.strictEqual(refused.headers.get("x-ratelimit-limit"), "2")
      assert.strictEqual(refused.headers.get("x-ratelimit-remaining"), "0")
      assert.strictEqual(refused.headers.get("x-ratelimit-reset"), "60")
      assert.deepInclude(JSON.parse(refused.body), { status: 429, "violated-policies": ["minute"] })
    })))

  it.live("X-RateLimit-* follow the fewest remaining, and on a tie the later reset", () =>
    withServer(Effect.gen(function*() {
      const wide = yield* RateLimiter.make({
        name: uniqueName("wide"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 3, window: "1 hour" })
      })
      const narrow = yield* RateLimiter.make({
        name: uniqueName("narrow"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 10, window: "1 minute" })
      })
      const base = yield* serveBehind(
        RateLimiterHttp.middleware(narrow, { key: RateLimiterHttp.global, policyName: "narrow", cost: () => 8 }),
        RateLimiterHttp.middleware(wide, { key: RateLimiterHttp.global, policyName: "wide" })
      )
      // wide has 2 left of 3, narrow 2 of 10: a tie, and wide resets later.
      const reply = yield* get(`${base}/hello`)
      assert.strictEqual(reply.headers.get("ratelimit"), `"wide";r=2;t=3600, "narrow";r=2;t=60`)
      assert.strictEqual(reply.headers.get("x-ratelimit-limit"), "3")
      assert.strictEqual(reply.headers.get("x-ratelimit-remaining"), "2")
      assert.strictEqual(reply.headers.get("x-ratelimit-reset"), "3600")
    })))

  it.live("a limiter applied twice is listed once, with its latest state", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("twice"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 5, window: "1 minute" })
      })
      const once = RateLimiterHttp.middleware(limiter, { key: RateLimiterHttp.global, policyName: "api" })
      const base = yield* serveBehind(once, once)
      const reply = yield* get(`${base}/hello`)
      assert.strictEqual(reply.headers.get("ratelimit-policy"), `"api";q=5;w=60`)
      assert.strictEqual(reply.headers.get("ratelimit"), `"api";r=3;t=60`)
      assert.strictEqual(reply.headers.get("x-ratelimit-remaining"), "3")
    })))

  it.live("a store failing closed behind an allowed limiter: both policies, one state, no X-RateLimit-*", () =>
    withServer(Effect.gen(function*() {
      const api = yield* RateLimiter.make({
        name: uniqueName("api"),
        algorithm: RateLimiter.slidingWindowLog({ limit: 5, window: "1 minute" })
      })
      const guarded = yield* RateLimiter.make({
        name: "guarded",
        algorithm: RateLimiter.fixedWindow({ limit: 100, window: "1 hour" })
      }).pipe(Effect.provide(down(unavailable)))
      const base = yield* serveBehind(
        RateLimiterHttp.middleware(guarded, { key: RateLimiterHttp.global }),
        RateLimiterHttp.middleware(api, { key: RateLimiterHttp.global, policyName: "api" })
      )
      const reply = yield* get(`${base}/hello`)
      assert.strictEqual(reply.status, 503)
      assert.strictEqual(reply.headers.get("retry-after"), "3")
      assert.strictEqual(reply.headers.get("ratelimit-policy"), `"api";q=5;w=60, "guarded";q=100;w=3600`)
      assert.strictEqual(reply.headers.get("ratelimit"), `"api";r=4;t=60`)
      assert.isNull(reply.headers.get("x-ratelimit-remaining"))
      assert.isNull(reply.headers.get("x-ratelimit-reset"))
    })))

  it.live("a store failing open: the request goes on, its policy is listed with no made-up state", () =>
    withServer(
      Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({
          name: "open",
          algorithm: RateLimiter.tokenBucket({ limit: 100, window: "1 minute" })
        })
        const base = yield* serve(limiter)
        const reply = yield* get(`${base}/hello`)
        assert.strictEqual(reply.status, 200)
        assert.strictEqual(reply.headers.get("ratelimit-policy"), `"open";q=100;w=60`)
        assert.isNull(reply.headers.get("ratelimit"))
        assert.isNull(reply.headers.get("x-ratelimit-remaining"))
      }),
      down(failingOpen)
    ))
})

describe("RateLimiterHttp sustained policies", () => {
  for (
    const [label, algorithm] of [
      ["GCRA", RateLimiter.gcra({ limit: 10, window: "1 minute", burst: 2 })],
      ["token bucket", RateLimiter.tokenBucket({ limit: 10, window: "1 minute", burst: 2 })]
    ] as const
  ) {
    it.live(`${label} of 10 per minute with burst 2 advertises q=10;w=60, r out of its burst`, () =>
      withServer(Effect.gen(function*() {
        const limiter = yield* RateLimiter.make({ name: uniqueName("sustained"), algorithm })
        assert.deepStrictEqual(
          [limiter.policy.quota, Duration.toMillis(limiter.policy.window), limiter.policy.burst],
          [10, 60_000, 2]
        )
        const base = yield* serve(limiter, { key: RateLimiterHttp.global, policyName: "api" })
        const first = yield* get(`${base}/hello`)
        assert.strictEqual(first.headers.get("ratelimit-policy"), `"api";q=10;w=60`)
        // One unit of the burst left; the burst is whole again one emission interval (6 s) later.
        assert.strictEqual(first.headers.get("ratelimit"), `"api";r=1;t=6`)
        assert.strictEqual(first.headers.get("x-ratelimit-limit"), "10")
        assert.strictEqual(first.headers.get("x-ratelimit-remaining"), "1")
        assert.strictEqual(first.headers.get("x-ratelimit-reset"), "6")
        const second = yield* get(`${base}/hello`)
        assert.strictEqual(second.headers.get("ratelimit"), `"api";r=0;t=12`)
        const refused = yield* get(`${base}/hello`)
        assert.strictEqual(refused.status, 429)
        assert.strictEqual(refused.headers.get("ratelimit-policy"), `"api";q=10;w=60`)
        assert.strictEqual(refused.headers.get("ratelimit"), `"api";r=0;t=12`)
        assert.strictEqual(refused.headers.get("retry-after"), "6")
        assert.include(refused.body, "exceeded: 10 per 60 s")
      })))
  }

  it.live("a leaky bucket in reject mode advertises nothing left until it has drained", () =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: uniqueName("shaper"),
        algorithm: RateLimiter.leakyBucket({ limit: 2, window: "1 second", capacity: 5 })
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.global, policyName: "shaper" })
      const reply = yield* get(`${base}/hello`)
      assert.strictEqual(reply.headers.get("ratelimit-policy"), `"shaper";q=2;w=1`)
      assert.strictEqual(reply.headers.get("ratelimit"), `"shaper";r=0;t=1`)
    })))
})

describe("RateLimiterHttp problem types", () => {
  const refuse = (options: RateLimiterHttp.MiddlewareOptions) =>
    withServer(Effect.gen(function*() {
      const limiter = yield* RateLimiter.make({
        name: "types",
        algorithm: RateLimiter.slidingWindowLog({ limit: 1, window: "1 minute" })
      })
      const base = yield* serve(limiter, { key: RateLimiterHttp.global, policyName: "api", ...options })
      yield* get(`${base}/hello`)
      const refused = yield* get(`${base}/hello`)
      assert.strictEqual(refused.status, 429)
      const body: unknown = JSON.parse(refused.body)
      return body
    }))

  it.live("one URI for every refusal: about:blank with the status phrase, no extension member", () =>
    Effect.gen(function*() {
      const body = yield* refuse({ problemType: "about:blank" })
      assert.deepStrictEqual(body, {
        type: "about:blank",
        title: "Too Many Requests",
        status: 429,
        detail: `Rate limit "types" exceeded: 1 per 60 s; retry after 60 s.`
      })
    }))

  it.live("one URI per case: a custom 429 type gets the status phrase; the draft's constants are exported", () =>
    Effect.gen(function*() {
      const body = yield* refuse({ problemType: { limitExceeded: "https://example.com/problems/slow-down" } })
      assert.deepInclude(body, { type: "https://example.com/problems/slow-down", title: "Too Many Requests" })
      assert.deepStrictEqual(RateLimiterHttp.problemTypes, {
        quotaExceeded: "https://iana.org/assignments/http-problem-types#quota-exceeded",
        temporaryReducedCapacity: "https://iana.org/assignments/http-problem-types#temporary-reduced-capacity",
        abnormalUsageDetected: "https://iana.org/assignments/http-problem-types#abnormal-usage-detected"
      })
    }))
})

describe("RateLimiterHttp helpers", () => {
  it.effect("headers lists several policies; an unknown state leaves out its member and X-RateLimit-*", () =>
    Effect.sync(() => {
      const daily = { quota: 1000, window: Duration.days(1) }
      const burst = { quota: 100, window: Duration.minutes(1) }
      assert.deepStrictEqual(
        RateLimiterHttp.headers([
          { name: "burst", policy: burst, state: { remaining: 50, reset: Duration.seconds(30) } },
          { name: "daily", policy: daily, state: { remaining: 900, reset: Duration.hours(5) } }
        ]),
        {
          "ratelimit-policy": `"burst";q=100;w=60, "daily";q=1000;w=86400`,
          "ratelimit": `"burst";r=50;t=30, "daily";r=900;t=18000`,
          "x-ratelimit-limit": "100",
          "x-ratelimit-remaining": "50",
          "x-ratelimit-reset": "30"
        }
      )
      assert.deepStrictEqual(
        RateLimiterHttp.headers([
          { name: "burst", policy: burst, state: { remaining: 50, reset: Duration.seconds(30) } },
          { name: "daily", policy: daily }
        ]),
        { "ratelimit-policy": `"burst";q=100;w=60, "daily";q=1000;w=86400`, "ratelimit": `"burst";r=50;t=30` }
      )
    }))

  it.effect("rejectedResponse carries the policies passed before the refusing one", () =>
    Effect.gen(function*() {
      const hourly = yield* RateLimiter.make({
        name: "hourly",
        algorithm: RateLimiter.slidingWindowLog({ limit: 100, window: "1 hour" })
      })
      const minute = yield* RateLimiter.make({
        name: "minute",
        algorithm: RateLimiter.slidingWindowLog({ limit: 1, window: "1 minute" })
      })
      const passed = RateLimiterHttp.stateOf(hourly, yield* hourly.consume("k"))
      yield* minute.consume("k")
      const error = yield* Effect.flip(minute.consume("k"))
      if (error._tag !== "RateLimitedError") return assert.fail("expected a refusal")
      const response = RateLimiterHttp.rejectedResponse(minute, error, { policies: [passed] })
      assert.strictEqual(response.status, 429)
      assert.strictEqual(response.headers["ratelimit-policy"], `"hourly";q=100;w=3600, "minute";q=1;w=60`)
      assert.strictEqual(response.headers["ratelimit"], `"hourly";r=99;t=3600, "minute";r=0;t=60`)
      assert.strictEqual(response.headers["retry-after"], "60")
      assert.strictEqual(response.headers["x-ratelimit-limit"], "1")
    }).pipe(Effect.provide(RateLimiter.layerMemory())))
})

describe("RateLimiterHttp key functions", () => {
  it("combine joins keys; headers round up to whole seconds", () => {
    const headers = RateLimiterHttp.headers("p", { quota: 10, window: Duration.millis(1_500) }, {
      limit: 10,
      remaining: 3,
      reset: Duration.millis(200)
    })
    assert.deepStrictEqual(headers, {
      "ratelimit-policy": `"p";q=10;w=2`,
      "ratelimit": `"p";r=3;t=1`,
      "x-ratelimit-limit": "10",
      "x-ratelimit-remaining": "3",
      "x-ratelimit-reset": "1"
    })
  })
})
