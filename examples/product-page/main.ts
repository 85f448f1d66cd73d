/**
 * The product-page example in one command:
 *
 *   npm run example:product-page
 *
 * Configuration comes from the environment (see `configFromEnv` in App.ts):
 * `RECOMMENDATIONS_URL` (unset: the simulated recommendations service starts
 * in this process), `DATABASE_URL` (unset: an embedded PGlite), `PORT`
 * (default 3100), and the tuning knobs. Prints one line per server it starts,
 * then what to try:
 *
 *   recommendations listening on http://127.0.0.1:41234 (simulated, in process)
 *   product page listening on http://127.0.0.1:3100 (database: embedded PGlite)
 *
 * Stops gracefully on SIGINT / SIGTERM.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { configFromEnv, startProductPage } from "./App.js"
import { startRecommendations } from "./Recommendations.js"

const say = (line: string) => Effect.sync(() => process.stdout.write(`${line}\n`))

const program = Effect.gen(function*() {
  const { recommendationsUrl, ...options } = yield* configFromEnv
  const recommendations = yield* Option.match(recommendationsUrl, {
    onNone: () =>
      Effect.tap(
        startRecommendations(),
        (started) => say(`recommendations listening on ${started.url} (simulated, in process)`)
      ),
    onSome: (url) => Effect.as(say(`recommendations at ${url} (RECOMMENDATIONS_URL)`), { url })
  })
  const page = yield* startProductPage({ ...options, recommendationsUrl: recommendations.url })
  yield* say(
    `product page listening on ${page.url} (database: ${page.embeddedDatabase ? "embedded PGlite" : "DATABASE_URL"})`
  )
  yield* say([
    "",
    "Try:",
    `  curl ${page.url}/products/1                      # recommendations from the service ("source": "primary")`,
    `  curl -X PUT ${recommendations.url}/admin/faults -d '{"outage":true}'`,
    `  curl ${page.url}/products/1                      # still 200: last good recommendations ("source": "cache")`,
    `  curl ${page.url}/products/2                      # never seen: popular products ("source": "default")`,
    `  curl -X PUT ${recommendations.url}/admin/faults -d '{"outage":false}'`,
    `  curl ${page.url}/metrics | grep bulwark_fallback_total`
  ].join("\n"))
  return yield* Effect.never
})

NodeRuntime.runMain(Effect.scoped(program))
