/**
 * Reading the `Idempotency-Key` request header.
 *
 * draft-ietf-httpapi-idempotency-key-header makes the value an RFC 8941
 * sf-string (`"8e03978e-…"`), while Stripe and most clients send a bare
 * token (`8e03978e-…`). Both are accepted; the key is the unquoted content.
 * A key is 1 to 255 printable ASCII characters (0x20–0x7E): anything else is
 * refused before it reaches a store, so a key can never smuggle control
 * characters or non-ASCII bytes into a lookup, a log line or a problem body.
 *
 * Anything else that looks like structured-field syntax is refused rather
 * than read as a different key: a list (`k-1, k-2`, also what a header sent
 * twice arrives as), parameters (`"k-1";a=1`), an unbalanced quote. A bare
 * key holds none of `" , ; \ ( )` and no space: such a key is sent quoted.
 */

/** @internal */
export const MAX_KEY_LENGTH = 255

/** @internal */
export type KeyCheck =
  | { readonly _tag: "Missing" }
  | { readonly _tag: "Invalid"; readonly reason: string }
  | { readonly _tag: "Valid"; readonly key: string }

const missing: KeyCheck = { _tag: "Missing" }

const invalid = (reason: string): KeyCheck => ({ _tag: "Invalid", reason })

const hex = (code: number): string => `0x${code.toString(16).toUpperCase().padStart(2, "0")}`

/** The first character outside 0x20–0x7E, as a reason; `undefined` when every character is printable ASCII. */
const nonPrintable = (value: string): string | undefined => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code > 0x7e) {
      return code < 0x20 || code === 0x7f
        ? `contains a control character (${hex(code)}) at position ${i + 1}`
        : `contains a non-ASCII character at position ${i + 1}`
    }
  }
  return undefined
}

/** Unquotes an sf-string (RFC 8941 §4.2.5): only `\"` and `\\` are valid escapes. */
const unquote = (value: string): string | undefined => {
  let out = ""
  for (let i = 1; i < value.length - 1; i++) {
    const char = value[i]
    if (char === "\\") {
      const next = value[i + 1]
      if (i + 1 >= value.length - 1 || (next !== "\"" && next !== "\\")) return undefined
      out += next
      i++
    } else if (char === "\"") {
      return undefined
    } else {
      out += char
    }
  }
  return out
}

/** Why a bare (unquoted) key is refused; `undefined` when it is fine. */
const bareKeyProblem = (value: string): string | undefined => {
  if (value.includes(",")) return "holds a list (was it sent more than once?); send one key."
  if (value.includes(";")) return "has parameters; send the key alone."
  const special = /[ "\\()]/.exec(value)
  return special === null
    ? undefined
    : `contains ${special[0] === " " ? "a space" : `'${special[0]}'`} at position ${special.index + 1}; ` +
      "quote such a key as a structured-field string."
}

/**
 * Checks a raw header value. `undefined` (no header) is `Missing`; an empty
 * value is `Invalid`, not missing: the client meant to send a key.
 *
 * @internal
 */
export const parseKey = (raw: string | undefined): KeyCheck => {
  if (raw === undefined) return missing
  const bad = nonPrintable(raw)
  if (bad !== undefined) return invalid(`The Idempotency-Key header ${bad}; a key is printable ASCII only.`)
  let key = raw
  if (raw.startsWith("\"")) {
    const unquoted = raw.length >= 2 && raw.endsWith("\"") ? unquote(raw) : undefined
    if (unquoted === undefined) {
      return invalid(
        "The Idempotency-Key header is not one structured-field string (RFC 8941): " +
          "an unbalanced quote, or parameters or a list after it."
      )
    }
    key = unquoted
  } else {
    const bare = bareKeyProblem(raw)
    if (bare !== undefined) return invalid(`The Idempotency-Key header ${bare}`)
  }
  if (key.length === 0) return invalid("The Idempotency-Key header is empty.")
  if (key.length > MAX_KEY_LENGTH) {
    return invalid(
      `The Idempotency-Key header is ${key.length} characters long; a key has at most ${MAX_KEY_LENGTH}.`
    )
  }
  return { _tag: "Valid", key }
}
