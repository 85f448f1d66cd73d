/**
 * Errors declared by users, not the library's own: `Failure.TransientTaggedError` /
 * `Failure.TerminalTaggedError`, and the annotated brand on another base class. The type-level
 * checks (`expectTypeOf`, `@ts-expect-error`) are enforced by `npm run check`, which type-checks
 * this file; an unused `@ts-expect-error` is itself an error there.
 */
import { assert, describe, expectTypeOf, it } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as Failure from "./Failure.js"
import * as Retry from "./retry/Retry.js"

class PaymentGatewayDown extends Failure.TransientTaggedError("PaymentGatewayDown")<{
  readonly status: number
}> {}

class CardDeclined extends Failure.TerminalTaggedError("CardDeclined")<{ readonly reason: string }> {}

class GatewayBusy extends Failure.TransientTaggedError("GatewayBusy") {}

class RateLimited extends Failure.TransientTaggedError("RateLimited")<{ readonly retryAfter: Duration.Duration }> {}

class Conflict extends Failure.TerminalTaggedError("Conflict") {}

// The documented form for a class that needs another base: the brand annotated with its unique symbol type.
class InventoryLocked extends Schema.TaggedError<InventoryLocked>()("InventoryLocked", { sku: Schema.String }) {
  readonly [Failure.TransientTypeId]: typeof Failure.TransientTypeId = Failure.TransientTypeId
}

let policyCount = 0
const fastPolicy = (maxAttempts: number) =>
  Retry.unsafeMake({
    name: `user-errors-${++policyCount}`,
    backoff: Retry.constant(0),
    jitter: "none",
    maxAttempts
  })

describe("user-declared errors: types", () => {
  it("carry the brands typed as the unique symbols", () => {
    expectTypeOf<PaymentGatewayDown>().toExtend<Failure.Transient>()
    expectTypeOf<PaymentGatewayDown>().not.toExtend<Failure.Terminal>()
    expectTypeOf<CardDeclined>().toExtend<Failure.Terminal>()
    expectTypeOf<CardDeclined>().not.toExtend<Failure.Transient>()
    expectTypeOf<InventoryLocked>().toExtend<Failure.Transient>()
    expectTypeOf<PaymentGatewayDown[typeof Failure.TransientTypeId]>().toEqualTypeOf<Failure.TransientTypeId>()
    expectTypeOf<CardDeclined[typeof Failure.TerminalTypeId]>().toEqualTypeOf<Failure.TerminalTypeId>()
    expectTypeOf<PaymentGatewayDown["_tag"]>().toEqualTypeOf<"PaymentGatewayDown">()
    expectTypeOf<CardDeclined["reason"]>().toEqualTypeOf<string>()
  })

  it("take their fields, and an optional retryAfter on transient ones", () => {
    const down = new PaymentGatewayDown({ status: 503, retryAfter: Duration.seconds(2) })
    expectTypeOf(down.retryAfter).toEqualTypeOf<Duration.Duration | undefined>()
    expectTypeOf(new RateLimited({ retryAfter: Duration.seconds(1) }).retryAfter).toEqualTypeOf<Duration.Duration>()
    new GatewayBusy()
    new Conflict()
    // @ts-expect-error a declared field is required
    new PaymentGatewayDown({})
    // @ts-expect-error a declared retryAfter is required
    new RateLimited({})
    // @ts-expect-error a terminal error has no retryAfter
    new CardDeclined({ reason: "x", retryAfter: Duration.seconds(1) })
    // @ts-expect-error the tag is not an argument
    new CardDeclined({ reason: "x", _tag: "Other" })
    // @ts-expect-error only a Duration is a retryAfter hint (Retry and retryAfterOf read nothing else)
    class NumericHint extends Failure.TransientTaggedError("NumericHint")<{ readonly retryAfter: number }> {}
    assert.isDefined(NumericHint)
  })

  it("Retry.retry removes a user transient error and keeps a user terminal one", () => {
    const policy = fastPolicy(2)
    const call = Effect.fail(new PaymentGatewayDown({ status: 503 })) as Effect.Effect<
      string,
      PaymentGatewayDown | CardDeclined
    >
    const retried = call.pipe(Retry.retry(policy))
    expectTypeOf(retried).toEqualTypeOf<
      Effect.Effect<string, CardDeclined | Failure.RetriesExhausted<PaymentGatewayDown>>
    >()

    const lockedCall = Effect.fail(new InventoryLocked({ sku: "a" })).pipe(Retry.retry(policy))
    expectTypeOf(lockedCall).toEqualTypeOf<Effect.Effect<never, Failure.RetriesExhausted<InventoryLocked>>>()

    // A catchTag on a transient error that retry already removed does not compile…
    // @ts-expect-error "PaymentGatewayDown" is no longer in the error channel
    retried.pipe(Effect.catchTag("PaymentGatewayDown", () => Effect.succeed("fallback")))
    // …while the terminal error and the exhaustion are still there to catch.
    const handled = retried.pipe(
      Effect.catchTag("CardDeclined", (e) => Effect.succeed(e.reason)),
      Effect.catchTag("RetriesExhausted", (e) => Effect.succeed(String(e.lastFailure.status)))
    )
    expectTypeOf(handled).toEqualTypeOf<Effect.Effect<string>>()
  })

  it("isTransient and isTerminal narrow a union of user errors", () => {
    const narrow = (error: PaymentGatewayDown | CardDeclined): string => {
      if (Failure.isTransient(error)) {
        expectTypeOf(error).toEqualTypeOf<PaymentGatewayDown>()
        return String(error.status)
      }
      expectTypeOf(error).toEqualTypeOf<CardDeclined>()
      // @ts-expect-error a CardDeclined has no status
      void error.status
      return error.reason
    }
    const narrowTerminal = (error: PaymentGatewayDown | CardDeclined): string => {
      if (Failure.isTerminal(error)) {
        expectTypeOf(error).toEqualTypeOf<CardDeclined>()
        return error.reason
      }
      expectTypeOf(error).toEqualTypeOf<PaymentGatewayDown>()
      return String(error.status)
    }
    assert.strictEqual(narrow(new PaymentGatewayDown({ status: 502 })), "502")
    assert.strictEqual(narrowTerminal(new CardDeclined({ reason: "stolen" })), "stolen")
  })
})

describe("user-declared errors: run time", () => {
  it("are tagged, yieldable errors with their fields", () => {
    const down = new PaymentGatewayDown({ status: 503 })
    assert.instanceOf(down, Error)
    assert.instanceOf(down, PaymentGatewayDown)
    assert.strictEqual(down._tag, "PaymentGatewayDown")
    assert.strictEqual(down.name, "PaymentGatewayDown")
    assert.strictEqual(down.status, 503)
    assert.deepStrictEqual(
      Effect.runSyncExit(new CardDeclined({ reason: "x" })),
      Exit.fail(new CardDeclined({ reason: "x" }))
    )
    const recovered = Effect.runSync(
      Effect.fail(new CardDeclined({ reason: "expired" })).pipe(
        Effect.catchTag("CardDeclined", (e) => Effect.succeed(e.reason))
      )
    )
    assert.strictEqual(recovered, "expired")
  })

  it("are classified by their brand, ahead of the classifier's tables", () => {
    const classifier = Failure.extend(Failure.defaultClassifier, {
      tags: { PaymentGatewayDown: "terminal", CardDeclined: "transient" }
    })
    for (const c of [Failure.defaultClassifier, classifier]) {
      assert.deepStrictEqual(
        Failure.classifyError(new PaymentGatewayDown({ status: 503 }), c),
        Option.some("transient")
      )
      assert.deepStrictEqual(Failure.classifyError(new GatewayBusy(), c), Option.some("transient"))
      assert.deepStrictEqual(Failure.classifyError(new CardDeclined({ reason: "x" }), c), Option.some("terminal"))
      assert.deepStrictEqual(Failure.classifyError(new Conflict(), c), Option.some("terminal"))
    }
    assert.isTrue(Failure.isTransient(new GatewayBusy()))
    assert.isFalse(Failure.isTerminal(new GatewayBusy()))
    assert.isTrue(Failure.isTerminal(new Conflict()))
    assert.isFalse(Failure.isTransient(new Conflict()))
    assert.isFalse(Failure.isRejection(new GatewayBusy()))
  })

  it("pass retryAfter through as the server's hint", () => {
    const hinted = new PaymentGatewayDown({ status: 429, retryAfter: Duration.seconds(3) })
    assert.deepStrictEqual(Failure.retryAfterOf(hinted), Option.some(Duration.seconds(3)))
    assert.isTrue(Option.isNone(Failure.retryAfterOf(new PaymentGatewayDown({ status: 503 }))))
  })

  it("pass through lift and classify untouched", () => {
    const down = new PaymentGatewayDown({ status: 503 })
    const declined = new CardDeclined({ reason: "x" })
    const lifted = Effect.runSyncExit(Effect.fail(down).pipe(Failure.lift(() => "terminal")))
    assert.deepStrictEqual(lifted, Exit.fail(down))
    const classified = Effect.runSyncExit(Effect.fail(declined).pipe(Failure.classify({ unknown: "transient" })))
    assert.deepStrictEqual(classified, Exit.fail(declined))
  })

  it.live("Retry.retry retries a user transient error and gives up with RetriesExhausted", () =>
    Effect.gen(function*() {
      let attempts = 0
      const down = new PaymentGatewayDown({ status: 503 })
      const exit = yield* Effect.exit(
        Effect.suspend(() => {
          attempts++
          return Effect.fail(down)
        }).pipe(Retry.retry(fastPolicy(3)))
      )
      assert.strictEqual(attempts, 3)
      assert.isTrue(Exit.isFailure(exit))
      const error = yield* Effect.flip(exit)
      assert.instanceOf(error, Failure.RetriesExhausted)
      assert.strictEqual(error.reason, "MaxAttempts")
      assert.strictEqual(error.attempts, 3)
      assert.strictEqual(error.lastFailure, down)
      // A user error without a message is named by its tag.
      assert.match(error.message, /last failure: PaymentGatewayDown$/)
    }))

  it.live("Retry.retry succeeds once a user transient error stops", () =>
    Effect.gen(function*() {
      let attempts = 0
      const result = yield* Effect.suspend(() =>
        ++attempts < 3 ? Effect.fail(new GatewayBusy()) : Effect.succeed("charged")
      ).pipe(Retry.retry(fastPolicy(5)))
      assert.strictEqual(result, "charged")
      assert.strictEqual(attempts, 3)
    }))

  it.live("Retry.retry never retries a user terminal error", () =>
    Effect.gen(function*() {
      let attempts = 0
      const declined = new CardDeclined({ reason: "insufficient funds" })
      const exit = yield* Effect.exit(
        Effect.suspend(() => {
          attempts++
          return Effect.fail(declined)
        }).pipe(Retry.retry(fastPolicy(5)))
      )
      assert.strictEqual(attempts, 1)
      assert.deepStrictEqual(exit, Exit.fail(declined))
    }))
})
