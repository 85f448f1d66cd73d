/**
 * Checks shared by the option parsers of this package: Prometheus durations,
 * Grafana uids, and the `InvalidOptionsError` they all throw.
 */
import * as Failure from "@bulwark/resilience/Failure"

/** @internal */
export const invalid = (component: string, option: string, value: unknown, expected: string): never => {
  throw new Failure.InvalidOptionsError({ component, option, value, expected })
}

/**
 * Prometheus' own duration grammar (`model.ParseDuration`): units from
 * largest to smallest, each at most once, so `1h30m` is one and `30m1h` is not.
 */
const DURATION = /^(?:[0-9]+y)?(?:[0-9]+w)?(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?(?:[0-9]+ms)?$/

const UNIT_SECONDS: Readonly<Record<string, number>> = {
  ms: 0.001,
  s: 1,
  m: 60,
  h: 3600,
  d: 86400,
  w: 604800,
  y: 31536000
}

/**
 * The seconds a duration of {@link isDuration} stands for.
 *
 * @internal
 */
export const seconds = (value: string): number => {
  let total = 0
  for (const [, amount, unit] of value.matchAll(/([0-9]+)(ms|s|m|h|d|w|y)/g)) {
    total += Number(amount) * (UNIT_SECONDS[unit ?? "s"] ?? 1)
  }
  return total
}

/**
 * A duration Prometheus parses, written with units (`0s`, not `0`): `30s`,
 * `5m`, `1h30m`.
 *
 * @internal
 */
export const isDuration = (value: string): boolean => value !== "" && DURATION.test(value)

/** @internal */
export const DURATION_EXPECTED = "a Prometheus duration such as 30s, 5m or 1h30m"

/** @internal */
export const POSITIVE_DURATION_EXPECTED = "a Prometheus duration above zero, such as 30s, 5m or 1h30m"

/**
 * `value` when it is a Prometheus duration (above zero unless `zero` is
 * allowed: a `for` may be `0s`, a window or a target may not); throws
 * `InvalidOptionsError` otherwise.
 *
 * @internal
 */
export const duration = (
  component: string,
  option: string,
  value: string,
  allow: { readonly zero?: boolean } = {}
): string => {
  if (typeof value === "string" && isDuration(value) && (allow.zero === true || seconds(value) > 0)) return value
  return invalid(component, option, value, allow.zero === true ? DURATION_EXPECTED : POSITIVE_DURATION_EXPECTED)
}

/** Grafana's rule for a datasource or dashboard uid. */
const UID = /^[A-Za-z0-9_-]{1,40}$/

/** @internal */
export const datasourceUid = (component: string, value: string): string =>
  typeof value === "string" && UID.test(value)
    ? value
    : invalid(component, "datasourceUid", value, "a Grafana uid of 1 to 40 characters of A-Z a-z 0-9 _ -")
