/**
 * The demo's read and admin access to the payments service and the gateway
 * (the routes of /tmp/bulwark-notes/payments-api.md), with every answer
 * decoded by a Schema: a surprise in the contract is a clear error, not a
 * silent `undefined`.
 */
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import type { DeadLetterEntry } from "./Invariants.js"
import type { GatewayFaults } from "./Scenario.js"

/** An admin or read call failed (after a few quick retries). */
export class ApiError extends Data.TaggedError("ApiError")<{ readonly call: string; readonly cause: unknown }> {
  override get message(): string {
    const reason = this.cause instanceof Error ? this.cause.message : String(this.cause)
    return `${this.call} failed: ${reason}`
  }
}

const Id = Schema.Union(Schema.String, Schema.Number).pipe(
  Schema.transform(Schema.String, { strict: true, decode: String, encode: (id) => id })
)

const Charges = Schema.Struct({
  charges: Schema.Array(Schema.Struct({ chargeId: Id, paymentId: Id })),
  total: Schema.Number
})

const GatewayStats = Schema.Struct({ requests: Schema.Number, charged: Schema.Number, failed: Schema.Number })

const Breaker = Schema.Struct({ name: Schema.String, state: Schema.String })
export type Breaker = typeof Breaker.Type

const PaymentView = Schema.Struct({ id: Id, status: Schema.String })

/** `lastError` as text, whether the service stores a string or a structured error. */
const lastErrorText = (value: unknown): string | undefined =>
  value === undefined || value === null ? undefined : typeof value === "string" ? value : JSON.stringify(value)

const DeadLetters = Schema.Struct({
  items: Schema.Array(Schema.Struct({
    id: Id,
    queue: Schema.String,
    kind: Schema.String,
    payload: Schema.Unknown,
    attempts: Schema.Number,
    lastError: Schema.optional(Schema.Unknown)
  })),
  depth: Schema.Number
})

const Summary = Schema.Struct({
  payments: Schema.Struct({
    charged: Schema.Number,
    pending: Schema.Number,
    failed: Schema.Number,
    dead_lettered: Schema.Number,
    total: Schema.Number
  }),
  queues: Schema.Array(Schema.Struct({
    queue: Schema.String,
    ready: Schema.Number,
    scheduled: Schema.Number,
    /** Waiting for a retry (when the service counts them apart from `scheduled`). */
    retrying: Schema.optional(Schema.Number),
    running: Schema.Number,
    dead: Schema.Number
  })),
  breakers: Schema.Array(Breaker)
})
export type Summary = typeof Summary.Type

/** The answer to one payment's `POST /payments` or `GET /payments/:id`. */
export const PaymentAnswer = Schema.Struct({ id: Id, status: Schema.String })

export interface Api {
  readonly setFaults: (faults: GatewayFaults) => Effect.Effect<void, ApiError>
  readonly charges: Effect.Effect<typeof Charges.Type, ApiError>
  readonly gatewayStats: Effect.Effect<typeof GatewayStats.Type, ApiError>
  readonly summary: Effect.Effect<Summary, ApiError>
  readonly breakers: Effect.Effect<ReadonlyArray<Breaker>, ApiError>
  /** The payment's status, or `undefined` on 404. */
  readonly paymentStatus: (id: string) => Effect.Effect<string | undefined, ApiError>
  readonly deadLetters: Effect.Effect<ReadonlyArray<DeadLetterEntry>, ApiError>
  /** `/metrics` as text. */
  readonly metrics: Effect.Effect<string, ApiError>
}

/** A few quick retries: the service is busy during the demo, and these reads are idempotent. */
const quickRetries = Schedule.intersect(Schedule.exponential("100 millis"), Schedule.recurs(4))

export const make = (serviceUrl: string, gatewayUrl: string): Effect.Effect<Api, never, HttpClient.HttpClient> =>
  Effect.map(HttpClient.HttpClient, (base) => {
    const client = base.pipe(HttpClient.filterStatusOk)
    const call = <A>(name: string, effect: Effect.Effect<A, unknown>) =>
      effect.pipe(
        Effect.timeout("5 seconds"),
        Effect.retry(quickRetries),
        Effect.mapError((cause) => new ApiError({ call: name, cause }))
      )
    const getJson = <A, I>(url: string, schema: Schema.Schema<A, I>) =>
      call(`GET ${url}`, client.get(url).pipe(Effect.flatMap(HttpClientResponse.schemaBodyJson(schema))))
    return {
      setFaults: (faults) =>
        call(
          "PUT /admin/faults",
          client.execute(
            HttpClientRequest.put(`${gatewayUrl}/admin/faults`).pipe(HttpClientRequest.bodyUnsafeJson(faults))
          ).pipe(Effect.asVoid)
        ),
      charges: getJson(`${gatewayUrl}/v1/charges`, Charges),
      gatewayStats: getJson(`${gatewayUrl}/admin/stats`, GatewayStats),
      summary: getJson(`${serviceUrl}/admin/summary`, Summary),
      breakers: getJson(`${serviceUrl}/admin/breakers`, Schema.Array(Breaker)),
      paymentStatus: (id) =>
        call(
          `GET /payments/${id}`,
          base.get(`${serviceUrl}/payments/${encodeURIComponent(id)}`).pipe(
            Effect.flatMap((response) =>
              response.status === 404
                ? Effect.succeed(undefined)
                : HttpClientResponse.filterStatusOk(response).pipe(
                  Effect.flatMap(HttpClientResponse.schemaBodyJson(PaymentView)),
                  Effect.map((view) => view.status)
                )
            )
          )
        ),
      deadLetters: getJson(`${serviceUrl}/admin/dead-letters?limit=10000`, DeadLetters).pipe(
        Effect.map((answer) =>
          answer.items.map((item) => ({
            id: item.id,
            queue: item.queue,
            kind: item.kind,
            payload: item.payload,
            attempts: item.attempts,
            lastError: lastErrorText(item.lastError)
          }))
        )
      ),
      metrics: call(
        `GET ${serviceUrl}/metrics`,
        client.get(`${serviceUrl}/metrics`).pipe(Effect.flatMap((r) => r.text))
      )
    }
  })
