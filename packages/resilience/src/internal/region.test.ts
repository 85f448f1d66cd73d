import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Data from "effect/Data"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import { hasProperty } from "effect/Predicate"
import * as TestClock from "effect/TestClock"
import * as Region from "./region.js"
import * as Trace from "./trace.js"

class Refusal extends Data.TaggedError("Refusal")<{ readonly gate: string }> {}

type Decision = "admit" | "announce" | "refuse" | "wait"

/**
 * A gate that writes every step to `log`. `decide` says what it answers on
 * entry; a waiting gate runs the rest under its own bracket, as a bulkhead's
 * queue does.
 */
const recordingGate = (
  name: string,
  log: Array<string>,
  decide: () => Decision,
  timed = false
): Region.Gate<unknown, unknown, Refusal> => {
  let tokens = 0
  const wait: Region.Wait<unknown, unknown, Refusal> = {
    _tag: "Wait",
    run: (restore, self) => {
      log.push(`${name} waits`)
      return Effect.onExit(restore(self), (exit) => Effect.sync(() => log.push(`${name} slow exit ${exit._tag}`)))
    }
  }
  return {
    needsStart: () => timed,
    enter: (span) => {
      const token = ++tokens
      log.push(`${name} enter ${token}${timed ? ` at ${span.startedAt}` : ""}`)
      switch (decide()) {
        case "admit":
          return token
        case "announce":
          return new Region.Admitted(token, Effect.sync(() => log.push(`${name} announce`)))
        case "refuse":
          return new Region.Refused(Effect.fail(new Refusal({ gate: name })))
        case "wait":
          return wait
      }
    },
    exitSuccess: (token, value, span) => {
      log.push(`${name} exit ${token} success ${String(value)}${timed ? ` ${span.startedAt}..${span.endedAt()}` : ""}`)
      return Effect.sync(() => log.push(`${name} after ${token}`))
    },
    exitFailure: (token, cause) => {
      const error = Cause.failureOption(cause)
      const what = Cause.isInterruptedOnly(cause)
        ? "interrupted"
        : Option.isSome(error)
        ? `failure ${hasProperty(error.value, "_tag") ? String(error.value._tag) : String(error.value)}`
        : "defect"
      log.push(`${name} exit ${token} ${what}`)
      return undefined
    }
  }
}

const always = (decision: Decision) => () => decision

/** The traced form a retry would hand a region's first attempt: never taken here, as nothing switches tracing on. */
const notTraced = () => Effect.dieMessage("a region took the traced path while tracing is off")

describe("Region", () => {
  it.effect("enters gates outermost first and exits them innermost first, then runs their effects in that order", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const inner = recordingGate("inner", log, always("admit"))
      const outer = recordingGate("outer", log, always("admit"))
      const call = Region.protect(
        Region.protect(Effect.sync(() => log.push("run")).pipe(Effect.as("ok")), inner),
        outer
      )
      assert.strictEqual(yield* call, "ok")
      assert.deepStrictEqual(log, [
        "outer enter 1",
        "inner enter 1",
        "run",
        "inner exit 1 success ok",
        "outer exit 1 success ok",
        "inner after 1",
        "outer after 1"
      ])
    }))

  it.effect("when the fiber traces its layers, the gates run nested, one region each, with the same outcome", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const call = Region.protect(
        Region.protect(
          Region.protect(
            Effect.sync(() => log.push("run")).pipe(Effect.as("ok")),
            recordingGate("c", log, always("admit"))
          ),
          recordingGate("b", log, always("wait"))
        ),
        recordingGate("a", log, always("announce"))
      )
      assert.strictEqual(yield* call.pipe(Effect.provide(Trace.layer)), "ok")
      // nested: each gate's exit and its effect come before the next gate out (a waiting gate exits on its own)
      assert.deepStrictEqual(log, [
        "a enter 1",
        "a announce",
        "b enter 1",
        "b waits",
        "c enter 1",
        "run",
        "c exit 1 success ok",
        "c after 1",
        "b slow exit Success",
        "a exit 1 success ok",
        "a after 1"
      ])
      const refused = Region.protect(
        Region.protect(Effect.succeed("never"), recordingGate("inner", log, always("refuse"))),
        recordingGate("outer", log, always("admit"))
      )
      // (an error failed inside a span is a proxy carrying the span: compared by its fields)
      const error = yield* Effect.flip(refused.pipe(Effect.provide(Trace.layer)))
      assert.isTrue(error instanceof Refusal && error.gate === "inner")
    }))

  it.effect("a gate put around a region joins it: one region, whatever the depth", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const one = Region.protect(Effect.succeed(1), recordingGate("a", log, always("admit")))
      const two = Region.protect(one, recordingGate("b", log, always("admit")))
      assert.isDefined(Region.fusable(one))
      assert.isDefined(Region.fusable(two))
      assert.isUndefined(Region.fusable(Effect.succeed(1)))
      // The inner region is unchanged by the outer one and still runs on its own.
      assert.strictEqual(yield* one, 1)
      assert.deepStrictEqual(log, ["a enter 1", "a exit 1 success 1", "a after 1"])
    }))

  it.effect("an inner gate's refusal is a failure to the outer gates, and the effect never runs", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const call = Region.protect(
        Region.protect(Effect.sync(() => log.push("run")), recordingGate("inner", log, always("refuse"))),
        recordingGate("outer", log, always("announce"))
      )
      const error = yield* Effect.flip(call)
      assert.deepStrictEqual(error, new Refusal({ gate: "inner" }))
      assert.deepStrictEqual(log, [
        "outer enter 1",
        "inner enter 1",
        "outer announce",
        "outer exit 1 failure Refusal"
      ])
    }))

  it.effect("announcements run outermost first before the effect", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const call = Region.protect(
        Region.protect(Effect.sync(() => log.push("run")), recordingGate("inner", log, always("announce"))),
        recordingGate("outer", log, always("announce"))
      )
      yield* call
      assert.deepStrictEqual(log.slice(0, 5), [
        "outer enter 1",
        "inner enter 1",
        "outer announce",
        "inner announce",
        "run"
      ])
    }))

  it.effect("a waiting gate runs the rest nested inside the outer gates, which still see the outcome", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const call = Region.protect(
        Region.protect(
          Region.protect(
            Effect.sync(() => log.push("run")).pipe(Effect.as("ok")),
            recordingGate("c", log, always("admit"))
          ),
          recordingGate("b", log, always("wait"))
        ),
        recordingGate("a", log, always("admit"))
      )
      assert.strictEqual(yield* call, "ok")
      assert.deepStrictEqual(log, [
        "a enter 1",
        "b enter 1",
        // b runs what is inside it, c's own region, its own way.
        "b waits",
        "c enter 1",
        "run",
        "c exit 1 success ok",
        "c after 1",
        "b slow exit Success",
        "a exit 1 success ok",
        "a after 1"
      ])
    }))

  it.effect("an interrupted call exits every gate it entered, as interrupted", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const running = yield* Deferred.make<void>()
      const call = Region.protect(
        Region.protect(
          Effect.zipRight(Deferred.succeed(running, undefined), Effect.never),
          recordingGate("inner", log, always("admit"))
        ),
        recordingGate("outer", log, always("admit"))
      )
      const fiber = yield* Effect.fork(call)
      yield* Deferred.await(running)
      assert.isTrue(Exit.isInterrupted(yield* Fiber.interrupt(fiber)))
      assert.deepStrictEqual(log, [
        "outer enter 1",
        "inner enter 1",
        "inner exit 1 interrupted",
        "outer exit 1 interrupted"
      ])
    }))

  it.effect("the effect runs with its caller's interruptibility", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const call = Region.protect(Effect.checkInterruptible(Effect.succeed), recordingGate("g", log, always("admit")))
      assert.isTrue(yield* call)
      assert.isFalse(yield* Effect.uninterruptible(call))
      assert.isTrue(yield* call)
    }))

  it.effect("timed gates get the Clock's time on entry and exit; each call keeps its own", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const call = Region.protect(
        Effect.as(Effect.sleep("300 millis"), "ok"),
        recordingGate("g", log, always("admit"), true)
      )
      const first = yield* Effect.fork(call)
      yield* TestClock.adjust("100 millis")
      const second = yield* Effect.fork(call)
      yield* TestClock.adjust("300 millis")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      assert.deepStrictEqual(log.filter((line) => line.includes("exit")), [
        "g exit 1 success ok 0..300",
        "g exit 2 success ok 100..400"
      ])
    }))

  it.effect("without a start time, calls admitted with the same token share a bracket and each exit gets its own token", () =>
    Effect.gen(function*() {
      const seen: Array<string> = []
      let token = 7
      const gate: Region.Gate<unknown, unknown, never> = {
        needsStart: () => false,
        enter: (span) => {
          seen.push(`enter ${token} start ${span.startedAt}`)
          return token
        },
        exitSuccess: (token, value) => {
          seen.push(`exit ${token} ${String(value)}`)
          return undefined
        },
        exitFailure: (token) => {
          seen.push(`exit ${token} failed`)
          return undefined
        }
      }
      const gates = yield* Deferred.make<void>()
      const call = Region.protect(Effect.as(Deferred.await(gates), "done"), gate)
      const first = yield* Effect.fork(call)
      yield* Effect.yieldNow()
      const second = yield* Effect.fork(call)
      yield* Effect.yieldNow()
      token = 8
      const third = yield* Effect.fork(call)
      yield* Effect.yieldNow()
      yield* Deferred.succeed(gates, undefined)
      yield* Fiber.join(Fiber.zip(Fiber.zip(first, second), third))
      assert.deepStrictEqual(seen.slice(0, 3), ["enter 7 start NaN", "enter 7 start NaN", "enter 8 start NaN"])
      assert.deepStrictEqual(seen.slice(3).sort(), ["exit 7 done", "exit 7 done", "exit 8 done"])
      yield* Effect.exit(Region.protect(Effect.fail("no"), gate))
      assert.strictEqual(seen.at(-1), "exit 8 failed")
    }))

  it.effect("as a retry's first attempt: success calls back, typed failures are recovered with the start, defects pass", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      let firsts = 0
      const gate = recordingGate("g", log, always("admit"), true)
      const recover = (error: unknown, startedAt: number) =>
        Effect.succeed(`recovered ${String(error)} from ${startedAt}`)
      const ok = Region.fusable(Region.protect(Effect.succeed("ok"), gate))
      const failing = Region.fusable(Region.protect(Effect.fail("boom"), gate))
      const dying = Region.fusable(Region.protect(Effect.die("bug"), gate))
      assert(ok !== undefined && failing !== undefined && dying !== undefined)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* ok.firstTry(() => firsts++, recover, notTraced), "ok")
      assert.strictEqual(firsts, 1)
      assert.strictEqual(yield* failing.firstTry(() => firsts++, recover, notTraced), "recovered boom from 1000")
      const defect = yield* Effect.exit(dying.firstTry(() => firsts++, recover, notTraced))
      assert.isTrue(Exit.isFailure(defect) && Cause.isDie(defect.cause))
      assert.strictEqual(firsts, 1)
      // The gate saw the failure before the recovery ran.
      assert.include(log, "g exit 2 failure boom")
    }))

  it.effect("as a retry's first attempt, a refusal is recovered with the start", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const refused = Region.fusable(Region.protect(Effect.succeed("ok"), recordingGate("g", log, always("refuse"))))
      assert(refused !== undefined)
      yield* TestClock.adjust("2 seconds")
      const recovered = yield* refused.firstTry(() => {}, (error, startedAt) =>
        Effect.succeed([error, startedAt]), notTraced)
      assert.deepStrictEqual(recovered, [new Refusal({ gate: "g" }), 2000])
    }))

  it.effect("as a retry's first attempt, recovery runs with the caller's interruptibility", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const failing = Region.fusable(Region.protect(Effect.fail("boom"), recordingGate("g", log, always("admit"))))
      assert(failing !== undefined)
      const recovery = failing.firstTry(() => {}, () => Effect.checkInterruptible(Effect.succeed), notTraced)
      assert.isTrue(yield* recovery)
      assert.isFalse(yield* Effect.uninterruptible(recovery))
    }))

  it.effect("as a retry's first attempt, a call interrupted while it fails is not recovered", () =>
    Effect.gen(function*() {
      const log: Array<string> = []
      const recovered: Array<unknown> = []
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      // The effect is interrupted while it runs its own uninterruptible clean-up, which then fails.
      const work = Effect.uninterruptible(
        Effect.zipRight(
          Deferred.succeed(started, undefined),
          Effect.zipRight(Deferred.await(release), Effect.fail("late"))
        )
      )
      const region = Region.fusable(Region.protect(work, recordingGate("g", log, always("admit"))))
      assert(region !== undefined)
      const fiber = yield* Effect.fork(
        region.firstTry(() => {}, (error) => Effect.sync(() => recovered.push(error)), notTraced)
      )
      yield* Deferred.await(started)
      const interruption = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* Effect.yieldNow()
      yield* Deferred.succeed(release, undefined)
      const exit = yield* Fiber.join(interruption)
      assert.isTrue(Exit.isInterrupted(exit))
      assert.deepStrictEqual(recovered, [])
      assert.isTrue(Exit.isFailure(exit) && Option.isNone(Cause.failureOption(exit.cause)))
    }))
})
