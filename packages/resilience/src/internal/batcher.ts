/**
 * Coalesces calls made concurrently by independent fibers into batches, each
 * sent as one operation (one SQL statement, one round trip).
 *
 * Effect's own request batching (`Effect.request`) only groups requests made
 * together by one fiber (`Effect.forEach` with `batching`); concurrent HTTP
 * requests are separate fibers, so it never groups them.
 *
 * The batching is natural, not timed: a call that finds fewer than
 * `maxInFlight` batches in flight is sent at once, in its own fiber, as a batch
 * of one; calls made while `maxInFlight` batches are in flight queue, and go
 * together (up to `maxBatch`) as soon as one of those batches returns. So an
 * idle system adds no latency (and no fiber), and a busy one sends fewer,
 * larger batches the busier it gets.
 *
 * A queued batch is sent by a fiber of its own: its calls belong to several
 * fibers, and one of them going away must not fail the others. A queued call
 * interrupted while it waits is abandoned: dropped if its batch was not sent
 * yet, otherwise handed to `onAbandoned` with its result (a claim nobody
 * waits for must be given back). A call sent alone from its caller's fiber is
 * as interruptible as an unbatched call.
 *
 * The batcher's own fibers (the senders of queued batches, `onAbandoned`)
 * live in its owner's scope: closing the scope interrupts them, and the calls
 * they carried or that were still queued are interrupted rather than left
 * waiting. Calls made after that go alone, from their callers' fibers.
 *
 * @internal
 */
import * as Arr from "effect/Array"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"

/** @internal */
export interface Options<I, O, E> {
  /** Sends a batch: one result per item, in the items' order. */
  readonly send: (items: ReadonlyArray<I>) => Effect.Effect<ReadonlyArray<O>, E>
  readonly maxBatch: number
  readonly maxInFlight: number
  /**
   * A batch stops growing before its items' total weight would pass this (it always takes at least one item):
   * e.g. the bytes of the payloads it carries. Default: no limit.
   */
  readonly maxWeight?: number
  readonly weigh?: (item: I) => number
  /** The result of a call whose caller was interrupted after its batch was sent. */
  readonly onAbandoned?: (item: I, result: O) => Effect.Effect<void>
}

interface Entry<I, O, E> {
  readonly item: I
  readonly deferred: Deferred.Deferred<O, E>
  abandoned: boolean
}

/** @internal */
export type Submit<I, O, E> = (item: I) => Effect.Effect<O, E>

/**
 * A batcher whose fibers live in the current scope (its owner's: a store made in a layer lives as long as the
 * layer).
 *
 * @internal
 */
export const make = <I, O, E>(options: Options<I, O, E>): Effect.Effect<Submit<I, O, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const queue: Array<Entry<I, O, E>> = []
    let inFlight = 0
    let closed = false

    // Added before any fiber is forked, so it runs after their scopes closed (finalizers run in reverse order):
    // the calls still queued are interrupted, and later calls are not queued.
    yield* Effect.addFinalizer(() =>
      Effect.suspend(() => {
        closed = true
        return Effect.forEach(queue.splice(0), (entry) => Deferred.interrupt(entry.deferred), { discard: true })
      })
    )

    // A fiber of the owner's scope. Interruptible whatever region forks it (`handOff` runs as `ensuring`'s
    // finalizer, which is not): closing the scope must not wait for a statement to return.
    const fork = (effect: Effect.Effect<unknown>): Effect.Effect<void> =>
      Effect.asVoid(Effect.forkIn(Effect.interruptible(effect), scope))

    const settle = (
      batch: ReadonlyArray<Entry<I, O, E>>,
      exit: Exit.Exit<ReadonlyArray<O>, E>
    ): Effect.Effect<void> => {
      if (Exit.isSuccess(exit) && exit.value.length !== batch.length) {
        const defect = Exit.die(new Error(`a batch of ${batch.length} got ${exit.value.length} results`))
        for (const entry of batch) Deferred.unsafeDone(entry.deferred, defect)
        return Effect.void
      }
      if (Exit.isFailure(exit)) {
        const failure = Exit.failCause(exit.cause)
        for (const entry of batch) Deferred.unsafeDone(entry.deferred, failure)
        return Effect.void
      }
      const abandoned: Array<Effect.Effect<void>> = []
      exit.value.forEach((result, i) => {
        const entry = batch[i]
        if (entry === undefined) return
        if (!entry.abandoned) Deferred.unsafeDone(entry.deferred, Exit.succeed(result))
        else if (options.onAbandoned !== undefined) abandoned.push(options.onAbandoned(entry.item, result))
      })
      return abandoned.length === 0 ? Effect.void : fork(Effect.all(abandoned))
    }

    const maxWeight = options.maxWeight ?? Infinity
    const weigh = options.weigh ?? (() => 0)

    /**
     * Takes up to `maxBatch` queued calls (skipping abandoned ones, within `maxWeight`), sends them, settles each.
     * Interrupted (its scope closed) while the batch is out, it interrupts the batch's calls.
     */
    const sendNext: Effect.Effect<void> = Effect.suspend(() => {
      const batch: Array<Entry<I, O, E>> = []
      let weight = 0
      while (batch.length < options.maxBatch && queue.length > 0) {
        const next = queue[0]
        if (next === undefined) break
        if (next.abandoned) {
          queue.shift()
          continue
        }
        const added = weigh(next.item)
        if (batch.length > 0 && weight + added > maxWeight) break
        queue.shift()
        weight += added
        batch.push(next)
      }
      if (batch.length === 0) return Effect.void
      return Effect.flatMap(Effect.exit(options.send(batch.map((entry) => entry.item))), (exit) => settle(batch, exit))
        .pipe(
          Effect.onInterrupt(() =>
            Effect.forEach(batch, (entry) => Deferred.interrupt(entry.deferred), { discard: true })
          )
        )
    })

    // Sends batches until nothing is queued, then gives its slot back.
    const drain: Effect.Effect<void> = Effect.suspend(() => {
      if (queue.length === 0) {
        inFlight--
        return Effect.void
      }
      return Effect.zipRight(sendNext, drain)
    })

    const abandon = (entry: Entry<I, O, E>) =>
      Effect.sync(() => {
        entry.abandoned = true
      })

    const sendAlone = (item: I): Effect.Effect<O, E> =>
      Effect.flatMap(options.send([item]), (results) =>
        results.length === 1
          ? Option.match(Arr.head(results), {
            onNone: () => Effect.dieMessage("a batch of 1 got no result"),
            onSome: Effect.succeed
          })
          : Effect.dieMessage(`a batch of 1 got ${results.length} results`))

    // After a call sent alone: calls that queued meanwhile get a fiber of their own to drain them, so that this
    // caller is answered as soon as its own statement returns.
    const handOff: Effect.Effect<void> = Effect.suspend(() => {
      if (queue.length > 0) return fork(drain)
      inFlight--
      return Effect.void
    })

    const submit: Submit<I, O, E> = (item) =>
      Effect.suspend(() => {
        // The owner is gone: nothing would send a queued call.
        if (closed) return sendAlone(item)
        if (inFlight < options.maxInFlight) {
          // Nothing is queued while a slot is free: this call goes at once, alone, from the caller's own fiber
          // (interruptible, like an unbatched call; its batch is only itself).
          inFlight++
          return Effect.ensuring(sendAlone(item), handOff)
        }
        const entry: Entry<I, O, E> = { item, deferred: Deferred.unsafeMake<O, E>(FiberId.none), abandoned: false }
        queue.push(entry)
        return Effect.onInterrupt(Deferred.await(entry.deferred), () => abandon(entry))
      })
    return submit
  })
