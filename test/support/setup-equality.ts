/**
 * Vitest setup file: chai's deep equality (`assert.deepStrictEqual`, `assert.deepEqual`) tells Effect data types of
 * different cases apart.
 *
 * chai compares objects by their own enumerable keys, and Effect keeps the case of a tagged value on its prototype:
 * `Option.none()` has no own keys at all, so without this `assert.deepStrictEqual(Option.none(), Option.some(x))`
 * passes, in either order and nested. Two values whose `_tag`s differ are therefore unequal; everything else is left
 * to chai's own comparison.
 */
import { chai } from "vitest"

const tagOf = (value: unknown): unknown =>
  typeof value === "object" && value !== null && "_tag" in value ? value._tag : undefined

chai.config.deepEqual = (expected, actual) =>
  chai.util.eql(expected, actual, {
    comparator: (left: unknown, right: unknown) => {
      const leftTag = tagOf(left)
      const rightTag = tagOf(right)
      return leftTag !== rightTag && (leftTag !== undefined || rightTag !== undefined) ? false : null
    }
  })
