/**
 * The wait queue of a bulkhead: a FIFO of waiting calls with O(1) enqueue,
 * hand-off to the oldest waiter and removal from anywhere.
 *
 * It is an intrusive doubly linked list of plain objects, changed only by
 * synchronous methods: each method is one step that no other fiber can
 * interleave with (fibers interleave only between effects). Each waiter has
 * its own wake-up callback rather than a shared one: a release wakes exactly
 * one fiber, not every waiter (the thundering herd of a semaphore whose
 * waiters all retry on the same counter).
 *
 * A waiter moves from `Waiting` to either `Granted` (handed a permit) or
 * `Left` (its fiber gave up: interrupted, or `maxWait` ran out), and is in
 * the queue exactly while it is `Waiting`.
 */
import * as Effect from "effect/Effect"
import type { Reaper } from "./timeouts.js"

/** @internal */
export const WAITING = 0
/** @internal */
export const GRANTED = 1
/** @internal */
export const LEFT = 2

/** @internal */
export type Status = typeof WAITING | typeof GRANTED | typeof LEFT

/** @internal */
export class Waiter {
  prev: Waiter | undefined = undefined
  next: Waiter | undefined = undefined
  status: Status = WAITING
  /** Set when `maxWait` has run out. */
  timedOut = false
  /** The reaper that times this waiter out, while it watches it (see `timeouts.ts`). */
  reaper: Reaper | undefined = undefined
  /** When `maxWait` runs out, in the reaper's clock (nanoseconds). */
  deadline = 0n
  /** Links in the reaper's list, in deadline order. */
  reaperPrev: Waiter | undefined = undefined
  reaperNext: Waiter | undefined = undefined
  /** Set when the reaper's fiber has gone and this waiter is to fork it again (see `timeouts.ts`). */
  private takeOver = false
  private wake: ((_: Effect.Effect<void>) => void) | undefined = undefined

  /**
   * Suspends until the waiter is granted a permit or times out; resumes at
   * once when that already happened (a grant may come before its fiber gets
   * here).
   */
  readonly wait: Effect.Effect<void> = Effect.async<void>((resume) => {
    if (this.status === WAITING && !this.timedOut && !this.takeOver) this.wake = resume
    else resume(Effect.void)
  })

  /** Resumes the waiting fiber, if it is suspended. */
  notify(): void {
    const wake = this.wake
    if (wake !== undefined) {
      this.wake = undefined
      wake(Effect.void)
    }
  }

  /**
   * Marks the wait as timed out and wakes the fiber, which then decides: a
   * permit handed over before it runs is still used.
   */
  timeOut(): void {
    this.timedOut = true
    this.notify()
  }

  /** Wakes the fiber to take its reaper over. */
  handOver(): void {
    this.takeOver = true
    this.notify()
  }

  /** Whether the wait ended only to take the reaper over (clears the request): then it waits again. */
  tookOver(): boolean {
    const takeOver = this.takeOver
    this.takeOver = false
    return takeOver && this.status === WAITING && !this.timedOut
  }
}

/** @internal */
export class Waiters {
  private head: Waiter | undefined = undefined
  private tail: Waiter | undefined = undefined
  /** Waiters in the queue. */
  size = 0

  /** Appends a new waiter. */
  enqueue(): Waiter {
    const waiter = new Waiter()
    const tail = this.tail
    waiter.prev = tail
    if (tail === undefined) this.head = waiter
    else tail.next = waiter
    this.tail = waiter
    this.size++
    return waiter
  }

  /**
   * Hands a permit to the oldest waiter, removing it from the queue and
   * waking its fiber; `false` when nobody waits.
   */
  grantOldest(): boolean {
    const head = this.head
    if (head === undefined) return false
    this.leave(head, GRANTED)
    head.notify()
    return true
  }

  /**
   * Ends a wait, whatever ended it (a grant, a time-out, an interruption).
   * Answers the status it had: when `Waiting`, it has now left the queue;
   * when `Granted`, the caller holds a permit (possibly handed over in the
   * very instant a time-out or an interruption arrived) and must use it or
   * give it back.
   */
  settle(waiter: Waiter): Status {
    const status = waiter.status
    if (status === WAITING) this.leave(waiter, LEFT)
    return status
  }

  private leave(waiter: Waiter, status: Status): void {
    const { next, prev } = waiter
    if (prev === undefined) this.head = next
    else prev.next = next
    if (next === undefined) this.tail = prev
    else next.prev = prev
    waiter.prev = undefined
    waiter.next = undefined
    waiter.status = status
    this.size--
  }
}
