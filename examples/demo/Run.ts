/**
 * One run of the demo: start the gateway and the payments service, drive
 * traffic through the timeline (warm-up, outage, recovery), drain, gather the
 * evidence from the service and the gateway, check the invariants, print the
 * report. With `--serve`, keep going afterwards for Prometheus and Grafana.
 */
import { Metrics } from "@bulwark/resilience"
import type * as HttpClient from "@effect/platform/HttpClient"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Option from "effect/Option"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import { type PaymentsOptions, startPayments } from "../payments/App.js"
import { startGateway } from "../payments/Gateway.js"
import * as Api from "./Api.js"
import { type DemoConfig, SERVE_PORT } from "./Flags.js"
import * as Invariants from "./Invariants.js"
import * as Ledger from "./Ledger.js"
import * as PromText from "./PromText.js"
import * as Report from "./Report.js"
import * as Scenario from "./Scenario.js"
import * as StatusLine from "./StatusLine.js"
import * as Traffic from "./Traffic.js"

// -----------------------------------------------------------------------------
// Output: a status line that other lines can interrupt
// -----------------------------------------------------------------------------

interface Output {
  readonly tty: boolean
  /** A line of its own (the status line is cleared first and redrawn on the next update). */
  readonly line: (text: string) => Effect.Effect<void>
  readonly status: (snapshot: StatusLine.StatusSnapshot) => Effect.Effect<void>
  /** Ends the live line so that the report starts on a fresh one. */
  readonly endStatus: Effect.Effect<void>
}

const makeOutput = (): Output => {
  const tty = process.stdout.isTTY === true
  let live = false
  const write = (text: string) => {
    process.stdout.write(text)
  }
  return {
    tty,
    line: (text) =>
      Effect.sync(() => {
        if (live) write("\r\x1b[2K")
        live = false
        write(`${text}\n`)
      }),
    status: (snapshot) =>
      Effect.sync(() => {
        write(StatusLine.render(StatusLine.format(snapshot, tty ? process.stdout.columns : undefined), tty))
        live = tty
      }),
    endStatus: Effect.sync(() => {
      if (live) write(StatusLine.finish(tty))
      live = false
    })
  }
}

// -----------------------------------------------------------------------------
// Watching the service
// -----------------------------------------------------------------------------

interface Watch {
  readonly summary: Ref.Ref<Option.Option<Api.Summary>>
  readonly transitions: Ref.Ref<ReadonlyArray<Report.Transition>>
}

/** Polls `/admin/summary` and records every breaker state change it sees (announcing it on its own line). */
const watch = (api: Api.Api, elapsed: Effect.Effect<number>, output: Output) =>
  Effect.gen(function*() {
    const summary = yield* Ref.make(Option.none<Api.Summary>())
    const transitions = yield* Ref.make<ReadonlyArray<Report.Transition>>([])
    const last = new Map<string, string>()
    const poll = Effect.gen(function*() {
      const current = yield* api.summary
      const atMs = yield* elapsed
      yield* Ref.set(summary, Option.some(current))
      for (const breaker of current.breakers) {
        const from = last.get(breaker.name)
        last.set(breaker.name, breaker.state)
        if (from !== undefined && from !== breaker.state) {
          yield* Ref.update(transitions, (all) => [...all, { atMs, breaker: breaker.name, from, to: breaker.state }])
          yield* output.line(
            `◆ ${StatusLine.seconds(atMs).padStart(6)}  breaker ${breaker.name}: ${from} → ${breaker.state}`
          )
        }
      }
    }).pipe(Effect.ignore)
    yield* Effect.forkScoped(Effect.repeat(poll, Schedule.spaced("250 millis")))
    return { summary, transitions } satisfies Watch
  })

const clientRetries = Metric.value(Metric.tagged(Metrics.retryAttempts, "policy", Traffic.CLIENT_POLICY)).pipe(
  Effect.map((state) => state.count)
)

const queueTotals = (summary: Api.Summary) =>
  summary.queues.reduce(
    (total, queue) => ({
      ready: total.ready + queue.ready,
      scheduled: total.scheduled + queue.scheduled + (queue.retrying ?? 0),
      running: total.running + queue.running,
      dead: total.dead + queue.dead
    }),
    { ready: 0, scheduled: 0, running: 0, dead: 0 }
  )

/** Redraws the status line (4× a second on a terminal, every 3 s in a log). */
const showStatus = (
  output: Output,
  recorder: Traffic.Recorder,
  state: Watch,
  elapsed: Effect.Effect<number>,
  phase: Effect.Effect<string>
) =>
  Effect.gen(function*() {
    const atMs = yield* elapsed
    const summary = yield* Ref.get(state.summary)
    const totals = Option.map(summary, queueTotals)
    yield* output.status({
      elapsedMs: atMs,
      phase: yield* phase,
      requestsPerSecond: recorder.rate(atMs),
      statusCounts: recorder.statusCounts(),
      breakers: Option.match(summary, { onNone: () => [], onSome: (s) => s.breakers }),
      retries: yield* clientRetries,
      pending: Option.match(summary, { onNone: () => 0, onSome: (s) => s.payments.pending }),
      queue: Option.getOrElse(totals, () => ({ ready: 0, scheduled: 0, running: 0 })),
      deadLetters: Option.match(totals, { onNone: () => 0, onSome: (t) => t.dead })
    })
  }).pipe(Effect.repeat(Schedule.spaced(output.tty ? "250 millis" : "3 seconds")), Effect.forkScoped)

// -----------------------------------------------------------------------------
// The breaker's transitions from /metrics
// -----------------------------------------------------------------------------

const TRANSITIONS = "bulwark_circuit_breaker_transitions_total"

interface TransitionCounts {
  readonly opens: number
  readonly closes: number
}

/** Transitions into `open` and into `closed` so far, per `bulwark_circuit_breaker_transitions_total` (none: 0). */
const transitionCounts = (api: Api.Api, breaker: string | undefined): Effect.Effect<TransitionCounts> =>
  breaker === undefined ? Effect.succeed({ opens: 0, closes: 0 }) : api.metrics.pipe(
    Effect.map((text) => {
      const samples = PromText.parse(text)
      return {
        opens: PromText.sum(samples, TRANSITIONS, { breaker, to: "open" }),
        closes: PromText.sum(samples, TRANSITIONS, { breaker, to: "closed" })
      }
    }),
    Effect.orElseSucceed(() => ({ opens: 0, closes: 0 }))
  )

const pickBreaker = (breakers: ReadonlyArray<Api.Breaker>): Api.Breaker | undefined =>
  breakers.find((breaker) => breaker.name.toLowerCase().includes("gateway")) ?? breakers[0]

// -----------------------------------------------------------------------------
// The run
// -----------------------------------------------------------------------------

/** What the entry point needs to know at the end. */
export interface Outcome {
  readonly held: boolean
}

/**
 * The service tuned for a story told in seconds rather than hours: the breaker opens after 5 consecutive failures and
 * probes again after ~5 % of the run (1–3 s, not 10 s); `charge-payment` retries from 200 ms up to 2 s and keeps
 * trying long enough to outlive the outage; an unknown outcome is reconciled after 500 ms; idle workers poll every
 * 100 ms; queue depths reach the metrics every second. The gateway timeout (2 s) stays far above the latency faults the demo injects (15 ms).
 */
const tuning = (config: DemoConfig): Omit<PaymentsOptions, "gatewayUrl" | "port"> => ({
  gateway: {
    breakerFailures: 5,
    breakerOpenDuration: Duration.clamp(Duration.times(config.duration, 0.05), {
      minimum: "1 second",
      maximum: "3 seconds"
    }),
    attemptTimeout: "2 seconds"
  },
  queues: {
    pollInterval: "100 millis",
    chargeRetryBase: "200 millis",
    chargeRetryCap: "2 seconds",
    // 40 attempts last over a minute; one more per 2 s of outage, so that no charge is dead-lettered by the outage.
    chargeMaxAttempts: 40 +
      Math.ceil(Duration.toSeconds(config.duration) * (Scenario.OUTAGE_END - Scenario.OUTAGE_START) / 2)
  },
  charge: { reconcileDelay: "500 millis" },
  metricsInterval: "1 second"
})

export interface Hooks {
  /** Called once the report is printed (before `--serve` goes on). */
  readonly onReport: (held: boolean) => Effect.Effect<void>
}

const secondsText = (ms: number) => `${Math.round(ms / 100) / 10}s`

/** Starts the gateway and the payments service (embedded PGlite unless DATABASE_URL is set) and says where they are. */
const start = (config: DemoConfig, line: Scenario.Timeline, output: Output) =>
  Effect.gen(function*() {
    const [warmUp, outage, recovery, drain] = line.phases
    yield* output.line(
      `Bulwark demo: a payments service, its flaky gateway, ${secondsText(line.trafficEndMs)} of traffic at ` +
        `${config.rate} payments/s`
    )
    yield* output.line("  starting the gateway and the payments service…")
    const gateway = yield* startGateway({})
    // DATABASE_URL switches from the embedded PGlite to a real server (use a scratch database: the demo adds rows).
    const databaseUrl = yield* Config.option(Config.redacted("DATABASE_URL"))
    const service = yield* startPayments({
      gatewayUrl: gateway.url,
      port: config.port,
      ...(Option.isSome(databaseUrl) ? { databaseUrl: databaseUrl.value } : {}),
      ...tuning(config)
    })
    const api = yield* Api.make(service.url, gateway.url)
    yield* api.setFaults(warmUp.faults)
    yield* output.line(`  gateway   ${gateway.url}  (simulated: PUT /admin/faults, GET /v1/charges)`)
    yield* output.line(
      `  service   ${service.url}  (POST /payments, /metrics, /admin/summary; ` +
        `${service.embeddedDatabase ? "embedded PGlite" : "the database at DATABASE_URL"})`
    )
    yield* output.line(
      `  timeline  warm-up 0–${secondsText(warmUp.endMs)} · gateway outage ${secondsText(outage.startMs)}–` +
        `${secondsText(outage.endMs)} · recovery –${secondsText(recovery.endMs)} · drain ≤ ` +
        `${secondsText(drain.endMs - drain.startMs)} · report`
    )
    yield* output.line("")
    return { gateway, service, api }
  })

/** What the phase driver measured: the breaker it watched and its transition counters around the outage. */
interface OutageRecord {
  readonly breaker: string | undefined
  readonly beforeOutage: TransitionCounts
  readonly afterOutage: TransitionCounts
}

/**
 * Switches the gateway's faults at the phase boundaries, announcing each, and reads the breaker's transition
 * counters right before the outage starts and right before it ends (the breaker cannot close while every call fails,
 * so what changes between the two reads happened during the outage).
 */
const drivePhases = (
  api: Api.Api,
  line: Scenario.Timeline,
  phaseLabel: Ref.Ref<string>,
  announce: (text: string) => Effect.Effect<void>,
  sleepUntil: (ms: number) => Effect.Effect<void>
): Effect.Effect<OutageRecord, Api.ApiError> =>
  Effect.gen(function*() {
    const [warmUp, outage, recovery] = line.phases
    yield* announce(`warm-up: low faults on the gateway ${JSON.stringify(warmUp.faults)}`)
    yield* sleepUntil(outage.startMs)
    const breaker = pickBreaker(yield* api.breakers.pipe(Effect.orElseSucceed(() => [])))?.name
    const beforeOutage = yield* transitionCounts(api, breaker)
    yield* api.setFaults(outage.faults)
    yield* Ref.set(phaseLabel, outage.name)
    yield* announce("gateway OUTAGE: every charge fails; new orders should be accepted as pending (202)")
    yield* sleepUntil(recovery.startMs)
    const afterOutage = yield* transitionCounts(api, breaker)
    yield* api.setFaults(recovery.faults)
    yield* Ref.set(phaseLabel, recovery.name)
    yield* announce("gateway recovered: the breaker should half-open, close, and the queued charges go through")
    return { breaker, beforeOutage, afterOutage }
  })

/** Waits until no payment is pending and no job is queued or running, or until the deadline; true if settled. */
const drain = (api: Api.Api, elapsed: Effect.Effect<number>, deadlineMs: number): Effect.Effect<boolean> =>
  Effect.gen(function*() {
    while ((yield* elapsed) < deadlineMs) {
      const summary = yield* api.summary.pipe(Effect.option)
      if (Option.isSome(summary)) {
        const totals = queueTotals(summary.value)
        if (summary.value.payments.pending === 0 && totals.ready + totals.scheduled + totals.running === 0) {
          return true
        }
      }
      yield* Effect.sleep("500 millis")
    }
    return false
  })

/**
 * The evidence for the invariants, from the service's and the gateway's own records: the status of every payment
 * the client believes accepted, the gateway's charges (and the status of every charged payment), the dead letters,
 * and the breaker's transitions (counters from /metrics, and the changes the status poller saw).
 */
const gatherEvidence = (
  api: Api.Api,
  embeddedDatabase: boolean,
  payments: ReadonlyArray<Ledger.LogicalPayment>,
  outageRecord: OutageRecord,
  polled: ReadonlyArray<Report.Transition>,
  outage: Scenario.Phase
) =>
  Effect.gen(function*() {
    const accepted = Ledger.accepted(payments)
    const lookUp = (ids: Iterable<string>) =>
      Effect.forEach(ids, (id) => Effect.map(api.paymentStatus(id), (status) => [id, status] as const), {
        concurrency: 16
      })
    const statuses = new Map<string, string | undefined>(yield* lookUp(accepted.map((p) => p.paymentId)))
    const charges = yield* api.charges
    // Charged payments the client never heard back about are looked up too; and a job may have charged a payment
    // between the two reads, so any charged-but-not-marked payment is read again.
    const recheck = new Set(
      charges.charges.map((charge) => charge.paymentId).filter((id) => statuses.get(id) !== "charged")
    )
    for (const [id, status] of yield* lookUp(recheck)) statuses.set(id, status)
    const deadLetters = yield* api.deadLetters
    const summary = yield* api.summary
    const breakers = yield* api.breakers
    const breaker = breakers.find((b) => b.name === outageRecord.breaker) ?? pickBreaker(breakers)
    const transitions = polled.filter((t) => t.breaker === breaker?.name)
    const atEnd = yield* transitionCounts(api, breaker?.name)
    const polledOpens = transitions.filter((t) => t.to === "open" && t.atMs >= outage.startMs && t.atMs <= outage.endMs)
    const polledCloses = transitions.filter((t) => t.to === "closed" && t.atMs >= outage.endMs)
    const evidence: Invariants.Evidence = {
      accepted,
      conflictingKeys: Ledger.conflictingKeys(payments),
      statuses,
      charges: charges.charges,
      chargesTotal: charges.total,
      // A server database may hold earlier runs' payments: the service's own count is comparable only when embedded.
      serviceCharged: embeddedDatabase ? summary.payments.charged : undefined,
      breaker: breaker === undefined ? undefined : {
        name: breaker.name,
        opensDuringOutage: Math.max(
          outageRecord.afterOutage.opens - outageRecord.beforeOutage.opens,
          polledOpens.length
        ),
        closesAfterRecovery: Math.max(atEnd.closes - outageRecord.afterOutage.closes, polledCloses.length),
        finalState: breaker.state
      },
      deadLetters
    }
    return { evidence, transitions }
  })

export const run = (
  config: DemoConfig,
  hooks: Hooks
): Effect.Effect<Outcome, unknown, Scope.Scope | HttpClient.HttpClient> =>
  Effect.gen(function*() {
    const output = makeOutput()
    const line = Scenario.timeline(config)
    const [warmUp, outage, , drainPhase] = line.phases
    const { api, gateway, service } = yield* start(config, line, output)

    const startMs = yield* Clock.currentTimeMillis
    const elapsed = Effect.map(Clock.currentTimeMillis, (now) => now - startMs)
    const phaseLabel = yield* Ref.make<string>(warmUp.name)
    const recorder = Traffic.makeRecorder()
    const client = yield* Traffic.makeClient(service.url, { maxAttempts: 8, maxElapsed: "20 seconds" })
    const state = yield* watch(api, elapsed, output)
    yield* showStatus(output, recorder, state, elapsed, Ref.get(phaseLabel))
    const announce = (text: string) =>
      Effect.flatMap(elapsed, (atMs) => output.line(`▶ ${StatusLine.seconds(atMs).padStart(6)}  ${text}`))
    const sleepUntil = (ms: number) =>
      Effect.flatMap(elapsed, (atMs) => atMs < ms ? Effect.sleep(Duration.millis(ms - atMs)) : Effect.void)

    // Warm-up, outage, recovery: faults switched on a fiber of their own while the traffic runs.
    const phases = yield* Effect.forkScoped(drivePhases(api, line, phaseLabel, announce, sleepUntil))
    const nextIndex = yield* Traffic.drive(client, recorder, {
      rate: config.rate,
      elapsed,
      untilMs: line.trafficEndMs,
      resendDelayMs: line.resendDelayMs
    })
    const outageRecord = yield* phases.await.pipe(Effect.flatten)

    // Drain: no more faults; ask again about the payments that got no answer; wait for pending orders and jobs.
    yield* Ref.set(phaseLabel, drainPhase.name)
    yield* api.setFaults(drainPhase.faults)
    const unresolved = Ledger.unresolvedKeys(recorder.payments())
    yield* announce(
      `traffic stopped; draining (pending orders, queued jobs)` +
        (unresolved.length > 0 ? `, asking again about ${unresolved.length} payments that got no answer` : "")
    )
    const resolved = yield* Traffic.resolve(client, recorder, elapsed, unresolved)
    const settled = yield* drain(api, elapsed, drainPhase.endMs)
    const drainEndedMs = yield* elapsed
    yield* announce(
      `${settled ? "everything settled" : "drain bound reached"}: gathering the evidence ` +
        `(${Ledger.accepted(recorder.payments()).length} payments to look up, the gateway's charges, the DLQ)`
    )

    const payments = recorder.payments()
    const { evidence, transitions } = yield* gatherEvidence(
      api,
      service.embeddedDatabase,
      payments,
      outageRecord,
      yield* Ref.get(state.transitions),
      outage
    )
    const verdicts = Invariants.check(evidence)
    const held = Invariants.allHold(verdicts)

    yield* output.endStatus
    const report = Report.format({
      config,
      timeline: line,
      drainEndedMs,
      settled,
      serviceUrl: service.url,
      gatewayUrl: gateway.url,
      payments: payments.length,
      poison: payments.filter((payment) => payment.plan.kind === "poison").length,
      flaky: payments.filter((payment) => payment.plan.kind === "flaky").length,
      sends: recorder.sends(),
      statusCounts: recorder.statusCounts(),
      retries: yield* clientRetries,
      duplicates: Ledger.duplicateTally(payments),
      resolved,
      transitions,
      gateway: yield* api.gatewayStats.pipe(Effect.option, Effect.map(Option.getOrUndefined)),
      deadLetters: evidence.deadLetters.length,
      verdicts
    })
    for (const text of report) yield* output.line(text)
    yield* hooks.onReport(held)

    if (config.serve) {
      yield* serve(config, { api, client, recorder, output, phaseLabel, serviceUrl: service.url, nextIndex, elapsed })
    }
    return { held }
  })

// -----------------------------------------------------------------------------
// --serve: keep going for Prometheus and Grafana
// -----------------------------------------------------------------------------

interface Serving {
  readonly api: Api.Api
  readonly client: Traffic.PaymentClient
  readonly recorder: Traffic.Recorder
  readonly output: Output
  readonly phaseLabel: Ref.Ref<string>
  readonly serviceUrl: string
  readonly nextIndex: number
  readonly elapsed: Effect.Effect<number>
}

/** Serve mode's cycle: a gentle trickle of traffic, and a 20 s gateway outage every 2 minutes, until Ctrl-C. */
const SERVE_CYCLE = { calmMs: 50_000, outageMs: 20_000, afterMs: 50_000, maxRate: 5 } as const

const serve = (config: DemoConfig, serving: Serving) =>
  Effect.gen(function*() {
    const { api, output } = serving
    yield* output.line("")
    yield* output.line(`Serving until Ctrl-C. Metrics: ${serving.serviceUrl}/metrics`)
    yield* output.line("  Prometheus (scrapes localhost:3000, the default --port with --serve; alert rules included):")
    yield* output.line("    prometheus --config.file=grafana/prometheus.yml")
    yield* output.line(
      "  Grafana on :3001 (provisioned datasource → http://localhost:9090, dashboards from grafana/dashboards):"
    )
    yield* output.line(
      "    docker run --rm --network host -e GF_SERVER_HTTP_PORT=3001 " +
        "-v $PWD/grafana/provisioning:/etc/grafana/provisioning " +
        "-v $PWD/grafana/dashboards:/var/lib/grafana/dashboards/bulwark grafana/grafana"
    )
    yield* output.line("    then open http://localhost:3001 (admin/admin), folder Bulwark")
    if (config.port !== SERVE_PORT) {
      yield* output.line(`  note: this service listens on ${serving.serviceUrl}; point grafana/prometheus.yml at it`)
    }
    yield* output.line("  Traffic continues at a trickle, with a 20 s gateway outage every 2 minutes.")
    yield* output.line("")
    yield* Effect.addFinalizer(() => output.line("\nstopping: the service, its workers, the database and the gateway"))
    const rate = Math.min(config.rate, SERVE_CYCLE.maxRate)
    let index = serving.nextIndex
    for (;;) {
      for (
        const [label, faults, ms] of [
          ["serve", Scenario.lowFaults, SERVE_CYCLE.calmMs],
          ["serve: outage", Scenario.outageFaults, SERVE_CYCLE.outageMs],
          ["serve", Scenario.lowFaults, SERVE_CYCLE.afterMs]
        ] as const
      ) {
        yield* api.setFaults(faults).pipe(Effect.ignore)
        yield* Ref.set(serving.phaseLabel, label)
        const untilMs = (yield* serving.elapsed) + ms
        index = yield* Effect.scoped(Traffic.drive(serving.client, serving.recorder, {
          rate,
          elapsed: serving.elapsed,
          untilMs,
          resendDelayMs: 2_000,
          firstIndex: index
        }))
      }
    }
  })
