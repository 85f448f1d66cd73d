/**
 * A reader of the Prometheus text exposition format (0.0.4), enough to check
 * what a real scrape contains: families with HELP and TYPE, and samples.
 */

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Family {
  readonly name: string
  readonly help: string | undefined
  readonly type: string | undefined
  readonly samples: ReadonlyArray<Sample>
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

const unescape = (value: string) => value.replace(/\\(.)/g, (_, char: string) => (char === "n" ? "\n" : char))

const familyOf = (sample: string, families: ReadonlyMap<string, unknown>): string => {
  if (families.has(sample)) return sample
  for (const suffix of ["_bucket", "_sum", "_count"]) {
    if (sample.endsWith(suffix) && families.has(sample.slice(0, -suffix.length))) return sample.slice(0, -suffix.length)
  }
  return sample
}

export const parse = (text: string): ReadonlyMap<string, Family> => {
  const families = new Map<string, { help?: string; type?: string; samples: Array<Sample> }>()
  const family = (name: string) => {
    let found = families.get(name)
    if (found === undefined) {
      found = { samples: [] }
      families.set(name, found)
    }
    return found
  }
  for (const line of text.split("\n")) {
    if (line === "") continue
    const help = /^# HELP (\S+) (.*)$/.exec(line)
    if (help?.[1] !== undefined) {
      family(help[1]).help = help[2] ?? ""
      continue
    }
    const type = /^# TYPE (\S+) (\S+)$/.exec(line)
    if (type?.[1] !== undefined) {
      family(type[1]).type = type[2] ?? ""
      continue
    }
    if (line.startsWith("#")) continue
    const sample = SAMPLE.exec(line)
    if (sample?.[1] === undefined) throw new Error(`not a sample line: ${line}`)
    const labels: Record<string, string> = {}
    for (const [, key, value] of (sample[2] ?? "").matchAll(LABEL)) {
      if (key !== undefined && value !== undefined) labels[key] = unescape(value)
    }
    family(familyOf(sample[1], families)).samples.push({ name: sample[1], labels, value: Number(sample[3]) })
  }
  return new Map(
    [...families].map(([name, found]) => [name, { name, help: found.help, type: found.type, samples: found.samples }])
  )
}
