/**
 * HTTP/1.1 over a raw TCP socket, so a test controls every byte it sends (header names and values that `fetch`
 * would normalise or refuse, repeated headers, control and non-ASCII bytes, lying `Content-Length`s, chunked bodies)
 * and reads back exactly what the server wrote.
 */
import { connect } from "node:net"

/** What came back on one connection: the first response, parsed, or why there was none. */
export type Answer =
  | { readonly _tag: "Response"; readonly response: RawResponse }
  /** The server closed the connection without a complete response head. */
  | { readonly _tag: "Closed"; readonly bytes: number }
  /** Nothing complete within the time limit (the socket is destroyed). */
  | { readonly _tag: "Timeout"; readonly bytes: number }

export interface RawResponse {
  readonly status: number
  /** Lower-case names; repeated fields keep every value, in order. */
  readonly headers: ReadonlyMap<string, ReadonlyArray<string>>
  readonly body: Buffer
}

/** The first value of a field. */
export const header = (response: RawResponse, name: string): string | undefined => response.headers.get(name)?.[0]

const HEAD_END = Buffer.from("\r\n\r\n")

/** Decodes a chunked body; `undefined` when it is incomplete or malformed. */
const dechunk = (data: Buffer): Buffer | undefined => {
  const parts: Array<Buffer> = []
  let at = 0
  while (true) {
    const lineEnd = data.indexOf("\r\n", at)
    if (lineEnd === -1) return undefined
    const size = Number.parseInt(data.subarray(at, lineEnd).toString("latin1").split(";")[0] ?? "", 16)
    if (!Number.isInteger(size) || size < 0) return undefined
    if (size === 0) return Buffer.concat(parts)
    const start = lineEnd + 2
    if (data.length < start + size + 2) return undefined
    parts.push(data.subarray(start, start + size))
    at = start + size + 2
  }
}

/** Parses the first response in `data`; `undefined` while it is incomplete. */
export const parseResponse = (data: Buffer, closed: boolean, head = false): RawResponse | undefined => {
  const headEnd = data.indexOf(HEAD_END)
  if (headEnd === -1) return undefined
  const lines = data.subarray(0, headEnd).toString("latin1").split("\r\n")
  const status = Number((lines[0] ?? "").split(" ")[1])
  const headers = new Map<string, Array<string>>()
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":")
    const name = line.slice(0, colon).trim().toLowerCase()
    const values = headers.get(name) ?? []
    values.push(line.slice(colon + 1).trim())
    headers.set(name, values)
  }
  const rest = data.subarray(headEnd + HEAD_END.length)
  const noBody = head || status === 204 || status === 304 || (status >= 100 && status < 200)
  let body: Buffer | undefined
  if (noBody) body = Buffer.alloc(0)
  else if ((headers.get("transfer-encoding")?.[0] ?? "").toLowerCase() === "chunked") body = dechunk(rest)
  else if (headers.has("content-length")) {
    const length = Number(headers.get("content-length")?.[0])
    body = rest.length >= length ? rest.subarray(0, length) : undefined
  } else body = closed ? rest : undefined
  return body === undefined ? undefined : { status, headers, body }
}

/**
 * Writes `request` (in pieces, when several are given, so a server sees them as separate reads) to
 * `127.0.0.1:port`, half-closes the connection when `end` is set, and reads until the first response is complete
 * or the server closes. `head`: the answer to a HEAD request, which has no body whatever its length says.
 */
export const exchange = (
  port: number,
  request: ReadonlyArray<Buffer>,
  options: { readonly end?: boolean; readonly head?: boolean; readonly timeoutMillis?: number } = {}
): Promise<Answer> =>
  new Promise((resolve) => {
    const chunks: Array<Buffer> = []
    let length = 0
    let settled = false
    const settle = (answer: Answer) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(answer)
    }
    const socket = connect(port, "127.0.0.1", () => {
      for (const piece of request) socket.write(piece)
      if (options.end === true) socket.end()
    })
    const timer = setTimeout(() => settle({ _tag: "Timeout", bytes: length }), options.timeoutMillis ?? 10_000)
    const check = (closed: boolean) => {
      const response = parseResponse(Buffer.concat(chunks), closed, options.head)
      if (response !== undefined) settle({ _tag: "Response", response })
      else if (closed) settle({ _tag: "Closed", bytes: length })
    }
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk)
      length += chunk.length
      check(false)
    })
    // A reset after the server answered and closed is no news; a reset before is the same as a close.
    socket.on("error", () => check(true))
    socket.on("close", () => check(true))
  })
