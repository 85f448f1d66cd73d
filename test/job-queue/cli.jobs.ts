/**
 * Job definitions of the CLI test. The test enqueues and runs them; the CLI
 * child process loads this module through `--jobs` to validate an edited
 * `--payload` with the kind's Schema.
 */
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as Schema from "effect/Schema"

export const Charge = JobQueue.define({
  kind: "charge-card",
  queue: "payments",
  payload: Schema.Struct({ orderId: Schema.String, amount: Schema.Number })
})

export const SendEmail = JobQueue.define({
  kind: "send-email",
  queue: "emails",
  payload: Schema.Struct({ to: Schema.String })
})

export const definitions = [Charge, SendEmail]
