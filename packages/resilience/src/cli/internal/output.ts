import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"

/**
 * Which streams get plain text. `@effect/cli` renders its help and its
 * command-line errors with `@effect/printer-ansi` and always styles them, with
 * no setting to turn that off, so the CLI removes the escapes on their way out.
 *
 * @internal
 */
export interface Plain {
  readonly stdout: boolean
  readonly stderr: boolean
}

/**
 * A stream gets plain text unless it is a terminal, and always when
 * `NO_COLOR` is set to anything but the empty string (https://no-color.org).
 *
 * @internal
 */
export const isPlain = (isTTY: boolean | undefined, noColor: string): boolean => noColor !== "" || isTTY !== true

const ESC = String.fromCharCode(0x1b)
// Control sequences (ESC [ parameters intermediates final): the printer only emits SGR styles (`ESC[0;1m`), but a
// cursor or erase sequence has no business in piped output either.
const CONTROL_SEQUENCE = new RegExp(`${ESC}\\[[0-?]*[ -/]*[@-~]`, "g")

/**
 * `text` without ANSI control sequences.
 *
 * @internal
 */
export const stripAnsi = (text: string): string => text.replace(CONTROL_SEQUENCE, "")

type Args = ReadonlyArray<unknown>

const strip = (args: Args): Args => args.map((arg) => typeof arg === "string" ? stripAnsi(arg) : arg)
const keep = (args: Args): Args => args

/**
 * `console` with the escapes removed from what it writes to the plain streams:
 * `log`, `info` and `debug` go to stdout, `error`, `warn`, `trace` and `assert`
 * to stderr (as Node's console does). Only strings change; everything else is
 * passed on as given.
 *
 * @internal
 */
export const plainConsole = (console: Console.Console, plain: Plain): Console.Console => {
  if (!plain.stdout && !plain.stderr) return console
  const out = plain.stdout ? strip : keep
  const err = plain.stderr ? strip : keep
  const unsafe = console.unsafe
  return {
    [Console.TypeId]: Console.TypeId,
    assert: (condition, ...args: Args) => console.assert(condition, ...err(args)),
    clear: console.clear,
    count: (label) => console.count(label),
    countReset: (label) => console.countReset(label),
    debug: (...args: Args) => console.debug(...out(args)),
    dir: (item: unknown, options?: unknown) => console.dir(item, options),
    dirxml: (...args: Args) => console.dirxml(...args),
    error: (...args: Args) => console.error(...err(args)),
    group: (options) => console.group(options),
    groupEnd: console.groupEnd,
    info: (...args: Args) => console.info(...out(args)),
    log: (...args: Args) => console.log(...out(args)),
    table: (data: unknown, properties) => console.table(data, properties),
    time: (label) => console.time(label),
    timeEnd: (label) => console.timeEnd(label),
    timeLog: (label, ...args: Args) => console.timeLog(label, ...args),
    trace: (...args: Args) => console.trace(...err(args)),
    warn: (...args: Args) => console.warn(...err(args)),
    unsafe: {
      assert: (condition, ...args: Args) => unsafe.assert(condition, ...err(args)),
      clear: () => unsafe.clear(),
      count: (label) => unsafe.count(label),
      countReset: (label) => unsafe.countReset(label),
      debug: (...args: Args) => unsafe.debug(...out(args)),
      dir: (item: unknown, options?: unknown) => unsafe.dir(item, options),
      dirxml: (...args: Args) => unsafe.dirxml(...args),
      error: (...args: Args) => unsafe.error(...err(args)),
      group: (...args: Args) => unsafe.group(...out(args)),
      groupCollapsed: (...args: Args) => unsafe.groupCollapsed(...out(args)),
      groupEnd: () => unsafe.groupEnd(),
      info: (...args: Args) => unsafe.info(...out(args)),
      log: (...args: Args) => unsafe.log(...out(args)),
      table: (data: unknown, properties) => unsafe.table(data, properties),
      time: (label) => unsafe.time(label),
      timeEnd: (label) => unsafe.timeEnd(label),
      timeLog: (label, ...args: Args) => unsafe.timeLog(label, ...args),
      trace: (...args: Args) => unsafe.trace(...err(args)),
      warn: (...args: Args) => unsafe.warn(...err(args))
    }
  }
}

/**
 * Which of this process's streams get plain text: `NO_COLOR` through the
 * `ConfigProvider`, each stream's `isTTY`.
 *
 * @internal
 */
export const plain: Effect.Effect<Plain> = Config.string("NO_COLOR").pipe(
  Effect.orElseSucceed(() => ""),
  Effect.flatMap((noColor) =>
    Effect.sync(() => ({
      stdout: isPlain(process.stdout.isTTY, noColor),
      stderr: isPlain(process.stderr.isTTY, noColor)
    }))
  )
)

/**
 * Runs `self` with a console that writes plain text to the streams that want
 * it (see {@link plain}).
 *
 * @internal
 */
export const withPlainOutput = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.flatMap(
    Effect.all([plain, Effect.console]),
    ([streams, console]) => Effect.withConsole(self, plainConsole(console, streams))
  )
