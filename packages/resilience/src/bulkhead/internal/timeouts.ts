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
 * The reaper's fiber is a child of the fiber of a waiting call (the one that
 * found it not running), so it lives in that call's scope: when that fiber
 * ends, or its scope closes, the reaper is interrupted with it and awaited,
 * and nothing a bulkhead forks outlives its callers. The waiters still on
 * the list are then handed to the first of them that still waits: its fiber
 * wakes, forks the reaper again as its own child, and waits on.
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
  /** Whether a fiber runs {@link run}, or is being forked to. */
  private running = false
  private stopped = false
  /** One round: time out the waiters that are due, then sleep until the next deadline. */
  private readonly round: Effect.Effect<void> = Effect.suspend(() => this.reap())
  private readonly run: Effect.Effect<void> = Effect.ensuring(
    Effect.interruptible(this.round),
    Effect.sync(() => this.ended())
  )

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

  /** Forks the reaper's fiber as a child of the current fiber, unless one runs already. */
  start(): Effect.Effect<void> {
    if (this.running || this.stopped) return Effect.void
    this.running = true
    return Effect.map(Effect.fork(this.run), (fiber) => this.started(fiber))
  }

  /** Stops the fiber, or, when it is not forked yet, makes it stop at once. */
  stop(): void {
    this.stopped = true
    const fiber = this.fiber
    this.fiber = undefined
    if (fiber !== undefined) fiber.unsafeInterruptAsFork(FiberId.none)
  }

  /**
   * With no fiber running, wakes the first waiter that still waits to fork
   * one (see {@link Waiters.Waiter.takeOver}); waiters already granted or
   * timed out are about to leave the list.
   */
  handOver(): void {
    if (this.running || this.stopped) return
    for (let waiter = this.head; waiter !== undefined; waiter = waiter.reaperNext) {
      if (waiter.status === Waiters.WAITING && !waiter.timedOut) {
        waiter.handOver()
        return
      }
    }
  }

  private started(fiber: Fiber.RuntimeFiber<void>): void {
    if (this.stopped) fiber.unsafeInterruptAsFork(FiberId.none)
    else if (this.running) this.fiber = fiber
  }

  /** The fiber ended: done, stopped, or interrupted with the fiber it belongs to. */
  private ended(): void {
    this.running = false
    this.fiber = undefined
    this.handOver()
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
   * `wait` (the waiter's interruptible wait) under the waiter's `maxWait`, on
   * the clock of the waiting fiber. The wait may wake to take the reaper over
   * (see {@link Reaper.handOver}): it then starts the reaper and waits again.
   */
  wait(waiter: Waiter, wait: Effect.Effect<void>): Effect.Effect<void> {
    const waitOn: Effect.Effect<void> = Effect.flatMap(wait, () => {
      if (!waiter.tookOver()) return Effect.void
      const reaper = waiter.reaper
      return reaper === undefined ? waitOn : Effect.zipRight(reaper.start(), waitOn)
    })
    return Effect.zipRight(Effect.clockWith((clock) => this.watch(waiter, clock)), waitOn)
  }

  /**
   * Starts the waiter's `maxWait` on the given clock, and the reaper of that
   * clock if it does not run; nothing to do when the wait already ended.
   */
  private watch(waiter: Waiter, clock: Clock.Clock): Effect.Effect<void> {
    if (waiter.status !== Waiters.WAITING || waiter.timedOut) return Effect.void
    let reaper = this.reapers.get(clock)
    if (reaper === undefined) {
      reaper = new Reaper(clock, this)
      this.reapers.set(clock, reaper)
    }
    reaper.add(waiter, clock.unsafeCurrentTimeNanos() + this.maxWait)
    return reaper.start()
  }

  /**
   * Ends the watch of a waiter whose wait ended: stops its reaper when it has
   * nothing left to watch, or hands it over when its fiber has gone.
   */
  unwatch(waiter: Waiter): void {
    const reaper = waiter.reaper
    if (reaper === undefined) return
    if (reaper.remove(waiter)) {
      this.forget(reaper)
      reaper.stop()
    } else reaper.handOver()
  }

  /** Drops a reaper that has stopped, unless another one has replaced it. */
  forget(reaper: Reaper): void {
    if (this.reapers.get(reaper.clock) === reaper) this.reapers.delete(reaper.clock)
  }
}
