import { assert, describe, it, onTestFinished } from "@effect/vitest"
import * as Process from "./support/process.js"

interface Finished {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the demo as `npm run demo` would (tsx, in a child process), its stdout a pipe like in CI. */
const runDemo = async (args: ReadonlyArray<string>, timeoutMs: number): Promise<Finished> => {
  const child = Process.startTs("examples/demo.ts", args)
  onTestFinished(() => child.stop().then(() => undefined))
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs)
  const { code, signal } = await child.exited
  clearTimeout(timer)
  return { code, signal, stdout: child.stdout(), stderr: child.stderr() }
}

describe("npm run demo -- --short", () => {
  it("survives the outage, the duplicates and the poison jobs, and every invariant holds", async () => {
    const run = await runDemo(["--short"], 75_000)
    const output = `exit ${run.code} ${run.signal ?? ""}\n--- stdout\n${run.stdout}\n--- stderr\n${run.stderr}`
    assert.strictEqual(run.code, 0, output)
    // The story was told: the outage began and ended.
    assert.match(run.stdout, /gateway OUTAGE/, output)
    assert.match(run.stdout, /gateway recovered/, output)
    // Not a terminal: the status line is printed as whole lines, every few seconds.
    assert.match(
      run.stdout,
      /req\/s │ .* │ breaker gateway \w+ │ retries \d+ │ pending \d+ │ queue .* │ DLQ \d+/,
      output
    )
    // Each invariant, checked against the gateway's and the service's own records, held.
    assert.match(
      run.stdout,
      /✓ 1\. no double charge: (\d+) gateway charges = \1 distinct charged payment keys, 0/,
      output
    )
    assert.match(
      run.stdout,
      /✓ 2\. every accepted order is charged, pending or dead-lettered: \d+ accepted: .* 0 lost/,
      output
    )
    assert.match(run.stdout, /✓ 3\. the breaker opened during the outage and closed after it: .* now closed/, output)
    assert.match(run.stdout, /✓ 4\. poison jobs are in the DLQ with their envelopes: [1-9]\d* dead letters/, output)
    assert.notInclude(run.stdout, "✗", output)
    assert.match(run.stdout, /All 4 invariants held\./, output)
  }, 80_000)

  it("refuses a flag it cannot use, naming it, with exit code 2", async () => {
    const run = await runDemo(["--duration", "2s"], 30_000)
    assert.strictEqual(run.code, 2, run.stdout + run.stderr)
    assert.match(run.stderr, /--duration: .*outside 6s–1h/)
  }, 30_000)
})
