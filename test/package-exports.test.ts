import { assert, describe, it } from "@effect/vitest"
import { readFile } from "node:fs/promises"
import { createRequire } from "node:module"

const manifest = JSON.parse(
  await readFile(new URL("../packages/resilience/package.json", import.meta.url), "utf8")
) as { readonly exports: Record<string, string | null> }

describe("@bulwark/resilience package exports", () => {
  it("expose the barrel and public modules, never internal/", async () => {
    const bulwark = await import("@bulwark/resilience")
    assert.isFunction(bulwark.Failure.lift)
    assert.isArray(bulwark.Metrics.catalog)
    assert.isFunction(bulwark.Retry.retry)
    assert.isFunction(bulwark.RetryBudget.make)
    assert.isFunction(bulwark.Timeout.timeout)
    assert.strictEqual(manifest.exports["./internal/*"], null)
    const require = createRequire(import.meta.url)
    assert.throws(
      () => require.resolve("@bulwark/resilience/internal/options"),
      /ERR_PACKAGE_PATH_NOT_EXPORTED|not defined by "exports"/
    )
  })

  it("point every public entry at a file that exists and is re-exported by the barrel", async () => {
    const barrel = await readFile(new URL("../packages/resilience/src/index.ts", import.meta.url), "utf8")
    for (const [entry, target] of Object.entries(manifest.exports)) {
      if (target === null || entry === "." || entry === "./package.json") continue
      await readFile(new URL(`../packages/resilience/${target}`, import.meta.url))
      assert.include(barrel, target.replace("./src/", "./").replace(/\.ts$/, ".js"), `${entry} is in the barrel`)
    }
  })
})
