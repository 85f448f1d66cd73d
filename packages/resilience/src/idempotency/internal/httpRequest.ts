/**
 * A server request whose body has already been read into memory.
 *
 * The middleware must hash the body before the handler runs, and a Node
 * request body is a stream that can be read once (`arrayBuffer` is not cached
 * by @effect/platform-node, and `text` reads the same stream). So the bytes
 * are read once, and the handler gets this request instead: every body
 * accessor (`text`, `json`, `arrayBuffer`, `urlParamsBody`, `stream`,
 * `multipart`) serves the same bytes, as often as asked. Everything else
 * (method, url, headers, cookies, remote address, the Node `source`) is the
 * original request's.
 *
 * The read is bounded (`maxBodyBytes`): a body over the limit is refused
 * (413) having read at most the limit plus one chunk, so a large or endless
 * upload costs neither memory nor a claimed key.
 */
import type * as FileSystem from "@effect/platform/FileSystem"
import type * as Headers from "@effect/platform/Headers"
import * as IncomingMessage from "@effect/platform/HttpIncomingMessage"
import type { HttpMethod } from "@effect/platform/HttpMethod"
import * as HttpServerError from "@effect/platform/HttpServerError"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Multipart from "@effect/platform/Multipart"
import type * as Path from "@effect/platform/Path"
import type * as Socket from "@effect/platform/Socket"
import * as UrlParams from "@effect/platform/UrlParams"
import * as Effect from "effect/Effect"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import type { ReadonlyRecord } from "effect/Record"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import { Socket as NetSocket } from "node:net"
import { Readable } from "node:stream"

const decoder = new TextDecoder()

/** @internal */
export class BufferedRequest extends Inspectable.Class implements HttpServerRequest.HttpServerRequest {
  readonly [HttpServerRequest.TypeId]: HttpServerRequest.TypeId = HttpServerRequest.TypeId
  readonly [IncomingMessage.TypeId]: IncomingMessage.TypeId = IncomingMessage.TypeId

  constructor(readonly original: HttpServerRequest.HttpServerRequest, readonly bytes: Uint8Array) {
    super()
  }

  toJSON(): unknown {
    return IncomingMessage.inspect(this, {
      _id: "@effect/platform/HttpServerRequest",
      method: this.method,
      url: this.originalUrl
    })
  }

  get source(): unknown {
    return this.original.source
  }
  get url(): string {
    return this.original.url
  }
  get originalUrl(): string {
    return this.original.originalUrl
  }
  get method(): HttpMethod {
    return this.original.method
  }
  get cookies(): ReadonlyRecord<string, string> {
    return this.original.cookies
  }
  get headers(): Headers.Headers {
    return this.original.headers
  }
  get remoteAddress(): Option.Option<string> {
    return this.original.remoteAddress
  }
  get upgrade(): Effect.Effect<Socket.Socket, HttpServerError.RequestError> {
    return this.original.upgrade
  }

  modify(options: {
    readonly url?: string
    readonly headers?: Headers.Headers
    readonly remoteAddress?: string
  }): HttpServerRequest.HttpServerRequest {
    return new BufferedRequest(this.original.modify(options), this.bytes)
  }

  private decodeError(cause: unknown): HttpServerError.RequestError {
    return new HttpServerError.RequestError({ request: this, reason: "Decode", cause })
  }

  get text(): Effect.Effect<string, HttpServerError.RequestError> {
    return Effect.sync(() => decoder.decode(this.bytes))
  }

  get json(): Effect.Effect<unknown, HttpServerError.RequestError> {
    return Effect.try({
      try: (): unknown => {
        const text = decoder.decode(this.bytes)
        return text === "" ? null : JSON.parse(text)
      },
      catch: (cause) => this.decodeError(cause)
    })
  }

  get urlParamsBody(): Effect.Effect<UrlParams.UrlParams, HttpServerError.RequestError> {
    return Effect.try({
      try: () => UrlParams.fromInput(new URLSearchParams(decoder.decode(this.bytes))),
      catch: (cause) => this.decodeError(cause)
    })
  }

  get arrayBuffer(): Effect.Effect<ArrayBuffer, HttpServerError.RequestError> {
    // A fresh copy each time: handlers may write into the buffer they get.
    return Effect.sync(() => {
      const copy = new ArrayBuffer(this.bytes.byteLength)
      new Uint8Array(copy).set(this.bytes)
      return copy
    })
  }

  get stream(): Stream.Stream<Uint8Array, HttpServerError.RequestError> {
    return Stream.succeed(this.bytes)
  }

  get multipartStream(): Stream.Stream<Multipart.Part, Multipart.MultipartError> {
    return Stream.pipeThroughChannel(Stream.succeed(this.bytes), Multipart.makeChannel(this.headers))
  }

  get multipart(): Effect.Effect<
    Multipart.Persisted,
    Multipart.MultipartError,
    Scope.Scope | FileSystem.FileSystem | Path.Path
  > {
    return Multipart.toPersisted(this.multipartStream)
  }
}

const ALREADY_READ = "the request body was already read before the idempotency middleware (by an outer middleware?)"
const ABORTED = "the client closed the connection before the request body ended"

/**
 * Joins chunks into one array: one copy, whatever the number of chunks.
 *
 * @internal
 */
export const concatBytes = (chunks: ReadonlyArray<Uint8Array>, length?: number): Uint8Array => {
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0]
  let total = length ?? 0
  if (length === undefined) { for (const chunk of chunks) total += chunk.length }
  const out = new Uint8Array(total)
  let offset = 0
  for (const chunk of chunks) {
    out.set(chunk, offset)
    offset += chunk.length
  }
  return out
}

/**
 * What reading a body under a limit gave: the buffered request, or the
 * news that the body is over `limit` (`declared`: its `Content-Length`, when
 * that alone said so and nothing was read).
 *
 * @internal
 */
export type Buffered =
  | { readonly _tag: "Buffered"; readonly request: BufferedRequest }
  | { readonly _tag: "TooLarge"; readonly limit: number; readonly declared: number | undefined }

type Read = { readonly _tag: "Complete"; readonly bytes: Uint8Array } | { readonly _tag: "TooLarge" }

const tooLarge: Read = { _tag: "TooLarge" }
const discard = (): void => undefined

/**
 * Reads a Node request (`IncomingMessage`) chunk by chunk. Over the limit it
 * drops what it holds and keeps the stream flowing into nothing, without
 * destroying it: destroying it would reset the connection before the 413 is
 * written, and pausing it would leave a kept-alive connection stuck on the
 * unread rest. After the 413 the connection lingers (see {@link lingerAfterRefusal}).
 */
const readNode = (
  source: Readable,
  limit: number,
  onError: (cause: unknown) => HttpServerError.RequestError
): Effect.Effect<Read, HttpServerError.RequestError> =>
  Effect.async<Read, HttpServerError.RequestError>((resume) => {
    if (source.readableEnded) {
      resume(Effect.fail(onError(new Error(ALREADY_READ))))
      return
    }
    const chunks: Array<Uint8Array> = []
    let size = 0
    const stop = () => {
      source.off("data", onData)
      source.off("end", onEnd)
      source.off("error", onFailure)
      source.off("close", onClose)
    }
    function onData(chunk: Uint8Array | string) {
      const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk
      size += bytes.length
      if (size <= limit) {
        chunks.push(bytes)
        return
      }
      stop()
      chunks.length = 0
      source.on("data", discard)
      resume(Effect.succeed(tooLarge))
    }
    function onEnd() {
      stop()
      resume(Effect.succeed({ _tag: "Complete", bytes: concatBytes(chunks, size) }))
    }
    function onFailure(cause: unknown) {
      stop()
      resume(Effect.fail(onError(cause)))
    }
    function onClose() {
      stop()
      resume(Effect.fail(onError(new Error(ABORTED))))
    }
    source.on("data", onData)
    source.on("end", onEnd)
    source.on("error", onFailure)
    source.on("close", onClose)
    return Effect.sync(stop)
  })

/** Any other request (a web `Request`): its body stream, stopped (cancelled) at the limit. */
const readStream = (request: HttpServerRequest.HttpServerRequest, limit: number) =>
  Effect.suspend(() => {
    const chunks: Array<Uint8Array> = []
    let size = 0
    return Effect.map(
      Stream.runForEachWhile(request.stream, (chunk) =>
        Effect.sync(() => {
          size += chunk.length
          if (size > limit) return false
          chunks.push(chunk)
          return true
        })),
      (): Read => size > limit ? tooLarge : { _tag: "Complete", bytes: concatBytes(chunks, size) }
    )
  })

const declaredLength = (request: HttpServerRequest.HttpServerRequest): number | undefined => {
  const header = request.headers["content-length"]
  return header !== undefined && /^\d{1,15}$/.test(header) ? Number(header) : undefined
}

/**
 * Reads the body once, up to `maxBytes` (or the server's `MaxBodySize`, when
 * that is smaller), and returns a request that serves it from memory. A
 * `Content-Length` over the limit is refused before a byte is read; a body
 * without one (chunked) is read until it crosses the limit, and no further.
 *
 * @internal
 */
export const buffer = (
  request: HttpServerRequest.HttpServerRequest,
  maxBytes: number
): Effect.Effect<Buffered, HttpServerError.RequestError> =>
  Effect.flatMap(IncomingMessage.MaxBodySize, (serverMax) => {
    const limit = Option.match(serverMax, { onNone: () => maxBytes, onSome: (max) => Math.min(maxBytes, Number(max)) })
    const refuse = (declared: number | undefined): Buffered => ({ _tag: "TooLarge", limit, declared })
    if (request instanceof BufferedRequest) {
      return Effect.succeed(request.bytes.length > limit ? refuse(undefined) : { _tag: "Buffered", request })
    }
    const declared = declaredLength(request)
    if (declared !== undefined && declared > limit) return Effect.succeed(refuse(declared))
    const source = request.source
    const read = source instanceof Readable
      ? readNode(
        source,
        limit,
        (cause) => new HttpServerError.RequestError({ request, reason: "Decode", cause })
      )
      : readStream(request, limit)
    return Effect.map(read, (result): Buffered =>
      result._tag === "TooLarge"
        ? refuse(undefined)
        : { _tag: "Buffered", request: new BufferedRequest(request, result.bytes) })
  })

/** How long a connection may go on delivering a refused body after its 413; see {@link lingerAfterRefusal}. */
export const LINGER_MILLIS = 2_000

/**
 * After a 413 the rest of the body is still on its way, and Node closes a connection whose request body was not read
 * through (`Connection: close`, then `destroySoon`: end, and destroy once the answer is written). Destroyed, the
 * socket answers what the client still sends with a reset, and a client still sending loses the 413 with it (TCP
 * drops what it had not read yet). So the connection lingers, as nginx's lingering close does: the answer is written
 * and our side ended, the rest of the body is read into nothing (memory stays flat), and the socket is destroyed
 * when the client ends its side or after `millis`, whichever comes first.
 *
 * @internal
 */
export const lingerAfterRefusal = (
  request: HttpServerRequest.HttpServerRequest,
  millis: number = LINGER_MILLIS
): Effect.Effect<void> =>
  Effect.sync(() => {
    const source = request.source
    if (!(source instanceof Readable) || source.readableEnded || !("socket" in source)) return
    const socket: unknown = source.socket
    if (!(socket instanceof NetSocket)) return
    const close = () => socket.destroy()
    const timer = setTimeout(close, millis)
    timer.unref()
    socket.destroySoon = () => {
      socket.on("data", discard)
      socket.once("end", close)
      socket.end()
    }
    socket.once("close", () => clearTimeout(timer))
  })
