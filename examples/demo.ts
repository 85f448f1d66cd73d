/**
 * The Bulwark demo: a payments service behind idempotency keys, a circuit
 * breaker and durable jobs, against a simulated gateway that goes down.
 *
 *   npm run demo                      # about a minute of traffic, then the report
 *   npm run demo -- --short           # 15 s (CI); exits 0 only if every invariant held
 *   npm run demo -- --duration 90s --rate 80
 *   npm run demo -- --serve           # then keep serving /metrics on :3000 for Prometheus and Grafana
 *
 * It starts the gateway and the payments service in this process (embedded
 * Postgres), sends payments from a client that retries with the same
 * idempotency keys, injects a gateway outage and its recovery, duplicate
 * submissions and poison jobs, shows one live status line, and ends with a
 * report that checks four invariants against the gateway's own charge list
 * and the service's admin routes. See examples/demo/.
 */
import * as Command from "@effect/cli/Command"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FetchHttpClient from "@effect/platform/FetchHttpClient"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Flags from "./demo/Flags.js"
import * as Run from "./demo/Run.js"

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)

const demo = Command.make("demo", Flags.options, (flags) =>
  Either.match(Flags.resolveConfig(flags), {
    onLeft: (invalid) =>
      Console.error(invalid.message).pipe(Effect.zipRight(Effect.sync(() => {
        process.exitCode = 2
      }))),
    onRight: (config) =>
      Run.run(config, {
        // With --serve the run goes on after the report: the exit code (on Ctrl-C) is the report's verdict.
        onReport: (held) =>
          Effect.sync(() => {
            process.exitCode = held ? 0 : 1
          })
      }).pipe(
        Effect.scoped,
        Effect.provide(FetchHttpClient.layer),
        // The service's and the client's logs would tear the status line apart; --verbose shows them.
        Logger.withMinimumLogLevel(config.verbose ? LogLevel.Info : LogLevel.None),
        Effect.matchEffect({
          onFailure: (error) =>
            Console.error(`\nThe demo could not run: ${describe(error)}`).pipe(Effect.zipRight(Effect.sync(() => {
              process.exitCode = 1
            }))),
          onSuccess: (outcome) =>
            Effect.sync(() => {
              process.exitCode = outcome.held ? 0 : 1
            })
        })
      )
  })).pipe(Command.withDescription("Bulwark's payments demo: outage, duplicates, poison jobs, and the invariants"))

Command.run(demo, { name: "demo", version: "0.1.0" })(process.argv).pipe(
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({
    // Ctrl-C (an interruption) ends with the verdict already set, not with 0.
    teardown: (exit, onExit) =>
      onExit(Exit.isFailure(exit) && !Cause.isInterruptedOnly(exit.cause) ? 1 : Number(process.exitCode ?? 0))
  })
)
