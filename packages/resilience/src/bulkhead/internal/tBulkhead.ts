/**
 * The STM bulkhead: permits in a `TSemaphore`, the queued calls counted in a
 * `TRef`, every step a transaction.
 *
 * `protect` commits one transaction to enter (take a free permit, or join the
 * queue, or refuse) and one to leave (give the permit back), and moves the
 * gauges itself right after each commit: a gauge moves by deltas, which
 * commute, so the order of two calls' updates does not matter. A queued call
 * waits in a transaction that retries until a permit is free, and reads its
 * own status (a `TRef`): the timer of `maxWait` ends the wait by marking the
 * status expired in a transaction of its own, and an interrupted call settles
 * by what the status says, not by how its wait ended (the wait's commit may
 * have taken a permit in the very instant of the interruption: it is then
 * given back).
 *
 * The module's STM functions run in a user's transactions, where no side
 * effect may run: they add their move of the active gauge to an outbox (a
 * `TRef`) in the same transaction, and a reporter fiber, forked in the scope
 * of `make`, takes the outbox atomically whenever it is not zero and applies
 * it. `protect` never touches the outbox.
 *
 * @internal
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import { dual } from "effect/Function"
import * as Pipeable from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import type * as Scope from "effect/Scope"
import * as STM from "effect/STM"
import * as TRef from "effect/TRef"
import * as TSemaphore from "effect/TSemaphore"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Trace from "../../internal/trace.js"
import { attributes as TraceAttributes } from "../../internal/tracingAttributes.js"
import type * as Bulkhead from "../Bulkhead.js"
import type * as TBulkhead from "../TBulkhead.js"
import { TypeId as BulkheadTypeId, validate } from "./bulkhead.js"
import { BulkheadFullError } from "./errors.js"
import { Instruments } from "./instruments.js"
import type * as registry from "./registry.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/TBulkhead")

type Restore = <X, Y, Z>(effect: Effect.Effect<X, Y, Z>) => Effect.Effect<X, Y, Z>

/** A queued call's status: it waits, was granted a permit, ran out of `maxWait`, or gave up. */
const WAITING = 0
const GRANTED = 1
const EXPIRED = 2
const LEFT = 3
type Status = typeof WAITING | typeof GRANTED | typeof EXPIRED | typeof LEFT

/** What entering decided: a permit, a refusal, or a place in the queue (the status of the queued call). */
const ADMITTED = 0
const REJECTED = 1
type Admission = typeof ADMITTED | typeof REJECTED | TRef.TRef<Status>

const increment = (n: number): number => n + 1
const decrement = (n: number): number => n - 1

class TBulkheadImpl extends Pipeable.Class() implements TBulkhead.TBulkhead {
  readonly [BulkheadTypeId]: typeof BulkheadTypeId = BulkheadTypeId
  readonly [TypeId]: typeof TypeId = TypeId
  readonly snapshot: Effect.Effect<Bulkhead.Snapshot>
  readonly transactions: TBulkhead.TBulkhead.Transactions
  /** Takes the outbox whenever it is not zero and moves the active gauge by it; runs in the scope of `make`. */
  readonly reporter: Effect.Effect<never>
  private readonly metrics: Instruments
  /** Enters: a free permit, or a place in the queue, or a refusal; one commit. */
  private readonly admit: Effect.Effect<Admission>
  /** Gives a permit of `protect` back; one commit. */
  private readonly releaseCall: Effect.Effect<void>

  constructor(
    readonly name: string,
    readonly limits: Bulkhead.Limits,
    private readonly permits: TSemaphore.TSemaphore,
    private readonly queued: TRef.TRef<number>,
    outbox: TRef.TRef<number>
  ) {
    super()
    const { maxConcurrent, maxQueued } = limits
    const metrics = new Instruments(name)
    this.metrics = metrics
    const available = TSemaphore.available(permits)

    const take: STM.STM<Admission> = STM.as(TSemaphore.acquire(permits), ADMITTED)
    const queueOrReject: STM.STM<Admission> = maxQueued === 0
      ? STM.succeed(REJECTED)
      : STM.flatMap(TRef.get(queued), (count): STM.STM<Admission> =>
        count < maxQueued
          ? STM.zipRight(TRef.set(queued, count + 1), TRef.make<Status>(WAITING))
          : STM.succeed(REJECTED))
    this.admit = STM.commit(STM.flatMap(available, (free) => free > 0 ? take : queueOrReject))
    this.releaseCall = Effect.map(STM.commit(TSemaphore.release(permits)), () => metrics.active(-1))

    const acquire = STM.zipRight(TSemaphore.acquire(permits), TRef.update(outbox, increment))
    const release = STM.zipRight(TSemaphore.release(permits), TRef.update(outbox, decrement))
    this.transactions = {
      acquire,
      tryAcquire: STM.flatMap(available, (free) => free > 0 ? acquire : STM.fail(this.full("QueueFull"))),
      release: STM.flatMap(available, (free) =>
        free < maxConcurrent
          ? release
          : STM.dieMessage(`TBulkhead "${name}": release without a permit held (all ${maxConcurrent} are free)`)),
      snapshot: STM.map(STM.zip(available, TRef.get(queued)), ([free, waiting]) => ({
        name,
        active: maxConcurrent - free,
        queued: waiting,
        available: free,
        ...limits
      }))
    }
    this.snapshot = STM.commit(this.transactions.snapshot)

    const pending = STM.flatMap(TRef.get(outbox), (delta) => delta === 0 ? STM.retry : STM.void)
    const takeOutbox = TRef.getAndSet(outbox, 0)
    // Waiting commits nothing, so an interruption there loses nothing; taking and applying is one uninterruptible step.
    this.reporter = Effect.forever(
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(restore(STM.commit(pending)), Effect.map(STM.commit(takeOutbox), metrics.active))
      )
    )
  }

  protect = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | BulkheadFullError, R> => {
    const layer: Trace.Traceable = {
      spanName: () => `bulwark.bulkhead ${this.name}`,
      describe: (attributes) => {
        Trace.setOnce(attributes, TraceAttributes.bulkheadName, this.name)
        Trace.describeInner(self, attributes)
      }
    }
    const guarded = (restore: Restore, effect: Effect.Effect<A, E, R>) =>
      Effect.flatMap(this.admit, (admission): Effect.Effect<A, E | BulkheadFullError, R> => {
        if (admission === ADMITTED) {
          this.metrics.active(1)
          return this.running(restore, effect)
        }
        if (admission === REJECTED) {
          this.metrics.rejected()
          return Effect.fail(this.full("QueueFull"))
        }
        this.metrics.queued(1)
        // Queued: the traced call records how long it waited (a slow path; the clock read costs nothing beside it).
        return Effect.clockWith((clock) => {
          const queuedAt = clock.unsafeCurrentTimeMillis()
          return this.queue(admission, restore, effect, () => {
            const call = Trace.current()
            if (call?.holds(TraceAttributes.bulkheadName, this.name) === true) {
              call.attribute(TraceAttributes.bulkheadQueuedMs, clock.unsafeCurrentTimeMillis() - queuedAt)
            }
          })
        })
      })
    return Trace.mark(
      Effect.uninterruptibleMask((restore) =>
        Trace.tracing() ? Trace.inCall(layer, guarded(restore, Trace.operation(self))) : guarded(restore, self)
      ),
      layer
    )
  }

  /**
   * Runs a call that holds a permit, and gives the permit back however it
   * ends. Already inside the mask, a `matchCauseEffect` does what `ensuring`
   * would, without a second mask.
   */
  private running<A, E, R>(restore: Restore, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> {
    return Effect.matchCauseEffect(restore(self), {
      onSuccess: (value) => Effect.as(this.releaseCall, value),
      onFailure: (cause) => Effect.zipRight(this.releaseCall, Effect.failCause(cause))
    })
  }

  /**
   * A queued call: waits for a permit (interruptibly), under its `maxWait`
   * timer when `maxWait` is finite, then runs or fails with `MaxWait`. However
   * the wait ends, the call's status decides, and the call leaves the queue
   * gauge exactly once.
   */
  private queue<A, E, R>(
    status: TRef.TRef<Status>,
    restore: Restore,
    self: Effect.Effect<A, E, R>,
    admitted: () => void
  ): Effect.Effect<A, E | BulkheadFullError, R> {
    const wait = restore(STM.commit(this.waitFor(status)))
    const maxWait = this.limits.maxWait
    if (!Duration.isFinite(maxWait)) return this.settle(status, wait, Effect.void, restore, self, admitted)
    const expire = STM.flatMap(TRef.get(status), (current) =>
      current === WAITING
        ? STM.zipRight(TRef.set(status, EXPIRED), TRef.update(this.queued, decrement))
        : STM.void)
    return Effect.flatMap(
      Effect.fork(Effect.interruptible(Effect.zipRight(Effect.sleep(maxWait), STM.commit(expire)))),
      (timer) => this.settle(status, wait, Fiber.interrupt(timer), restore, self, admitted)
    )
  }

  private settle<A, E, R>(
    status: TRef.TRef<Status>,
    wait: Effect.Effect<boolean>,
    stopTimer: Effect.Effect<unknown>,
    restore: Restore,
    self: Effect.Effect<A, E, R>,
    admitted: () => void
  ): Effect.Effect<A, E | BulkheadFullError, R> {
    return Effect.matchCauseEffect(wait, {
      onFailure: (cause) =>
        // Interrupted while queued: leave the queue, or give back a permit taken in that very instant.
        Effect.zipRight(
          stopTimer,
          Effect.flatMap(STM.commit(this.leave(status)), () => {
            this.metrics.queued(-1)
            return Effect.failCause(cause)
          })
        ),
      onSuccess: (granted) =>
        Effect.zipRight(
          stopTimer,
          Effect.suspend((): Effect.Effect<A, E | BulkheadFullError, R> => {
            this.metrics.queued(-1)
            if (granted) {
              this.metrics.active(1)
              admitted()
              return this.running(restore, self)
            }
            this.metrics.rejected()
            return Effect.fail(this.full("MaxWait"))
          })
        )
    })
  }

  /** Waits for a free permit and takes it, leaving the queue in the same transaction; `false` once expired. */
  private waitFor(status: TRef.TRef<Status>): STM.STM<boolean> {
    return STM.flatMap(TRef.get(status), (current) =>
      current === WAITING
        ? STM.zipRight(
          TSemaphore.acquire(this.permits),
          STM.zipRight(TRef.update(this.queued, decrement), STM.as(TRef.set(status, GRANTED), true))
        )
        : STM.succeed(false))
  }

  /** An interrupted queued call leaves: out of the queue if it still waits, its permit back if it was granted one. */
  private leave(status: TRef.TRef<Status>): STM.STM<void> {
    return STM.flatMap(TRef.get(status), (current) =>
      current === WAITING
        ? STM.zipRight(TRef.set(status, LEFT), TRef.update(this.queued, decrement))
        : current === GRANTED
        ? STM.zipRight(TRef.set(status, LEFT), TSemaphore.release(this.permits))
        : STM.void)
  }

  private full(reason: Bulkhead.FullReason): BulkheadFullError {
    return new BulkheadFullError({ bulkhead: this.name, reason, ...this.limits })
  }
}

/** @internal */
export const make = (
  options: Bulkhead.Bulkhead.Options
): Effect.Effect<TBulkhead.TBulkhead, InvalidOptionsError, Scope.Scope> =>
  Effect.flatMap(validate(options), ({ name, ...limits }) =>
    Effect.flatMap(
      STM.commit(STM.all([TSemaphore.make(limits.maxConcurrent), TRef.make(0), TRef.make(0)])),
      ([permits, queued, outbox]) => {
        const bulkhead = new TBulkheadImpl(name, limits, permits, queued, outbox)
        return Effect.as(Effect.forkScoped(Effect.interruptible(bulkhead.reporter)), bulkhead)
      }
    ))

/** @internal */
export const protect = dual<
  (
    bulkhead: TBulkhead.TBulkhead
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    bulkhead: TBulkhead.TBulkhead
  ) => Effect.Effect<A, E | BulkheadFullError, R>
>(2, (self, bulkhead) => bulkhead.protect(self))

/** @internal */
export const isTBulkhead = (u: unknown): u is TBulkhead.TBulkhead => hasProperty(u, TypeId)

// -----------------------------------------------------------------------------
// Registry
// -----------------------------------------------------------------------------

/**
 * Named STM bulkheads, one per dependency, built from configuration; their
 * reporter fibers run in the layer's scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TBulkhead } from "@bulwark/resilience"
 *
 * // An admin route: every bulkhead with its counts, read in one transaction.
 * const status = Effect.flatMap(TBulkhead.Registry, (bulkheads) => bulkheads.snapshots)
 * ```
 *
 * @since 0.1.0
 * @category Registry
 */
export class Registry extends Context.Tag("@bulwark/resilience/TBulkhead/Registry")<Registry, Registry.Service>() {}

/**
 * @since 0.1.0
 * @category Registry
 */
export declare namespace Registry {
  /**
   * @since 0.1.0
   * @category Registry
   */
  export interface Service extends registry.Named<TBulkhead.TBulkhead> {}

  /**
   * Options per bulkhead name, as for `Bulkhead.layer`.
   *
   * @since 0.1.0
   * @category Registry
   */
  export type Config = registry.Registry.Config
}

/** The STM bulkheads: every snapshot read in one transaction. @internal */
export const variant: registry.Variant<Registry, TBulkhead.TBulkhead, TBulkhead.TBulkhead> = {
  tag: Registry,
  make,
  snapshots: (bulkheads) => STM.commit(STM.forEach(bulkheads, (bulkhead) => bulkhead.transactions.snapshot))
}
