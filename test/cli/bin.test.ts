/**
 * The `bulwark` bin as an OS process: its entry (`src/cli/main.ts`, run with
 * tsx's loader and the `bulwark-source` condition), stdout and stderr piped —
 * not terminals, as under `| cat`, in CI, or in a log. Help and usage errors
 * need no database.
 *
 * The missing-peer message is checked against real module resolution: a hook
 * (`hide-packages.ts`) makes packages unresolvable in the child, so the entry
 * sees what an application without them gives it. `peers.test.ts` (next to
 * the check) covers the pure part.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import { readFileSync } from "node:fs"
import { resolve } from "node:path"
import { pathToFileURL } from "node:url"
import * as Process from "../support/process.js"

const entry = resolve(Process.root, "packages/resilience/src/cli/main.ts")
const hidePackages = pathToFileURL(resolve(Process.root, "test/cli/hide-packages.ts")).href
const manifest: unknown = JSON.parse(readFileSync(resolve(Process.root, "packages/resilience/package.json"), "utf8"))

const ESC = "\u001b"

interface Result {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `bulwark <args>` to completion; `hide` names packages the process cannot resolve. */
const bulwark = (
  args: ReadonlyArray<string>,
  options: { readonly env?: Readonly<Record<string, string | undefined>>; readonly hide?: ReadonlyArray<string> } = {}
): Effect.Effect<Result> =>
  Effect.scoped(
    Effect.flatMap(
      Process.scoped(
        process.execPath,
        [
          "--conditions=bulwark-source",
          "--import",
          Process.tsxLoader,
          ...(options.hide === undefined ? [] : ["--import", hidePackages]),
          entry,
          ...args
        ],
        {
          env: {
            // Whatever the test runner's environment says: colour is decided by the pipes, and no database is needed.
            NO_COLOR: undefined,
            DATABASE_URL: undefined,
            ...(options.hide === undefined ? {} : { HIDE_PACKAGES: options.hide.join(",") }),
            ...options.env
          }
        }
      ),
      (child) =>
        Effect.promise(() =>
          child.exited.then(({ code }) => ({ code, stdout: child.stdout(), stderr: child.stderr() }))
        )
    )
  )

const assertPlain = (result: Result) => {
  assert.notInclude(result.stdout, ESC, "no escape codes on stdout")
  assert.notInclude(result.stderr, ESC, "no escape codes on stderr")
}

describe("the bulwark bin", () => {
  it("starts with a shebang, so the compiled entry runs as an executable", () => {
    const [first] = readFileSync(entry, "utf8").split("\n")
    assert.strictEqual(first, "#!/usr/bin/env node")
  })

  it.effect("prints the help in plain text when stdout is a pipe, and with NO_COLOR", () =>
    Effect.gen(function*() {
      const [piped, noColor] = yield* Effect.all([
        bulwark(["--help"]),
        bulwark(["--help"], { env: { NO_COLOR: "1" } })
      ], { concurrency: 2 })
      for (const result of [piped, noColor]) {
        assert.strictEqual(result.code, 0, result.stderr)
        assertPlain(result)
        assert.strictEqual(result.stderr, "")
        assert.include(result.stdout, "USAGE")
        assert.include(result.stdout, "Operate Bulwark's Postgres job queue")
        assert.match(result.stdout, /- dlq list \[--database-url text\]/)
        assert.match(result.stdout, /- queues stats/)
      }
    }), 60_000)

  it.effect("prints each command's help", () =>
    Effect.gen(function*() {
      const expected: ReadonlyArray<readonly [args: ReadonlyArray<string>, description: string]> = [
        [["dlq", "--help"], "The dead-letter queue"],
        [["dlq", "list", "--help"], "List dead-letter entries"],
        [["dlq", "show", "--help"], "Show one entry"],
        [["dlq", "replay", "--help"], "Replay entries as fresh jobs"],
        [["dlq", "discard", "--help"], "Discard entries"],
        [["queues", "--help"], "Queue depth"],
        [["queues", "stats", "--help"], "Jobs per queue and state"]
      ]
      const results = yield* Effect.forEach(
        expected,
        ([args, description]) => Effect.map(bulwark(args), (result) => ({ result, description })),
        { concurrency: 4 }
      )
      for (const { description, result } of results) {
        assert.strictEqual(result.code, 0, result.stderr)
        assertPlain(result)
        assert.include(result.stdout, description)
      }
      assert.include(results[1]?.result.stdout, "--since text")
      assert.include(results[4]?.result.stdout, "--yes")
    }), 60_000)

  it.effect("prints the package's version", () =>
    Effect.gen(function*() {
      const result = yield* bulwark(["--version"])
      assert.strictEqual(result.code, 0, result.stderr)
      const version = typeof manifest === "object" && manifest !== null && "version" in manifest
        ? manifest.version
        : undefined
      assert.isString(version)
      assert.strictEqual(result.stdout.trim(), version)
      assertPlain(result)
    }), 60_000)

  it.effect(
    "answers an unknown command or flag with the usage on stderr and exit code 2",
    () =>
      Effect.gen(function*() {
        const [command, subcommand, flag, badValue, none] = yield* Effect.all([
          bulwark(["explode"]),
          bulwark(["dlq", "explode"]),
          bulwark(["dlq", "list", "--frob"]),
          bulwark(["dlq", "list", "--limit", "many"]),
          bulwark(["dlq"])
        ], { concurrency: 3 })
        for (const result of [command, subcommand, flag, badValue, none]) {
          assert.strictEqual(result.code, 2, result.stdout + result.stderr)
          assert.strictEqual(result.stdout, "")
          assert.include(result.stderr, "USAGE")
          assertPlain(result)
        }
        // Every command, under an unknown one.
        assert.include(command.stderr, "Invalid subcommand for bulwark")
        assert.include(command.stderr, "$ bulwark dlq list [--database-url text]")
        assert.include(command.stderr, "$ bulwark queues stats [--database-url text] [--json]")
        assert.include(command.stderr, "Run 'bulwark --help'")
        // The group's commands, under an unknown one in the group, or none.
        for (const result of [subcommand, none]) {
          assert.include(result.stderr, "$ bulwark dlq discard")
          assert.notInclude(result.stderr, "$ bulwark queues stats")
          assert.include(result.stderr, "Run 'bulwark dlq --help'")
        }
        assert.include(none.stderr, "bulwark: Missing subcommand: bulwark dlq list|show|replay|discard")
        // The command's own usage, under its bad flag or value.
        assert.include(flag.stderr, "Received unknown argument: '--frob'")
        for (const result of [flag, badValue]) {
          assert.include(result.stderr, "$ bulwark dlq list [--database-url text]")
          assert.notInclude(result.stderr, "$ bulwark dlq show")
          assert.include(result.stderr, "Run 'bulwark dlq list --help' for the options.")
        }
      }),
    60_000
  )

  it.effect(
    "names the missing optional peers and how to install them, exit code 1, no stack trace",
    () =>
      Effect.gen(function*() {
        const [all, two, peerOfPeer] = yield* Effect.all([
          bulwark(["--help"], { hide: ["@effect/cli", "@effect/platform-node", "@effect/sql", "@effect/sql-pg"] }),
          bulwark(["dlq", "list"], { hide: ["@effect/sql-pg", "@effect/cli"] }),
          // Not one of the CLI's own imports but a dependency of @effect/cli: found when the program loads.
          bulwark(["--help"], { hide: ["@effect/printer-ansi"] })
        ], { concurrency: 3 })
        assert.strictEqual(all.code, 1, all.stdout + all.stderr)
        assert.strictEqual(
          all.stderr,
          "bulwark: the command line needs @effect/cli, @effect/platform-node, @effect/sql and @effect/sql-pg; " +
            "install them with: npm install @effect/cli@^0.77.0 @effect/platform-node@^0.108.0 @effect/sql@^0.52.0 " +
            "@effect/sql-pg@^0.53.0\n"
        )
        assert.strictEqual(two.code, 1, two.stdout + two.stderr)
        assert.strictEqual(
          two.stderr,
          "bulwark: the command line needs @effect/cli and @effect/sql-pg; " +
            "install them with: npm install @effect/cli@^0.77.0 @effect/sql-pg@^0.53.0\n"
        )
        assert.strictEqual(peerOfPeer.code, 1, peerOfPeer.stdout + peerOfPeer.stderr)
        assert.strictEqual(
          peerOfPeer.stderr,
          "bulwark: the command line needs @effect/printer-ansi; install it with: npm install @effect/printer-ansi\n"
        )
        for (const result of [all, two, peerOfPeer]) assert.strictEqual(result.stdout, "")
      }),
    60_000
  )
})
