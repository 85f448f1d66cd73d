/**
 * A worker process for `fleet-processes.test.ts`:
 *
 * ```sh
 * node --import tsx --conditions=bulwark-source test/circuit-breaker/fleet-worker.ts '<json>'
 * ```
 *
 * `<json>` is `{ id, host, port, prefix, name, url, failures, openMillis, permits, everyMillis, runMillis }`. The
 * worker makes the shared breaker `name` (trips after `failures` consecutive failures, open `openMillis`, `permits`
 * probes closing it), prints `ready`, waits for a line on stdin (so that every worker starts at once), then calls
 * `url` through the breaker one call at a time, one every `everyMillis`, for `runMillis`. Each state change is
 * printed as `EVENT {"from","to","reason","at"}` (`at`: this machine's clock, ms), and at the end one line
 * `DONE {"calls","refused","succeeded","failed","state"}`.
 */
import * as CircuitBreaker from "@bulwark/resilience/CircuitBreaker"
import * as RedisCircuitBreaker from "@bulwark/resilience/RedisCircuitBreaker"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"

const WorkerConfig = Schema.parseJson(Schema.Struct({
  id: Schema.String,
  host: Schema.String,
  port: Schema.Number,
  prefix: Schema.String,
  name: Schema.String,
  url: Schema.String,
  failures: Schema.Number,
  openMillis: Schema.Number,
  permits: Schema.Number,
  everyMillis: Schema.Number,
  runMillis: Schema.Number
}))
type WorkerConfig = typeof WorkerConfig.Type

class DependencyFailed extends Error {}

const go = Effect.async<void>((resume) => {
  process.stdin.once("data", () => resume(Effect.void))
})

const main = (config: WorkerConfig) =>
  Effect.scoped(Effect.gen(function*() {
    const breaker = yield* RedisCircuitBreaker.make({
      name: config.name,
      prefix: config.prefix,
      redis: { host: config.host, port: config.port },
      trip: CircuitBreaker.consecutiveFailures(config.failures),
      openDuration: config.openMillis,
      halfOpen: { permits: config.permits, closeAfter: config.permits }
    })
    const events = yield* breaker.subscribe
    yield* Effect.forkScoped(Stream.runForEach(Stream.fromQueue(events), (event) =>
      Effect.sync(() => {
        if (event._tag !== "StateChanged") return
        const line = { from: event.from, to: event.to, reason: event.reason._tag, at: event.at }
        process.stdout.write(`EVENT ${JSON.stringify(line)}\n`)
      })))
    process.stdout.write("ready\n")
    yield* go
    const call = Effect.tryPromise({
      try: async () => {
        const response = await fetch(config.url, { headers: { "x-worker": config.id } })
        await response.arrayBuffer()
        if (response.status !== 200) throw new DependencyFailed(String(response.status))
      },
      catch: (cause) => cause
    })
    const counts = { calls: 0, refused: 0, succeeded: 0, failed: 0 }
    const until = Date.now() + config.runMillis
    while (Date.now() < until) {
      counts.calls++
      const result = yield* Effect.either(call.pipe(CircuitBreaker.protect(breaker)))
      if (result._tag === "Right") counts.succeeded++
      else if (CircuitBreaker.isCircuitOpenError(result.left)) counts.refused++
      else counts.failed++
      yield* Effect.sleep(config.everyMillis)
    }
    process.stdout.write(`DONE ${JSON.stringify({ ...counts, state: yield* breaker.state })}\n`)
  }))

Effect.runPromise(
  Effect.flatMap(Schema.decodeUnknown(WorkerConfig)(process.argv[2]), main)
).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
