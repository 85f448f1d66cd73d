import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Pipeable from "effect/Pipeable"
import { hasProperty } from "effect/Predicate"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Options from "../../internal/options.js"
import * as Region from "../../internal/region.js"
import * as Trace from "../../internal/trace.js"
import { attributes as TraceAttributes } from "../../internal/tracingAttributes.js"
import type * as Bulkhead from "../Bulkhead.js"
import { BulkheadFullError } from "./errors.js"
import { Instruments } from "./instruments.js"
import * as Timeouts from "./timeouts.js"
import * as Waiters from "./waiters.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/Bulkhead")

/** @internal */
export const defaults = {
  maxQueued: 0,
  maxWait: Duration.infinity
} as const

type Restore = Region.Restore

/** @internal */
export class BulkheadImpl extends Pipeable.Class() implements Bulkhead.Bulkhead {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly snapshot: Effect.Effect<Bulkhead.Snapshot>
  // One synchronous step per decision is atomic: fibers interleave only between effects; an STM commit costs ~2.6 µs, more than the rest of a call.
  private available: number
  private readonly waiters = new Waiters.Waiters()
  private readonly metrics: Instruments
  /** Times out queued calls after `maxWait`, when it is finite. */
  private readonly timeouts: Timeouts.Timeouts | undefined

  constructor(readonly name: string, readonly limits: Bulkhead.Limits) {
    super()
    this.available = limits.maxConcurrent
    this.metrics = new Instruments(name)
    this.timeouts = Duration.isFinite(limits.maxWait) ? new Timeouts.Timeouts(limits.maxWait) : undefined
    this.snapshot = Effect.sync(() => this.unsafeSnapshot())
  }

  /** The counts, read in one synchronous step. */
  unsafeSnapshot(): Bulkhead.Snapshot {
    const available = this.available
    return {
      name: this.name,
      active: this.limits.maxConcurrent - available,
      queued: this.waiters.size,
      available,
      ...this.limits
    }
  }

  /**
   * The bulkhead's steps in an isolation region (see `internal/region.ts`):
   * a bulkhead alone, or joined with circuit breakers around or inside it,
   * costs one interruption mask per call. Per call, the happy path is a
   * counter decrement and a counter increment around a prebuilt bracket.
   */
  private readonly gate: Region.Gate<unknown, unknown, BulkheadFullError> = {
    trace: {
      spanName: () => `bulwark.bulkhead ${this.name}`,
      describe: (attributes) => Trace.setOnce(attributes, TraceAttributes.bulkheadName, this.name),
      waited: (call, millis) => {
        if (call.holds(TraceAttributes.bulkheadName, this.name)) {
          call.attribute(TraceAttributes.bulkheadQueuedMs, millis)
        }
      }
    },
    needsStart: false,
    enter: () => {
      // A free permit implies an empty queue (a released permit goes straight
      // to the oldest waiter), so the fast path never looks at the queue.
      if (this.available > 0) {
        this.available--
        this.metrics.active(1)
        return 0
      }
      return this.queue
    },
    exitSuccess: () => {
      this.release()
      return undefined
    },
    exitFailure: () => {
      this.release()
      return undefined
    }
  }

  /** No free permit: queue or reject, the standard way, inside the region's outer gates. */
  private readonly queue: Region.Wait<unknown, unknown, BulkheadFullError> = {
    _tag: "Wait",
    run: (restore, self) =>
      this.queueOrReject(
        restore,
        Effect.matchCauseEffect(restore(self), {
          onFailure: (cause) => {
            this.release()
            return Effect.failCause(cause)
          },
          onSuccess: (value) => {
            this.release()
            return Effect.succeed(value)
          }
        })
      )
  }

  protect = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | BulkheadFullError, R> =>
    Region.protect(self, this.gate)

  /** Gives a permit back: to the oldest waiter if any (waking its fiber alone), otherwise to the pool. */
  private release(): void {
    if (this.waiters.grantOldest()) this.metrics.queued(-1)
    else {
      this.available++
      this.metrics.active(-1)
    }
  }

  /**
   * No permit is free: queue the call if the queue has room, in the same
   * synchronous step as the decision, so the bound is exact. Once the wait
   * ends, the waiter's status decides, not how the wait ended: a permit may be
   * handed over in the very instant of a time-out or an interruption, and
   * must then be used or given back, never lost.
   */
  private queueOrReject<A, E, R>(
    restore: Restore,
    run: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | BulkheadFullError, R> {
    if (this.waiters.size >= this.limits.maxQueued) {
      this.metrics.rejected()
      return Effect.fail(this.full("QueueFull"))
    }
    const waiter = this.waiters.enqueue()
    this.metrics.queued(1)
    const wait = restore(waiter.wait)
    const timeouts = this.timeouts
    return Effect.matchCauseEffect(
      timeouts === undefined ? wait : timeouts.wait(waiter, wait),
      {
        onFailure: (cause) => {
          // Interrupted while queued.
          if (this.settle(waiter) === Waiters.GRANTED) this.release()
          return Effect.failCause(cause)
        },
        onSuccess: (): Effect.Effect<A, E | BulkheadFullError, R> => {
          // Granted (the releaser already moved the gauges), or timed out.
          if (this.settle(waiter) === Waiters.GRANTED) return run
          this.metrics.rejected()
          return Effect.fail(this.full("MaxWait"))
        }
      }
    )
  }

  private settle(waiter: Waiters.Waiter): Waiters.Status {
    this.timeouts?.unwatch(waiter)
    const status = this.waiters.settle(waiter)
    if (status === Waiters.WAITING) this.metrics.queued(-1)
    return status
  }

  private full(reason: Bulkhead.FullReason): BulkheadFullError {
    return new BulkheadFullError({ bulkhead: this.name, reason, ...this.limits })
  }
}

/**
 * The `component` of a bulkhead's `InvalidOptionsError`s.
 *
 * @internal
 */
export const component = (name: string): string => `Bulkhead "${name}"`

/**
 * Checks a bulkhead's options and fills in the defaults: the validation of
 * every bulkhead variant.
 *
 * @internal
 */
export const validate = (
  options: Bulkhead.Bulkhead.Options
): Either.Either<Bulkhead.Limits & { readonly name: string }, InvalidOptionsError> =>
  Either.flatMap(Options.name({ component: "Bulkhead", option: "name" }, options.name), (name) => {
    const field = (option: string): Options.Field => ({ component: component(name), option })
    return Either.all({
      name: Either.right(name),
      maxConcurrent: Options.number(field("maxConcurrent"), options.maxConcurrent, {
        min: 1,
        integer: true
      }),
      maxQueued: Options.number(field("maxQueued"), options.maxQueued ?? defaults.maxQueued, {
        min: 0,
        integer: true,
        allowInfinity: true
      }),
      maxWait: Either.map(
        Options.optionalDuration(field("maxWait"), options.maxWait, { allowInfinite: true }),
        (maxWait) => maxWait ?? defaults.maxWait
      )
    })
  })

/** @internal */
export const makeImpl = (options: Bulkhead.Bulkhead.Options): Effect.Effect<BulkheadImpl, InvalidOptionsError> =>
  Effect.map(validate(options), ({ name, ...limits }) => new BulkheadImpl(name, limits))

/** @internal */
export const make: (options: Bulkhead.Bulkhead.Options) => Effect.Effect<Bulkhead.Bulkhead, InvalidOptionsError> =
  makeImpl

/** @internal */
export const protect = dual<
  (
    bulkhead: Bulkhead.Bulkhead
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | BulkheadFullError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    bulkhead: Bulkhead.Bulkhead
  ) => Effect.Effect<A, E | BulkheadFullError, R>
>(2, (self, bulkhead) => bulkhead.protect(self))

/** @internal */
export const snapshot = (self: Bulkhead.Bulkhead): Effect.Effect<Bulkhead.Snapshot> => self.snapshot

/** @internal */
export const isBulkhead = (u: unknown): u is Bulkhead.Bulkhead => hasProperty(u, TypeId)
