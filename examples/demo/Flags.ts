/**
 * The demo's command line: `--duration`, `--rate`, `--short`, `--serve`,
 * `--port`, `--verbose`, parsed by `@effect/cli` and resolved into one
 * validated {@link DemoConfig}.
 */
import * as Options from "@effect/cli/Options"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Either from "effect/Either"
import * as Option from "effect/Option"

/** Everything a run needs to know, validated. */
export interface DemoConfig {
  /** How long traffic runs (warm-up, outage, recovery); the drain comes after. */
  readonly duration: Duration.Duration
  /** Logical payments started per second. */
  readonly rate: number
  /** CI mode: shorter defaults, same story. */
  readonly short: boolean
  /** Keep the service running after the report, for Prometheus and Grafana. */
  readonly serve: boolean
  /** The payments service's port; 0 picks a free one. */
  readonly port: number
  /** The longest the drain waits for pending orders and queued jobs. */
  readonly drainBound: Duration.Duration
  /** Show the service's and the client's logs (they interleave with the status line). */
  readonly verbose: boolean
}

/** What the command line said, before defaults and validation. */
export interface RawFlags {
  readonly duration: Option.Option<string>
  readonly rate: Option.Option<number>
  readonly short: boolean
  readonly serve: boolean
  readonly port: Option.Option<number>
  readonly verbose: boolean
}

/** A flag with a value the demo cannot use. */
export class InvalidFlag extends Data.TaggedError("InvalidFlag")<{ readonly flag: string; readonly reason: string }> {
  override get message(): string {
    return `--${this.flag}: ${this.reason}`
  }
}

/** Defaults per mode. */
export const defaults = {
  full: { duration: Duration.seconds(60), rate: 50, drainBound: Duration.seconds(30) },
  short: { duration: Duration.seconds(15), rate: 25, drainBound: Duration.seconds(20) }
} as const

/** The port `--serve` uses unless told otherwise: the target in grafana/prometheus.yml. */
export const SERVE_PORT = 3000

const MIN_DURATION = Duration.seconds(6)
const MAX_DURATION = Duration.hours(1)
const MAX_RATE = 500

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

/**
 * `"60s"`, `"1500ms"`, `"2m"`, `"1h"`, a bare number of seconds (`"45"`), or
 * Effect's own spelling (`"30 seconds"`).
 */
export const parseDuration = (text: string): Either.Either<Duration.Duration, InvalidFlag> => {
  const trimmed = text.trim()
  const short = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(trimmed)
  if (short !== null) {
    const amount = Number(short[1])
    const unit = UNITS[short[2] ?? "s"] ?? 1_000
    return Either.right(Duration.millis(amount * unit))
  }
  return Option.match(Duration.decodeUnknown(trimmed), {
    onNone: () =>
      Either.left(new InvalidFlag({ flag: "duration", reason: `"${text}" is not a duration (try 60s, 90s, 2m)` })),
    onSome: Either.right
  })
}

/** Applies the mode's defaults and checks ranges. */
export const resolveConfig = (raw: RawFlags): Either.Either<DemoConfig, InvalidFlag> =>
  Either.gen(function*() {
    const mode = raw.short ? defaults.short : defaults.full
    const duration = Option.isSome(raw.duration) ? yield* parseDuration(raw.duration.value) : mode.duration
    if (Duration.lessThan(duration, MIN_DURATION) || Duration.greaterThan(duration, MAX_DURATION)) {
      return yield* Either.left(
        new InvalidFlag({
          flag: "duration",
          reason: `${Duration.format(duration)} is outside 6s–1h (the outage needs time to open and close the breaker)`
        })
      )
    }
    const rate = Option.getOrElse(raw.rate, () => mode.rate)
    if (!Number.isFinite(rate) || rate < 1 || rate > MAX_RATE) {
      return yield* Either.left(
        new InvalidFlag({ flag: "rate", reason: `${rate} is outside 1–${MAX_RATE} payments/s` })
      )
    }
    const port = Option.getOrElse(raw.port, () => raw.serve ? SERVE_PORT : 0)
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      return yield* Either.left(
        new InvalidFlag({ flag: "port", reason: `${port} is not a TCP port (0 picks a free one)` })
      )
    }
    // A longer run accumulates more pending orders; give the drain time in proportion, within the mode's bound.
    const drainBound = Duration.max(mode.drainBound, Duration.times(duration, 0.5))
    return { duration, rate, short: raw.short, serve: raw.serve, port, drainBound, verbose: raw.verbose }
  })

/** The flags as `@effect/cli` options; resolve them with {@link resolveConfig}. */
export const options = {
  duration: Options.text("duration").pipe(
    Options.withDescription("How long traffic runs: 60s, 90s, 2m (default 60s, 15s with --short)"),
    Options.optional
  ),
  rate: Options.integer("rate").pipe(
    Options.withDescription(
      "Payments started per second (default 50, 25 with --short); the client slows down when the service cannot keep up"
    ),
    Options.optional
  ),
  short: Options.boolean("short").pipe(
    Options.withDescription("CI mode: 15 s of traffic at 25 payments/s, the outage compressed to match")
  ),
  serve: Options.boolean("serve").pipe(
    Options.withDescription(
      "After the report keep the service running (trickle of traffic, an outage every 2 minutes) with /metrics " +
        "for Prometheus and Grafana, until Ctrl-C"
    )
  ),
  port: Options.integer("port").pipe(
    Options.withDescription(`The payments service's port (default ${SERVE_PORT} with --serve, else a free one)`),
    Options.optional
  ),
  verbose: Options.boolean("verbose").pipe(Options.withDescription("Show the service's and the client's logs"))
}
