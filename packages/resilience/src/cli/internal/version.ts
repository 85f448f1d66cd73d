import * as FileSystem from "@effect/platform/FileSystem"
import * as Path from "@effect/platform/Path"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"

// Three levels up from src/cli/internal/ (in this repository) and from dist/cli/internal/ (installed) alike.
const manifestUrl = new URL("../../../package.json", import.meta.url)

// The name is checked so that a copy of this file bundled into an application never reports the application's version.
const Manifest = Schema.parseJson(Schema.Struct({
  name: Schema.Literal("@bulwark/resilience"),
  version: Schema.String
}))

/**
 * The version of `@bulwark/resilience`, from its `package.json`, for
 * `bulwark --version`; `"unknown"` when that file cannot be read (a bundled
 * copy of the CLI).
 *
 * @internal
 */
export const version: Effect.Effect<string, never, FileSystem.FileSystem | Path.Path> = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const text = yield* fs.readFileString(yield* path.fromFileUrl(manifestUrl))
  const manifest = yield* Schema.decode(Manifest)(text)
  return manifest.version
}).pipe(Effect.orElseSucceed(() => "unknown"))
