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
 * @since 0.1.0
 * @category Errors
 */
export class IdempotencyStoreError extends Data.TaggedError("IdempotencyStoreError")<{
  readonly backend: string
  readonly operation: Operation
  readonly cause: unknown
}> {
  /**
   * @since 0.1.0
   */
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId

  /**
   * @since 0.1.0
   */
  override get message(): string {
    const detail = typeof this.cause === "object" && this.cause !== null && "message" in this.cause &&
        typeof this.cause.message === "string"
      ? this.cause.message
      : String(this.cause)
    return `Idempotency store (${this.backend}) failed to ${this.operation}: ${detail}`
  }
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
