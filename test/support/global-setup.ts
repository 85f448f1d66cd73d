/**
 * Vitest's global setup (`vitest.config.ts`): before any test, what the tests need is there; after the last, the run
 * left nothing behind.
 *
 * Before: PostgreSQL (`BULWARK_TEST_DATABASE_URL`, by default postgres://postgres@127.0.0.1:5432/test) and Redis
 * (127.0.0.1:6379) answer, and promtool and prometheus are on PATH. A local server that does not answer is started
 * with the commands `.ci/run` uses; promtool and prometheus come from Debian's `prometheus` package when this process
 * may install packages (root, apt-get, and `BULWARK_TEST_NO_INSTALL` not set). Whatever is still missing stops the
 * run before any test, with one error naming each missing thing and the command that provides it.
 *
 * After: every process a test starts inherits `BULWARK_TEST_RUN=<this run's id>`, so any process still alive with it
 * in its /proc/<pid>/environ was left behind; and every Redis key a test writes starts with `bulwark-test:<run id>:`.
 * Leftovers of either kind are listed, removed, and fail the run.
 */
import { spawn } from "node:child_process"
import { randomBytes } from "node:crypto"
import {
  accessSync,
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync
} from "node:fs"
import { connect as connectSocket } from "node:net"
import { tmpdir } from "node:os"
import { delimiter, join } from "node:path"
import * as TestRedis from "./redis.js"

const PREFIX = "[bulwark tests]"
const WAIT_MILLIS = 30_000
const POLL_MILLIS = 250

const sleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis))

const elapsed = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`

// -----------------------------------------------------------------------------
// Commands
// -----------------------------------------------------------------------------

/** The first executable `name` on PATH. */
const which = (name: string): string | undefined => {
  for (const directory of (process.env["PATH"] ?? "").split(delimiter)) {
    if (directory === "") continue
    const file = join(directory, name)
    try {
      accessSync(file, constants.X_OK)
      if (statSync(file).isFile()) return file
    } catch {
      // not here
    }
  }
  return undefined
}

interface Ran {
  readonly ok: boolean
  readonly output: string
}

/**
 * Runs a command to its end. Its output goes to a file, not a pipe: a daemon it starts may keep the inherited
 * descriptors, and a pipe would then never close (or, once closed, break the daemon's writes).
 */
const run = (command: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = {}): Promise<Ran> => {
  const directory = mkdtempSync(join(tmpdir(), "bulwark-setup-"))
  const file = join(directory, "output")
  const descriptor = openSync(file, "w")
  const read = () => readFileSync(file, "utf8").trim()
  return new Promise<Ran>((resolve) => {
    const child = spawn(command, [...args], {
      stdio: ["ignore", descriptor, descriptor],
      // The services must not carry the run's marker: they are meant to outlive the run.
      env: { ...serviceEnvironment(), ...env }
    })
    child.on("error", (error) => resolve({ ok: false, output: error.message }))
    child.on("exit", (code, signal) => {
      const status = code === 0 ? "" : ` (exit ${code ?? signal})`
      resolve({ ok: code === 0, output: `${read()}${status}` })
    })
  }).finally(() => {
    closeSync(descriptor)
    rmSync(directory, { recursive: true, force: true })
  })
}

const serviceEnvironment = (): NodeJS.ProcessEnv => {
  const { [TestRedis.RUN_VARIABLE]: _marker, ...rest } = process.env
  return rest
}

const lastLines = (text: string, count = 8) => text.split("\n").slice(-count).join("\n")

// -----------------------------------------------------------------------------
// PostgreSQL
// -----------------------------------------------------------------------------

const databaseUrl = new URL(process.env["BULWARK_TEST_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/test")

const isLoopback = (host: string) => ["127.0.0.1", "localhost", "[::1]", "::1"].includes(host)

interface Answer {
  readonly up: boolean
  /** Why not; for PostgreSQL `transient` when starting it (or waiting) may help. */
  readonly reason: string
  readonly transient: boolean
  /** PostgreSQL's SQLSTATE, when it answered with an error. */
  readonly code?: string
}

const UP: Answer = { up: true, reason: "", transient: false }

/** The fields of an ErrorResponse: (code byte, text, NUL) … NUL. */
const errorFields = (body: Buffer): Map<string, string> => {
  const fields = new Map<string, string>()
  let at = 0
  while (at < body.length && body[at] !== 0) {
    const end = body.indexOf(0, at + 1)
    if (end === -1) break
    fields.set(String.fromCharCode(body[at] ?? 0), body.toString("utf8", at + 1, end))
    at = end + 1
  }
  return fields
}

/**
 * Logs in as the tests' user to the tests' database, speaking the protocol's start-up: ReadyForQuery (or a request
 * for a password) means the server takes the tests' connections; an error (starting up, no such database, …) is the
 * reason it does not. Unlike a port check (or pg_isready) it sees a missing database, and it needs no client.
 */
const askPostgres = (url: URL): Promise<Answer> =>
  new Promise((resolve) => {
    const user = decodeURIComponent(url.username) || "postgres"
    const database = decodeURIComponent(url.pathname.slice(1)) || user
    const socket = connectSocket({ host: url.hostname.replace(/^\[|\]$/g, ""), port: Number(url.port || 5432) })
    let received = Buffer.alloc(0)
    let settled = false
    const done = (answer: Answer) => {
      if (settled) return
      settled = true
      if (answer.up) socket.end(Buffer.from([0x58, 0, 0, 0, 4])) // Terminate, politely.
      else socket.destroy()
      resolve(answer)
    }
    socket.setTimeout(2_000, () => done({ up: false, reason: "no answer within 2 s", transient: true }))
    socket.on("error", (error) => done({ up: false, reason: error.message, transient: true }))
    socket.on("connect", () => {
      const parameters = Buffer.from(`user\0${user}\0database\0${database}\0\0`)
      const header = Buffer.alloc(8)
      header.writeInt32BE(8 + parameters.length, 0)
      header.writeInt32BE(196_608, 4) // protocol 3.0
      socket.write(Buffer.concat([header, parameters]))
    })
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk])
      // Whole messages: a type byte, then a length that counts itself and the body.
      while (received.length >= 5 && received.length >= 1 + received.readInt32BE(1)) {
        const type = String.fromCharCode(received[0] ?? 0)
        const length = received.readInt32BE(1)
        const body = received.subarray(5, 1 + length)
        received = received.subarray(1 + length)
        // ReadyForQuery; or a password asked for (this server is up, credentials are the tests' own business).
        if (type === "Z" || (type === "R" && body.length >= 4 && body.readInt32BE(0) !== 0)) return done(UP)
        if (type === "E") {
          const fields = errorFields(body)
          // 57P03: the database system is starting up (or shutting down, or in recovery).
          const code = fields.get("C") ?? ""
          return done({ up: false, reason: fields.get("M") ?? "an error", transient: code === "57P03", code })
        }
        // AuthenticationOk, ParameterStatus, BackendKeyData, notices: read on.
      }
    })
  })

const databaseName = decodeURIComponent(databaseUrl.pathname.slice(1)) || "postgres"
const postgresName = `PostgreSQL at ${databaseUrl.host} (database ${databaseName})`

/** The cluster `pg_ctlcluster` starts: the newest version under /etc/postgresql (what `.ci/run`'s `ls` finds). */
const postgresCluster = (): string | undefined => {
  try {
    return readdirSync("/etc/postgresql").filter((name) => /^\d+(\.\d+)?$/.test(name)).sort((a, b) =>
      Number(b) - Number(a)
    )[0]
  } catch {
    return undefined
  }
}

const postgresStart = (version: string) => `pg_ctlcluster --skip-systemctl-redirect ${version} main start`

// -----------------------------------------------------------------------------
// Redis
// -----------------------------------------------------------------------------

const redisName = `Redis at ${TestRedis.connection.host}:${TestRedis.connection.port}`

const REDIS_START = "mkdir -p /var/lib/redis /var/log/redis && redis-server --daemonize yes --bind 127.0.0.1 -::1 " +
  `--port ${TestRedis.connection.port} --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`

const askRedis = async (): Promise<Answer> => {
  try {
    const client = await TestRedis.open()
    client.disconnect()
    return UP
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    // Not answering at all, as opposed to answering with an error (NOAUTH, …) that starting it would not fix.
    return {
      up: false,
      reason,
      transient: /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|timeout|closed/i.test(reason)
    }
  }
}

const startRedis = async (): Promise<Ran> => {
  try {
    mkdirSync("/var/lib/redis", { recursive: true })
    mkdirSync("/var/log/redis", { recursive: true })
  } catch (error) {
    return { ok: false, output: error instanceof Error ? error.message : String(error) }
  }
  return run("redis-server", [
    "--daemonize",
    "yes",
    "--bind",
    "127.0.0.1",
    "-::1",
    "--port",
    String(TestRedis.connection.port),
    "--save",
    "",
    "--appendonly",
    "no",
    "--dir",
    "/var/lib/redis",
    "--logfile",
    "/var/log/redis/ci.log"
  ])
}

// -----------------------------------------------------------------------------
// The services and tools, each: check, provide if possible, check again
// -----------------------------------------------------------------------------

interface Outcome {
  /** For the summary line: "up", "started (2.1 s)", … */
  readonly done?: string
  /** What is missing and the command that provides it; stops the run. */
  readonly missing?: string
}

/** Polls `ask` until it answers up or `WAIT_MILLIS` pass. */
const waitUp = async (ask: () => Promise<Answer>): Promise<Answer> => {
  const until = Date.now() + WAIT_MILLIS
  for (;;) {
    const answer = await ask()
    if (answer.up || !answer.transient || Date.now() > until) return answer
    await sleep(POLL_MILLIS)
  }
}

const missing = (what: string, command: string): Outcome => ({ missing: `${what}\n    provide it with: ${command}` })

const ensurePostgres = async (): Promise<Outcome> => {
  const first = await askPostgres(databaseUrl)
  if (first.up) return { done: "PostgreSQL up" }
  const version = postgresCluster()
  const start = version === undefined ? undefined : postgresStart(version)
  const install = "apt-get install -y postgresql, then pg_ctlcluster --skip-systemctl-redirect <version> main start"
  if (!first.transient) {
    const user = decodeURIComponent(databaseUrl.username) || "postgres"
    const fix = first.code === "3D000"
      ? `createdb -h ${databaseUrl.hostname} -p ${databaseUrl.port || 5432} -U ${user} ${databaseName}`
      : `let ${user} connect without a password (pg_hba.conf: trust for 127.0.0.1), or set BULWARK_TEST_DATABASE_URL`
    return missing(`${postgresName} answers, but refuses the tests: ${first.reason}`, fix)
  }
  if (!isLoopback(databaseUrl.hostname)) {
    return missing(
      `${postgresName} does not answer (${first.reason}); it is not on this machine, so it is not started here`,
      "start it, or point BULWARK_TEST_DATABASE_URL at a server that answers"
    )
  }
  if (version === undefined || start === undefined || which("pg_ctlcluster") === undefined) {
    return missing(`${postgresName} does not answer (${first.reason}) and no PostgreSQL cluster is installed`, install)
  }
  const since = Date.now()
  // pg_ctlcluster is idempotent: a server that is only starting up is not started twice.
  const started = await run("pg_ctlcluster", ["--skip-systemctl-redirect", version, "main", "start"])
  if (!started.ok) {
    return missing(
      `${postgresName} does not answer (${first.reason}), and starting it failed:\n${started.output}`,
      start
    )
  }
  const answer = await waitUp(() => askPostgres(databaseUrl))
  if (answer.up) return { done: `PostgreSQL started (${elapsed(since)})` }
  return missing(
    `${postgresName} does not answer (${answer.reason}), and starting it did not help:\n${lastLines(started.output)}`,
    start
  )
}

const ensureRedis = async (): Promise<Outcome> => {
  const first = await askRedis()
  if (first.up) return { done: "Redis up" }
  if (!first.transient) return missing(`${redisName} answers, but refuses the tests: ${first.reason}`, REDIS_START)
  if (which("redis-server") === undefined) {
    return missing(
      `${redisName} does not answer and redis-server is not installed`,
      `apt-get install -y redis-server && ${REDIS_START}`
    )
  }
  const since = Date.now()
  const started = await startRedis()
  if (!started.ok) {
    return missing(
      `${redisName} does not answer (${first.reason}), and starting it failed:\n${started.output}`,
      REDIS_START
    )
  }
  const answer = await waitUp(askRedis)
  if (answer.up) return { done: `Redis started (${elapsed(since)})` }
  return missing(
    `${redisName} does not answer (${answer.reason}), and starting it did not help:\n${lastLines(started.output)}`,
    REDIS_START
  )
}

const PROMETHEUS_TOOLS = ["promtool", "prometheus"] as const
const PROMETHEUS_INSTALL =
  "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus"

const mayInstall = (): boolean =>
  process.env["BULWARK_TEST_NO_INSTALL"] !== "1" && process.getuid?.() === 0 && which("apt-get") !== undefined

const ensurePrometheus = async (): Promise<Outcome> => {
  const absent = () => PROMETHEUS_TOOLS.filter((tool) => which(tool) === undefined)
  if (absent().length === 0) return { done: "promtool and prometheus found" }
  const what = `${absent().join(" and ")} (Debian's prometheus package) not on PATH`
  if (!mayInstall()) {
    const why = process.env["BULWARK_TEST_NO_INSTALL"] === "1" ? "BULWARK_TEST_NO_INSTALL=1" : "not root with apt-get"
    return missing(`${what}; not installing it here (${why})`, PROMETHEUS_INSTALL)
  }
  const since = Date.now()
  console.log(`${PREFIX} ${what}: installing it (${PROMETHEUS_INSTALL})`)
  const apt = { DEBIAN_FRONTEND: "noninteractive" }
  const updated = await run("apt-get", ["update"], apt)
  const installed = updated.ok
    ? await run("apt-get", ["install", "-y", "--no-install-recommends", "prometheus"], apt)
    : updated
  if (absent().length === 0) return { done: `prometheus installed (${elapsed(since)})` }
  return missing(`${what}, and installing it failed:\n${lastLines(installed.output)}`, PROMETHEUS_INSTALL)
}

// -----------------------------------------------------------------------------
// Afterwards: processes and keys left behind
// -----------------------------------------------------------------------------

interface Running {
  readonly pid: number
  readonly ppid: number
  readonly command: string
}

const readProcess = (pid: number, marker: string): Running | undefined => {
  try {
    const environ = readFileSync(`/proc/${pid}/environ`, "latin1").split("\0")
    if (!environ.includes(marker)) return undefined
    // The parent is the 4th field of stat, after the command name in parentheses (which may hold spaces).
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1")
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1])
    const command = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").replace(/\s+/g, " ").trim()
    return { pid, ppid, command }
  } catch {
    // gone meanwhile, or not ours to read
    return undefined
  }
}

/**
 * Vitest's pool workers: children of this process titled "node (vitest <n>)" (or, before they set the title, running
 * Vitest's worker script). The pool closes after this teardown, so they may still be alive.
 */
const isPoolWorker = (found: Running) =>
  found.ppid === process.pid && /^node \(vitest\b|[/\\]vitest[/\\]dist[/\\]/.test(found.command)

/**
 * The processes alive with the run's marker, except Vitest's own: this process and its pool's workers. A process a
 * test started is a child of such a worker, or an orphan re-parented elsewhere.
 */
const marked = (marker: string): ReadonlyArray<Running> =>
  readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readProcess(Number(name), marker))
    .filter((found): found is Running => found !== undefined)
    .filter((found) => found.pid !== process.pid && !isPoolWorker(found))

/** Processes that outlive the run; a few seconds' grace for those on their way out (a SIGTERMed server, esbuild). */
const leftoverProcesses = async (marker: string): Promise<ReadonlyArray<Running>> => {
  const until = Date.now() + 5_000
  for (;;) {
    const found = marked(marker)
    if (found.length === 0 || Date.now() > until) return found
    await sleep(POLL_MILLIS)
  }
}

const checkProcesses = async (marker: string): Promise<string | undefined> => {
  const left = await leftoverProcesses(marker)
  if (left.length === 0) return undefined
  for (const { pid } of left) {
    try {
      process.kill(pid, "SIGKILL")
    } catch {
      // already gone
    }
  }
  return `${left.length} process(es) the tests started were still running (now killed):\n${
    left.map(({ command, pid, ppid }) => `    pid ${pid} (parent ${ppid}): ${command.slice(0, 300)}`).join("\n")
  }`
}

const checkKeys = async (keyPrefix: string): Promise<string | undefined> => {
  let client: Awaited<ReturnType<typeof TestRedis.connect>> | undefined
  try {
    client = await TestRedis.connect()
    const keys = await TestRedis.keysUnder(client, keyPrefix)
    if (keys.length === 0) return undefined
    await TestRedis.deleteKeys(client, keyPrefix)
    const shown = [...keys].sort().slice(0, 10).map((key) => `    ${key}`).join("\n")
    return `${keys.length} Redis key(s) the tests wrote were left behind (now deleted):\n${shown}${
      keys.length > 10 ? "\n    …" : ""
    }`
  } catch (error) {
    return `Could not check Redis for keys under ${keyPrefix}: ${
      error instanceof Error ? error.message : String(error)
    }`
  } finally {
    client?.disconnect()
  }
}

// -----------------------------------------------------------------------------
// The setup
// -----------------------------------------------------------------------------

export const setup = async (): Promise<() => Promise<void>> => {
  const since = Date.now()
  const outcomes = await Promise.all([ensurePostgres(), ensureRedis(), ensurePrometheus()])
  const problems = outcomes.flatMap((outcome) => outcome.missing === undefined ? [] : [outcome.missing])
  if (problems.length > 0) {
    const error = new Error(
      `The tests cannot run here; none was run. Missing:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`
    )
    // The message is the whole story; a stack trace into this file would only bury it.
    error.stack = error.message
    throw error
  }
  // Set only now, so the services started above do not carry it; every test worker and its children inherit it.
  const id = `${Date.now().toString(36)}-${randomBytes(4).toString("hex")}`
  process.env[TestRedis.RUN_VARIABLE] = id
  const marker = `${TestRedis.RUN_VARIABLE}=${id}`
  console.log(`${PREFIX} ${outcomes.map((outcome) => outcome.done).join(", ")}; ready in ${elapsed(since)}, run ${id}`)

  return async () => {
    const found = await Promise.all([checkProcesses(marker), checkKeys(TestRedis.runPrefix(id))])
    const left = found.filter((problem): problem is string => problem !== undefined)
    if (left.length === 0) return
    // Not thrown: Vitest would report a throw here as a "Startup Error" and skip closing its pool.
    console.error(`\n${PREFIX} The run left things behind:\n${left.map((problem) => `  - ${problem}`).join("\n")}\n`)
    process.exitCode = 1
  }
}
