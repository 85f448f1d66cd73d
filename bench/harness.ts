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

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1
    ? sorted[middle] ?? Number.NaN
    : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

/**
 * One tinybench run of every case, one case after the other: ops/s and the
 * relative margin of error of each.
 */
const measure = async (
  title: string,
  time: number,
  callsPerIteration: number,
  cases: ReadonlyArray<Case>
): Promise<ReadonlyArray<Row>> => {
  const bench = new Bench({ name: title, time, warmupTime: 300, warmupIterations: 10 })
  for (const c of cases) bench.add(c.name, c.run)
  await bench.run()
  return bench.tasks.map((task) => {
    const result = task.result
    if (result.state !== "completed") throw new Error(`bench "${task.name}" did not complete: ${result.state}`)
    return {
      name: task.name,
      opsPerSecond: result.throughput.mean * callsPerIteration,
      marginPercent: result.throughput.rme
    }
  })
}

/**
 * Prints a table of ops/s with each case's ratio to the cases named in
 * `versus`.
 *
 * With `rounds` (default 1), the cases run that many times in turn, each time
 * for `time / rounds`, and each case's row is its median round; `±%` is then
 * the largest distance of a round from that median. On a shared machine a
 * burst of other work lands on one case of one round rather than on the whole
 * measurement of one case, so ratios within the run hold better.
 */
export const compare = async (
  title: string,
  options: {
    readonly callsPerIteration: number
    readonly time?: number
    readonly rounds?: number
    readonly versus: ReadonlyArray<string>
  },
  cases: ReadonlyArray<Case>
): Promise<ReadonlyArray<Row>> => {
  const time = options.time ?? 1_500
  const rounds = Math.max(1, Math.floor(options.rounds ?? 1))
  const runs: Array<ReadonlyArray<Row>> = []
  for (let round = 0; round < rounds; round++) {
    runs.push(await measure(title, time / rounds, options.callsPerIteration, cases))
  }
  const rows: Array<Row> = rounds === 1
    ? [...(runs[0] ?? [])]
    : cases.map((c) => {
      const samples = runs.map((run) => run.find((row) => row.name === c.name)?.opsPerSecond ?? Number.NaN)
      const middle = median(samples)
      return {
        name: c.name,
        opsPerSecond: middle,
        marginPercent: Math.max(...samples.map((sample) => Math.abs(sample - middle) / middle)) * 100
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
