/**
 * A small harness over tinybench: every case runs the same number of calls per
 * iteration, all cases of a comparison run in one process one after another,
 * and the table prints ops/s with each case's ratio to every other.
 */
import { Bench } from "tinybench"

export interface Case {
  readonly name: string
  /** Runs `callsPerIteration` calls. */
  readonly run: () => Promise<unknown>
}

export interface Row {
  readonly name: string
  readonly opsPerSecond: number
  readonly marginPercent: number
}

const format = (n: number): string => Math.round(n).toLocaleString("en-US")

export const compare = async (
  title: string,
  options: { readonly callsPerIteration: number; readonly time?: number; readonly versus: ReadonlyArray<string> },
  cases: ReadonlyArray<Case>
): Promise<ReadonlyArray<Row>> => {
  const bench = new Bench({ name: title, time: options.time ?? 1_500, warmupTime: 300, warmupIterations: 10 })
  for (const c of cases) bench.add(c.name, c.run)
  await bench.run()
  const rows: Array<Row> = bench.tasks.map((task) => {
    const result = task.result
    if (result.state !== "completed") throw new Error(`bench "${task.name}" did not complete: ${result.state}`)
    return {
      name: task.name,
      opsPerSecond: result.throughput.mean * options.callsPerIteration,
      marginPercent: result.throughput.rme
    }
  })
  const nameWidth = Math.max(...rows.map((row) => row.name.length), 4)
  const header = [
    "case".padEnd(nameWidth),
    "ops/s".padStart(12),
    "±%".padStart(6),
    ...options.versus.map((v) => `vs ${v}`.padStart(Math.max(10, v.length + 4)))
  ]
  console.log(`\n## ${title}\n`)
  console.log(header.join("  "))
  for (const row of rows) {
    const ratios = options.versus.map((v) => {
      const other = rows.find((r) => r.name === v)
      const ratio = other === undefined ? Number.NaN : row.opsPerSecond / other.opsPerSecond
      return `${ratio.toFixed(2)}×`.padStart(Math.max(10, v.length + 4))
    })
    console.log(
      [
        row.name.padEnd(nameWidth),
        format(row.opsPerSecond).padStart(12),
        row.marginPercent.toFixed(1).padStart(6),
        ...ratios
      ].join("  ")
    )
  }
  return rows
}
