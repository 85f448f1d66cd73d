/**
 * The in-memory store passes the idempotency conformance suite, on TestClock.
 */
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import { it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as TestClock from "effect/TestClock"
import { conformance } from "./conformance.js"

const settle = Effect.repeatN(Effect.yieldNow(), 10)

conformance(it, {
  name: "memory",
  fresh: Effect.succeed({
    layer: IdempotencyStore.layerMemory,
    advance: (duration) => Effect.zipRight(TestClock.adjust(duration), settle),
    settleAfter: (duration) => Effect.zipRight(TestClock.adjust(duration), settle)
  })
})
