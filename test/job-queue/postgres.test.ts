/**
 * The job-queue conformance suite on PostgreSQL (a scratch database, emptied
 * before each test). Fails, never skips, when PostgreSQL is not there. Time
 * is the server's `now()`, which cannot be faked: moving it forward is a real
 * sleep (the tests run without the test services, so `Effect.sleep` is live).
 */
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as SqlClient from "@effect/sql/SqlClient"
import { describe, layer } from "@effect/vitest"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as ScratchPostgres from "../support/postgres.js"
import { conformanceCancel } from "./conformance.cancel.js"
import { conformanceDedup } from "./conformance.dedup.js"
import { conformance } from "./conformance.js"
import { conformancePause } from "./conformance.pause.js"

const truncate = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) => sql`TRUNCATE bulwark_jobs, bulwark_dead_letters, bulwark_job_queues RESTART IDENTITY`
)

describe("PostgreSQL backend", () => {
  layer(ScratchPostgres.layer({ maxConnections: 12 }), { excludeTestServices: true })((it) => {
    const backend = {
      name: "postgres",
      test: it.effect,
      clocked: it.effect,
      advance: (duration: Duration.DurationInput) => Effect.sleep(duration),
      layer: (options: SqlJobQueue.Options) =>
        Layer.unwrapEffect(Effect.as(Effect.orDie(truncate), SqlJobQueue.layer(options)))
    }
    conformance(backend)
    conformanceDedup(backend)
    conformanceCancel(backend)
    conformancePause(backend)
  })
})
