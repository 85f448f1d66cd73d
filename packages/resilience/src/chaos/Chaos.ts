/**
 * Chaos: faults, latency, fake outcomes and side effects injected on purpose,
 * at a rate, behind a switch, so you can watch your breakers, retries,
 * timeouts and fallbacks do their job before production does it for you.
 *
 * The model is Polly v8's chaos strategies (Simmy), adapted to Effect:
 *
 * | strategy | injects | the operation |
 * |---|---|---|
 * | {@link fault} | a typed failure (yours, or a transient {@link InjectedFaultError}) | does not run |
 * | {@link latency} | a delay (`Effect.sleep`, so `TestClock` drives it), or a hang | runs after the delay |
 * | {@link outcome} | a result of your choosing (a value, a fake response, a failure) | does not run |
 * | {@link behavior} | any side effect (kill a connection, fill a queue) | runs after it |
 *
 * Every strategy has an injection `rate` (0 to 1, or an Effect read per call),
 * an `enabled` switch (a boolean, a {@link Switch} flipped at runtime, or any
 * Effect of a boolean), an optional predicate `when` over the call's input,
 * and a `phase`: `"before"` (default) acts instead of or before the
 * operation; `"after"` lets the operation run first, then acts on its success
 * (a fault `"after"` is a lost answer: the work was done, the caller sees a
 * failure, the scenario idempotency keys exist for).
 *
 * A {@link Policy} is a value: a name and strategies in order, the first the
 * outermost. {@link inject} applies it to an effect; {@link httpClient} and
 * {@link middleware} apply it to an `HttpClient` or an `HttpApp`.
 *
 * **Put chaos innermost**, right around the operation, so every other layer
 * sees the injected faults as real ones: the breaker counts them, retry
 * retries the transient ones, the timeout cuts the latency.
 *
 * ```text
 * operation.pipe(Chaos.inject(chaos), Timeout.timeout(perAttempt), Retry.retry(retry), CircuitBreaker.protect(breaker))
 * ```
 *
 * Randomness comes from Effect's `Random` service (seed it with
 * `Effect.withRandom(Random.make(seed))` for a reproducible run); a rate of 0
 * never injects and a rate of 1 always does, without drawing. Each injection
 * counts in `bulwark_chaos_injections_total{policy, kind}` and logs at debug
 * level.
 *
 * @since 0.1.0
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientError from "@effect/platform/HttpClientError"
import type * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import type * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type { Pipeable } from "effect/Pipeable"
import type * as Stream from "effect/Stream"
import type { InvalidOptionsError } from "../Failure.js"
import * as internal from "./internal/chaos.js"
import { InjectedFaultError } from "./internal/errors.js"
import * as http from "./internal/http.js"
import * as switches from "./internal/switch.js"

// -----------------------------------------------------------------------------
// Symbols
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Symbols
 */
export const TypeId: typeof internal.TypeId = internal.TypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type TypeId = typeof TypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export const StrategyTypeId: typeof internal.StrategyTypeId = internal.StrategyTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type StrategyTypeId = typeof StrategyTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export const SwitchTypeId: typeof internal.SwitchTypeId = internal.SwitchTypeId

/**
 * @since 0.1.0
 * @category Symbols
 */
export type SwitchTypeId = typeof SwitchTypeId

// -----------------------------------------------------------------------------
// Models
// -----------------------------------------------------------------------------

/**
 * What a strategy injects; the value of the `kind` metric label.
 *
 * @since 0.1.0
 * @category Models
 */
export type Kind = "fault" | "latency" | "outcome" | "behavior"

/**
 * When a strategy acts. `"before"`: instead of the operation (fault,
 * outcome) or before it (latency, behavior). `"after"`: once the operation
 * has run; a fault or outcome then replaces its success (its failures pass
 * through untouched), latency delays its result, a behavior runs after it.
 *
 * @since 0.1.0
 * @category Models
 */
export type Phase = "before" | "after"

/**
 * The probability, 0 to 1, that a call is injected: a number, checked when the
 * policy is made, or an Effect read on every call (e.g. a `Ref` an admin
 * route sets). Values an Effect returns are clamped to 0–1 (NaN counts as 0).
 *
 * @since 0.1.0
 * @category Models
 */
export type Rate<R = never> = number | Effect.Effect<number, never, R>

/**
 * Whether a strategy (or a whole policy) is on: a boolean, a {@link Switch},
 * or an Effect of a boolean read on every call.
 *
 * @since 0.1.0
 * @category Models
 */
export type Enabled<R = never> = boolean | Switch | Effect.Effect<boolean, never, R>

/**
 * A delay: a fixed duration (an infinite one hangs until interrupted), or a
 * range drawn uniformly from `Random` on each injection.
 *
 * @since 0.1.0
 * @category Models
 */
export type Latency =
  | Duration.DurationInput
  | { readonly min: Duration.DurationInput; readonly max: Duration.DurationInput }

/**
 * An on/off switch for chaos, flipped at runtime (by the demo, an admin
 * route, a test), backed by a `SubscriptionRef` so its changes can be
 * watched. Build it with {@link makeSwitch}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const chaosOn = yield* Chaos.makeSwitch(false)
 *   const chaos = yield* Chaos.make({ name: "gateway", enabled: chaosOn, strategies: [Chaos.fault({ rate: 0.2 })] })
 *   yield* chaosOn.turnOn // from now on, one call in five fails
 *   return chaos
 * })
 * ```
 *
 * @since 0.1.0
 * @category Models
 */
export interface Switch {
  readonly [SwitchTypeId]: SwitchTypeId
  /** Reads the switch. */
  readonly isOn: Effect.Effect<boolean>
  /** Sets the switch. */
  readonly set: (on: boolean) => Effect.Effect<void>
  readonly turnOn: Effect.Effect<void>
  readonly turnOff: Effect.Effect<void>
  /** Flips the switch and returns its new position. */
  readonly toggle: Effect.Effect<boolean>
  /** The current position, then every change. */
  readonly changes: Stream.Stream<boolean>
}

/**
 * What an injection does, by kind. Built by the strategy constructors.
 *
 * @since 0.1.0
 * @category Models
 */
export type Action<I, A, E, R> =
  | { readonly kind: "fault"; readonly error: (input: I, policy: string) => E }
  | { readonly kind: "latency"; readonly latency: Latency }
  | { readonly kind: "outcome"; readonly outcome: (input: I) => Effect.Effect<A, E, R> }
  | { readonly kind: "behavior"; readonly behavior: (input: I) => Effect.Effect<unknown, E, R> }

/**
 * A constraint on a strategy's own option that {@link make} enforces (for
 * example the status of a synthetic response).
 *
 * @since 0.1.0
 * @category Models
 */
export interface OptionCheck {
  readonly option: string
  readonly value: unknown
  readonly expected: string
  readonly valid: boolean
}

/**
 * One chaos strategy, as described by {@link fault}, {@link latency},
 * {@link outcome}, {@link behavior} (or the HTTP helpers); {@link make}
 * validates it. `I` is the input its predicate and generators see (`unknown`
 * unless they need one, e.g. an `HttpClientRequest`), `A` the outcome it may
 * substitute, `E` the failures it may inject, `R` what it needs.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Strategy<in I = unknown, out A = never, out E = never, out R = never> {
  readonly [StrategyTypeId]: StrategyTypeId
  readonly action: Action<I, A, E, R>
  readonly rate: Rate<R>
  readonly enabled: Enabled<R>
  readonly when: ((input: I) => boolean) | undefined
  readonly phase: Phase
  readonly checks: ReadonlyArray<OptionCheck>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Strategy {
  /**
   * Any strategy. Only the brand: a constraint that says more would make
   * TypeScript infer a strategy's own types from it (`never` inputs) when the
   * strategy is built inside {@link make}'s options.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Any {
    readonly [StrategyTypeId]: StrategyTypeId
  }

  /**
   * What every strategy of `S` needs as input: the intersection of their inputs.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Input<S extends ReadonlyArray<Any>> =
    (S[number] extends Strategy<infer I, unknown, unknown, unknown> ? (input: I) => void : never) extends
      (input: infer X) => void ? X
      : never

  /**
   * The outcomes a strategy may substitute.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Success<S extends Any> = S extends Strategy<never, infer A, unknown, unknown> ? A : never

  /**
   * The failures a strategy may inject.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Error<S extends Any> = S extends Strategy<never, unknown, infer E, unknown> ? E : never

  /**
   * What a strategy needs.
   *
   * @since 0.1.0
   * @category Models
   */
  export type Context<S extends Any> = S extends Strategy<never, unknown, unknown, infer R> ? R : never

  /**
   * The policy {@link make} builds from the strategies `S` and a master switch needing `RP`.
   *
   * @since 0.1.0
   * @category Models
   */
  export type PolicyOf<S extends ReadonlyArray<Any>, RP = never> = Policy<
    Input<S>,
    Success<S[number]>,
    Error<S[number]>,
    Context<S[number]> | RP
  >
}

/**
 * The options every strategy shares.
 *
 * @since 0.1.0
 * @category Models
 */
export interface StrategyOptions<I = unknown, R = never> {
  /** The injection rate, 0 to 1 (see {@link Rate}). Required: chaos at a rate nobody chose is a surprise. */
  readonly rate: Rate<R>
  /** Default `true` (see {@link Enabled}). */
  readonly enabled?: Enabled<R>
  /** Only calls whose input satisfies it are candidates; checked before the dice are rolled. Default: every call. */
  readonly when?: (input: I) => boolean
  /** Default `"before"` (see {@link Phase}). */
  readonly phase?: Phase
}

/**
 * Options of {@link fault} with your own error.
 *
 * @since 0.1.0
 * @category Models
 */
export interface FaultOptions<I, E, R = never> extends StrategyOptions<I, R> {
  /** Builds the failure, once per injection. */
  readonly error: (input: I) => E
}

/**
 * Options of {@link latency}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface LatencyOptions<I = unknown, R = never> extends StrategyOptions<I, R> {
  /** Non-negative; `Duration.infinity` hangs until the caller gives up. A range is drawn to the millisecond. */
  readonly latency: Latency
}

/**
 * Options of {@link outcome}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface OutcomeOptions<I, A, E = never, RO = never, R = never> extends StrategyOptions<I, R> {
  /** The result given instead of the operation's: `Effect.succeed(value)`, a fake response, or a failure. */
  readonly outcome: (input: I) => Effect.Effect<A, E, RO>
}

/**
 * Options of {@link behavior}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface BehaviorOptions<I, E = never, RB = never, R = never> extends StrategyOptions<I, R> {
  /** The side effect; its failure becomes the call's failure. */
  readonly behavior: (input: I) => Effect.Effect<unknown, E, RB>
}

/**
 * A validated chaos policy: strategies in order, the first the outermost.
 * Build it with {@link make}; apply it with {@link inject}, {@link injectWith},
 * {@link httpClient} or {@link middleware}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface Policy<in I = unknown, out A = never, out E = never, out R = never> extends Pipeable {
  readonly [TypeId]: TypeId
  /** The value of the `policy` metric label. */
  readonly name: string
  /** The kinds of its strategies, outermost first. */
  readonly kinds: ReadonlyArray<Kind>
  /** Applies the policy to one call with its input; see {@link injectWith}. */
  readonly inject: <A0, E0, R0>(self: Effect.Effect<A0, E0, R0>, input: I) => Effect.Effect<A0 | A, E0 | E, R0 | R>
}

/**
 * @since 0.1.0
 * @category Models
 */
export declare namespace Chaos {
  /**
   * Options of {@link make}.
   *
   * @since 0.1.0
   * @category Models
   */
  export interface Options<S extends ReadonlyArray<Strategy.Any>, RP = never> {
    /** Names the policy in the `policy` metric label and logs: 1 to 128 of `A-Z a-z 0-9 _ . : / -`. */
    readonly name: string
    /** At least one; the first is the outermost (decides and acts first). */
    readonly strategies: S
    /** A master switch for every strategy of the policy (see {@link Enabled}). Default `true`. */
    readonly enabled?: Enabled<RP>
  }
}

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

// Declared in `internal/errors.ts`, a leaf the internals import.
export { InjectedFaultError }

// -----------------------------------------------------------------------------
// Strategies
// -----------------------------------------------------------------------------

/**
 * Fails the call with a typed error instead of running it (or, with `phase:
 * "after"`, after it succeeded). Without `error`, fails with a transient
 * {@link InjectedFaultError}.
 *
 * @example
 * ```ts
 * import { Chaos, Failure } from "@bulwark/resilience"
 *
 * class CardDeclined extends Failure.TerminalTaggedError("CardDeclined") {}
 *
 * const flaky = Chaos.fault({ rate: 0.1 }) // InjectedFaultError, transient
 * const declines = Chaos.fault({ rate: 0.01, error: () => new CardDeclined() })
 * ```
 *
 * @since 0.1.0
 * @category Strategies
 */
export const fault: {
  <E, I = unknown, R = never>(options: FaultOptions<I, E, R>): Strategy<I, never, E, R>
  <I = unknown, R = never>(options: StrategyOptions<I, R>): Strategy<I, never, InjectedFaultError, R>
} = internal.fault

/**
 * Delays the call with `Effect.sleep` (so `TestClock` controls it): a fixed
 * latency, a `{ min, max }` range, or `Duration.infinity` to hang until the
 * caller's timeout interrupts it.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const slow = Chaos.latency({ rate: 0.2, latency: { min: "200 millis", max: "2 seconds" } })
 * const hangs = Chaos.latency({ rate: 0.01, latency: Duration.infinity })
 * ```
 *
 * @since 0.1.0
 * @category Strategies
 */
export const latency: <I = unknown, R = never>(options: LatencyOptions<I, R>) => Strategy<I, never, never, R> =
  internal.latency

/**
 * Answers the call with an outcome of your choosing instead of running it (or,
 * with `phase: "after"`, in place of its success): a stale value, an empty
 * list, a fake response, or a failure.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const empty = Chaos.outcome({ rate: 0.05, outcome: () => Effect.succeed<ReadonlyArray<string>>([]) })
 * ```
 *
 * @since 0.1.0
 * @category Strategies
 */
export const outcome: <A, E = never, RO = never, I = unknown, R = never>(
  options: OutcomeOptions<I, A, E, RO, R>
) => Strategy<I, A, E, R | RO> = internal.outcome

/**
 * Runs a side effect before the call (or after it, with `phase: "after"`):
 * close a pooled connection, restart a worker, fill a cache with junk. The
 * call itself still runs.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * declare const closeIdleConnections: Effect.Effect<void>
 *
 * const churn = Chaos.behavior({ rate: 0.05, behavior: () => closeIdleConnections })
 * ```
 *
 * @since 0.1.0
 * @category Strategies
 */
export const behavior: <E = never, RB = never, I = unknown, R = never>(
  options: BehaviorOptions<I, E, RB, R>
) => Strategy<I, never, E, R | RB> = internal.behavior

// -----------------------------------------------------------------------------
// Constructors
// -----------------------------------------------------------------------------

/**
 * Validates strategies into a policy. Invalid options fail with
 * `InvalidOptionsError` naming the option (`"strategies[1].rate"`): a rate
 * outside 0–1 or NaN, a negative or NaN latency, a range whose `max` is below
 * its `min`, an unknown phase, a synthetic status outside 200–599, no
 * strategies, a bad name.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const chaos = yield* Chaos.make({
 *     name: "inventory",
 *     strategies: [Chaos.latency({ rate: 0.3, latency: "800 millis" }), Chaos.fault({ rate: 0.1 })]
 *   })
 *   return yield* Effect.succeed(42).pipe(Chaos.inject(chaos))
 *   // Effect<number, Chaos.InjectedFaultError>
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const make: <const S extends ReadonlyArray<Strategy.Any>, RP = never>(
  options: Chaos.Options<S, RP>
) => Effect.Effect<Strategy.PolicyOf<S, RP>, InvalidOptionsError> = internal.make

/**
 * Like {@link make}, for module-level constants: throws the `InvalidOptionsError`.
 *
 * @example
 * ```ts
 * import { Chaos } from "@bulwark/resilience"
 *
 * export const flakyNetwork = Chaos.unsafeMake({ name: "network", strategies: [Chaos.fault({ rate: 0.05 })] })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const unsafeMake: <const S extends ReadonlyArray<Strategy.Any>, RP = never>(
  options: Chaos.Options<S, RP>
) => Strategy.PolicyOf<S, RP> = internal.unsafeMake

/**
 * A {@link Switch} in the given position.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const program = Effect.gen(function*() {
 *   const chaosOn = yield* Chaos.makeSwitch(false)
 *   yield* chaosOn.toggle // true
 * })
 * ```
 *
 * @since 0.1.0
 * @category Constructors
 */
export const makeSwitch: (initial: boolean) => Effect.Effect<Switch> = switches.makeSwitch

// -----------------------------------------------------------------------------
// Combinators
// -----------------------------------------------------------------------------

/**
 * Applies a policy to an effect. Put it innermost, right around the
 * operation, so breakers, retries and timeouts see what it injects.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos, Retry } from "@bulwark/resilience"
 *
 * const chaos = Chaos.unsafeMake({ name: "quotes", strategies: [Chaos.fault({ rate: 0.5 })] })
 * const retry = Retry.unsafeMake({ name: "quotes", maxAttempts: 5 })
 *
 * const quote = Effect.succeed(101.5).pipe(Chaos.inject(chaos), Retry.retry(retry))
 * // Effect<number, RetriesExhausted<Chaos.InjectedFaultError>>
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const inject: {
  <A2, E2, R2>(
    policy: Policy<void, A2, E2, R2>
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A | A2, E | E2, R | R2>
  <A, E, R, A2, E2, R2>(
    self: Effect.Effect<A, E, R>,
    policy: Policy<void, A2, E2, R2>
  ): Effect.Effect<A | A2, E | E2, R | R2>
} = internal.inject

/**
 * Applies a policy whose strategies look at an input (their `when` predicate,
 * their error or outcome builders) to an effect, with that input.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const chaos = Chaos.unsafeMake({
 *   name: "queries",
 *   strategies: [Chaos.latency({ rate: 1, latency: "1 second", when: (query: string) => query.startsWith("report") })]
 * })
 *
 * const run = (query: string) => Effect.succeed(`rows of ${query}`).pipe(Chaos.injectWith(chaos, query))
 * ```
 *
 * @since 0.1.0
 * @category Combinators
 */
export const injectWith: {
  <I, A2, E2, R2>(
    policy: Policy<I, A2, E2, R2>,
    input: I
  ): <A, E, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A | A2, E | E2, R | R2>
  <A, E, R, I, A2, E2, R2>(
    self: Effect.Effect<A, E, R>,
    policy: Policy<I, A2, E2, R2>,
    input: I
  ): Effect.Effect<A | A2, E | E2, R | R2>
} = internal.injectWith

// -----------------------------------------------------------------------------
// HTTP
// -----------------------------------------------------------------------------

/**
 * Options of {@link transportError}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface TransportErrorOptions<R = never> extends StrategyOptions<HttpClientRequest.HttpClientRequest, R> {
  /** The error's description. Default `"connection reset (injected by a chaos policy)"`. */
  readonly description?: string
}

/**
 * Options of {@link httpResponse} and {@link serverResponse}.
 *
 * @since 0.1.0
 * @category Models
 */
export interface HttpResponseOptions<I, R = never> extends StrategyOptions<I, R> {
  /** 200 to 599. Default 503. */
  readonly status?: number
  /** Default: a short text naming the status (client), an RFC 9457 problem+json (server). */
  readonly body?: string
  /** E.g. `{ "retry-after": "2" }`. Default: none. */
  readonly headers?: Readonly<Record<string, string>>
}

/**
 * A fault for {@link httpClient}: the request fails with the platform's
 * `RequestError` of reason `"Transport"`, as a connection reset does, which
 * the `Failure` classifier calls transient. With `phase: "after"` the request
 * reaches the server and the answer is lost.
 *
 * @example
 * ```ts
 * import { Chaos } from "@bulwark/resilience"
 *
 * const resets = Chaos.transportError({ rate: 0.05, when: (request) => request.method === "POST" })
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const transportError: <R = never>(
  options: TransportErrorOptions<R>
) => Strategy<HttpClientRequest.HttpClientRequest, never, HttpClientError.RequestError, R> = http.transportError

/**
 * An outcome for {@link httpClient}: a synthetic response (default 503) in
 * place of the real one, its body readable as usual.
 *
 * @example
 * ```ts
 * import { Chaos } from "@bulwark/resilience"
 *
 * const unavailable = Chaos.httpResponse({ rate: 0.1, status: 503, headers: { "retry-after": "1" } })
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const httpResponse: <R = never>(
  options: HttpResponseOptions<HttpClientRequest.HttpClientRequest, R>
) => Strategy<HttpClientRequest.HttpClientRequest, HttpClientResponse.HttpClientResponse, never, R> = http.httpResponse

/**
 * An outcome for {@link middleware}: the server answers with a status
 * (default 503, as RFC 9457 problem+json) instead of running the handler.
 *
 * @example
 * ```ts
 * import { Chaos } from "@bulwark/resilience"
 *
 * const overloaded = Chaos.serverResponse({ rate: 0.2, status: 503, headers: { "retry-after": "1" } })
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const serverResponse: <R = never>(
  options: HttpResponseOptions<HttpServerRequest.HttpServerRequest, R>
) => Strategy<HttpServerRequest.HttpServerRequest, HttpServerResponse.HttpServerResponse, never, R> =
  http.serverResponse

/**
 * Applies a policy to every request of an `HttpClient`: latency, transport
 * errors ({@link transportError}) and synthetic responses
 * ({@link httpResponse}). Strategies see the request (`when`, builders).
 * Wrap the raw client, then build resilience on top, so the resilient layers
 * see the injected failures.
 *
 * @example
 * ```ts
 * import { HttpClient } from "@effect/platform"
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const chaos = Chaos.unsafeMake({
 *   name: "gateway",
 *   strategies: [
 *     Chaos.latency({ rate: 0.2, latency: "300 millis" }),
 *     Chaos.transportError({ rate: 0.05 }),
 *     Chaos.httpResponse({ rate: 0.1, status: 503 })
 *   ]
 * })
 *
 * const client = Effect.map(HttpClient.HttpClient, Chaos.httpClient(chaos))
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const httpClient: {
  <E2, R2>(
    policy: Policy<HttpClientRequest.HttpClientRequest, HttpClientResponse.HttpClientResponse, E2, R2>
  ): <E, R>(client: HttpClient.HttpClient.With<E, R>) => HttpClient.HttpClient.With<E | E2, R | R2>
  <E, R, E2, R2>(
    client: HttpClient.HttpClient.With<E, R>,
    policy: Policy<HttpClientRequest.HttpClientRequest, HttpClientResponse.HttpClientResponse, E2, R2>
  ): HttpClient.HttpClient.With<E | E2, R | R2>
} = http.httpClient

/**
 * Server-side chaos: a middleware for an `HttpApp` that answers with a status
 * ({@link serverResponse}), delays, or hangs (`latency: Duration.infinity`)
 * instead of, or before, the handler. Strategies see the `HttpServerRequest`.
 *
 * @example
 * ```ts
 * import { HttpServerResponse } from "@effect/platform"
 * import { Duration } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const chaos = Chaos.unsafeMake({
 *   name: "api",
 *   strategies: [
 *     Chaos.latency({ rate: 0.01, latency: Duration.infinity }),
 *     Chaos.serverResponse({ rate: 0.1, status: 503, when: (request) => request.url.startsWith("/v1/charges") })
 *   ]
 * })
 *
 * const app = Chaos.middleware(chaos)(HttpServerResponse.text("ok"))
 * ```
 *
 * @since 0.1.0
 * @category HTTP
 */
export const middleware: <E2, R2>(
  policy: Policy<HttpServerRequest.HttpServerRequest, HttpServerResponse.HttpServerResponse, E2, R2>
) => <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E | E2, R | R2> = http.middleware

// -----------------------------------------------------------------------------
// Guards
// -----------------------------------------------------------------------------

/**
 * @example
 * ```ts
 * import { Chaos } from "@bulwark/resilience"
 *
 * Chaos.isPolicy(Chaos.unsafeMake({ name: "p", strategies: [Chaos.fault({ rate: 0 })] })) // true
 * ```
 *
 * @since 0.1.0
 * @category Guards
 */
export const isPolicy: (u: unknown) => u is Policy<never, unknown, unknown, unknown> = internal.isPolicy

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * const program = Effect.map(Chaos.makeSwitch(false), Chaos.isSwitch) // true
 * ```
 *
 * @since 0.1.0
 * @category Guards
 */
export const isSwitch: (u: unknown) => u is Switch = internal.isSwitch

/**
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Chaos } from "@bulwark/resilience"
 *
 * declare const call: Effect.Effect<string, Error | Chaos.InjectedFaultError>
 *
 * // Tell injected faults apart from real ones, e.g. in a test's assertions or a log filter.
 * const real = call.pipe(Effect.catchIf(Chaos.isInjectedFaultError, () => Effect.succeed("injected")))
 * ```
 *
 * @since 0.1.0
 * @category Guards
 */
export const isInjectedFaultError = (u: unknown): u is InjectedFaultError => u instanceof InjectedFaultError
