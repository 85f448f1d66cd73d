/**
 * The wake-up notifier of the Postgres backend, with a scripted `send`: at
 * most one notification in flight, signals raised meanwhile coalesced into
 * the next one, and never a lost wake-up — every signalled queue is named by
 * a send that starts after the signal (hence after the commit it announces).
 * Its end-to-end counterpart (a worker that only wakes on notifications) is
 * in test/job-queue/postgres-features.test.ts.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fc from "fast-check"
import { makeNotifier } from "./notifier.js"

/** A `send` that records each call and stays in flight until the test finishes it. */
const scriptedSend = Effect.gen(function*() {
  const sends: Array<{ readonly step: number; readonly queues: ReadonlyArray<string> }> = []
  const open: Array<Deferred.Deferred<void, string>> = []
  let inFlight = 0
  let maxInFlight = 0
  let step = 0
  const send = (queues: ReadonlyArray<string>) =>
    Effect.gen(function*() {
      sends.push({ step, queues: [...queues] })
      inFlight += 1
      maxInFlight = Math.max(maxInFlight, inFlight)
      const gate = yield* Deferred.make<void, string>()
      open.push(gate)
      yield* Deferred.await(gate).pipe(Effect.ensuring(Effect.sync(() => {
        inFlight -= 1
      })))
    })
  /** The gate of the `index`-th send. */
  const gate = (index: number) => {
    const found = open[index]
    return found === undefined ? Effect.dieMessage(`no send #${index}`) : Effect.succeed(found)
  }
  return {
    send,
    sends,
    open,
    finish: (index: number) => Effect.flatMap(gate(index), (found) => Deferred.succeed(found, undefined)),
    fail: (index: number) => Effect.flatMap(gate(index), (found) => Deferred.fail(found, "connection reset")),
    maxInFlight: () => maxInFlight,
    nextStep: () => {
      step += 1
      return step
    }
  }
})

/** Lets the notifier's forked fiber run. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 10; i++) yield* Effect.yieldNow()
})

describe("the wake-up notifier", () => {
  it.scoped("sends at once when idle and coalesces what is signalled during a send into the next one", () =>
    Effect.gen(function*() {
      const script = yield* scriptedSend
      const notifier = yield* makeNotifier(script.send)
      yield* notifier.signal(["a"])
      yield* settle
      assert.deepStrictEqual(script.sends.map((s) => s.queues), [["a"]])
      // While that statement runs, more jobs commit.
      yield* notifier.signal(["a"])
      yield* notifier.signal(["b"])
      yield* notifier.signal(["a", "c"])
      yield* settle
      assert.strictEqual(script.sends.length, 1, "one notification in flight at a time")
      yield* script.finish(0)
      yield* settle
      assert.deepStrictEqual(script.sends.map((s) => s.queues), [["a"], ["a", "b", "c"]])
      // A failed notification is logged (a warning) and does not stop the next ones.
      yield* notifier.signal(["d"])
      yield* script.fail(1)
      yield* settle
      assert.deepStrictEqual(script.sends.map((s) => s.queues).at(-1), ["d"])
      yield* script.finish(2)
      yield* settle
      assert.strictEqual(script.sends.length, 3, "idle again: nothing left to send")
      yield* notifier.signal([])
      yield* settle
      assert.strictEqual(script.sends.length, 3, "an empty signal sends nothing")
      yield* notifier.signal(["e"])
      yield* settle
      assert.deepStrictEqual(script.sends.map((s) => s.queues).at(-1), ["e"])
    }))

  it.scoped("never loses a wake-up: each signalled queue is named by a send that starts after the signal", () =>
    Effect.promise(() =>
      fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.oneof(
              fc.record({ signal: fc.subarray(["a", "b", "c"], { minLength: 1 }) }),
              fc.record({ finish: fc.boolean() })
            ),
            { maxLength: 60 }
          ),
          (commands) =>
            Effect.runPromise(
              Effect.scoped(Effect.gen(function*() {
                const script = yield* scriptedSend
                const notifier = yield* makeNotifier(script.send)
                const signals: Array<{ readonly step: number; readonly queue: string }> = []
                let finished = 0
                const finishOne = (ok: boolean) =>
                  Effect.gen(function*() {
                    if (finished >= script.open.length) return
                    yield* ok ? script.finish(finished) : script.fail(finished)
                    finished += 1
                    yield* settle
                  })
                for (const command of commands) {
                  if ("signal" in command) {
                    const step = script.nextStep()
                    for (const queue of command.signal) signals.push({ step, queue })
                    yield* notifier.signal(command.signal)
                    yield* settle
                  } else {
                    yield* finishOne(command.finish)
                  }
                }
                // Let every pending notification go out.
                while (finished < script.open.length) yield* finishOne(true)
                assert.isAtMost(script.maxInFlight(), 1)
                for (const send of script.sends) {
                  assert.isAbove(send.queues.length, 0)
                  assert.strictEqual(new Set(send.queues).size, send.queues.length)
                }
                for (const { queue, step } of signals) {
                  assert.isTrue(
                    script.sends.some((send) => send.step >= step && send.queues.includes(queue)),
                    `queue ${queue} signalled at step ${step} was never sent afterwards`
                  )
                }
              })).pipe(Logger.withMinimumLogLevel(LogLevel.None))
            )
        ),
        { numRuns: 200 }
      )
    ))
})
