import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { promisify } from "node:util"

const root = fileURLToPath(new URL("..", import.meta.url))

describe("npm run demo", () => {
  it("retries the flaky gateway over real HTTP and reports each outcome", async () => {
    const { stdout } = await promisify(execFile)("node", ["node_modules/tsx/dist/cli.mjs", "examples/demo.ts"], {
      cwd: root,
      timeout: 60_000
    })
    assert.match(stdout, /✔ charge: \{"charged":true,"request":3\} after (\d+)ms/)
    const charged = /after (\d+)ms/.exec(stdout)
    assert.isAtLeast(Number(charged?.[1]), 2000, "two Retry-After: 1 waits were honoured")
    assert.match(stdout, /✘ missing: POST \/missing answered HTTP 404/)
    assert.match(stdout, /✘ slow: Retry policy "gateway" gave up after 4 attempts .* timed out after 500ms/)
    assert.match(stdout, /✘ refused: Retry policy "gateway" gave up after 4 attempts .*ECONNREFUSED/)
    assert.match(stdout, /bulwark_retry_calls_total\{policy="gateway",result="terminal"\} 1/)
    assert.match(stdout, /bulwark_timeouts_total\{operation="gateway-attempt"\} 4/)
  }, 60_000)
})
