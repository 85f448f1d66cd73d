import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { InvalidOptionsError } from "./failureErrors.js"

/** @internal */
export type Check<A> = Either.Either<A, InvalidOptionsError>

/** @internal */
export interface Field {
  readonly component: string
  readonly option: string
}

/** @internal */
export const invalid = (field: Field, value: unknown, expected: string): InvalidOptionsError =>
  new InvalidOptionsError({ component: field.component, option: field.option, value, expected })

const NEGATIVE_STRING = /^\s*-/

/**
 * Duration.decode silently turns NaN and negative numbers into zero and throws
 * a plain Error on bad strings; options must reject both loudly instead.
 *
 * @internal
 */
export const duration = (
  field: Field,
  input: Duration.DurationInput,
  constraints: { readonly allowZero?: boolean; readonly allowInfinite?: boolean } = {}
): Check<Duration.Duration> => {
  const allowZero = constraints.allowZero ?? true
  const allowInfinite = constraints.allowInfinite ?? false
  const expected = `a ${allowZero ? "non-negative" : "positive"} ${allowInfinite ? "" : "finite "}duration`
  if (typeof input === "number" && (Number.isNaN(input) || input < 0)) {
    return Either.left(invalid(field, input, expected))
  }
  if (typeof input === "bigint" && input < 0n) return Either.left(invalid(field, input, expected))
  if (typeof input === "string" && NEGATIVE_STRING.test(input)) return Either.left(invalid(field, input, expected))
  if (Array.isArray(input) && input.some((part) => typeof part !== "number" || Number.isNaN(part) || part < 0)) {
    return Either.left(invalid(field, input, expected))
  }
  const decoded = Duration.decodeUnknown(input)
  if (decoded._tag === "None") return Either.left(invalid(field, input, expected))
  const value = decoded.value
  if (!allowInfinite && !Duration.isFinite(value)) return Either.left(invalid(field, input, expected))
  if (!allowZero && Duration.isZero(value)) return Either.left(invalid(field, input, expected))
  return Either.right(value)
}

/** @internal */
export const optionalDuration = (
  field: Field,
  input: Duration.DurationInput | undefined,
  constraints: { readonly allowZero?: boolean; readonly allowInfinite?: boolean } = {}
): Check<Duration.Duration | undefined> =>
  input === undefined ? Either.right(undefined) : duration(field, input, constraints)

/** @internal */
export const number = (
  field: Field,
  input: number,
  range: { readonly min?: number; readonly max?: number; readonly integer?: boolean; readonly allowInfinity?: boolean }
): Check<number> => {
  const min = range.min ?? -Infinity
  const max = range.max ?? Infinity
  const kind = range.integer ? "an integer" : "a number"
  const bounds = [
    Number.isFinite(min) ? `≥ ${min}` : undefined,
    Number.isFinite(max) ? `≤ ${max}` : undefined
  ].filter((bound) => bound !== undefined).join(" and ")
  const expected = `${kind}${bounds ? ` ${bounds}` : ""}${range.allowInfinity ? " (or Infinity)" : ""}`
  if (typeof input !== "number" || Number.isNaN(input)) return Either.left(invalid(field, input, expected))
  if (input === Infinity && range.allowInfinity && max === Infinity) return Either.right(input)
  if (!Number.isFinite(input)) return Either.left(invalid(field, input, expected))
  if (range.integer && !Number.isInteger(input)) return Either.left(invalid(field, input, expected))
  if (input < min || input > max) return Either.left(invalid(field, input, expected))
  return Either.right(input)
}

/** @internal */
export const name = (field: Field, input: string): Check<string> =>
  typeof input === "string" && /^[A-Za-z0-9_.:/-]{1,128}$/.test(input)
    ? Either.right(input)
    : Either.left(invalid(field, input, "1 to 128 characters of A-Z a-z 0-9 _ . : / -"))

/**
 * The limits of a bounded pass of batched deletes (idempotency cleanup, job retention): rows per batch, and batches
 * per pass. One set of ranges for every such pass.
 *
 * @internal
 */
export const batchLimits = (
  field: (option: string) => Field,
  input: { readonly batchSize: number; readonly maxBatches: number }
): Check<{ readonly batchSize: number; readonly maxBatches: number }> =>
  Either.all({
    batchSize: number(field("batchSize"), input.batchSize, { min: 1, max: 100_000, integer: true }),
    maxBatches: number(field("maxBatches"), input.maxBatches, { min: 1, max: 1_000_000, integer: true })
  })
