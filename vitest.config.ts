import { defineConfig } from "vitest/config"

// Inside this repository every import of @bulwark/* resolves to the TypeScript source through the
// "bulwark-source" export condition (installed packages resolve to dist/). Child processes the tests
// start (tsx workers, the examples) inherit it through NODE_OPTIONS.
const sourceCondition = "--conditions=bulwark-source"
if (!(process.env["NODE_OPTIONS"] ?? "").includes(sourceCondition)) {
  process.env["NODE_OPTIONS"] = `${process.env["NODE_OPTIONS"] ?? ""} ${sourceCondition}`.trim()
}

export default defineConfig({
  // Vitest's own default is ["node", "development|production"]; "module" would send packages such as
  // @opentelemetry/api to builds only bundlers can load.
  ssr: { resolve: { conditions: ["bulwark-source", "node", "development|production"] } },
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    // Provides PostgreSQL, Redis and promtool/prometheus before the tests, or stops at once naming what is missing;
    // afterwards fails the run if a process or Redis key the tests made is left behind.
    globalSetup: ["test/support/global-setup.ts"],
    // chai's deep equality sees Option.none() and Option.some(x) as equal; this makes it tell tagged cases apart.
    setupFiles: ["test/support/setup-equality.ts"],
    sequence: { concurrent: false },
    testTimeout: 30_000
  }
})
