/**
 * Load shedding: the payments example on PostgreSQL (127.0.0.1:5432, a
 * scratch database per row, the simulated gateway in process), as
 * `npm run example:payments` runs it, with and without its adaptive
 * concurrency limit (`LOAD_SHEDDING`), under 16 and 256 closed-loop
 * keep-alive connections, each sending `POST /payments` with a new
 * `Idempotency-Key` as soon as its previous answer arrived
 * (`test/adaptive-concurrency/loadgen.ts`, in this process; the server is a
 * child process).
 *
 * Columns: accepted (2xx) payments a second, p50 / p99 latency of accepted
 * requests, refusals (503) a second and their p99, and each row's
 * throughput and p99 against the same connection count without the limit.
 *
 * At 256 connections the limited server runs twice: with clients that ask
 * again at once after a refusal (as wrk does: the worst case, since a
 * refusal is answered on the same event loop that serves the accepted
 * requests) and with clients that honour `Retry-After` (as the demo's
 * client and any well-behaved client do), with ±50% jitter on the wait,
 * as real clients spread their retries (`Retry-After` counts whole seconds,
 * so the server cannot spread them below a second itself).
 *
 * Each row's connections run the warm-up and go on into the measurement, as
 * wrk's do: 256 connections opened at once take the Node server seconds to
 * absorb, a burst that a fresh set of connections used to put into the p99.
 *
 * Targets (issue 19): at 256 connections, accepted p99 under 500 ms with
 * throughput at least that of the unlimited server.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { spawn } from "node:child_process"
import { createRequire } from "node:module"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import * as Load from "../test/adaptive-concurrency/loadgen.js"

const SERVER = process.env["BULWARK_BENCH_DATABASE_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres"
const SECONDS = Number(process.env["BULWARK_BENCH_LOAD_SECONDS"] ?? 20)
const WARMUP_SECONDS = 5

const admin = (statement: string): Promise<unknown> =>
  Effect.runPromise(
    Effect.flatMap(PgClient.PgClient, (sql) => sql.unsafe(statement)).pipe(
      Effect.provide(PgClient.layer({ url: Redacted.make(SERVER), maxConnections: 1 }))
    )
  )

const withDatabase = (database: string): string => {
  const url = new URL(SERVER)
  url.pathname = `/${database}`
  return url.toString()
}

interface Server {
  readonly url: string
  readonly stop: () => Promise<void>
}

/** `examples/payments/main.ts` in a child process on a fresh database; resolves once it listens. */
const startPayments = async (loadShedding: boolean): Promise<Server> => {
  const database = `bulwark_bench_shed_${process.pid}_${Date.now().toString(36)}`
  await admin(`CREATE DATABASE ${database}`)
  const root = process.cwd()
  const tsx = pathToFileURL(createRequire(resolve(root, "package.json")).resolve("tsx")).href
  const child = spawn(
    process.execPath,
    ["--import", tsx, "--conditions=bulwark-source", resolve(root, "examples/payments/main.ts")],
    {
      env: {
        ...process.env,
        DATABASE_URL: withDatabase(database),
        PORT: "0",
        LOG_LEVEL: "Error",
        LOAD_SHEDDING: String(loadShedding)
      },
      stdio: ["ignore", "pipe", "pipe"]
    }
  )
  let output = ""
  const exited = new Promise<void>((done) => child.on("exit", () => done()))
  const url = await new Promise<string>((found, failed) => {
    const timer = setTimeout(() => failed(new Error(`the payments example did not start:\n${output}`)), 90_000)
    const look = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /payments listening on (http:\/\/\S+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        found(match[1] ?? "")
      }
    }
    child.stdout.on("data", look)
    child.stderr.on("data", look)
    child.on("exit", (code) => failed(new Error(`the payments example exited (${code}):\n${output}`)))
  })
  return {
    url,
    stop: async () => {
      child.kill("SIGTERM")
      const killer = setTimeout(() => child.kill("SIGKILL"), 20_000)
      await exited
      clearTimeout(killer)
      await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    }
  }
}

interface Row {
  readonly name: string
  readonly connections: number
  readonly limited: boolean
  readonly result: Load.LoadResult
}

const measure = async (
  name: string,
  limited: boolean,
  connections: number,
  honourRetryAfter: boolean
): Promise<Row> => {
  const server = await startPayments(limited)
  try {
    // One run: the warm-up's connections carry on into the measurement, as wrk's do.
    const result = await Load.run({
      url: server.url,
      connections,
      warmupMillis: WARMUP_SECONDS * 1000,
      durationMillis: SECONDS * 1000,
      honourRetryAfter
    })
    return { name, connections, limited, result }
  } finally {
    await server.stop()
  }
}

const ms = (value: number) => `${Math.round(value).toLocaleString("en-US")} ms`
const pad = (text: string, width: number) => text.padStart(width)

const print = (rows: ReadonlyArray<Row>) => {
  const header = ["case", "accepted/s", "p50", "p99", "refused/s", "refused p99", "errors", "vs unlimited (tput, p99)"]
  const lines = rows.map((row) => {
    const base = rows.find((other) => !other.limited && other.connections === row.connections)?.result
    const r = row.result
    const versus = base === undefined || !row.limited
      ? ""
      : `×${(r.throughput / base.throughput).toFixed(2)}, ×${(r.p99 / base.p99).toFixed(2)}`
    return [
      row.name,
      r.throughput.toFixed(1),
      ms(r.p50),
      ms(r.p99),
      (r.refused / r.seconds).toFixed(1),
      r.refused === 0 ? "-" : ms(r.refusedP99),
      String(r.errors + r.timedOut),
      versus
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((line) => (line[i] ?? "").length)))
  const format = (cells: ReadonlyArray<string>) =>
    cells.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : pad(cell, widths[i] ?? 0))).join("  ")
  console.log(format(header))
  for (const line of lines) console.log(format(line))
}

export const run = async () => {
  console.log(
    `\nload shedding: the payments example on PostgreSQL ${SERVER.replace(/\/[^/]*$/, "")}, ` +
      `${SECONDS} s per row after ${WARMUP_SECONDS} s of warm-up, a fresh server and database per row`
  )
  const rows: Array<Row> = []
  rows.push(await measure("16 connections, no limit", false, 16, false))
  rows.push(await measure("16 connections, adaptive limit", true, 16, false))
  rows.push(await measure("256 connections, no limit", false, 256, false))
  rows.push(await measure("256 connections, adaptive limit, clients ask again at once", true, 256, false))
  rows.push(await measure("256 connections, adaptive limit, clients honour Retry-After ±50%", true, 256, true))
  print(rows)
}
