/**
 * A worker process for the multi-process test (`test/rate-limiter/multiprocess.test.ts`):
 *
 * ```sh
 * node --import tsx --conditions=bulwark-source test/rate-limiter/worker.ts '<json>'
 * ```
 *
 * `<json>` is `{ host, port, prefix, attempts, limit, window, cluster? }` (window in milliseconds; `cluster`:
 * when true, `host` and `port` are a seed node of a Redis Cluster). The worker makes one limiter per algorithm on
 * a Redis store, prints `ready`, waits for a line on stdin (so that
 * every worker starts at once), fires `attempts` calls (4 at a time) at each limiter's key `"shared"`, and
 * prints one JSON line `{ "<limiter name>": <calls admitted>, "decided": <calls Redis decided, in all> }`.
 */
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import * as RedisRateLimiter from "@bulwark/resilience/RedisRateLimiter"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

const WorkerConfig = Schema.parseJson(Schema.Struct({
  host: Schema.String,
  port: Schema.Number,
  prefix: Schema.String,
  attempts: Schema.Number,
  limit: Schema.Number,
  window: Schema.Number,
  cluster: Schema.optional(Schema.Boolean)
}))
type WorkerConfig = typeof WorkerConfig.Type

const algorithms = (limit: number, window: number): ReadonlyArray<readonly [string, RateLimiter.Algorithm]> => [
  ["token-bucket", RateLimiter.tokenBucket({ limit, window })],
  ["fixed-window", RateLimiter.fixedWindow({ limit, window })],
  ["sliding-log", RateLimiter.slidingWindowLog({ limit, window })],
  ["sliding-counter", RateLimiter.slidingWindowCounter({ limit, window })],
  ["leaky-bucket", RateLimiter.leakyBucket({ limit, window })],
  ["gcra", RateLimiter.gcra({ limit, window })]
]

const go = Effect.async<void>((resume) => {
  process.stdin.once("data", () => resume(Effect.void))
})

const main = (config: WorkerConfig) =>
  Effect.gen(function*() {
    const limiters = yield* Effect.forEach(
      algorithms(config.limit, config.window),
      ([name, algorithm]) => RateLimiter.make({ name, algorithm })
    )
    process.stdout.write("ready\n")
    yield* go
    const admitted = yield* Effect.forEach(
      limiters,
      (limiter) =>
        Effect.map(
          // A few calls in flight per limiter, so that the two processes' calls interleave at Redis.
          Effect.all(Array.from({ length: config.attempts }, () => limiter.tryConsume("shared")), {
            concurrency: 4
          }),
          (decisions) => ({
            name: limiter.name,
            admitted: decisions.filter((d) => d.outcome === "allowed" && !d.degraded).length,
            decided: decisions.filter((d) => !d.degraded).length
          })
        ),
      { concurrency: "unbounded" }
    )
    const decided = admitted.reduce((sum, limiter) => sum + limiter.decided, 0)
    process.stdout.write(
      `${JSON.stringify({ ...Object.fromEntries(admitted.map((l) => [l.name, l.admitted])), decided })}\n`
    )
  }).pipe(
    Effect.provide(
      RedisRateLimiter.layer({
        ...(config.cluster === true
          ? { cluster: { nodes: [{ host: config.host, port: config.port }] } }
          : { redis: { host: config.host, port: config.port } }),
        prefix: config.prefix,
        onFailure: "fail-closed"
      })
    )
  )

Effect.runPromise(
  Effect.flatMap(Schema.decodeUnknown(WorkerConfig)(process.argv[2]), main)
).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${String(error)}\n`)
    process.exit(1)
  }
)
