import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import * as ParseResult from "effect/ParseResult"
import * as Random from "effect/Random"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { hash, randomUUID } from "node:crypto"
import * as Failure from "../../Failure.js"
import * as Metric from "../../internal/metric.js"
import * as Options from "../../internal/options.js"
import * as Trace from "../../internal/trace.js"
import * as Metrics from "../../Metrics.js"
import { attributes } from "../../observability/internal/tracingAttributes.js"
import * as Idempotency from "../Idempotency.js"
import * as IdempotencyStore from "../IdempotencyStore.js"
import { MAX_RETRY_AFTER_MS } from "./record.js"

// Idempotency.ts imports this module, so its values (errors) are only touched inside functions.

const component = "Idempotency"
const field = (option: string): Options.Field => ({ component, option })

/** @internal */
export const defaults = {
  lease: Duration.seconds(30),
  ttl: Duration.hours(24),
  storeFailures: "terminal",
  maxStoredBytes: 1_048_576
} as const

/** Polls for an in-flight key start here and double up to {@link MAX_POLL_MS}. */
const FIRST_POLL_MS = 50
const MAX_POLL_MS = 1_000
/** Leases shorter than this would make the heartbeat spin. */
const MIN_LEASE_MS = 10
const MAX_STORED_BYTES = 64 * 1_048_576

// -----------------------------------------------------------------------------
// Validation
// -----------------------------------------------------------------------------

// Control characters (C0 and DEL): invisible in logs, and Postgres text cannot hold NUL.
const hasControl = (value: string): boolean => {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i)
    if (code < 0x20 || code === 0x7f) return true
  }
  return false
}
// Printable ASCII, no leading or trailing space: the scope is a metric label value.
const SCOPE = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/

const text = (value: unknown, min: number, max: number): value is string =>
  typeof value === "string" && value.length >= min && value.length <= max && !hasControl(value)

/** @internal */
export const isValidKey = (key: string): boolean => text(key, 1, 255)

/** @internal */
export const keyHash = (key: string): string => hash("sha256", key, "hex").slice(0, 12)

/** What errors and messages name: the scope and a hash of the key, never the key. */
interface Named {
  readonly scope: string
  readonly keyHash: string
}

interface Valid<A, AI, E, EI> extends Named {
  readonly partition: string
  readonly key: string
  readonly fingerprint: string
  readonly success: Schema.Schema<A, AI>
  readonly failure: Schema.Schema<E, EI>
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly wait: Duration.Duration | undefined
  readonly storeFailures: "terminal" | "all"
  readonly shouldStore: ((exit: Exit.Exit<A, E>) => boolean) | undefined
  readonly maxStoredBytes: number
  readonly transactional: boolean
}

const check = <T>(ok: boolean, option: string, value: T, expected: string): Options.Check<T> =>
  ok ? Either.right(value) : Either.left(Options.invalid(field(option), value, expected))

const refuse = (option: string, value: unknown, expected: string): Options.Check<never> =>
  Either.left(Options.invalid(field(option), value, expected))

/** The options that do not change from request to request of one route (see {@link prepare}). */
type StaticOptions = Pick<
  Idempotency.Options<unknown, unknown, unknown, unknown>,
  "lease" | "ttl" | "waitForInFlight" | "storeFailures" | "maxStoredBytes" | "transactional"
>

interface Statics {
  readonly lease: Duration.Duration
  readonly ttl: Duration.Duration
  readonly wait: Duration.Duration | undefined
  readonly storeFailures: "terminal" | "all"
  readonly maxStoredBytes: number
}

/**
 * The static options, checked once. Two results, because `shouldStore` (checked per call) sits between them in the
 * order `validate` reports the first invalid option in.
 *
 * @internal
 */
export interface Prepared {
  readonly statics: Options.Check<Statics>
  readonly transactional: Options.Check<boolean>
}

const checkStatics = (options: StaticOptions): Options.Check<Statics> => {
  const lease = Options.duration(field("lease"), options.lease ?? defaults.lease, { allowZero: false })
  if (Either.isLeft(lease)) return Either.left(lease.left)
  if (Duration.toMillis(lease.right) < MIN_LEASE_MS) {
    return Either.left(Options.invalid(field("lease"), options.lease, `a duration of at least ${MIN_LEASE_MS} ms`))
  }
  const ttl = Options.duration(field("ttl"), options.ttl ?? defaults.ttl, { allowZero: false })
  if (Either.isLeft(ttl)) return Either.left(ttl.left)
  const wait = Options.optionalDuration(field("waitForInFlight"), options.waitForInFlight)
  if (Either.isLeft(wait)) return Either.left(wait.left)
  const storeFailures = check(
    options.storeFailures === undefined || options.storeFailures === "terminal" || options.storeFailures === "all",
    "storeFailures",
    options.storeFailures ?? defaults.storeFailures,
    `"terminal" or "all"`
  )
  if (Either.isLeft(storeFailures)) return Either.left(storeFailures.left)
  const maxStoredBytes = Options.number(
    field("maxStoredBytes"),
    options.maxStoredBytes ?? defaults.maxStoredBytes,
    { min: 1, max: MAX_STORED_BYTES, integer: true }
  )
  if (Either.isLeft(maxStoredBytes)) return Either.left(maxStoredBytes.left)
  return Either.right({
    lease: lease.right,
    ttl: ttl.right,
    wait: wait.right,
    storeFailures: storeFailures.right,
    maxStoredBytes: maxStoredBytes.right
  })
}

/**
 * Checks the options that are the same on every call (durations, limits, flags) once, for {@link runPrepared}: the
 * HTTP layer builds `run`'s options per request from one route's configuration.
 *
 * @internal
 */
export const prepare = (options: StaticOptions): Prepared => ({
  statics: checkStatics(options),
  transactional: check(
    options.transactional === undefined || typeof options.transactional === "boolean",
    "transactional",
    options.transactional ?? false,
    "a boolean"
  )
})

/** Checks the per-call options, in the same order (and with the same errors) as when nothing was prepared. */
const validateWith = <A, AI, E, EI>(
  prepared: Prepared,
  options: Idempotency.Options<A, AI, E, EI>
): Options.Check<Valid<A, AI, E, EI>> => {
  if (!(typeof options.scope === "string" && SCOPE.test(options.scope))) {
    return refuse(
      "scope",
      options.scope,
      "1 to 128 printable ASCII characters, without leading or trailing spaces"
    )
  }
  const scope = options.scope
  const partition = options.partition ?? ""
  if (!text(partition, 0, 255)) {
    return refuse("partition", partition, "at most 255 characters, without control characters")
  }
  const key = options.key
  if (!isValidKey(key)) return refuse("key", key, "1 to 255 characters, without control characters")
  const fingerprint = options.fingerprint
  if (!text(fingerprint, 1, 512)) {
    return refuse("fingerprint", fingerprint, "1 to 512 characters, without control characters")
  }
  if (Either.isLeft(prepared.statics)) return Either.left(prepared.statics.left)
  const shouldStore = options.shouldStore
  if (!(shouldStore === undefined || typeof shouldStore === "function")) {
    return refuse("shouldStore", shouldStore, "a function")
  }
  if (Either.isLeft(prepared.transactional)) return Either.left(prepared.transactional.left)
  const statics = prepared.statics.right
  // The hash is only needed by errors, messages and log annotations: computed on first use, at most once.
  let hashed: string | undefined
  return Either.right({
    scope,
    partition,
    key,
    get keyHash() {
      if (hashed === undefined) hashed = keyHash(key)
      return hashed
    },
    fingerprint,
    success: options.success,
    failure: options.failure,
    lease: statics.lease,
    ttl: statics.ttl,
    wait: statics.wait,
    storeFailures: statics.storeFailures,
    shouldStore,
    maxStoredBytes: statics.maxStoredBytes,
    transactional: prepared.transactional.right
  })
}

const validate = <A, AI, E, EI>(
  options: Idempotency.Options<A, AI, E, EI>
): Options.Check<Valid<A, AI, E, EI>> => validateWith(prepare(options), options)

// -----------------------------------------------------------------------------
// Metrics
// -----------------------------------------------------------------------------

type Counters = Readonly<Record<Idempotency.MetricResult, () => void>>

/** Scopes are bounded operation names; the cap only guards against a caller putting ids in them. */
const MAX_CACHED_SCOPES = 1_000
const countersByScope = new Map<string, Counters>()

const countersFor = (scope: string): Counters => {
  const cached = countersByScope.get(scope)
  if (cached !== undefined) return cached
  const counter = (result: Idempotency.MetricResult) => Metric.counter(Metrics.idempotencyRequests, { scope, result })
  const made: Counters = {
    executed: counter("executed"),
    replayed: counter("replayed"),
    in_flight_conflict: counter("in_flight_conflict"),
    fingerprint_mismatch: counter("fingerprint_mismatch"),
    missing_key: counter("missing_key"),
    invalid_key: counter("invalid_key")
  }
  if (countersByScope.size < MAX_CACHED_SCOPES) countersByScope.set(scope, made)
  return made
}

/** @internal */
export const recordRequest = (scope: string, result: Idempotency.MetricResult): Effect.Effect<void> =>
  Effect.sync(() => countersFor(scope)[result]())

// -----------------------------------------------------------------------------
// Errors
// -----------------------------------------------------------------------------

/** @internal */
export const conflictMessage = (error: Idempotency.IdempotencyConflictError): string =>
  error.reason === "InFlight"
    ? `A request with idempotency key ${error.keyHash} of "${error.scope}" is still being processed; retry in ${
      Duration.format(error.retryAfter)
    }`
    : `The lease on idempotency key ${error.keyHash} of "${error.scope}" was lost to another execution; its outcome was discarded; retry in ${
      Duration.format(error.retryAfter)
    } to get the other execution's result`

// -----------------------------------------------------------------------------
// Stored results
// -----------------------------------------------------------------------------

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

type Replay<A, E> = Effect.Effect<
  Idempotency.Result<A>,
  E | Idempotency.StoredResultTooLargeError
>

const replay = <A, AI, E, EI>(
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
        new Idempotency.StoredResultTooLargeError({
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
// Running
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

/**
 * Store writes after the handler ran are retried briefly (twice, after 50 then 100 ms): a lost write means the lease
 * must lapse first. `Effect.retry` with `exponential(50 ms) ∩ recurs(2)`, written so that a first attempt that
 * succeeds (nearly all of them) does not pay for setting up a schedule.
 */
const FIRST_WRITE_RETRY = Duration.millis(50)
const laterWriteRetries = Schedule.exponential(Duration.millis(100)).pipe(Schedule.intersect(Schedule.recurs(1)))
const retryWrite = <A, E, R>(write: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.catchAll(write, () => Effect.zipRight(Effect.sleep(FIRST_WRITE_RETRY), Effect.retry(write, laterWriteRetries)))

const leaseLost = (valid: Named) =>
  new Idempotency.IdempotencyConflictError({
    scope: valid.scope,
    keyHash: valid.keyHash,
    reason: "LeaseLost",
    retryAfter: Duration.millis(MAX_RETRY_AFTER_MS)
  })

const execute = <A, AI, E, EI, R>(
  valid: Valid<A, AI, E, EI>,
  store: IdempotencyStore.Service,
  lease: IdempotencyStore.Lease,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R> => {
  const execution: Idempotency.Execution = {
    scope: valid.scope,
    partition: valid.partition,
    key: valid.key,
    attempt: lease.attempt,
    recovery: lease.recovery
  }
  const interval = Duration.millis(Math.max(1, Math.floor(Duration.toMillis(valid.lease) / 3)))

  // Renews the lease every third of it; returns (ending the race below) only when the lease is no longer ours.
  // A failed heartbeat is logged and tried again next time: the lease may still hold.
  const heartbeat: Effect.Effect<void> = Effect.sleep(interval).pipe(
    Effect.zipRight(
      store.heartbeat(lease).pipe(
        Effect.catchAll((error) =>
          Effect.as(Effect.logWarning("Idempotency heartbeat failed; the lease may lapse", error), true)
        )
      )
    ),
    Effect.repeat({ while: (held) => held }),
    Effect.asVoid
  )

  const releaseQuietly = retryWrite(store.release(lease)).pipe(
    Effect.catchAll((error) =>
      Effect.logWarning("Idempotency release failed; the key stays claimed until its lease lapses", error)
    ),
    Effect.asVoid
  )

  // A completion that cannot be written (the store is down) does not take the handler's answer from this caller:
  // the side effects happened, and an error would only invite a retry that repeats them at once. The key stays
  // claimed until its lease lapses; a repeat after that runs again as a recovery. A fenced completion (another
  // execution took the key over) is a conflict: the key's answer is the newer execution's.
  const complete = (result: IdempotencyStore.StoredResult) =>
    retryWrite(store.complete(lease, result)).pipe(
      Effect.catchAll((error) =>
        Effect.as(
          Effect.logWarning(
            "Idempotency completion failed; the caller gets the handler's result, but it was not stored: a repeat runs again (as a recovery) once the lease lapses",
            error
          ),
          true
        )
      ),
      Effect.flatMap((written) => written ? Effect.void : Effect.fail(leaseLost(valid)))
    )

  const settle = (exit: Exit.Exit<A, E>, classifier: Failure.Classifier) => {
    const settlement = plan(valid, exit, classifier, lease.attempt)
    switch (settlement._tag) {
      case "Release":
        return Effect.zipRight(releaseQuietly, settlement.then)
      case "Store":
        return Effect.zipRight(complete(settlement.stored), settlement.then)
    }
  }

  // The handler and the completion of a stored success in one transaction (see `Options.transactional`). Anything
  // else rolls the handler's writes back and is settled after the rollback, as without a transaction. Succeeds with
  // what the caller gets.
  const atomically = (
    transaction: NonNullable<IdempotencyStore.Service["transaction"]>,
    classifier: Failure.Classifier,
    completing: { value: boolean }
  ): Effect.Effect<Settled<A, E>, never, R> => {
    const inside: Effect.Effect<Settled<A, E>, RolledBack<A, E>, R> = Effect.flatMap(
      Effect.exit(Effect.suspend(() => handler(execution))),
      (exit) => {
        const settlement = Exit.isSuccess(exit) ? plan(valid, exit, classifier, lease.attempt) : undefined
        if (settlement === undefined || settlement._tag === "Release") return Effect.fail(new RolledBack(exit))
        completing.value = true
        return Effect.flatMap(
          store.complete(lease, settlement.stored),
          (written): Effect.Effect<Settled<A, E>, RolledBack<A, E>> =>
            written ? Effect.succeed(settlement.then) : Effect.fail(new RolledBack<A, E>(undefined))
        ).pipe(
          // A failed completion is the transaction's failure (it rolls back), like a failed BEGIN or COMMIT.
          Effect.catchAll((error) =>
            error instanceof RolledBack ? Effect.fail(error) : Effect.fail(new RolledBack<A, E>(undefined, error))
          )
        )
      }
    )
    return transaction(inside).pipe(
      Effect.catchAll((failure): Effect.Effect<Settled<A, E>> => {
        if (failure instanceof RolledBack) {
          if (failure.exit !== undefined) return Effect.succeed(settle(failure.exit, classifier))
          if (failure.storeError === undefined) return Effect.succeed(Effect.fail(leaseLost(valid)))
          return Effect.succeed(Effect.zipRight(releaseQuietly, Effect.fail(failure.storeError)))
        }
        // BEGIN or COMMIT failed: the writes are rolled back, or (a connection lost during COMMIT) unknown.
        // Releasing is right either way: it is fenced, so a committed completion stays.
        return Effect.succeed(Effect.zipRight(releaseQuietly, Effect.fail(failure)))
      })
    )
  }

  return Effect.flatMap(
    Failure.CurrentClassifier,
    (classifier) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.gen(function*() {
          const transaction = valid.transactional ? store.transaction : undefined
          // Once a transactional completion is sent, the record's row is locked until the commit: a heartbeat then
          // waits, and answers "not held" after the commit. That must not end the race as a lost lease.
          const completing = { value: false }
          const beating = transaction === undefined
            ? heartbeat
            : Effect.zipRight(heartbeat, Effect.suspend(() => completing.value ? Effect.never : Effect.void))
          const body: Effect.Effect<Outcome<A, E>, never, R> = transaction === undefined
            ? Effect.map(Effect.exit(Effect.suspend(() => handler(execution))), (exit) => ({ _tag: "Exit", exit }))
            : Effect.map(atomically(transaction, classifier, completing), (then) => ({ _tag: "Settled", then }))
          const raced = yield* Effect.exit(restore(Effect.raceFirst(
            Effect.map(body, Option.some),
            Effect.as(beating, Option.none<Outcome<A, E>>())
          )))
          if (Exit.isFailure(raced)) {
            // Interrupted from outside (a client went away): nothing to store, let a retry run it.
            yield* releaseQuietly
            return yield* Effect.failCause(raced.cause)
          }
          if (Option.isNone(raced.value)) return yield* Effect.fail(leaseLost(valid))
          const outcome = raced.value.value
          return yield* outcome._tag === "Exit" ? settle(outcome.exit, classifier) : outcome.then
        })
      )
  ).pipe(
    Effect.annotateLogs({
      "idempotency.scope": valid.scope,
      "idempotency.key_hash": valid.keyHash,
      "idempotency.attempt": lease.attempt
    })
  )
}

/** What the caller gets, once the outcome is settled. */
type Settled<A, E> = Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError>

/** The handler's outcome, to settle; or (transactional) already settled. */
type Outcome<A, E> =
  | { readonly _tag: "Exit"; readonly exit: Exit.Exit<A, E> }
  | { readonly _tag: "Settled"; readonly then: Settled<A, E> }

/**
 * A transactional body that rolled back: with the handler's outcome to settle; or without, because the completion
 * was fenced (the lease was lost) or failed (`storeError`).
 */
class RolledBack<A, E> {
  constructor(
    readonly exit: Exit.Exit<A, E> | undefined,
    readonly storeError?: IdempotencyStore.IdempotencyStoreError
  ) {}
}

type Settlement<A, E> =
  | { readonly _tag: "Release"; readonly then: Effect.Effect<Idempotency.Result<A>, E> }
  | {
    readonly _tag: "Store"
    readonly stored: IdempotencyStore.StoredResult
    readonly then: Effect.Effect<Idempotency.Result<A>, E | Idempotency.StoredResultTooLargeError>
  }

/** What an outcome leaves behind: a release, or a stored result, and what the caller gets after writing it. */
const plan = <A, AI, E, EI>(
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

/**
 * While another execution holds a live lease, a waiting request only reads (`lookup`, read-only in every store): a
 * claim is only read-only where the store makes it so (PostgreSQL's answers a held key from a read, but an
 * `INSERT … ON CONFLICT DO UPDATE` alone would lock the row even when its condition is false), and many waiters
 * polling must not queue on a lock. A completed record read this way is replayed as is (completed records are
 * immutable until they expire); anything else goes back to `claim`, which decides atomically.
 */
const afterWaiting = (
  info: Option.Option<IdempotencyStore.RecordInfo>,
  fingerprint: string
): Option.Option<IdempotencyStore.ClaimResult> => {
  if (Option.isNone(info) || info.value.fingerprint !== fingerprint) return Option.none()
  const record = info.value
  if (record.state === "completed" && Option.isSome(record.result)) {
    return Option.some({
      _tag: "Completed",
      record: { ...record.result.value, fingerprint, attempt: record.attempt, expiresIn: record.expiresIn }
    })
  }
  if (record.state !== "in_progress") return Option.none()
  return Option.flatMap(record.leaseExpiresIn, (left) => {
    const ms = Duration.toMillis(left)
    return ms > 0
      ? Option.some({
        _tag: "InProgress",
        retryAfter: Duration.millis(Math.max(1, Math.min(MAX_RETRY_AFTER_MS, Math.ceil(ms))))
      })
      : Option.none()
  })
}

/**
 * The result on the current span (the caller's, e.g. an HTTP server span, or the idempotency span when tracing is
 * on): one fiber read when there is no span, small beside the store's round trip.
 */
const annotate = (scope: string, result: Idempotency.MetricResult): Effect.Effect<void> =>
  Trace.annotateCurrentSpan({ [attributes.idempotencyScope]: scope, [attributes.idempotencyResult]: result })

const runValid = <A, AI, E, EI, R>(
  valid: Valid<A, AI, E, EI>,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore> =>
  Effect.suspend(() => {
    const body = runUntraced(valid, handler)
    // A span of its own only when Tracing.layer switched the primitives' spans on.
    return Trace.tracing()
      ? Effect.withSpan(body, `bulwark.idempotency ${valid.scope}`, {
        captureStackTrace: false,
        attributes: { [attributes.idempotencyScope]: valid.scope }
      })
      : body
  })

const runUntraced = <A, AI, E, EI, R>(
  valid: Valid<A, AI, E, EI>,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore> =>
  Effect.gen(function*() {
    const store = yield* IdempotencyStore.IdempotencyStore
    const counters = countersFor(valid.scope)
    const claim = Effect.suspend(() =>
      store.claim({
        scope: valid.scope,
        partition: valid.partition,
        key: valid.key,
        fingerprint: valid.fingerprint,
        owner: randomUUID(),
        lease: valid.lease,
        ttl: valid.ttl
      })
    )
    const deadline = valid.wait === undefined
      ? undefined
      : (yield* Effect.clockWith((clock) => clock.currentTimeMillis)) + Duration.toMillis(valid.wait)
    let poll = FIRST_POLL_MS
    let claimed = yield* claim
    while (true) {
      switch (claimed._tag) {
        case "Claimed": {
          counters.executed()
          yield* annotate(valid.scope, "executed")
          return yield* execute(valid, store, claimed.lease, handler)
        }
        case "Completed": {
          counters.replayed()
          yield* annotate(valid.scope, "replayed")
          return yield* replay(valid, claimed.record, "Replayed", claimed.record.attempt)
        }
        case "Mismatch": {
          counters.fingerprint_mismatch()
          yield* annotate(valid.scope, "fingerprint_mismatch")
          return yield* Effect.fail(
            new Idempotency.IdempotencyMismatchError({ scope: valid.scope, keyHash: valid.keyHash })
          )
        }
        case "InProgress": {
          const now = yield* Effect.clockWith((clock) => clock.currentTimeMillis)
          if (deadline === undefined || now >= deadline) {
            counters.in_flight_conflict()
            yield* annotate(valid.scope, "in_flight_conflict")
            return yield* Effect.fail(
              new Idempotency.IdempotencyConflictError({
                scope: valid.scope,
                keyHash: valid.keyHash,
                reason: "InFlight",
                retryAfter: claimed.retryAfter
              })
            )
          }
          // Backoff with jitter (half to all of the step), so that many waiters do not poll in lockstep.
          const step = Math.min(poll, Duration.toMillis(claimed.retryAfter), deadline - now)
          const jittered = step * (0.5 + 0.5 * (yield* Random.next))
          poll = Math.min(poll * 2, MAX_POLL_MS)
          yield* Effect.sleep(Duration.millis(Math.max(1, Math.round(jittered))))
          const read = afterWaiting(yield* store.lookup(valid), valid.fingerprint)
          claimed = Option.isSome(read) ? read.value : yield* claim
        }
      }
    }
  })

type RunDataLast = <A, AI, E, EI>(
  options: Idempotency.Options<A, AI, E, EI>
) => <R>(
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
) => Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore>

type RunDataFirst = <A, AI, E, EI, R>(
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>,
  options: Idempotency.Options<A, AI, E, EI>
) => Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore>

/** @internal */
export const run = dual<RunDataLast, RunDataFirst>(
  (args) => typeof args[0] === "function",
  (handler, options) => Effect.flatMap(validate(options), (valid) => runValid(valid, handler))
)

/**
 * `run`, with the static options checked beforehand by {@link prepare} (those in `options` are then not read): the
 * same errors, in the same order, as `run` with the options `prepared` was made from.
 *
 * @internal
 */
export const runPrepared = <A, AI, E, EI, R>(
  prepared: Prepared,
  options: Idempotency.Options<A, AI, E, EI>,
  handler: (execution: Idempotency.Execution) => Effect.Effect<A, E, R>
): Effect.Effect<Idempotency.Result<A>, E | Idempotency.RunError, R | IdempotencyStore.IdempotencyStore> =>
  Effect.flatMap(validateWith(prepared, options), (valid) => runValid(valid, handler))
