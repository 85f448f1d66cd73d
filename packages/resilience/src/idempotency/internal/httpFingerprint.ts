/**
 * Request fingerprints: a SHA-256 over the method, the route, the request
 * target and the body, so that a key reused for a different request is caught
 * (422) instead of replaying someone else's answer.
 *
 * JSON bodies are hashed in a canonical form (object members sorted by key,
 * no insignificant whitespace, string escapes normalised), so that the same
 * payload serialised by another client library still matches. Numbers keep
 * their exact digits: parsing them into doubles (as `JSON.parse` and RFC 8785
 * do) would make `12345678901234567890` and `12345678901234567891` equal, and
 * a different charge would be answered with the stored one. The price is that
 * `1.0` and `1` differ, which only ever costs a 422, never a wrong replay.
 * Bodies that are not JSON, or not valid JSON, are hashed byte for byte.
 */
import { createHash, hash } from "node:crypto"

/** @internal */
export class CanonicalJsonError extends Error {}

const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d])
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y

/**
 * A one-pass parser that writes the canonical form while it reads; throws
 * `CanonicalJsonError` on anything that is not a single JSON value.
 */
class Canonicalizer {
  private position = 0
  constructor(private readonly text: string) {}

  run(): string {
    const value = this.value()
    this.skipWhitespace()
    if (this.position !== this.text.length) this.fail("trailing characters")
    return value
  }

  private fail(what: string): never {
    throw new CanonicalJsonError(`not JSON: ${what} at ${this.position}`)
  }

  private skipWhitespace(): void {
    while (this.position < this.text.length && WHITESPACE.has(this.text.charCodeAt(this.position))) this.position++
  }

  private value(): string {
    this.skipWhitespace()
    const char = this.text[this.position]
    switch (char) {
      case "{":
        return this.object()
      case "[":
        return this.array()
      case "\"":
        return JSON.stringify(this.string())
      case "t":
        return this.literal("true")
      case "f":
        return this.literal("false")
      case "n":
        return this.literal("null")
      default:
        return this.number()
    }
  }

  private literal(word: string): string {
    if (!this.text.startsWith(word, this.position)) this.fail("an unknown literal")
    this.position += word.length
    return word
  }

  private number(): string {
    NUMBER.lastIndex = this.position
    const match = NUMBER.exec(this.text)
    if (match === null) this.fail("an unexpected character")
    this.position += match[0].length
    return match[0]
  }

  /** Reads a string token and returns its value (escapes resolved by the platform's own parser). */
  private string(): string {
    const start = this.position
    this.position++
    let escaped = false
    while (this.position < this.text.length) {
      const code = this.text.charCodeAt(this.position)
      if (code === 0x22) {
        this.position++
        const token = this.text.slice(start, this.position)
        if (!escaped) return token.slice(1, -1)
        try {
          const parsed: unknown = JSON.parse(token)
          if (typeof parsed === "string") return parsed
        } catch {
          // reported below
        }
        this.fail("an invalid string")
      }
      if (code === 0x5c) {
        escaped = true
        this.position += 2
        continue
      }
      if (code < 0x20) this.fail("a control character in a string")
      this.position++
    }
    return this.fail("an unterminated string")
  }

  private array(): string {
    this.position++
    const items: Array<string> = []
    this.skipWhitespace()
    if (this.text[this.position] === "]") {
      this.position++
      return "[]"
    }
    while (true) {
      items.push(this.value())
      this.skipWhitespace()
      const char = this.text[this.position++]
      if (char === "]") return `[${items.join(",")}]`
      if (char !== ",") this.fail("a missing comma in an array")
    }
  }

  private object(): string {
    this.position++
    // Duplicate names: the last one wins, as with JSON.parse, which is what the handler sees.
    const members = new Map<string, string>()
    this.skipWhitespace()
    if (this.text[this.position] === "}") {
      this.position++
      return "{}"
    }
    while (true) {
      this.skipWhitespace()
      if (this.text[this.position] !== "\"") this.fail("a missing member name")
      const name = this.string()
      this.skipWhitespace()
      if (this.text[this.position++] !== ":") this.fail("a missing colon")
      members.delete(name)
      members.set(name, this.value())
      this.skipWhitespace()
      const char = this.text[this.position++]
      if (char === "}") break
      if (char !== ",") this.fail("a missing comma in an object")
    }
    // Sorted by UTF-16 code units, as RFC 8785 does.
    const names = Array.from(members.keys()).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${names.map((name) => `${JSON.stringify(name)}:${members.get(name) ?? "null"}`).join(",")}}`
  }
}

/**
 * The canonical form of a JSON text: members sorted, whitespace removed,
 * string escapes normalised, numbers verbatim. Throws `CanonicalJsonError`
 * when the text is not one JSON value.
 *
 * @internal
 */
export const canonicalJson = (text: string): string => new Canonicalizer(text).run()

/** `application/json`, `application/problem+json`, `application/vnd.api+json; charset=utf-8`… */
const isJsonMediaType = (contentType: string | undefined): boolean => {
  if (contentType === undefined) return false
  const semicolon = contentType.indexOf(";")
  const mediaType = (semicolon === -1 ? contentType : contentType.slice(0, semicolon)).trim().toLowerCase()
  return mediaType === "application/json" || (mediaType.startsWith("application/") && mediaType.endsWith("+json"))
}

const decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * What a fingerprint covers. `scope` is the bounded route identity
 * (`"POST /accounts/:id/payments"`), `target` the concrete path and query
 * (`/accounts/42/payments?dry=1`): path parameters are part of the request.
 *
 * @internal
 */
export interface FingerprintInput {
  readonly method: string
  readonly scope: string
  readonly target: string
  readonly contentType: string | undefined
  readonly body: Uint8Array
}

/**
 * The body as hashed: the canonical JSON text for JSON bodies that parse, the
 * raw bytes otherwise, with a tag so the two kinds can never collide.
 *
 * @internal
 */
export const bodyForFingerprint = (
  contentType: string | undefined,
  body: Uint8Array
): { readonly kind: "json" | "bytes"; readonly data: string | Uint8Array } => {
  if (body.length > 0 && isJsonMediaType(contentType)) {
    try {
      return { kind: "json", data: canonicalJson(decoder.decode(body)) }
    } catch {
      // not UTF-8 or not JSON: the bytes themselves
    }
  }
  return { kind: "bytes", data: body }
}

/**
 * SHA-256 (hex) of the method, scope, target and body. Fields are
 * length-prefixed, so no choice of values can shift bytes from one field into
 * another.
 *
 * @internal
 */
export const fingerprint = (input: FingerprintInput): string => {
  const body = bodyForFingerprint(input.contentType, input.body)
  // The same bytes as hashing each field's UTF-8 bytes after its byte length, written as one string: strings are
  // hashed as UTF-8 (lone surrogates become U+FFFD, as `Buffer.from` makes them, and as `byteLength` counts them).
  const head = `${prefixed(input.method)}${prefixed(input.scope)}${prefixed(input.target)}${prefixed(body.kind)}`
  if (typeof body.data === "string") return hash("sha256", `${head}${prefixed(body.data)}`, "hex")
  return createHash("sha256").update(head).update(`${body.data.length}:`).update(body.data).digest("hex")
}

const prefixed = (field: string): string => `${Buffer.byteLength(field, "utf8")}:${field}`
