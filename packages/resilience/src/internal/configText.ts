/**
 * What the configuration readers share (`Pipeline.config`, `Bulkhead.config`): the CONSTANT_CASE names of their
 * environment variables, and which texts read as numbers.
 */

/**
 * A name or field in CONSTANT_CASE: `circuitBreaker` ▸ `CIRCUIT_BREAKER`, `payments-api` ▸ `PAYMENTS_API`.
 *
 * @internal
 */
export const constantCase = (name: string): string =>
  name
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2")
    .replace(/[^A-Za-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .toUpperCase()

/**
 * A decimal number as text (sign, fraction and exponent allowed; spaces around it ignored).
 *
 * @internal
 */
export const NUMBER = /^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/
