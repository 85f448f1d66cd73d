import type * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import { dual } from "effect/Function"
import * as Option from "effect/Option"
import type { Answer, Cached, Default, Primary, Secondary, Source } from "../Fallback.js"

/** @internal */
export const primary = <A>(value: A): Primary<A> => ({ _tag: "Primary", source: "primary", value, stale: false })

/** @internal */
export const cached = <A, E>(
  fields: { readonly value: A; readonly storedAt: DateTime.Utc; readonly age: Duration.Duration; readonly cause: E }
): Cached<A, E> => ({
  _tag: "Cached",
  source: "cache",
  value: fields.value,
  stale: true,
  storedAt: fields.storedAt,
  age: fields.age,
  cause: fields.cause
})

/** @internal */
export const secondary = <A, E>(fields: { readonly value: A; readonly cause: E }): Secondary<A, E> => ({
  _tag: "Secondary",
  source: "secondary",
  value: fields.value,
  stale: false,
  cause: fields.cause
})

/** @internal */
export const defaulted = <A, E>(fields: { readonly value: A; readonly cause: E }): Default<A, E> => ({
  _tag: "Default",
  source: "default",
  value: fields.value,
  stale: false,
  cause: fields.cause
})

/** @internal */
export const value = <A, E>(self: Answer<A, E>): A => self.value

/** @internal */
export const source = <A, E>(self: Answer<A, E>): Source => self.source

/** @internal */
export const cause = <A, E>(self: Answer<A, E>): Option.Option<E> =>
  self._tag === "Primary" ? Option.none() : Option.some(self.cause)

/** @internal */
export const isPrimary = <A, E>(self: Answer<A, E>): self is Primary<A> => self._tag === "Primary"

/** @internal */
export const isStale = <A, E>(self: Answer<A, E>): self is Cached<A, E> => self._tag === "Cached"

/** @internal */
export const isSecondary = <A, E>(self: Answer<A, E>): self is Secondary<A, E> => self._tag === "Secondary"

/** @internal */
export const isDefault = <A, E>(self: Answer<A, E>): self is Default<A, E> => self._tag === "Default"

/** @internal */
export const isDegraded = <A, E>(self: Answer<A, E>): self is Cached<A, E> | Secondary<A, E> | Default<A, E> =>
  self._tag !== "Primary"

interface Cases<A, E, B, C, D, F> {
  readonly onPrimary: (answer: Primary<A>) => B
  readonly onCached: (answer: Cached<A, E>) => C
  readonly onSecondary: (answer: Secondary<A, E>) => D
  readonly onDefault: (answer: Default<A, E>) => F
}

/** @internal */
export const match = dual(
  2,
  <A, E, B, C = B, D = B, F = B>(self: Answer<A, E>, cases: Cases<A, E, B, C, D, F>): B | C | D | F => {
    switch (self._tag) {
      case "Primary":
        return cases.onPrimary(self)
      case "Cached":
        return cases.onCached(self)
      case "Secondary":
        return cases.onSecondary(self)
      case "Default":
        return cases.onDefault(self)
    }
  }
)

/** @internal */
export const degraded = (answers: Readonly<Record<string, Answer<unknown, unknown>>>): ReadonlyArray<string> =>
  Object.entries(answers).filter(([, answer]) => answer._tag !== "Primary").map(([name]) => name)
