/**
 * Model-based test: random sequences of calls (started, then finished in any
 * order with any outcome), clock moves, state reads and operator actions are
 * run against a real breaker under TestClock and against the small reference
 * model below. Every permit decision, every `retryAfter`, the state after
 * every step and every metrics-only "would have opened" report must agree.
 *
 * The model is written for clarity, not speed: it keeps a plain log of the
 * counted calls since the breaker last closed and recomputes each trip rule
 * from it, instead of the ring buffers and buckets of the real windows.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Logger from "effect/Logger"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as TestContext from "effect/TestContext"
import * as fc from "fast-check"
import * as Failure from "../Failure.js"
import * as Metrics from "../Metrics.js"
import * as CircuitBreaker from "./CircuitBreaker.js"
import * as TCircuitBreaker from "./TCircuitBreaker.js"

// -----------------------------------------------------------------------------
// Configuration and commands
// -----------------------------------------------------------------------------

type Kind = "consecutive" | "count" | "time" | "slow"

interface Config {
  readonly kind: Kind
  readonly consecutive: number
  readonly percent: number
  readonly windowCalls: number
  readonly windowMillis: number
  readonly buckets: number
  readonly minimumCalls: number
  readonly openMillis: number
  readonly backoff: boolean
  readonly permits: number
  readonly closeAfter: number
  readonly probeFailureRate: number | undefined
  readonly slowMillis: number | undefined
  /**
   * Whether the test listens to the breaker's events. A breaker with a
   * listener measures every call; without one, and with count-based
   * strategies only, it reads the clock only when a call changes more than
   * its windows: both ways must agree with the model.
   */
  readonly subscribed: boolean
  /** `halfOpen.maxDuration`, when set. */
  readonly halfOpenLimit: number | undefined
}

type CallOutcome = "success" | "failure" | "terminal" | "defect" | "interrupt"
type Action = "isolate" | "close" | "disable" | "metricsOnly" | "reset"

type Command =
  | { readonly _tag: "Start" }
  | { readonly _tag: "Finish"; readonly pick: number; readonly outcome: CallOutcome }
  | { readonly _tag: "Advance"; readonly millis: number }
  | { readonly _tag: "Read" }
  | { readonly _tag: "Manual"; readonly action: Action }

/** Times are multiples of one tick so that clock moves land exactly on deadlines and thresholds. */
const TICK = 100

const configArbitrary: fc.Arbitrary<Config> = fc
  .record({
    kind: fc.constantFrom<Kind>("consecutive", "count", "time", "slow"),
    consecutive: fc.integer({ min: 1, max: 4 }),
    percent: fc.integer({ min: 1, max: 100 }),
    windowCalls: fc.integer({ min: 1, max: 6 }),
    windowMillis: fc.integer({ min: 10, max: 60 }).map((tenths) => tenths * TICK),
    buckets: fc.integer({ min: 1, max: 6 }),
    minimumRaw: fc.integer({ min: 0, max: 5 }),
    openMillis: fc.integer({ min: 1, max: 30 }).map((ticks) => ticks * TICK),
    backoff: fc.boolean(),
    permits: fc.integer({ min: 1, max: 4 }),
    closeAfterRaw: fc.integer({ min: 0, max: 3 }),
    probeFailureRate: fc.option(fc.integer({ min: 1, max: 100 }), { nil: undefined }),
    slowMillis: fc.option(fc.integer({ min: 1, max: 15 }).map((ticks) => ticks * TICK), { nil: undefined }),
    subscribed: fc.boolean(),
    halfOpenLimit: fc.option(fc.integer({ min: 1, max: 30 }).map((ticks) => ticks * TICK), { nil: undefined })
  })
  .map(({ closeAfterRaw, minimumRaw, ...rest }): Config => ({
    ...rest,
    minimumCalls: rest.kind === "time" ? minimumRaw + 1 : (minimumRaw % rest.windowCalls) + 1,
    closeAfter: (closeAfterRaw % rest.permits) + 1,
    slowMillis: rest.kind === "slow" ? rest.slowMillis ?? 5 * TICK : rest.slowMillis
  }))

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 12, arbitrary: fc.constant<Command>({ _tag: "Start" }) },
  {
    weight: 12,
    arbitrary: fc.record({
      _tag: fc.constant("Finish" as const),
      pick: fc.nat({ max: 10 }),
      outcome: fc.constantFrom<CallOutcome>(
        "success",
        "success",
        "failure",
        "failure",
        "terminal",
        "defect",
        "interrupt"
      )
    })
  },
  {
    weight: 6,
    arbitrary: fc.record({
      _tag: fc.constant("Advance" as const),
      millis: fc.integer({ min: 1, max: 40 }).map((ticks) => ticks * TICK)
    })
  },
  { weight: 2, arbitrary: fc.constant<Command>({ _tag: "Read" }) },
  {
    weight: 1,
    arbitrary: fc.record({
      _tag: fc.constant("Manual" as const),
      action: fc.constantFrom<Action>("isolate", "close", "disable", "metricsOnly", "reset")
    })
  }
)

// -----------------------------------------------------------------------------
// Reference model
// -----------------------------------------------------------------------------

type Decision =
  | { readonly permitted: true; readonly epoch: number }
  | { readonly permitted: false; readonly state: CircuitBreaker.State; readonly retryAfter: number }

interface Counted {
  readonly at: number
  readonly failure: boolean
  readonly slow: boolean
}

class Reference {
  state: CircuitBreaker.State = "Closed"
  epoch = 0
  openings = 0
  halfOpenAt = 0
  halfOpenUntil = Infinity
  issued = 0
  successes = 0
  failures = 0
  log: Array<Counted> = []
  thresholdsExceeded = 0

  constructor(readonly config: Config) {}

  openDuration(opening: number): number {
    return this.config.backoff ? this.config.openMillis * 2 ** (opening - 1) : this.config.openMillis
  }

  get failureLimit(): number {
    const rate = this.config.probeFailureRate
    return rate === undefined ? 1 : Math.max(1, Math.ceil((rate * this.config.permits) / 100))
  }

  enter(state: CircuitBreaker.State): void {
    this.state = state
    this.epoch++
  }

  open(now: number): void {
    this.openings++
    this.halfOpenAt = now + this.openDuration(this.openings)
    this.enter("Open")
  }

  close(): void {
    this.openings = 0
    this.log = []
    this.enter("Closed")
  }

  halfOpen(issued: number, now: number): void {
    this.issued = issued
    this.successes = 0
    this.failures = 0
    this.halfOpenUntil = now + (this.config.halfOpenLimit ?? Infinity)
    this.enter("HalfOpen")
  }

  /** A half-open period past its limit opens again before anything else happens. */
  expire(now: number): void {
    if (this.state === "HalfOpen" && now >= this.halfOpenUntil) this.open(now)
  }

  rateTrips(calls: ReadonlyArray<Counted>, hit: (call: Counted) => boolean): boolean {
    if (calls.length < this.config.minimumCalls) return false
    return calls.filter(hit).length * 100 >= this.config.percent * calls.length
  }

  trips(now: number): boolean {
    const { config } = this
    switch (config.kind) {
      case "consecutive": {
        let run = 0
        for (let i = this.log.length - 1; i >= 0 && this.log[i]?.failure === true; i--) run++
        return run >= config.consecutive
      }
      case "count":
        return this.rateTrips(this.log.slice(-config.windowCalls), (call) => call.failure)
      case "slow":
        return this.rateTrips(this.log.slice(-config.windowCalls), (call) => call.slow)
      case "time": {
        const width = config.windowMillis / config.buckets
        const oldest = Math.floor(now / width) - config.buckets + 1
        return this.rateTrips(this.log.filter((call) => Math.floor(call.at / width) >= oldest), (call) => call.failure)
      }
    }
  }

  acquire(now: number): Decision {
    this.expire(now)
    switch (this.state) {
      case "Closed":
      case "Disabled":
      case "MetricsOnly":
        return { permitted: true, epoch: this.epoch }
      case "Open":
        if (now < this.halfOpenAt) return { permitted: false, state: "Open", retryAfter: this.halfOpenAt - now }
        this.halfOpen(1, now)
        return { permitted: true, epoch: this.epoch }
      case "HalfOpen":
        if (this.issued >= this.config.permits) return { permitted: false, state: "HalfOpen", retryAfter: 0 }
        this.issued++
        return { permitted: true, epoch: this.epoch }
      case "ForcedOpen":
        return { permitted: false, state: "ForcedOpen", retryAfter: this.openDuration(1) }
    }
  }

  /** When the state moves with no call (a breaker with a timer moves then). */
  deadline(): number {
    return this.state === "Open" ? this.halfOpenAt : this.state === "HalfOpen" ? this.halfOpenUntil : Infinity
  }

  observe(now: number): void {
    this.expire(now)
    if (this.state === "Open" && now >= this.halfOpenAt) this.halfOpen(0, now)
  }

  finish(epoch: number, outcome: CallOutcome, duration: number, now: number): void {
    this.expire(now)
    if (epoch !== this.epoch) return
    const counted = outcome === "success" || outcome === "failure" || outcome === "defect"
    if (!counted) {
      if (this.state === "HalfOpen") this.issued--
      return
    }
    const failure = outcome !== "success"
    const slow = this.config.slowMillis !== undefined && duration > this.config.slowMillis
    switch (this.state) {
      case "Closed":
        this.log.push({ at: now, failure, slow })
        if (this.trips(now)) this.open(now)
        return
      case "MetricsOnly":
        this.log.push({ at: now, failure, slow })
        if (this.trips(now)) {
          this.thresholdsExceeded++
          this.log = []
        }
        return
      case "HalfOpen": {
        const probeFailed = failure || (slow && this.config.kind === "slow")
        if (probeFailed) this.failures++
        else this.successes++
        if (this.successes >= this.config.closeAfter) this.close()
        else if (this.failures >= this.failureLimit || this.successes + this.failures >= this.config.permits) {
          this.open(now)
        }
        return
      }
      case "Open":
      case "ForcedOpen":
      case "Disabled":
        return
    }
  }

  manual(action: Action): void {
    switch (action) {
      case "isolate":
        if (this.state !== "ForcedOpen") this.enter("ForcedOpen")
        return
      case "close":
        if (this.state !== "Closed") this.close()
        return
      case "disable":
        if (this.state !== "Disabled") this.enter("Disabled")
        return
      case "metricsOnly":
        if (this.state !== "MetricsOnly") {
          this.log = []
          this.enter("MetricsOnly")
        }
        return
      case "reset":
        this.close()
        return
    }
  }
}

// -----------------------------------------------------------------------------
// Running a sequence against the real breaker
// -----------------------------------------------------------------------------

const transient = new Failure.TransientError({ reason: "Transport", message: "connection reset" })
const terminal = new Failure.TerminalError({ reason: "HttpStatus", message: "404", status: 404 })

const strategyOf = (config: Config): CircuitBreaker.TripStrategy => {
  switch (config.kind) {
    case "consecutive":
      return CircuitBreaker.consecutiveFailures(config.consecutive)
    case "count":
      return CircuitBreaker.failureRate({
        threshold: config.percent,
        window: { calls: config.windowCalls },
        minimumCalls: config.minimumCalls
      })
    case "time":
      return CircuitBreaker.failureRate({
        threshold: config.percent,
        window: { duration: Duration.millis(config.windowMillis), buckets: config.buckets },
        minimumCalls: config.minimumCalls
      })
    case "slow":
      return CircuitBreaker.slowCallRate({
        threshold: config.percent,
        window: { calls: config.windowCalls },
        minimumCalls: config.minimumCalls
      })
  }
}

const STATE_LABELS: ReadonlyArray<readonly [CircuitBreaker.State, string]> = [
  ["Closed", "closed"],
  ["Open", "open"],
  ["HalfOpen", "half_open"],
  ["ForcedOpen", "forced_open"],
  ["Disabled", "disabled"],
  ["MetricsOnly", "metrics_only"]
]

/** The committed state as the gauge shows it: reading it does not move the breaker. */
const gaugeState = (name: string) =>
  Effect.map(
    Effect.forEach(STATE_LABELS, ([state, label]) =>
      Effect.map(
        Metric.value(Metric.tagged(Metric.tagged(Metrics.circuitBreakerState, "breaker", name), "state", label)),
        (gauge) => gauge.value === 1 ? [state] : []
      )),
    (states) => states.flat()
  )

interface InFlight {
  readonly fiber: Fiber.RuntimeFiber<
    string,
    Failure.TransientError | Failure.TerminalError | CircuitBreaker.CircuitOpenError
  >
  readonly finish: Deferred.Deferred<string, Failure.TransientError | Failure.TerminalError>
  readonly epoch: number
  readonly startedAt: number
}

let runs = 0

/**
 * The breakers under test: the synchronous one, lazy (`make`: it moves on
 * the next call or read) and with a timer (`makeScoped`: it moves at the
 * deadline), and the STM one (with a timer).
 */
interface Variant {
  readonly name: string
  readonly timer: boolean
  readonly make: (
    options: CircuitBreaker.Options
  ) => Effect.Effect<CircuitBreaker.CircuitBreaker, Failure.InvalidOptionsError, Scope.Scope>
}

const VARIANTS: ReadonlyArray<Variant> = [
  { name: "CircuitBreaker.make", timer: false, make: CircuitBreaker.make },
  { name: "CircuitBreaker.makeScoped", timer: true, make: CircuitBreaker.makeScoped },
  { name: "TCircuitBreaker.make", timer: true, make: TCircuitBreaker.make }
]

const check = (variant: Variant, config: Config, commands: ReadonlyArray<Command>) =>
  Effect.gen(function*() {
    const name = `cb-model.${++runs}`
    const model = new Reference(config)
    const breaker = yield* variant.make({
      name,
      trip: strategyOf(config),
      openDuration: config.backoff
        ? Schedule.exponential(Duration.millis(config.openMillis))
        : Duration.millis(config.openMillis),
      halfOpen: {
        permits: config.permits,
        closeAfter: config.closeAfter,
        ...(config.probeFailureRate === undefined ? {} : { failureRateThreshold: config.probeFailureRate }),
        ...(config.halfOpenLimit === undefined ? {} : { maxDuration: Duration.millis(config.halfOpenLimit) })
      },
      ...(config.slowMillis === undefined ? {} : { slowCallDuration: Duration.millis(config.slowMillis) })
    })
    const events = config.subscribed ? yield* breaker.subscribe : undefined
    let thresholdsExceeded = 0
    const inFlight: Array<InFlight> = []
    let now = 0

    for (const [step, command] of commands.entries()) {
      const where = `step ${step} (${JSON.stringify(command)})`
      switch (command._tag) {
        case "Start": {
          const started = yield* Deferred.make<void>()
          const finish = yield* Deferred.make<string, Failure.TransientError | Failure.TerminalError>()
          const fiber = yield* Effect.fork(
            CircuitBreaker.protect(
              Effect.zipRight(Deferred.succeed(started, undefined), Deferred.await(finish)),
              breaker
            )
          )
          const permitted = yield* Effect.raceFirst(
            Effect.as(Deferred.await(started), true),
            Effect.as(Fiber.await(fiber), false)
          )
          const expected = model.acquire(now)
          assert.strictEqual(permitted, expected.permitted, `permit decision at ${where}`)
          if (expected.permitted) {
            inFlight.push({ fiber, finish, epoch: expected.epoch, startedAt: now })
          } else {
            const exit = yield* Fiber.await(fiber)
            assert(Exit.isFailure(exit), `rejected call must fail at ${where}`)
            const open = Option.getOrUndefined(Cause.failureOption(exit.cause))
            assert(CircuitBreaker.isCircuitOpenError(open), `rejection is a CircuitOpenError at ${where}`)
            assert.strictEqual(open.state, expected.state, `rejecting state at ${where}`)
            assert.strictEqual(Duration.toMillis(open.retryAfter), expected.retryAfter, `retryAfter at ${where}`)
          }
          break
        }
        case "Finish": {
          if (inFlight.length === 0) break
          const [call] = inFlight.splice(command.pick % inFlight.length, 1)
          if (call === undefined) break
          switch (command.outcome) {
            case "success":
              yield* Deferred.succeed(call.finish, "ok")
              break
            case "failure":
              yield* Deferred.fail(call.finish, transient)
              break
            case "terminal":
              yield* Deferred.fail(call.finish, terminal)
              break
            case "defect":
              yield* Deferred.die(call.finish, new Error("defect"))
              break
            case "interrupt":
              yield* Fiber.interrupt(call.fiber)
              break
          }
          yield* Fiber.await(call.fiber)
          model.finish(call.epoch, command.outcome, now - call.startedAt, now)
          break
        }
        case "Advance": {
          yield* TestClock.adjust(command.millis)
          const target = now + command.millis
          // A breaker with a timer makes each move at its deadline, one after the other.
          for (let due = model.deadline(); variant.timer && due <= target; due = model.deadline()) model.observe(due)
          now = target
          break
        }
        case "Read": {
          const state = yield* breaker.state
          model.observe(now)
          assert.strictEqual(state, model.state, `state read at ${where}`)
          break
        }
        case "Manual":
          yield* breaker[command.action]
          model.manual(command.action)
          break
      }
      assert.deepStrictEqual(yield* gaugeState(name), [model.state], `state after ${where}`)
      if (events !== undefined) {
        thresholdsExceeded += Chunk.size(
          Chunk.filter(yield* Queue.takeAll(events), (event) => event._tag === "ThresholdExceeded")
        )
        assert.strictEqual(thresholdsExceeded, model.thresholdsExceeded, `metrics-only reports after ${where}`)
      }
    }
    yield* Effect.forEach(inFlight, (call) => Fiber.interrupt(call.fiber), { discard: true })
  })

describe.each(VARIANTS)("CircuitBreaker model: $name", (variant) => {
  it("agrees with the reference model on every decision and state, for random calls, outcomes and clock moves", async () => {
    await fc.assert(
      fc.asyncProperty(
        configArbitrary,
        fc.array(commandArbitrary, { minLength: 20, maxLength: 120, size: "max" }),
        (config, commands) =>
          Effect.runPromise(
            check(variant, config, commands).pipe(
              Effect.scoped,
              Effect.provide(TestContext.TestContext),
              Effect.provide(Logger.remove(Logger.defaultLogger))
            )
          )
      ),
      { numRuns: 100 }
    )
  })
})
