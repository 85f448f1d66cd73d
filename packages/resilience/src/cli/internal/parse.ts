import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import { UsageError } from "./errors.js"

const SHORT_DURATION = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)$/
const UNIT_MILLIS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000
}
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/

/**
 * `--since` takes a moment (`2026-03-01`, `2026-03-01T12:00:00Z`) or an age
 * relative to `now` (`90s`, `15m`, `2h`, `7d`, or Effect's `"2 hours"`).
 *
 * @internal
 */
export const since = (input: string, now: Date): Either.Either<Date, UsageError> => {
  const text = input.trim()
  const short = SHORT_DURATION.exec(text)
  if (short !== null) {
    const amount = Number(short[1])
    const unit = UNIT_MILLIS[short[2] ?? ""] ?? Number.NaN
    return Either.right(new Date(now.getTime() - amount * unit))
  }
  if (ISO_DATE.test(text)) {
    const at = new Date(text)
    if (!Number.isNaN(at.getTime())) return Either.right(at)
  }
  const decoded = Duration.decodeUnknown(text)
  if (decoded._tag === "Some" && Duration.isFinite(decoded.value) && !text.startsWith("-")) {
    return Either.right(new Date(now.getTime() - Duration.toMillis(decoded.value)))
  }
  return Either.left(
    new UsageError({
      message: `--since ${JSON.stringify(input)} is neither a date (2026-03-01, 2026-03-01T12:00:00Z) ` +
        `nor an age (90s, 15m, 2h, 7d)`
    })
  )
}

/**
 * `--payload` must be JSON; the job's own schema is checked again when the
 * job runs, but a typo should fail here, before anything is written.
 *
 * @internal
 */
export const payload = (input: string): Either.Either<unknown, UsageError> => {
  try {
    const parsed: unknown = JSON.parse(input)
    return Either.right(parsed)
  } catch (cause) {
    return Either.left(
      new UsageError({
        message: `--payload is not valid JSON (${cause instanceof Error ? cause.message : String(cause)})`
      })
    )
  }
}

/**
 * Serialises for `--json`: `bigint` as a string, `Date` as ISO-8601.
 *
 * @internal
 */
export const toJson = (value: unknown): string =>
  JSON.stringify(value, (_key, item: unknown) => (typeof item === "bigint" ? item.toString() : item), 2)
