import * as Duration from "effect/Duration"
import * as Option from "effect/Option"

const DELTA_SECONDS = /^\d+(\.\d+)?$/
const MONTH = "(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
const TIME = "\\d{2}:\\d{2}:\\d{2}"
// RFC 9110 §5.6.7: IMF-fixdate, then the two obsolete forms a recipient must still accept.
const IMF_FIXDATE = new RegExp(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} ${MONTH} \\d{4} ${TIME} GMT$`)
const RFC850_DATE = new RegExp(
  `^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d{2}-${MONTH}-\\d{2} ${TIME} GMT$`
)
const ASCTIME_DATE = new RegExp(`^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ${MONTH} ( \\d|\\d{2}) ${TIME} \\d{4}$`)

const parseHttpDate = (value: string, now: number): number | undefined => {
  if (IMF_FIXDATE.test(value)) return Date.parse(value)
  if (RFC850_DATE.test(value)) {
    // Two-digit years: RFC 9110 says a year more than 50 years ahead is in the past century.
    const match = /-(\d{2}) /.exec(value)
    const yy = Number(match?.[1])
    const currentYear = new Date(now).getUTCFullYear()
    let year = Math.floor(currentYear / 100) * 100 + yy
    if (year > currentYear + 50) year -= 100
    return Date.parse(value.replace(/-(\d{2}) /, `-${year} `).replace(/-/g, " "))
  }
  if (ASCTIME_DATE.test(value)) return Date.parse(`${value} GMT`)
  return undefined
}

/** @internal */
export const parseRetryAfter = (
  raw: string,
  options: { readonly now: number; readonly max: Duration.Duration }
): Option.Option<Duration.Duration> => {
  const value = raw.trim()
  if (value.length === 0 || value.length > 64) return Option.none()
  let millis: number
  if (DELTA_SECONDS.test(value)) {
    millis = Number(value) * 1000
  } else {
    const at = parseHttpDate(value, options.now)
    if (at === undefined || Number.isNaN(at)) return Option.none()
    millis = Math.max(0, at - options.now)
  }
  if (!Number.isFinite(millis)) return Option.some(options.max)
  return Option.some(Duration.min(Duration.millis(millis), options.max))
}
