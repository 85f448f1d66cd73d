/**
 * The conformance suite every idempotency store passes: the store's own
 * operations (claim, heartbeat, complete, release, lookup, deleteExpired) and
 * `Idempotency.run` on top of it.
 *
 * A backend hands each test a fresh, empty store and a way to move time
 * forward: the in-memory store follows `TestClock`; the PostgreSQL store gets
 * a table of its own per test, and its `advance` shifts that table's
 * timestamps back (Postgres' `now()` cannot be faked) before adjusting
 * `TestClock` (which drives heartbeats and polls).
 */
import type { Vitest } from "@effect/vitest"
import * as Effect from "effect/Effect"
import type { Backend, Test } from "./conformance-fixtures.js"
import { runTests } from "./conformance-run.js"
import { storeTests } from "./conformance-store.js"

export {
  type Backend,
  CardDeclined,
  Charge,
  ChargeFailure,
  type Fresh,
  GatewayBusy,
  requests,
  Unexpected
} from "./conformance-fixtures.js"

export const conformance = <R>(it: Vitest.MethodsNonLive<R>, backend: Backend<R>): void => {
  const test: Test = (name, body) =>
    it.effect(`${backend.name}: ${name}`, () =>
      Effect.flatMap(backend.fresh, (fresh) => Effect.provide(body(fresh), fresh.layer)))
  storeTests(test)
  runTests(test)
}
