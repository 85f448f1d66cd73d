#!/usr/bin/env node
/**
 * `bulwark-dashboards`: writes Bulwark's Grafana dashboards, Prometheus alert
 * rules, Grafana provisioning files and a prometheus.yml into a folder,
 * `./grafana` in the current directory unless `--out <dir>` says otherwise
 * (never inside `node_modules`). `--check` writes nothing and exits 1 when a
 * file is missing or stale; `--help` lists the options (datasource uid,
 * scrape job and targets, Prometheus URL, queue wait and backlog targets). Bad arguments
 * exit 2.
 *
 * @example
 * ```sh
 * npx bulwark-dashboards --out ./grafana --job checkout --target api-1:3000 --target api-2:3000 \
 *   --queue-target payments=5s --queue-target reports=15m --backlog-target payments=30s
 * prometheus --config.file=grafana/prometheus.yml
 * ```
 *
 * @since 0.1.0
 */
import { run } from "./internal/cli.js"

// `bulwark-dashboards | head` closes the pipe early: the rest of the output is dropped, quietly
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: Error) => {
    if ("code" in error && error.code === "EPIPE") return
    throw error
  })
}

process.exitCode = run(process.argv.slice(2), {
  cwd: process.cwd(),
  stdout: (line) => process.stdout.write(`${line}\n`),
  stderr: (line) => process.stderr.write(`${line}\n`)
})
