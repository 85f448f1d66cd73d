/**
 * The packages' manifests, checked against the source tree: every public entry has its source, its declarations and
 * its JavaScript under the same path; internal/ is closed; the root entry re-exports the core modules and reaches no
 * optional peer through any value import; every package a module imports is declared as a peer.
 * test/consumer/consumer.test.ts proves the same from an installed tarball.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Schema from "effect/Schema"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, relative, resolve } from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..")

const Entry = Schema.Struct({ "bulwark-source": Schema.String, types: Schema.String, default: Schema.String })
const Manifest = Schema.Struct({
  name: Schema.String,
  exports: Schema.Record({ key: Schema.String, value: Schema.Union(Entry, Schema.String, Schema.Null) }),
  files: Schema.Array(Schema.String),
  bin: Schema.Record({ key: Schema.String, value: Schema.String }),
  dependencies: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.String })),
  peerDependencies: Schema.Record({ key: Schema.String, value: Schema.String }),
  peerDependenciesMeta: Schema.optional(
    Schema.Record({ key: Schema.String, value: Schema.Struct({ optional: Schema.Boolean }) })
  )
})

const manifestOf = (folder: string) =>
  Schema.decodeUnknownSync(Schema.parseJson(Manifest))(readFileSync(resolve(root, folder, "package.json"), "utf8"))

const resilience = manifestOf("packages/resilience")
const dashboard = manifestOf("packages/dashboard")

/** The modules a file imports for their values (type-only imports are erased and load nothing). */
const valueImports = (file: string): ReadonlyArray<string> => {
  const source = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest)
  const specifiers: Array<string> = []
  for (const statement of source.statements) {
    if (ts.isImportDeclaration(statement)) {
      const clause = statement.importClause
      if (clause?.isTypeOnly) continue
      const bindings = clause?.namedBindings
      const onlyTypes = clause !== undefined && clause.name === undefined && bindings !== undefined &&
        ts.isNamedImports(bindings) && bindings.elements.length > 0 &&
        bindings.elements.every((element) => element.isTypeOnly)
      if (!onlyTypes && ts.isStringLiteral(statement.moduleSpecifier)) specifiers.push(statement.moduleSpecifier.text)
    } else if (
      ts.isExportDeclaration(statement) && !statement.isTypeOnly && statement.moduleSpecifier !== undefined &&
      ts.isStringLiteral(statement.moduleSpecifier)
    ) specifiers.push(statement.moduleSpecifier.text)
  }
  return specifiers
}

const packageOf = (specifier: string) =>
  specifier.startsWith("@") ? specifier.split("/").slice(0, 2).join("/") : specifier.split("/")[0] ?? specifier

/** Every package reached from `file` through value imports, with the chain of files that reaches it. */
const packagesReachedFrom = (file: string): ReadonlyMap<string, string> => {
  const reached = new Map<string, string>()
  const seen = new Set<string>()
  const visit = (current: string, chain: string) => {
    if (seen.has(current)) return
    seen.add(current)
    for (const specifier of valueImports(current)) {
      if (specifier.startsWith(".")) {
        const next = resolve(dirname(current), specifier.replace(/\.js$/, ".ts"))
        visit(next, `${chain} > ${relative(root, next)}`)
      } else if (!specifier.startsWith("node:") && !reached.has(packageOf(specifier))) {
        reached.set(packageOf(specifier), chain)
      }
    }
  }
  visit(file, relative(root, file))
  return reached
}

const CORE_PEERS = ["effect", "@effect/platform"]

describe("@bulwark/resilience and @bulwark/dashboard manifests", () => {
  it("point every public entry at its source, declarations and JavaScript under one path", () => {
    for (
      const [folder, manifest] of [["packages/resilience", resilience], ["packages/dashboard", dashboard]] as const
    ) {
      for (const [entry, target] of Object.entries(manifest.exports)) {
        if (entry === "./package.json") assert.strictEqual(target, "./package.json")
        else if (entry.startsWith("./internal")) assert.isNull(target, `${manifest.name} keeps internal/ closed`)
        else {
          assert.isObject(target, entry)
          if (target === null || typeof target === "string") continue
          const source = target["bulwark-source"]
          assert.match(source, /^\.\/src\/.+\.ts$/, entry)
          readFileSync(resolve(root, folder, source))
          assert.strictEqual(target.types, source.replace("./src/", "./dist/").replace(/\.ts$/, ".d.ts"), entry)
          assert.strictEqual(target.default, source.replace("./src/", "./dist/").replace(/\.ts$/, ".js"), entry)
          assert.deepStrictEqual(Object.keys(target), ["bulwark-source", "types", "default"], "condition order")
        }
      }
      assert.includeMembers([...manifest.files], ["dist", "README.md", "LICENSE"])
      for (const bin of Object.values(manifest.bin)) {
        const source = resolve(root, folder, bin.replace("./dist/", "src/").replace(/\.js$/, ".ts"))
        assert.match(readFileSync(source, "utf8"), /^#!\/usr\/bin\/env node\n/, `${bin} starts with a shebang`)
      }
    }
  })

  it("close internal/ to importers", () => {
    const require = createRequire(import.meta.url)
    assert.throws(
      () => require.resolve("@bulwark/resilience/internal/options"),
      /ERR_PACKAGE_PATH_NOT_EXPORTED|not defined by "exports"/
    )
  })

  it("declare effect and @effect/platform as the only required peers, every other integration as optional", () => {
    assert.isUndefined(resilience.dependencies, "@bulwark/resilience has no dependencies of its own")
    for (const [name, range] of Object.entries(resilience.peerDependencies)) {
      assert.match(range, /^\^\d+\.\d+\.\d+$/, `${name} has a caret range`)
      const optional = resilience.peerDependenciesMeta?.[name]?.optional ?? false
      assert.strictEqual(optional, !CORE_PEERS.includes(name), `${name} is ${optional ? "optional" : "required"}`)
    }
    assert.strictEqual(resilience.peerDependencies["effect"], "^3.22.0")
    assert.strictEqual(dashboard.peerDependencies["@bulwark/resilience"], "^0.1.0")
  })

  it("reach only the core peers from the root entry; every package any entry reaches is a declared peer", async () => {
    const rootEntry = resolve(root, "packages/resilience/src/index.ts")
    const fromRoot = packagesReachedFrom(rootEntry)
    for (const [name, chain] of fromRoot) assert.include(CORE_PEERS, name, `the root entry loads ${name}: ${chain}`)

    for (const target of Object.values(resilience.exports)) {
      if (target === null || typeof target === "string") continue
      for (const [name, chain] of packagesReachedFrom(resolve(root, "packages/resilience", target["bulwark-source"]))) {
        assert.include(Object.keys(resilience.peerDependencies), name, `${name} is a peer (${chain})`)
      }
    }
    const bulwark = await import("@bulwark/resilience")
    assert.isFunction(bulwark.Retry.retry)
    assert.isFunction(bulwark.CircuitBreaker.protect)
    assert.notProperty(bulwark, "SqlJobQueue")
  })

  it("re-export from the root every public module that needs no optional peer", () => {
    const barrel = readFileSync(resolve(root, "packages/resilience/src/index.ts"), "utf8")
    for (const [entry, target] of Object.entries(resilience.exports)) {
      if (target === null || typeof target === "string" || entry === ".") continue
      const source = target["bulwark-source"]
      const needsOptionalPeer = [...packagesReachedFrom(resolve(root, "packages/resilience", source)).keys()]
        .some((name) => !CORE_PEERS.includes(name))
      const reexported = barrel.includes(`from "${source.replace("./src/", "./").replace(/\.ts$/, ".js")}"`)
      assert.strictEqual(reexported, !needsOptionalPeer, `${entry} ${needsOptionalPeer ? "is not" : "is"} in the root`)
    }
  })
})
