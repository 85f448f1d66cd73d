/**
 * The product catalogue in PostgreSQL: one table, seeded at start, two
 * queries (a product by id, the most popular products), and what a failed
 * query means for the failure model.
 *
 * The seed list is also what the simulated recommendations service
 * recommends from, so both sides agree on ids and names.
 *
 * @since 0.1.0
 */
import { type Failure } from "@bulwark/resilience"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlError from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as ParseResult from "effect/ParseResult"
import { hasProperty } from "effect/Predicate"
import * as Schema from "effect/Schema"

// -----------------------------------------------------------------------------
// Data
// -----------------------------------------------------------------------------

/**
 * A product as the page shows it.
 *
 * @since 0.1.0
 * @category Models
 */
export const Product = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  description: Schema.String,
  priceCents: Schema.Number
})

/**
 * @since 0.1.0
 * @category Models
 */
export type Product = typeof Product.Type

/**
 * A product in a list of recommendations.
 *
 * @since 0.1.0
 * @category Models
 */
export const Item = Schema.Struct({ id: Schema.Number, name: Schema.String, priceCents: Schema.Number })

/**
 * @since 0.1.0
 * @category Models
 */
export type Item = typeof Item.Type

/**
 * The products the example starts with; `popularity` orders the fallback list.
 *
 * @since 0.1.0
 * @category Constants
 */
export const seed: ReadonlyArray<Product & { readonly popularity: number }> = [
  { id: 1, name: "Oak desk", description: "Solid oak, 160 × 80 cm.", priceCents: 64_900, popularity: 420 },
  { id: 2, name: "Desk lamp", description: "Warm LED, dimmable.", priceCents: 4_900, popularity: 910 },
  { id: 3, name: "Office chair", description: "Adjustable lumbar support.", priceCents: 29_900, popularity: 780 },
  { id: 4, name: "Monitor arm", description: "Holds up to 9 kg.", priceCents: 8_900, popularity: 350 },
  { id: 5, name: "Cable tray", description: "Under-desk, steel.", priceCents: 2_900, popularity: 120 },
  { id: 6, name: "Footrest", description: "Tilting, anti-slip.", priceCents: 3_900, popularity: 260 },
  { id: 7, name: "Bookshelf", description: "Five shelves, birch.", priceCents: 17_900, popularity: 540 },
  { id: 8, name: "Desk mat", description: "Felt, 90 × 40 cm.", priceCents: 2_400, popularity: 860 },
  { id: 9, name: "Whiteboard", description: "Magnetic, 120 × 90 cm.", priceCents: 11_900, popularity: 190 },
  { id: 10, name: "Plant pot", description: "Ceramic, 20 cm.", priceCents: 1_900, popularity: 670 },
  { id: 11, name: "Headphone stand", description: "Walnut.", priceCents: 3_400, popularity: 310 },
  { id: 12, name: "Standing mat", description: "Anti-fatigue foam.", priceCents: 5_900, popularity: 440 }
]

// -----------------------------------------------------------------------------
// SQL
// -----------------------------------------------------------------------------

/**
 * Creates the table if it is missing.
 *
 * @since 0.1.0
 * @category SQL
 */
export const createTable: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`CREATE TABLE IF NOT EXISTS catalog_products (
      id integer PRIMARY KEY,
      name text NOT NULL,
      description text NOT NULL,
      price_cents integer NOT NULL,
      popularity integer NOT NULL DEFAULT 0
    )`
).pipe(Effect.asVoid)

/**
 * Inserts the {@link seed} products that are not there yet.
 *
 * @since 0.1.0
 * @category SQL
 */
export const insertSeed: Effect.Effect<void, SqlError.SqlError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    sql`INSERT INTO catalog_products ${
      sql.insert(seed.map((p) => ({
        id: p.id,
        name: p.name,
        description: p.description,
        price_cents: p.priceCents,
        popularity: p.popularity
      })))
    } ON CONFLICT (id) DO NOTHING`
).pipe(Effect.asVoid)

const ProductRow = Schema.Struct({
  id: Schema.Number,
  name: Schema.String,
  description: Schema.String,
  price_cents: Schema.Number
})

/**
 * The product with this id, if there is one.
 *
 * @since 0.1.0
 * @category SQL
 */
export const findProduct = (
  id: number
): Effect.Effect<Option.Option<Product>, SqlError.SqlError | ParseResult.ParseError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findOne({
      Request: Schema.Number,
      Result: ProductRow,
      execute: (productId) =>
        sql`SELECT id, name, description, price_cents FROM catalog_products WHERE id = ${productId}`
    })(id)).pipe(
      Effect.map(Option.map((r) => ({ id: r.id, name: r.name, description: r.description, priceCents: r.price_cents })))
    )

/**
 * The `limit` most popular products.
 *
 * @since 0.1.0
 * @category SQL
 */
export const popularProducts = (
  limit: number
): Effect.Effect<ReadonlyArray<Item>, SqlError.SqlError | ParseResult.ParseError, SqlClient.SqlClient> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findAll({
      Request: Schema.Number,
      Result: Schema.Struct({ id: Schema.Number, name: Schema.String, price_cents: Schema.Number }),
      execute: (n) => sql`SELECT id, name, price_cents FROM catalog_products ORDER BY popularity DESC, id LIMIT ${n}`
    })(limit)).pipe(
      Effect.map((rows) => rows.map((r) => ({ id: r.id, name: r.name, priceCents: r.price_cents })))
    )

// -----------------------------------------------------------------------------
// Failures
// -----------------------------------------------------------------------------

/** SQLSTATE classes that say the database is not there right now, not that the query is wrong. */
const TRANSIENT_CLASSES = new Set(["08", "53", "57", "58"])
const TRANSIENT_STATES = new Set(["40001", "40P01"])

const sqlState = (cause: unknown): string | undefined =>
  hasProperty(cause, "code") && typeof cause.code === "string" && /^[0-9A-Z]{5}$/.test(cause.code)
    ? cause.code
    : undefined

/**
 * What a failed catalogue query means:
 *
 * - no connection could be had (`Failed to acquire connection`, a dropped
 *   connection), or an error without a SQLSTATE (refused, reset, terminated:
 *   the network or the driver) → **transient**, the database is down;
 * - SQLSTATE class 08 (connection), 53 (resources), 57 (operator
 *   intervention, e.g. `57P01` admin shutdown), 58 (system), and
 *   serialization failures / deadlocks → **transient**;
 * - any other SQLSTATE (syntax, constraint, data) and rows that do not
 *   decode → **terminal**: a bug, not an outage.
 *
 * @since 0.1.0
 * @category Failures
 */
export const verdictOf = (error: SqlError.SqlError | ParseResult.ParseError): Failure.Verdict => {
  if (error._tag === "ParseError") return "terminal"
  if (error.message.startsWith("Failed to acquire connection") || error.message === "Connection error") {
    return "transient"
  }
  const state = sqlState(error.cause)
  if (state === undefined) return "transient"
  return TRANSIENT_CLASSES.has(state.slice(0, 2)) || TRANSIENT_STATES.has(state) ? "transient" : "terminal"
}
