/**
 * A circuit breaker shared by a fleet: a local breaker (the shell of
 * `circuitBreaker.ts` over `transition.ts`) that tells a shared store when it
 * opens and how its probes end, and takes the store's word for the rest.
 *
 * - **Closed** costs nothing extra: the shell's quick paths never call the
 *   extension, and nothing here runs per call. Each instance counts its own
 *   failures with its own trip strategies.
 * - **Opening**: a trip (Closed → Open) sends `open(openFor)`; the store opens
 *   the fleet (or answers the opening already there, which the instance
 *   adopts) and announces it. Every instance applies announcements as a
 *   `FleetOpen` signal: Open until the fleet's deadline.
 * - **Half-open**: a call that finds the local breaker half-open (or due to)
 *   asks the store for a probe permit first; the store grants `permits` per
 *   round across the fleet. A denied instance refuses calls locally until the
 *   round can have decided (at most `syncInterval`), without asking again.
 *   Each probe's outcome is reported; the store closes or reopens the fleet
 *   with the local machine's rule over every instance's probes.
 * - **Bounded delay**: announcements are the fast path; a periodic read
 *   (`syncInterval`), a read when the subscription is (re)established and when
 *   the local breaker half-opens bound the delay when one is lost. Replies and
 *   announcements carry a generation; older ones are ignored.
 * - **Store lost**: any failed command marks the store down: the instance
 *   decides with its local breaker alone (full local half-open rules), logs
 *   one warning per outage (at most one per 10 s) and sets
 *   `bulwark_circuit_breaker_shared_store_up` to 0. The periodic read notices
 *   the store's return; an opening made meanwhile is then shared.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as MetricLabel from "effect/MetricLabel"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../Failure.js"
import * as Region from "../../internal/region.js"
import * as Metrics from "../../Metrics.js"
import type { CircuitBreaker as Breaker, Options } from "../CircuitBreaker.js"
import { type Extension, makeExtended, type Shell } from "./circuitBreaker.js"
import type { CircuitOpenError } from "./errors.js"
import type { MachineEvent, MachineState, Signal, Step } from "./transition.js"

/** The store's answers (see `fleetLua.ts`). @internal */
export const CLOSED = 0
/** @internal */
export const OPEN = 1
/** @internal */
export const GRANTED = 2
/** @internal */
export const DENIED = 3
/** @internal */
export const UNDECIDED = 4

/**
 * The fleet's word: `code` is one of the constants above, `gen` the
 * generation, `value` what the code says it is (remaining open time in ms,
 * …).
 *
 * @internal
 */
export interface Status {
  readonly code: number
  readonly gen: number
  readonly value: number
}

/** @internal */
export interface StoreFailure {
  readonly message: string
}

/** The shared store of one breaker. @internal */
export interface Store {
  readonly read: Effect.Effect<Status, StoreFailure>
  readonly open: (openForMillis: number) => Effect.Effect<Status, StoreFailure>
  readonly probe: Effect.Effect<Status, StoreFailure>
  readonly report: (gen: number, failed: boolean, openForMillis: number) => Effect.Effect<Status, StoreFailure>
  readonly release: (gen: number) => Effect.Effect<Status, StoreFailure>
  /**
   * Delivers the store's announcements and a call each time the subscription
   * is (re)established, until the scope closes.
   */
  readonly listen: (
    onStatus: (status: Status) => void,
    onSubscribed: () => void
  ) => Effect.Effect<void, never, Scope.Scope>
}

/** @internal */
export interface Sharing {
  /** How often the fleet's state is read, whatever the announcements say (ms). */
  readonly syncIntervalMillis: number
}

type Command =
  | { readonly _tag: "Open"; readonly openFor: number }
  | { readonly _tag: "Report"; readonly gen: number; readonly failed: boolean; readonly openFor: number }
  | { readonly _tag: "Release"; readonly gen: number }
  | { readonly _tag: "Read" }

const READ: Command = { _tag: "Read" }
const FLEET_CLOSE: Signal = { _tag: "FleetClose" }

/** An outage is logged at most this often (the gauge shows every one). */
const WARN_EVERY_MS = 10_000

const openForOf = (events: ReadonlyArray<MachineEvent>): number | undefined => {
  for (const event of events) {
    if (event._tag !== "Transitioned") continue
    const reason = event.reason
    if (reason._tag === "Tripped" || reason._tag === "ProbesFailed" || reason._tag === "ProbesTimedOut") {
      return Duration.toMillis(reason.openFor)
    }
  }
  return undefined
}

class Fleet<E, A> implements Extension<E, A> {
  /** Whether the last command reached the store. */
  private up = true
  private warned = false
  private lastWarnedAt = -Infinity
  /** The newest generation applied; older statuses are stale. */
  private seenGen = -1
  /** Openings sent and not answered: a `closed` read meanwhile predates them. */
  private openPending = 0
  /** An opening made while the store was down, to share once it answers. */
  private unsyncedOpen = false
  /** Until then the fleet's probe permits are known to be taken: refuse without asking. */
  private deniedUntil = -Infinity
  /** The duration of the latest opening this instance knows, for a reopening its probe decides. */
  private lastOpenFor: number
  /** Probe permits granted by the fleet for the local half-open epoch `grantEpoch`, in generation `grantGen`. */
  private grantEpoch = -1
  private grantGen = -1
  private held = 0
  private readonly labels: ReadonlyArray<MetricLabel.MetricLabel>

  constructor(
    private readonly shell: Shell<E, A>,
    private readonly store: Store,
    private readonly sharing: Sharing,
    private readonly outbox: Queue.Queue<Command>
  ) {
    this.lastOpenFor = shell.settings.forcedOpenRetryAfterMillis
    this.labels = [MetricLabel.make("breaker", shell.name)]
    Metrics.circuitBreakerSharedStoreUp.unsafeUpdate(1, this.labels)
  }

  // --- the extension: called by the shell, synchronously -------------------

  readonly stepped = (signal: Signal, [, events]: Step, _now: number): void => {
    if ((signal._tag === "Record" || signal._tag === "Release") && signal.epoch === this.grantEpoch && this.held > 0) {
      this.held--
      if (signal._tag === "Release") this.send({ _tag: "Release", gen: this.grantGen })
      else {
        const call = signal.call
        this.send({
          _tag: "Report",
          gen: this.grantGen,
          failed: call.failure || (call.slow && this.shell.settings.slowProbeFails),
          openFor: openForOf(events) ?? this.lastOpenFor
        })
      }
    }
    for (const event of events) {
      if (event._tag !== "Transitioned") continue
      switch (event.reason._tag) {
        case "Tripped":
          this.lastOpenFor = Duration.toMillis(event.reason.openFor)
          this.openPending++
          this.send({ _tag: "Open", openFor: this.lastOpenFor })
          break
        case "ProbesFailed":
        case "ProbesTimedOut":
          this.lastOpenFor = Duration.toMillis(event.reason.openFor)
          if (!this.up) this.unsyncedOpen = true
          break
        case "OpenElapsed":
          // The fleet may have moved on while this instance waited (a lost announcement).
          this.send(READ)
          break
        default:
          break
      }
    }
  }

  readonly admit = (
    state: MachineState,
    now: number
  ): Region.Refused<CircuitOpenError> | Region.Wait<A, E, CircuitOpenError> | undefined => {
    if (!this.up) return undefined
    const probing = state._tag === "HalfOpen" || (state._tag === "Open" && now >= state.halfOpenAt)
    if (!probing) return undefined
    if (now < this.deniedUntil) return new Region.Refused(this.shell.refuse("HalfOpen", this.deniedUntil - now, now))
    const wait: Region.Wait<A, E, CircuitOpenError> = {
      _tag: "Wait",
      run: (restore, self) =>
        Effect.flatMap(
          Effect.either(restore(this.store.probe)),
          (answer) =>
            Effect.clockWith((clock) => {
              const at = clock.unsafeCurrentTimeMillis()
              if (Either.isLeft(answer)) {
                const alone = this.shell.admitLocally(restore, self, now)
                const warning = this.down(answer.left, at)
                return warning === undefined ? alone : Effect.zipRight(warning, alone)
              }
              const status = answer.right
              const back = this.markUp(at)
              const decided = this.afterProbe(status, at, restore, self, now)
              return back === undefined ? decided : Effect.zipRight(back, decided)
            })
        )
    }
    return wait
  }

  private afterProbe<A2 extends A, E2 extends E, R>(
    status: Status,
    now: number,
    restore: Region.Restore,
    self: Effect.Effect<A2, E2, R>,
    startedAt: number
  ): Effect.Effect<A2, E2 | CircuitOpenError, R> {
    switch (status.code) {
      case GRANTED:
        this.seen(status.gen)
        return this.shell.admitLocally(restore, self, startedAt, (epoch) => {
          if (epoch === undefined) this.send({ _tag: "Release", gen: status.gen })
          else if (epoch === this.grantEpoch && status.gen === this.grantGen) this.held++
          else {
            this.grantEpoch = epoch
            this.grantGen = status.gen
            this.held = 1
          }
        })
      case DENIED: {
        this.seen(status.gen)
        const wait = Math.max(1, Math.min(status.value, this.sharing.syncIntervalMillis))
        this.deniedUntil = now + wait
        return this.shell.refuse("HalfOpen", wait, now)
      }
      default: {
        const applied = this.apply(status, now)
        const admitted = this.shell.admitLocally(restore, self, startedAt)
        return applied === undefined ? admitted : Effect.zipRight(applied, admitted)
      }
    }
  }

  // --- the fleet's word -----------------------------------------------------

  private seen(gen: number): void {
    if (gen > this.seenGen) {
      this.seenGen = gen
      this.deniedUntil = -Infinity
    }
  }

  /** Applies a status read or announced at `now`: what must still run (logs, events), if anything. */
  apply(status: Status, now: number): Effect.Effect<void> | undefined {
    if (status.gen < this.seenGen) return undefined
    this.seen(status.gen)
    switch (status.code) {
      case CLOSED:
        return this.openPending > 0 ? undefined : this.shell.send(FLEET_CLOSE, now)
      case OPEN:
        return this.shell.send({ _tag: "FleetOpen", until: now + status.value }, now)
      default:
        return undefined
    }
  }

  /** Reads the fleet's state soon (after the commands already sent). */
  readonly sync = (): void => this.send(READ)

  /** Whether a read waits in the outbox already: one is enough. */
  private readQueued = false

  private send(command: Command): void {
    if (command._tag === "Read") {
      if (this.readQueued) return
      this.readQueued = true
    }
    Queue.unsafeOffer(this.outbox, command)
  }

  /** Runs one command against the store and applies its answer. */
  readonly run = (command: Command): Effect.Effect<void> =>
    Effect.flatMap(Effect.either(this.request(command)), (answer) =>
      Effect.clockWith((clock) => {
        const now = clock.unsafeCurrentTimeMillis()
        if (command._tag === "Open") this.openPending--
        if (Either.isLeft(answer)) {
          if (command._tag === "Open" || command._tag === "Report") this.unsyncedOpen = true
          return this.down(answer.left, now) ?? Effect.void
        }
        const back = this.markUp(now)
        const applied = this.apply(answer.right, now)
        if (back === undefined) return applied ?? Effect.void
        return applied === undefined ? back : Effect.zipRight(back, applied)
      }))

  private request(command: Command): Effect.Effect<Status, StoreFailure> {
    if (command._tag === "Read") this.readQueued = false
    switch (command._tag) {
      case "Open":
        return this.store.open(command.openFor)
      case "Report":
        return this.store.report(command.gen, command.failed, command.openFor)
      case "Release":
        return this.store.release(command.gen)
      case "Read":
        return this.store.read
    }
  }

  // --- the store's health -----------------------------------------------------

  private down(failure: StoreFailure, now: number): Effect.Effect<void> | undefined {
    if (!this.up) return undefined
    this.up = false
    Metrics.circuitBreakerSharedStoreUp.unsafeUpdate(0, this.labels)
    this.warned = now - this.lastWarnedAt >= WARN_EVERY_MS
    if (!this.warned) return undefined
    this.lastWarnedAt = now
    return Effect.annotateLogs(
      Effect.logWarning(
        `Circuit breaker "${this.shell.name}": its shared store is unreachable (${failure.message}); ` +
          "this instance decides alone with its local breaker until the store answers"
      ),
      { breaker: this.shell.name, "circuit_breaker.shared_store": "redis" }
    )
  }

  private markUp(now: number): Effect.Effect<void> | undefined {
    if (this.up) return undefined
    this.up = true
    Metrics.circuitBreakerSharedStoreUp.unsafeUpdate(1, this.labels)
    const state = this.shell.current()
    // An opening made alone is shared, so a stale `closed` in the store does not close this breaker.
    if (this.unsyncedOpen && state._tag === "Open" && state.halfOpenAt > now) {
      this.openPending++
      this.send({ _tag: "Open", openFor: state.halfOpenAt - now })
    }
    this.unsyncedOpen = false
    this.send(READ)
    if (!this.warned) return undefined
    return Effect.annotateLogs(
      Effect.logInfo(`Circuit breaker "${this.shell.name}": its shared store answers again; sharing its state`),
      { breaker: this.shell.name, "circuit_breaker.shared_store": "redis" }
    )
  }
}

/**
 * A shared breaker over `store`: the local breaker with its timer, a fiber
 * sending commands in order, one applying announcements, one reading the
 * fleet's state every `syncInterval`; all in the current scope. It starts in
 * the fleet's state when the store answers.
 *
 * @internal
 */
export const make = <E, A>(
  options: Options<E, A>,
  store: Store,
  sharing: Sharing
): Effect.Effect<Breaker<E, A>, InvalidOptionsError, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const outbox = yield* Queue.unbounded<Command>()
    const inbox = yield* Queue.unbounded<Status>()
    const built: { fleet?: Fleet<E, A> } = {}
    const breaker = yield* makeExtended(options, scope, (shell) => {
      const fleet = new Fleet(shell, store, sharing, outbox)
      built.fleet = fleet
      return fleet
    })
    const fleet = built.fleet
    if (fleet === undefined) return yield* Effect.dieMessage("the shared breaker's extension was not built")
    yield* Effect.forkIn(Effect.forever(Effect.flatMap(Queue.take(outbox), fleet.run)), scope)
    yield* Effect.forkIn(
      Effect.forever(Effect.flatMap(Queue.take(inbox), (status) =>
        Effect.clockWith((clock) =>
          fleet.apply(status, clock.unsafeCurrentTimeMillis()) ?? Effect.void
        ))),
      scope
    )
    yield* store.listen(
      (status) =>
        Queue.unsafeOffer(inbox, status),
      () => fleet.sync()
    )
    yield* fleet.run(READ)
    yield* Effect.forkIn(
      Effect.forever(
        Effect.zipRight(Effect.sleep(Duration.millis(sharing.syncIntervalMillis)), Effect.sync(fleet.sync))
      ),
      scope
    )
    return breaker
  })
