/**
 * The idempotency errors (see `Idempotency.ts` and `IdempotencyStore.ts`,
 * which re-export them). A leaf: it reads no module of this folder for its
 * values, so the internals use these classes without importing their public
 * modules.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import { TerminalTypeId, TransientTypeId } from "../../Failure.js"
import type { ConflictReason } from "../Idempotency.js"
import type { Operation } from "../IdempotencyStore.js"

/**
 * The store could not be reached or answered something unexpected. Transient:
 * the same request may succeed later (a claim that failed holds nothing; a
 * completion that failed leaves the lease to lapse, and the retry takes over
 * as a recovery).
 *
 * With `abortedTransaction`, the operation ran inside a database transaction
 * (the caller's own, or the one `transactional: true` opens) and its failure
 * aborted it: retrying `Idempotency.run` inside that transaction fails again.
 * Roll the whole transaction back and run it again; a new transaction sees
 * what this one could not.
 *
 * @since 0.1.0
 * @category Errors
 */
export class IdempotencyStoreError extends Data.TaggedError("IdempotencyStoreError")<{
  readonly backend: string
  readonly operation: Operation
  readonly cause: unknown
  /**
   * The operation failed inside a database transaction, which that failure aborted: nothing more can run in it, and
   * its COMMIT would only roll it back. Typically a serialization failure (PostgreSQL's SQLSTATE 40001): in a
   * REPEATABLE READ or SERIALIZABLE transaction, another transaction claimed or changed the key after this one's
   * snapshot was taken. Retry the whole transaction, not `Idempotency.run` inside it.
   *
   * @since 0.1.0
   */
  readonly abortedTransaction?: boolean | undefined
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const detail = describeCause(this.cause)
    return this.abortedTransaction === true
      ? `Idempotency store (${this.backend}) failed to ${this.operation} inside a database transaction, which is now aborted: ${detail}. Roll the transaction back and run it again as a whole (under REPEATABLE READ or SERIALIZABLE, a serialization failure means another transaction claimed or changed this key after this one's snapshot; a new transaction sees it); retrying inside the aborted transaction fails again`
      : `Idempotency store (${this.backend}) failed to ${this.operation}: ${detail}`
  }
}

/** A cause's message, with its own cause's (a driver's error under an `SqlError`) and SQLSTATE when it has them. */
const describeCause = (cause: unknown): string => {
  const messageOf = (u: unknown): string | undefined =>
    typeof u === "object" && u !== null && "message" in u && typeof u.message === "string" ? u.message : undefined
  const outer = messageOf(cause)
  if (outer === undefined) return String(cause)
  const inner = typeof cause === "object" && cause !== null && "cause" in cause ? cause.cause : undefined
  const innerMessage = messageOf(inner)
  if (innerMessage === undefined) return outer
  const code = typeof inner === "object" && inner !== null && "code" in inner && typeof inner.code === "string"
    ? ` (SQLSTATE ${inner.code})`
    : ""
  return `${outer}: ${innerMessage}${code}`
}

/**
 * The key is being executed elsewhere. Transient: retry after `retryAfter`
 * (HTTP: 409 with `Retry-After`). Carries the scope and a short hash of the
 * key, never the key.
 *
 * @since 0.1.0
 * @category Errors
 */
export class IdempotencyConflictError extends Data.TaggedError("IdempotencyConflictError")<{
  readonly scope: string
  readonly keyHash: string
  readonly reason: ConflictReason
  readonly retryAfter: Duration.Duration
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return this.reason === "InFlight"
      ? `A request with idempotency key ${this.keyHash} of "${this.scope}" is still being processed; retry in ${
        Duration.format(this.retryAfter)
      }`
      : `The lease on idempotency key ${this.keyHash} of "${this.scope}" was lost to another execution; its outcome was discarded; retry in ${
        Duration.format(this.retryAfter)
      } to get the other execution's result`
  }
}

/**
 * The key was first used with another fingerprint. Terminal: the client must
 * use a new key or resend the original request (HTTP: 422).
 *
 * @since 0.1.0
 * @category Errors
 */
export class IdempotencyMismatchError extends Data.TaggedError("IdempotencyMismatchError")<{
  readonly scope: string
  readonly keyHash: string
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `Idempotency key ${this.keyHash} of "${this.scope}" was already used with a different request`
  }
}

/**
 * A repeat of a key whose result was larger than `maxStoredBytes`, so it was
 * not stored. The key was completed with a "too large" marker: it never runs
 * again until it expires, and every replay fails with this error (the first
 * caller got the result). Terminal.
 *
 * @since 0.1.0
 * @category Errors
 */
export class StoredResultTooLargeError extends Data.TaggedError("StoredResultTooLargeError")<{
  readonly scope: string
  readonly keyHash: string
  /** The size of the encoded result, in bytes. */
  readonly bytes: number
  /** The limit it was over. */
  readonly limit: number
}> {
  /**
   * @since 0.1.0
   */
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `The result of "${this.scope}" for key ${this.keyHash} was ${this.bytes} bytes, over the ${this.limit}-byte limit for stored results; it was not stored, so it cannot be replayed, and the key will not run again until it expires`
  }
}
