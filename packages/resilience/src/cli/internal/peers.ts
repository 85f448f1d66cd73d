/**
 * The packages the `bulwark` bin needs at run time, and what it says when some
 * are not installed. `@effect/cli`, `@effect/platform-node`, `@effect/sql` and
 * `@effect/sql-pg` are optional peer dependencies of `@bulwark/resilience`:
 * an application that only uses the library does not install them.
 *
 * This module imports nothing: the bin's entry (`../main.ts`) loads it
 * statically, before it knows that any of those packages is there.
 */

/**
 * What the command line imports, in the order the message names them. `effect`
 * and `@effect/platform` are required peers of the library itself, checked too
 * so that a broken install gets the same answer as a partial one.
 *
 * @internal
 */
export const cliPeers: ReadonlyArray<string> = [
  "effect",
  "@effect/platform",
  "@effect/cli",
  "@effect/platform-node",
  "@effect/sql",
  "@effect/sql-pg"
]

/**
 * Resolves a bare specifier the way the bin's own imports will be resolved
 * (`import.meta.resolve`), or throws.
 *
 * @internal
 */
export type Resolve = (specifier: string) => unknown

const isModuleNotFound = (error: unknown): boolean =>
  typeof error === "object" && error !== null && "code" in error && error.code === "ERR_MODULE_NOT_FOUND"

/**
 * The packages of `names` that `resolve` cannot find, in order. Only "not
 * found" counts: any other resolution error (a package without the expected
 * export, say) means the package is there, and importing it reports the real
 * problem.
 *
 * @internal
 */
export const missing = (names: ReadonlyArray<string>, resolve: Resolve): ReadonlyArray<string> =>
  names.filter((name) => {
    try {
      resolve(name)
      return false
    } catch (error) {
      return isModuleNotFound(error)
    }
  })

// Node's wording for a bare specifier whose package is not installed; the name is the package, never a subpath.
const CANNOT_FIND_PACKAGE = /^Cannot find package '((?:@[^/']+\/)?[^/']+)'/

/**
 * The package an import failed to find, when `error` is Node's
 * `ERR_MODULE_NOT_FOUND` for a package (not for a missing file). It catches
 * what the up-front check cannot see: a dependency of a peer that is missing.
 *
 * @internal
 */
export const notFoundPackage = (error: unknown): string | undefined => {
  if (!isModuleNotFound(error) || !(error instanceof Error)) return undefined
  return CANNOT_FIND_PACKAGE.exec(error.message)?.[1]
}

const list = (names: ReadonlyArray<string>): string =>
  names.length <= 1 ? names.join("") : `${names.slice(0, -1).join(", ")} and ${names[names.length - 1]}`

/**
 * The version ranges of `@bulwark/resilience`'s peer dependencies, read from a
 * `package.json` text; empty when it cannot be read. The install hint needs
 * them: npm's `latest` of several `@effect/*` packages is for Effect 4.
 *
 * @internal
 */
export const peerRanges = (manifest: string | undefined): ReadonlyMap<string, string> => {
  const ranges = new Map<string, string>()
  if (manifest === undefined) return ranges
  try {
    const parsed: unknown = JSON.parse(manifest)
    if (typeof parsed !== "object" || parsed === null || !("peerDependencies" in parsed)) return ranges
    const peerDependencies: unknown = parsed.peerDependencies
    if (typeof peerDependencies !== "object" || peerDependencies === null) return ranges
    for (const [name, range] of Object.entries(peerDependencies)) {
      if (typeof range === "string") ranges.set(name, range)
    }
  } catch {
    // an unreadable manifest only costs the hint its version ranges
  }
  return ranges
}

/**
 * The one line the bin prints (to stderr, exit code 1) when packages are
 * missing: which, and the command that installs them, with the version ranges
 * `@bulwark/resilience` accepts.
 *
 * @internal
 */
export const message = (names: ReadonlyArray<string>, ranges: ReadonlyMap<string, string> = new Map()): string =>
  `bulwark: the command line needs ${list(names)}; install ${names.length === 1 ? "it" : "them"} with: ` +
  `npm install ${names.map((name) => ranges.has(name) ? `${name}@${ranges.get(name)}` : name).join(" ")}`
