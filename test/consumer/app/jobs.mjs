// With the optional peers installed (@effect/sql, @effect/sql-pg): migrate a database with the
// installed package's migrations, then enqueue a job on PostgreSQL and run it with a worker.
import * as PgClient from "@effect/sql-pg/PgClient"
import { Deferred, Effect, Layer, Option, Redacted, Schema } from "effect"
import { JobQueue, JobWorker } from "@bulwark/resilience"
import * as Migrations from "@bulwark/resilience/Migrations"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"

const SendReceipt = JobQueue.define({
  kind: "send-receipt",
  queue: "default",
  payload: Schema.Struct({ orderId: Schema.String })
})

const program = Effect.gen(function*() {
  yield* Migrations.run
  const ran = yield* Deferred.make()
  yield* JobWorker.make({
    handlers: [JobWorker.handler(SendReceipt, ({ orderId }, job) => Deferred.succeed(ran, { orderId, attempt: job.attempt }))]
  })
  const first = yield* JobQueue.enqueue(SendReceipt, { orderId: "o-1" }, { dedupKey: "receipt:o-1" })
  const again = yield* JobQueue.enqueue(SendReceipt, { orderId: "o-1" }, { dedupKey: "receipt:o-1" })
  const handled = yield* Deferred.await(ran).pipe(Effect.timeout("20 seconds"))
  const status = yield* JobQueue.status(first.id).pipe(
    Effect.map((info) => Option.getOrNull(Option.map(info, (job) => job.status))),
    Effect.delay("50 millis"),
    Effect.repeat({ until: (status) => status === "succeeded" }),
    Effect.timeout("20 seconds")
  )
  return { handled, deduplicated: again.deduplicated && again.id === first.id, status }
})

const database = PgClient.layer({ url: Redacted.make(process.env.DATABASE_URL ?? "") })
const queue = SqlJobQueue.layer({ queues: { default: {} } }).pipe(Layer.provideMerge(database))

console.log(JSON.stringify(await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(queue)))))
