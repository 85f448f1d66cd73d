import { assert, describe, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as database from "./database.js"
import * as parse from "./parse.js"
import * as table from "./table.js"

const now = new Date("2026-03-10T12:00:00.000Z")

describe("--since", () => {
  it("reads ages relative to now", () => {
    assert.deepStrictEqual(parse.since("90s", now), Either.right(new Date("2026-03-10T11:58:30.000Z")))
    assert.deepStrictEqual(parse.since("15m", now), Either.right(new Date("2026-03-10T11:45:00.000Z")))
    assert.deepStrictEqual(parse.since("2h", now), Either.right(new Date("2026-03-10T10:00:00.000Z")))
    assert.deepStrictEqual(parse.since("7d", now), Either.right(new Date("2026-03-03T12:00:00.000Z")))
    assert.deepStrictEqual(parse.since("2 hours", now), Either.right(new Date("2026-03-10T10:00:00.000Z")))
  })

  it("reads dates and ISO-8601 moments", () => {
    assert.deepStrictEqual(parse.since("2026-03-01", now), Either.right(new Date("2026-03-01T00:00:00.000Z")))
    assert.deepStrictEqual(
      parse.since("2026-03-01T08:30:00+02:00", now),
      Either.right(new Date("2026-03-01T06:30:00.000Z"))
    )
  })

  it("rejects anything else with a message naming the flag", () => {
    for (const bad of ["yesterday", "-2h", "2026-13-45", "", "2x"]) {
      const result = parse.since(bad, now)
      assert.isTrue(Either.isLeft(result), bad)
      if (Either.isLeft(result)) assert.include(result.left.message, "--since")
    }
  })
})

describe("--payload", () => {
  it("accepts JSON and refuses the rest", () => {
    assert.deepStrictEqual(parse.payload(`{"a":1}`), Either.right({ a: 1 }))
    const bad = parse.payload(`{a: 1}`)
    assert.isTrue(Either.isLeft(bad) && bad.left.message.startsWith("--payload is not valid JSON"))
  })

  it("prints bigints as strings and dates as ISO-8601 in --json", () => {
    assert.strictEqual(parse.toJson({ n: 1n, at: now }), `{\n  "n": "1",\n  "at": "2026-03-10T12:00:00.000Z"\n}`)
  })
})

describe("the database URL", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

  it.effect("comes from --database-url first, then DATABASE_URL", () =>
    Effect.gen(function*() {
      const env = withEnv({ DATABASE_URL: "postgres://env@127.0.0.1/env" })
      assert.strictEqual(
        yield* database.resolveUrl(Option.some("postgres://flag@127.0.0.1/flag")).pipe(env),
        "postgres://flag@127.0.0.1/flag"
      )
      assert.strictEqual(yield* database.resolveUrl(Option.none()).pipe(env), "postgres://env@127.0.0.1/env")
    }))

  it.effect("is required, and must be a postgres:// URL", () =>
    Effect.gen(function*() {
      const missing = yield* Effect.flip(database.resolveUrl(Option.none()).pipe(withEnv({})))
      assert.include(missing.message, "DATABASE_URL")
      const blank = yield* Effect.flip(database.resolveUrl(Option.none()).pipe(withEnv({ DATABASE_URL: "  " })))
      assert.include(blank.message, "DATABASE_URL")
      const mysql = yield* Effect.flip(database.resolveUrl(Option.some("mysql://x@127.0.0.1/db")))
      assert.include(mysql.message, "postgres://")
      const junk = yield* Effect.flip(database.resolveUrl(Option.some("not a url")))
      assert.include(junk.message, "not a URL")
    }))

  it("masks the password in messages", () => {
    assert.strictEqual(database.displayUrl("postgres://app:s3cret@db:5432/app"), "postgres://app:***@db:5432/app")
    assert.strictEqual(database.displayUrl("postgres://app@db:5432/app"), "postgres://app@db:5432/app")
  })
})

describe("tables", () => {
  it("size columns to their widest cell, align numbers right and cut long cells", () => {
    const rendered = table.render<{ id: string; message: string }>([
      { header: "ID", cell: (row) => row.id, align: "right" },
      { header: "MESSAGE", cell: (row) => row.message, maxWidth: 10 }
    ], [{ id: "7", message: "short" }, { id: "1234", message: "a very long\nmessage indeed" }])
    assert.strictEqual(
      rendered,
      [
        "  ID  MESSAGE",
        "----  ----------",
        "   7  short",
        "1234  a very lo…"
      ].join("\n")
    )
  })
})
