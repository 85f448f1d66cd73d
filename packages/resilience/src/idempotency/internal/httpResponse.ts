/**
 * Turning an `HttpServerResponse` into a stored value and back.
 *
 * What is stored: the status, the body bytes, and the headers the handler set,
 * minus
 * - hop-by-hop headers (RFC 9110 §7.6.1: `connection`, `keep-alive`,
 *   `proxy-connection`, `transfer-encoding`, `te`, `trailer`, `upgrade`),
 *   which describe one connection, not the answer;
 * - `content-length` and `date`, which the server writes again for every
 *   response;
 * - cookies (`response.cookies` and any `set-cookie` header), unless the route
 *   opts in: a replay goes to whoever holds the key, and re-issuing a session
 *   cookie to them is rarely what anyone wants;
 * - any header the route lists in `excludeHeaders`.
 *
 * Headers added outside the stored handler (by outer middleware, or by
 * pre-response handlers) are not part of the stored answer; outer middleware
 * adds them again on a replay.
 */
import * as Cookies from "@effect/platform/Cookies"
import type * as Body from "@effect/platform/HttpBody"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

/**
 * A response as stored. `headers` keeps the handler's order (lower-case
 * names); `cookies` holds `Set-Cookie` values, only when cookies are stored.
 *
 * @internal
 */
export const StoredResponse = Schema.Struct({
  status: Schema.Int,
  statusText: Schema.optional(Schema.String),
  headers: Schema.Array(Schema.Tuple(Schema.String, Schema.String)),
  cookies: Schema.optional(Schema.Array(Schema.String)),
  body: Schema.Uint8ArrayFromBase64
})

/** @internal */
export type StoredResponse = typeof StoredResponse.Type

/** @internal */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "te",
  "trailer",
  "upgrade"
])

const ALWAYS_DROPPED: ReadonlySet<string> = new Set([...HOP_BY_HOP, "content-length", "date"])

/** @internal */
export interface CaptureOptions {
  readonly storeCookies: boolean
  readonly excludeHeaders: ReadonlySet<string>
}

/** @internal */
export const excludedHeaders = (names: ReadonlyArray<string> | undefined): ReadonlySet<string> =>
  new Set((names ?? []).map((name) => name.toLowerCase()))

const encoder = new TextEncoder()

const concat = (chunks: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0]
  let length = 0
  for (const chunk of chunks) length += chunk.length
  const out = new Uint8Array(length)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

const isAsyncIterable = (u: unknown): u is AsyncIterable<unknown> =>
  typeof u === "object" && u !== null && Symbol.asyncIterator in u

const chunkBytes = (chunk: unknown): Uint8Array | undefined =>
  typeof chunk === "string"
    ? encoder.encode(chunk)
    : chunk instanceof Uint8Array
    ? chunk
    : chunk instanceof ArrayBuffer
    ? new Uint8Array(chunk)
    : undefined

/** Reads an async iterable of byte or string chunks (a Node `Readable`, a web `ReadableStream`). */
const readIterable = (iterable: AsyncIterable<unknown>): Effect.Effect<Option.Option<Uint8Array>, unknown> =>
  Effect.tryPromise({
    try: async () => {
      const chunks: Array<Uint8Array> = []
      for await (const chunk of iterable) {
        const bytes = chunkBytes(chunk)
        if (bytes === undefined) return Option.none()
        chunks.push(bytes)
      }
      return Option.some(concat(chunks))
    },
    catch: (cause) => cause
  })

/**
 * The body as bytes, with the content type a `FormData` body gets when
 * serialised. `None` when the body is something the server could send but
 * that cannot be read back (an unknown raw object).
 */
const bodyBytes = (
  body: Body.HttpBody
): Effect.Effect<Option.Option<{ readonly bytes: Uint8Array; readonly contentType: string | undefined }>, unknown> => {
  switch (body._tag) {
    case "Empty":
      return Effect.succeed(Option.some({ bytes: new Uint8Array(0), contentType: undefined }))
    case "Uint8Array":
      return Effect.succeed(Option.some({ bytes: body.body, contentType: body.contentType }))
    case "Raw": {
      const direct = chunkBytes(body.body)
      if (direct !== undefined) return Effect.succeed(Option.some({ bytes: direct, contentType: body.contentType }))
      if (!isAsyncIterable(body.body)) return Effect.succeed(Option.none())
      return Effect.map(readIterable(body.body), Option.map((bytes) => ({ bytes, contentType: body.contentType })))
    }
    case "FormData":
      return Effect.tryPromise({
        try: async () => {
          const serialised = new Response(body.formData)
          const bytes = new Uint8Array(await serialised.arrayBuffer())
          return Option.some({ bytes, contentType: serialised.headers.get("content-type") ?? undefined })
        },
        catch: (cause) => cause
      })
    case "Stream":
      return Stream.runCollect(body.stream).pipe(
        Effect.map((chunks) => Option.some({ bytes: concat(Array.from(chunks)), contentType: body.contentType }))
      )
  }
}

/**
 * A captured response: `sent` is what goes to the client now (the same
 * response, with a streamed body replaced by the bytes it produced), `stored`
 * what a replay will send.
 *
 * @internal
 */
export interface Captured {
  readonly sent: HttpServerResponse.HttpServerResponse
  readonly stored: StoredResponse
}

/**
 * Reads a response into its stored form. `None` when its body cannot be read
 * back; the caller then sends it unstored.
 *
 * @internal
 */
export const capture = (
  response: HttpServerResponse.HttpServerResponse,
  options: CaptureOptions
): Effect.Effect<Option.Option<Captured>, unknown> =>
  Effect.map(bodyBytes(response.body), (read) => {
    if (read._tag === "None") return Option.none()
    const { bytes, contentType } = read.value
    const body = response.body
    const sent = body._tag === "Empty" || body._tag === "Uint8Array"
      ? response
      : HttpServerResponse.setBody(response, HttpBody.raw(bytes, { contentType, contentLength: bytes.length }))
    const headers: Array<readonly [string, string]> = []
    const cookies: Array<string> = []
    for (const [name, value] of Object.entries(sent.headers)) {
      if (ALWAYS_DROPPED.has(name) || options.excludeHeaders.has(name)) continue
      if (name === "set-cookie") {
        if (options.storeCookies) cookies.push(value)
        continue
      }
      headers.push([name, value])
    }
    if (options.storeCookies && !Cookies.isEmpty(sent.cookies)) {
      cookies.push(...Cookies.toSetCookieHeaders(sent.cookies))
    }
    const stored: StoredResponse = {
      status: sent.status,
      ...(sent.statusText === undefined ? {} : { statusText: sent.statusText }),
      headers,
      ...(cookies.length === 0 ? {} : { cookies }),
      body: bytes
    }
    return Option.some({ sent, stored })
  })

/**
 * The response a replay sends: the stored status, headers and body bytes,
 * plus `extraHeaders` (`Idempotent-Replayed: true`).
 *
 * @internal
 */
export const replay = (
  stored: StoredResponse,
  extraHeaders: Readonly<Record<string, string>>
): HttpServerResponse.HttpServerResponse => {
  const headers: Record<string, string> = {}
  for (const [name, value] of stored.headers) headers[name] = value
  Object.assign(headers, extraHeaders)
  const options = {
    status: stored.status,
    ...(stored.statusText === undefined ? {} : { statusText: stored.statusText }),
    headers,
    ...(stored.cookies === undefined ? {} : { cookies: Cookies.fromSetCookie(stored.cookies) })
  }
  return stored.body.length === 0
    ? HttpServerResponse.empty(options)
    : HttpServerResponse.raw(stored.body, { ...options, contentLength: stored.body.length })
}
