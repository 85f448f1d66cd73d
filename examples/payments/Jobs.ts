/**
 * The payments service's durable jobs and their queues (tiers).
 *
 * - `payments` queue: `charge-payment`, one per pending payment (dedup key =
 *   the payment id), retried with backoff until the gateway takes it.
 * - `notifications` queue: `send-confirmation-email` and `send-webhook` after
 *   a charge (dedup keys `email:<id>` and `webhook:<id>`); a terminal failure
 *   (a poison payload) goes straight to the dead-letter queue.
 *
 * @since 0.1.0
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import type * as Duration from "effect/Duration"
import * as Schema from "effect/Schema"

/**
 * Charges a pending payment (see `Payments.chargePayment`).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const ChargePayment = JobQueue.define({
  kind: "charge-payment",
  queue: "payments",
  payload: Schema.Struct({ paymentId: Schema.String })
})

const Notification = Schema.Struct({
  paymentId: Schema.String,
  customer: Schema.String,
  amount: Schema.Number,
  currency: Schema.String,
  chargeId: Schema.String
})

/**
 * Sends the customer's confirmation email (simulated).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const SendConfirmationEmail = JobQueue.define({
  kind: "send-confirmation-email",
  queue: "notifications",
  payload: Notification
})

/**
 * Posts the `payment.charged` webhook to the customer's endpoint (simulated).
 *
 * @since 0.1.0
 * @category Jobs
 */
export const SendWebhook = JobQueue.define({
  kind: "send-webhook",
  queue: "notifications",
  payload: Notification
})

/**
 * Every kind, registered with the backend so that dead-letter entries can be
 * replayed with an edited payload.
 *
 * @since 0.1.0
 * @category Jobs
 */
export const definitions: ReadonlyArray<JobQueue.JobDefinition.Any> = [
  ChargePayment,
  SendConfirmationEmail,
  SendWebhook
]

/**
 * Tuning of the queues.
 *
 * @since 0.1.0
 * @category Models
 */
export interface QueueTuning {
  /** Idle polling; short on the embedded database, where wake-ups do not arrive. */
  readonly pollInterval: Duration.DurationInput
  /** First retry delay of `charge-payment` (doubling, ±25 % jitter). */
  readonly chargeRetryBase: Duration.DurationInput
  readonly chargeRetryCap: Duration.DurationInput
  /** Attempts of `charge-payment` before the dead-letter queue. */
  readonly chargeMaxAttempts: number
  /** Attempts of a notification before the dead-letter queue. */
  readonly notificationMaxAttempts: number
}

/**
 * The queue options for `SqlJobQueue.layer`.
 *
 * @since 0.1.0
 * @category Constructors
 */
export const queueOptions = (tuning: QueueTuning): JobQueue.Options => ({
  queues: {
    payments: {
      concurrency: 8,
      pollInterval: tuning.pollInterval,
      retry: {
        base: tuning.chargeRetryBase,
        cap: tuning.chargeRetryCap,
        jitter: 0.25,
        maxAttempts: tuning.chargeMaxAttempts
      }
    },
    notifications: {
      concurrency: 8,
      pollInterval: tuning.pollInterval,
      retry: { base: "200 millis", cap: "5 seconds", jitter: 0.25, maxAttempts: tuning.notificationMaxAttempts }
    }
  },
  jobs: definitions
})
