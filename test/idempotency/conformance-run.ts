/**
 * The conformance suite, part two: `Idempotency.run` on the store.
 */
import * as Failure from "@bulwark/resilience/Failure"
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import { assert } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import {
  CardDeclined,
  type Charge,
  type ChargeFailure,
  counting,
  GatewayBusy,
  options,
  requests,
  SCOPE,
  store,
  type Test,
  Unexpected,
  untilDone
} from "./conformance-fixtures.js"

export const runTests = (test: Test): void => {
  test("run executes once and replays the same value to every repeat", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const executedBefore = yield* requests(SCOPE, "executed")
      const replayedBefore = yield* requests(SCOPE, "replayed")
      const first = yield* Idempotency.run(options())(counting(calls))
      const second = yield* Idempotency.run(options())(counting(calls, "this handler must not run"))
      const third = yield* Idempotency.run(counting(calls), options())
      assert.strictEqual(yield* Ref.get(calls), 1)
      assert.deepStrictEqual(first, {
        _tag: "Executed",
        value: { id: "ch_1", amount: 1000, note: "charged" },
        attempt: 1
      })
      assert.deepStrictEqual(second, { _tag: "Replayed", value: first.value, attempt: 1 })
      assert.deepStrictEqual(third, second)
      assert.strictEqual((yield* requests(SCOPE, "executed")) - executedBefore, 1)
      assert.strictEqual((yield* requests(SCOPE, "replayed")) - replayedBefore, 2)
    }))

  test("run stores a terminal failure and replays it without running again", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const declined = (_: Idempotency.Execution) =>
        Effect.zipRight(
          Ref.update(calls, (n) => n + 1),
          Effect.fail(new CardDeclined({ reason: "insufficient funds" }))
        )
      const first = yield* Effect.flip(Idempotency.run(options())(declined))
      const second = yield* Effect.flip(Idempotency.run(options())(declined))
      assert.strictEqual(yield* Ref.get(calls), 1)
      assert.instanceOf(first, CardDeclined)
      assert.instanceOf(second, CardDeclined)
      assert.deepStrictEqual(second, first)
      assert.isTrue(Failure.isTerminal(second))
    }))

  test("run releases on a transient failure: the retry with the same key runs again, then replays", () =>
    Effect.gen(function*() {
      const attempts = yield* Ref.make<ReadonlyArray<Idempotency.Execution>>([])
      const flaky = (execution: Idempotency.Execution) =>
        Effect.zipRight(
          Ref.update(attempts, (all) => [...all, execution]),
          execution.attempt === 1
            ? Effect.fail(new GatewayBusy({ status: 503 }))
            : Effect.succeed({ id: "ch_ok", amount: 1000, note: "charged once" })
        )
      const first = yield* Effect.flip(Idempotency.run(options())(flaky))
      assert.instanceOf(first, GatewayBusy)
      const second = yield* Idempotency.run(options())(flaky)
      const third = yield* Idempotency.run(options())(flaky)
      assert.strictEqual(second._tag, "Executed")
      assert.strictEqual(second.attempt, 2)
      assert.deepStrictEqual(third, { _tag: "Replayed", value: second.value, attempt: 2 })
      const seen = yield* Ref.get(attempts)
      assert.deepStrictEqual(seen.map((e) => [e.attempt, e.recovery]), [[1, false], [2, false]])
    }))

  test("run releases on unclassified failures, defects and interruptions", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const count = Ref.update(calls, (n) => n + 1)
      yield* Effect.flip(
        Idempotency.run(options())(() => Effect.zipRight(count, Effect.fail(new Unexpected({ detail: "?" }))))
      )
      const defect = yield* Effect.exit(Idempotency.run(options())(() => Effect.zipRight(count, Effect.die("boom"))))
      assert.isTrue(Exit.isFailure(defect))
      const interrupted = yield* Effect.exit(Idempotency.run(options())(() => Effect.zipRight(count, Effect.interrupt)))
      assert.isTrue(Exit.isInterrupted(interrupted))
      const last = yield* Idempotency.run(options())((execution) =>
        Effect.as(count, { id: "x", amount: execution.attempt, note: "" })
      )
      assert.strictEqual(last.value.amount, 4)
      assert.strictEqual(yield* Ref.get(calls), 4)
    }))

  test("run stores every typed failure with storeFailures: all (Stripe's rule)", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const busy = () => Effect.zipRight(Ref.update(calls, (n) => n + 1), Effect.fail(new GatewayBusy({ status: 503 })))
      const first = yield* Effect.flip(Idempotency.run(options({ storeFailures: "all" }))(busy))
      const second = yield* Effect.flip(Idempotency.run(options({ storeFailures: "all" }))(busy))
      assert.deepStrictEqual(second, first)
      assert.strictEqual(yield* Ref.get(calls), 1)
    }))

  test("run follows shouldStore: a success it refuses releases the claim", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      // An HTTP handler's 503 response is a success of the handler that must not be stored.
      const shouldStore = (exit: Exit.Exit<Charge, ChargeFailure>) =>
        !(Exit.isSuccess(exit) && exit.value.note === "503")
      const handler = (execution: Idempotency.Execution) =>
        Effect.as(Ref.update(calls, (n) => n + 1), {
          id: "r",
          amount: execution.attempt,
          note: execution.attempt === 1 ? "503" : "201"
        })
      const first = yield* Idempotency.run(options({ shouldStore }))(handler)
      assert.deepStrictEqual(first, { _tag: "Executed", value: { id: "r", amount: 1, note: "503" }, attempt: 1 })
      const second = yield* Idempotency.run(options({ shouldStore }))(handler)
      assert.strictEqual(second.value.note, "201")
      const third = yield* Idempotency.run(options({ shouldStore }))(handler)
      assert.deepStrictEqual(third, { ...second, _tag: "Replayed" })
      assert.strictEqual(yield* Ref.get(calls), 2)
    }))

  test("run answers a reused key with another fingerprint with a typed mismatch", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const before = yield* requests(SCOPE, "fingerprint_mismatch")
      yield* Idempotency.run(options())(counting(calls))
      const error = yield* Effect.flip(Idempotency.run(options({ fingerprint: "fp-2" }))(counting(calls)))
      assert.instanceOf(error, Idempotency.IdempotencyMismatchError)
      assert.strictEqual(error.scope, SCOPE)
      assert.strictEqual(error.keyHash, Idempotency.keyHash("key-1"))
      assert.notInclude(error.message, "key-1")
      assert.isTrue(Failure.isTerminal(error))
      assert.strictEqual(yield* Ref.get(calls), 1)
      assert.strictEqual((yield* requests(SCOPE, "fingerprint_mismatch")) - before, 1)
    }))

  test("run answers a duplicate while the first is in flight with a typed conflict and a retry hint", () =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const before = yield* requests(SCOPE, "in_flight_conflict")
      const first = yield* Effect.fork(
        Idempotency.run(options())(() =>
          Effect.zipRight(
            Deferred.succeed(started, undefined),
            Effect.as(Deferred.await(gate), { id: "first", amount: 1, note: "" })
          )
        )
      )
      yield* Deferred.await(started)
      const conflict = yield* Effect.flip(Idempotency.run(options())(() => Effect.die("must not run")))
      assert.instanceOf(conflict, Idempotency.IdempotencyConflictError)
      assert.strictEqual(conflict.reason, "InFlight")
      assert.isTrue(Failure.isTransient(conflict))
      assert.isTrue(Duration.greaterThan(conflict.retryAfter, Duration.zero))
      assert.isTrue(Duration.lessThanOrEqualTo(conflict.retryAfter, Duration.seconds(1)))
      assert.strictEqual((yield* requests(SCOPE, "in_flight_conflict")) - before, 1)
      yield* Deferred.succeed(gate, undefined)
      const done = yield* Fiber.join(first)
      assert.strictEqual(done.value.id, "first")
    }))

  test("run waits for an in-flight duplicate when asked, then replays its result", (fresh) =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        Idempotency.run(options())(() =>
          Effect.zipRight(
            Deferred.succeed(started, undefined),
            Effect.as(Deferred.await(gate), { id: "first", amount: 1, note: "" })
          )
        )
      )
      yield* Deferred.await(started)
      const waiter = yield* Effect.fork(
        Idempotency.run(options({ waitForInFlight: "10 seconds" }))(() => Effect.die("must not run"))
      )
      yield* fresh.advance("3 seconds")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* Deferred.succeed(gate, undefined)
      const firstResult = yield* Fiber.join(first)
      yield* untilDone(fresh, waiter)
      const replayed = yield* Fiber.join(waiter)
      assert.deepStrictEqual(replayed, { _tag: "Replayed", value: firstResult.value, attempt: 1 })
    }))

  test("run gives up waiting for an in-flight duplicate at the bound with a conflict", (fresh) =>
    Effect.gen(function*() {
      const gate = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        Idempotency.run(options())(() =>
          Effect.zipRight(
            Deferred.succeed(started, undefined),
            Effect.as(Deferred.await(gate), { id: "first", amount: 1, note: "" })
          )
        )
      )
      yield* Deferred.await(started)
      const waiter = yield* Effect.fork(
        Effect.flip(Idempotency.run(options({ waitForInFlight: "2 seconds" }))(() => Effect.die("must not run")))
      )
      // The first request's lease (30 s by default) stays live throughout.
      for (let i = 0; i < 19; i++) yield* fresh.settleAfter("100 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)))
      yield* untilDone(fresh, waiter)
      const error = yield* Fiber.join(waiter)
      assert.instanceOf(error, Idempotency.IdempotencyConflictError)
      yield* Deferred.succeed(gate, undefined)
      yield* Fiber.join(first)
    }))

  test("a result over maxStoredBytes is answered to the first caller; repeats fail with a terminal too-large error and never run", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const value = { id: "big", amount: 1, note: "x".repeat(2_000) }
      const big = (_: Idempotency.Execution) => Effect.as(Ref.update(calls, (n) => n + 1), value)
      const first = yield* Idempotency.run(options({ maxStoredBytes: 1_000 }))(big)
      assert.deepStrictEqual(first, { _tag: "Executed", value, attempt: 1 })
      const second = yield* Effect.flip(Idempotency.run(options({ maxStoredBytes: 1_000 }))(big))
      const third = yield* Effect.flip(Idempotency.run(options({ maxStoredBytes: 1_000 }))(big))
      assert.instanceOf(second, Idempotency.StoredResultTooLargeError)
      assert.deepStrictEqual(third, second)
      if (!(second instanceof Idempotency.StoredResultTooLargeError)) return
      assert.strictEqual(second.limit, 1_000)
      assert.isAbove(second.bytes, 2_000)
      assert.isTrue(Failure.isTerminal(second))
      assert.strictEqual(yield* Ref.get(calls), 1)
    }))

  test("a terminal failure over maxStoredBytes fails the first caller with it; repeats get the too-large error", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const declined = new CardDeclined({ reason: "y".repeat(2_000) })
      const handler = (_: Idempotency.Execution) =>
        Effect.zipRight(Ref.update(calls, (n) => n + 1), Effect.fail(declined))
      const first = yield* Effect.flip(Idempotency.run(options({ maxStoredBytes: 1_000 }))(handler))
      assert.deepStrictEqual(first, declined)
      const second = yield* Effect.flip(Idempotency.run(options({ maxStoredBytes: 1_000 }))(handler))
      assert.instanceOf(second, Idempotency.StoredResultTooLargeError)
      assert.strictEqual(yield* Ref.get(calls), 1)
    }))

  test("when the completion cannot be written, the first caller still gets the result; the key runs again only after its lease lapses, as a recovery", (fresh) =>
    Effect.gen(function*() {
      const inner = yield* store
      const completions = yield* Ref.make(0)
      // A store that cannot write completions, as when the database goes away right after the handler ran.
      const down: IdempotencyStore.Service = {
        ...inner,
        complete: () =>
          Effect.zipRight(
            Ref.update(completions, (n) => n + 1),
            Effect.fail(
              new IdempotencyStore.IdempotencyStoreError({ backend: "test", operation: "complete", cause: "down" })
            )
          )
      }
      const calls = yield* Ref.make(0)
      const first = yield* Effect.fork(
        Idempotency.run(options({ lease: "3 seconds" }))(counting(calls)).pipe(
          Effect.provideService(IdempotencyStore.IdempotencyStore, down)
        )
      )
      // The completion is retried twice (50 ms, then 100 ms) before the caller is answered.
      yield* untilDone(fresh, first)
      const answered = yield* Fiber.join(first)
      assert.strictEqual(answered._tag, "Executed")
      assert.strictEqual(answered.value.note, "charged")
      assert.strictEqual(yield* Ref.get(completions), 3)
      // Nothing stored: the key is still claimed until the lease lapses.
      const duplicate = yield* Effect.flip(Idempotency.run(options())(counting(calls)))
      assert.instanceOf(duplicate, Idempotency.IdempotencyConflictError)
      yield* fresh.advance("4 seconds")
      const retried = yield* Idempotency.run(options())(counting(calls))
      assert.strictEqual(retried._tag, "Executed")
      assert.strictEqual(retried.attempt, 2)
      assert.strictEqual(yield* Ref.get(calls), 2)
    }))

  test("a caller interrupted mid-handler releases the claim", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.fork(
        Idempotency.run(options())(() => Effect.zipRight(Deferred.succeed(started, undefined), Effect.never))
      )
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const s = yield* store
      assert.strictEqual(
        Option.getOrThrow(yield* s.lookup({ scope: SCOPE, partition: "", key: "key-1" })).state,
        "released"
      )
      const next = yield* Idempotency.run(options())((e) => Effect.succeed({ id: "next", amount: e.attempt, note: "" }))
      assert.strictEqual(next.attempt, 2)
    }))

  test("a new key costs a claim and a completion, a replay costs one claim: no other store call", () =>
    Effect.gen(function*() {
      const inner = yield* store
      const calls: Array<string> = []
      const counted: IdempotencyStore.Service = {
        ...inner,
        claim: (r) => Effect.zipRight(Effect.sync(() => calls.push("claim")), inner.claim(r)),
        heartbeat: (l) => Effect.zipRight(Effect.sync(() => calls.push("heartbeat")), inner.heartbeat(l)),
        complete: (l, r) => Effect.zipRight(Effect.sync(() => calls.push("complete")), inner.complete(l, r)),
        release: (l) => Effect.zipRight(Effect.sync(() => calls.push("release")), inner.release(l)),
        lookup: (k) => Effect.zipRight(Effect.sync(() => calls.push("lookup")), inner.lookup(k))
      }
      const count = yield* Ref.make(0)
      const run = Idempotency.run(options({ lease: "3 seconds" }))(counting(count)).pipe(
        Effect.provideService(IdempotencyStore.IdempotencyStore, counted)
      )
      assert.strictEqual((yield* run)._tag, "Executed")
      assert.deepStrictEqual(calls, ["claim", "complete"])
      calls.length = 0
      assert.strictEqual((yield* run)._tag, "Replayed")
      assert.deepStrictEqual(calls, ["claim"])
    }))

  test("the heartbeat keeps a long handler's lease alive", (fresh) =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const first = yield* Effect.fork(
        Idempotency.run(options({ lease: "3 seconds" }))(() =>
          Effect.zipRight(
            Deferred.succeed(started, undefined),
            Effect.as(Deferred.await(gate), { id: "long", amount: 1, note: "" })
          )
        )
      )
      yield* Deferred.await(started)
      for (let i = 0; i < 10; i++) {
        yield* fresh.advance("1 second")
        const duplicate = yield* Effect.flip(Idempotency.run(options())(() => Effect.die("must not run")))
        assert.instanceOf(duplicate, Idempotency.IdempotencyConflictError)
      }
      yield* Deferred.succeed(gate, undefined)
      assert.strictEqual((yield* Fiber.join(first)).value.id, "long")
    }))

  test("a stale executor's late completion is fenced: the newer attempt's result stands", (fresh) =>
    Effect.gen(function*() {
      const heartbeatsFail = yield* Ref.make(false)
      const inner = yield* store
      // A store whose heartbeats can be made to fail, as when the database is briefly unreachable.
      const flaky: IdempotencyStore.Service = {
        ...inner,
        heartbeat: (lease) =>
          Effect.flatMap(Ref.get(heartbeatsFail), (fail) =>
            fail
              ? Effect.fail(
                new IdempotencyStore.IdempotencyStoreError({ backend: "test", operation: "heartbeat", cause: "down" })
              )
              : inner.heartbeat(lease))
      }
      const withFlaky = Effect.provideService(IdempotencyStore.IdempotencyStore, flaky)
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const stale = yield* Effect.fork(
        withFlaky(Effect.flip(
          Idempotency.run(options({ lease: "3 seconds" }))(() =>
            Effect.zipRight(
              Deferred.succeed(started, undefined),
              Effect.as(Deferred.await(gate), { id: "stale", amount: 1, note: "" })
            )
          )
        ))
      )
      yield* Deferred.await(started)
      yield* Ref.set(heartbeatsFail, true)
      yield* fresh.advance("4 seconds")
      const newer = yield* Idempotency.run(options())((execution) =>
        Effect.succeed({ id: "newer", amount: execution.attempt, note: String(execution.recovery) })
      )
      assert.deepStrictEqual(newer.value, { id: "newer", amount: 2, note: "true" })
      yield* Deferred.succeed(gate, undefined)
      const error = yield* Fiber.join(stale)
      assert.instanceOf(error, Idempotency.IdempotencyConflictError)
      if (error instanceof Idempotency.IdempotencyConflictError) assert.strictEqual(error.reason, "LeaseLost")
      const replay = yield* Idempotency.run(options())(() => Effect.die("must not run"))
      assert.deepStrictEqual(replay, { _tag: "Replayed", value: newer.value, attempt: 2 })
    }))

  test("an executor whose heartbeat finds the lease taken over is interrupted", (fresh) =>
    Effect.gen(function*() {
      const heartbeatsFail = yield* Ref.make(false)
      const interrupted = yield* Deferred.make<void>()
      const inner = yield* store
      const flaky: IdempotencyStore.Service = {
        ...inner,
        heartbeat: (lease) =>
          Effect.flatMap(Ref.get(heartbeatsFail), (fail) =>
            fail
              ? Effect.fail(
                new IdempotencyStore.IdempotencyStoreError({ backend: "test", operation: "heartbeat", cause: "down" })
              )
              : inner.heartbeat(lease))
      }
      const started = yield* Deferred.make<void>()
      const stale = yield* Effect.fork(
        Effect.flip(
          Idempotency.run(options({ lease: "3 seconds" }))(() =>
            Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
              Effect.onInterrupt(() => Deferred.succeed(interrupted, undefined))
            )
          )
        ).pipe(Effect.provideService(IdempotencyStore.IdempotencyStore, flaky))
      )
      yield* Deferred.await(started)
      yield* Ref.set(heartbeatsFail, true)
      yield* fresh.advance("4 seconds")
      const newerStarted = yield* Deferred.make<void>()
      const newerGate = yield* Deferred.make<void>()
      const newer = yield* Effect.fork(
        Idempotency.run(options({ lease: "1 minute" }))(() =>
          Effect.zipRight(
            Deferred.succeed(newerStarted, undefined),
            Effect.as(Deferred.await(newerGate), { id: "newer", amount: 2, note: "" })
          )
        )
      )
      yield* Deferred.await(newerStarted)
      yield* Ref.set(heartbeatsFail, false)
      yield* fresh.settleAfter("1 second")
      yield* Deferred.await(interrupted)
      const error = yield* Fiber.join(stale)
      assert.instanceOf(error, Idempotency.IdempotencyConflictError)
      if (error instanceof Idempotency.IdempotencyConflictError) assert.strictEqual(error.reason, "LeaseLost")
      yield* Deferred.succeed(newerGate, undefined)
      assert.strictEqual((yield* Fiber.join(newer)).value.id, "newer")
    }))
}
