/**
 * What every rate-limiting algorithm shares (see `algorithms.ts`): the specs
 * the limiter options validate to, the decision and reservation a decide
 * function answers, and how much a spec lets through at once.
 *
 * @internal
 */

/** @internal */
export type Spec =
  | TokenBucketSpec
  | FixedWindowSpec
  | SlidingWindowLogSpec
  | SlidingWindowCounterSpec
  | LeakyBucketSpec
  | GcraSpec

/**
 * `limit` units refill per `window` milliseconds; the bucket holds `burst` units.
 *
 * @internal
 */
export interface TokenBucketSpec {
  readonly _tag: "TokenBucket"
  readonly limit: number
  readonly window: number
  readonly burst: number
}

/** @internal */
export interface FixedWindowSpec {
  readonly _tag: "FixedWindow"
  readonly limit: number
  readonly window: number
}

/** @internal */
export interface SlidingWindowLogSpec {
  readonly _tag: "SlidingWindowLog"
  readonly limit: number
  readonly window: number
}

/** @internal */
export interface SlidingWindowCounterSpec {
  readonly _tag: "SlidingWindowCounter"
  readonly limit: number
  readonly window: number
}

/**
 * Output rate `limit` per `window`; at most `capacity` units queued.
 *
 * @internal
 */
export interface LeakyBucketSpec {
  readonly _tag: "LeakyBucket"
  readonly limit: number
  readonly window: number
  readonly capacity: number
}

/**
 * Emission interval `window / limit`; up to `burst` units at once.
 *
 * @internal
 */
export interface GcraSpec {
  readonly _tag: "Gcra"
  readonly limit: number
  readonly window: number
  readonly burst: number
}

/**
 * What an algorithm decided, in whole milliseconds.
 *
 * @internal
 */
export interface Decision {
  readonly allowed: boolean
  /** Wait before proceeding; 0 unless the call was admitted for later. */
  readonly delay: number
  /** Units left after this decision. */
  readonly remaining: number
  /** Until the quota is whole again (and the state can be dropped). */
  readonly reset: number
  /** When rejected: until this call could be admitted, other traffic aside. 0 when allowed. */
  readonly retryAfter: number
  /** Only when `delay > 0`: what a refund needs to give the reserved slot back. */
  readonly reservation?: Reservation
}

/**
 * Where a delayed decision's reservation left the key's state, so that a
 * refund can tell whether it is still the latest one: the admission time
 * (`frac = 0`), or for GCRA and the leaky bucket the theoretical arrival
 * time it moved the key to (`at + frac / limit` ms).
 *
 * @internal
 */
export interface Reservation {
  readonly at: number
  readonly frac: number
}

/** @internal */
export type Decide<S> = (
  state: S | undefined,
  now: number,
  cost: number,
  spec: Spec,
  maxDelay: number
) => readonly [Decision, S | undefined]

/** @internal */
export const decision = (
  allowed: boolean,
  delay: number,
  remaining: number,
  reset: number,
  retryAfter: number
): Decision => ({
  allowed,
  delay,
  remaining,
  reset,
  retryAfter
})

/**
 * An admission: at once, or later with the reservation that slot holds.
 *
 * @internal
 */
export const admitted = (delay: number, remaining: number, reset: number, at: number, frac: number): Decision =>
  delay === 0
    ? { allowed: true, delay, remaining, reset, retryAfter: 0 }
    : { allowed: true, delay, remaining, reset, retryAfter: 0, reservation: { at, frac } }

/**
 * The scale a decision's `limit` and `remaining` count in: what a caller can
 * spend at once from a fresh state, and so the largest valid cost (the
 * policy's `burst`; its sustained quota is `limit` per `window`).
 *
 * @internal
 */
export const quotaOf = (spec: Spec): number => {
  switch (spec._tag) {
    case "TokenBucket":
    case "Gcra":
      return spec.burst
    case "LeakyBucket":
      return spec.capacity
    case "FixedWindow":
    case "SlidingWindowLog":
    case "SlidingWindowCounter":
      return spec.limit
  }
}
