/**
 * The rate-limiting algorithms as PURE decision functions:
 *
 * ```text
 * decide(state | undefined, now, cost, spec, maxDelay) -> [decision, state | undefined]
 * ```
 *
 * `now` is in milliseconds; `undefined` state means "never seen" (or evicted
 * after its time-to-live, which every algorithm makes equivalent). A decision
 * either admits the call now (`delay = 0`), admits it later (`delay > 0`,
 * never above `maxDelay`: the slot is reserved, so the caller sleeps and then
 * proceeds, first come first served), or rejects it and leaves the state as
 * it was. `reset` is the time until the quota is whole again, which is also
 * how long the state matters: the stores evict or expire it after that.
 *
 * Arithmetic is exact. Rates such as 100 per 3 seconds do not fit binary
 * floats, so fractional times are kept as integers in units of `1 / limit`
 * millisecond ("ticks") and token counts as integers scaled by the window:
 * every intermediate value stays an integer below 2^53 (options are bounded
 * when validated). The Lua scripts in `redisStore.ts` run the very same
 * formulas on the same integers, and a differential test checks that both
 * agree decision by decision.
 *
 * A reservation a waiter will not use (it was interrupted while sleeping
 * towards its slot) can be given back with the algorithm's refund:
 *
 * ```text
 * refund(state | undefined, now, cost, spec, reservation) -> state | undefined
 * ```
 *
 * A refund must be sound: the new state may never admit more than the state
 * the key would have had if the reservation had never been made. What that
 * allows differs per algorithm (see each refund below):
 *
 * - sliding window log: always (its units leave the log);
 * - sliding window counter: always (its window's count goes down);
 * - fixed window: when its window is the last one holding reservations
 *   (counts are packed window after window, so an earlier window cannot
 *   shrink under later ones);
 * - token bucket: when no later reservation was made (one at the same
 *   instant is fine), since the bucket refilled towards its capacity for a
 *   later waiter, and tokens given back after it would add a burst on top;
 * - GCRA and leaky bucket: when no later reservation was made, since a
 *   later waiter's slot is fixed and one handed out before it would break
 *   the spacing.
 *
 * Otherwise the slot stays taken: the limiter then admits less than it
 * could, never more.
 *
 * @internal
 */

import {
  admitted,
  type Decision,
  decision,
  type FixedWindowSpec,
  type GcraSpec,
  type LeakyBucketSpec,
  type Reservation,
  type SlidingWindowCounterSpec,
  type SlidingWindowLogSpec,
  type Spec,
  type TokenBucketSpec
} from "./decision.js"

export * from "./decision.js"

// -----------------------------------------------------------------------------
// Token bucket
// -----------------------------------------------------------------------------

/**
 * `tokens` is the bucket's content at time `at`, times `window` (so a refill
 * of `limit` per `window` adds exactly `limit` per millisecond). `at` lies in
 * the future when a call was admitted for later: the state then describes
 * the bucket right after that call, and later calls queue behind it.
 *
 * @internal
 */
export interface TokenBucketState {
  readonly tokens: number
  readonly at: number
}

/**
 * Admission times are whole milliseconds. A delayed call leaves the bucket at
 * the millisecond it is admitted, and whatever the bucket would have gained
 * above its capacity by then is lost, as in a real bucket: so no interval
 * ever holds more than `burst + rate·t`, even when `window / limit` is not a
 * whole number of milliseconds (the rate then rounds down, only while calls
 * queue and only for a burst of 1).
 *
 * @internal
 */
export const tokenBucket = (
  state: TokenBucketState | undefined,
  now: number,
  cost: number,
  spec: TokenBucketSpec,
  maxDelay: number
): readonly [Decision, TokenBucketState | undefined] => {
  const L = spec.limit
  const W = spec.window
  const full = spec.burst * W
  let tokens = full
  let at = now
  if (state !== undefined) {
    tokens = state.tokens
    at = state.at
    if (now > at) {
      // A long idle time can overflow 2^53 here, but then the minimum is exactly `full`.
      tokens = Math.min(full, tokens + (now - at) * L)
      at = now
    }
  }
  const need = cost * W
  const wait = tokens >= need ? 0 : Math.ceil((need - tokens) / L)
  const admitAt = at + wait
  const delay = admitAt - now
  if (delay <= maxDelay) {
    const left = Math.min(full, tokens + wait * L) - need
    return [
      admitted(delay, Math.floor(left / W), delay + Math.ceil((full - left) / L), admitAt, 0),
      { tokens: left, at: admitAt }
    ]
  }
  return [
    decision(
      false,
      0,
      Math.max(0, Math.floor((tokens - (at - now) * L) / W)),
      at - now + Math.ceil((full - tokens) / L),
      delay
    ),
    state
  ]
}

/**
 * A reservation at the bucket's latest instant (`state.at`) is the last one,
 * or shares its instant with the later ones: giving its tokens back then
 * yields exactly the bucket without it. Behind a later reservation nothing is
 * given back: the later waiter's slot was computed with the bucket refilling
 * towards its capacity in between, and tokens added at the end would let a
 * burst through on top of that waiter.
 *
 * @internal
 */
export const refundTokenBucket = (
  state: TokenBucketState | undefined,
  _now: number,
  cost: number,
  spec: TokenBucketSpec,
  reservation: Reservation
): TokenBucketState | undefined =>
  state === undefined || state.at !== reservation.at
    ? state
    : { tokens: Math.min(spec.burst * spec.window, state.tokens + cost * spec.window), at: state.at }

// -----------------------------------------------------------------------------
// Fixed window
// -----------------------------------------------------------------------------

/**
 * `count` units were taken since `start` (the window holding `now`, aligned
 * on multiples of the window). Units above `limit` are reservations for the
 * following windows, each holding at most `limit`.
 *
 * @internal
 */
export interface FixedWindowState {
  readonly start: number
  readonly count: number
}

/** @internal */
export const fixedWindow = (
  state: FixedWindowState | undefined,
  now: number,
  cost: number,
  spec: FixedWindowSpec,
  maxDelay: number
): readonly [Decision, FixedWindowState | undefined] => {
  const L = spec.limit
  const W = spec.window
  const current = now - (now % W)
  let start = current
  let count = 0
  if (state !== undefined) {
    start = state.start
    count = state.count
    if (start < current) {
      count = Math.max(0, count - ((current - start) / W) * L)
      start = current
    }
  }
  // The window the next unit falls in; a call never straddles two windows.
  const index = Math.floor(count / L)
  const fits = count - index * L + cost <= L
  const target = fits ? index : index + 1
  const after = fits ? count + cost : (index + 1) * L + cost
  const delay = Math.max(0, start + target * W - now)
  if (delay <= maxDelay) {
    return [
      admitted(delay, Math.max(0, L - after), start + Math.max(1, Math.ceil(after / L)) * W - now, now + delay, 0),
      { start, count: after }
    ]
  }
  return [
    decision(false, 0, Math.max(0, L - count), start + Math.max(1, Math.ceil(count / L)) * W - now, delay),
    state
  ]
}

/**
 * Units are packed into windows of `limit` in order of reservation, so only
 * the last window holding units can shrink: taking units out of an earlier
 * one would move later reservations, in the count, into windows they do not
 * occupy. `reservation.at` is the start of the reservation's window.
 *
 * @internal
 */
export const refundFixedWindow = (
  state: FixedWindowState | undefined,
  now: number,
  cost: number,
  spec: FixedWindowSpec,
  reservation: Reservation
): FixedWindowState | undefined => {
  if (state === undefined) return state
  const L = spec.limit
  const W = spec.window
  const current = now - (now % W)
  let start = state.start
  let count = state.count
  if (start < current) {
    count = Math.max(0, count - ((current - start) / W) * L)
    start = current
  }
  const index = (reservation.at - start) / W
  if (count === 0 || index !== Math.floor((count - 1) / L) || count - index * L < cost) return state
  return { start, count: count - cost }
}

// -----------------------------------------------------------------------------
// Sliding window log
// -----------------------------------------------------------------------------

/** @internal */
export interface LogNode {
  readonly at: number
  readonly cost: number
  readonly next: LogNode | undefined
}

/**
 * Admissions inside the window, as a persistent queue: `front` holds the
 * oldest first, `back` the newest first (reversed into `front` when it runs
 * out), so that a decision never copies the log. `total` is the sum of the
 * costs, `last` the latest admission time (it can lie in the future when
 * calls were admitted for later).
 *
 * @internal
 */
export interface LogState {
  readonly front: LogNode | undefined
  readonly back: LogNode | undefined
  readonly total: number
  readonly last: number
}

const reverse = (node: LogNode | undefined): LogNode | undefined => {
  let reversed: LogNode | undefined = undefined
  for (let n = node; n !== undefined; n = n.next) reversed = { at: n.at, cost: n.cost, next: reversed }
  return reversed
}

/** Drops entries at or before `cutoff`: the window is `(now - window, now]`. */
const expire = (state: LogState, cutoff: number): LogState => {
  let { back, front, total } = state
  for (;;) {
    if (front === undefined) {
      if (back === undefined) break
      front = reverse(back)
      back = undefined
      continue
    }
    if (front.at > cutoff) break
    total -= front.cost
    front = front.next
  }
  return front === state.front && back === state.back ? state : { front, back, total, last: state.last }
}

/** The time of the entry holding the `units`-th oldest unit (1-based). */
const timeOfUnit = (state: LogState, units: number): number => {
  let seen = 0
  for (let n = state.front; n !== undefined; n = n.next) {
    seen += n.cost
    if (seen >= units) return n.at
  }
  for (let n = reverse(state.back); n !== undefined; n = n.next) {
    seen += n.cost
    if (seen >= units) return n.at
  }
  return state.last
}

/** @internal */
export const slidingWindowLog = (
  state: LogState | undefined,
  now: number,
  cost: number,
  spec: SlidingWindowLogSpec,
  maxDelay: number
): readonly [Decision, LogState | undefined] => {
  const L = spec.limit
  const W = spec.window
  const log = state === undefined ? undefined : expire(state, now - W)
  const total = log === undefined ? 0 : log.total
  const last = log === undefined || total === 0 ? -Infinity : log.last
  // The earliest time t >= max(now, last) whose window (t - W, t] has room: every
  // entry is at or before t, so no later window holds more than this one.
  let at = Math.max(now, last)
  const excess = total + cost - L
  if (excess > 0 && log !== undefined) at = Math.max(at, timeOfUnit(log, excess) + W)
  const delay = at - now
  if (delay <= maxDelay) {
    const base: LogState = log === undefined || total === 0
      ? { front: undefined, back: undefined, total: 0, last: at }
      : log
    // Entries admitted at the same time share a node.
    const next: LogState = base.back !== undefined && base.back.at === at
      ? {
        front: base.front,
        back: { at, cost: base.back.cost + cost, next: base.back.next },
        total: base.total + cost,
        last: at
      }
      : { front: base.front, back: { at, cost, next: base.back }, total: base.total + cost, last: at }
    return [admitted(delay, Math.max(0, L - next.total), at + W - now, at, 0), next]
  }
  return [
    decision(false, 0, Math.max(0, L - total), total === 0 ? 0 : last + W - now, delay),
    log === undefined || total === 0 ? undefined : log
  ]
}

/**
 * Takes the reservation's units out of the log: every window then holds
 * fewer units, and later calls are still checked against every entry, so
 * this is sound wherever the reservation lies. Entries at the same time are
 * indistinguishable, as on Redis, where any `cost` members of that score go.
 *
 * @internal
 */
export const refundSlidingWindowLog = (
  state: LogState | undefined,
  _now: number,
  cost: number,
  _spec: SlidingWindowLogSpec,
  reservation: Reservation
): LogState | undefined => {
  if (state === undefined) return state
  let left = cost
  let front: LogNode | undefined = undefined
  let last = -Infinity
  // Rebuilt newest first, then reversed: refunds are rare, a copy of the log is fine.
  const entries = logEntries(state)
  let total = state.total
  for (let i = entries.length - 1; i >= 0; i--) {
    const entry = entries[i]
    if (entry === undefined) continue
    const at = entry[0]
    let units = entry[1]
    if (at === reservation.at && left > 0) {
      const taken = Math.min(units, left)
      left -= taken
      units -= taken
      total -= taken
    }
    if (units === 0) continue
    if (last === -Infinity) last = at
    front = { at, cost: units, next: front }
  }
  if (left === cost) return state
  return front === undefined ? undefined : { front, back: undefined, total, last }
}

/** Every admission still in the log, oldest first (for tests and diagnostics). @internal */
export const logEntries = (state: LogState): ReadonlyArray<readonly [at: number, cost: number]> => {
  const entries: Array<readonly [number, number]> = []
  for (let n = state.front; n !== undefined; n = n.next) entries.push([n.at, n.cost])
  for (let n = reverse(state.back); n !== undefined; n = n.next) entries.push([n.at, n.cost])
  return entries
}

// -----------------------------------------------------------------------------
// Sliding window counter
// -----------------------------------------------------------------------------

/**
 * Counts of the previous, current and next aligned windows (`next` holds
 * calls admitted for later; a call whose slot lies beyond the next window is
 * refused even within `maxDelay`), and the latest admission time.
 *
 * @internal
 */
export interface CounterState {
  readonly start: number
  readonly prev: number
  readonly cur: number
  readonly next: number
  readonly last: number
}

/**
 * The earliest time `t >= from` inside the window starting at `start` where
 * `prev·(start + W − t)/W + cur + cost ≤ L`; `Infinity` when `cur + cost > L`.
 */
const counterSlot = (start: number, prev: number, cur: number, cost: number, from: number, spec: Spec): number => {
  const L = spec.limit
  const W = spec.window
  if (cur + cost > L) return Infinity
  if (prev === 0) return from
  return Math.max(from, start + W - Math.floor(((L - cur - cost) * W) / prev))
}

/** @internal */
export const slidingWindowCounter = (
  state: CounterState | undefined,
  now: number,
  cost: number,
  spec: SlidingWindowCounterSpec,
  maxDelay: number
): readonly [Decision, CounterState | undefined] => {
  const L = spec.limit
  const W = spec.window
  const current = now - (now % W)
  let start = current
  let prev = 0
  let cur = 0
  let next = 0
  let last = -Infinity
  if (state !== undefined) {
    start = state.start
    prev = state.prev
    cur = state.cur
    next = state.next
    last = state.last
    if (start < current) {
      const elapsed = (current - start) / W
      if (elapsed === 1) {
        prev = cur
        cur = next
      } else if (elapsed === 2) {
        prev = next
        cur = 0
      } else {
        prev = 0
        cur = 0
      }
      next = 0
      start = current
    }
  }
  const from = Math.max(now, last)
  const nextStart = start + W
  // A call goes after every earlier admission (first come, first served), in
  // the current window while nothing waits for the next one, else in the next.
  let at = Infinity
  let inNext = false
  if (next === 0 && from < nextStart) at = counterSlot(start, prev, cur, cost, from, spec)
  if (at >= nextStart) {
    inNext = true
    at = counterSlot(nextStart, cur, next, cost, Math.max(from, nextStart), spec)
    // After the next window the estimate only holds what is admitted there.
    if (at === Infinity) at = Math.max(from, nextStart + W)
  }
  const delay = at - now
  if (at < nextStart + W && delay <= maxDelay) {
    const newCur = inNext ? cur : cur + cost
    const newNext = inNext ? next + cost : next
    return [
      admitted(
        delay,
        counterEstimate(L, W, now, start, prev, newCur + newNext),
        counterReset(W, now, start, prev, newCur, newNext),
        at,
        0
      ),
      { start, prev, cur: newCur, next: newNext, last: at }
    ]
  }
  return [
    decision(
      false,
      0,
      counterEstimate(L, W, now, start, prev, cur + next),
      counterReset(W, now, start, prev, cur, next),
      delay
    ),
    state
  ]
}

/**
 * Takes the reservation's units out of its window's count (current, next, or
 * the previous one if its slot has passed). Counts only go down, so every
 * estimate does too; `last` stays, so later calls still queue behind the
 * waiters before them, and the refunded slot goes to the next caller.
 *
 * @internal
 */
export const refundSlidingWindowCounter = (
  state: CounterState | undefined,
  now: number,
  cost: number,
  spec: SlidingWindowCounterSpec,
  reservation: Reservation
): CounterState | undefined => {
  if (state === undefined) return state
  const W = spec.window
  const current = now - (now % W)
  let { cur, next, prev, start } = state
  if (start < current) {
    const elapsed = (current - start) / W
    prev = elapsed === 1 ? cur : elapsed === 2 ? next : 0
    cur = elapsed === 1 ? next : 0
    next = 0
    start = current
  }
  const window = reservation.at - (reservation.at % W)
  if (window === start) cur = Math.max(0, cur - cost)
  else if (window === start + W) next = Math.max(0, next - cost)
  else if (window === start - W) prev = Math.max(0, prev - cost)
  else return state
  return { start, prev, cur, next, last: state.last }
}

// Module-level helpers rather than closures: a closure over the reassigned locals above would move
// them into a heap context and box every number written to them.

/** Units left under the weighted estimate at `now`. */
const counterEstimate = (L: number, W: number, now: number, start: number, prev: number, counted: number): number =>
  Math.max(0, Math.floor((L * W - prev * (W - (now - start)) - counted * W) / W))

/** Until every count has left the sliding window. */
const counterReset = (W: number, now: number, start: number, prev: number, cur: number, next: number): number =>
  (next > 0 ? start + 3 * W : cur > 0 ? start + 2 * W : prev > 0 ? start + W : now) - now

// -----------------------------------------------------------------------------
// GCRA and leaky bucket
// -----------------------------------------------------------------------------

/**
 * A theoretical arrival time `at + frac / limit` milliseconds, kept exact:
 * `frac` is in ticks of `1 / limit` millisecond, `0 ≤ frac < limit`.
 *
 * @internal
 */
export interface TatState {
  readonly at: number
  readonly frac: number
}

/** Ticks from `now` to the state's time, never below zero. */
const ticksAhead = (state: TatState | undefined, now: number, L: number): number =>
  state === undefined ? 0 : Math.max(0, (state.at - now) * L + state.frac)

const tatAfter = (now: number, ticks: number, L: number): TatState => {
  const whole = Math.floor(ticks / L)
  return { at: now + whole, frac: ticks - whole * L }
}

/**
 * GCRA (virtual scheduling): a call of cost `c` at `now` conforms when
 * `max(TAT, now) + c·T − burst·T ≤ now`, with `T = window / limit`; the TAT
 * then moves to `max(TAT, now) + c·T`. A call admitted for later arrives, in
 * the model's terms, at the whole millisecond it is admitted.
 *
 * @internal
 */
export const gcra = (
  state: TatState | undefined,
  now: number,
  cost: number,
  spec: GcraSpec,
  maxDelay: number
): readonly [Decision, TatState | undefined] => {
  const L = spec.limit
  const W = spec.window
  const tolerance = spec.burst * W
  const ahead = ticksAhead(state, now, L)
  const early = ahead + cost * W - tolerance
  const wait = early <= 0 ? 0 : Math.ceil(early / L)
  if (wait <= maxDelay) {
    const after = Math.max(ahead, wait * L) + cost * W
    const tat = tatAfter(now, after, L)
    return [
      admitted(wait, Math.floor((tolerance - after + wait * L) / W), Math.ceil(after / L), tat.at, tat.frac),
      tat
    ]
  }
  return [
    decision(false, 0, Math.max(0, Math.floor((tolerance - ahead) / W)), Math.ceil(ahead / L), wait),
    state
  ]
}

/**
 * GCRA and the leaky bucket: a reservation that is still the latest (the
 * state is the very time it moved the key to) gives back its `c·T`. That
 * lands at or after the time before the reservation (a delayed call arrives
 * at its whole millisecond, which rounding may place past the earlier
 * time), so it never admits more than that earlier state. Behind a later
 * reservation nothing is given back: the later waiter's slot is fixed, and a
 * slot handed out before it would break the spacing.
 *
 * @internal
 */
export const refundTat = (
  state: TatState | undefined,
  _now: number,
  cost: number,
  spec: GcraSpec | LeakyBucketSpec,
  reservation: Reservation
): TatState | undefined => {
  if (state === undefined || state.at !== reservation.at || state.frac !== reservation.frac) return state
  const L = spec.limit
  const ticks = state.frac - cost * spec.window
  const whole = Math.floor(ticks / L)
  return { at: state.at + whole, frac: ticks - whole * L }
}

/**
 * A leaky bucket as a shaper: calls leave at a constant rate, one unit every
 * `T = window / limit`, each after the ones before it, at the first whole
 * millisecond the bucket lets it (so consecutive calls are never closer than
 * their `c·T`); at most `capacity` units wait in the bucket. The state is the
 * time the bucket runs empty.
 *
 * @internal
 */
export const leakyBucket = (
  state: TatState | undefined,
  now: number,
  cost: number,
  spec: LeakyBucketSpec,
  maxDelay: number
): readonly [Decision, TatState | undefined] => {
  const L = spec.limit
  const W = spec.window
  const room = spec.capacity * W
  const ahead = ticksAhead(state, now, L)
  const wait = Math.ceil(ahead / L)
  if (ahead + cost * W <= room && wait <= maxDelay) {
    const after = wait * L + cost * W
    const tat = tatAfter(now, after, L)
    return [
      admitted(wait, Math.max(0, Math.floor((room - after) / W)), Math.ceil(after / L), tat.at, tat.frac),
      tat
    ]
  }
  // Rejected means units are queued (cost ≤ capacity), so this is at least 1 ms: when the bucket is empty.
  return [decision(false, 0, Math.max(0, Math.floor((room - ahead) / W)), wait, wait), state]
}
