/**
 * The `bulwark` program, loaded by the bin's entry (`../main.ts`) once the
 * packages it imports are known to resolve: runs the CLI on `process.argv` and
 * exits with its code.
 */
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Cli from "../Cli.js"

Cli.run()(process.argv).pipe(
  Effect.flatMap((code) =>
    Effect.sync(() => {
      process.exitCode = code
    })
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain
)
