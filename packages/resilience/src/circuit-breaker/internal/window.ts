/**
 * Sliding windows of finished calls, immutable like every state the pure
 * `transition` function returns.
 *
 * A count window is a ring of the last `size` calls with running totals: the
 * call falling out is subtracted as the new one is added. A time window keeps
 * one bucket per `bucketMillis` slice of Clock time, by absolute slice index,
 * so buckets expire by arithmetic alone: no timer, and a Clock jump of any
 * size simply leaves every bucket out of range.
 *
 * @internal
 */
import type { RecordedCall } from "../CircuitBreaker.js"

/** @internal */
export interface Totals {
  readonly calls: number
  readonly failures: number
  readonly slow: number
}

const FAILED = 1
const SLOW = 2

/** @internal */
export interface CountWindow extends Totals {
  readonly size: number
  readonly ring: ReadonlyArray<number>
  readonly next: number
}

/** @internal */
export const emptyCount = (size: number): CountWindow => ({
  size,
  ring: [],
  next: 0,
  calls: 0,
  failures: 0,
  slow: 0
})

/** @internal */
export const recordCount = (self: CountWindow, call: RecordedCall): CountWindow => {
  const entry = (call.failure ? FAILED : 0) | (call.slow ? SLOW : 0)
  const ring = self.ring.slice()
  const evicted = self.calls === self.size ? ring[self.next] ?? 0 : undefined
  ring[self.next] = entry
  return {
    size: self.size,
    ring,
    next: (self.next + 1) % self.size,
    calls: evicted === undefined ? self.calls + 1 : self.calls,
    failures: self.failures + (entry & FAILED) - (evicted === undefined ? 0 : evicted & FAILED),
    slow: self.slow + ((entry & SLOW) >> 1) - (evicted === undefined ? 0 : (evicted & SLOW) >> 1)
  }
}

/** @internal */
export interface Bucket extends Totals {
  readonly slice: number
}

/** @internal */
export interface TimeWindow {
  readonly bucketMillis: number
  readonly buckets: number
  readonly entries: ReadonlyArray<Bucket>
}

/** @internal */
export const emptyTime = (bucketMillis: number, buckets: number): TimeWindow => ({
  bucketMillis,
  buckets,
  entries: []
})

const live = (self: TimeWindow, now: number): ReadonlyArray<Bucket> => {
  const oldest = Math.floor(now / self.bucketMillis) - self.buckets + 1
  return self.entries.every((bucket) => bucket.slice >= oldest)
    ? self.entries
    : self.entries.filter((bucket) => bucket.slice >= oldest)
}

/** @internal */
export const recordTime = (self: TimeWindow, call: RecordedCall, now: number): TimeWindow => {
  const slice = Math.floor(now / self.bucketMillis)
  const entries = live(self, now)
  const last = entries[entries.length - 1]
  const failed = call.failure ? 1 : 0
  const slow = call.slow ? 1 : 0
  // The Clock never goes backwards, so the current slice is the last bucket or a new one.
  const updated: Array<Bucket> = last !== undefined && last.slice === slice
    ? [...entries.slice(0, -1), {
      slice,
      calls: last.calls + 1,
      failures: last.failures + failed,
      slow: last.slow + slow
    }]
    : [...entries, { slice, calls: 1, failures: failed, slow }]
  return { bucketMillis: self.bucketMillis, buckets: self.buckets, entries: updated }
}

/** @internal */
export const totalsAt = (self: TimeWindow, now: number): Totals => {
  let calls = 0
  let failures = 0
  let slow = 0
  for (const bucket of live(self, now)) {
    calls += bucket.calls
    failures += bucket.failures
    slow += bucket.slow
  }
  return { calls, failures, slow }
}
