// A plain-JavaScript ESM program, run with plain `node` from an app that installed the packed
// tarball: retry of transient failures, a circuit breaker and a bulkhead from the root entry.
import { Effect } from "effect"
import { Bulkhead, CircuitBreaker, Failure, Retry } from "@bulwark/resilience"

let calls = 0
const flaky = Effect.suspend(() => {
  calls += 1
  return calls < 3
    ? Effect.fail(new Failure.TransientError({ reason: "Transport", message: "connection reset" }))
    : Effect.succeed(42)
})

const program = Effect.gen(function*() {
  const policy = yield* Retry.make({ name: "inventory", backoff: Retry.exponential({ base: "1 millis" }), maxAttempts: 5 })
  const breaker = yield* CircuitBreaker.make({ name: "inventory", trip: CircuitBreaker.consecutiveFailures(2) })
  const bulkhead = yield* Bulkhead.make({ name: "inventory", maxConcurrent: 2 })
  const stock = yield* flaky.pipe(Retry.retry(policy), Bulkhead.protect(bulkhead), CircuitBreaker.protect(breaker))
  const refused = yield* Effect.fail(new Failure.TransientError({ reason: "Transport", message: "down" })).pipe(
    CircuitBreaker.protect(breaker),
    Effect.flip,
    Effect.repeatN(2)
  )
  return { stock, calls, lastError: refused._tag, breaker: yield* breaker.state }
})

console.log(JSON.stringify(await Effect.runPromise(Effect.scoped(program))))
