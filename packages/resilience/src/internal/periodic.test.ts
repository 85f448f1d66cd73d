import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as Periodic from "./periodic.js"

/** Lets the loop's fiber run up to its next sleep. */
const settle = Effect.repeatN(Effect.yieldNow(), 20)

describe("Periodic.every", () => {
  it.effect("runs first after one interval, then every interval, until its scope closes", () =>
    Effect.gen(function*() {
      let runs = 0
      const scope = yield* Scope.make()
      yield* Periodic.every(Effect.sync(() => runs++), { interval: Duration.minutes(1), name: "Counting" }).pipe(
        Scope.extend(scope)
      )
      yield* settle
      assert.strictEqual(runs, 0, "nothing runs before the first interval")
      yield* TestClock.adjust("59 seconds")
      yield* settle
      assert.strictEqual(runs, 0)
      yield* TestClock.adjust("1 second")
      yield* settle
      assert.strictEqual(runs, 1)
      yield* TestClock.adjust("3 minutes")
      yield* settle
      assert.strictEqual(runs, 4)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("10 minutes")
      yield* settle
      assert.strictEqual(runs, 4, "nothing runs once the scope is closed")
    }))

  it.effect("logs a failed run, a failure or a defect, with its cause, and goes on", () =>
    Effect.gen(function*() {
      const logged: Array<{ readonly message: unknown; readonly cause: Cause.Cause<unknown> }> = []
      const logger = Logger.make(({ cause, message }) => {
        logged.push({ message, cause })
      })
      let runs = 0
      const work = Effect.suspend(() => {
        runs++
        return runs === 1 ? Effect.fail("down") : runs === 2 ? Effect.die("broken") : Effect.void
      })
      yield* Periodic.every(work, { interval: Duration.seconds(10), name: "Flaky work" }).pipe(
        Effect.provide(Logger.replace(Logger.defaultLogger, logger))
      )
      yield* TestClock.adjust("30 seconds")
      yield* settle
      assert.strictEqual(runs, 3)
      assert.deepStrictEqual(logged.map((entry) => entry.message), [
        ["Flaky work failed; trying again in 10s"],
        ["Flaky work failed; trying again in 10s"]
      ])
      assert.deepStrictEqual(logged.map((entry) => Cause.squash(entry.cause)), ["down", "broken"])
    }).pipe(Effect.scoped))
})
