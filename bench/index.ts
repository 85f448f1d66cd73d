/**
 * Runs every benchmark in one process and prints ops/s with ratios.
 * `npm run bench` runs all; `npm run bench -- retry` runs the named ones.
 *
 * `npm run bench` bundles this file with esbuild and runs plain JavaScript, as
 * a production build would: tsx's keepNames transform would add a
 * `defineProperty` call to every named closure and skew per-call costs. Bulwark
 * and its peers go through the same bundle.
 */
import * as idempotency from "./idempotency.js"
import * as isolation from "./isolation.js"
import * as jobQueue from "./job-queue.js"
import * as loadShedding from "./load-shedding.js"
import * as rateLimiter from "./rate-limiter.js"
import * as retry from "./retry.js"
import * as scaleOut from "./scale-out.js"

const suites: Record<string, { readonly run: () => Promise<unknown> }> = {
  retry,
  isolation,
  "rate-limiter": rateLimiter,
  idempotency,
  "job-queue": jobQueue,
  "scale-out": scaleOut,
  "load-shedding": loadShedding
}

const wanted = process.argv.slice(2)
console.log(`Node ${process.version}, ${process.platform}/${process.arch}`)
for (const [name, suite] of Object.entries(suites)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue
  await suite.run()
}
