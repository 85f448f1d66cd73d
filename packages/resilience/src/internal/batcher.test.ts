import { assert, describe, it } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Scope from "effect/Scope"
import * as Supervisor from "effect/Supervisor"
import * as fc from "fast-check"
import * as Batcher from "./batcher.js"

class Down extends Data.TaggedError("Down")<{ readonly batch: number }> {}

/**
 * A `send` that records every batch and answers `item * 10`, each batch waiting
 * on a gate of its own when `gated` (so the test decides when it returns).
 */
const recorder = (options: { readonly gated: boolean; readonly failBatch?: number }) =>
  Effect.gen(function*() {
    const batches: Array<ReadonlyArray<number>> = []
    const gates: Array<Deferred.Deferred<void>> = []
    const sent = yield* Deferred.make<void>()
    const send = (items: ReadonlyArray<number>): Effect.Effect<ReadonlyArray<number>, Down> =>
      Effect.suspend(() => {
        const index = batches.push(items) - 1
        return Effect.gen(function*() {
          if (options.gated) {
            const gate = yield* Deferred.make<void>()
            gates.push(gate)
            yield* Deferred.succeed(sent, undefined)
            yield* Deferred.await(gate)
          }
          if (options.failBatch === index) return yield* Effect.fail(new Down({ batch: index }))
          return items.map((item) => item * 10)
        })
      })
    /** Opens the gate of batch `i`, once that batch is sent. */
    const open = (i: number) =>
      Effect.gen(function*() {
        while (gates.length <= i) yield* Effect.yieldNow()
        const gate = gates[i]
        if (gate !== undefined) yield* Deferred.succeed(gate, undefined)
      })
    return { batches, send, open }
  })

/** Lets every forked fiber run up to its next wait. */
const settle = Effect.repeatN(Effect.yieldNow(), 50)

describe("Batcher", () => {
  it.scoped("sends a call made while nothing is in flight at once, alone", () =>
    Effect.gen(function*() {
      const { batches, send } = yield* recorder({ gated: false })
      const submit = yield* Batcher.make({ send, maxBatch: 10, maxInFlight: 1 })
      assert.strictEqual(yield* submit(1), 10)
      assert.strictEqual(yield* submit(2), 20)
      assert.deepStrictEqual(batches, [[1], [2]])
    }))

  it.scoped("queues calls while maxInFlight batches are out, then sends them together, maxBatch at a time", () =>
    Effect.gen(function*() {
      const { batches, open, send } = yield* recorder({ gated: true })
      const submit = yield* Batcher.make({ send, maxBatch: 3, maxInFlight: 1 })
      const first = yield* Effect.fork(submit(1))
      yield* settle
      const rest = yield* Effect.fork(Effect.forEach([2, 3, 4, 5, 6], submit, { concurrency: "unbounded" }))
      yield* settle
      assert.deepStrictEqual(batches, [[1]])
      yield* open(0)
      assert.strictEqual(yield* Fiber.join(first), 10)
      yield* open(1)
      yield* open(2)
      assert.deepStrictEqual(yield* Fiber.join(rest), [20, 30, 40, 50, 60])
      assert.deepStrictEqual(batches, [[1], [2, 3, 4], [5, 6]])
    }))

  it.scoped("ends a batch before its weight would pass maxWeight; a heavier item goes alone", () =>
    Effect.gen(function*() {
      const { batches, open, send } = yield* recorder({ gated: true })
      const submit = yield* Batcher.make({ send, maxBatch: 10, maxInFlight: 1, maxWeight: 5, weigh: (n: number) => n })
      const first = yield* Effect.fork(submit(1))
      yield* settle
      const rest = yield* Effect.fork(Effect.forEach([2, 3, 1, 9, 4], submit, { concurrency: "unbounded" }))
      yield* settle
      for (let i = 0; i < 5; i++) yield* open(i)
      yield* Fiber.join(first)
      assert.deepStrictEqual(yield* Fiber.join(rest), [20, 30, 10, 90, 40])
      assert.deepStrictEqual(batches, [[1], [2, 3], [1], [9], [4]])
    }))

  it.scoped("keeps up to maxInFlight batches out at once", () =>
    Effect.gen(function*() {
      const { batches, open, send } = yield* recorder({ gated: true })
      const submit = yield* Batcher.make({ send, maxBatch: 10, maxInFlight: 2 })
      const fibers = yield* Effect.fork(Effect.forEach([1, 2, 3, 4], submit, { concurrency: "unbounded" }))
      yield* settle
      // 1 and 2 found a free slot each; 3 and 4 wait for one.
      assert.deepStrictEqual(batches, [[1], [2]])
      yield* open(1)
      yield* open(2)
      yield* open(0)
      assert.deepStrictEqual(yield* Fiber.join(fibers), [10, 20, 30, 40])
      assert.deepStrictEqual(batches, [[1], [2], [3, 4]])
    }))

  it.scoped("fails every call of a failed batch with its error, and goes on with the next", () =>
    Effect.gen(function*() {
      const { batches, open, send } = yield* recorder({ gated: true, failBatch: 1 })
      const submit = yield* Batcher.make({ send, maxBatch: 10, maxInFlight: 1 })
      const first = yield* Effect.fork(submit(1))
      yield* settle
      const failed = yield* Effect.fork(Effect.forEach([2, 3], (n) => Effect.flip(submit(n)), { concurrency: 2 }))
      yield* settle
      yield* open(0)
      yield* open(1)
      assert.strictEqual(yield* Fiber.join(first), 10)
      assert.deepStrictEqual(yield* Fiber.join(failed), [new Down({ batch: 1 }), new Down({ batch: 1 })])
      const next = yield* Effect.fork(submit(4))
      yield* open(2)
      assert.strictEqual(yield* Fiber.join(next), 40)
      assert.deepStrictEqual(batches, [[1], [2, 3], [4]])
    }))

  it.scoped("drops a queued call whose caller is interrupted before its batch is sent", () =>
    Effect.gen(function*() {
      const { batches, open, send } = yield* recorder({ gated: true })
      const abandoned: Array<readonly [number, number]> = []
      const submit = yield* Batcher.make({
        send,
        maxBatch: 10,
        maxInFlight: 1,
        onAbandoned: (item, result) => Effect.sync(() => abandoned.push([item, result]))
      })
      const first = yield* Effect.fork(submit(1))
      yield* settle
      const gone = yield* Effect.fork(submit(2))
      const kept = yield* Effect.fork(submit(3))
      yield* settle
      yield* Fiber.interrupt(gone)
      yield* open(0)
      yield* open(1)
      assert.strictEqual(yield* Fiber.join(first), 10)
      assert.strictEqual(yield* Fiber.join(kept), 30)
      assert.deepStrictEqual(batches, [[1], [3]])
      assert.deepStrictEqual(abandoned, [])
    }))

  it.scoped("hands the result of a sent call whose caller went away to onAbandoned; the others get theirs", () =>
    Effect.gen(function*() {
      const { open, send } = yield* recorder({ gated: true })
      const abandoned = yield* Deferred.make<readonly [number, number]>()
      const submit = yield* Batcher.make({
        send,
        maxBatch: 10,
        maxInFlight: 1,
        onAbandoned: (item, result) => Deferred.succeed(abandoned, [item, result] as const)
      })
      const first = yield* Effect.fork(submit(1))
      yield* settle
      const gone = yield* Effect.fork(submit(2))
      const kept = yield* Effect.fork(submit(3))
      yield* settle
      yield* open(0)
      yield* Fiber.join(first)
      // Batch [2, 3] is out now: its first caller goes away while it is.
      yield* settle
      yield* Fiber.interrupt(gone)
      yield* open(1)
      assert.strictEqual(yield* Fiber.join(kept), 30)
      assert.deepStrictEqual(yield* Deferred.await(abandoned), [2, 20])
    }))

  it.scoped("a caller sending alone can be interrupted; the calls queued behind it are still sent", () =>
    Effect.gen(function*() {
      const { batches, open, send } = yield* recorder({ gated: true })
      const submit = yield* Batcher.make({ send, maxBatch: 10, maxInFlight: 1 })
      const first = yield* Effect.fork(submit(1))
      yield* settle
      const second = yield* Effect.fork(submit(2))
      yield* settle
      // `first` is out, alone, from its own fiber: interrupting it does not wait for its statement.
      yield* Fiber.interrupt(first)
      yield* open(1)
      assert.strictEqual(yield* Fiber.join(second), 20)
      assert.deepStrictEqual(batches, [[1], [2]])
      // The slot was given back: the next call goes at once.
      const third = yield* Effect.fork(submit(3))
      yield* open(2)
      assert.strictEqual(yield* Fiber.join(third), 30)
    }))

  it.scoped("a send that answers the wrong number of results is a defect for each call", () =>
    Effect.gen(function*() {
      const submit = yield* Batcher.make({
        send: (items: ReadonlyArray<number>) => Effect.succeed(items.slice(1)),
        maxBatch: 10,
        maxInFlight: 1
      })
      const exit = yield* Effect.exit(submit(1))
      assert.isTrue(Exit.isFailure(exit) && !Exit.isInterrupted(exit))
    }))

  it.effect("closing the owner's scope leaves no batcher fiber running, and interrupts the calls still waiting", () =>
    Effect.gen(function*() {
      const supervisor = yield* Supervisor.track
      const { batches, open, send } = yield* recorder({ gated: true })
      const scope = yield* Scope.make()
      const { queued, sent } = yield* Effect.gen(function*() {
        const submit = yield* Batcher.make({ send, maxBatch: 2, maxInFlight: 1 }).pipe(Scope.extend(scope))
        const first = yield* Effect.fork(submit(1))
        yield* settle
        const sent = yield* Effect.fork(Effect.forEach([2, 3], submit, { concurrency: "unbounded" }))
        yield* settle
        const queued = yield* Effect.fork(submit(4))
        yield* settle
        // `first` returns: [2, 3] go out from a fiber of the batcher's, and wait on their gate; [4] waits its turn.
        yield* open(0)
        assert.strictEqual(yield* Fiber.join(first), 10)
        yield* settle
        return { queued, sent }
      }).pipe(Effect.supervised(supervisor))
      assert.deepStrictEqual(batches, [[1], [2, 3]])

      yield* Scope.close(scope, Exit.void)
      yield* settle
      // Ids, not fibers: a failed assertion prints them.
      const running = (yield* supervisor.value).map((fiber) => fiber.id().id)
      assert.deepStrictEqual(running, [], "no fiber is left running")
      const [sentExit, queuedExit] = [yield* Fiber.poll(sent), yield* Fiber.poll(queued)]
      assert.isTrue(Option.isSome(sentExit) && Exit.isInterrupted(sentExit.value), "the batch out was interrupted")
      assert.isTrue(Option.isSome(queuedExit) && Exit.isInterrupted(queuedExit.value), "the queued call too")
      assert.deepStrictEqual(batches, [[1], [2, 3]])
    }))

  it.effect("answers every call with its own result, whatever the batch sizes and arrivals", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 40 }),
          fc.integer({ min: 1, max: 5 }),
          fc.integer({ min: 1, max: 3 }),
          (pauses, maxBatch, maxInFlight) =>
            Effect.runPromise(Effect.scoped(Effect.gen(function*() {
              const sentItems: Array<number> = []
              const submit = yield* Batcher.make({
                send: (items: ReadonlyArray<number>) =>
                  Effect.gen(function*() {
                    assert.isAtMost(items.length, maxBatch)
                    sentItems.push(...items)
                    yield* Effect.yieldNow()
                    return items.map((item) => item * 10)
                  }),
                maxBatch,
                maxInFlight
              })
              const results = yield* Effect.forEach(
                pauses.map((pause, i) => [pause, i] as const),
                ([pause, i]) => Effect.zipRight(Effect.repeatN(Effect.yieldNow(), pause), submit(i)),
                { concurrency: "unbounded" }
              )
              assert.deepStrictEqual(results, pauses.map((_, i) => i * 10))
              assert.deepStrictEqual([...sentItems].sort((a, b) => a - b), pauses.map((_, i) => i))
            })))
        ),
        { numRuns: 200 }
      )
    ))
})
