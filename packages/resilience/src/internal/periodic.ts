/**
 * Background work on an interval (idempotency cleanup, job retention): one
 * fiber in the caller's scope runs the work, sleeps, and runs it again.
 *
 * - The first run is one interval after the start; runs never overlap (the
 *   next interval starts when a run ends).
 * - A failed run (a typed failure or a defect) is logged as a warning with
 *   its cause, and the next run tries again: one bad run never stops the
 *   loop.
 * - Closing the scope interrupts the fiber, also in the middle of a run.
 * - Time is the Effect `Clock`'s (`Effect.sleep`), so `TestClock.adjust`
 *   drives the loop in tests.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/** @internal */
export interface Options {
  /** Time between the end of one run and the start of the next (and before the first). */
  readonly interval: Duration.Duration
  /** What the work is called in the warning a failed run logs: `"<name> failed; trying again in <interval>"`. */
  readonly name: string
}

/**
 * Forks the loop into the caller's scope; returns once it is forked.
 *
 * @internal
 */
export const every = <A, E, R>(
  work: Effect.Effect<A, E, R>,
  options: Options
): Effect.Effect<void, never, R | Scope.Scope> => {
  const warning = `${options.name} failed; trying again in ${Duration.format(options.interval)}`
  // The loop's own interruption (its scope closing) never reaches this handler: Effect does not run failure
  // handlers on an interrupted fiber.
  const once = Effect.catchAllCause(work, (cause) => Effect.logWarning(warning, cause))
  return Effect.asVoid(Effect.forkScoped(Effect.forever(Effect.zipRight(Effect.sleep(options.interval), once))))
}
