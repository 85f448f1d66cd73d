/**
 * A small YAML writer for the files this package generates (alert rules,
 * provisioning, prometheus.yml): maps, lists, strings, numbers and booleans.
 * The package may not take a YAML dependency, and this subset is easy to get
 * exactly right: strings are plain only when nothing could read them as
 * another type, multi-line strings are literal blocks, everything else is a
 * JSON string (a valid YAML double-quoted scalar). promtool parses every
 * file it writes in the tests.
 */

/** @internal */
export type Value = string | number | boolean | ReadonlyArray<Value> | { readonly [key: string]: Value | undefined }

const PLAIN = /^[A-Za-z_/][A-Za-z0-9_./:-]*$|^[0-9]+(?:ms|s|m|h|d|w|y)$/
const SPECIAL = /^(?:true|false|yes|no|on|off|null|y|n)$/i

const isList = (value: Value): value is ReadonlyArray<Value> => Array.isArray(value)

const scalar = (value: string | number | boolean): string => {
  if (typeof value === "boolean") return String(value)
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new TypeError(`YAML: ${value} is not a finite number`)
    return String(value)
  }
  if (PLAIN.test(value) && !SPECIAL.test(value)) return value
  // PromQL is full of double quotes: single-quoted YAML keeps it readable (only ' is escaped, as '')
  if (value.includes("\"") && /^[\x20-\x7e]*$/.test(value)) return `'${value.replaceAll("'", "''")}'`
  return JSON.stringify(value)
}

/** A literal block keeps multi-line PromQL readable; only when every line survives it unchanged. */
const block = (value: string, indent: string): string | undefined => {
  if (!value.includes("\n")) return undefined
  const lines = value.split("\n")
  const first = lines[0] ?? ""
  if (first === "" || first.startsWith(" ") || lines.some((line) => /[ \t]$/.test(line) || line.includes("\t"))) {
    return undefined
  }
  if (value.endsWith("\n")) return undefined
  return `|-\n${lines.map((line) => (line === "" ? "" : `${indent}${line}`)).join("\n")}`
}

const entries = (value: { readonly [key: string]: Value | undefined }) =>
  Object.entries(value).filter((entry): entry is [string, Value] => entry[1] !== undefined)

const isEmptyCollection = (value: Value): boolean =>
  typeof value === "object" && (isList(value) ? value.length === 0 : entries(value).length === 0)

const inline = (value: Value, indent: string): string | undefined => {
  if (typeof value === "string") return block(value, indent) ?? scalar(value)
  if (typeof value === "number" || typeof value === "boolean") return scalar(value)
  if (isEmptyCollection(value)) return isList(value) ? "[]" : "{}"
  return undefined
}

const lines = (value: Value, indent: string): Array<string> => {
  if (isList(value)) {
    const out: Array<string> = []
    for (const item of value) {
      const simple = inline(item, `${indent}  `)
      if (simple !== undefined) {
        out.push(`${indent}- ${simple}`)
        continue
      }
      const nested = lines(item, `${indent}  `)
      const [head, ...rest] = nested
      out.push(`${indent}- ${(head ?? "").slice(indent.length + 2)}`, ...rest)
    }
    return out
  }
  if (typeof value !== "object") return [`${indent}${scalar(value)}`]
  const out: Array<string> = []
  for (const [key, item] of entries(value)) {
    const name = scalar(key)
    const simple = inline(item, `${indent}  `)
    if (simple !== undefined) out.push(`${indent}${name}: ${simple}`)
    else out.push(`${indent}${name}:`, ...lines(item, `${indent}  `))
  }
  return out
}

/**
 * The YAML document for `value`, after `comment` lines (each prefixed `# `).
 *
 * @internal
 */
export const stringify = (value: Value, comment: ReadonlyArray<string> = []): string =>
  [...comment.map((line) => (line === "" ? "#" : `# ${line}`)), ...lines(value, "")].join("\n") + "\n"
