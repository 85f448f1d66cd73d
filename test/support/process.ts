/**
 * Child processes for the tests, started so that none outlives its test.
 *
 * A TypeScript file runs as `node --import <tsx's loader> <file>`: the program runs in the very process the test
 * holds, so the pid the test signals is the program's. (tsx's CLI would run it in a second process of its own, and a
 * kill of the CLI left that one running, re-parented to PID 1.)
 *
 * Every child is stopped by a finalizer: `scoped` / `scopedTs` when their scope closes, `start` / `startTs` by their
 * caller in an `afterAll` or `onTestFinished`. The run's global teardown (`global-setup.ts`) fails the run when a
 * process it started is still alive anyway.
 */
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process"
import { createRequire } from "node:module"
import { dirname, resolve } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

/** The repository's root: the working directory of every child unless told otherwise. */
export const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..")

/** tsx's ESM loader (the package's "." export), as a URL that `--import` takes from any working directory. */
export const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href

/** The arguments of `node` that run a TypeScript file in the spawned process itself. */
export const tsArgs = (file: string, args: ReadonlyArray<string> = []): ReadonlyArray<string> => [
  "--import",
  tsxLoader,
  file,
  ...args
]

export interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export interface Options {
  /** Added to the environment the child inherits; an `undefined` value removes the variable. */
  readonly env?: Readonly<Record<string, string | undefined>>
  readonly cwd?: string
  /** `"open"` keeps stdin a pipe the test writes to; by default it is closed at once (end of input). */
  readonly stdin?: "open" | "closed"
}

export interface Child {
  readonly process: ChildProcessWithoutNullStreams
  readonly stdout: () => string
  readonly stderr: () => string
  /** stdout and stderr, interleaved as they arrived. */
  readonly output: () => string
  /** How the process ended, once it has and its output is read; `undefined` before. */
  readonly exit: () => Exit | undefined
  /** Resolves once the process has ended and its output is read. */
  readonly exited: Promise<Exit>
  /**
   * The first match of `pattern` in stdout (or, `from: "output"`, in stdout and stderr); rejects, with the output,
   * when the process ends first or `timeoutMillis` pass.
   */
  readonly waitFor: (
    pattern: RegExp,
    options?: { readonly from?: "stdout" | "output"; readonly timeoutMillis?: number }
  ) => Promise<RegExpExecArray>
  /** Sends `signal`, unless the process is already gone. */
  readonly kill: (signal: NodeJS.Signals) => void
  /** SIGTERM, then SIGKILL after `graceMillis`; resolves once the process is gone. */
  readonly stop: (graceMillis?: number) => Promise<Exit>
}

/** How long to wait for the output after the process ended (a grandchild may hold the pipes a moment). */
const DRAIN_MILLIS = 2_000

interface Waiter {
  readonly pattern: RegExp
  readonly from: "stdout" | "output"
  readonly resolve: (match: RegExpExecArray) => void
  readonly reject: (error: Error) => void
}

/** Spawns `command` with `args` (cwd: the repository's root, inheriting this process' environment). */
export const start = (command: string, args: ReadonlyArray<string>, options: Options = {}): Child => {
  const child = spawn(command, [...args], {
    cwd: options.cwd ?? root,
    env: { ...process.env, ...options.env }
  })
  // A write after the child is gone fails with EPIPE; the test learns of the exit through `exited` instead.
  child.stdin.on("error", () => undefined)
  if (options.stdin !== "open") child.stdin.end()
  // Decoded by the streams, so that a character split between two chunks stays whole.
  child.stdout.setEncoding("utf8")
  child.stderr.setEncoding("utf8")
  let stdout = ""
  let stderr = ""
  let output = ""
  let exit: Exit | undefined
  let waiters: Array<Waiter> = []
  const check = () => {
    waiters = waiters.filter((waiter) => {
      const match = waiter.pattern.exec(waiter.from === "stdout" ? stdout : output)
      if (match !== null) waiter.resolve(match)
      return match === null
    })
  }
  const exited = new Promise<Exit>((resolveExit) => {
    const finish = (ended: Exit) => {
      if (exit !== undefined) return
      exit = ended
      resolveExit(ended)
      const pending = waiters
      waiters = []
      const how = ended.code ?? ended.signal ?? "unknown"
      pending.forEach((waiter) =>
        waiter.reject(new Error(`${command} exited (${how}) before printing ${waiter.pattern}:\n${output}`))
      )
    }
    child.on("close", (code, signal) => finish({ code, signal }))
    child.on("exit", (code, signal) => {
      setTimeout(() => finish({ code, signal }), DRAIN_MILLIS).unref()
    })
    child.on("error", (error) => {
      stderr += `${error.message}\n`
      output += `${error.message}\n`
      finish({ code: null, signal: null })
    })
  })
  child.stdout.on("data", (text: string) => {
    stdout += text
    output += text
    check()
  })
  child.stderr.on("data", (text: string) => {
    stderr += text
    output += text
    check()
  })
  const running = () => child.exitCode === null && child.signalCode === null
  const kill = (signal: NodeJS.Signals) => {
    if (running()) child.kill(signal)
  }
  return {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    output: () => output,
    exit: () => exit,
    exited,
    waitFor: (pattern, { from = "stdout", timeoutMillis } = {}) =>
      new Promise<RegExpExecArray>((resolveMatch, reject) => {
        const timer = timeoutMillis === undefined ? undefined : setTimeout(() => {
          waiters = waiters.filter((waiter) => waiter !== added)
          reject(new Error(`${command} did not print ${pattern} within ${timeoutMillis} ms:\n${output}`))
        }, timeoutMillis)
        const added: Waiter = {
          pattern,
          from,
          resolve: (match) => {
            clearTimeout(timer)
            resolveMatch(match)
          },
          reject: (error) => {
            clearTimeout(timer)
            reject(error)
          }
        }
        waiters.push(added)
        check()
        // Already gone: what it printed is all there is.
        if (exit !== undefined && waiters.includes(added)) {
          waiters = waiters.filter((waiter) => waiter !== added)
          added.reject(new Error(`${command} exited before printing ${pattern}:\n${output}`))
        }
      }),
    kill,
    stop: (graceMillis = 5_000) => {
      if (running()) {
        const timer = setTimeout(() => kill("SIGKILL"), graceMillis)
        void exited.then(() => clearTimeout(timer))
        kill("SIGTERM")
      }
      return exited
    }
  }
}

/** Runs a TypeScript file with tsx's loader in the spawned process itself. */
export const startTs = (file: string, args: ReadonlyArray<string> = [], options: Options = {}): Child =>
  start(process.execPath, tsArgs(file, args), options)

export interface ScopedOptions extends Options {
  /**
   * How the finalizer stops the process: by default SIGKILL at once (a test worker has nothing to flush); with
   * `graceMillis`, SIGTERM and SIGKILL after that long. Either way the scope closes once the process is gone.
   */
  readonly graceMillis?: number
}

const release = (child: Child, graceMillis: number | undefined): Effect.Effect<void> =>
  Effect.promise(() => {
    if (graceMillis !== undefined) return child.stop(graceMillis)
    child.kill("SIGKILL")
    return child.exited
  })

/** `start`, the process stopped when the scope closes. */
export const scoped = (
  command: string,
  args: ReadonlyArray<string>,
  options: ScopedOptions = {}
): Effect.Effect<Child, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => start(command, args, options)),
    (child) => release(child, options.graceMillis)
  )

/** `startTs`, the process stopped when the scope closes. */
export const scopedTs = (
  file: string,
  args: ReadonlyArray<string> = [],
  options: ScopedOptions = {}
): Effect.Effect<Child, never, Scope.Scope> => scoped(process.execPath, tsArgs(file, args), options)
