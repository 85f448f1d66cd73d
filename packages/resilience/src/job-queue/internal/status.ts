/**
 * A job's public status from its stored state, and how failure causes are described and cut before they are stored.
 * Pure; both backends use it.
 */
import type { JobStatus } from "../JobQueue.js"

/**
 * A job's public status from its stored state (pure; both backends use it).
 * A ready job that has been attempted is `retrying` whether or not its
 * backoff has elapsed; one that has not is `queued` when due, else `scheduled`.
 *
 * @internal
 */
export const statusOf = (
  state: StoredState,
  attempt: number,
  runAt: number,
  now: number
): JobStatus => {
  switch (state) {
    case "ready":
      return attempt > 0 ? "retrying" : runAt > now ? "scheduled" : "queued"
    case "running":
      return "running"
    case "succeeded":
      return "succeeded"
    case "dead":
      return "dead"
    case "cancelled":
      return "cancelled"
  }
}

/** @internal */
export type StoredState = "ready" | "running" | "succeeded" | "dead" | "cancelled"

/** The stored states a job can still be cancelled in, and the public status of each. @internal */
export const cancellableStatusOf = (
  state: "ready" | "running",
  attempt: number,
  runAt: number,
  now: number
): "queued" | "scheduled" | "retrying" | "running" =>
  state === "running" ? "running" : attempt > 0 ? "retrying" : runAt > now ? "scheduled" : "queued"

/** Causes are cut to this many characters before they are stored. @internal */
export const MAX_CAUSE = 8192

/** @internal */
export const truncate = (text: string, max: number): string => text.length <= max ? text : `${text.slice(0, max - 1)}…`

/** The message of an unknown cause. @internal */
export const describe = (cause: unknown): string => {
  if (cause instanceof Error) return cause.message
  if (typeof cause === "object" && cause !== null && "message" in cause && typeof cause.message === "string") {
    return cause.message
  }
  return String(cause)
}
