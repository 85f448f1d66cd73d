import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    sequence: { concurrent: false },
    testTimeout: 30_000
  }
})
