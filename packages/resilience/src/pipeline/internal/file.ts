/**
 * A pipeline's configuration read from a JSON or YAML file, chosen by the
 * file's extension.
 *
 * @internal
 */
import type * as PlatformError from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as Pipeline from "../Pipeline.js"
import * as schema from "./schema.js"

const syntaxError = (path: string, format: string, error: unknown): Pipeline.InvalidPipelineConfigError =>
  schema.invalid(path, [{
    path: "",
    message: `is not valid ${format}: ${error instanceof Error ? error.message : String(error)}`
  }])

type Format = "JSON" | "YAML"

/** The file's format, by its extension. */
const formatOf = (path: string): Either.Either<Format, Pipeline.InvalidPipelineConfigError> => {
  const lower = path.toLowerCase()
  if (lower.endsWith(".json")) return Either.right("JSON")
  if (lower.endsWith(".yaml") || lower.endsWith(".yml")) return Either.right("YAML")
  return Either.left(schema.invalid(path, [{ path: "", message: "expected a .json, .yaml or .yml file" }]))
}

type ParseText = (text: string) => unknown

/**
 * `yaml` is an optional peer dependency: it is loaded when the first YAML file is read, so an application
 * that never reads one does not need it installed.
 */
const loadYamlParser = (path: string): Effect.Effect<ParseText, Pipeline.InvalidPipelineConfigError> =>
  Effect.tryPromise({
    try: () => import("yaml"),
    catch: () =>
      schema.invalid(path, [{
        path: "",
        message: "is YAML, which needs the optional peer dependency `yaml`: install it with `npm install yaml`"
      }])
  }).pipe(
    // YAML 1.2 core schema: `30 seconds` is a string, `5` a number, `true` a boolean; duplicate keys are errors.
    Effect.map((YAML): ParseText => (text): unknown => YAML.parse(text))
  )

const parse = (
  path: string,
  format: Format,
  text: string
): Effect.Effect<unknown, Pipeline.InvalidPipelineConfigError> =>
  Effect.flatMap(
    format === "JSON" ? Effect.succeed<ParseText>(JSON.parse) : loadYamlParser(path),
    (parseText) =>
      Either.try({
        try: (): unknown => parseText(text),
        catch: (error) => syntaxError(path, format, error)
      })
  )

/** @internal */
export const fromFile = (
  path: string
): Effect.Effect<
  Pipeline.Config,
  Pipeline.InvalidPipelineConfigError | PlatformError.PlatformError,
  FileSystem.FileSystem
> =>
  Effect.gen(function*() {
    const format = yield* formatOf(path)
    const fs = yield* FileSystem.FileSystem
    const text = yield* fs.readFileString(path)
    const document = yield* parse(path, format, text)
    return yield* schema.decode(document, path)
  })
