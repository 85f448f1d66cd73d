/**
 * One execution of a claimed key: the handler raced against the heartbeat that keeps its lease, then its outcome
 * settled in the store.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as Failure from "../../Failure.js"
import type * as Idempotency from "../Idempotency.js"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import { IdempotencyConflictError, type IdempotencyStoreError } from "./errors.js"
import { MAX_RETRY_AFTER_MS } from "./record.js"
import type { Named, Valid } from "./runOptions.js"
import { plan } from "./storedResult.js"

/**
 * Store writes after the handler ran are retried briefly (twice, after 50 then 100 ms): a lost write means the lease
 * must lapse first. `Effect.retry` with `exponential(50 ms) ∩ recurs(2)`, written so that a first attempt that
 * succeeds (nearly all of them) does not pay for setting up a schedule.
 */
const FIRST_WRITE_RETRY = Duration.millis(50)
const laterWriteRetries = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(1)))
const retryWrite = <A, R>(
  write: Effect.Effect<A, IdempotencyStoreError, R>
): Effect.Effect<A, IdempotencyStoreError, R> =>
  Effect.catchAll(write, (error) =>
    // Inside an aborted transaction every write fails again: only running the whole transaction again helps.
    error.abortedTransaction === true
      ? Effect.fail(error)
      : Effect.zipRight(Effect.sleep(FIRST_WRITE_RETRY), Effect.retry(write, laterWriteRetries)))

/**
 * A settling write (completion, release) that failed inside the caller's transaction aborted it: a COMMIT now would
 * silently roll back the handler's writes and the claim with it, so the caller must not get a success. It gets the
 * store's error (`abortedTransaction`: run the whole transaction again); a failure outcome stays the caller's (it
 * rolls the transaction back anyway).
 */
const aborted = <A, X>(
  error: IdempotencyStoreError,
  then: Effect.Effect<Idempotency.Result<A>, X>
): Effect.Effect<Idempotency.Result<A>, X | IdempotencyStoreError> =>
  Effect.flatMap(
    Effect.exit(then),
    (exit): Effect.Effect<Idempotency.Result<A>, X | IdempotencyStoreError> =>
      Exit.isSuccess(exit) ? Effect.fail(error) : exit
  )

/** @internal */
export const leaseLost = (valid: Named): IdempotencyConflictError =>
  new IdempotencyConflictError({
    scope: valid.scope,
    keyHash: valid.keyHash,
    reason: "LeaseLost",
    retryAfter: Duration.millis(MAX_RETRY_AFTER_MS)
  })

/**
 * Runs the handler under a claimed lease: a heartbeat fiber renews the lease while it runs (and ends the race when
 * the lease is lost), then the outcome is settled: stored (fenced) or released. With `transactional`, the handler
 * and the completion of a stored success share one transaction of the store's database.
 *
 * @internal
 */
export const execute = <A, AI, E, EI, R>(
  valid: Valid<A, AI, E, EI>,
  store: IdempotencyStore.Service,
  lease: IdempotencyStore.Lease,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R> => {
  const execution: Idempotency.Execution = {
    scope: valid.scope,
    partition: valid.partition,
    key: valid.key,
    attempt: lease.attempt,
    recovery: lease.recovery
  }
  const interval = Duration.millis(Math.max(1, Math.floor(Duration.toMillis(valid.lease) / 3)))

  // Renews the lease every third of it; returns (ending the race below) only when the lease is no longer ours.
  // A failed heartbeat is logged and tried again next time: the lease may still hold.
  const heartbeat: Effect.Effect<void> = Effect.sleep(interval).pipe(
    Effect.zipRight(
      store.heartbeat(lease).pipe(
        Effect.catchAll((error) =>
          Effect.as(Effect.logWarning("Idempotency heartbeat failed; the lease may lapse", error), true)
        )
      )
    ),
    Effect.repeat({ while: (held) => held }),
    Effect.asVoid
  )

  // Fails only when the release aborted the caller's transaction (see `aborted`).
  const release: Effect.Effect<void, IdempotencyStoreError> = retryWrite(store.release(lease)).pipe(
    Effect.catchAll((error) =>
      error.abortedTransaction === true
        ? Effect.fail(error)
        : Effect.logWarning("Idempotency release failed; the key stays claimed until its lease lapses", error)
    ),
    Effect.asVoid
  )
  const releaseQuietly = Effect.ignore(release)

  // A completion that cannot be written (the store is down) does not take the handler's answer from this caller:
  // the side effects happened, and an error would only invite a retry that repeats them at once. The key stays
  // claimed until its lease lapses; a repeat after that runs again as a recovery. A fenced completion (another
  // execution took the key over) is a conflict: the key's answer is the newer execution's.
  const complete = (result: IdempotencyStore.StoredResult) =>
    retryWrite(store.complete(lease, result)).pipe(
      Effect.catchAll((error) =>
        error.abortedTransaction === true ? Effect.fail(error) : Effect.as(
          Effect.logWarning(
            "Idempotency completion failed; the caller gets the handler's result, but it was not stored: a repeat runs again (as a recovery) once the lease lapses",
            error
          ),
          true
        )
      ),
      Effect.flatMap((written) => written ? Effect.void : Effect.fail(leaseLost(valid)))
    )

  // `complete` fails with a lost lease (the caller's answer) or an aborted transaction (see `aborted`).
  const completeThen = <X>(
    result: IdempotencyStore.StoredResult,
    then: Effect.Effect<Idempotency.Result<A>, X>
  ): Effect.Effect<Idempotency.Result<A>, X | IdempotencyConflictError | IdempotencyStoreError> =>
    Effect.matchEffect(complete(result), {
      onFailure: (error): Effect.Effect<Idempotency.Result<A>, X | IdempotencyConflictError | IdempotencyStoreError> =>
        error instanceof IdempotencyConflictError ? Effect.fail(error) : aborted(error, then),
      onSuccess: () => then
    })

  const settle = (exit: Exit.Exit<A, E>, classifier: Failure.Classifier) => {
    const settlement = plan(valid, exit, classifier, lease.attempt)
    switch (settlement._tag) {
      case "Release":
        return Effect.matchEffect(release, {
          onFailure: (error) => aborted(error, settlement.then),
          onSuccess: () => settlement.then
        })
      case "Store":
        return completeThen(settlement.stored, settlement.then)
    }
  }

  // The handler and the completion of a stored success in one transaction (see `Options.transactional`). Anything
  // else rolls the handler's writes back and is settled after the rollback, as without a transaction. Succeeds with
  // what the caller gets.
  const atomically = (
    transaction: NonNullable<IdempotencyStore.Service["transaction"]>,
    classifier: Failure.Classifier,
    completing: { value: boolean }
  ): Effect.Effect<Settled<A, E>, never, R> => {
    const inside: Effect.Effect<Settled<A, E>, RolledBack<A, E>, R> = Effect.flatMap(
      Effect.exit(Effect.suspend(() => handler(execution))),
      (exit) => {
        const settlement = Exit.isSuccess(exit) ? plan(valid, exit, classifier, lease.attempt) : undefined
        if (settlement === undefined || settlement._tag === "Release") return Effect.fail(new RolledBack(exit))
        completing.value = true
        return Effect.flatMap(
          store.complete(lease, settlement.stored),
          (written): Effect.Effect<Settled<A, E>, RolledBack<A, E>> =>
            written ? Effect.succeed(settlement.then) : Effect.fail(new RolledBack<A, E>(undefined))
        ).pipe(
          // A failed completion is the transaction's failure (it rolls back), like a failed BEGIN or COMMIT.
          Effect.catchAll((error) =>
            error instanceof RolledBack ? Effect.fail(error) : Effect.fail(new RolledBack<A, E>(undefined, error))
          )
        )
      }
    )
    return transaction(inside).pipe(
      Effect.catchAll((failure): Effect.Effect<Settled<A, E>> => {
        if (failure instanceof RolledBack) {
          if (failure.exit !== undefined) return Effect.succeed(settle(failure.exit, classifier))
          if (failure.storeError === undefined) return Effect.succeed(Effect.fail(leaseLost(valid)))
          return Effect.succeed(Effect.zipRight(releaseQuietly, Effect.fail(failure.storeError)))
        }
        // BEGIN or COMMIT failed: the writes are rolled back, or (a connection lost during COMMIT) unknown.
        // Releasing is right either way: it is fenced, so a committed completion stays.
        return Effect.succeed(Effect.zipRight(releaseQuietly, Effect.fail(failure)))
      })
    )
  }

  return Effect.flatMap(
    Failure.CurrentClassifier,
    (classifier) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const transaction = valid.transactional ? store.transaction : undefined
          // Once a transactional completion is sent, the record's row is locked until the commit: a heartbeat then
          // waits, and answers "not held" after the commit. That must not end the race as a lost lease.
          const completing = { value: false }
          const beating = transaction === undefined
            ? heartbeat
            : Effect.zipRight(heartbeat, Effect.suspend(() => completing.value ? Effect.never : Effect.void))
          const body: Effect.Effect<Outcome<A, E>, never, R> = transaction === undefined
            ? Effect.map(Effect.exit(Effect.suspend(() => handler(execution))), (exit) => ({ _tag: "Exit", exit }))
            : Effect.map(atomically(transaction, classifier, completing), (then) => ({ _tag: "Settled", then }))
          const raced = yield* Effect.exit(restore(Effect.raceFirst(
            Effect.map(body, Option.some),
            Effect.as(beating, Option.none<Outcome<A, E>>())
          )))
          if (Exit.isFailure(raced)) {
            // Interrupted from outside (a client went away): nothing to store, let a retry run it.
            yield* releaseQuietly
            return yield* Effect.failCause(raced.cause)
          }
          if (Option.isNone(raced.value)) return yield* Effect.fail(leaseLost(valid))
          const outcome = raced.value.value
          return yield* outcome._tag === "Exit" ? settle(outcome.exit, classifier) : outcome.then
        })
      )
  ).pipe(
    Effect.annotateLogs({
      "idempotency.scope": valid.scope,
      "idempotency.key_hash": valid.keyHash,
      "idempotency.attempt": lease.attempt
    })
  )
}

/** What the caller gets, once the outcome is settled. */
type Settled<A, E> = Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError>

/** The handler's outcome, to settle; or (transactional) already settled. */
type Outcome<A, E> =
  | { readonly _tag: "Exit"; readonly exit: Exit.Exit<A, E> }
  | { readonly _tag: "Settled"; readonly then: Settled<A, E> }

/**
 * A transactional body that rolled back: with the handler's outcome to settle; or without, because the completion
 * was fenced (the lease was lost) or failed (`storeError`).
 */
class RolledBack<A, E> {
  constructor(
    readonly exit: Exit.Exit<A, E> | undefined,
    readonly storeError?: IdempotencyStoreError
  ) {}
}
