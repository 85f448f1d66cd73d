import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import { dual } from "effect/Function"
import * as Inspectable from "effect/Inspectable"
import * as Option from "effect/Option"
import type {
  Classifier,
  ClassifierOverrides,
  HeadersInput,
  Lifted,
  LiftOptions,
  Rejection,
  ResponseLike,
  Terminal,
  Transient,
  Verdict
} from "../Failure.js"
import { RejectionTypeId, TerminalError, TerminalTypeId, TransientError, TransientTypeId } from "./failureErrors.js"
import { parseRetryAfter } from "./retryAfter.js"

const hasProperty = <K extends PropertyKey>(u: unknown, key: K): u is { readonly [P in K]: unknown } =>
  typeof u === "object" && u !== null && key in u

/** @internal */
export const isTransient = (u: unknown): u is Transient => hasProperty(u, TransientTypeId)

/** @internal */
export const isTerminal = (u: unknown): u is Terminal => hasProperty(u, TerminalTypeId)

/** @internal */
export const isRejection = (u: unknown): u is Rejection => hasProperty(u, RejectionTypeId)

/** @internal */
export const retryAfterOf = (u: unknown): Option.Option<Duration.Duration> =>
  hasProperty(u, "retryAfter") && Duration.isDuration(u.retryAfter) ? Option.some(u.retryAfter) : Option.none()

const verdictMap = (entries: Readonly<Record<string | number, Verdict>>): Array<[string, Verdict]> =>
  Object.entries(entries)

/** @internal */
export const defaultClassifier: Classifier = {
  statuses: new Map<number, Verdict>([
    [408, "transient"],
    [429, "transient"],
    [500, "transient"],
    [502, "transient"],
    [503, "transient"],
    [504, "transient"]
  ]),
  otherClientErrors: "terminal",
  otherServerErrors: "terminal",
  tags: new Map<string, Verdict>([
    ["TimeoutException", "transient"],
    ["RequestError.Transport", "transient"],
    ["RequestError.Encode", "terminal"],
    ["RequestError.InvalidUrl", "terminal"]
  ]),
  codes: new Map<string, Verdict>([
    ["ECONNRESET", "transient"],
    ["ECONNREFUSED", "transient"],
    ["ECONNABORTED", "transient"],
    ["ETIMEDOUT", "transient"],
    ["EPIPE", "transient"],
    ["EAI_AGAIN", "transient"],
    ["EHOSTUNREACH", "transient"],
    ["ENETUNREACH", "transient"],
    ["UND_ERR_SOCKET", "transient"],
    ["UND_ERR_CONNECT_TIMEOUT", "transient"],
    ["40001", "transient"],
    ["40P01", "transient"],
    ["57P01", "transient"],
    ["08000", "transient"],
    ["08003", "transient"],
    ["08006", "transient"]
  ]),
  maxRetryAfter: Duration.seconds(60)
}

/**
 * The classifier in use. Defaults to `defaultClassifier`; provide another
 * with `withClassifier` or `Effect.provideService(CurrentClassifier, c)`.
 *
 * @since 0.1.0
 * @category Classifier
 */
export class CurrentClassifier extends Context.Reference<CurrentClassifier>()(
  "@bulwark/resilience/Failure/CurrentClassifier",
  { defaultValue: (): Classifier => defaultClassifier }
) {}

/** @internal */
export const extend = dual(2, (self: Classifier, overrides: ClassifierOverrides): Classifier => ({
  statuses: new Map([
    ...self.statuses,
    ...verdictMap(overrides.statuses ?? {}).map(([status, verdict]): [number, Verdict] => [Number(status), verdict])
  ]),
  otherClientErrors: overrides.otherClientErrors ?? self.otherClientErrors,
  otherServerErrors: overrides.otherServerErrors ?? self.otherServerErrors,
  tags: new Map([...self.tags, ...verdictMap(overrides.tags ?? {})]),
  codes: new Map([...self.codes, ...verdictMap(overrides.codes ?? {})]),
  maxRetryAfter: overrides.maxRetryAfter === undefined ? self.maxRetryAfter : Duration.decode(overrides.maxRetryAfter)
}))

/** @internal */
export const withClassifier = dual(
  2,
  <A, E, R>(self: Effect.Effect<A, E, R>, classifier: Classifier): Effect.Effect<A, E, R> =>
    Effect.provideService(self, CurrentClassifier, classifier)
)

/** @internal */
export const classifyStatus = (status: number, classifier: Classifier): Verdict | "success" => {
  const listed = classifier.statuses.get(status)
  if (listed !== undefined) return listed
  if (status < 400) return "success"
  return status < 500 ? classifier.otherClientErrors : classifier.otherServerErrors
}

/** @internal */
export const classifyError = (error: unknown, classifier: Classifier): Option.Option<Verdict> => {
  if (isTransient(error)) return Option.some("transient")
  if (isTerminal(error)) return Option.some("terminal")
  if (hasProperty(error, "_tag") && typeof error._tag === "string") {
    if (hasProperty(error, "reason") && typeof error.reason === "string") {
      const refined = classifier.tags.get(`${error._tag}.${error.reason}`)
      if (refined !== undefined) return Option.some(refined)
    }
    const byTag = classifier.tags.get(error._tag)
    if (byTag !== undefined) return Option.some(byTag)
  }
  if (hasProperty(error, "code") && typeof error.code === "string") {
    const byCode = classifier.codes.get(error.code)
    if (byCode !== undefined) return Option.some(byCode)
  }
  return Option.none()
}

const headerValue = (headers: HeadersInput, name: string): string | undefined => {
  if ("get" in headers && typeof headers.get === "function") return headers.get(name) ?? undefined
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue
    if (typeof value === "string") return value
    if (Array.isArray(value) && typeof value[0] === "string") return value[0]
  }
  return undefined
}

/** @internal */
export const classifyResponse = (
  response: ResponseLike,
  options: { readonly classifier: Classifier; readonly now: number; readonly operation?: string }
): Option.Option<TransientError<never> | TerminalError<never>> => {
  const verdict = classifyStatus(response.status, options.classifier)
  if (verdict === "success") return Option.none()
  const message = `${options.operation ?? "request"} answered HTTP ${response.status}`
  if (verdict === "terminal") {
    return Option.some(new TerminalError({ reason: "HttpStatus", message, status: response.status }))
  }
  const header = response.headers === undefined ? undefined : headerValue(response.headers, "retry-after")
  const hint = header === undefined
    ? Option.none()
    : parseRetryAfter(header, { now: options.now, max: options.classifier.maxRetryAfter })
  return Option.some(
    Option.match(hint, {
      onNone: () => new TransientError({ reason: "HttpStatus", message, status: response.status }),
      onSome: (retryAfter) => new TransientError({ reason: "HttpStatus", message, status: response.status, retryAfter })
    })
  )
}

/** @internal */
export const fromResponse = (
  response: ResponseLike,
  operation?: string
): Effect.Effect<Option.Option<TransientError<never> | TerminalError<never>>> =>
  Effect.flatMap(
    CurrentClassifier,
    (classifier) =>
      Effect.clockWith((clock) =>
        Effect.sync(() =>
          classifyResponse(response, {
            classifier,
            now: clock.unsafeCurrentTimeMillis(),
            ...(operation === undefined ? {} : { operation })
          })
        )
      )
  )

const describe = (error: unknown): string => {
  if (hasProperty(error, "message") && typeof error.message === "string" && error.message.length > 0) {
    return error.message
  }
  if (hasProperty(error, "_tag") && typeof error._tag === "string") return error._tag
  return Inspectable.toStringUnknown(error, undefined)
}

const liftOne = <E>(error: E, verdict: Verdict, options: LiftOptions<E> | undefined) => {
  const message = options?.message?.(error) ?? describe(error)
  if (verdict === "terminal") return new TerminalError({ reason: "Lifted", message, cause: error })
  const retryAfter = options?.retryAfter?.(error)
  return retryAfter === undefined
    ? new TransientError({ reason: "Lifted", message, cause: error })
    : new TransientError({ reason: "Lifted", message, cause: error, retryAfter })
}

const inModel = <E>(error: E): error is Extract<E, Transient | Terminal> => isTransient(error) || isTerminal(error)

const outsideModel = <E>(error: E): error is Exclude<E, Transient | Terminal> => !inModel(error)

const liftWith = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  verdict: (error: Exclude<E, Transient | Terminal>) => Verdict,
  options?: LiftOptions<Exclude<E, Transient | Terminal>>
): Effect.Effect<A, Lifted<E>, R> =>
  Effect.catchAll(self, (error): Effect.Effect<never, Lifted<E>> => {
    if (outsideModel(error)) return Effect.fail(liftOne(error, verdict(error), options))
    if (inModel(error)) return Effect.fail(error)
    return Effect.die(error)
  })

/** @internal */
export const lift = dual((args) => Effect.isEffect(args[0]), liftWith)

/** @internal */
export const classify = <E>(
  options?: LiftOptions<Exclude<E, Transient | Terminal>> & { readonly unknown?: Verdict }
) =>
<A, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, Lifted<E>, R> =>
  Effect.flatMap(CurrentClassifier, (classifier) =>
    liftWith(
      self,
      (error: Exclude<E, Transient | Terminal>) =>
        Option.getOrElse(classifyError(error, classifier), () => options?.unknown ?? "terminal"),
      options
    ))
