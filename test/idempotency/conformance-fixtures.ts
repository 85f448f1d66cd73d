/**
 * The conformance suite's fixtures: what a backend hands each test, the request and option builders, the schemas
 * and errors the handlers use.
 */
import * as Failure from "@bulwark/resilience/Failure"
import type * as Idempotency from "@bulwark/resilience/Idempotency"
import * as IdempotencyStore from "@bulwark/resilience/IdempotencyStore"
import * as Metrics from "@bulwark/resilience/Metrics"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schema from "effect/Schema"

/** A store for one test, and its clock. */
export interface Fresh {
  readonly layer: Layer.Layer<IdempotencyStore.IdempotencyStore>
  /**
   * Moves the store's time, and the Effect clock, forward; then lets the fibers that woke up (heartbeats, polls,
   * cleanup) finish what they started, I/O included.
   */
  readonly advance: (duration: Duration.DurationInput) => Effect.Effect<void>
  /**
   * Moves the Effect clock forward (heartbeats, polls and cleanup wake up), then lets the woken fibers finish their
   * I/O. The in-memory store's time moves with it; a database server's does not.
   */
  readonly settleAfter: (duration: Duration.DurationInput) => Effect.Effect<void>
}

export interface Backend<R> {
  readonly name: string
  readonly fresh: Effect.Effect<Fresh, never, R>
}

// -----------------------------------------------------------------------------
// Fixtures
// -----------------------------------------------------------------------------

export const Charge = Schema.Struct({ id: Schema.String, amount: Schema.Number, note: Schema.String })
export type Charge = typeof Charge.Type

/** Terminal: stored and replayed. */
export class CardDeclined extends Schema.TaggedError<CardDeclined>()("CardDeclined", { reason: Schema.String }) {
  readonly [Failure.TerminalTypeId]: typeof Failure.TerminalTypeId = Failure.TerminalTypeId
}

/** Transient: releases the claim. */
export class GatewayBusy extends Schema.TaggedError<GatewayBusy>()("GatewayBusy", { status: Schema.Number }) {
  readonly [Failure.TransientTypeId]: typeof Failure.TransientTypeId = Failure.TransientTypeId
}

/** Neither: unclassified, so it releases the claim. */
export class Unexpected extends Schema.TaggedError<Unexpected>()("Unexpected", { detail: Schema.String }) {}

export const ChargeFailure = Schema.Union(CardDeclined, GatewayBusy, Unexpected)
export type ChargeFailure = typeof ChargeFailure.Type

export const SCOPE = "POST /payments"

export const request = (overrides: {
  readonly key?: string
  readonly fingerprint?: string
  readonly partition?: string
  readonly owner?: string
  readonly lease?: Duration.DurationInput
  readonly ttl?: Duration.DurationInput
} = {}): IdempotencyStore.ClaimRequest => ({
  scope: SCOPE,
  partition: overrides.partition ?? "",
  key: overrides.key ?? "key-1",
  fingerprint: overrides.fingerprint ?? "fp-1",
  owner: overrides.owner ?? crypto.randomUUID(),
  lease: Duration.decode(overrides.lease ?? "30 seconds"),
  ttl: Duration.decode(overrides.ttl ?? "1 hour")
})

export const options = (overrides: {
  readonly key?: string
  readonly fingerprint?: string
  readonly partition?: string
  readonly lease?: Duration.DurationInput
  readonly ttl?: Duration.DurationInput
  readonly waitForInFlight?: Duration.DurationInput
  readonly storeFailures?: "terminal" | "all"
  readonly shouldStore?: (exit: Exit.Exit<Charge, ChargeFailure>) => boolean
  readonly maxStoredBytes?: number
  readonly scope?: string
} = {}): Idempotency.Options<Charge, typeof Charge.Encoded, ChargeFailure, typeof ChargeFailure.Encoded> => ({
  scope: overrides.scope ?? SCOPE,
  key: overrides.key ?? "key-1",
  fingerprint: overrides.fingerprint ?? "fp-1",
  success: Charge,
  failure: ChargeFailure,
  ...(overrides.partition === undefined ? {} : { partition: overrides.partition }),
  ...(overrides.lease === undefined ? {} : { lease: overrides.lease }),
  ...(overrides.ttl === undefined ? {} : { ttl: overrides.ttl }),
  ...(overrides.waitForInFlight === undefined ? {} : { waitForInFlight: overrides.waitForInFlight }),
  ...(overrides.storeFailures === undefined ? {} : { storeFailures: overrides.storeFailures }),
  ...(overrides.shouldStore === undefined ? {} : { shouldStore: overrides.shouldStore }),
  ...(overrides.maxStoredBytes === undefined ? {} : { maxStoredBytes: overrides.maxStoredBytes })
})

export const claimed = (result: IdempotencyStore.ClaimResult): IdempotencyStore.Lease => {
  if (result._tag !== "Claimed") throw new Error(`expected Claimed, got ${result._tag}`)
  return result.lease
}

export const store = IdempotencyStore.IdempotencyStore

/** How many times `bulwark_idempotency_requests_total{scope, result}` was incremented so far. */
export const requests = (scope: string, result: Idempotency.MetricResult) =>
  Metric.value(Metrics.idempotencyRequests.pipe(Metric.tagged("scope", scope), Metric.tagged("result", result))).pipe(
    Effect.map((state) => state.count)
  )

/** Moves the Effect clock (only) forward in small steps until the fiber is done. */
export const untilDone = <A, E>(fresh: Fresh, fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 100; i++) {
      if (Option.isSome(yield* Fiber.poll(fiber))) return
      yield* fresh.settleAfter("100 millis")
    }
  })

/** A handler that counts its executions and answers a fixed charge. */
export const counting = (calls: Ref.Ref<number>, note = "charged") => (execution: Idempotency.Execution) =>
  Effect.as(Ref.update(calls, (n) => n + 1), { id: `ch_${execution.attempt}`, amount: 1000, note })

/** Declares one test of the suite, on a fresh store of the backend. */
export type Test = (
  name: string,
  body: (fresh: Fresh) => Effect.Effect<void, unknown, IdempotencyStore.IdempotencyStore>
) => void
