import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type { InvalidOptionsError } from "../../Failure.js"
import type * as RateLimiter from "../RateLimiter.js"
import type { Decision, Reservation, Spec } from "./algorithms.js"
import * as Algorithms from "./algorithms.js"
import type { Config } from "./config.js"
import { validateMaxKeys } from "./config.js"
import { RateLimiterStore } from "./store.js"

/** A key's state in the recency list (least recently used at the head). */
interface Entry<S> {
  readonly key: string
  state: S | undefined
  expiresAt: number
  prev: Entry<S> | undefined
  next: Entry<S> | undefined
}

/** One algorithm's pure functions, its spec applied. */
interface Kind<S> {
  readonly decide: (state: S | undefined, now: number, cost: number, maxDelay: number) => readonly [
    Decision,
    S | undefined
  ]
  readonly refund: (state: S | undefined, now: number, cost: number, reservation: Reservation) => S | undefined
}

/** Keys looked at for expiry per decision: amortised O(1), and enough to keep up since each key is swept once. */
const SWEEP = 2

/**
 * One limiter's keys: a `Map` for lookups and an intrusive doubly linked
 * list in order of use (least recently used at the head), so that moving a
 * key to the tail, sweeping idle keys from the head and evicting the head are
 * all O(1), with no iteration over the map. Idle keys, whose state has become
 * equivalent to no state, are swept as decisions come in; when a new key
 * finds the table full, the head goes even if live.
 *
 * @internal
 */
export class Table<S> {
  private readonly entries = new Map<string, Entry<S>>()
  private head: Entry<S> | undefined = undefined
  private tail: Entry<S> | undefined = undefined
  /** Live keys evicted because the table was full. */
  evictedLive = 0
  /** Idle keys swept. */
  expired = 0

  constructor(
    readonly maxKeys: number,
    private readonly kind: Kind<S>
  ) {}

  get size(): number {
    return this.entries.size
  }

  decide(key: string, now: number, cost: number, maxDelay: number): Decision {
    let entry = this.entries.get(key)
    if (entry === undefined) {
      this.sweep(now)
      if (this.entries.size >= this.maxKeys && this.head !== undefined) {
        if (this.head.expiresAt > now) this.evictedLive++
        else this.expired++
        this.remove(this.head)
      }
      entry = { key, state: undefined, expiresAt: now, prev: undefined, next: undefined }
      this.entries.set(key, entry)
      this.append(entry)
    } else if (entry !== this.tail) {
      this.unlink(entry)
      this.append(entry)
      this.sweep(now)
    }
    const [decision, state] = this.kind.decide(entry.state, now, cost, maxDelay)
    if (state !== entry.state) {
      entry.state = state
      entry.expiresAt = now + decision.reset
    }
    return decision
  }

  /**
   * Gives a reservation back (synchronously, so atomically); `true` when the
   * state changed. The entry keeps its place and its expiry: a refund only
   * brings the time the state matters closer.
   */
  refund(key: string, now: number, cost: number, reservation: Reservation): boolean {
    const entry = this.entries.get(key)
    if (entry === undefined) return false
    const state = this.kind.refund(entry.state, now, cost, reservation)
    if (state === entry.state) return false
    entry.state = state
    return true
  }

  private sweep(now: number): void {
    for (let i = 0; i < SWEEP; i++) {
      const head = this.head
      if (head === undefined || head === this.tail || head.expiresAt > now) return
      this.remove(head)
      this.expired++
    }
  }

  private remove(entry: Entry<S>): void {
    this.unlink(entry)
    this.entries.delete(entry.key)
  }

  private unlink(entry: Entry<S>): void {
    if (entry.prev === undefined) this.head = entry.next
    else entry.prev.next = entry.next
    if (entry.next === undefined) this.tail = entry.prev
    else entry.next.prev = entry.prev
    entry.prev = undefined
    entry.next = undefined
  }

  private append(entry: Entry<S>): void {
    entry.prev = this.tail
    if (this.tail === undefined) this.head = entry
    else this.tail.next = entry
    this.tail = entry
  }
}

/**
 * What the store needs of a table; `Table<S>` fits it for every `S`.
 *
 * @internal
 */
export interface AnyTable {
  readonly size: number
  readonly maxKeys: number
  readonly evictedLive: number
  readonly expired: number
  decide(key: string, now: number, cost: number, maxDelay: number): Decision
  refund(key: string, now: number, cost: number, reservation: Reservation): boolean
}

/** @internal */
export const makeTable = (spec: Spec, maxKeys: number): AnyTable => {
  switch (spec._tag) {
    case "TokenBucket":
      return new Table<Algorithms.TokenBucketState>(maxKeys, {
        decide: (s, now, cost, maxDelay) => Algorithms.tokenBucket(s, now, cost, spec, maxDelay),
        refund: (s, now, cost, reservation) => Algorithms.refundTokenBucket(s, now, cost, spec, reservation)
      })
    case "FixedWindow":
      return new Table<Algorithms.FixedWindowState>(maxKeys, {
        decide: (s, now, cost, maxDelay) => Algorithms.fixedWindow(s, now, cost, spec, maxDelay),
        refund: (s, now, cost, reservation) => Algorithms.refundFixedWindow(s, now, cost, spec, reservation)
      })
    case "SlidingWindowLog":
      return new Table<Algorithms.LogState>(maxKeys, {
        decide: (s, now, cost, maxDelay) => Algorithms.slidingWindowLog(s, now, cost, spec, maxDelay),
        refund: (s, now, cost, reservation) => Algorithms.refundSlidingWindowLog(s, now, cost, spec, reservation)
      })
    case "SlidingWindowCounter":
      return new Table<Algorithms.CounterState>(maxKeys, {
        decide: (s, now, cost, maxDelay) => Algorithms.slidingWindowCounter(s, now, cost, spec, maxDelay),
        refund: (s, now, cost, reservation) => Algorithms.refundSlidingWindowCounter(s, now, cost, spec, reservation)
      })
    case "LeakyBucket":
      return new Table<Algorithms.TatState>(maxKeys, {
        decide: (s, now, cost, maxDelay) => Algorithms.leakyBucket(s, now, cost, spec, maxDelay),
        refund: (s, now, cost, reservation) => Algorithms.refundTat(s, now, cost, spec, reservation)
      })
    case "Gcra":
      return new Table<Algorithms.TatState>(maxKeys, {
        decide: (s, now, cost, maxDelay) => Algorithms.gcra(s, now, cost, spec, maxDelay),
        refund: (s, now, cost, reservation) => Algorithms.refundTat(s, now, cost, spec, reservation)
      })
  }
}

/**
 * The in-memory store: one bounded table per limiter id (name + algorithm
 * parameters), so limiters with the same name and algorithm share state.
 *
 * @internal
 */
export interface MemoryStore extends RateLimiter.Store {
  readonly tables: ReadonlyMap<string, AnyTable>
}

/** @internal */
export const unsafeMake = (maxKeys: number): MemoryStore => {
  const tables = new Map<string, AnyTable>()
  const tableFor = (config: Config): AnyTable => {
    let table = tables.get(config.id)
    if (table === undefined) {
      table = makeTable(config.spec, maxKeys)
      tables.set(config.id, table)
    }
    return table
  }
  return {
    backend: "memory",
    tables,
    bind: (config) =>
      Effect.sync((): RateLimiter.Binding => {
        const table = tableFor(config)
        return {
          // The algorithm's decision is the store's answer as it is: no copy on the hot path.
          decide: (key, cost, maxDelay) =>
            Effect.clockWith((clock) =>
              Effect.succeed(table.decide(key, clock.unsafeCurrentTimeMillis(), cost, maxDelay))
            ),
          refund: (key, cost, reservation) =>
            Effect.clockWith((clock) =>
              Effect.sync(() => table.refund(key, clock.unsafeCurrentTimeMillis(), cost, reservation))
            )
        }
      })
  }
}

/** @internal */
export const make = (options: RateLimiter.MemoryOptions = {}): Effect.Effect<MemoryStore, InvalidOptionsError> =>
  Effect.map(validateMaxKeys(options.maxKeys), unsafeMake)

/** @internal */
export const layer = (options: RateLimiter.MemoryOptions = {}): Layer.Layer<
  RateLimiterStore,
  InvalidOptionsError
> => Layer.effect(RateLimiterStore, make(options))
