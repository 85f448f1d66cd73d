/**
 * A circuit breaker whose state lives in a `TRef`, so its steps are `STM`
 * values: admitting a call, recording its outcome, reading the state, the
 * operator's controls, and waiting until the breaker leaves Open. They
 * compose with any other transaction, such as a `TBulkhead` permit: both are
 * taken, or neither.
 *
 * It is a {@link CircuitBreaker.CircuitBreaker} too: the same options,
 * errors, `protect`, metrics, logs and events, from the same state machine
 * and trip strategies as {@link CircuitBreaker.make}'s breaker, so it fits
 * wherever a breaker does (pipelines, the HTTP client). What differs is the
 * cost of a step that changes the state (a failure, a probe, a trip): an STM
 * commit, more than the synchronous breaker pays for a whole call. The happy
 * path of {@link protect} (a closed breaker, a success) commits nothing and
 * costs about what the synchronous breaker does (see the README's
 * measurements). Choose it for what only transactions can do; choose
 * {@link CircuitBreaker.make} otherwise.
 *
 * - Every breaker runs two fibers in the scope it was made in: the timer,
 *   which moves an idle breaker when its open duration ends (so
 *   {@link awaitNotOpen} wakes on time), and the reporter, which turns the
 *   steps your own transactions commit into metrics, logs and events.
 * - Steps run inside your transaction are reported after it commits, and
 *   never if it rolls back. A refused {@link admit} fails your transaction:
 *   nothing of it is kept, not even the refusal's count (a refusal through
 *   {@link protect} is counted).
 * - Time is read from the Clock of the fiber that made the breaker.
 *
 * @since 0.1.0
 */
import type * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import type * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import { hasProperty } from "effect/Predicate"
import type * as Scope from "effect/Scope"
import type * as STM from "effect/STM"
import type * as Failure from "../Failure.js"
import type * as CircuitBreaker from "./CircuitBreaker.js"
import type { CircuitOpenError } from "./internal/errors.js"
import * as internal from "./internal/tCircuitBreaker.js"
import * as registry from "./internal/tRegistry.js"
import { Registry } from "./internal/tRegistry.js"

/**
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: typeof internal.TTypeId = internal.TTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TypeId = typeof TypeId

/**
 * An STM circuit breaker: a {@link CircuitBreaker.CircuitBreaker} whose steps
 * are also {@link TCircuitBreaker.Transactions}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TCircuitBreaker<in E = unknown, in A = unknown> extends CircuitBreaker.CircuitBreaker<E, A> {
  readonly [TypeId]: TypeId
  /** The breaker's steps as transactions; the module's functions ({@link admit}, …) return them. */
  readonly transactions: TCircuitBreaker.Transactions
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace TCircuitBreaker {
  /**
   * A call admitted by {@link admit}: hand it back exactly once, with
   * {@link recordSuccess}, {@link recordFailure} or {@link release}.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Permit {
    /** The breaker that issued it. */
    readonly breaker: string
    /** The state's epoch when it was issued: an outcome from an older epoch is counted but changes nothing. */
    readonly epoch: number
    /** When it was issued (Clock milliseconds): the call's duration is measured from here. */
    readonly startedAt: number
  }

  /**
   * The breaker's steps as `STM` values.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Transactions {
    readonly admit: STM.STM<Permit, CircuitOpenError>
    readonly recordSuccess: (permit: Permit) => STM.STM<void>
    readonly recordFailure: (permit: Permit) => STM.STM<void>
    readonly release: (permit: Permit) => STM.STM<void>
    readonly state: STM.STM<CircuitBreaker.State>
    readonly awaitNotOpen: STM.STM<CircuitBreaker.State>
    readonly isolate: STM.STM<void>
    readonly close: STM.STM<void>
    readonly disable: STM.STM<void>
    readonly metricsOnly: STM.STM<void>
    readonly reset: STM.STM<void>
  }
}

/**
 * @since 0.1.0
 * @category Guards
 */
export const isTCircuitBreaker = (u: unknown): u is TCircuitBreaker => hasProperty(u, TypeId)

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * Makes an STM breaker from the same {@link CircuitBreaker.Options} as
 * {@link CircuitBreaker.make}; invalid options fail with `InvalidOptionsError`
 * naming the option. Its timer and reporter fibers run in the current scope:
 * when it closes, the breaker stops moving on its own and reporting the steps
 * of your transactions (`protect` still reports its own).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const breaker = yield* TCircuitBreaker.make({ name: "payments", openDuration: "30 seconds" })
 *   return yield* Effect.succeed("charged").pipe(TCircuitBreaker.protect(breaker))
 * }))
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <E = unknown, A = unknown>(
  options: CircuitBreaker.Options<E, A>
) => Effect.Effect<TCircuitBreaker<E, A>, Failure.InvalidOptionsError, Scope.Scope> = internal.make

// -----------------------------------------------------------------------------
// Transactions
// -----------------------------------------------------------------------------

/**
 * Asks for a permit, in a transaction: succeeds with the {@link Permit} when
 * the breaker admits a call (Closed, a free half-open probe slot, …) and
 * fails with `CircuitOpenError` otherwise, failing the whole transaction.
 *
 * @example
 * ```ts
 * import { Effect, STM } from "effect"
 * import { TBulkhead, TCircuitBreaker } from "@bulwark/resilience"
 *
 * // A bulkhead slot and a breaker permit, both or neither.
 * const both = (bulkhead: TBulkhead.TBulkhead, breaker: TCircuitBreaker.TCircuitBreaker) =>
 *   STM.commit(STM.zipRight(TBulkhead.tryAcquire(bulkhead), TCircuitBreaker.admit(breaker)))
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const admit = (self: TCircuitBreaker<never, never>): STM.STM<TCircuitBreaker.Permit, CircuitOpenError> =>
  self.transactions.admit

const finisher = (
  pick: (transactions: TCircuitBreaker.Transactions) => (permit: TCircuitBreaker.Permit) => STM.STM<void>
) =>
  dual<
    (permit: TCircuitBreaker.Permit) => (self: TCircuitBreaker<never, never>) => STM.STM<void>,
    (self: TCircuitBreaker<never, never>, permit: TCircuitBreaker.Permit) => STM.STM<void>
  >(2, (self, permit) => pick(self.transactions)(permit))

/**
 * Records a permitted call as a success (slow when it took longer than the
 * slow-call duration), in a transaction. A probe success may close the breaker.
 *
 * @example
 * ```ts
 * import { Effect, STM } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const call = (breaker: TCircuitBreaker.TCircuitBreaker, work: Effect.Effect<string>) =>
 *   Effect.flatMap(STM.commit(TCircuitBreaker.admit(breaker)), (permit) =>
 *     Effect.tap(work, () => STM.commit(TCircuitBreaker.recordSuccess(breaker, permit))))
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const recordSuccess: {
  (permit: TCircuitBreaker.Permit): (self: TCircuitBreaker<never, never>) => STM.STM<void>
  (self: TCircuitBreaker<never, never>, permit: TCircuitBreaker.Permit): STM.STM<void>
} = finisher((transactions) => transactions.recordSuccess)

/**
 * Records a permitted call as a failure, in a transaction: it counts towards
 * the trip strategies, and may open the breaker.
 *
 * @since 0.1.0
 * @category Transactions
 */
export const recordFailure: {
  (permit: TCircuitBreaker.Permit): (self: TCircuitBreaker<never, never>) => STM.STM<void>
  (self: TCircuitBreaker<never, never>, permit: TCircuitBreaker.Permit): STM.STM<void>
} = finisher((transactions) => transactions.recordFailure)

/**
 * Hands a permit back uncounted (the call was interrupted, or failed in a way
 * that says nothing about the dependency): a half-open probe slot is freed.
 *
 * @since 0.1.0
 * @category Transactions
 */
export const release: {
  (permit: TCircuitBreaker.Permit): (self: TCircuitBreaker<never, never>) => STM.STM<void>
  (self: TCircuitBreaker<never, never>, permit: TCircuitBreaker.Permit): STM.STM<void>
} = finisher((transactions) => transactions.release)

/**
 * The state, in a transaction (a due Open → HalfOpen move is made). Several
 * breakers read in one transaction form one consistent snapshot.
 *
 * @example
 * ```ts
 * import { STM } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const bothStates = (a: TCircuitBreaker.TCircuitBreaker, b: TCircuitBreaker.TCircuitBreaker) =>
 *   STM.commit(STM.all([TCircuitBreaker.state(a), TCircuitBreaker.state(b)]))
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const state = (self: TCircuitBreaker<never, never>): STM.STM<CircuitBreaker.State> => self.transactions.state

/**
 * Waits (with `STM.retry`) while the breaker is Open or ForcedOpen, and
 * succeeds with the state it then has. The breaker's timer half-opens it on
 * time, which wakes the waiter.
 *
 * @example
 * ```ts
 * import { Effect, STM } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const whenOpenEnds = (breaker: TCircuitBreaker.TCircuitBreaker) =>
 *   Effect.flatMap(STM.commit(TCircuitBreaker.awaitNotOpen(breaker)), (state) => Effect.log(`now ${state}`))
 * ```
 *
 * @since 0.1.0
 * @category Transactions
 */
export const awaitNotOpen = (self: TCircuitBreaker<never, never>): STM.STM<CircuitBreaker.State> =>
  self.transactions.awaitNotOpen

/**
 * Forces the breaker open, in a transaction (see `CircuitBreaker.isolate`).
 *
 * @since 0.1.0
 * @category Transactions
 */
export const isolate = (self: TCircuitBreaker<never, never>): STM.STM<void> => self.transactions.isolate

/**
 * Closes the breaker, in a transaction: empty windows, past openings forgotten.
 *
 * @since 0.1.0
 * @category Transactions
 */
export const close = (self: TCircuitBreaker<never, never>): STM.STM<void> => self.transactions.close

/**
 * Lets every call through uncounted until an operator changes the state, in a transaction.
 *
 * @since 0.1.0
 * @category Transactions
 */
export const disable = (self: TCircuitBreaker<never, never>): STM.STM<void> => self.transactions.disable

/**
 * Lets every call through and counts it; a tripped strategy is reported instead of opening. In a transaction.
 *
 * @since 0.1.0
 * @category Transactions
 */
export const metricsOnly = (self: TCircuitBreaker<never, never>): STM.STM<void> => self.transactions.metricsOnly

/**
 * Back to a fresh Closed breaker, in a transaction; a `Reset` event follows the commit.
 *
 * @since 0.1.0
 * @category Transactions
 */
export const reset = (self: TCircuitBreaker<never, never>): STM.STM<void> => self.transactions.reset

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Runs an effect through the breaker, as `CircuitBreaker.protect`: one
 * commit to take a permit, one to record the outcome, and interruption
 * hands the permit back.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const charge = (breaker: TCircuitBreaker.TCircuitBreaker) =>
 *   Effect.succeed("charged").pipe(TCircuitBreaker.protect(breaker))
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const protect: {
  <E0, A0>(
    breaker: TCircuitBreaker<E0, A0>
  ): <A extends A0, E extends E0, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E | CircuitOpenError, R>
  <A extends A0, E extends E0, R, E0, A0>(
    self: Effect.Effect<A, E, R>,
    breaker: TCircuitBreaker<E0, A0>
  ): Effect.Effect<A, E | CircuitOpenError, R>
} = dual(
  2,
  <A extends A0, E extends E0, R, E0, A0>(
    self: Effect.Effect<A, E, R>,
    breaker: TCircuitBreaker<E0, A0>
  ): Effect.Effect<A, E | CircuitOpenError, R> => breaker.protect(self)
)

// -----------------------------------------------------------------------------
// Registry
// -----------------------------------------------------------------------------

/**
 * The registry's operations: as `CircuitBreaker.RegistryService`, with STM
 * breakers, and `states` read in one transaction.
 *
 * @since 0.1.0
 * @category Registry
 */
export interface RegistryService {
  /** The breaker with this name, created with the defaults the first time it is asked for. */
  readonly get: (name: string) => Effect.Effect<TCircuitBreaker, Failure.InvalidOptionsError>
  /** Every breaker created so far, in creation order. */
  readonly all: Effect.Effect<ReadonlyArray<TCircuitBreaker>>
  /** Every breaker's state, all read in one transaction. */
  readonly states: Effect.Effect<ReadonlyArray<CircuitBreaker.BreakerStatus>>
}

// Declared in `internal/tRegistry.ts`, which provides it.
export { Registry }

/**
 * A {@link Registry} of STM breakers, from the same configuration as
 * `CircuitBreaker.layer`; their fibers run in the layer's scope.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const Breakers = TCircuitBreaker.layer({ breakers: { payments: { openDuration: "10 seconds" } } })
 *
 * const program = Effect.gen(function* () {
 *   const payments = yield* TCircuitBreaker.named("payments")
 *   return yield* Effect.succeed("ok").pipe(TCircuitBreaker.protect(payments))
 * }).pipe(Effect.provide(Breakers))
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layer: (config?: CircuitBreaker.RegistryConfig) => Layer.Layer<Registry, Failure.InvalidOptionsError> =
  registry.layer

/**
 * A {@link Registry} of STM breakers whose configuration comes from effect's
 * `Config`, as `CircuitBreaker.layerConfig`.
 *
 * @example
 * ```ts
 * import { Config, Effect } from "effect"
 * import { TCircuitBreaker } from "@bulwark/resilience"
 *
 * const Breakers = TCircuitBreaker.layerConfig({
 *   breakers: { payments: { openDuration: Config.duration("PAYMENTS_BREAKER_OPEN_FOR") } }
 * })
 * ```
 *
 * @since 0.1.0
 * @category Layers
 */
export const layerConfig: (
  config: Config.Config.Wrap<CircuitBreaker.RegistryConfig>
) => Layer.Layer<Registry, Failure.InvalidOptionsError | ConfigError.ConfigError> = registry.layerConfig

/**
 * The registry's breaker with this name, created with the defaults if new.
 *
 * @since 0.1.0
 * @category Registry
 */
export const named: (name: string) => Effect.Effect<TCircuitBreaker, Failure.InvalidOptionsError, Registry> =
  registry.named
