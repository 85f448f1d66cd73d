/**
 * The command line of `bulwark-dashboards` in process, for what would take a
 * process per case: every message for a bad argument, the folder argument,
 * and how flags become options. test/observability/dashboards-bin.test.ts
 * runs the real bin.
 */
import { assert, describe, it } from "@effect/vitest"
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Build from "./build.js"
import * as Cli from "./cli.js"

interface Result {
  readonly code: number
  readonly stdout: ReadonlyArray<string>
  readonly stderr: ReadonlyArray<string>
}

const inTempDir = <A>(body: (cwd: string) => A): A => {
  const cwd = mkdtempSync(join(tmpdir(), "bulwark-dashboards-cli-"))
  try {
    return body(cwd)
  } finally {
    rmSync(cwd, { recursive: true, force: true })
  }
}

const run = (cwd: string, argv: ReadonlyArray<string>): Result => {
  const stdout: Array<string> = []
  const stderr: Array<string> = []
  const code = Cli.run(argv, { cwd, stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) })
  for (const line of [...stdout, ...stderr]) assert.notInclude(line, "\u001b", line)
  return { code, stdout, stderr }
}

describe("bulwark-dashboards command line", () => {
  it("reports each bad argument on one line, then the usage, with exit status 2 and nothing written", () =>
    inTempDir((cwd) => {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["--bogus"], "unknown option --bogus"],
        [["--bogus=1"], "unknown option --bogus"],
        [["-x"], "unknown option -x"],
        [["--queue-target", "payments=soon"], "--queue-target payments=soon: soon is not a Prometheus duration"],
        [["--queue-target", "payments=5m1h"], "5m1h is not a Prometheus duration"],
        [["--queue-target", "payments=1.5m"], "1.5m is not a Prometheus duration"],
        [["--queue-target", "payments=0s"], "0s is not a Prometheus duration above zero"],
        [["--queue-target", "payments="], `"" is not a Prometheus duration`],
        [["--queue-target", "payments"], "expected <queue>=<duration>, such as payments=30s"],
        [["--queue-target", "bad queue=1m"], "the queue name must be 1 to 128 characters"],
        [["--queue-target", "=1m"], "the queue name must be"],
        [["--queue-target", "a=1m", "--queue-target", "a=2m"], "queue a is given twice"],
        [["--queue-target", "*=1m", "--queue-target", "*=2m"], `queue * is given twice`],
        [["--backlog-target", "payments=soon"], "--backlog-target payments=soon: soon is not a Prometheus duration"],
        [["--backlog-target", "a=1m", "--backlog-target", "a=2m"], "--backlog-target a=2m: queue a is given twice"],
        [["--job", `a"b`], `--job "a\\"b": must be 1 to 128 printable characters`],
        [["--job", "a\nb"], `--job "a\\nb": must be`],
        [["--job="], "--job needs a value"],
        [["--datasource-uid", "has space"], `--datasource-uid "has space": must be a Grafana uid`],
        [["--datasource-uid", "x".repeat(41)], "--datasource-uid xxxx"],
        [["--target", "http://api:3000"], "--target http://api:3000: must be a target such as localhost:3000"],
        [["--target", "api:70000"], "--target api:70000: must be a target"],
        [["--prometheus-url", "localhost:9090"], "--prometheus-url localhost:9090: must be an http:// or https:// URL"],
        [["--out"], "--out needs a value"],
        [["--out", "--check"], "--out needs a value"],
        [["--target"], "--target needs a value"],
        [["--job", "a", "--job", "b"], "--job is given twice"],
        [["--out", "a", "--out=b"], "--out is given twice"],
        [["--check=yes"], "--check takes no value"],
        [["one", "two"], "unexpected argument two"],
        [["one", "--out", "two"], "the folder is given twice: one and --out two"],
        [["--job", "\u001b[31mred"], `--job "\\u001b[31mred": must be`]
      ]
      for (const [argv, message] of cases) {
        const result = run(cwd, argv)
        const label = JSON.stringify(argv)
        assert.strictEqual(result.code, 2, label)
        assert.deepStrictEqual(result.stdout, [], label)
        assert.match(result.stderr[0] ?? "", /^bulwark-dashboards: /, label)
        assert.include(result.stderr[0], message, label)
        assert.deepStrictEqual(result.stderr.slice(1), Cli.usage().split("\n"), label)
      }
      assert.deepStrictEqual(readdirSync(cwd), [])
    }))

  it("prints the usage for --help and -h, even next to other arguments", () =>
    inTempDir((cwd) => {
      for (const argv of [["--help"], ["-h"], ["--job", "x", "-h"]]) {
        const result = run(cwd, argv)
        assert.strictEqual(result.code, 0)
        assert.deepStrictEqual(result.stdout, Cli.usage().split("\n"))
        assert.deepStrictEqual(result.stderr, [])
      }
      assert.deepStrictEqual(readdirSync(cwd), [])
    }))

  it("writes ./grafana by default, the folder of --out, =-inline values, or the one positional folder", () =>
    inTempDir((cwd) => {
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [[], "grafana"],
        [["--out", "a/b"], "a/b"],
        [["--out=-dash"], "-dash"],
        [["legacy"], "legacy"],
        [["--", "-after-terminator"], "-after-terminator"]
      ]
      for (const [argv, folder] of cases) {
        const result = run(cwd, argv)
        assert.strictEqual(result.code, 0, result.stderr.join("\n"))
        assert.include(result.stdout, `wrote ${join(folder, "prometheus.yml")}`)
        assert.strictEqual(
          readFileSync(join(cwd, folder, "prometheus.yml"), "utf8"),
          Build.files().find((file) => file.path === "prometheus.yml")?.content
        )
      }
      // an absolute folder outside the working directory is shown as it is
      inTempDir((elsewhere) => {
        const result = run(cwd, ["--out", elsewhere])
        assert.strictEqual(result.code, 0)
        assert.include(result.stdout, `wrote ${join(elsewhere, "prometheus.yml")}`)
      })
    }))

  it("turns named --queue-target values into the tiers and *=<duration> into every other queue's target", () =>
    inTempDir((cwd) => {
      const rules = (argv: ReadonlyArray<string>) => {
        assert.strictEqual(run(cwd, ["--out", "out", ...argv]).code, 0)
        return readFileSync(join(cwd, "out/alerts/bulwark.yml"), "utf8")
      }
      const only = rules(["--queue-target", "*=2m"])
      // the default tiers stay; the other queues get 2m
      assert.include(only, `queue="high_priority"`)
      assert.match(only, /> 120,\n\s+"target", "2m"/)
      // --backlog-target names the tiers of the backlog rule the same way
      const named = rules(["--queue-target", "reports/nightly=1h", "--backlog-target", "reports/nightly=2h"])
      assert.notInclude(named, "high_priority")
      assert.include(named, `queue="reports/nightly"`)
      assert.match(named, /> 300,\n\s+"target", "5m"/)
      assert.match(named, /> 7200\)\n\s+unless on \(queue\)[^\n]+\n\s+"target", "2h"/)
      const others = rules(["--backlog-target", "*=1h"])
      assert.include(others, `bulwark_job_queue_oldest_ready_seconds{queue!~"high_priority|default"}`)
    }))

  it("--check compares the folder with what the options generate", () =>
    inTempDir((cwd) => {
      assert.strictEqual(run(cwd, ["--out", "g"]).code, 0)
      assert.strictEqual(run(cwd, ["--out", "g", "--check"]).code, 0)
      const otherJob = run(cwd, ["--out", "g", "--check", "--job", "checkout"])
      assert.strictEqual(otherJob.code, 1)
      assert.deepStrictEqual(otherJob.stderr.slice(0, -1), [`stale: ${join("g", "prometheus.yml")}`])
      assert.include(readFileSync(join(cwd, "g/prometheus.yml"), "utf8"), "job_name: bulwark")
      const tiers = run(cwd, ["--out", "g", "--check", "--queue-target", "payments=2s"])
      assert.strictEqual(tiers.code, 1)
      // other rules; the unit tests are not expected, so their presence is not "stale"
      assert.deepStrictEqual(tiers.stderr.slice(0, -1), [`stale: ${join("g", "alerts/bulwark.yml")}`])
    }))

  it("says when a previous run's unit tests no longer match the rules", () =>
    inTempDir((cwd) => {
      assert.strictEqual(run(cwd, []).code, 0)
      const custom = run(cwd, ["--queue-target", "payments=2s"])
      assert.strictEqual(custom.code, 0)
      assert.isTrue(
        custom.stdout.some((line) => line.startsWith("Note: grafana/alerts/bulwark.test.yml tests the default"))
      )
      assert.isFalse(custom.stdout.some((line) => line.includes("promtool test rules")))
    }))

  it("fails with exit status 1 and one line when the folder cannot be written", () =>
    inTempDir((cwd) => {
      // a file where the folder should be
      assert.strictEqual(run(cwd, ["--out", "x"]).code, 0)
      const result = run(cwd, ["--out", "x/prometheus.yml"])
      assert.strictEqual(result.code, 1)
      assert.strictEqual(result.stderr.length, 1)
      assert.match(result.stderr[0] ?? "", /^bulwark-dashboards: cannot write x\/prometheus\.yml: /)
    }))
})
