/**
 * Property-based tests of the HTTP middlewares (rate limit ▸ idempotency ▸ chaos) against a real server, with
 * requests written byte for byte on raw TCP sockets (see `server.ts` for the stack, `requests.ts` for what is sent).
 *
 * For every request, whatever its bytes:
 * - no 500, and no 5xx at all unless a route or the chaos policy made it on purpose (marked `X-Route` /
 *   `X-Chaos`), or it is a 503 with `Retry-After` (a store that cannot be reached);
 * - every refusal by a middleware is `application/problem+json` whose `status` is the response's;
 * - no log line at error level and none carrying a defect;
 * - a refused request leaves no idempotency record (rows of the PostgreSQL table, claims of the memory store);
 * - afterwards, a normal request is still answered, and replayed.
 *
 * Node's own HTTP parser refuses some requests before the application sees them (400 / 431 without a `Date`
 * header); those are not the middlewares' answers and are only required not to be 5xx.
 *
 * Runs are bounded: `BULWARK_FUZZ_RUNS` (default 300 sequential requests, 50 concurrent batches) and
 * `BULWARK_FUZZ_SEED` (default: fast-check's random seed, printed on failure) reproduce a run.
 */
import { assert, describe, layer } from "@effect/vitest"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as Requests from "./requests.js"
import { alarming, type Fixture, FuzzServer, layer as FuzzServerLayer } from "./server.js"
import { type Answer, exchange, header, type RawResponse } from "./wire.js"

const RUNS = Number(process.env["BULWARK_FUZZ_RUNS"] ?? 300)
const SEED = process.env["BULWARK_FUZZ_SEED"]
const settings = (numRuns: number): fc.Parameters<unknown> => ({
  numRuns,
  ...(SEED === undefined ? {} : { seed: Number(SEED) }),
  // Each run is a real request; shrinking a failure re-sends it, so keep that bounded too.
  interruptAfterTimeLimit: 45_000
})

const send = (port: number, request: Requests.FuzzRequest): Promise<Answer> => {
  const { bytes, end } = Requests.render(request)
  return exchange(port, [bytes], { end, head: request.method === "HEAD" })
}

/** Made by a route or the chaos policy (replays of them keep the stored headers). */
const fromApp = (response: RawResponse): boolean =>
  header(response, "x-route") !== undefined || header(response, "x-chaos") !== undefined

/** Node's parser answers malformed requests itself, without the `Date` header every application response has. */
const fromParser = (response: RawResponse): boolean => header(response, "date") === undefined

const routed = (request: Requests.FuzzRequest): boolean =>
  request.query === "" && Requests.ROUTES.some(([method, path]) => method === request.method && path === request.path)

/** The request is followed by bytes its framing does not cover. */
const trailingBytes = (request: Requests.FuzzRequest): boolean =>
  request.body.length > 0 && (request.framing === "none" || request.framing === "length-short")

/** What is wrong with an answer; `undefined` when nothing is. */
const verdict = (request: Requests.FuzzRequest, answer: Answer): string | undefined => {
  if (answer._tag === "Timeout") return `no answer within the time limit (${answer.bytes} bytes received)`
  if (answer._tag === "Closed") {
    // Only a request whose body never arrived whole may go unanswered: the client hung up first.
    return request.framing === "length-long" ? undefined : `connection closed without an answer`
  }
  const response = answer.response
  const status = response.status
  if (fromParser(response)) return status >= 400 && status < 500 ? undefined : `parser answered ${status}`
  // Routes and the chaos policy make 2xx–5xx on purpose, but never a 500.
  if (fromApp(response)) return status === 500 ? "500 with a route's header" : undefined
  if (status === 404 && response.body.length === 0) {
    return routed(request) ? "404 for a routed request" : undefined
  }
  if (status < 400) return `${status} not made by a route`
  const contentType = header(response, "content-type")
  if (contentType !== "application/problem+json") {
    return `${status} refusal with content-type ${String(contentType)}: ${
      response.body.toString("latin1").slice(0, 200)
    }`
  }
  // The answer to HEAD has no body to read.
  if (request.method === "HEAD") return status >= 500 ? `${status} from a middleware` : undefined
  let problem: unknown
  try {
    problem = JSON.parse(response.body.toString("utf8"))
  } catch {
    return `${status} refusal whose body is not JSON`
  }
  if (typeof problem !== "object" || problem === null || !("status" in problem) || problem.status !== status) {
    return `${status} refusal whose problem says ${JSON.stringify(problem)}`
  }
  if (status >= 500) {
    return status === 503 && header(response, "retry-after") !== undefined
      ? undefined
      : `${status} from a middleware: ${response.body.toString("utf8")}`
  }
  return undefined
}

/** Sends `request` and checks every property; throws with the request and what went wrong. */
const check = async (fixture: Fixture, request: Requests.FuzzRequest): Promise<void> => {
  const logsBefore = fixture.logs.length
  const pgBefore = await fixture.pgRecords()
  const memBefore = fixture.memRecords()
  const answer = await send(fixture.port, request)
  const problems: Array<string> = []
  const wrong = verdict(request, answer)
  if (wrong !== undefined) problems.push(wrong)
  // Bytes after the announced body are the next request: when Node's parser refuses that one, it answers 400 and
  // closes at once, possibly before the first request (which the application did run) is answered.
  const refused = (answer._tag !== "Response" || !fromApp(answer.response)) &&
    !(trailingBytes(request) && (answer._tag !== "Response" || fromParser(answer.response)))
  const pgDelta = (await fixture.pgRecords()) - pgBefore
  const memDelta = fixture.memRecords() - memBefore
  if (refused && (pgDelta !== 0 || memDelta !== 0)) {
    problems.push(`a refused request left records (PostgreSQL +${pgDelta}, memory +${memDelta})`)
  }
  if (pgDelta > 1 || memDelta > 1) problems.push(`one request made ${pgDelta + memDelta} records`)
  const alarms = alarming(fixture.logs.slice(logsBefore))
  if (alarms.length > 0) problems.push(`logged: ${alarms.map((line) => `${line.level} ${line.text}`).join("\n")}`)
  if (problems.length > 0) {
    const status = answer._tag === "Response" ? answer.response.status : answer._tag
    throw new Error(`${Requests.describe(request)}\n→ ${status}: ${problems.join("; ")}`)
  }
}

/** A normal keyed request is answered, and its repeat replayed, on both stacks. */
const stillServes = async (fixture: Fixture, key: string): Promise<void> => {
  for (const prefix of ["/mem", "/pg"] as const) {
    const first = await send(fixture.port, Requests.wellFormed(prefix, key))
    const again = await send(fixture.port, Requests.wellFormed(prefix, key))
    assert.strictEqual(first._tag, "Response")
    assert.strictEqual(again._tag, "Response")
    if (first._tag !== "Response" || again._tag !== "Response") return
    assert.strictEqual(first.response.status, 201, first.response.body.toString("utf8"))
    assert.strictEqual(again.response.status, 201)
    assert.strictEqual(header(again.response, "idempotent-replayed"), "true")
    assert.deepStrictEqual(again.response.body, first.response.body)
  }
}

describe("HTTP middlewares under fuzzed requests", () => {
  // Live services: a real server, PostgreSQL and Redis on real time.
  layer(FuzzServerLayer, { excludeTestServices: true, timeout: 60_000 })((it) => {
    it.effect(
      "never answers 500, refuses with problem+json, logs no defect and stores nothing for a refused request",
      () =>
        Effect.gen(function*() {
          const fixture = yield* FuzzServer
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(Requests.request, async (request) => {
                await check(fixture, request)
                if (request.twice === true) await check(fixture, request)
              }),
              settings(RUNS)
            )
          )
          yield* Effect.promise(() => stillServes(fixture, "after-sequential"))
          // The capture works: the server logged its responses.
          assert.isAbove(fixture.logs.length, RUNS)
        }),
      60_000
    )

    it.effect(
      "the same key sent concurrently with fuzzed headers and bodies runs at most once, and never answers 500",
      () =>
        Effect.gen(function*() {
          const fixture = yield* FuzzServer
          const batch = fc.record({
            prefix: fc.constantFrom("/mem" as const, "/pg" as const, "/down" as const),
            key: fc.uuid(),
            variants: fc.array(fc.record({ contentType: Requests.contentType, body: Requests.body }), {
              minLength: 2,
              maxLength: 5
            })
          })
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(batch, async ({ key, prefix, variants }) => {
                const logsBefore = fixture.logs.length
                const pgBefore = await fixture.pgRecords()
                const memBefore = fixture.memRecords()
                const requests = variants.map(({ body, contentType }): Requests.FuzzRequest => ({
                  method: "POST",
                  prefix,
                  path: "/echo",
                  query: "",
                  headers: [
                    ["Idempotency-Key", Buffer.from(key)],
                    ["X-Api-Key", Buffer.from(`batch-${key}`)],
                    ["X-Tenant", Buffer.from("t-1")],
                    ["Content-Type", contentType]
                  ],
                  body,
                  framing: "content-length"
                }))
                const answers = await Promise.all(requests.map((request) => send(fixture.port, request)))
                answers.forEach((answer, i) => {
                  const request = requests[i]
                  if (request === undefined) return
                  const wrong = verdict(request, answer)
                  if (wrong !== undefined) throw new Error(`${Requests.describe(request)}\n→ ${wrong}`)
                })
                const executed = answers.filter((answer) =>
                  answer._tag === "Response" && header(answer.response, "x-route") !== undefined &&
                  header(answer.response, "idempotent-replayed") === undefined
                )
                assert.isAtMost(executed.length, 1, "more than one request ran the handler for one key")
                const records = (await fixture.pgRecords()) - pgBefore + fixture.memRecords() - memBefore
                assert.strictEqual(records, executed.length)
                assert.deepStrictEqual(alarming(fixture.logs.slice(logsBefore)), [])
              }),
              settings(Math.max(1, Math.floor(RUNS / 6)))
            )
          )
          yield* Effect.promise(() => stillServes(fixture, "after-concurrent"))
        }),
      60_000
    )
  })
})
