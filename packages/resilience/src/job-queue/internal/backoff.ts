/**
 * The retry delay of a failed attempt (`JobQueue.retryDelay`). Pure.
 */
import * as Duration from "effect/Duration"
import type { RetryPolicy } from "../JobQueue.js"

/**
 * `min(base · 2^(attempt-1) · (1 + jitter · (2·random − 1)), cap)`: the first
 * retry waits about `base`, each later one about twice as long, and the cap
 * bounds the jittered value (so no delay ever exceeds it).
 *
 * @internal
 */
export const retryDelay = (policy: RetryPolicy, attempt: number, random: number): Duration.Duration => {
  const base = Duration.toMillis(policy.base)
  const cap = Duration.toMillis(policy.cap)
  // 2^60 ms is far past any cap; clamping the exponent keeps the arithmetic finite.
  const exponent = Math.min(Math.max(attempt - 1, 0), 60)
  const draw = Math.min(Math.max(random, 0), 1)
  const jittered = base * 2 ** exponent * (1 + policy.jitter * (2 * draw - 1))
  return Duration.millis(Math.max(0, Math.min(jittered, cap)))
}
