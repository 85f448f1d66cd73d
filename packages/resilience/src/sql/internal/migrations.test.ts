import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { mkdtempSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import * as Migrations from "./migrations.js"

const text = [
  "CREATE TABLE :BULWARK_IDEMPOTENCY_TABLE (x int);",
  "CREATE INDEX :BULWARK_IDEMPOTENCY_TABLE_NAME_expires_at ON :BULWARK_IDEMPOTENCY_TABLE (x);",
  "CREATE FUNCTION :BULWARK_IDEMPOTENCY_TABLE_claim_one() RETURNS void LANGUAGE sql AS $$ SELECT $$;",
  "-- ::text casts and :other words are not placeholders"
].join("\n")

const rendered = (idempotencyTable: string) => Either.getOrThrow(Migrations.render(text, { idempotencyTable }))

describe("Bulwark's migration placeholders", () => {
  it("stand for the default table in the migrations Migrations.run applies", () => {
    assert.strictEqual(
      rendered(Migrations.defaultNames.idempotencyTable),
      [
        "CREATE TABLE bulwark_idempotency_keys (x int);",
        "CREATE INDEX bulwark_idempotency_keys_expires_at ON bulwark_idempotency_keys (x);",
        "CREATE FUNCTION bulwark_idempotency_keys_claim_one() RETURNS void LANGUAGE sql AS $$ SELECT $$;",
        "-- ::text casts and :other words are not placeholders"
      ].join("\n")
    )
  })

  it("name the table and its functions with the schema, constraints and indexes without it", () => {
    assert.strictEqual(
      rendered("billing.keys"),
      [
        "CREATE TABLE billing.keys (x int);",
        "CREATE INDEX keys_expires_at ON billing.keys (x);",
        "CREATE FUNCTION billing.keys_claim_one() RETURNS void LANGUAGE sql AS $$ SELECT $$;",
        "-- ::text casts and :other words are not placeholders"
      ].join("\n")
    )
  })

  it("refuse a name that needs quoting, or whose objects' names would not fit", () => {
    for (const name of ["", "Bad-Name", "Keys", "k; DROP TABLE x", "\"keys\"", "a.b.c", "1keys", "t".repeat(52)]) {
      assert.isTrue(Either.isLeft(Migrations.render(text, { idempotencyTable: name })), JSON.stringify(name))
    }
    assert.isTrue(Either.isRight(Migrations.render(text, { idempotencyTable: "t".repeat(51) })))
  })

  it("refuse a placeholder they do not know, rather than leave it in the text", () => {
    const unknown = Migrations.render("CREATE TABLE :BULWARK_IDEMPOTENCY_TABLES (x int)", Migrations.defaultNames)
    assert.isTrue(Either.isLeft(unknown))
    if (Either.isLeft(unknown)) assert.include(unknown.left.message, ":BULWARK_IDEMPOTENCY_TABLES")
  })

  it.effect("mark the idempotency migrations, the ones createTable runs for another table", () =>
    Effect.gen(function*() {
      const files = yield* Migrations.readFiles(Migrations.directory())
      const idempotency = files.filter((file) => Migrations.namesIdempotencyTable(file.text)).map((file) => file.id)
      assert.deepStrictEqual(idempotency, [1, 4, 5])
      // No migration names the default table but through the placeholders.
      for (const file of files) assert.notInclude(file.text, "CREATE TABLE bulwark_idempotency_keys", file.name)
    }))

  it.effect("are replaced by the loader; a file with an unknown one fails to load", () =>
    Effect.gen(function*() {
      const directory = mkdtempSync(join(tmpdir(), "bulwark-migrations-"))
      yield* Effect.addFinalizer(() => Effect.sync(() => rmSync(directory, { recursive: true, force: true })))
      writeFileSync(join(directory, "0001_known.sql"), text)
      assert.deepStrictEqual((yield* Migrations.fromDirectory(directory)).map(([id, name]) => [id, name]), [[
        1,
        "known"
      ]])
      writeFileSync(join(directory, "0002_unknown.sql"), "SELECT :BULWARK_SOMETHING_ELSE")
      const error = yield* Effect.flip(Migrations.fromDirectory(directory))
      assert.strictEqual(error.reason, "import-error")
      assert.include(error.message, ":BULWARK_SOMETHING_ELSE")
    }).pipe(Effect.scoped))
})
