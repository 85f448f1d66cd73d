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
import type * as Option from "effect/Option"
import type { ReadonlyRecord } from "effect/Record"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

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

/**
 * Reads the body once (honouring the server's `MaxBodySize`) and returns a
 * request that serves it from memory.
 *
 * @internal
 */
export const buffer = (
  request: HttpServerRequest.HttpServerRequest
): Effect.Effect<BufferedRequest, HttpServerError.RequestError> =>
  request instanceof BufferedRequest
    ? Effect.succeed(request)
    : Effect.map(request.arrayBuffer, (body) => new BufferedRequest(request, new Uint8Array(body)))
