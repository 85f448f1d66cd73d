/**
 * A worker process for the idempotency multi-process and crash tests
 * (`race.test.ts`, `crash.test.ts`):
 *
 * ```sh
 * node --import tsx test/idempotency/worker.ts '<json>'
 * ```
 *
 * `<json>` is one of
 * - `{ "mode": "race", url, scope, keys, duplicates, name, descending }`: connects (8 pooled connections), prints
 *   `ready`, waits for a line on stdin (so every process starts at once), then runs `duplicates` concurrent requests
 *   for each of `keys` keys (`key-0` … , or from the last key down with `descending`), each handler recording its side effect in `idempotency_side_effects`, and
 *   prints one JSON line: `[[key, tag, value], …]`.
 * - `{ "mode": "crash", url, scope, key, leaseMillis }`: claims `key`, records its side effect, prints
 *   `claimed <attempt>` and hangs (heartbeating) until it is killed.
 */
import * as Idempotency from "@bulwark/resilience/Idempotency"
import * as SqlIdempotencyStore from "@bulwark/resilience/SqlIdempotencyStore"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"

const Config = Schema.parseJson(Schema.Union(
  Schema.Struct({
    mode: Schema.Literal("race"),
    url: Schema.String,
    scope: Schema.String,
    keys: Schema.Number,
    duplicates: Schema.Number,
    name: Schema.String,
    descending: Schema.optionalWith(Schema.Boolean, { default: () => false })
  }),
  Schema.Struct({
    mode: Schema.Literal("crash"),
    url: Schema.String,
    scope: Schema.String,
    key: Schema.String,
    leaseMillis: Schema.Number
  })
))
type Config = typeof Config.Type

const Outcome = Schema.Struct({ key: Schema.String, executor: Schema.String, attempt: Schema.Number })

const go = Effect.async<void>((resume) => {
  process.stdin.once("data", () => resume(Effect.void))
})

/** The side effect: one row per execution, so the test can count them. */
const sideEffect = (scope: string, key: string, executor: string, attempt: number) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    sql`INSERT INTO idempotency_side_effects (scope, key, executor, attempt)
      VALUES (${scope}, ${key}, ${executor}, ${attempt})`)

const race = (config: Extract<Config, { mode: "race" }>) =>
  Effect.gen(function*() {
    yield* Effect.flatMap(SqlClient.SqlClient, (sql) => sql`SELECT 1`)
    process.stdout.write("ready\n")
    yield* go
    const keys = Array.from({ length: config.keys }, (_, k) => `key-${k}`)
    if (config.descending) keys.reverse()
    const calls = keys.flatMap((key) =>
      Array.from(
        { length: config.duplicates },
        (_, d) => ({ key, executor: `${config.name}/${d}/${crypto.randomUUID()}` })
      )
    )
    const results = yield* Effect.forEach(calls, ({ executor, key }) =>
      Idempotency.run({
        scope: config.scope,
        key,
        fingerprint: "same request",
        success: Outcome,
        failure: Schema.Never,
        waitForInFlight: "60 seconds"
      })((execution) =>
        sideEffect(config.scope, key, executor, execution.attempt).pipe(
          Effect.zipRight(Effect.sleep("20 millis")),
          Effect.as({ key, executor, attempt: execution.attempt }),
          Effect.orDie
        )
      ).pipe(Effect.map((result) => [key, result._tag, result.value] as const)), { concurrency: "unbounded" })
    process.stdout.write(`${JSON.stringify(results)}\n`)
  })

const crash = (config: Extract<Config, { mode: "crash" }>) =>
  Idempotency.run({
    scope: config.scope,
    key: config.key,
    fingerprint: "same request",
    success: Outcome,
    failure: Schema.Never,
    lease: `${config.leaseMillis} millis`
  })((execution) =>
    sideEffect(config.scope, config.key, `crashing process ${process.pid}`, execution.attempt).pipe(
      Effect.orDie,
      Effect.zipRight(Effect.sync(() => process.stdout.write(`claimed ${execution.attempt}\n`))),
      Effect.zipRight(Effect.never)
    )
  )

const main = (config: Config) => {
  const pg = PgClient.layer({ url: Redacted.make(config.url), maxConnections: 8 })
  const layer = Layer.provideMerge(SqlIdempotencyStore.layer(), pg)
  return (config.mode === "race" ? race(config) : crash(config)).pipe(Effect.provide(layer))
}

Effect.runPromise(Effect.flatMap(Schema.decodeUnknown(Config)(process.argv[2]), main)).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
