/**
 * The payments example in one command:
 *
 *   npm run example:payments
 *
 * Configuration comes from the environment (see `configFromEnv` in App.ts):
 * `GATEWAY_URL` (unset: the simulated gateway starts in this process),
 * `DATABASE_URL` (unset: an embedded PGlite), `PORT` (default 3000), and the
 * tuning knobs; `LOG_LEVEL` (default Info) filters the logs. Prints one line
 * per server it starts:
 *
 *   gateway listening on http://127.0.0.1:41234 (simulated, in process)
 *   payments listening on http://127.0.0.1:3000 (database: embedded PGlite)
 *
 * Stops gracefully on SIGINT / SIGTERM.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import { configFromEnv, startPayments } from "./App.js"
import { startGateway } from "./Gateway.js"

const say = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

const program = Effect.gen(function*() {
  const { gatewayUrl, ...options } = yield* configFromEnv
  const gateway = yield* Option.match(gatewayUrl, {
    onNone: () =>
      Effect.tap(startGateway(), (started) => say(`gateway listening on ${started.url} (simulated, in process)`)),
    onSome: (url) => Effect.as(say(`gateway at ${url} (GATEWAY_URL)`), { url })
  })
  const payments = yield* startPayments({ ...options, gatewayUrl: gateway.url })
  yield* say(
    `payments listening on ${payments.url} (database: ${
      payments.embeddedDatabase ? "embedded PGlite" : "DATABASE_URL"
    })`
  )
  return yield* Effect.never
})

const main = Effect.flatMap(
  Config.logLevel("LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
  (level) => Effect.scoped(program).pipe(Logger.withMinimumLogLevel(level))
)

NodeRuntime.runMain(main)
