/**
 * A pipeline's configuration read through effect's `Config`.
 *
 * The fields to read are the leaves of the schema's encoded form, walked once:
 * the variable names can never drift from the schema. Each leaf is one
 * `Config.string` under `Config.nested` parts in CONSTANT_CASE (`circuitBreaker`
 * ▸ `CIRCUIT_BREAKER`), so with the environment's `_` delimiter
 * `circuitBreaker.failureThreshold` of `payments` is
 * `PAYMENTS_CIRCUIT_BREAKER_FAILURE_THRESHOLD`. Values arrive as text: a leaf
 * that accepts numbers gets numeric text as a number and a boolean leaf gets
 * `true`/`false` as booleans; anything else is left as text for the schema to
 * accept or reject with a message naming the field and the variable.
 *
 * @internal
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as AST from "effect/SchemaAST"
import { constantCase, NUMBER } from "../../internal/configText.js"
import type * as Pipeline from "../Pipeline.js"
import * as schema from "./schema.js"

/** A field of the configuration as the environment holds it. */
interface Leaf {
  readonly path: ReadonlyArray<string>
  readonly numeric: boolean
  readonly boolean: boolean
}

const leavesOf = (ast: AST.AST, path: ReadonlyArray<string>): ReadonlyArray<Leaf> => {
  const encoded = AST.encodedAST(ast)
  if (AST.isTypeLiteral(encoded)) {
    return encoded.propertySignatures.flatMap((property) =>
      typeof property.name === "string" ? leavesOf(property.type, [...path, property.name]) : []
    )
  }
  const members = AST.isUnion(encoded) ? encoded.types : [encoded]
  return [{
    path,
    numeric: members.some((member) =>
      AST.isNumberKeyword(member) || (AST.isLiteral(member) && typeof member.literal === "number")
    ),
    boolean: members.some(AST.isBooleanKeyword)
  }]
}

/** Every field of the configuration, in the schema's order. */
const leaves: ReadonlyArray<Leaf> = leavesOf(schema.ConfigSchema.ast, [])

const coerce = (leaf: Leaf, text: string): unknown => {
  if (leaf.numeric && NUMBER.test(text)) return Number(text)
  if (leaf.boolean) {
    const lower = text.trim().toLowerCase()
    if (lower === "true") return true
    if (lower === "false") return false
  }
  return text
}

const leafConfig = (parts: ReadonlyArray<string>): Config.Config<Option.Option<string>> => {
  const last = parts[parts.length - 1] ?? ""
  let config = Config.string(last)
  for (let i = parts.length - 2; i >= 0; i--) config = Config.nested(config, parts[i] ?? "")
  return Config.option(config)
}

/** Sets `value` at `path` in `target`, creating the objects on the way. */
const assign = (target: Record<string, unknown>, path: ReadonlyArray<string>, value: unknown): void => {
  let node = target
  for (const [index, key] of path.entries()) {
    if (index === path.length - 1) {
      node[key] = value
      return
    }
    const existing = node[key]
    const next: Record<string, unknown> = typeof existing === "object" && existing !== null && !Array.isArray(existing)
      ? { ...existing }
      : {}
    node[key] = next
    node = next
  }
}

/** @internal */
export const config = (
  name?: string
): Effect.Effect<Pipeline.Config, Pipeline.InvalidPipelineConfigError | ConfigError.ConfigError> =>
  Effect.suspend(() => {
    const prefix = name === undefined ? [] : [constantCase(name)]
    const fields = leaves.filter((leaf) => !(name !== undefined && leaf.path.join(".") === "name"))
    const variables = new Map(fields.map((leaf) => [leaf.path.join("."), [...prefix, ...leaf.path.map(constantCase)]]))
    const reads = fields.map((leaf) => leafConfig(variables.get(leaf.path.join(".")) ?? []))
    return Effect.flatMap(Config.all(reads), (values) => {
      const raw: Record<string, unknown> = name === undefined ? {} : { name }
      for (const [index, value] of values.entries()) {
        const leaf = fields[index]
        if (leaf !== undefined && Option.isSome(value)) assign(raw, leaf.path, coerce(leaf, value.value))
      }
      return schema.decode(raw, "the environment", (path) => {
        const exact = variables.get(path.join("."))
        if (exact !== undefined) return exact.join("_")
        // A section's own issue (a cross-field rule, a missing field): name its variables' common prefix.
        return path.length === 0 ? undefined : `${[...prefix, ...path.map(constantCase)].join("_")}_*`
      })
    })
  })
