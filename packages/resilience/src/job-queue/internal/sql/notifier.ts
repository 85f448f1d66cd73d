/**
 * The notifier: wake-ups for jobs enqueued outside a transaction, sent after their commit and coalesced so that at
 * most one notification statement per store is in flight.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"

/**
 * Coalesces wake-up notifications sent after commit.
 *
 * A transaction that NOTIFYs holds PostgreSQL's global notification lock
 * from its pre-commit until its commit is flushed, so enqueues that notify
 * in their own transaction cannot share a WAL flush: they commit one after
 * another. Enqueues outside a transaction therefore commit without notifying
 * and {@link Notifier.signal} the queues they filled afterwards; a
 * notification-only transaction writes nothing but its commit record, so its
 * commit does not wait for a WAL flush: it is cheap.
 *
 * At most one notification statement is in flight per store. Queues signalled
 * while it runs are sent by the next one, which starts as soon as it returns,
 * so a signal is never lost: every signalled queue is named by a statement
 * that *starts after* the signal, hence after the commit of the jobs it
 * announces (a worker woken by it sees them). An idle store sends at once;
 * a busy one sends one statement per round trip whatever the enqueue rate.
 *
 * @internal
 */
export interface Notifier {
  /** Announces queues that got new due jobs, already committed. Never waits for the notification itself. */
  readonly signal: (queues: Iterable<string>) => Effect.Effect<void>
}

/**
 * `send` notifies the given queues (one statement); its failures are logged
 * and dropped (workers poll as a fallback). Sends run in `scope`.
 *
 * @internal
 */
export const makeNotifier = (
  send: (queues: ReadonlyArray<string>) => Effect.Effect<void, unknown>
): Effect.Effect<Notifier, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const pending = new Set<string>()
    let sending = false

    // Taking the pending set and deciding to stop happen in one synchronous step, so a signal raised meanwhile
    // either lands in this batch, or in a later one, or finds `sending` false and starts a new drain.
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (pending.size === 0) {
        sending = false
        return Effect.void
      }
      const queues = [...pending]
      pending.clear()
      return send(queues).pipe(
        Effect.catchAllCause((cause) =>
          Effect.logWarning(`Could not send job wake-ups for ${queues.join(", ")}; workers will poll`, cause)
        ),
        Effect.zipRight(drain)
      )
    })

    const signal = (queues: Iterable<string>): Effect.Effect<void> =>
      Effect.suspend(() => {
        for (const queue of queues) pending.add(queue)
        if (sending || pending.size === 0) return Effect.void
        sending = true
        return Effect.asVoid(Effect.forkIn(drain, scope))
      })

    return { signal }
  })
