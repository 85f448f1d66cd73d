/**
 * What a test reads off a program besides its results: the log lines it wrote and the breaker counts it made.
 */
import * as Metrics from "@bulwark/resilience/Metrics"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"

/** A logger layer keeping every line as `"<LEVEL> <message>"`, and the lines it kept. */
export const captureLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    lines.push(`${logLevel.label} ${Array.isArray(message) ? message.join(" ") : String(message)}`)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
}

/** `bulwark_circuit_breaker_calls_total{breaker, outcome}` as this process counted it. */
export const breakerCalls = (breaker: string, outcome: string): Effect.Effect<number> =>
  Effect.map(
    Metric.value(Metric.tagged(Metric.tagged(Metrics.circuitBreakerCalls, "breaker", breaker), "outcome", outcome)),
    (state) => state.count
  )
