/**
 * Sliding windows of finished calls, immutable like every state the pure
 * `transition` function returns.
 *
 * A count window is a ring of the last `size` calls with running totals: the
 * call falling out is subtracted as the new one is added. Recording is O(1):
 * see {@link CountWindow} for how the ring is shared between versions
 * without any version ever seeing another's changes. A time window keeps
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

/**
 * The entries of a count window's ring, as of the version that owns them
 * (`owner`).
 */
class Ring {
  owner: CountWindow | undefined = undefined
  constructor(readonly entries: Uint8Array) {}
}

interface Undo {
  readonly index: number
  readonly entry: number
  readonly newer: CountWindow
}

/**
 * A version of a count window. Versions share one ring: the newest owns it,
 * and recording from the owner writes one entry in place and hands the ring
 * to the new version, leaving in the old version what it overwrote (`undo`).
 * Recording from a version that does not own its ring (a branch, as tests do
 * from one state twice) rebuilds that version's entries by following the
 * undos from the owner, into a copy that only the new version owns; the old
 * version and its chain stay as they were. So every version answers as an
 * immutable value, and the breaker, which only ever records from its newest
 * state, pays O(1) a call instead of copying `size` entries.
 *
 * An empty window (no calls yet) has no ring: its entries are not read
 * before they are written, and the empty windows the breaker keeps to start
 * again from (`Settings.windows`) hold on to no history.
 *
 * @internal
 */
export class CountWindow implements Totals {
  /** Set once a newer version overwrote an entry of the shared ring. */
  private undo: Undo | undefined = undefined

  constructor(
    readonly size: number,
    private readonly ring: Ring | undefined,
    readonly next: number,
    readonly calls: number,
    readonly failures: number,
    readonly slow: number
  ) {}

  /** Whether this version's entries are its ring's, as they are. */
  private owns(): boolean {
    return this.ring !== undefined && this.ring.owner === this
  }

  /** The entry at `index`, as of this version. */
  entry(index: number): number {
    if (this.ring === undefined) return 0
    if (this.owns()) return this.ring.entries[index] ?? 0
    return this.copy()[index] ?? 0
  }

  /** A copy of this version's entries. */
  private copy(): Uint8Array {
    const ring = this.ring
    if (ring === undefined || this.calls === 0) return new Uint8Array(this.size)
    // The undos from this version up to the owner, oldest first; applied newest first to the owner's entries.
    const undos: Array<Undo> = []
    for (let undo = this.undo; undo !== undefined; undo = undo.newer.undo) {
      undos.push(undo)
      if (ring.owner === undo.newer) break
    }
    const entries = Uint8Array.from(ring.entries)
    for (let i = undos.length - 1; i >= 0; i--) {
      const undo = undos[i]
      if (undo !== undefined) entries[undo.index] = undo.entry
    }
    return entries
  }

  /** The next version, with `entry` written at `next`. */
  write(entry: number, calls: number, failures: number, slow: number): CountWindow {
    const index = this.next
    const nextIndex = (index + 1) % this.size
    const ring = this.ring
    if (ring !== undefined && ring.owner === this) {
      const newer = new CountWindow(this.size, ring, nextIndex, calls, failures, slow)
      this.undo = { index, entry: ring.entries[index] ?? 0, newer }
      ring.entries[index] = entry
      ring.owner = newer
      return newer
    }
    const entries = this.copy()
    entries[index] = entry
    const ownRing = new Ring(entries)
    const newer = new CountWindow(this.size, ownRing, nextIndex, calls, failures, slow)
    ownRing.owner = newer
    return newer
  }
}

/** @internal */
export const emptyCount = (size: number): CountWindow => new CountWindow(size, undefined, 0, 0, 0, 0)

/** @internal */
export const recordCount = (self: CountWindow, call: RecordedCall): CountWindow => {
  const entry = (call.failure ? FAILED : 0) | (call.slow ? SLOW : 0)
  const evicted = self.calls === self.size ? self.entry(self.next) : undefined
  return self.write(
    entry,
    evicted === undefined ? self.calls + 1 : self.calls,
    self.failures + (entry & FAILED) - (evicted === undefined ? 0 : evicted & FAILED),
    self.slow + ((entry & SLOW) >> 1) - (evicted === undefined ? 0 : (evicted & SLOW) >> 1)
  )
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
