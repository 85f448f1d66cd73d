/**
 * `Idempotency.run`: claim the key, then execute it, replay its stored result, refuse it (another fingerprint), or
 * (in flight elsewhere) answer a conflict or wait for the other execution, polling with read-only lookups.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import { randomUUID } from "node:crypto"
import * as Trace from "../../internal/trace.js"
import { attributes } from "../../internal/tracingAttributes.js"
import type * as Idempotency from "../Idempotency.js"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import { IdempotencyConflictError, IdempotencyMismatchError } from "./errors.js"
import { execute } from "./execute.js"
import { countersFor } from "./metrics.js"
import { MAX_RETRY_AFTER_MS } from "./record.js"
import { type Prepared, type Valid, validate, validateWith } from "./runOptions.js"
import { replay } from "./storedResult.js"
import * as Tags from "./tags.js"

/** Polls for an in-flight key start here and double up to {@link MAX_POLL_MS}. */
const FIRST_POLL_MS = 50
const MAX_POLL_MS = 1_000

/**
 * While another execution holds a live lease, a waiting request only reads (`lookup`, read-only in every store): a
 * claim is read-only only where the store makes it so (PostgreSQL's answers a held key from an unlocked read, but
 * locks a record that looks claimable), and many waiters polling must not queue on a lock. A completed record read
 * this way is replayed as is (completed records are immutable until they expire); anything else goes back to
 * `claim`, which decides atomically.
 */
const afterWaiting = (
  info: Option.Option<IdempotencyStore.RecordInfo>,
  fingerprint: string
): Option.Option<IdempotencyStore.ClaimResult> => {
  if (Option.isNone(info) || info.value.fingerprint !== fingerprint) return Option.none()
  const record = info.value
  if (record.state === "completed" && Option.isSome(record.result)) {
    return Option.some({
      _tag: "Completed",
      record: { ...record.result.value, fingerprint, attempt: record.attempt, expiresIn: record.expiresIn }
    })
  }
  if (record.state !== "in_progress") return Option.none()
  return Option.flatMap(record.leaseExpiresIn, (left) => {
    const ms = Duration.toMillis(left)
    return ms > 0
      ? Option.some({
        _tag: "InProgress",
        retryAfter: Duration.millis(Math.max(1, Math.min(MAX_RETRY_AFTER_MS, Math.ceil(ms))))
      })
      : Option.none()
  })
}

/**
 * The result on the current span (the caller's, e.g. an HTTP server span, or the idempotency span when tracing is
 * on): one fiber read when there is no span, small beside the store's round trip.
 */
const annotate = (scope: string, result: Idempotency.MetricResult): Effect.Effect<void> =>
  Trace.annotateCurrentSpan({ [attributes.idempotencyScope]: scope, [attributes.idempotencyResult]: result })

const runValid = <A, AI, E, EI, R>(
  valid: Valid<A, AI, E, EI>,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore> =>
  Effect.suspend(() => {
    const body = runUntraced(valid, handler)
    // A span of its own only when Tracing.layer switched the primitives' spans on.
    return Trace.tracing()
      ? Effect.withSpan(body, `bulwark.idempotency ${valid.scope}`, {
        captureStackTrace: false,
        attributes: { [attributes.idempotencyScope]: valid.scope }
      })
      : body
  })

const runUntraced = <A, AI, E, EI, R>(
  valid: Valid<A, AI, E, EI>,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore> =>
  Effect.gen(function*() {
    const store = yield* Tags.IdempotencyStore
    const counters = countersFor(valid.scope)
    const claim = Effect.suspend(() =>
      store.claim({
        scope: valid.scope,
        partition: valid.partition,
        key: valid.key,
        fingerprint: valid.fingerprint,
        owner: randomUUID(),
        lease: valid.lease,
        ttl: valid.ttl
      })
    )
    const deadline = valid.wait === undefined
      ? undefined
      : (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) + Duration.toMillis(valid.wait)
    let poll = FIRST_POLL_MS
    let claimed = yield* claim
    while (true) {
      switch (claimed._tag) {
        case "Claimed": {
          counters.executed()
          yield* annotate(valid.scope, "executed")
          return yield* execute(valid, store, claimed.lease, handler)
        }
        case "Completed": {
          counters.replayed()
          yield* annotate(valid.scope, "replayed")
          return yield* replay(valid, claimed.record, "Replayed", claimed.record.attempt)
        }
        case "Mismatch": {
          counters.fingerprint_mismatch()
          yield* annotate(valid.scope, "fingerprint_mismatch")
          return yield* Effect.fail(
            new IdempotencyMismatchError({ scope: valid.scope, keyHash: valid.keyHash })
          )
        }
        case "InProgress": {
          const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          if (deadline === undefined || now >= deadline) {
            counters.in_flight_conflict()
            yield* annotate(valid.scope, "in_flight_conflict")
            return yield* Effect.fail(
              new IdempotencyConflictError({
                scope: valid.scope,
                keyHash: valid.keyHash,
                reason: "InFlight",
                retryAfter: claimed.retryAfter
              })
            )
          }
          // Backoff with jitter (half to all of the step), so that many waiters do not poll in lockstep.
          const step = Math.min(poll, Duration.toMillis(claimed.retryAfter), deadline - now)
          const jittered = step * (0.5 + 0.5 * (yield* Random.next))
          poll = Math.min(poll * 2, MAX_POLL_MS)
          yield* Effect.sleep(Duration.millis(Math.max(1, Math.round(jittered))))
          const read = afterWaiting(yield* store.lookup(valid), valid.fingerprint)
          claimed = Option.isSome(read) ? read.value : yield* claim
        }
      }
    }
  })

type RunDataLast = <A, AI, E, EI>(
  options: Idempotency.Options<A, AI, E, EI>
) => <R>(
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
) => Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore>

type RunDataFirst = <A, AI, E, EI, R>(
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>,
  options: Idempotency.Options<A, AI, E, EI>
) => Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore>

/** @internal */
export const run = dual<RunDataLast, RunDataFirst>(
  (args) => typeof args[0] === "function",
  (handler, options) => Effect.flatMap(validate(options), (valid) => runValid(valid, handler))
)

/**
 * `run`, with the static options checked beforehand by {@link prepare} (those in `options` are then not read): the
 * same errors, in the same order, as `run` with the options `prepared` was made from.
 *
 * @internal
 */
export const runPrepared = <A, AI, E, EI, R>(
  prepared: Prepared,
  options: Idempotency.Options<A, AI, E, EI>,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore> =>
  Effect.flatMap(validateWith(prepared, options), (valid) => runValid(valid, handler))
