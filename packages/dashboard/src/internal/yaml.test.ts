import { assert, describe, it } from "@effect/vitest"
import * as Yaml from "./yaml.js"

describe("Yaml.stringify", () => {
  it("writes plain scalars only when nothing could read them as another type", () => {
    assert.strictEqual(
      Yaml.stringify({ a: "plain", b: "5m", c: "true", d: "42", e: "x: y", f: "", g: 3, h: false }),
      [`a: plain`, `b: 5m`, `c: "true"`, `d: "42"`, `e: "x: y"`, `f: ""`, `g: 3`, `h: false`, ``].join("\n")
    )
  })

  it("single-quotes PromQL with double quotes, and keeps multi-line text as a literal block", () => {
    assert.strictEqual(Yaml.stringify({ expr: `up{job="a"} == 0` }), `expr: 'up{job="a"} == 0'\n`)
    assert.strictEqual(Yaml.stringify({ expr: `it's "x"` }), `expr: 'it''s "x"'\n`)
    assert.strictEqual(Yaml.stringify({ expr: "a\n  b" }), "expr: |-\n  a\n    b\n")
    // a literal block cannot start with spaces or keep trailing ones: JSON-quoted instead
    assert.strictEqual(Yaml.stringify({ expr: "  a\nb" }), `expr: "  a\\nb"\n`)
    assert.strictEqual(Yaml.stringify({ expr: "a \nb" }), `expr: "a \\nb"\n`)
  })

  it("nests lists of maps, skips undefined fields and writes empty collections inline", () => {
    assert.strictEqual(
      Yaml.stringify({ groups: [{ name: "g", interval: undefined, rules: [], labels: {} }], list: ["x", 1] }, ["hi"]),
      ["# hi", "groups:", "  - name: g", "    rules: []", "    labels: {}", "list:", "  - x", "  - 1", ""].join("\n")
    )
  })

  it("refuses numbers YAML cannot hold", () => {
    assert.throws(() => Yaml.stringify({ a: Number.NaN }), /not a finite number/)
    assert.throws(() => Yaml.stringify({ a: Infinity }), /not a finite number/)
  })
})
