/**
 * Payments: the table, and the one procedure that may ask the gateway for
 * money — {@link chargePayment}.
 *
 * **Exactly one gateway charge per payment.** The gateway does not
 * deduplicate, so the service guarantees it:
 *
 * 1. *One payment per key.* `POST /payments` runs behind
 *    `IdempotencyHttp.middleware`: a repeat of a finished request is replayed
 *    (201 or 202, byte for byte) without running the handler, and a repeat
 *    while the first runs gets 409. A handler that runs again (the first one
 *    released its claim, or crashed) finds the same row: `payments` is unique
 *    on the idempotency key.
 * 2. *One charger at a time.* A charge request is sent only by whoever holds
 *    the row's charge lease, taken by one `UPDATE … WHERE status IN
 *    ('pending', 'dead_lettered') AND (charging_owner IS NULL OR
 *    charging_until < now())`: of an HTTP handler and a `charge-payment` job
 *    racing, one gets it, the other answers "busy" (202 pending / retry
 *    later). The lease outlives the gateway call's time budget, and every
 *    write after it is fenced by the lease token.
 * 3. *Never twice blind.* The claim counts attempts. Attempt 1 charges. Any
 *    later attempt first asks the gateway (`GET /v1/charges?paymentId=`)
 *    whether an earlier attempt charged — a timed-out request may have — and
 *    adopts that charge instead of making another. Within one attempt, only
 *    failures that prove nothing was charged are retried (see
 *    `GatewayClient`).
 * 4. *Charged is final.* A charged (or declined) row is never claimed again;
 *    its notifications are enqueued in the same transaction that marks it.
 *
 * The remaining gap is the gateway's, not ours: a request the gateway is
 * still processing when the lookup runs (it charges after the client gave
 * up) is invisible to the lookup. The simulator commits a charge as soon as it
 * receives it; a real gateway closes the gap by deduplicating on the
 * `Idempotency-Key`, which every attempt for a payment sends as the payment id.
 *
 * @since 0.1.0
 */
import * as Failure from "@bulwark/resilience/Failure"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { randomBytes, randomUUID } from "node:crypto"
import { GatewayClient } from "./GatewayClient.js"
import { ChargePayment, SendConfirmationEmail, SendWebhook } from "./Jobs.js"

// -----------------------------------------------------------------------------
// Table
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category Models
 */
export const PaymentStatus = Schema.Literal("pending", "charged", "failed", "dead_lettered")

/**
 * A row of `payments`.
 *
 * @since 0.1.0
 * @category Models
 */
export const Payment = Schema.Struct({
  id: Schema.String,
  idempotency_key: Schema.String,
  customer: Schema.String,
  amount: Schema.Number,
  currency: Schema.String,
  status: PaymentStatus,
  charge_id: Schema.NullOr(Schema.String),
  gateway_attempts: Schema.Number,
  charging_owner: Schema.NullOr(Schema.String),
  charge_job_id: Schema.NullOr(Schema.String),
  last_error: Schema.NullOr(Schema.String),
  created_at: Schema.DateFromSelf,
  updated_at: Schema.DateFromSelf
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Payment = typeof Payment.Type

const decodeRows = Schema.decodeUnknown(Schema.Array(Payment))

/** Rows that do not match the table's shape are a bug, not an input error. */
const rows = <E, R>(query: Effect.Effect<ReadonlyArray<unknown>, E, R>) =>
  Effect.flatMap(query, (raw) => Effect.orDie(decodeRows(raw)))

/**
 * Creates the example's tables (idempotent; safe for several processes
 * starting at once).
 *
 * @since 0.1.0
 * @category Schema
 */
export const ensureSchema: Effect.Effect<void, SqlError, SqlClient.SqlClient> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  yield* sql.withTransaction(Effect.gen(function*() {
    yield* sql`SELECT pg_advisory_xact_lock(hashtext('bulwark-example-payments-schema'))`
    yield* sql`
      CREATE TABLE IF NOT EXISTS payments (
        id               text        PRIMARY KEY,
        idempotency_key  text        NOT NULL UNIQUE,
        customer         text        NOT NULL,
        amount           integer     NOT NULL CHECK (amount > 0),
        currency         text        NOT NULL,
        status           text        NOT NULL DEFAULT 'pending'
                         CHECK (status IN ('pending', 'charged', 'failed', 'dead_lettered')),
        charge_id        text,
        gateway_attempts integer     NOT NULL DEFAULT 0,
        charging_owner   text,
        charging_until   timestamptz,
        charge_job_id    text,
        last_error       text,
        created_at       timestamptz NOT NULL DEFAULT now(),
        updated_at       timestamptz NOT NULL DEFAULT now()
      )`
    yield* sql`CREATE INDEX IF NOT EXISTS payments_pending ON payments (updated_at) WHERE status = 'pending'`
    yield* sql`
      CREATE TABLE IF NOT EXISTS payment_deliveries (
        payment_id   text        NOT NULL,
        kind         text        NOT NULL,
        job_id       text        NOT NULL,
        delivered_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (payment_id, kind)
      )`
  }))
})

/**
 * What `POST /payments` takes.
 *
 * @since 0.1.0
 * @category Models
 */
export const PaymentRequest = Schema.Struct({
  amount: Schema.Number.pipe(Schema.int(), Schema.between(1, 100_000_000)),
  currency: Schema.String.pipe(Schema.pattern(/^[A-Z]{3}$/, { message: () => "a three-letter ISO 4217 code" })),
  customer: Schema.String.pipe(Schema.minLength(1), Schema.maxLength(200))
})

/**
 * The row for an idempotency key: created now, or the one an earlier run of
 * the same request created.
 *
 * @since 0.1.0
 * @category Store
 */
export const createOrFind = (
  key: string,
  request: typeof PaymentRequest.Type
): Effect.Effect<Payment, SqlError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const id = `pay_${randomBytes(10).toString("hex")}`
    const created = yield* rows(sql`
      INSERT INTO payments (id, idempotency_key, customer, amount, currency)
      VALUES (${id}, ${key}, ${request.customer}, ${request.amount}, ${request.currency})
      ON CONFLICT (idempotency_key) DO NOTHING
      RETURNING *`)
    const row = created[0] ?? (yield* rows(sql`SELECT * FROM payments WHERE idempotency_key = ${key}`))[0]
    return row ?? (yield* Effect.dieMessage(`payment for key ${key} vanished`))
  })

/**
 * @since 0.1.0
 * @category Store
 */
export const find = (id: string): Effect.Effect<Option.Option<Payment>, SqlError, SqlClient.SqlClient> =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) => Effect.map(rows(sql`SELECT * FROM payments WHERE id = ${id}`), (found) => Option.fromNullable(found[0]))
  )

/**
 * Payments per status (every status present, 0 when none).
 *
 * @since 0.1.0
 * @category Store
 */
export const countByStatus: Effect.Effect<
  Record<typeof PaymentStatus.Type | "total", number>,
  SqlError,
  SqlClient.SqlClient
> = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const counted = yield* sql`SELECT status, count(*)::int AS n FROM payments GROUP BY status`.pipe(
    Effect.flatMap(Schema.decodeUnknown(Schema.Array(Schema.Struct({ status: PaymentStatus, n: Schema.Number })))),
    Effect.orDie
  )
  const counts = { pending: 0, charged: 0, failed: 0, dead_lettered: 0, total: 0 }
  for (const { n, status } of counted) {
    counts[status] = n
    counts.total += n
  }
  return counts
})

// -----------------------------------------------------------------------------
// Charging
// -----------------------------------------------------------------------------

/**
 * What {@link chargePayment} did.
 *
 * - `Charged`, `Failed` (the gateway declined): final.
 * - `Pending`: not charged now (gateway unavailable, breaker open, or an
 *   outcome to reconcile later); `retryAfter` hints when to come back.
 * - `Busy`: another process or job holds the charge lease right now.
 *
 * @since 0.1.0
 * @category Charging
 */
export type ChargeResult =
  | { readonly _tag: "Charged"; readonly payment: Payment }
  | { readonly _tag: "Failed"; readonly payment: Payment }
  | {
    readonly _tag: "Pending"
    readonly payment: Payment
    readonly reason: string
    readonly retryAfter: Option.Option<Duration.Duration>
  }
  | { readonly _tag: "Busy"; readonly payment: Payment }

/**
 * Tuning of {@link chargePayment}.
 *
 * @since 0.1.0
 * @category Charging
 */
export interface ChargeTuning {
  /** How long a claim on a payment's charge lasts. Must exceed `budget`. Default 60 seconds. */
  readonly lease: Duration.DurationInput
  /** The most one attempt may spend at the gateway (lookup + charge); past it the outcome is unknown. */
  readonly budget: Duration.DurationInput
  /** Delay of the `charge-payment` job after an unknown outcome, so that the gateway settles first. */
  readonly reconcileDelay: Duration.DurationInput
}

/**
 * The defaults of {@link ChargeTuning}.
 *
 * @since 0.1.0
 * @category Charging
 */
export const defaultChargeTuning: ChargeTuning = {
  lease: "60 seconds",
  budget: "30 seconds",
  reconcileDelay: "1 second"
}

const notifications = (payment: Payment, chargeId: string) => {
  const payload = {
    paymentId: payment.id,
    customer: payment.customer,
    amount: payment.amount,
    currency: payment.currency,
    chargeId
  }
  return [
    JobQueue.job(SendConfirmationEmail, payload, { dedupKey: `email:${payment.id}` }),
    JobQueue.job(SendWebhook, payload, { dedupKey: `webhook:${payment.id}` })
  ]
}

/**
 * One attempt to charge a payment, from an HTTP handler or a job (see the
 * module notes for why it never charges twice). `lastChance` marks the
 * payment `dead_lettered` if it stays uncharged (the job's final attempt).
 * Interrupted midway (a shutdown), it leaves its lease to lapse; the next
 * claim then reconciles with the gateway first.
 *
 * @since 0.1.0
 * @category Charging
 */
export const chargePayment = (
  id: string,
  options: { readonly tuning: ChargeTuning; readonly lastChance: boolean }
): Effect.Effect<
  ChargeResult,
  SqlError | JobQueue.EnqueueError,
  SqlClient.SqlClient | GatewayClient | JobQueue.JobQueue
> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const gateway = yield* GatewayClient
    const token = randomUUID()
    const leaseMs = Duration.toMillis(Duration.decode(options.tuning.lease))

    const claimed = (yield* rows(sql`
      UPDATE payments SET
        charging_owner = ${token},
        charging_until = now() + ${leaseMs} * interval '1 millisecond',
        gateway_attempts = gateway_attempts + 1,
        updated_at = now()
      WHERE id = ${id} AND status IN ('pending', 'dead_lettered')
        AND (charging_owner IS NULL OR charging_until < now())
      RETURNING *`))[0]

    if (claimed === undefined) {
      const current = yield* find(id)
      if (Option.isNone(current)) return yield* Effect.dieMessage(`no payment ${id}`)
      const payment = current.value
      return payment.status === "charged"
        ? { _tag: "Charged", payment } as const
        : payment.status === "failed"
        ? { _tag: "Failed", payment } as const
        : { _tag: "Busy", payment } as const
    }

    /** The charge is the gateway's: record it (fenced), with its notifications, in one transaction. */
    const settleCharged = (chargeId: string) =>
      sql.withTransaction(Effect.gen(function*() {
        const updated = (yield* rows(sql`
          UPDATE payments SET status = 'charged', charge_id = ${chargeId}, charging_owner = NULL,
            charging_until = NULL, last_error = NULL, updated_at = now()
          WHERE id = ${id} AND charging_owner = ${token}
          RETURNING *`))[0]
        if (updated === undefined) return Option.none<Payment>()
        yield* JobQueue.enqueueMany(notifications(updated, chargeId))
        return Option.some(updated)
      })).pipe(Effect.map(Option.match({
        // Our lease lapsed and someone else holds it: they will find this charge by lookup.
        onNone: (): ChargeResult => ({ _tag: "Busy", payment: claimed }),
        onSome: (payment): ChargeResult => ({ _tag: "Charged", payment })
      })))

    const settleFailed = (reason: string) =>
      Effect.map(
        rows(sql`
          UPDATE payments SET status = 'failed', charging_owner = NULL, charging_until = NULL,
            last_error = ${reason}, updated_at = now()
          WHERE id = ${id} AND charging_owner = ${token}
          RETURNING *`),
        (updated): ChargeResult =>
          updated[0] === undefined ? { _tag: "Busy", payment: claimed } : { _tag: "Failed", payment: updated[0] }
      )

    const release = (reason: string, retryAfter: Option.Option<Duration.Duration>) =>
      Effect.map(
        rows(sql`
          UPDATE payments SET status = ${options.lastChance ? "dead_lettered" : "pending"},
            charging_owner = NULL, charging_until = NULL, last_error = ${reason}, updated_at = now()
          WHERE id = ${id} AND charging_owner = ${token}
          RETURNING *`),
        (updated): ChargeResult =>
          updated[0] === undefined
            ? { _tag: "Busy", payment: claimed }
            : { _tag: "Pending", payment: updated[0], reason, retryAfter }
      )

    const atGateway = Effect.gen(function*() {
      if (claimed.gateway_attempts > 1) {
        // An earlier attempt may have charged (it timed out, or its process died): ask before charging again.
        const found = yield* Effect.either(gateway.lookup(id))
        if (found._tag === "Left") {
          return { _tag: "NotCharged", reason: found.left.message, retryAfter: Option.none() } as const
        }
        const [first, ...more] = found.right
        if (first !== undefined) {
          if (more.length > 0) yield* Effect.logError(`payment ${id} holds ${more.length + 1} charges at the gateway`)
          return { _tag: "Charged", chargeId: first.chargeId } as const
        }
      }
      return yield* gateway.charge({ paymentId: id, amount: claimed.amount, currency: claimed.currency })
    }).pipe(
      Effect.timeoutTo({
        duration: options.tuning.budget,
        onSuccess: (outcome) => outcome,
        onTimeout: () => ({ _tag: "Unknown", reason: "the gateway call ran out of time" } as const)
      })
    )

    const outcome = yield* atGateway
    switch (outcome._tag) {
      case "Charged":
        return yield* settleCharged(outcome.chargeId)
      case "Declined":
        return yield* settleFailed(`declined by the gateway (${outcome.status}): ${outcome.reason}`)
      case "NotCharged":
        return yield* release(outcome.reason, outcome.retryAfter)
      case "Unknown":
        return yield* release(
          `outcome unknown, to reconcile: ${outcome.reason}`,
          Option.some(Duration.decode(options.tuning.reconcileDelay))
        )
    }
  }).pipe(Effect.annotateLogs("paymentId", id))

/**
 * Makes sure a `charge-payment` job exists for a pending payment (dedup key:
 * the payment id, so asking twice finds the same job) and records its id.
 *
 * @since 0.1.0
 * @category Charging
 */
export const enqueueCharge = (
  payment: Payment,
  delay: Option.Option<Duration.Duration>
): Effect.Effect<JobQueue.Enqueued, SqlError | JobQueue.EnqueueError, SqlClient.SqlClient | JobQueue.JobQueue> =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    return yield* sql.withTransaction(Effect.gen(function*() {
      const enqueued = yield* JobQueue.enqueue(
        ChargePayment,
        { paymentId: payment.id },
        Option.match(delay, {
          onNone: () => ({ dedupKey: payment.id }),
          onSome: (d) => ({ dedupKey: payment.id, delay: d })
        })
      )
      yield* sql`UPDATE payments SET charge_job_id = ${enqueued.id} WHERE id = ${payment.id}`
      return enqueued
    }))
  })

// -----------------------------------------------------------------------------
// Jobs
// -----------------------------------------------------------------------------

/**
 * The `charge-payment` handler: one {@link chargePayment} attempt; anything
 * but charged or declined fails transiently, so the queue retries it with
 * backoff (and, after the last attempt, dead-letters it).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const chargeHandler = (tuning: ChargeTuning) =>
  JobWorker.handler(ChargePayment, ({ paymentId }, job) =>
    Effect.flatMap(
      chargePayment(paymentId, { tuning, lastChance: job.attempt >= job.maxAttempts }),
      (result): Effect.Effect<void, Failure.TransientError> => {
        switch (result._tag) {
          case "Charged":
          case "Failed":
            return Effect.logInfo(`payment ${paymentId} settled by job ${job.id}: ${result.payment.status}`)
          case "Busy":
            return Effect.fail(
              new Failure.TransientError({
                reason: "Lifted",
                message: `payment ${paymentId} is being charged elsewhere`
              })
            )
          case "Pending":
            return Effect.fail(new Failure.TransientError({ reason: "Lifted", message: result.reason }))
        }
      }
    ))

type Notified = Failure.TransientError | Failure.TerminalError | SqlError

const deliver = (kind: string, payload: typeof SendWebhook.payload.Type, jobId: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* Effect.sleep(Duration.millis(yield* Random.nextIntBetween(5, 25)))
    yield* sql`
      INSERT INTO payment_deliveries (payment_id, kind, job_id) VALUES (${payload.paymentId}, ${kind}, ${jobId})
      ON CONFLICT (payment_id, kind) DO NOTHING`
  })

/**
 * Simulated delivery rules, by customer name: `poison-…` makes the webhook
 * endpoint reject the event for good (terminal: straight to the dead-letter
 * queue); `flaky-…` makes the first attempt of either notification fail
 * transiently (retried).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const notificationHandlers = [
  JobWorker.handler(
    SendConfirmationEmail,
    (payload, job): Effect.Effect<void, Notified, SqlClient.SqlClient> =>
      payload.customer.startsWith("flaky-") && job.attempt === 1
        ? Effect.fail(
          new Failure.TransientError({ reason: "Lifted", message: "the mail server answered 421, try later" })
        )
        : deliver("email", payload, job.id)
  ),
  JobWorker.handler(
    SendWebhook,
    (payload, job): Effect.Effect<void, Notified, SqlClient.SqlClient> =>
      payload.customer.startsWith("poison-")
        ? Effect.fail(
          new Failure.TerminalError({
            reason: "Lifted",
            message: `the webhook endpoint of ${payload.customer} rejected the event for good (410 Gone)`
          })
        )
        : payload.customer.startsWith("flaky-") && job.attempt === 1
        ? Effect.fail(new Failure.TransientError({ reason: "Lifted", message: "the webhook endpoint timed out" }))
        : deliver("webhook", payload, job.id)
  )
]

/**
 * Pending payments nobody is working on (their HTTP request died before it
 * queued a job): queued now. Runs every `interval` while the scope is open.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const sweepStalled = (interval: Duration.DurationInput) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const stalled = yield* rows(sql`
      SELECT * FROM payments
      WHERE status = 'pending' AND charge_job_id IS NULL
        AND (charging_owner IS NULL OR charging_until < now())
        AND updated_at < now() - interval '30 seconds'
      ORDER BY updated_at LIMIT 100`)
    for (const payment of stalled) {
      const enqueued = yield* enqueueCharge(payment, Option.none())
      yield* Effect.logWarning(`payment ${payment.id} was left pending; queued job ${enqueued.id}`)
    }
  }).pipe(
    Effect.catchAllCause((cause) => Effect.logWarning("sweep of stalled payments failed", cause)),
    Effect.repeat({ schedule: Schedule.spaced(interval) }),
    Effect.forkScoped
  )
