/**
 * The state of a partitioned bulkhead: the table of keys held, the permits
 * of each key and of the shared total, and the ring of keys waiting for the
 * total. Plain synchronous state with no effects, so each method is one step
 * no other fiber can interleave with; `partitioned.ts` is the effectful shell
 * (waits, time-outs, metrics) around it.
 *
 * A key is held (has a {@link Partition}) exactly while it has a call
 * running or queued: it is dropped in the step that leaves it with neither,
 * so the table holds at most `maxKeys` entries and an idle key costs nothing.
 *
 * Each key's waiters are a FIFO (`waiters.ts`). A key whose oldest waiter is
 * held back only by the shared total (the key has a free permit) is *ready*,
 * and sits in a ring of ready keys. A freed total permit goes to the key at
 * the head of the ring; that key goes to the back if it is still ready. So
 * every ready key gets one permit per round, however long its queue: one hot
 * key cannot starve the others. Invariants, after every step:
 *
 * - a key's `active ≤ perKey`, the sum of `active` ≤ `total`;
 * - a key is in the ring ⇔ it has waiters and `active < perKey`;
 * - the ring is not empty ⇒ every total permit is taken (a freed one is
 *   handed out in the step that frees it).
 *
 * Without a total, `total` is `Infinity` and the ring only ever holds the key
 * whose call just ended, for the instant it takes to hand its permit on.
 */
import * as Waiters from "./waiters.js"

/** One key's permits and waiters. @internal */
export class Partition {
  /** Permits of this key held: calls running, or granted and about to run. */
  active = 0
  readonly waiters = new Waiters.Waiters()
  /** Whether it is in the ring of ready keys. */
  ready = false
  readyPrev: Partition | undefined = undefined
  readyNext: Partition | undefined = undefined

  constructor(readonly key: string) {}
}

/** A call may run: it holds a permit of its key and of the total. @internal */
export const ACQUIRED = 0
/** The call cannot run now: queue it or refuse it (see {@link Table.enqueue}). @internal */
export const BLOCKED = 1
/** The key is not held and the table is full. @internal */
export const TOO_MANY_KEYS = 2

/** @internal */
export type Acquire = typeof ACQUIRED | typeof BLOCKED | typeof TOO_MANY_KEYS

/** Which limit holds a key's calls back. @internal */
export type Limit = "perKey" | "total"

/** A call that cannot run, queued. @internal */
export interface Queued {
  readonly partition: Partition
  readonly waiter: Waiters.Waiter
}

/** @internal */
export class Table {
  private readonly partitions = new Map<string, Partition>()
  /** Permits held, all keys. */
  active = 0
  /** Calls waiting, all keys. */
  queued = 0
  private readyHead: Partition | undefined = undefined
  private readyTail: Partition | undefined = undefined

  constructor(
    readonly perKey: number,
    readonly maxQueued: number,
    /** `Infinity` when there is no shared total. */
    readonly total: number,
    readonly maxKeys: number
  ) {}

  /** Keys held. */
  get keys(): number {
    return this.partitions.size
  }

  get(key: string): Partition | undefined {
    return this.partitions.get(key)
  }

  /**
   * Takes a permit of `key` and of the total when both are free and no call
   * of the key is queued (a newcomer never overtakes its key's queue; and
   * while the ring is not empty no total permit is free, so it never
   * overtakes another key's either).
   */
  acquire(key: string): Acquire {
    if (this.active >= this.total) {
      return this.partitions.has(key) || this.partitions.size < this.maxKeys
        ? BLOCKED
        : TOO_MANY_KEYS
    }
    let partition = this.partitions.get(key)
    if (partition === undefined) {
      if (this.partitions.size >= this.maxKeys) return TOO_MANY_KEYS
      partition = new Partition(key)
      this.partitions.set(key, partition)
    } else if (partition.active >= this.perKey || partition.waiters.size > 0) return BLOCKED
    partition.active++
    this.active++
    return ACQUIRED
  }

  /**
   * Queues a call that {@link acquire} answered {@link BLOCKED} for, in the
   * same step; or answers which limit refuses it when the key's queue is
   * full, or {@link TOO_MANY_KEYS}.
   */
  enqueue(key: string): Queued | Limit | typeof TOO_MANY_KEYS {
    const partition = this.partitions.get(key)
    if (partition === undefined) {
      // Only the total holds a new key back; it is added only if it can queue.
      if (this.partitions.size >= this.maxKeys) return TOO_MANY_KEYS
      if (this.maxQueued === 0) return "total"
      const added = new Partition(key)
      this.partitions.set(key, added)
      return this.queue(added)
    }
    if (partition.waiters.size >= this.maxQueued) return this.limitOf(partition)
    return this.queue(partition)
  }

  /** Which limit holds the key's calls back. */
  limitOf(partition: Partition): Limit {
    return partition.active >= this.perKey ? "perKey" : "total"
  }

  /**
   * Gives back a permit of the partition and of the total, and hands the
   * freed total permit to the next ready key. Answers the number of waiters
   * granted a permit (0 or 1; more only if the ring held keys while a total
   * permit was free, which the invariants exclude).
   */
  release(partition: Partition): number {
    partition.active--
    this.active--
    if (partition.waiters.size > 0 && !partition.ready) this.pushReady(partition)
    const granted = this.dispatch()
    this.dropIfIdle(partition)
    return granted
  }

  /**
   * Ends the wait of a waiter of `partition`, whatever ended it (see
   * `Waiters.settle`). When it was still waiting, it has left the queue, and
   * the key is dropped if it holds nothing else.
   */
  settle(partition: Partition, waiter: Waiters.Waiter): Waiters.Status {
    const status = partition.waiters.settle(waiter)
    if (status === Waiters.WAITING) {
      this.queued--
      if (partition.waiters.size === 0 && partition.ready) this.removeReady(partition)
      this.dropIfIdle(partition)
    }
    return status
  }

  private queue(partition: Partition): Queued {
    const waiter = partition.waiters.enqueue()
    this.queued++
    if (partition.active < this.perKey && !partition.ready) this.pushReady(partition)
    return { partition, waiter }
  }

  /** Hands free total permits to ready keys, round-robin: one each, the served key to the back. */
  private dispatch(): number {
    let granted = 0
    while (this.active < this.total) {
      const partition = this.readyHead
      if (partition === undefined) break
      this.removeReady(partition)
      if (!partition.waiters.grantOldest()) continue
      partition.active++
      this.active++
      this.queued--
      granted++
      if (partition.waiters.size > 0 && partition.active < this.perKey) this.pushReady(partition)
    }
    return granted
  }

  private dropIfIdle(partition: Partition): void {
    if (partition.active === 0 && partition.waiters.size === 0 && this.partitions.get(partition.key) === partition) {
      this.partitions.delete(partition.key)
    }
  }

  private pushReady(partition: Partition): void {
    const tail = this.readyTail
    partition.ready = true
    partition.readyPrev = tail
    partition.readyNext = undefined
    if (tail === undefined) this.readyHead = partition
    else tail.readyNext = partition
    this.readyTail = partition
  }

  private removeReady(partition: Partition): void {
    const { readyNext: next, readyPrev: prev } = partition
    if (prev === undefined) this.readyHead = next
    else prev.readyNext = next
    if (next === undefined) this.readyTail = prev
    else next.readyPrev = prev
    partition.ready = false
    partition.readyPrev = undefined
    partition.readyNext = undefined
  }
}
