import * as Migrations from "@bulwark/resilience/Migrations"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as ScratchPostgres from "./postgres.js"

describe("scratch PostgreSQL database", () => {
  it.layer(ScratchPostgres.layer())((it) => {
    it.effect("is migrated with Bulwark's migrations and runs them only once", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const rows = yield* sql<{ readonly name: string }>`SELECT name FROM ${
          sql(Migrations.table)
        } ORDER BY migration_id`
        const files = yield* Migrations.loader
        assert.deepStrictEqual(rows.map((row) => row.name), files.map(([, name]) => name))
        assert.deepStrictEqual(yield* Migrations.run, [])
      }))
  })
})
