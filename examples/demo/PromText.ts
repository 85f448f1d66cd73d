/**
 * Reads samples out of Prometheus text exposition (what `/metrics` serves):
 * just enough to sum a counter by its labels.
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

const unescape = (value: string): string =>
  value.replace(/\\(["\\n])/g, (_, char: string) => char === "n" ? "\n" : char)

/** Every sample in the text; comments and malformed lines are skipped. */
export const parse = (text: string): ReadonlyArray<Sample> => {
  const samples: Array<Sample> = []
  for (const raw of text.split("\n")) {
    const line = raw.trim()
    if (line === "" || line.startsWith("#")) continue
    const match = LINE.exec(line)
    if (match === null) continue
    const [, name = "", labelText = "", valueText = ""] = match
    const value = valueText === "+Inf" ? Infinity : valueText === "-Inf" ? -Infinity : Number(valueText)
    if (Number.isNaN(value) && valueText !== "NaN") continue
    const labels: Record<string, string> = {}
    for (const label of labelText.matchAll(LABEL)) labels[label[1] ?? ""] = unescape(label[2] ?? "")
    samples.push({ name, labels, value })
  }
  return samples
}

/** The sum of a metric's samples whose labels include all of `where`. */
export const sum = (
  samples: ReadonlyArray<Sample>,
  name: string,
  where: Readonly<Record<string, string>> = {}
): number =>
  samples
    .filter((sample) =>
      sample.name === name && Object.entries(where).every(([key, value]) => sample.labels[key] === value)
    )
    .reduce((total, sample) => total + sample.value, 0)
