/**
 * Child processes for the job-queue tests: worker scripts and the `bulwark`
 * CLI, run with tsx's loader in the child itself (`../support/process.ts`),
 * so that a SIGKILL reaches the worker and not a wrapper around it.
 */
import * as Effect from "effect/Effect"
import { type ChildProcessWithoutNullStreams } from "node:child_process"
import { resolve } from "node:path"
import * as Process from "../support/process.js"

export const root = Process.root
const crashWorker = resolve(root, "test/job-queue/crash.worker.ts")
const cliMain = resolve(root, "packages/resilience/src/cli/main.ts")

export interface Child {
  readonly process: ChildProcessWithoutNullStreams
  /** Succeeds once the child printed a line starting with `ready`; fails if it exits first. */
  readonly ready: Effect.Effect<void, Error>
  /** Succeeds with the exit code (or the signal's name) once the child is gone. */
  readonly exited: Effect.Effect<number | string>
  readonly isReady: () => boolean
  readonly kill: (signal: NodeJS.Signals) => void
  readonly output: () => { readonly stdout: string; readonly stderr: string }
}

const start = (args: ReadonlyArray<string>, env: Record<string, string | undefined>): Child => {
  const child = Process.start(process.execPath, Process.tsArgs(args[0] ?? "", args.slice(1)), { env })
  const readyLine = child.waitFor(/^ready\b/m)
  let isReady = false
  // Observed here too, so that a child that exits before it is ready is no unhandled rejection.
  readyLine.then(() => (isReady = true), () => undefined)
  return {
    process: child.process,
    ready: Effect.tryPromise({
      try: () => readyLine,
      catch: (error) => error instanceof Error ? error : new Error(String(error))
    }).pipe(Effect.asVoid),
    exited: Effect.promise(() => child.exited).pipe(Effect.map(({ code, signal }) => code ?? signal ?? "unknown")),
    isReady: () => isReady && child.exit() === undefined,
    kill: child.kill,
    output: () => ({ stdout: child.stdout(), stderr: child.stderr() })
  }
}

/** A crash-test worker process on the scratch database; the caller kills it (in a finalizer). */
export const spawnWorker = (url: string, workerId: string): Effect.Effect<Child> =>
  Effect.sync(() => start([crashWorker, url, workerId], {}))

export interface CliResult {
  readonly code: number | string
  readonly stdout: string
  readonly stderr: string
}

/**
 * Runs `bulwark <args>` to completion (killed if interrupted first). `DATABASE_URL` is only set when `env` sets
 * it.
 */
export const runCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {}
): Effect.Effect<CliResult> =>
  Effect.acquireUseRelease(
    Effect.sync(() => start([cliMain, ...args], { DATABASE_URL: undefined, NO_COLOR: "1", ...env })),
    (child) => Effect.map(child.exited, (code) => ({ code, ...child.output() })),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

/** The CLI's `--json` output, parsed; a test fails with the output when it is not JSON. */
export const parseJson = (result: CliResult): unknown => {
  try {
    return JSON.parse(result.stdout)
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`)
  }
}

export const isRecord = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null

/** `u[key]` when `u` is an object. */
export const field = (u: unknown, key: string): unknown => (isRecord(u) ? u[key] : undefined)

/** `u` when it is an array, else empty. */
export const array = (u: unknown): ReadonlyArray<unknown> => (Array.isArray(u) ? u : [])
