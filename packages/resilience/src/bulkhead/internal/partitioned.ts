/**
 * The partitioned bulkhead's effectful shell over `partitions.ts`: the gate
 * it adds to an isolation region, the waits of queued calls (the fast
 * bulkhead's `Waiters` and `Timeouts`, one reaper for every key), metrics,
 * and option validation.
 *
 * @internal
 */
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
import type * as PartitionedBulkhead from "../PartitionedBulkhead.js"
import { Instruments } from "./instruments.js"
import { PartitionedBulkheadFullError } from "./partitionedErrors.js"
import * as Partitions from "./partitions.js"
import * as Timeouts from "./timeouts.js"
import * as Waiters from "./waiters.js"

/** @internal */
export const TypeId: unique symbol = Symbol.for("@bulwark/resilience/PartitionedBulkhead")

type Restore = Region.Restore
type FullError = PartitionedBulkheadFullError

/** @internal */
export class PartitionedBulkheadImpl extends Pipeable.Class() implements PartitionedBulkhead.PartitionedBulkhead {
  readonly [TypeId]: typeof TypeId = TypeId
  readonly snapshot: Effect.Effect<PartitionedBulkhead.Snapshot>
  // Synchronous steps, as the fast bulkhead's: atomic because fibers interleave only between effects.
  readonly table: Partitions.Table
  private readonly metrics: Instruments
  /** Times out queued calls after `perKey.maxWait`, when it is finite: one reaper for every key. */
  private readonly timeouts: Timeouts.Timeouts | undefined

  constructor(readonly name: string, readonly limits: PartitionedBulkhead.Limits) {
    super()
    const { perKey, total, maxKeys } = limits
    this.table = new Partitions.Table(
      perKey.maxConcurrent,
      perKey.maxQueued,
      total?.maxConcurrent ?? Infinity,
      maxKeys
    )
    this.metrics = new Instruments(name)
    this.timeouts = Duration.isFinite(perKey.maxWait) ? new Timeouts.Timeouts(perKey.maxWait) : undefined
    this.snapshot = Effect.sync(() => this.unsafeSnapshot())
  }

  unsafeSnapshot(): PartitionedBulkhead.Snapshot {
    const table = this.table
    return { name: this.name, active: table.active, queued: table.queued, keys: table.keys, ...this.limits }
  }

  snapshotKey = (key: string): Effect.Effect<PartitionedBulkhead.KeySnapshot> =>
    Effect.sync(() => {
      const partition = this.table.get(key)
      return partition === undefined
        ? { active: 0, queued: 0 }
        : { active: partition.active, queued: partition.waiters.size }
    })

  protect = (key: string) => <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E | FullError, R> =>
    Region.protect(self, this.gate(key))

  /**
   * The steps of one key in an isolation region (see `internal/region.ts`),
   * as the fast bulkhead's. Built per `protect`, as it names the key: the
   * key's partition is looked up again when the call ends (it is held as long
   * as the call holds its permit), since an idle key's partition is dropped
   * and a later call may hold a new one.
   */
  private gate(key: string): Region.Gate<unknown, unknown, FullError> {
    const release = () => {
      const partition = this.table.get(key)
      if (partition !== undefined) this.release(partition)
      return undefined
    }
    return {
      trace: this.trace,
      needsStart: false,
      enter: () => {
        const acquired = this.table.acquire(key)
        if (acquired === Partitions.ACQUIRED) {
          this.metrics.active(1)
          return 0
        }
        if (acquired === Partitions.TOO_MANY_KEYS) return new Region.Refused(this.reject("TooManyKeys", "maxKeys"))
        return {
          _tag: "Wait",
          run: (restore, self) => this.queueOrReject(key, restore, self)
        }
      },
      exitSuccess: release,
      exitFailure: release
    }
  }

  private readonly trace: Region.GateTrace = {
    // No key in the span: it is often a customer's identifier.
    spanName: () => `bulwark.bulkhead ${this.name}`,
    describe: (attributes) => Trace.setOnce(attributes, TraceAttributes.bulkheadName, this.name),
    waited: (call, millis) => {
      if (call.holds(TraceAttributes.bulkheadName, this.name)) {
        call.attribute(TraceAttributes.bulkheadQueuedMs, millis)
      }
    }
  }

  /**
   * The call cannot run now: queue it in its key's queue if there is room, in
   * the same synchronous step as the decision. As in the fast bulkhead, once
   * the wait ends the waiter's status decides, not how the wait ended: a
   * permit handed over in the instant of a time-out or an interruption is
   * used or given back, never lost.
   */
  private queueOrReject<A, E, R>(
    key: string,
    restore: Restore,
    self: Effect.Effect<A, E, R>
  ): Effect.Effect<A, E | FullError, R> {
    const queued = this.table.enqueue(key)
    if (queued === Partitions.TOO_MANY_KEYS) return this.reject("TooManyKeys", "maxKeys")
    if (typeof queued === "string") return this.reject("QueueFull", queued)
    const { partition, waiter } = queued
    this.metrics.queued(1)
    const wait = restore(waiter.wait)
    const timeouts = this.timeouts
    return Effect.matchCauseEffect(timeouts === undefined ? wait : timeouts.wait(waiter, wait), {
      onFailure: (cause) => {
        // Interrupted while queued.
        if (this.settle(partition, waiter) === Waiters.GRANTED) this.release(partition)
        return Effect.failCause(cause)
      },
      onSuccess: (): Effect.Effect<A, E | FullError, R> => {
        // Granted (the releaser already moved the gauges), or timed out.
        const limit = this.table.limitOf(partition)
        if (this.settle(partition, waiter) === Waiters.GRANTED) return this.run(partition, restore, self)
        return this.reject("MaxWait", limit)
      }
    })
  }

  private run<A, E, R>(partition: Partitions.Partition, restore: Restore, self: Effect.Effect<A, E, R>) {
    return Effect.matchCauseEffect(restore(self), {
      onFailure: (cause) => {
        this.release(partition)
        return Effect.failCause(cause)
      },
      onSuccess: (value) => {
        this.release(partition)
        return Effect.succeed(value)
      }
    })
  }

  /** Gives a permit back; the table hands it on to the next ready key, if any. */
  private release(partition: Partitions.Partition): void {
    const granted = this.table.release(partition)
    this.metrics.active(granted - 1)
    if (granted > 0) this.metrics.queued(-granted)
  }

  private settle(partition: Partitions.Partition, waiter: Waiters.Waiter): Waiters.Status {
    this.timeouts?.unwatch(waiter)
    const status = this.table.settle(partition, waiter)
    if (status === Waiters.WAITING) this.metrics.queued(-1)
    return status
  }

  private reject(reason: PartitionedBulkhead.FullReason, limit: PartitionedBulkhead.FullLimit) {
    this.metrics.rejected()
    return Effect.fail(new PartitionedBulkheadFullError({ bulkhead: this.name, reason, limit, limits: this.limits }))
  }
}

/**
 * The `component` of a partitioned bulkhead's `InvalidOptionsError`s.
 *
 * @internal
 */
export const component = (name: string): string => `PartitionedBulkhead "${name}"`

const defaults = {
  maxQueued: 0,
  maxWait: Duration.infinity
} as const

/** A count ≥ 1, reported as missing (not as `NaN`) when left out. */
const required = (field: Options.Field, input: number | undefined): Options.Check<number> =>
  input === undefined
    ? Either.mapLeft(Options.number(field, NaN, { min: 1, integer: true }), (error) =>
      Options.invalid(field, input, error.expected))
    : Options.number(field, input, { min: 1, integer: true })

/**
 * Checks the options and fills in the defaults. Nested options are named by
 * their path (`perKey.maxQueued`); a missing `perKey` object is reported as
 * a missing `perKey.maxConcurrent`.
 *
 * @internal
 */
export const validate = (
  options: PartitionedBulkhead.PartitionedBulkhead.Options
): Either.Either<PartitionedBulkhead.Limits & { readonly name: string }, InvalidOptionsError> =>
  Either.flatMap(Options.name({ component: "PartitionedBulkhead", option: "name" }, options.name), (name) => {
    const field = (option: string): Options.Field => ({ component: component(name), option })
    // Typed as required, but a plain JavaScript caller may leave it out.
    const perKey: Partial<PartitionedBulkhead.PartitionedBulkhead.Options["perKey"]> = options.perKey ?? {}
    const total = options.total
    return Either.all({
      name: Either.right(name),
      perKey: Either.all({
        maxConcurrent: required(field("perKey.maxConcurrent"), perKey.maxConcurrent),
        maxQueued: Options.number(field("perKey.maxQueued"), perKey.maxQueued ?? defaults.maxQueued, {
          min: 0,
          integer: true,
          allowInfinity: true
        }),
        maxWait: Either.map(
          Options.optionalDuration(field("perKey.maxWait"), perKey.maxWait, { allowInfinite: true }),
          (maxWait) => maxWait ?? defaults.maxWait
        )
      }),
      total: total === undefined
        ? Either.right(undefined)
        : Either.map(
          Options.number(field("total.maxConcurrent"), total.maxConcurrent, { min: 1, integer: true }),
          (maxConcurrent) => ({ maxConcurrent })
        ),
      maxKeys: Options.number(field("maxKeys"), options.maxKeys, { min: 1, integer: true })
    })
  })

/** @internal */
export const makeImpl = (
  options: PartitionedBulkhead.PartitionedBulkhead.Options
): Effect.Effect<PartitionedBulkheadImpl, InvalidOptionsError> =>
  Effect.map(validate(options), ({ name, ...limits }) => new PartitionedBulkheadImpl(name, limits))

/** @internal */
export const make: (
  options: PartitionedBulkhead.PartitionedBulkhead.Options
) => Effect.Effect<PartitionedBulkhead.PartitionedBulkhead, InvalidOptionsError> = makeImpl

/** @internal */
export const protect = dual<
  (
    bulkhead: PartitionedBulkhead.PartitionedBulkhead,
    key: string
  ) => <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | FullError, R>,
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    bulkhead: PartitionedBulkhead.PartitionedBulkhead,
    key: string
  ) => Effect.Effect<A, E | FullError, R>
>(3, (self, bulkhead, key) => bulkhead.protect(key)(self))

/** @internal */
export const snapshot = (
  self: PartitionedBulkhead.PartitionedBulkhead
): Effect.Effect<PartitionedBulkhead.Snapshot> => self.snapshot

/** @internal */
export const snapshotKey = dual<
  (key: string) => (self: PartitionedBulkhead.PartitionedBulkhead) => Effect.Effect<PartitionedBulkhead.KeySnapshot>,
  (self: PartitionedBulkhead.PartitionedBulkhead, key: string) => Effect.Effect<PartitionedBulkhead.KeySnapshot>
>(2, (self, key) => self.snapshotKey(key))

/** @internal */
export const isPartitionedBulkhead = (u: unknown): u is PartitionedBulkhead.PartitionedBulkhead =>
  hasProperty(u, TypeId)
