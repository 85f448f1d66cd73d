/**
 * Schedules (`JobSchedule.cron`): the constructor, the checks `JobSchedule.layer` runs on each schedule (name, cron
 * expression, time zone, backfill window, queue, enqueue options), and the tick arithmetic on effect's `Cron` in the
 * schedule's time zone. Pure.
 */
import * as Cron from "effect/Cron"
import * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import type { InvalidOptionsError } from "../../../Failure.js"
import * as check from "../../../internal/options.js"
import type { Config, EnqueueOptions, JobDefinition, JobRequest } from "../../JobQueue.js"
import type { JobSchedule, Tick } from "../../JobSchedule.js"
import { checkDefinition, MAX_ATTEMPTS, PRIORITY } from "../config.js"
import { TypeId } from "./tag.js"

const COMPONENT = "JobSchedule"

/** @internal */
export const cron = <D extends JobDefinition.Any>(options: JobSchedule.Options<D>): JobSchedule<D> => ({
  ...options,
  [TypeId]: TypeId
})

/** @internal */
export const isJobSchedule = (u: unknown): u is JobSchedule.Any => typeof u === "object" && u !== null && TypeId in u

/**
 * The dedup key of a tick's job: `schedule:<name>:<ISO instant>`.
 *
 * @internal
 */
export const tickKey = (name: string, at: Date): string => `schedule:${name}:${at.toISOString()}`

// -----------------------------------------------------------------------------
// Ticks
// -----------------------------------------------------------------------------

/** What the tick arithmetic needs: the parsed expression and the zone it is read in. */
interface Timing {
  readonly cron: Cron.Cron
  readonly zone: DateTime.TimeZone
}

/** How many times `nextAfter` restarts `Cron.next` before it gives up on finding a later tick. */
const MAX_RESTARTS = 16

const cronNext = (timing: Timing, from: number): number | undefined => {
  try {
    return Cron.next(timing.cron, DateTime.unsafeMakeZoned(from, { timeZone: timing.zone })).getTime()
  } catch {
    // An expression that never matches (February 30th), or an instant out of DateTime's range.
    return undefined
  }
}

/**
 * The first tick strictly after `after` (epoch milliseconds), if there is one. `Cron.next` can answer an instant
 * earlier than its start inside a repeated hour (the autumn DST change: from 01:10 of the second pass it answers
 * 01:30 of the first); the search then goes on from that answer, so the ticks are always the one sequence that the
 * expression walks from any earlier instant.
 *
 * @internal
 */
export const nextAfter = (timing: Timing, after: number): Option.Option<number> => {
  let from = after
  for (let restart = 0; restart < MAX_RESTARTS; restart++) {
    const next = cronNext(timing, from)
    if (next === undefined) return Option.none()
    if (next > after) return Option.some(next)
    from = next
  }
  return Option.none()
}

/**
 * The ticks in `(after, upTo]`, oldest first, at most `limit` of them.
 *
 * @internal
 */
export const ticksIn = (timing: Timing, after: number, upTo: number, limit: number): ReadonlyArray<number> => {
  const ticks: Array<number> = []
  let next = nextAfter(timing, after)
  while (Option.isSome(next) && next.value <= upTo && ticks.length < limit) {
    ticks.push(next.value)
    next = nextAfter(timing, next.value)
  }
  return ticks
}

// -----------------------------------------------------------------------------
// Checking a schedule
// -----------------------------------------------------------------------------

/**
 * A schedule as `JobSchedule.layer` runs it: validated, its expression parsed in its zone.
 *
 * @internal
 */
export interface Resolved extends Timing {
  readonly name: string
  /** The expression as given, or rebuilt from a `Cron` value's fields (what the store records, for operators). */
  readonly expression: string
  /** The zone's name (`UTC`, `Europe/Paris`) or offset (`+02:00`). */
  readonly timeZone: string
  readonly backfill: Duration.Duration
  /** The queue its jobs go to. */
  readonly queue: string
  /** The enqueue request of a tick's job (calls the schedule's `payload`, which may throw). */
  readonly request: (tick: Tick) => JobRequest
}

const UTC = DateTime.zoneUnsafeMakeNamed("UTC")

const field = (option: string): check.Field => ({ component: COMPONENT, option })

/** A `Cron` value's fields as an expression with six fields (seconds first), for the record. */
const expressionOf = (value: Cron.Cron): string =>
  [value.seconds, value.minutes, value.hours, value.days, value.months, value.weekdays]
    .map((values) => (values.size === 0 ? "*" : [...values].join(",")))
    .join(" ")

const zoneOf = (
  at: string,
  option: string | DateTime.TimeZone | undefined,
  own: Option.Option<DateTime.TimeZone>
): Either.Either<DateTime.TimeZone, InvalidOptionsError> => {
  if (option === undefined) return Either.right(Option.getOrElse(own, () => UTC))
  const zone = DateTime.isTimeZone(option)
    ? Option.some(option)
    : typeof option === "string"
    ? DateTime.zoneFromString(option)
    : Option.none()
  if (Option.isNone(zone)) {
    return Either.left(
      check.invalid(field(`${at}.timeZone`), option, "an IANA time zone (Europe/Paris) or an offset (+02:00)")
    )
  }
  if (Option.isSome(own) && DateTime.zoneToString(own.value) !== DateTime.zoneToString(zone.value)) {
    return Either.left(
      check.invalid(
        field(`${at}.timeZone`),
        option,
        `the time zone of the Cron value (${DateTime.zoneToString(own.value)}) or none`
      )
    )
  }
  return Either.right(zone.value)
}

const timingOf = (
  at: string,
  schedule: JobSchedule.Any
): Either.Either<Timing & { readonly expression: string }, InvalidOptionsError> => {
  const given = schedule.cron
  if (Cron.isCron(given)) {
    return Either.map(zoneOf(at, schedule.timeZone, given.tz), (zone) => ({
      cron: given,
      zone,
      expression: expressionOf(given)
    }))
  }
  if (typeof given !== "string") {
    return Either.left(check.invalid(field(`${at}.cron`), given, "a cron expression or a Cron value"))
  }
  return Either.flatMap(zoneOf(at, schedule.timeZone, Option.none()), (zone) =>
    Either.match(Cron.parse(given, zone), {
      onLeft: (error) => Either.left(check.invalid(field(`${at}.cron`), given, `a cron expression (${error.message})`)),
      onRight: (parsed) => Either.right({ cron: parsed, zone, expression: given.trim() })
    }))
}

const enqueueOptions = (
  at: string,
  schedule: JobSchedule.Any
): Either.Either<Pick<EnqueueOptions, "priority" | "maxAttempts">, InvalidOptionsError> =>
  Either.gen(function*() {
    const options: { priority?: number; maxAttempts?: number } = {}
    if (schedule.priority !== undefined) {
      options.priority = yield* check.number(field(`${at}.priority`), schedule.priority, { ...PRIORITY, integer: true })
    }
    if (schedule.maxAttempts !== undefined) {
      options.maxAttempts = yield* check.number(field(`${at}.maxAttempts`), schedule.maxAttempts, {
        min: 1,
        max: MAX_ATTEMPTS,
        integer: true
      })
    }
    return options
  })

const resolve = (
  schedule: JobSchedule.Any,
  index: number,
  config: Config,
  now: number
): Either.Either<Resolved, InvalidOptionsError> =>
  Either.gen(function*() {
    const at = `schedules[${index}]`
    if (!isJobSchedule(schedule)) {
      return yield* Either.left(check.invalid(field(at), schedule, "a schedule from JobSchedule.cron"))
    }
    const name = yield* check.name(field(`${at}.name`), schedule.name)
    const timing = yield* timingOf(at, schedule)
    if (Option.isNone(nextAfter(timing, now))) {
      return yield* Either.left(
        check.invalid(field(`${at}.cron`), timing.expression, "an expression with a tick to come")
      )
    }
    const backfill = yield* check.duration(field(`${at}.backfill`), schedule.backfill ?? 0)
    const definition = yield* Either.mapLeft(
      checkDefinition(schedule.job, `${at}.job`),
      (error) => check.invalid(field(error.option), error.value, error.expected)
    )
    const queue = schedule.queue ?? definition.queue
    if (!config.queues.has(queue)) {
      return yield* Either.left(
        check.invalid(field(`${at}.queue`), queue, `a configured queue (${[...config.queues.keys()].join(", ")})`)
      )
    }
    if (typeof schedule.payload !== "function") {
      return yield* Either.left(check.invalid(field(`${at}.payload`), schedule.payload, "a function of the tick"))
    }
    const options = yield* enqueueOptions(at, schedule)
    const payload = schedule.payload
    return {
      ...timing,
      name,
      timeZone: DateTime.zoneToString(timing.zone),
      backfill,
      queue,
      request: (tick: Tick): JobRequest => ({
        definition,
        payload: payload(tick),
        options: {
          ...options,
          queue,
          runAt: tick.at,
          // Belt and braces: the store's last tick is what makes a tick enqueue once. The key holds after the job
          // died too, and a schedule whose payload changed since finds its tick's job rather than a conflict.
          dedup: { key: tickKey(name, tick.at), onConflict: "ignore", keepAfterDeath: true }
        }
      })
    }
  })

/**
 * Checks every schedule against the queue's configuration; names must be distinct.
 *
 * @internal
 */
export const resolveAll = (
  schedules: ReadonlyArray<JobSchedule.Any>,
  config: Config,
  now: number
): Either.Either<ReadonlyArray<Resolved>, InvalidOptionsError> =>
  Either.gen(function*() {
    // Read into a boolean: `Array.isArray` would narrow the typed list to `any[]`.
    const isList: boolean = Array.isArray(schedules)
    if (!isList) {
      return yield* Either.left(check.invalid(field("schedules"), schedules, "an array of schedules"))
    }
    const names = new Set<string>()
    const resolved: Array<Resolved> = []
    for (const [index, schedule] of schedules.entries()) {
      const one = yield* resolve(schedule, index, config, now)
      if (names.has(one.name)) {
        return yield* Either.left(check.invalid(field(`schedules[${index}].name`), one.name, "a name listed once"))
      }
      names.add(one.name)
      resolved.push(one)
    }
    return resolved
  })
