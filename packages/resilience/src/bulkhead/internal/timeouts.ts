/**
 * `maxWait` for the waiters of one bulkhead, on the Clock (so that TestClock
 * drives it), without a timer fiber per waiter.
 *
 * Every waiter waits the same `maxWait`, so on one clock the deadlines come
 * in the order the waiters start waiting (the clock's nanosecond time is
 * monotonic: `hrtime` for the live clock). A {@link Reaper} keeps the waiters
 * of one clock in that order, and one fiber sleeps until the earliest
 * deadline, times out every waiter that is due, and sleeps again. A waiter
 * whose wait ends first leaves the reaper's list in O(1); when the list
 * empties, the fiber is stopped, so no fiber outlives the waits it watches.
 *
 * Timing a waiter out only marks it and wakes its fiber: that fiber then
 * decides, and a permit handed over in between is still used.
 *
 * Like the queue, every change is one synchronous step.
 */
import type * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as Waiters from "./waiters.js"

type Waiter = Waiters.Waiter

/** @internal */
export class Reaper {
  private head: Waiter | undefined = undefined
  private tail: Waiter | undefined = undefined
  private fiber: Fiber.RuntimeFiber<void> | undefined = undefined
  private stopped = false
  /** One round: time out the waiters that are due, then sleep until the next deadline. */
  private readonly round: Effect.Effect<void> = Effect.suspend(() => this.reap())
  readonly run: Effect.Effect<void> = Effect.interruptible(this.round)

  constructor(readonly clock: Clock.Clock, private readonly owner: Timeouts) {}

  add(waiter: Waiter, deadline: bigint): void {
    waiter.reaper = this
    waiter.deadline = deadline
    const tail = this.tail
    waiter.reaperPrev = tail
    if (tail === undefined) this.head = waiter
    else tail.reaperNext = waiter
    this.tail = waiter
  }

  /** Takes the waiter off the list; `true` when the list is now empty. */
  remove(waiter: Waiter): boolean {
    const { reaperNext: next, reaperPrev: prev } = waiter
    if (prev === undefined) this.head = next
    else prev.reaperNext = next
    if (next === undefined) this.tail = prev
    else next.reaperPrev = prev
    waiter.reaper = undefined
    waiter.reaperPrev = undefined
    waiter.reaperNext = undefined
    return this.head === undefined
  }

  /** The fiber running {@link run} has been forked. */
  started(fiber: Fiber.RuntimeFiber<void>): void {
    if (this.stopped) fiber.unsafeInterruptAsFork(FiberId.none)
    else this.fiber = fiber
  }

  /** Stops the fiber, or, when it is not forked yet, makes it stop at once. */
  stop(): void {
    this.stopped = true
    const fiber = this.fiber
    this.fiber = undefined
    if (fiber !== undefined) fiber.unsafeInterruptAsFork(FiberId.none)
  }

  private reap(): Effect.Effect<void> {
    if (this.stopped) return Effect.void
    const now = this.clock.unsafeCurrentTimeNanos()
    let head = this.head
    while (head !== undefined && head.deadline <= now) {
      this.remove(head)
      head.timeOut()
      head = this.head
    }
    if (head === undefined) {
      this.owner.forget(this)
      this.stopped = true
      return Effect.void
    }
    return Effect.zipRight(this.clock.sleep(Duration.nanos(head.deadline - now)), this.round)
  }
}

/** @internal */
export class Timeouts {
  private readonly reapers = new Map<Clock.Clock, Reaper>()
  private readonly maxWait: bigint

  constructor(maxWait: Duration.Duration) {
    this.maxWait = Duration.unsafeToNanos(maxWait)
  }

  /**
   * Starts the waiter's `maxWait` on the given clock (the waiting fiber's).
   * Answers the effect that forks the reaper's fiber when this clock has none
   * yet; nothing to do when the wait already ended.
   */
  watch(waiter: Waiter, clock: Clock.Clock): Effect.Effect<void> {
    if (waiter.status !== Waiters.WAITING || waiter.timedOut) return Effect.void
    const existing = this.reapers.get(clock)
    const reaper = existing ?? new Reaper(clock, this)
    reaper.add(waiter, clock.unsafeCurrentTimeNanos() + this.maxWait)
    if (existing !== undefined) return Effect.void
    this.reapers.set(clock, reaper)
    return Effect.map(Effect.forkDaemon(reaper.run), (fiber) => reaper.started(fiber))
  }

  /** Ends the watch of a waiter whose wait ended; stops its reaper when it has nothing left to watch. */
  unwatch(waiter: Waiter): void {
    const reaper = waiter.reaper
    if (reaper !== undefined && reaper.remove(waiter)) {
      this.forget(reaper)
      reaper.stop()
    }
  }

  /** Drops a reaper that has stopped, unless another one has replaced it. */
  forget(reaper: Reaper): void {
    if (this.reapers.get(reaper.clock) === reaper) this.reapers.delete(reaper.clock)
  }
}
