/**
 * The READMEs' TypeScript snippets type-check against the current code: every
 * ```ts block of README.md and packages/{resilience,dashboard}/README.md is
 * written to a file of its own (its own module scope) under
 * .tsbuild/readme-snippets/ and checked with the project's compiler and
 * strict options. A snippet that no longer compiles fails this test with the
 * README's file and line.
 *
 * Blocks fenced as ```text, ```sh, ```yaml… are not checked; a TypeScript
 * fragment that cannot stand alone has no place in a ```ts fence.
 */
import { describe, expect, it } from "@effect/vitest"
import { spawnSync } from "node:child_process"
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..")
const READMES = ["README.md", "packages/resilience/README.md", "packages/dashboard/README.md"]
const TSC = join(ROOT, "node_modules/typescript-native/bin/tsc")

interface Snippet {
  readonly readme: string
  /** 1-based line of the block's first code line in the README. */
  readonly line: number
  readonly code: string
}

const FENCE = /^(\s*)```(\w+)?\s*$/

/** The ```ts / ```typescript blocks of a Markdown text. */
export const extract = (readme: string, text: string): ReadonlyArray<Snippet> => {
  const lines = text.split("\n")
  const snippets: Array<Snippet> = []
  let open: { readonly language: string; readonly start: number; readonly body: Array<string> } | undefined
  lines.forEach((line, index) => {
    const fence = FENCE.exec(line)
    if (open === undefined) {
      if (fence !== null) open = { language: fence[2] ?? "", start: index + 2, body: [] }
      return
    }
    if (fence !== null && fence[2] === undefined) {
      if (open.language === "ts" || open.language === "typescript") {
        snippets.push({ readme, line: open.start, code: open.body.join("\n") })
      }
      open = undefined
      return
    }
    open.body.push(line)
  })
  return snippets
}

const TSCONFIG = {
  extends: "../../tsconfig.base.json",
  compilerOptions: {
    composite: false,
    declaration: false,
    emitDeclarationOnly: false,
    noEmit: true,
    // A snippet may declare a value only to show it.
    noUnusedLocals: false,
    noUnusedParameters: false
  },
  include: ["*.ts"]
}

/** Writes the snippets as files into `directory`, type-checks them, and returns the errors mapped to README lines. */
const typeCheck = (directory: string, snippets: ReadonlyArray<Snippet>): ReadonlyArray<string> => {
  rmSync(directory, { recursive: true, force: true })
  mkdirSync(directory, { recursive: true })
  writeFileSync(join(directory, "tsconfig.json"), JSON.stringify(TSCONFIG, null, 2))
  const byFile = new Map<string, Snippet>()
  snippets.forEach((snippet, index) => {
    const file = `snippet-${String(index + 1).padStart(3, "0")}.ts`
    byFile.set(file, snippet)
    // `export {}` makes every snippet a module, so two snippets' names never clash.
    writeFileSync(join(directory, file), `${snippet.code}\nexport {}\n`)
  })
  const result = spawnSync(process.execPath, [TSC, "-p", join(directory, "tsconfig.json"), "--pretty", "false"], {
    cwd: ROOT,
    encoding: "utf8"
  })
  if (result.status === 0) return []
  const output = `${result.stdout}${result.stderr}`
  const errors = output.split("\n").filter((line) => line.trim() !== "").map((line) => {
    const located = /^(.*?snippet-\d+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line)
    if (located === null) return line
    const file = relative(directory, join(ROOT, located[1] ?? "")).replace(/^.*(snippet-\d+\.ts)$/, "$1")
    const snippet = byFile.get(file)
    if (snippet === undefined) return line
    return `${snippet.readme}:${snippet.line + Number(located[2]) - 1}:${located[3]}: ${located[4]}`
  })
  return errors.length > 0 ? errors : [`tsc exited with ${result.status}`]
}

describe("README snippets", () => {
  const snippets = READMES.filter((readme) => existsSync(join(ROOT, readme))).flatMap((readme) =>
    extract(readme, readFileSync(join(ROOT, readme), "utf8"))
  )

  it("are found in the root README and the package READMEs", () => {
    expect(snippets.filter((snippet) => snippet.readme === "README.md").length).toBeGreaterThanOrEqual(5)
    expect(snippets.filter((snippet) => snippet.readme === "packages/resilience/README.md").length)
      .toBeGreaterThanOrEqual(10)
  })

  it("type-check against the current code", () => {
    const errors = typeCheck(join(ROOT, ".tsbuild/readme-snippets"), snippets)
    expect(errors, errors.join("\n")).toEqual([])
  }, 120_000)

  it("the check is real: a snippet with a type error fails it, at its README line", () => {
    const broken = extract(
      "BROKEN.md",
      ["# Broken", "", "```ts", `import { Retry } from "@bulwark/resilience"`, "", "Retry.nonexistent()", "```"].join(
        "\n"
      )
    )
    expect(broken).toHaveLength(1)
    const errors = typeCheck(join(ROOT, ".tsbuild/readme-snippets-broken"), broken)
    expect(errors.some((error) => error.startsWith("BROKEN.md:6:"))).toBe(true)
  }, 120_000)
})
