/**
 * In-memory heartbeats: extends the leases still held.
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { JobId } from "../../JobQueue.js"
import type { Lease } from "../../JobStore.js"
import { holds, type State, withNow } from "./state.js"

/** @internal */
export const heartbeat = (state: State) =>
(
  leases: ReadonlyArray<Lease>,
  lease: Duration.Duration
): Effect.Effect<ReadonlyArray<JobId>> =>
  withNow(state, (now) =>
    leases.flatMap((held) => {
      const job = holds(state, held)
      if (job === undefined) return []
      job.leaseExpiresAt = now + Duration.toMillis(lease)
      return [held.id]
    }))
