/**
 * Fuzzed HTTP/1.1 requests as fast-check arbitraries, rendered to the exact bytes sent on the wire.
 *
 * A request is a method, a target, a list of header lines (values are raw bytes: control characters, Latin-1 and
 * UTF-8 pass through untouched), a body and a framing (an honest `Content-Length`, chunked, none, or a lie). The
 * values lean towards what the middlewares read: `Idempotency-Key` (missing, empty, repeated, oversized,
 * non-ASCII, structured-field edge cases), the rate-limit key and cost, the tenant, `Content-Type`, and JSON
 * bodies that are valid, invalid, deep or not UTF-8.
 */
import fc from "fast-check"

export type Framing =
  | "content-length"
  | "chunked"
  | "none"
  /** `Content-Length` smaller than the body: the rest is read as the next request. */
  | "length-short"
  /** `Content-Length` larger than the body, then the client half-closes. */
  | "length-long"
  /** Both `Content-Length` and `Transfer-Encoding: chunked`. */
  | "both"
  /** Two different `Content-Length`s. */
  | "length-twice"

export interface FuzzRequest {
  /** Sent twice in a row (the second time a replay, a 409 or a 422 when the first was keyed). */
  readonly twice?: boolean
  readonly method: string
  readonly prefix: "/mem" | "/pg" | "/down"
  readonly path: string
  readonly query: string
  readonly headers: ReadonlyArray<readonly [name: string, value: Buffer]>
  readonly body: Buffer
  readonly framing: Framing
}

const latin1 = (text: string): Buffer => Buffer.from(text, "latin1")

/** Random bytes a header value may carry on the wire (0x20–0xFF but DEL, and tab): the application sees them. */
const fieldBytes = (maxLength: number): fc.Arbitrary<Buffer> =>
  fc.uint8Array({ minLength: 1, maxLength }).map((bytes) =>
    Buffer.from(bytes.map((byte) => (byte < 0x20 ? (byte === 0 ? 0x09 : byte + 0x40) : byte === 0x7f ? 0x7e : byte)))
  )
const utf8 = (text: string): Buffer => Buffer.from(text, "utf8")

// -----------------------------------------------------------------------------
// Header values
// -----------------------------------------------------------------------------

/** A few keys, so that repeats (replays, 409s, 422s) happen within a run. */
const poolKey = fc.constantFrom("k-1", "k-2", "k-3", "key-4", "8e03978e-40d5-43e8-bc93-6894a57f9324")

/** Idempotency-Key values, good and bad. */
export const keyValue: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: poolKey.map(latin1) },
  { weight: 3, arbitrary: fc.uuid().map(latin1) },
  // sf-strings: quoted, escaped quotes and backslashes, invalid escapes, unbalanced quotes
  { weight: 2, arbitrary: poolKey.map((key) => latin1(`"${key}"`)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "\"a\\\"b\"",
      "\"a\\\\b\"",
      "\"a\\xb\"",
      "\"abc",
      "abc\"",
      "\"\"",
      "\"",
      "\"a\"b\"",
      "\"\\\"",
      "\"k-1\";a=1",
      "k-1;a=1",
      "\"k-1\"; a=?0; b=\"x\"",
      "(\"a\" \"b\")",
      "(\"a\" \"b\");lvl=5",
      "k-1, k-2",
      "\"k-1\", \"k-2\"",
      ":YWJj:",
      "?1",
      "42",
      "*tok",
      "a b",
      " "
    ).map(latin1)
  },
  // empty, at the length limit and just past it, oversized (8 KiB and more)
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.constantFrom(255, 256, 1024).map((n) => latin1("k".repeat(n))) },
  { weight: 1, arbitrary: fc.integer({ min: 8 * 1024, max: 12 * 1024 }).map((n) => latin1("x".repeat(n))) },
  // non-ASCII (UTF-8 and raw Latin-1 bytes) and control bytes (the parser refuses most of these itself)
  { weight: 1, arbitrary: fc.constantFrom("über", "ключ", "🔑", "k\u00a0").map(utf8) },
  { weight: 1, arbitrary: fc.constantFrom([0x6b, 0xff], [0x80], [0x6b, 0x09, 0x6b], [0x6b, 0x7f]).map(Buffer.from) },
  { weight: 1, arbitrary: fc.constantFrom([0x6b, 0x00, 0x6b], [0x01], [0x6b, 0x0b]).map(Buffer.from) },
  { weight: 1, arbitrary: fieldBytes(40) }
)

const apiKey: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("a-1", "a-2", "a-3").map(latin1) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.integer({ min: 300, max: 9 * 1024 }).map((n) => latin1("a".repeat(n))) },
  { weight: 1, arbitrary: fc.constantFrom("äpi", "🔑", "a\u00a0").map(utf8) },
  { weight: 1, arbitrary: fieldBytes(20) }
)

const tenant: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("t-1", "t-2").map(latin1) },
  { weight: 1, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 1, arbitrary: fc.constantFrom(255, 256, 9000).map((n) => latin1("t".repeat(n))) },
  { weight: 1, arbitrary: fc.constantFrom("tenänt", "租户").map(utf8) },
  { weight: 1, arbitrary: fieldBytes(20) }
)

const cost = fc.constantFrom(
  "1",
  "1",
  "2",
  "3",
  "0",
  "-1",
  "1.5",
  "abc",
  "",
  "1e9",
  "25",
  "26",
  "NaN",
  "Infinity",
  " 1"
)

const chaos = fc.constantFrom("503", "429", "409", "204", "after", "slow", "garbage", "")

export const contentType: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      "application/json",
      "application/json; charset=utf-8",
      "application/json; charset=\"UTF-8\"",
      "application/json;charset=iso-8859-1",
      "APPLICATION/JSON",
      "application/problem+json",
      "application/vnd.api+json; charset=utf-8",
      "text/plain",
      "text/plain; charset=utf-8",
      "application/x-www-form-urlencoded",
      "application/octet-stream",
      "multipart/form-data",
      "multipart/form-data; boundary=",
      "multipart/form-data; boundary=\"\"",
      "multipart/form-data; boundary=----x",
      "application/",
      "/",
      ";",
      "json",
      ""
    ).map(latin1)
  },
  { weight: 1, arbitrary: fc.constantFrom("application/jsön", "text/plain; charset=ü").map(utf8) },
  { weight: 1, arbitrary: fieldBytes(30) }
)

// -----------------------------------------------------------------------------
// Bodies
// -----------------------------------------------------------------------------

const deep = (depth: number, open: string, close: string, inner: string): Buffer =>
  latin1(`${open.repeat(depth)}${inner}${close.repeat(depth)}`)

export const body: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) },
  { weight: 4, arbitrary: fc.integer({ min: -5, max: 1000 }).map((n) => latin1(`{"amount":${n}}`)) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(`{ "currency": "EUR", "amount": 1 }`, `{"amount":1,"currency":"EUR"}`).map(latin1)
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      "{",
      "{\"amount\":}",
      "[1,]",
      "nul",
      "\"\\x\"",
      "{\"a\":1}x",
      "1 2",
      "{\"amount\":\"1\"}"
    )
      .map(latin1)
  },
  { weight: 2, arbitrary: fc.json({ maxDepth: 4 }).map(utf8) },
  { weight: 1, arbitrary: fc.integer({ min: 2_000, max: 20_000 }).map((n) => deep(n, "[", "]", "1")) },
  { weight: 1, arbitrary: fc.integer({ min: 2_000, max: 10_000 }).map((n) => deep(n, "{\"a\":", "}", "1")) },
  { weight: 1, arbitrary: fc.integer({ min: 16 * 1024, max: 128 * 1024 }).map((n) => latin1("x".repeat(n))) },
  // not UTF-8: a lone continuation byte, an overlong encoding, a truncated sequence, Latin-1 text
  {
    weight: 2,
    arbitrary: fc.constantFrom([0x7b, 0x22, 0x80, 0x22, 0x7d], [0xc0, 0xaf], [0xe2, 0x82], [0x22, 0xe9, 0x22]).map(
      Buffer.from
    )
  },
  { weight: 1, arbitrary: fc.uint8Array({ minLength: 1, maxLength: 512 }).map(Buffer.from) },
  {
    weight: 1,
    arbitrary: fc.constant(latin1("------x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n------x-"))
  }
)

// -----------------------------------------------------------------------------
// Requests
// -----------------------------------------------------------------------------

/** The routes each prefix serves. */
export const ROUTES: ReadonlyArray<readonly [method: string, path: string]> = [
  ["POST", "/echo"],
  ["PATCH", "/echo"],
  ["GET", "/echo"],
  ["DELETE", "/echo"],
  ["POST", "/fail"],
  ["POST", "/json"]
]

const method = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("POST", "PATCH") },
  { weight: 3, arbitrary: fc.constantFrom("GET", "DELETE", "PUT", "OPTIONS", "HEAD") },
  { weight: 1, arbitrary: fc.constantFrom("post", "Patch", "FOO", "PROPFIND", "M-SEARCH", "GET\u0000") }
)

const path = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom("/echo", "/json", "/fail") },
  { weight: 1, arbitrary: fc.constantFrom("/nope", "/echo/", "/ECHO", "/echo/../json", "/%65cho", "//echo") }
)

const query = fc.oneof(
  { weight: 4, arbitrary: fc.constant("") },
  { weight: 1, arbitrary: fc.constantFrom("?a=1", "?a=1&a=2", "?%ff", "?x=%00", "?" + "q".repeat(2000)) }
)

type Line = readonly [string, Buffer]

/** A header present zero, one or several times, under differently cased names. */
const optional = (
  names: ReadonlyArray<string>,
  value: fc.Arbitrary<Buffer>,
  weights: readonly [number, number, number]
) =>
  fc.oneof(
    { weight: weights[0], arbitrary: fc.constant<ReadonlyArray<Line>>([]) },
    {
      weight: weights[1],
      arbitrary: fc.tuple(fc.constantFrom(...names), value).map((line): ReadonlyArray<Line> => [line])
    },
    {
      weight: weights[2],
      arbitrary: fc.array(fc.tuple(fc.constantFrom(...names), value), { minLength: 2, maxLength: 3 })
    }
  )

const headerLines = fc.tuple(
  optional(["Idempotency-Key", "idempotency-key", "IDEMPOTENCY-KEY"], keyValue, [2, 10, 1]),
  optional(["X-Api-Key", "x-api-key"], apiKey, [3, 6, 1]),
  optional(["X-Tenant"], tenant, [3, 6, 1]),
  optional(["X-Cost"], cost.map(latin1), [16, 2, 1]),
  optional(["X-Chaos"], chaos.map(latin1), [8, 2, 0]),
  optional(["X-Fail"], fc.constantFrom("declined", "unavailable").map(latin1), [2, 2, 0]),
  optional(["Content-Type", "content-type"], contentType, [2, 8, 1])
).map((groups) => groups.flat())

const framing = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Framing>("content-length") },
  { weight: 3, arbitrary: fc.constant<Framing>("chunked") },
  { weight: 1, arbitrary: fc.constantFrom<Framing>("none", "length-short", "length-long", "both", "length-twice") }
)

/** Mostly a route that exists (the middlewares only see those), sometimes any method on any path. */
const target = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...ROUTES.filter(([method]) => method === "POST" || method === "PATCH")) },
  { weight: 2, arbitrary: fc.constantFrom(...ROUTES) },
  { weight: 2, arbitrary: fc.tuple(method, path) }
)

export const request: fc.Arbitrary<FuzzRequest> = fc.record({
  target,
  prefix: fc.constantFrom("/mem" as const, "/mem" as const, "/pg" as const, "/pg" as const, "/down" as const),
  query,
  headers: headerLines,
  body,
  framing,
  twice: fc.boolean()
}).map(({ target: [method, path], ...rest }) => {
  const request: FuzzRequest = { ...rest, method, path }
  // fast-check prints counterexamples with this: bodies and oversized headers abbreviated.
  return Object.assign(request, { [fc.toStringMethod]: () => describe(request) })
})

/** A normal request: the kind that must still work after any fuzzed one. */
export const wellFormed = (prefix: "/mem" | "/pg", key: string): FuzzRequest => ({
  method: "POST",
  prefix,
  path: "/json",
  query: "",
  headers: [
    ["Idempotency-Key", latin1(key)],
    ["X-Api-Key", latin1(`probe-${key}`)],
    ["X-Tenant", latin1("t-probe")],
    ["Content-Type", latin1("application/json")]
  ],
  body: latin1("{\"amount\":7}"),
  framing: "content-length"
})

const chunked = (data: Buffer): Buffer => {
  const pieces: Array<Buffer> = []
  // Uneven chunks, so the server sees chunk boundaries anywhere.
  for (let at = 0, size = 1; at < data.length; at += size, size = size * 3 + 1) {
    const piece = data.subarray(at, at + size)
    pieces.push(latin1(`${piece.length.toString(16)}\r\n`), piece, latin1("\r\n"))
  }
  pieces.push(latin1("0\r\n\r\n"))
  return Buffer.concat(pieces)
}

/** The request's bytes, and whether the client half-closes after them (a body shorter than announced). */
export const render = (request: FuzzRequest): { readonly bytes: Buffer; readonly end: boolean } => {
  const head: Array<Buffer> = [
    latin1(`${request.method} ${request.prefix}${request.path}${request.query} HTTP/1.1\r\n`),
    latin1("Host: 127.0.0.1\r\nConnection: close\r\n")
  ]
  for (const [name, value] of request.headers) head.push(latin1(`${name}: `), value, latin1("\r\n"))
  const { body } = request
  let payload = body
  switch (request.framing) {
    case "content-length":
      head.push(latin1(`Content-Length: ${body.length}\r\n`))
      break
    case "chunked":
      head.push(latin1("Transfer-Encoding: chunked\r\n"))
      payload = chunked(body)
      break
    case "none":
      break
    case "length-short":
      head.push(latin1(`Content-Length: ${Math.floor(body.length / 2)}\r\n`))
      break
    case "length-long":
      head.push(latin1(`Content-Length: ${body.length + 10}\r\n`))
      break
    case "both":
      head.push(latin1(`Content-Length: ${body.length}\r\nTransfer-Encoding: chunked\r\n`))
      payload = chunked(body)
      break
    case "length-twice":
      head.push(latin1(`Content-Length: ${body.length}\r\nContent-Length: ${body.length + 1}\r\n`))
      break
  }
  head.push(latin1("\r\n"))
  return { bytes: Buffer.concat([...head, payload]), end: request.framing === "length-long" }
}

/** A short printable description of a request, for failure messages. */
export const describe = (request: FuzzRequest): string => {
  const shown = (value: Buffer) => {
    const text = JSON.stringify(value.toString("latin1"))
    return text.length > 80 ? `${text.slice(0, 77)}…(${value.length} bytes)` : text
  }
  const headers = request.headers.map(([name, value]) => `${name}: ${shown(value)}`).join(" | ")
  return `${JSON.stringify(request.method)} ${request.prefix}${request.path}${
    request.query.slice(0, 40)
  } [${request.framing}] ${headers} body=${shown(request.body)}`
}
