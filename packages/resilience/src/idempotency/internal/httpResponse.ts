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
 *
 * Memory is bounded by `maxStoredBytes`: a body larger than what can be
 * stored is never copied for storing. A streamed body is read ahead up to that
 * budget; when it ends within it, it is stored, otherwise the part read and
 * the unread rest are sent on as one stream, and the key is completed with a
 * stand-in (`notReplayable`) that repeats answer as "too large to replay".
 */
import * as Cookies from "@effect/platform/Cookies"
import * as HttpBody from "@effect/platform/HttpBody"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Chunk from "effect/Chunk"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { identity } from "effect/Function"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { concatBytes } from "./httpRequest.js"

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

const chunkBytes = (chunk: unknown): Uint8Array | undefined =>
  typeof chunk === "string"
    ? encoder.encode(chunk)
    : chunk instanceof Uint8Array
    ? chunk
    : chunk instanceof ArrayBuffer
    ? new Uint8Array(chunk)
    : undefined

const isAsyncIterable = (u: unknown): u is AsyncIterable<unknown> =>
  typeof u === "object" && u !== null && Symbol.asyncIterator in u

/** A streamed body read up to a budget: whole, or the chunks read so far and a stream of the rest. */
type ReadAhead =
  | { readonly _tag: "Whole"; readonly bytes: Uint8Array }
  | {
    readonly _tag: "Partial"
    /** `true` when the stream failed (the rest fails the same way), `false` when it went over the budget. */
    readonly failed: boolean
    readonly bytes: number
    readonly stream: Stream.Stream<Uint8Array, unknown>
  }

/**
 * Reads a stream until it ends or passes `budget` bytes. Past the budget, the
 * chunks read so far and the unread rest become one stream for the client,
 * pulled where it stopped: the stream runs once, whatever happens. Its
 * resources live in a scope of their own, closed when the rest ends, when the
 * request's scope closes (a response never sent), or on interruption here.
 */
const readAhead = (stream: Stream.Stream<Uint8Array, unknown>, budget: number): Effect.Effect<ReadAhead> =>
  Effect.uninterruptibleMask((restore) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const close = Scope.close(scope, Exit.void)
      const requestScope = yield* Effect.serviceOption(Scope.Scope)
      const pull = yield* Scope.extend(Stream.toPull(stream), scope)
      const chunks: Array<Uint8Array> = []
      let size = 0
      const prefix = () => Stream.fromChunk(Chunk.unsafeFromArray(chunks))
      const loop: Effect.Effect<ReadAhead> = Effect.suspend(() =>
        Effect.matchEffect(pull, {
          onFailure: (end): Effect.Effect<ReadAhead> =>
            Effect.as(
              close,
              Option.match(end, {
                onNone: (): ReadAhead => ({ _tag: "Whole", bytes: concatBytes(chunks, size) }),
                onSome: (error): ReadAhead => ({
                  _tag: "Partial",
                  failed: true,
                  bytes: size,
                  stream: Stream.concat(prefix(), Stream.fail(error))
                })
              })
            ),
          onSuccess: (chunk) => {
            for (const bytes of chunk) {
              chunks.push(bytes)
              size += bytes.length
            }
            if (size <= budget) return loop
            const rest = Stream.repeatEffectChunkOption(pull).pipe(Stream.ensuring(close))
            const partial: ReadAhead = {
              _tag: "Partial",
              failed: false,
              bytes: size,
              stream: Stream.concat(prefix(), rest)
            }
            // Also closed with the request: a response that is never sent must not hold the stream's resources.
            return Option.match(requestScope, {
              onNone: () => Effect.succeed(partial),
              onSome: (owner) => Effect.as(Scope.addFinalizer(owner, close), partial)
            })
          }
        })
      )
      return yield* Effect.onInterrupt(restore(loop), () => close)
    })
  )

/**
 * What capturing a response gave:
 * - `Whole`: the body was read whole within the budget; `sent` goes to the
 *   client now (the same response, a streamed body replaced by its bytes),
 *   `stored` is what a replay sends;
 * - `Oversized`: the body is larger than the budget (`streamed`: it is a
 *   stream, of which only the budget and one chunk were read); `sent` sends it
 *   whole, nothing was copied for storing;
 * - `Unstored`: the body cannot be read back (an unknown raw object) or its
 *   stream failed; `sent` sends what the handler produced.
 *
 * @internal
 */
export type Capture =
  | { readonly _tag: "Whole"; readonly sent: HttpServerResponse.HttpServerResponse; readonly stored: StoredResponse }
  | {
    readonly _tag: "Oversized"
    readonly sent: HttpServerResponse.HttpServerResponse
    readonly streamed: boolean
    /** The body's size, or (streamed) what was read of it before giving up. */
    readonly bytes: number
  }
  | { readonly _tag: "Unstored"; readonly sent: HttpServerResponse.HttpServerResponse }

/**
 * The largest body whose stored form (base64 in JSON) can fit `maxStoredBytes`:
 * a body over it is never read whole for storing.
 *
 * @internal
 */
export const bodyBudget = (maxStoredBytes: number): number => Math.floor(maxStoredBytes / 4) * 3

type BodyRead =
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array; readonly contentType: string | undefined }
  | { readonly _tag: "Capture"; readonly capture: Capture }

const unstored = (sent: HttpServerResponse.HttpServerResponse): BodyRead => ({
  _tag: "Capture",
  capture: { _tag: "Unstored", sent }
})

const streamed = (
  response: HttpServerResponse.HttpServerResponse,
  stream: Stream.Stream<Uint8Array, unknown>,
  contentType: string | undefined,
  contentLength: number | undefined,
  budget: number
): Effect.Effect<BodyRead> =>
  Effect.map(readAhead(stream, budget), (read): BodyRead => {
    if (read._tag === "Whole") return { _tag: "Bytes", bytes: read.bytes, contentType }
    const sent = HttpServerResponse.setBody(response, HttpBody.stream(read.stream, contentType, contentLength))
    return read.failed
      ? unstored(sent)
      : { _tag: "Capture", capture: { _tag: "Oversized", sent, streamed: true, bytes: read.bytes } }
  })

/** A body already in memory: `Oversized` (sent as it is) past the budget. */
const inMemory = (
  response: HttpServerResponse.HttpServerResponse,
  bytes: Uint8Array,
  contentType: string | undefined,
  budget: number
): BodyRead =>
  bytes.length > budget
    ? { _tag: "Capture", capture: { _tag: "Oversized", sent: response, streamed: false, bytes: bytes.length } }
    : { _tag: "Bytes", bytes, contentType }

const notBytes = (chunk: unknown) => new Error(`a response body chunk is not bytes: ${typeof chunk}`)

/** The body as bytes (with the content type a `FormData` body gets when serialised), or how else it goes out. */
const bodyBytes = (response: HttpServerResponse.HttpServerResponse, budget: number): Effect.Effect<BodyRead> => {
  const body = response.body
  switch (body._tag) {
    case "Empty":
      return Effect.succeed({ _tag: "Bytes", bytes: new Uint8Array(0), contentType: undefined })
    case "Uint8Array":
      return Effect.succeed(inMemory(response, body.body, body.contentType, budget))
    case "Raw": {
      const direct = chunkBytes(body.body)
      if (direct !== undefined) return Effect.succeed(inMemory(response, direct, body.contentType, budget))
      if (!isAsyncIterable(body.body)) return Effect.succeed(unstored(response))
      const chunks = Stream.fromAsyncIterable(body.body, identity).pipe(
        Stream.mapEffect((chunk) => {
          const bytes = chunkBytes(chunk)
          return bytes === undefined ? Effect.fail(notBytes(chunk)) : Effect.succeed(bytes)
        })
      )
      return streamed(response, chunks, body.contentType, body.contentLength, budget)
    }
    case "FormData":
      return Effect.tryPromise(async () => {
        const serialised = new Response(body.formData)
        const bytes = new Uint8Array(await serialised.arrayBuffer())
        return { bytes, contentType: serialised.headers.get("content-type") ?? undefined }
      }).pipe(
        Effect.match({
          onFailure: () => unstored(response),
          onSuccess: ({ bytes, contentType }) =>
            inMemory(
              HttpServerResponse.setBody(response, HttpBody.raw(bytes, { contentType, contentLength: bytes.length })),
              bytes,
              contentType,
              budget
            )
        })
      )
    case "Stream":
      return streamed(response, body.stream, body.contentType, body.contentLength, budget)
  }
}

/**
 * Reads a response into its stored form, reading at most `budget` body bytes
 * (and one chunk) into memory.
 *
 * @internal
 */
export const capture = (
  response: HttpServerResponse.HttpServerResponse,
  options: CaptureOptions,
  budget: number
): Effect.Effect<Capture> =>
  Effect.map(bodyBytes(response, budget), (read): Capture => {
    if (read._tag === "Capture") return read.capture
    const { bytes, contentType } = read
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
    return { _tag: "Whole", sent, stored }
  })

const NOT_REPLAYABLE = "bulwark-idempotency-not-replayable"

/**
 * What is stored for an answer that was sent but is too large to store: a
 * marker, which a repeat answers with the "too large to replay" problem (the
 * handler ran, so the key must not run again).
 *
 * @internal
 */
export const notReplayable = (capture: { readonly streamed: boolean; readonly bytes: number }): StoredResponse => ({
  status: 500,
  headers: [[NOT_REPLAYABLE, capture.streamed ? "streamed" : `${capture.bytes} bytes`]],
  body: new Uint8Array(0)
})

/** @internal */
export const isNotReplayable = (stored: StoredResponse): boolean =>
  stored.headers.some(([name]) => name === NOT_REPLAYABLE)

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
