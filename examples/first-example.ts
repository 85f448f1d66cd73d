/**
 * The README's first example, kept type-checked.
 */
import { Failure, Retry, Timeout } from "@bulwark/resilience"
import * as Effect from "effect/Effect"

const charge = (body: string) =>
  Effect.tryPromise(() => fetch("http://127.0.0.1:8080/charge", { method: "POST", body })).pipe(
    Failure.classify(), // ECONNRESET, ECONNREFUSED… → transient; unknown errors → terminal
    Effect.flatMap((response) =>
      Failure.fromResponse(response, "charge").pipe( // 503 + Retry-After → transient with the hint; 404 → terminal
        Effect.flatMap((failure) => failure._tag === "Some" ? Effect.fail(failure.value) : Effect.succeed(response))
      )
    )
  )

export const program = Effect.gen(function*() {
  const policy = yield* Retry.make({
    name: "payments",
    backoff: Retry.exponential({ base: "200 millis", cap: "5 seconds" }),
    jitter: "full",
    maxAttempts: 5,
    maxElapsed: "20 seconds"
  })
  const perAttempt = yield* Timeout.make({ operation: "charge", limit: "2 seconds" })
  return yield* charge("{}").pipe(Timeout.timeout(perAttempt), Retry.retry(policy))
})
