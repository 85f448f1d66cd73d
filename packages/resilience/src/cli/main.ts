#!/usr/bin/env node
/**
 * The `bulwark` executable: `npx bulwark dlq list` in an application that
 * installed `@bulwark/resilience` (the package's `bin`), `npm run bulwark --
 * dlq list` in this repository. See `Cli.ts` for the commands.
 *
 * The command line's packages (`@effect/cli`, `@effect/platform-node`,
 * `@effect/sql`, `@effect/sql-pg`) are optional peer dependencies, and ESM
 * links static imports before any code runs: a static import of a missing one
 * would die with Node's stack trace. So this entry imports only the peer check;
 * when something is missing it names it and exits with 1, otherwise it loads
 * the program (`internal/program.ts`) dynamically.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import * as peers from "./internal/peers.js"

const readManifest = (): string | undefined => {
  try {
    // two levels up from src/cli/ (in this repository) and from dist/cli/ (installed) alike
    return readFileSync(new URL("../../package.json", import.meta.url), "utf8")
  } catch {
    return undefined
  }
}

const fail = (missing: ReadonlyArray<string>): void => {
  process.stderr.write(`${peers.message(missing, peers.peerRanges(readManifest()))}\n`)
  process.exitCode = 1
}

// Resolved from this file, as the program's own imports will be: the application's node_modules.
const missing = peers.missing(peers.cliPeers, (specifier) => import.meta.resolve(specifier))

if (missing.length > 0) {
  fail(missing)
} else {
  try {
    await import("./internal/program.js")
  } catch (error) {
    // A package the check does not list (a peer's own dependency) can still be missing.
    const name = peers.notFoundPackage(error)
    if (name === undefined) throw error
    fail([name])
  }
}
