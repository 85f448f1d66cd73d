import * as Duration from "effect/Duration"

/**
 * A duration for a human, in error messages and logs: `250ms`, `1.5s`, or
 * `never` for an infinite one.
 *
 * @internal
 */
export const formatDuration = (duration: Duration.Duration): string => {
  const millis = Duration.toMillis(duration)
  if (!Number.isFinite(millis)) return "never"
  return millis < 1000 ? `${Math.round(millis)}ms` : `${Number((millis / 1000).toFixed(3))}s`
}
