/**
 * Runs every benchmark in one process and prints ops/s with ratios.
 * `npm run bench` runs all; `npm run bench -- retry` runs the named ones.
 */
import * as retry from "./retry.js"

const suites: Record<string, { readonly run: () => Promise<unknown> }> = { retry }

const wanted = process.argv.slice(2)
console.log(`Node ${process.version}, ${process.platform}/${process.arch}`)
for (const [name, suite] of Object.entries(suites)) {
  if (wanted.length > 0 && !wanted.includes(name)) continue
  await suite.run()
}
