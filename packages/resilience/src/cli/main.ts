/**
 * The `bulwark` executable: `npm run bulwark -- dlq list` (or
 * `tsx packages/resilience/src/cli/main.ts …`). See `Cli.ts` for the commands.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Cli from "./Cli.js"

Cli.run()(process.argv).pipe(
  Effect.flatMap((code) =>
    Effect.sync(() => {
      process.exitCode = code
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
