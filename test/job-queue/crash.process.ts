/**
 * Child processes for the job-queue tests: worker scripts and the `bulwark`
 * CLI, run with tsx's loader in the child itself
 * (`node --import tsx/dist/loader.mjs <file.ts>`). Not through tsx's CLI:
 * that is a wrapper process that spawns the real one, so a SIGKILL sent to it
 * would kill the wrapper and leave the worker running.
 */
import * as Effect from "effect/Effect"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { dirname, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")
const tsxLoader = pathToFileURL(resolve(root, "node_modules/tsx/dist/loader.mjs")).href
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
  const child = spawn(process.execPath, ["--import", tsxLoader, ...args], {
    cwd: root,
    env: { ...process.env, ...env }
  })
  let stdout = ""
  let stderr = ""
  let exit: number | string | undefined
  const exitWaiters: Array<(code: number | string) => void> = []
  const readyWaiters: Array<(error: Error | undefined) => void> = []
  let isReady = false
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString()
    if (!isReady && /^ready\b/m.test(stdout)) {
      isReady = true
      readyWaiters.splice(0).forEach((wake) => wake(undefined))
    }
  })
  child.stderr.on("data", (chunk: Buffer) => {
    stderr += chunk.toString()
  })
  child.on("exit", (code, signal) => {
    exit = code ?? signal ?? "unknown"
    exitWaiters.splice(0).forEach((wake) => wake(exit ?? "unknown"))
    readyWaiters.splice(0).forEach((wake) => wake(new Error(`child exited (${exit}) before it was ready: ${stderr}`)))
  })
  return {
    process: child,
    ready: Effect.async<void, Error>((resume) => {
      if (isReady) return resume(Effect.void)
      if (exit !== undefined) return resume(Effect.fail(new Error(`child exited (${exit}): ${stderr}`)))
      readyWaiters.push((error) => resume(error === undefined ? Effect.void : Effect.fail(error)))
    }),
    exited: Effect.async<number | string>((resume) => {
      if (exit !== undefined) return resume(Effect.succeed(exit))
      exitWaiters.push((code) => resume(Effect.succeed(code)))
    }),
    isReady: () => isReady && exit === undefined,
    kill: (signal) => {
      if (exit === undefined) child.kill(signal)
    },
    output: () => ({ stdout, stderr })
  }
}

/** A crash-test worker process on the scratch database. */
export const spawnWorker = (url: string, workerId: string): Effect.Effect<Child> =>
  Effect.sync(() => start([crashWorker, url, workerId], {}))

export interface CliResult {
  readonly code: number | string
  readonly stdout: string
  readonly stderr: string
}

/** Runs `bulwark <args>` to completion. `DATABASE_URL` is only set when `env` sets it. */
export const runCli = (
  args: ReadonlyArray<string>,
  env: Record<string, string | undefined> = {}
): Effect.Effect<CliResult> =>
  Effect.suspend(() => {
    const child = start([cliMain, ...args], { DATABASE_URL: undefined, NO_COLOR: "1", ...env })
    return Effect.map(child.exited, (code) => ({ code, ...child.output() }))
  })
