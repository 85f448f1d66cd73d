import { assert, describe, it } from "@effect/vitest"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as output from "./output.js"

const ESC = "\u001b"

/** The default console with `log` and `error` recorded instead of written. */
const recording = Effect.map(Effect.console, (console) => {
  const lines: Array<{ readonly stream: "stdout" | "stderr"; readonly args: ReadonlyArray<unknown> }> = []
  const recorder: Console.Console = {
    ...console,
    log: (...args: ReadonlyArray<unknown>) => Effect.sync(() => lines.push({ stream: "stdout", args })),
    error: (...args: ReadonlyArray<unknown>) => Effect.sync(() => lines.push({ stream: "stderr", args }))
  }
  return { lines, recorder }
})

describe("plain output", () => {
  it("is plain unless the stream is a terminal, and always with a non-empty NO_COLOR", () => {
    assert.isFalse(output.isPlain(true, ""))
    assert.isTrue(output.isPlain(false, ""))
    assert.isTrue(output.isPlain(undefined, ""))
    assert.isTrue(output.isPlain(true, "1"))
    assert.isTrue(output.isPlain(false, "0"))
  })

  it("strips the printer's styles and other control sequences, nothing else", () => {
    assert.strictEqual(output.stripAnsi(`${ESC}[0;1m${ESC}[0;37;1mbulwark${ESC}[0;1m${ESC}[0m`), "bulwark")
    assert.strictEqual(output.stripAnsi(`${ESC}[1G${ESC}[0Kdone`), "done")
    assert.strictEqual(output.stripAnsi("[--status pending | all] 50% ~ 'x'"), "[--status pending | all] 50% ~ 'x'")
  })

  it.effect("strips what goes to a plain stream and keeps what goes to a terminal", () =>
    Effect.gen(function*() {
      const { lines, recorder } = yield* recording
      const styled = `${ESC}[1mUSAGE${ESC}[0m`
      yield* Effect.withConsole(
        Effect.all([Console.log(styled, 42), Console.error(styled)]),
        output.plainConsole(recorder, { stdout: true, stderr: false })
      )
      assert.deepStrictEqual(lines, [
        { stream: "stdout", args: ["USAGE", 42] },
        { stream: "stderr", args: [styled] }
      ])
      // Terminals on both sides: the console itself, untouched.
      assert.strictEqual(output.plainConsole(recorder, { stdout: false, stderr: false }), recorder)
    }))
})
