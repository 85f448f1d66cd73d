/**
 * The `bulwark-dashboards` command line: arguments to `Build` options, then
 * write (or check) the folder and say what happened. Plain text only, one
 * line per message; the process wiring is in `bin.ts`.
 */
import * as Failure from "@bulwark/resilience/Failure"
import { existsSync, readFileSync } from "node:fs"
import { isAbsolute, join, relative, resolve } from "node:path"
import { parseArgs } from "node:util"
import type * as AlertRules from "../AlertRules.js"
import type * as Build from "../Build.js"
import type * as Provisioning from "../Provisioning.js"
import * as AlertRulesInternal from "./alertRules.js"
import * as BuildInternal from "./build.js"
import * as ProvisioningInternal from "./provisioning.js"
import * as Validate from "./validate.js"

const NAME = "bulwark-dashboards"

/** Exit statuses. */
const OK = 0
const FAILED = 1
const USAGE = 2

/**
 * Where the command runs: its working directory and its two output streams,
 * one line per call.
 *
 * @internal
 */
export interface Io {
  readonly cwd: string
  readonly stdout: (line: string) => void
  readonly stderr: (line: string) => void
}

const tiersOf = (targets: Readonly<Record<string, string>>) =>
  Object.entries(targets).map(([queue, target]) => `${queue}=${target}`).join(", ")
const defaultTiers = tiersOf(AlertRulesInternal.defaults.jobWait.targets)
const backlogTiers = tiersOf(AlertRulesInternal.defaults.jobBacklog.targets)
const waitQuantile = `p${Math.round(AlertRulesInternal.defaults.jobWait.quantile * 100)}`
const defaults = { ...ProvisioningInternal.defaults, otherQueues: AlertRulesInternal.defaults.jobWait.defaultTarget }

/** @internal */
export const usage = (): string =>
  `Usage: ${NAME} [--out <dir>] [options]

Writes Bulwark's Grafana dashboards, Prometheus alert rules (with their promtool
unit tests when the thresholds are the defaults), Grafana provisioning files and
a prometheus.yml into <dir>.

Options:
  --out <dir>                    the folder to write (default: ./grafana, in the
                                 current directory); "${NAME} <dir>" works too
  --datasource-uid <uid>         uid of the provisioned Prometheus datasource, the one
                                 the dashboards' "Data source" variable starts on
                                 (default: ${defaults.datasourceUid})
  --job <name>                   job_name of prometheus.yml's scrape config
                                 (default: ${defaults.jobName})
  --target <host:port>           an application instance serving ${defaults.metricsPath}; repeat
                                 for several (default: ${defaults.scrapeTargets.join(", ")})
  --prometheus-url <url>         Prometheus as Grafana's server reaches it
                                 (default: ${defaults.prometheusUrl})
  --queue-target <queue>=<dur>   the ${waitQuantile} wait target of a queue (tier) for the
                                 BulwarkJobWaitAboveTarget alert, a Prometheus
                                 duration (30s, 5m, 1h30m); repeat for several.
                                 Named queues replace the default tiers
                                 ${defaultTiers};
                                 *=<dur> sets every other queue's (default: ${defaults.otherQueues})
  --backlog-target <queue>=<dur> the start-within target of a queue (tier) for the
                                 BulwarkJobBacklogAboveTarget alert (its oldest ready
                                 job waits longer); repeat for several. Named queues
                                 replace the default tiers ${backlogTiers};
                                 *=<dur> sets every other queue's (default: none)
  --check                        write nothing; exit 1 when a file is missing or stale
  -h, --help                     print this help

Exit status: 0 done, 1 stale (--check) or not written, 2 bad arguments.`

/** Control characters (ESC above all) never reach the terminal: they are shown escaped. */
const printable = (text: string): string =>
  // eslint-disable-next-line no-control-regex
  text.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)

/** A value as the user typed it when it is plain, else JSON-quoted. */
const show = (value: unknown): string =>
  typeof value === "string" && /^[\x21-\x7e]+$/.test(value) && !/["'`\\]/.test(value)
    ? value
    : JSON.stringify(value) ?? String(value)

/** A path for a POSIX shell: bare when it is plain, else single-quoted. */
const shellQuote = (path: string): string =>
  /^[A-Za-z0-9_./:=@%+-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`

/** Bad arguments: reported on one line, with the usage, exit status 2. */
class UsageError extends Error {}

interface Parsed {
  readonly help: boolean
  readonly check: boolean
  readonly out: string | undefined
  readonly options: Build.Options
}

const OPTIONS = {
  out: { type: "string" },
  "datasource-uid": { type: "string" },
  job: { type: "string" },
  target: { type: "string", multiple: true },
  "prometheus-url": { type: "string" },
  "queue-target": { type: "string", multiple: true },
  "backlog-target": { type: "string", multiple: true },
  check: { type: "boolean" },
  help: { type: "boolean", short: "h" }
} as const

type OptionName = keyof typeof OPTIONS

const isOptionName = (name: string): name is OptionName => Object.hasOwn(OPTIONS, name)

const QUEUE = /^[A-Za-z0-9_.:/-]{1,128}$/

/**
 * `--queue-target` and `--backlog-target` values: named queues replace the default tiers, `*` sets the other
 * queues' target.
 */
const tierTargets = (
  flag: string,
  values: ReadonlyArray<string>
): { readonly targets?: Record<string, string>; readonly defaultTarget?: string } => {
  const targets: Record<string, string> = {}
  let defaultTarget: string | undefined
  for (const value of values) {
    const equals = value.indexOf("=")
    if (equals < 0) {
      throw new UsageError(`${flag} ${show(value)}: expected <queue>=<duration>, such as payments=30s`)
    }
    const queue = value.slice(0, equals)
    const target = value.slice(equals + 1)
    if (queue !== "*" && !QUEUE.test(queue)) {
      throw new UsageError(
        `${flag} ${show(value)}: the queue name must be 1 to 128 characters of A-Z a-z 0-9 _ . : / -`
      )
    }
    if (!Validate.isDuration(target) || Validate.seconds(target) <= 0) {
      throw new UsageError(
        `${flag} ${show(value)}: ${show(target)} is not ${Validate.POSITIVE_DURATION_EXPECTED}`
      )
    }
    if (queue === "*" ? defaultTarget !== undefined : Object.hasOwn(targets, queue)) {
      throw new UsageError(`${flag} ${show(value)}: queue ${show(queue)} is given twice`)
    }
    if (queue === "*") defaultTarget = target
    else targets[queue] = target
  }
  return {
    ...(Object.keys(targets).length > 0 ? { targets } : {}),
    ...(defaultTarget === undefined ? {} : { defaultTarget })
  }
}

const parse = (argv: ReadonlyArray<string>): Parsed => {
  const { tokens } = parseArgs({
    args: [...argv],
    options: OPTIONS,
    strict: false,
    allowPositionals: true,
    tokens: true
  })
  const single = new Map<OptionName, string>()
  const repeated = {
    target: new Array<string>(),
    "queue-target": new Array<string>(),
    "backlog-target": new Array<string>()
  }
  const positionals: Array<string> = []
  let help = false
  let check = false
  for (const token of tokens) {
    if (token.kind === "option-terminator") continue
    if (token.kind === "positional") {
      positionals.push(token.value)
      continue
    }
    const name = token.name
    if (!isOptionName(name)) throw new UsageError(`unknown option ${show(token.rawName)}`)
    if (name === "help" || name === "check") {
      if (token.value !== undefined) throw new UsageError(`${token.rawName} takes no value`)
      if (name === "help") help = true
      else check = true
      continue
    }
    // `--out --check` would make "--check" the folder: a value that looks like an option must be inline (`--out=-x`)
    if (token.value === undefined || token.value === "" || (!token.inlineValue && token.value.startsWith("-"))) {
      throw new UsageError(`${token.rawName} needs a value`)
    }
    if (name === "target" || name === "queue-target" || name === "backlog-target") {
      repeated[name].push(token.value)
      continue
    }
    if (single.has(name)) throw new UsageError(`${token.rawName} is given twice`)
    single.set(name, token.value)
  }
  if (positionals.length > 1) throw new UsageError(`unexpected argument ${show(positionals[1])}`)
  const [positional] = positionals
  if (positional !== undefined && single.has("out")) {
    throw new UsageError(`the folder is given twice: ${show(positional)} and --out ${show(single.get("out"))}`)
  }
  const datasourceUid = single.get("datasource-uid")
  const jobName = single.get("job")
  const prometheusUrl = single.get("prometheus-url")
  const wait = repeated["queue-target"].length > 0
    ? tierTargets("--queue-target", repeated["queue-target"])
    : undefined
  const backlog = repeated["backlog-target"].length > 0
    ? tierTargets("--backlog-target", repeated["backlog-target"])
    : undefined
  const alerts: AlertRules.Options = {
    ...(wait === undefined ? {} : { jobWait: wait }),
    ...(backlog === undefined ? {} : { jobBacklog: backlog })
  }
  const provisioning: Provisioning.Options = {
    ...(datasourceUid === undefined ? {} : { datasourceUid }),
    ...(jobName === undefined ? {} : { jobName }),
    ...(prometheusUrl === undefined ? {} : { prometheusUrl }),
    ...(repeated.target.length > 0 ? { scrapeTargets: repeated.target } : {})
  }
  return {
    help,
    check,
    out: single.get("out") ?? positional,
    options: { provisioning, ...(Object.keys(alerts).length === 0 ? {} : { alerts }) }
  }
}

/** The flag behind each provisioning option, to name it in errors. */
const FLAGS: Readonly<Record<string, string>> = {
  datasourceUid: "--datasource-uid",
  jobName: "--job",
  scrapeTargets: "--target",
  prometheusUrl: "--prometheus-url"
}

const optionError = (error: Failure.InvalidOptionsError): string => {
  const flag = FLAGS[error.option]
  return flag === undefined
    ? error.message
    : `${flag} ${show(error.value)}: must be ${error.expected}`
}

/**
 * Runs the command with `argv` (the arguments after the script) and returns
 * its exit status.
 *
 * @internal
 */
export const run = (argv: ReadonlyArray<string>, io: Io): number => {
  const out = (line = "") => io.stdout(printable(line))
  const err = (line: string) => io.stderr(printable(line))
  const fail = (message: string) => {
    err(`${NAME}: ${message}`)
    for (const line of usage().split("\n")) err(line)
    return USAGE
  }

  let parsed: Parsed
  let files: ReadonlyArray<Build.File>
  try {
    parsed = parse(argv)
    if (parsed.help) {
      for (const line of usage().split("\n")) out(line)
      return OK
    }
    files = BuildInternal.files(parsed.options)
  } catch (error) {
    if (error instanceof UsageError) return fail(error.message)
    if (error instanceof Failure.InvalidOptionsError) return fail(optionError(error))
    // not the arguments: a broken installation (say, a missing assets/ file)
    err(`${NAME}: ${error instanceof Error ? error.message : String(error)}`)
    return FAILED
  }

  const directory = resolve(io.cwd, parsed.out ?? "grafana")
  const shown = (() => {
    const path = relative(io.cwd, directory)
    return path === "" ? "." : path.startsWith("..") || isAbsolute(path) ? directory : path
  })()
  const inFolder = (path: string) => join(shown, path)

  if (parsed.check) {
    const stale = BuildInternal.stale(directory, parsed.options)
    for (const path of stale) err(`stale: ${inFolder(path)}`)
    if (stale.length === 0) {
      out(`${shown} is up to date (${files.length} files)`)
      return OK
    }
    err(`${stale.length} of ${files.length} files are missing or stale: run ${NAME} without --check to write them`)
    return FAILED
  }

  let written: ReadonlyArray<string>
  try {
    written = BuildInternal.write(directory, parsed.options)
  } catch (error) {
    err(`${NAME}: cannot write ${shown}: ${error instanceof Error ? error.message : String(error)}`)
    return FAILED
  }
  for (const path of written) out(`wrote ${inFolder(path)}`)
  out(
    written.length === 0
      ? `${shown} is up to date (${files.length} files)`
      : `${written.length} of ${files.length} files written to ${shown}`
  )
  hint(out, parsed.options, directory, shown, files)
  return OK
}

/** What to run next: Prometheus and Grafana on the folder, and the unit tests of the rules. */
const hint = (
  out: (line?: string) => void,
  options: Build.Options,
  directory: string,
  shown: string,
  files: ReadonlyArray<Build.File>
) => {
  const provisioning = ProvisioningInternal.resolve(options.provisioning)
  const tests = "alerts/bulwark.test.yml"
  const absolute = (path: string) => shellQuote(join(directory, path))
  out()
  out("Next:")
  out(`  prometheus --config.file=${shellQuote(join(shown, "prometheus.yml"))}`)
  if (files.some((file) => file.path === tests)) out(`  promtool test rules ${shellQuote(join(shown, tests))}`)
  out(`  docker run --rm -p 3001:3000 \\`)
  out(`    -v ${absolute("provisioning")}:/etc/grafana/provisioning \\`)
  out(`    -v ${absolute("dashboards")}:${provisioning.dashboardsPath} \\`)
  out(`    grafana/grafana`)
  out(
    `Grafana's datasource (uid ${provisioning.datasourceUid}) reads ${provisioning.prometheusUrl}; ` +
      `Prometheus scrapes ${provisioning.scrapeTargets.join(", ")} as job ${show(provisioning.jobName)}.`
  )
  if (/^https?:\/\/(?:localhost|127\.0\.0\.1|\[::1\])(?::|\/|$)/.test(provisioning.prometheusUrl)) {
    out(`From Grafana in Docker, localhost is the container: use --prometheus-url http://host.docker.internal:9090`)
    out(`(with --add-host=host.docker.internal:host-gateway on Linux).`)
  }
  const stray = join(directory, tests)
  if (!files.some((file) => file.path === tests) && existsSync(stray)) {
    let ours = false
    try {
      ours = readFileSync(stray, "utf8") === BuildInternal.unitTests()
    } catch {
      ours = false
    }
    if (ours) {
      out(`Note: ${join(shown, tests)} tests the default thresholds, not these rules: delete it.`)
    }
  }
}
