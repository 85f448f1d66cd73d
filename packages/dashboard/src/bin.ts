/**
 * `npm run dashboards [-- <folder>]`: writes the dashboards, alert rules and
 * provisioning files to `<folder>` (default: the repository's `grafana/`).
 * `--check` writes nothing and exits 1 when a file is stale.
 *
 * @since 0.1.0
 */
import { fileURLToPath } from "node:url"
import * as Build from "./Build.js"

const args = process.argv.slice(2)
const check = args.includes("--check")
const directory = args.find((arg) => !arg.startsWith("--")) ??
  fileURLToPath(new URL("../../../grafana", import.meta.url))

if (check) {
  const stale = Build.stale(directory)
  for (const path of stale) console.error(`stale: ${path}`)
  process.exitCode = stale.length === 0 ? 0 : 1
} else {
  const written = Build.write(directory)
  console.log(written.length === 0 ? `${directory} is up to date` : written.map((path) => `wrote ${path}`).join("\n"))
}
