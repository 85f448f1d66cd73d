import { assert, describe, it } from "@effect/vitest"
import * as peers from "./peers.js"

const notFound = (name: string) =>
  Object.assign(new Error(`Cannot find package '${name}' imported from /app/node_modules/x.js`), {
    code: "ERR_MODULE_NOT_FOUND"
  })

/** A resolver over an installed set: throws like Node for anything else. */
const installed = (names: ReadonlyArray<string>): peers.Resolve => (specifier) => {
  if (!names.includes(specifier)) throw notFound(specifier)
  return `file:///app/node_modules/${specifier}/index.js`
}

describe("the bin's peer check", () => {
  it("lists the packages that do not resolve, in the order given", () => {
    assert.deepStrictEqual(peers.missing(peers.cliPeers, installed(peers.cliPeers)), [])
    assert.deepStrictEqual(
      peers.missing(peers.cliPeers, installed(["effect", "@effect/platform"])),
      ["@effect/cli", "@effect/platform-node", "@effect/sql", "@effect/sql-pg"]
    )
    assert.deepStrictEqual(
      peers.missing(peers.cliPeers, installed(["effect", "@effect/platform", "@effect/cli", "@effect/sql"])),
      ["@effect/platform-node", "@effect/sql-pg"]
    )
  })

  it("counts only 'not found' as missing: another resolution error means the package is there", () => {
    const resolve: peers.Resolve = (specifier) => {
      if (specifier === "@effect/sql") {
        throw Object.assign(new Error("No \"exports\" main defined"), { code: "ERR_PACKAGE_PATH_NOT_EXPORTED" })
      }
      if (specifier === "@effect/sql-pg") throw notFound(specifier)
      return specifier
    }
    assert.deepStrictEqual(peers.missing(["@effect/sql", "@effect/sql-pg"], resolve), ["@effect/sql-pg"])
  })

  it("names the package of a failed import, not a missing file", () => {
    assert.strictEqual(peers.notFoundPackage(notFound("@effect/printer-ansi")), "@effect/printer-ansi")
    assert.strictEqual(peers.notFoundPackage(notFound("pg")), "pg")
    const missingFile = Object.assign(new Error("Cannot find module '/app/dist/cli/internal/program.js'"), {
      code: "ERR_MODULE_NOT_FOUND"
    })
    assert.isUndefined(peers.notFoundPackage(missingFile))
    assert.isUndefined(peers.notFoundPackage(new Error("Cannot find package 'x' imported from y")))
    assert.isUndefined(peers.notFoundPackage("Cannot find package 'x'"))
  })

  it("says what to install, in one line", () => {
    assert.strictEqual(
      peers.message(["@effect/cli", "@effect/platform-node", "@effect/sql", "@effect/sql-pg"]),
      "bulwark: the command line needs @effect/cli, @effect/platform-node, @effect/sql and @effect/sql-pg; " +
        "install them with: npm install @effect/cli @effect/platform-node @effect/sql @effect/sql-pg"
    )
    assert.strictEqual(
      peers.message(["@effect/sql-pg"]),
      "bulwark: the command line needs @effect/sql-pg; install it with: npm install @effect/sql-pg"
    )
  })

  it("pins each package to the range @bulwark/resilience accepts (npm's latest @effect/sql-pg is for Effect 4)", () => {
    const ranges = peers.peerRanges(JSON.stringify({ peerDependencies: { "@effect/sql-pg": "^0.53.0", "x": 1 } }))
    assert.deepStrictEqual([...ranges], [["@effect/sql-pg", "^0.53.0"]])
    assert.strictEqual(
      peers.message(["@effect/cli", "@effect/sql-pg"], ranges),
      "bulwark: the command line needs @effect/cli and @effect/sql-pg; " +
        "install them with: npm install @effect/cli @effect/sql-pg@^0.53.0"
    )
    assert.strictEqual(peers.peerRanges(undefined).size, 0)
    assert.strictEqual(peers.peerRanges("{ not json").size, 0)
    assert.strictEqual(peers.peerRanges(JSON.stringify({ peerDependencies: null })).size, 0)
  })
})
