/**
 * The demo's client: payments sent at a steady rate through
 * `IdempotencyHttpClient` (one key per logical payment, made once by
 * `attachKey`, reused by every retry, copy and resend of that payment) and
 * Bulwark's `Retry` (transient answers, 409 "still in flight" and transport
 * errors are retried with the same key, honouring `Retry-After`; 4xx answers
 * are final). Every answer lands in the {@link Recorder}.
 */
import { IdempotencyHttpClient, Retry, Timeout } from "@bulwark/resilience"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { PaymentAnswer } from "./Api.js"
import type { LogicalPayment, Purpose, SendOutcome } from "./Ledger.js"
import { statusKey } from "./Ledger.js"
import { alteredBody, bodyFor, type PaymentBody, planFor } from "./Scenario.js"

/** The client's retry policy name (the `policy` label of `bulwark_retry_*`). */
export const CLIENT_POLICY = "demo-client"

// -----------------------------------------------------------------------------
// Recorder: what the client saw
// -----------------------------------------------------------------------------

interface MutablePayment extends Omit<LogicalPayment, "sends"> {
  readonly sends: Array<SendOutcome>
}

/**
 * The client's notebook. Its methods are synchronous and each one is a
 * single step on the event loop, so fibers never see it half-updated.
 */
export interface Recorder {
  readonly start: (payment: Omit<LogicalPayment, "sends">) => void
  readonly record: (key: string, outcome: SendOutcome, atMs: number) => void
  readonly payments: () => ReadonlyArray<LogicalPayment>
  readonly statusCounts: () => ReadonlyMap<string, number>
  readonly sends: () => number
  /** Sends finished per second over the last two seconds. */
  readonly rate: (nowMs: number) => number
}

const RATE_WINDOW_MS = 2_000

export const makeRecorder = (): Recorder => {
  const payments = new Map<string, MutablePayment>()
  const counts = new Map<string, number>()
  const recent: Array<number> = []
  let sends = 0
  const trim = (nowMs: number) => {
    while (recent.length > 0 && (recent[0] ?? 0) <= nowMs - RATE_WINDOW_MS) recent.shift()
  }
  return {
    start: (payment) => {
      payments.set(payment.key, { ...payment, sends: [] })
    },
    record: (key, outcome, atMs) => {
      payments.get(key)?.sends.push(outcome)
      const status = statusKey(outcome)
      counts.set(status, (counts.get(status) ?? 0) + 1)
      sends++
      recent.push(atMs)
      trim(atMs)
    },
    payments: () => [...payments.values()],
    statusCounts: () => new Map(counts),
    sends: () => sends,
    rate: (nowMs) => {
      trim(nowMs)
      return recent.length / (RATE_WINDOW_MS / 1000)
    }
  }
}

// -----------------------------------------------------------------------------
// The payment client
// -----------------------------------------------------------------------------

export interface PaymentClient {
  /** A `POST /payments` request for this body with a fresh idempotency key, and that key. */
  readonly request: (
    body: PaymentBody
  ) => Effect.Effect<{ readonly request: HttpClientRequest.HttpClientRequest; readonly key: string }>
  /** Sends it (retrying transient answers with the same key) and says how it ended; never fails. */
  readonly send: (request: HttpClientRequest.HttpClientRequest, purpose: Purpose) => Effect.Effect<SendOutcome>
}

const KEY_HEADER = "idempotency-key"

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const message = error instanceof Error ? error.message : ""
    return `${String(error._tag)}${message === "" ? "" : `: ${message}`}`
  }
  return String(error)
}

export const makeClient = (
  serviceUrl: string,
  options: { readonly maxAttempts: number; readonly maxElapsed: Duration.DurationInput }
): Effect.Effect<PaymentClient, never, HttpClient.HttpClient> =>
  Effect.gen(function*() {
    // A generous per-attempt timeout: a client that gives up early and retries piles work onto a slow service.
    const perAttempt = yield* Effect.orDie(Timeout.make({ operation: "demo-client-attempt", limit: "10 seconds" }))
    const policy = yield* Effect.orDie(Retry.make({
      name: CLIENT_POLICY,
      backoff: Retry.exponential({ base: "200 millis", cap: "2 seconds" }),
      jitter: "full",
      maxAttempts: options.maxAttempts,
      maxElapsed: options.maxElapsed
    }))
    const client = (yield* HttpClient.HttpClient).pipe(
      // The demo's account: the service keeps idempotency keys per account (its gateway would set this header).
      HttpClient.mapRequest(HttpClientRequest.setHeader("x-account-id", "demo-merchant")),
      HttpClient.transformResponse(Timeout.timeout(perAttempt)),
      IdempotencyHttpClient.retry(policy)
    )
    const decodeAnswer = Schema.decodeUnknownOption(PaymentAnswer)
    return {
      request: (body) =>
        HttpClientRequest.post(`${serviceUrl}/payments`).pipe(
          HttpClientRequest.bodyUnsafeJson(body),
          IdempotencyHttpClient.attachKey(),
          Effect.flatMap((request) => {
            const key = request.headers[KEY_HEADER]
            return key === undefined
              ? Effect.dieMessage("IdempotencyHttpClient.attachKey set no key on a POST")
              : Effect.succeed({ request, key })
          })
        ),
      send: (request, purpose) =>
        client.execute(request).pipe(
          Effect.flatMap((response) =>
            response.json.pipe(
              Effect.orElseSucceed(() => undefined),
              Effect.map((json): SendOutcome => {
                const answer = decodeAnswer(json)
                return {
                  _tag: "Answered",
                  purpose,
                  status: response.status,
                  paymentId: answer._tag === "Some" ? answer.value.id : undefined,
                  paymentStatus: answer._tag === "Some" ? answer.value.status : undefined,
                  replayed: response.headers["idempotent-replayed"] === "true"
                }
              })
            )
          ),
          Effect.catchAll((error) => Effect.succeed<SendOutcome>({ _tag: "GaveUp", purpose, reason: describe(error) }))
        )
    }
  })

// -----------------------------------------------------------------------------
// Traffic
// -----------------------------------------------------------------------------

export interface TrafficOptions {
  readonly rate: number
  /** Milliseconds since the run's start, as the run measures them. */
  readonly elapsed: Effect.Effect<number>
  /** When to stop starting payments (run time, ms). */
  readonly untilMs: number
  readonly resendDelayMs: number
  /** Index of the first payment (so a later round continues the numbering). */
  readonly firstIndex?: number
}

const sendAndRecord = (
  client: PaymentClient,
  recorder: Recorder,
  elapsed: Effect.Effect<number>,
  key: string,
  request: HttpClientRequest.HttpClientRequest,
  purpose: Purpose
) =>
  client.send(request, purpose).pipe(
    Effect.tap((outcome) => Effect.map(elapsed, (atMs) => recorder.record(key, outcome, atMs)))
  )

/** One logical payment: its first send (and concurrent copies), then its planned resends. */
const payment = (
  client: PaymentClient,
  recorder: Recorder,
  options: TrafficOptions,
  later: (effect: Effect.Effect<unknown>) => Effect.Effect<unknown>,
  index: number
) =>
  Effect.gen(function*() {
    const plan = planFor(index)
    const body = bodyFor(index, plan)
    const { key, request } = yield* client.request(body)
    recorder.start({ index, key, plan, body, startedMs: yield* options.elapsed })
    const send = (purpose: Purpose, value = request) =>
      sendAndRecord(client, recorder, options.elapsed, key, value, purpose)
    const answers = yield* Effect.all(
      Array.from({ length: plan.copies }, (_, copy) => send(copy === 0 ? "first" : "copy")),
      { concurrency: "unbounded" }
    )
    if (plan.resend) yield* later(Effect.delay(send("resend"), options.resendDelayMs))
    const accepted = answers.some((answer) =>
      answer._tag === "Answered" && (answer.status === 201 || answer.status === 202)
    )
    // Only once the key is known to the service: a changed body on a key it never saw would just be a new payment.
    if (plan.mismatch && accepted) {
      const changed = HttpClientRequest.post(`${request.url}`).pipe(
        HttpClientRequest.setHeader(KEY_HEADER, key),
        HttpClientRequest.bodyUnsafeJson(alteredBody(body))
      )
      yield* later(Effect.delay(send("mismatch", changed), options.resendDelayMs / 2))
    }
  })

/**
 * Starts `rate` payments a second until `untilMs`, each in its own fiber (at
 * most `rate × 10` in flight: a slow service slows the client rather than
 * piling up fibers), and returns once every send, resends included, has ended.
 * Returns the next unused payment index.
 */
export const drive = (
  client: PaymentClient,
  recorder: Recorder,
  options: TrafficOptions
): Effect.Effect<number, never, Scope.Scope> =>
  Effect.gen(function*() {
    const inFlight = yield* FiberSet.make()
    const permits = yield* Effect.makeSemaphore(Math.max(10, options.rate * 2))
    // Resends run outside the permits: they are bounded by the payments that plan them, and a payment holding a
    // permit must never wait for another one.
    const later = (effect: Effect.Effect<unknown>) => FiberSet.run(inFlight, effect)
    const intervalMs = 1000 / options.rate
    const first = options.firstIndex ?? 0
    const startMs = yield* options.elapsed
    let index = first
    while ((yield* options.elapsed) < options.untilMs) {
      yield* permits.take(1)
      yield* FiberSet.run(
        inFlight,
        payment(client, recorder, options, later, index).pipe(Effect.ensuring(permits.release(1)))
      )
      index++
      const dueMs = startMs + (index - first) * intervalMs
      const nowMs = yield* options.elapsed
      if (dueMs > nowMs) yield* Effect.sleep(Math.min(dueMs, options.untilMs) - nowMs)
    }
    yield* FiberSet.awaitEmpty(inFlight)
    return index
  })

/** Sends each payment again with its own key and body; for keys whose outcome the client never learned. */
export const resolve = (
  client: PaymentClient,
  recorder: Recorder,
  elapsed: Effect.Effect<number>,
  payments: ReadonlyArray<LogicalPayment>
): Effect.Effect<number> =>
  Effect.forEach(
    payments,
    (unresolved) =>
      Effect.gen(function*() {
        const { request } = yield* client.request(unresolved.body)
        const keyed = HttpClientRequest.setHeader(request, KEY_HEADER, unresolved.key)
        yield* sendAndRecord(client, recorder, elapsed, unresolved.key, keyed, "resolve")
      }),
    { concurrency: 10, discard: true }
  ).pipe(Effect.as(payments.length))
