// Pipeline.fromFile on a .yaml file without the optional peer `yaml`: a typed configuration error that names it.
import * as FileSystem from "@effect/platform/FileSystem"
import { Effect } from "effect"
import { Pipeline } from "@bulwark/resilience"

const files = FileSystem.layerNoop({ readFileString: () => Effect.succeed("name: payments\n") })
const error = await Effect.runPromise(Effect.flip(Pipeline.fromFile("pipeline.yaml")).pipe(Effect.provide(files)))
console.log(JSON.stringify({ tag: error._tag, message: error.message }))
