/**
 * The log line of a breaker's transition: what happened and why, in words,
 * with the numbers as annotations.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { formatDuration } from "../../internal/format.js"
import type { State, TransitionReason } from "../CircuitBreaker.js"
import type { MachineEvent } from "./transition.js"

const describeTransition = (from: State, to: State, reason: TransitionReason, permits: number): string => {
  switch (reason._tag) {
    case "Tripped":
      return `opened: ${reason.trip.description}; half-opens in ${formatDuration(reason.openFor)}`
    case "ProbesFailed":
      return `reopened: ${reason.failures} of ${reason.successes + reason.failures} probe calls failed; ` +
        `half-opens in ${formatDuration(reason.openFor)}`
    case "ProbesTimedOut":
      return `reopened: the probes had not decided within ${formatDuration(reason.waited)} ` +
        `(${reason.successes} succeeded, ${reason.failures} failed); half-opens in ${formatDuration(reason.openFor)}`
    case "OpenElapsed":
      return `half-opened: letting ${permits} probe call${permits === 1 ? "" : "s"} through`
    case "ProbesSucceeded":
      return `closed: ${reason.successes} probe call${reason.successes === 1 ? "" : "s"} succeeded`
    case "Manual":
      return `moved from ${from} to ${to} by an operator`
    case "Reset":
      return `reset to Closed by an operator (was ${from})`
    case "FleetOpened":
      return `opened by the fleet sharing it; half-opens in ${formatDuration(reason.openFor)}`
    case "FleetClosed":
      return `closed by the fleet sharing it: its probe calls succeeded`
  }
}

const transitionAnnotations = (reason: TransitionReason): Record<string, unknown> => {
  switch (reason._tag) {
    case "Tripped":
      return {
        strategy: reason.trip.strategy,
        observed: reason.trip.observed,
        threshold: reason.trip.threshold,
        calls: reason.trip.calls,
        openForMillis: Duration.toMillis(reason.openFor)
      }
    case "ProbesFailed":
      return {
        successes: reason.successes,
        failures: reason.failures,
        openForMillis: Duration.toMillis(reason.openFor)
      }
    case "ProbesTimedOut":
      return {
        successes: reason.successes,
        failures: reason.failures,
        waitedMillis: Duration.toMillis(reason.waited),
        openForMillis: Duration.toMillis(reason.openFor)
      }
    case "ProbesSucceeded":
      return { successes: reason.successes }
    case "FleetOpened":
      return { openForMillis: Duration.toMillis(reason.openFor) }
    case "FleetClosed":
    case "OpenElapsed":
    case "Manual":
    case "Reset":
      return {}
  }
}

/** @internal */
export const logTransition = (
  name: string,
  event: Extract<MachineEvent, { readonly _tag: "Transitioned" }>,
  permits: number
): Effect.Effect<void> => {
  const message = `Circuit breaker "${name}" ${describeTransition(event.from, event.to, event.reason, permits)}`
  const log = event.to === "Open" || event.to === "ForcedOpen" || event.to === "Disabled"
    ? Effect.logWarning(message)
    : Effect.logInfo(message)
  return Effect.annotateLogs(log, {
    breaker: name,
    from: event.from,
    to: event.to,
    reason: event.reason._tag,
    ...transitionAnnotations(event.reason)
  })
}
