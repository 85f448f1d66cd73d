import { spawnSync } from "node:child_process"
import { existsSync } from "node:fs"

/** Debian's `prometheus` package installs it here; CI installs that package. */
export const PROMTOOL = "/usr/bin/promtool"

export interface Run {
  readonly code: number
  readonly output: string
}

/**
 * Runs the real promtool. A missing promtool fails the test loudly: these
 * checks are the point of the tests, never something to skip.
 */
export const promtool = (args: ReadonlyArray<string>, input?: string): Run => {
  if (!existsSync(PROMTOOL)) {
    throw new Error(`${PROMTOOL} is missing: install Debian's prometheus package (apt-get install prometheus)`)
  }
  const result = spawnSync(PROMTOOL, args, { input, encoding: "utf8", timeout: 20_000 })
  if (result.error !== undefined) throw result.error
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` }
}
