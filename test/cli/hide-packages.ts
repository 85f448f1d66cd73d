/**
 * Makes packages unresolvable in one Node process, as if they were not
 * installed: a module-resolution hook that answers `ERR_MODULE_NOT_FOUND`, in
 * Node's own words, for every specifier of the packages named in
 * `HIDE_PACKAGES` (comma-separated). Everything else resolves as usual.
 *
 * `node --import <tsx> --import ./test/cli/hide-packages.ts <entry>`: imported
 * on the main thread, the module registers itself, and Node loads it again on
 * its hooks thread, where `resolve` runs. Both `import()` and
 * `import.meta.resolve` go through the hook, so the bin meets exactly what an
 * application without those packages gives it.
 */
import { register, type ResolveHook } from "node:module"
import { isMainThread } from "node:worker_threads"

const hidden = (process.env["HIDE_PACKAGES"] ?? "").split(",").filter((name) => name !== "")

export const resolve: ResolveHook = (specifier, context, next) => {
  const name = hidden.find((candidate) => specifier === candidate || specifier.startsWith(`${candidate}/`))
  if (name === undefined) return next(specifier, context)
  throw Object.assign(new Error(`Cannot find package '${name}' imported from ${context.parentURL ?? "the entry"}`), {
    code: "ERR_MODULE_NOT_FOUND"
  })
}

if (isMainThread) register(import.meta.url)
