/**
 * `bulwark-dashboards`, the bin of @bulwark/dashboard, run as a real OS
 * process (node + tsx on packages/dashboard/src/bin.ts) in a fresh temporary
 * directory: where it writes by default, what its options change in the
 * written files, `--check` and `--help`, bad arguments (exit 2, one line and
 * the usage), and never an ANSI escape. The default output passes promtool's
 * `check rules`, `test rules` and `check config`. Also the options behind the
 * flags, in process: the datasource uid and job name, their validation, and
 * when Build ships the promtool unit tests.
 */
import { Build, Dashboards, Provisioning } from "@bulwark/dashboard"
import { InvalidOptionsError } from "@bulwark/resilience/Failure"
import { assert, describe, it } from "@effect/vitest"
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import * as Process from "../support/process.js"
import { isRecord, readDashboards, variablesOf } from "./support/grafana.js"
import { promtool } from "./support/promtool.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const bin = join(root, "packages/dashboard/src/bin.ts")
const assets = join(root, "packages/dashboard/assets")
const ESC = "\u001b"
const TESTS = "alerts/bulwark.test.yml"

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs the bin in `cwd`, with colours forced on: nothing it prints may carry
 * an escape sequence anyway.
 */
const runBin = async (cwd: string, args: ReadonlyArray<string>): Promise<Run> => {
  const child = Process.startTs(bin, args, { cwd, env: { FORCE_COLOR: "1" } })
  let timer: NodeJS.Timeout | undefined
  const exit = await Promise.race([
    child.exited,
    new Promise<undefined>((resolveTimeout) => {
      timer = setTimeout(() => resolveTimeout(undefined), 30_000)
    })
  ]).finally(() => clearTimeout(timer))
  if (exit === undefined) await child.stop()
  const run = { code: exit?.code ?? null, stdout: child.stdout(), stderr: child.stderr() }
  assert.notInclude(run.stdout, ESC, `stdout of ${args.join(" ")}`)
  assert.notInclude(run.stderr, ESC, `stderr of ${args.join(" ")}`)
  return run
}

/** A fresh directory for `body`, removed afterwards. */
const inTempDir = async <A>(body: (directory: string) => Promise<A>): Promise<A> => {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-dashboards-bin-"))
  try {
    return await body(directory)
  } finally {
    rmSync(directory, { recursive: true, force: true })
  }
}

/** Every file `Build.files(options)` generates, exactly as written under `directory`. */
const assertWritten = (directory: string, options: Build.Options) => {
  for (const file of Build.files(options)) {
    assert.strictEqual(readFileSync(join(directory, file.path), "utf8"), file.content, file.path)
  }
}

const datasourceVariables = (directory: string) =>
  readDashboards(join(directory, "dashboards")).map((dashboard) => {
    const variable = variablesOf(dashboard)[0]
    const current = variable?.["current"]
    return {
      name: variable?.["name"],
      type: variable?.["type"],
      value: isRecord(current) ? current["value"] : undefined
    }
  })

describe("bulwark-dashboards (the bin)", () => {
  it("writes into <cwd>/grafana by default, and says what it wrote and how to run Prometheus and Grafana", () =>
    inTempDir(async (cwd) => {
      const run = await runBin(cwd, [])
      assert.strictEqual(run.code, 0, run.stderr)
      assert.strictEqual(run.stderr, "")
      assert.deepStrictEqual(readdirSync(cwd), ["grafana"])
      assertWritten(join(cwd, "grafana"), {})
      for (const file of Build.files()) assert.include(run.stdout, `wrote ${join("grafana", file.path)}\n`)
      assert.include(run.stdout, "prometheus --config.file=grafana/prometheus.yml")
      assert.include(run.stdout, `promtool test rules grafana/${TESTS}`)
      assert.include(run.stdout, `-v ${join(cwd, "grafana/dashboards")}:/var/lib/grafana/dashboards/bulwark`)
      assert.include(run.stdout, `-v ${join(cwd, "grafana/provisioning")}:/etc/grafana/provisioning`)

      // a second run finds everything up to date
      const again = await runBin(cwd, [])
      assert.strictEqual(again.code, 0, again.stderr)
      assert.include(again.stdout, `grafana is up to date (${Build.files().length} files)`)
      assert.notInclude(again.stdout, "wrote ")
    }))

  it("writes defaults that pass promtool check rules, test rules (the shipped unit tests) and check config", () =>
    inTempDir(async (cwd) => {
      assert.strictEqual((await runBin(cwd, ["--out", "grafana"])).code, 0)
      const grafana = join(cwd, "grafana")
      assert.strictEqual(
        readFileSync(join(grafana, TESTS), "utf8"),
        readFileSync(join(assets, "bulwark.test.yml"), "utf8")
      )

      const check = promtool(["check", "rules", join(grafana, "alerts/bulwark.yml")])
      assert.strictEqual(check.code, 0, check.output)
      assert.include(check.output, "SUCCESS: 11 rules found")
      const test = promtool(["test", "rules", join(grafana, TESTS)])
      assert.strictEqual(test.code, 0, test.output)
      assert.include(test.output, "SUCCESS")
      const config = promtool(["check", "config", join(grafana, "prometheus.yml")])
      assert.strictEqual(config.code, 0, config.output)
      assert.include(config.output, "SUCCESS: 1 rule files found")
    }))

  it("sets the datasource uid, scrape job and targets, Prometheus URL and queue tiers from its options", () =>
    inTempDir(async (cwd) => {
      const run = await runBin(cwd, [
        "--out",
        "ops/grafana",
        "--datasource-uid",
        "prom-main",
        "--job",
        "checkout",
        "--target",
        "api-1:3000",
        "--target=10.0.0.7:9464",
        "--prometheus-url",
        "http://prometheus:9090",
        "--queue-target",
        "payments=2s",
        "--queue-target",
        "emails.transactional=1m30s",
        "--queue-target",
        "*=10m",
        "--backlog-target",
        "payments=10s"
      ])
      assert.strictEqual(run.code, 0, run.stderr)
      const grafana = join(cwd, "ops/grafana")
      // the flags are the library's options, nothing more
      const options: Build.Options = {
        provisioning: {
          datasourceUid: "prom-main",
          jobName: "checkout",
          scrapeTargets: ["api-1:3000", "10.0.0.7:9464"],
          prometheusUrl: "http://prometheus:9090"
        },
        alerts: {
          jobWait: { targets: { payments: "2s", "emails.transactional": "1m30s" }, defaultTarget: "10m" },
          jobBacklog: { targets: { payments: "10s" } }
        }
      }
      assertWritten(grafana, options)
      assert.include(run.stdout, "prometheus --config.file=ops/grafana/prometheus.yml")

      const datasource = readFileSync(join(grafana, "provisioning/datasources/bulwark.yml"), "utf8")
      assert.include(datasource, "uid: prom-main\n")
      assert.include(datasource, "url: http://prometheus:9090\n")
      assert.deepStrictEqual(datasourceVariables(grafana), [
        { name: "datasource", type: "datasource", value: "prom-main" },
        { name: "datasource", type: "datasource", value: "prom-main" },
        { name: "datasource", type: "datasource", value: "prom-main" }
      ])

      const prometheus = readFileSync(join(grafana, "prometheus.yml"), "utf8")
      assert.include(prometheus, "  - job_name: checkout\n")
      assert.include(prometheus, "          - api-1:3000\n          - \"10.0.0.7:9464\"\n")
      const config = promtool(["check", "config", join(grafana, "prometheus.yml")])
      assert.strictEqual(config.code, 0, config.output)

      const rules = readFileSync(join(grafana, "alerts/bulwark.yml"), "utf8")
      assert.include(rules, `queue="payments"`)
      assert.include(rules, `"target", "2s"`)
      assert.include(rules, `"target", "1m30s"`)
      assert.include(rules, `queue!~"payments|emails\\\\.transactional"`)
      assert.match(rules, /> 600,\n\s+"target", "10m"/)
      assert.match(rules, /> 90,\n\s+"target", "1m30s"/)
      assert.include(rules, `bulwark_job_queue_oldest_ready_seconds{queue="payments"}) > 10)`)
      assert.notInclude(rules, "high_priority")
      const check = promtool(["check", "rules", join(grafana, "alerts/bulwark.yml")])
      assert.strictEqual(check.code, 0, check.output)
      // the shipped unit tests are for the default tiers: not written with these
      assert.isFalse(existsSync(join(grafana, TESTS)))
      assert.notInclude(run.stdout, "promtool test rules")
    }))

  it("still takes the folder as its one positional argument", () =>
    inTempDir(async (cwd) => {
      const run = await runBin(cwd, ["legacy-folder"])
      assert.strictEqual(run.code, 0, run.stderr)
      assertWritten(join(cwd, "legacy-folder"), {})
      assert.deepStrictEqual(readdirSync(cwd), ["legacy-folder"])
    }))

  it("--check writes nothing and exits 1 while a file is missing or stale, 0 once the folder is up to date", () =>
    inTempDir(async (cwd) => {
      const missing = await runBin(cwd, ["--check"])
      assert.strictEqual(missing.code, 1)
      assert.deepStrictEqual(readdirSync(cwd), [])
      for (const file of Build.files()) assert.include(missing.stderr, `stale: ${join("grafana", file.path)}\n`)

      assert.strictEqual((await runBin(cwd, [])).code, 0)
      const fresh = await runBin(cwd, ["--check"])
      assert.strictEqual(fresh.code, 0, fresh.stderr)
      assert.include(fresh.stdout, "grafana is up to date")

      writeFileSync(join(cwd, "grafana/dashboards/bulwark-jobs.json"), "{}\n")
      const changed = await runBin(cwd, ["--check", "--out", "grafana"])
      assert.strictEqual(changed.code, 1)
      assert.include(changed.stderr, "stale: grafana/dashboards/bulwark-jobs.json\n")
      assert.notInclude(changed.stderr, "stale: grafana/prometheus.yml")
      assert.strictEqual(readFileSync(join(cwd, "grafana/dashboards/bulwark-jobs.json"), "utf8"), "{}\n")
    }))

  it("--help and -h print the usage on stdout and exit 0, writing nothing", () =>
    inTempDir(async (cwd) => {
      for (const run of await Promise.all([runBin(cwd, ["--help"]), runBin(cwd, ["-h"])])) {
        assert.strictEqual(run.code, 0, run.stderr)
        assert.strictEqual(run.stderr, "")
        assert.match(run.stdout, /^Usage: bulwark-dashboards /)
        for (
          const option of [
            "--out",
            "--datasource-uid",
            "--job",
            "--target",
            "--prometheus-url",
            "--queue-target",
            "--backlog-target"
          ]
        ) {
          assert.include(run.stdout, option)
        }
      }
      assert.deepStrictEqual(readdirSync(cwd), [])
    }))

  it("rejects an unknown option or a bad value with one line and the usage on stderr, exit 2, writing nothing", () =>
    inTempDir(async (cwd) => {
      // one process per case, so a few: src/internal/cli.test.ts checks every message in process
      const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
        [["--bogus"], "unknown option --bogus"],
        [["--queue-target", "payments=5m1h"], "--queue-target payments=5m1h: 5m1h is not a Prometheus duration"],
        [["--job", `${ESC}[31mred`], `--job "\\u001b[31mred": must be`]
      ]
      for (const [args, message] of cases) {
        const run = await runBin(cwd, args)
        const [first, second] = run.stderr.split("\n")
        assert.strictEqual(run.code, 2, `${args.join(" ")}: ${run.stderr}`)
        assert.strictEqual(run.stdout, "", args.join(" "))
        assert.match(first ?? "", /^bulwark-dashboards: /, args.join(" "))
        assert.include(first, message, args.join(" "))
        assert.match(second ?? "", /^Usage: bulwark-dashboards /, args.join(" "))
      }
      assert.deepStrictEqual(readdirSync(cwd), [])
    }))
})

describe("the options behind the flags", () => {
  it("Build ships the promtool unit tests only with the default rules", () => {
    const tests = (options?: Build.Options) => Build.files(options).find((file) => file.path === TESTS)
    const shipped = readFileSync(join(assets, "bulwark.test.yml"), "utf8")
    assert.strictEqual(tests()?.content, shipped)
    // the defaults spelled out are still the defaults
    assert.strictEqual(tests({ alerts: { deadLetterDepth: { threshold: 10 } } })?.content, shipped)
    assert.strictEqual(tests({ provisioning: { jobName: "checkout" } })?.content, shipped)
    assert.isUndefined(tests({ alerts: { deadLetterDepth: { threshold: 0 } } }))
    assert.isUndefined(tests({ alerts: { jobWait: { targets: { payments: "2s" } } } }))
  })

  it("the datasource uid names the provisioned datasource and the dashboards' default datasource", () => {
    assert.include(Provisioning.datasource(), "uid: bulwark-prometheus\n")
    assert.include(Provisioning.datasource({ datasourceUid: "prom-main" }), "uid: prom-main\n")
    for (const dashboard of [Dashboards.overview, Dashboards.jobs, Dashboards.http]) {
      const [variable] = dashboard({ datasourceUid: "prom-main" }).templating?.list ?? []
      assert.strictEqual(variable?.type, "datasource")
      assert.strictEqual(variable?.current?.value, "prom-main")
      assert.strictEqual(dashboard().templating?.list?.[0]?.current?.value, "bulwark-prometheus")
    }
    assert.include(Provisioning.prometheusConfig({ jobName: "checkout" }), "  - job_name: checkout\n")
  })

  it("reject invalid provisioning options with InvalidOptionsError naming the option", () => {
    const cases: ReadonlyArray<readonly [string, Provisioning.Options]> = [
      ["datasourceUid", { datasourceUid: "" }],
      ["datasourceUid", { datasourceUid: "x".repeat(41) }],
      ["datasourceUid", { datasourceUid: "a/b" }],
      ["jobName", { jobName: "" }],
      ["jobName", { jobName: "a\nb" }],
      ["jobName", { jobName: `it's` }],
      ["jobName", { jobName: " padded" }],
      ["scrapeTargets", { scrapeTargets: [] }],
      ["scrapeTargets", { scrapeTargets: ["api:99999"] }],
      ["scrapeTargets", { scrapeTargets: ["api:3000/metrics"] }],
      ["prometheusUrl", { prometheusUrl: "ftp://prometheus" }],
      ["metricsPath", { metricsPath: "metrics" }],
      ["scrapeInterval", { scrapeInterval: "15 seconds" }],
      ["evaluationInterval", { evaluationInterval: "0s" }]
    ]
    for (const [option, options] of cases) {
      assert.throws(() => Provisioning.prometheusConfig(options), InvalidOptionsError, `option "${option}"`)
      assert.throws(() => Build.files({ provisioning: options }), InvalidOptionsError, `option "${option}"`)
    }
    assert.throws(() => Dashboards.jobs({ datasourceUid: "a b" }), InvalidOptionsError, `option "datasourceUid"`)
    assert.doesNotThrow(() =>
      Provisioning.prometheusConfig({ jobName: "checkout api", scrapeTargets: ["[::1]:3000", "api", "api-2:9464"] })
    )
  })
})
