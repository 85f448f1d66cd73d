/**
 * Bulwark as a user gets it: both workspaces packed with `npm pack` (which builds them), installed into a scratch
 * app outside the workspace that has only `effect` (the newest 3.x the registry serves) and `@effect/platform`, then
 * used from that app with plain `node`, `tsc --strict` under the app's own flags, `npx` for both bins, and — once the
 * optional peers are installed too — SqlJobQueue on the test PostgreSQL.
 *
 * It needs the npm registry (to install effect and the peers) and PostgreSQL; it fails, never skips, without them.
 * The app, the tarballs and the scratch database are removed afterwards.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import { spawnSync } from "node:child_process"
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync
} from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
import { promtool } from "../observability/support/promtool.js"
import { ScratchDatabase, scratchDatabase } from "../support/postgres.js"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const fixtures = join(dirname(fileURLToPath(import.meta.url)), "app")

/** What Bulwark may add to an app's node_modules for core-only use. */
const CORE_BUDGET_BYTES = 5 * 1024 * 1024
const OPTIONAL_PEERS = [
  "@effect/sql@^0.52",
  "@effect/sql-pg@^0.53",
  "@effect/cli@^0.77",
  "@effect/platform-node@^0.108"
]

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = {}): Run => {
  // The app must see what a user's shell sees: not this repository's source condition.
  const { NODE_OPTIONS: _, ...inherited } = process.env
  const result = spawnSync(command, args, {
    cwd,
    env: { ...inherited, NO_UPDATE_NOTIFIER: "1", ...env },
    encoding: "utf8",
    timeout: 240_000
  })
  if (result.error) throw result.error
  return { code: result.status, stdout: result.stdout, stderr: result.stderr }
}

const succeed = (command: string, args: ReadonlyArray<string>, cwd: string, env: NodeJS.ProcessEnv = {}): string => {
  const result = run(command, args, cwd, env)
  assert.strictEqual(result.code, 0, `${command} ${args.join(" ")}\n${result.stdout}\n${result.stderr}`)
  return result.stdout
}

const npmInstall = (cwd: string, specs: ReadonlyArray<string>) =>
  succeed("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error", ...specs], cwd)

/** Bytes of regular files under a folder (links not followed). */
const sizeOf = (path: string): number => {
  const stats = statSync(path, { throwIfNoEntry: false })
  if (stats === undefined) return 0
  if (!stats.isDirectory()) return stats.isFile() ? stats.size : 0
  return readdirSync(path).reduce((sum, entry) => sum + sizeOf(join(path, entry)), 0)
}

/** Every installed copy of a package: folders named `name` under any node_modules. */
const copiesOf = (folder: string, name: string): Array<string> => {
  const found: Array<string> = []
  const visit = (modules: string) => {
    if (!existsSync(modules)) return
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith("@")) {
        for (const scoped of readdirSync(join(modules, entry))) {
          visitPackage(join(modules, entry, scoped), `${entry}/${scoped}`)
        }
      } else visitPackage(join(modules, entry), entry)
    }
  }
  const visitPackage = (path: string, packageName: string) => {
    if (packageName === name) found.push(path)
    visit(join(path, "node_modules"))
  }
  visit(join(folder, "node_modules"))
  return found
}

/** The last line a program printed, decoded as JSON with `schema`. */
const lastJsonLine = <A, I>(output: string, schema: Schema.Schema<A, I>): A =>
  Schema.decodeUnknownSync(Schema.parseJson(schema))(output.trim().split("\n").at(-1) ?? "")

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(2)} MB`

interface Packed {
  readonly name: string
  readonly filename: string
  readonly size: number
  readonly unpackedSize: number
  readonly files: ReadonlyArray<{ readonly path: string }>
}

const isPackedList = (value: unknown): value is ReadonlyArray<Packed> =>
  Array.isArray(value) &&
  value.every((entry) => typeof entry === "object" && entry !== null && "filename" in entry && "files" in entry)

describe("@bulwark/resilience and @bulwark/dashboard installed from their tarballs", () => {
  const work = mkdtempSync(join(tmpdir(), "bulwark-consumer-"))
  const app = join(work, "app")
  const tarballs = join(work, "tarballs")
  const scope = Effect.runSync(Scope.make())
  const report: Array<string> = []
  let packed: ReadonlyArray<Packed> = []
  let databaseUrl = ""

  beforeAll(async () => {
    mkdirSync(tarballs)
    const output = succeed("npm", [
      "pack",
      "--workspace=@bulwark/resilience",
      "--workspace=@bulwark/dashboard",
      "--pack-destination",
      tarballs,
      "--json",
      "--loglevel=error"
    ], root)
    const parsed: unknown = JSON.parse(output.slice(output.indexOf("[")))
    if (!isPackedList(parsed)) throw new Error(`unexpected npm pack output: ${output}`)
    packed = parsed
    for (const tarball of packed) {
      report.push(`${tarball.name}: packed ${megabytes(tarball.size)}, unpacked ${megabytes(tarball.unpackedSize)}`)
    }

    mkdirSync(app)
    writeFileSync(join(app, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }))
    for (const file of readdirSync(fixtures)) copyFileSync(join(fixtures, file), join(app, file))
    npmInstall(app, ["effect@3", "@effect/platform@^0.97"])
    const before = sizeOf(join(app, "node_modules"))
    const tarballOf = (name: string) =>
      join(tarballs, packed.find((tarball) => tarball.name === name)?.filename ?? name)
    npmInstall(app, [tarballOf("@bulwark/resilience")])
    const withResilience = sizeOf(join(app, "node_modules"))
    npmInstall(app, [tarballOf("@bulwark/dashboard")])
    const withDashboard = sizeOf(join(app, "node_modules"))
    report.push(
      `node_modules: effect + @effect/platform ${megabytes(before)}; ` +
        `+ @bulwark/resilience +${megabytes(withResilience - before)}; ` +
        `+ @bulwark/dashboard (and @grafana/grafana-foundation-sdk) +${megabytes(withDashboard - withResilience)}`
    )
    assert.isAtMost(withResilience - before, CORE_BUDGET_BYTES, "Bulwark adds at most 5 MB for core use")

    databaseUrl = await Effect.runPromise(
      Layer.buildWithScope(scratchDatabase, scope).pipe(
        Effect.map((context) => Context.get(context, ScratchDatabase).url)
      )
    )
  }, 600_000)

  afterAll(async () => {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    rmSync(work, { recursive: true, force: true })
    console.log(`consumer measurements\n  ${report.join("\n  ")}`)
  }, 120_000)

  it("ship built JavaScript, declarations, maps, migrations, README and LICENSE, and no tests", () => {
    const resilience = packed.find((tarball) => tarball.name === "@bulwark/resilience")
    const dashboard = packed.find((tarball) => tarball.name === "@bulwark/dashboard")
    assert.isDefined(resilience)
    assert.isDefined(dashboard)
    const paths = (tarball: Packed | undefined) => (tarball?.files ?? []).map((file) => file.path)
    for (
      const path of [
        "LICENSE",
        "README.md",
        "dist/index.js",
        "dist/index.d.ts",
        "dist/index.d.ts.map",
        "dist/index.js.map",
        "dist/cli/main.js",
        "sql/0001_idempotency.sql"
      ]
    ) assert.include(paths(resilience), path)
    for (const path of ["LICENSE", "README.md", "dist/bin.js", "grafana/alerts/bulwark.yml"]) {
      assert.include(paths(dashboard), path)
    }
    for (const path of [...paths(resilience), ...paths(dashboard)]) {
      assert.notMatch(path, /\.test\.ts$|\.contract\.|\.worker\.|tsconfig|vitest/, path)
    }
  })

  it("run a plain-JavaScript program with plain node: retry, circuit breaker, bulkhead from the root entry", () => {
    const output = lastJsonLine(succeed(process.execPath, ["main.mjs"], app), Schema.Unknown)
    assert.deepStrictEqual(output, { stock: 42, calls: 3, lastError: "CircuitOpenError", breaker: "Open" })
  })

  it("type-check a consumer with tsc --strict, NodeNext and no exactOptionalPropertyTypes (TypeScript 6 and 7)", () => {
    for (const tsc of ["node_modules/typescript/bin/tsc", "node_modules/typescript-native/bin/tsc"]) {
      succeed(process.execPath, [join(root, tsc), "-p", "tsconfig.json"], app)
    }
    const config = readFileSync(join(app, "tsconfig.json"), "utf8")
    assert.notInclude(config, "exactOptionalPropertyTypes")
    assert.include(config, `"skipLibCheck": false`)
  })

  it("install one copy of effect", () => {
    assert.strictEqual(copiesOf(app, "effect").length, 1, copiesOf(app, "effect").join("\n"))
    const listed = succeed("npm", ["ls", "effect", "--all", "--parseable"], app)
    assert.deepStrictEqual([...new Set(listed.trim().split("\n"))], [join(app, "node_modules/effect")])
  })

  it("load the root entry without any optional peer; a module whose peer is missing names the package", () => {
    const times = (specifier: string) =>
      median(Array.from({ length: 5 }, () => Number(succeed(process.execPath, ["import-time.mjs", specifier], app))))
    report.push(
      `import time (median of 5): effect ${times("effect").toFixed(0)} ms, ` +
        `@bulwark/resilience ${times("@bulwark/resilience").toFixed(0)} ms`
    )
    const missing = lastJsonLine(
      succeed(process.execPath, ["missing-peer.mjs"], app),
      Schema.Struct({ code: Schema.String, message: Schema.String })
    )
    assert.strictEqual(missing.code, "ERR_MODULE_NOT_FOUND")
    assert.include(missing.message, "Cannot find package 'ioredis'")
    const yaml = lastJsonLine(
      succeed(process.execPath, ["yaml-missing.mjs"], app),
      Schema.Struct({ tag: Schema.String, message: Schema.String })
    )
    assert.strictEqual(yaml.tag, "InvalidPipelineConfigError")
    assert.include(yaml.message, "npm install yaml")
  })

  it("point stack traces at the package's TypeScript source with --enable-source-maps", () => {
    const { stack, tag } = lastJsonLine(
      succeed(process.execPath, ["--enable-source-maps", "stack.mjs"], app),
      Schema.Struct({ tag: Schema.String, stack: Schema.String })
    )
    assert.strictEqual(tag, "InvalidOptionsError")
    assert.match(stack, /node_modules\/@bulwark\/resilience\/src\/internal\/options\.ts:\d+:\d+/)
    assert.isTrue(existsSync(join(app, "node_modules/@bulwark/resilience/src/internal/options.ts")))
  })

  it("npx bulwark-dashboards writes into the app's ./grafana, with options, and promtool accepts the rules", () => {
    const output = succeed("npx", ["--no-install", "bulwark-dashboards", "--job", "payments-api"], app)
    assert.notInclude(output, "\u001b")
    assert.isTrue(existsSync(join(app, "grafana/dashboards/bulwark-overview.json")))
    assert.include(readFileSync(join(app, "grafana/prometheus.yml"), "utf8"), "job_name: payments-api")
    assert.isFalse(existsSync(join(app, "node_modules/@bulwark/grafana")))
    const check = promtool(["check", "rules", join(app, "grafana/alerts/bulwark.yml")])
    assert.strictEqual(check.code, 0, check.output)
    const unit = promtool(["test", "rules", join(app, "grafana/alerts/bulwark.test.yml")])
    assert.strictEqual(unit.code, 0, unit.output)
  })

  it("npx bulwark without its optional peers names the packages to install", () => {
    const result = run("npx", ["--no-install", "bulwark", "--help"], app)
    assert.strictEqual(result.code, 1, result.stdout + result.stderr)
    assert.include(
      result.stderr,
      "npm install @effect/cli@^0.77.0 @effect/platform-node@^0.108.0 @effect/sql@^0.52.0 @effect/sql-pg@^0.53.0"
    )
  })

  it("with the optional peers installed: npx bulwark --help, and SqlJobQueue runs a job on PostgreSQL", () => {
    npmInstall(app, OPTIONAL_PEERS)
    assert.strictEqual(copiesOf(app, "effect").length, 1, "the optional peers share the app's effect")

    const help = run("npx", ["--no-install", "bulwark", "--help"], app)
    assert.strictEqual(help.code, 0, help.stderr)
    assert.include(help.stdout, "dlq")
    assert.notInclude(help.stdout + help.stderr, "\u001b")
    const unknown = run("npx", ["--no-install", "bulwark", "no-such-command"], app)
    assert.strictEqual(unknown.code, 2, unknown.stdout + unknown.stderr)

    const jobs = lastJsonLine(
      succeed(process.execPath, ["jobs.mjs"], app, { DATABASE_URL: databaseUrl }),
      Schema.Unknown
    )
    assert.deepStrictEqual(jobs, {
      handled: { orderId: "o-1", attempt: 1 },
      deduplicated: true,
      status: "succeeded"
    })
    const stats = Schema.decodeUnknownSync(Schema.parseJson(Schema.Struct({
      queues: Schema.Array(Schema.Struct({ queue: Schema.String, ready: Schema.Number }))
    })))(succeed("npx", ["--no-install", "bulwark", "queues", "stats", "--json", "--database-url", databaseUrl], app))
    // The job ran, so nothing is left ready in the database the app migrated.
    assert.deepStrictEqual(stats.queues.filter((queue) => queue.ready > 0), [])
  })
})
