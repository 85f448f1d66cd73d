/**
 * Results as the store keeps them: what an outcome leaves behind (a release, or a result encoded as the JSON text
 * of its schema's encoding), and what a stored result gives back, to the first caller and to every replay alike.
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import * as Failure from "../../Failure.js"
import type * as Idempotency from "../Idempotency.js"
import type * as IdempotencyStore from "../IdempotencyStore.js"
import { StoredResultTooLargeError } from "./errors.js"
import type { Named, Valid } from "./runOptions.js"

const TooLargePayload = Schema.parseJson(Schema.Struct({ bytes: Schema.Number, limit: Schema.Number }))

/** A value's JSON text could not be made or read. */
class JsonError extends Error {}

// JSON has no NaN or Infinity: JSON.stringify would write `null`, and the replay would not decode.
const finiteNumbers = (_key: string, value: unknown): unknown => {
  if (typeof value === "number" && !Number.isFinite(value)) throw new JsonError(`${value} has no JSON form`)
  return value
}

// The schema itself (not a `Schema.parseJson` wrapper made per call) is what gets encoded and decoded, so Schema's
// parser cache (per AST) is hit on every request after the first. `undefined` (a `Schema.Void` success) is stored
// as the empty string, which is not JSON.
const encodeJson = <X, XI>(
  schema: Schema.Schema<X, XI>,
  value: X
): Either.Either<string, ParseResult.ParseError | Error> =>
  Either.flatMap(
    Schema.encodeEither(schema)(value),
    (encoded) =>
      encoded === undefined ? Either.right("") : Either.try({
        try: () => {
          const text: unknown = JSON.stringify(encoded, finiteNumbers)
          if (typeof text !== "string") throw new JsonError("its encoded form is not JSON")
          return text
        },
        catch: (cause) => cause instanceof Error ? cause : new JsonError(String(cause))
      })
  )

const decodeJson = <X, XI>(
  schema: Schema.Schema<X, XI>,
  payload: string
): Either.Either<X, ParseResult.ParseError | Error> =>
  Either.flatMap(
    payload === "" ? Either.right(undefined) : Either.try({
      try: (): unknown => JSON.parse(payload),
      catch: (cause) => cause instanceof Error ? cause : new JsonError(String(cause))
    }),
    (json) => Schema.decodeUnknownEither(schema)(json)
  )

const describe = (error: ParseResult.ParseError | Error): string =>
  error instanceof ParseResult.ParseError ? ParseResult.TreeFormatter.formatErrorSync(error) : error.message

/** A stored result no longer matches its schema (the schema changed since it was stored): a programming error. */
const undecodable = (valid: Named, error: ParseResult.ParseError | Error) =>
  new Error(
    `The stored result for idempotency key ${valid.keyHash} of "${valid.scope}" does not decode with the current schema: ${
      describe(error)
    }`
  )

/** @internal */
export type Replay<A, E> = Effect.Effect<
  Idempotency.Result<A>,
  E | StoredResultTooLargeError
>

/**
 * What a stored result gives back: its value, its failure, or (too large, unencodable) the error or defect that
 * stands for it.
 *
 * @internal
 */
export const replay = <A, AI, E, EI>(
  valid: Valid<A, AI, E, EI>,
  stored: IdempotencyStore.StoredResult,
  tag: "Executed" | "Replayed",
  attempt: number
): Replay<A, E> => {
  switch (stored.outcome) {
    case "success":
      return Either.match(decodeJson(valid.success, stored.payload), {
        onLeft: (error) => Effect.die(undecodable(valid, error)),
        onRight: (value) => Effect.succeed({ _tag: tag, value, attempt })
      })
    case "failure":
      return Either.match(decodeJson(valid.failure, stored.payload), {
        onLeft: (error) => Effect.die(undecodable(valid, error)),
        onRight: (error) => Effect.fail(error)
      })
    case "too_large": {
      const sizes = Either.getOrElse(
        Schema.decodeEither(TooLargePayload)(stored.payload),
        () => ({ bytes: -1, limit: -1 })
      )
      return Effect.fail(
        new StoredResultTooLargeError({
          scope: valid.scope,
          keyHash: valid.keyHash,
          bytes: sizes.bytes,
          limit: sizes.limit
        })
      )
    }
    case "unencodable":
      return Effect.die(
        new Error(
          `The result for idempotency key ${valid.keyHash} of "${valid.scope}" could not be encoded with its schema when it was produced, so it was not stored: ${stored.payload}`
        )
      )
  }
}

// -----------------------------------------------------------------------------
// Settling an outcome
// -----------------------------------------------------------------------------

type Decision = "store" | "release"

/** Whether an outcome is stored: defects and interruptions never are (they have no schema). */
const decide = <A, AI, E, EI>(
  valid: Valid<A, AI, E, EI>,
  exit: Exit.Exit<A, E>,
  classifier: Failure.Classifier
): Decision => {
  if (Exit.isSuccess(exit)) return valid.shouldStore === undefined || valid.shouldStore(exit) ? "store" : "release"
  if (Cause.isInterrupted(exit.cause) || Cause.isDie(exit.cause)) return "release"
  const error = Cause.failureOption(exit.cause)
  if (Option.isNone(error)) return "release"
  if (valid.shouldStore !== undefined) return valid.shouldStore(exit) ? "store" : "release"
  if (valid.storeFailures === "all") return "store"
  const verdict = Failure.classifyError(error.value, classifier)
  return Option.isSome(verdict) && verdict.value === "terminal" ? "store" : "release"
}

/** @internal */
export type Settlement<A, E> =
  | { readonly _tag: "Release"; readonly then: Effect.Effect<Idempotency.Result<A>, E> }
  | {
    readonly _tag: "Store"
    readonly stored: IdempotencyStore.StoredResult
    readonly then: Effect.Effect<Idempotency.Result<A>, E | StoredResultTooLargeError>
  }

/**
 * What an outcome leaves behind: a release, or a stored result, and what the caller gets after writing it.
 *
 * @internal
 */
export const plan = <A, AI, E, EI>(
  valid: Valid<A, AI, E, EI>,
  exit: Exit.Exit<A, E>,
  classifier: Failure.Classifier,
  attempt: number
): Settlement<A, E> => {
  let decision: Decision
  try {
    decision = decide(valid, exit, classifier)
  } catch (defect) {
    // A throwing `shouldStore` decides nothing: give the claim back rather than leave it to lapse.
    return { _tag: "Release", then: Effect.die(defect) }
  }
  if (decision === "release") {
    return {
      _tag: "Release",
      then: Exit.match(exit, {
        onFailure: (cause) => Effect.failCause(cause),
        onSuccess: (value): Effect.Effect<Idempotency.Result<A>> => Effect.succeed({ _tag: "Executed", value, attempt })
      })
    }
  }
  const encoded: Either.Either<IdempotencyStore.StoredResult, ParseResult.ParseError | Error> = Exit.match(exit, {
    onSuccess: (value) =>
      Either.map(encodeJson(valid.success, value), (payload) => ({ outcome: "success" as const, payload })),
    onFailure: (cause) =>
      Option.match(Cause.failureOption(cause), {
        onNone: (): Either.Either<IdempotencyStore.StoredResult, Error> =>
          Either.left(new Error("unreachable: only typed failures are stored")),
        onSome: (error) =>
          Either.map(encodeJson(valid.failure, error), (payload) => ({ outcome: "failure" as const, payload }))
      })
  })
  if (Either.isLeft(encoded)) {
    const reason = describe(encoded.left)
    // Not releasing: the handler's side effects happened, so the key must not run again.
    return {
      _tag: "Store",
      stored: { outcome: "unencodable", payload: reason },
      then: Effect.die(
        new Error(
          `The result for idempotency key ${valid.keyHash} of "${valid.scope}" does not encode with its schema, so it was not stored (the key will not run again until it expires): ${reason}`
        )
      )
    }
  }
  const stored = encoded.right
  // The first caller gets what a replay gets: the stored text, decoded. Also when it could not be stored: the
  // handler produced it (too large: the key is completed with a marker, so it never runs again, and replays fail
  // with StoredResultTooLargeError).
  const answer = replay(valid, stored, "Executed", attempt)
  const bytes = Buffer.byteLength(stored.payload, "utf8")
  if (bytes <= valid.maxStoredBytes) return { _tag: "Store", stored, then: answer }
  return {
    _tag: "Store",
    stored: { outcome: "too_large", payload: JSON.stringify({ bytes, limit: valid.maxStoredBytes }) },
    then: Effect.zipRight(
      Effect.logWarning(
        `Idempotency result of ${bytes} bytes is over maxStoredBytes (${valid.maxStoredBytes}); the caller gets it, repeats fail with StoredResultTooLargeError until the key expires`
      ),
      answer
    )
  }
}
