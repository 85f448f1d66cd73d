/**
 * Dead-letter list cursors: an opaque encoding of a position (dead-letter time, id) for keyset pagination.
 */
import * as Option from "effect/Option"
import type { JobId } from "../JobQueue.js"

/** A dead-letter list position. @internal */
export interface Position {
  readonly deadLetteredAt: Date
  readonly id: JobId
}

/** Opaque to callers: base64url of `<epoch millis>.<id>`. @internal */
export const encodeCursor = (position: Position): string =>
  Buffer.from(`${position.deadLetteredAt.getTime()}.${position.id}`, "utf8").toString("base64url")

/** @internal */
export const decodeCursor = (cursor: string): Option.Option<Position> => {
  if (typeof cursor !== "string" || !/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return Option.none()
  const match = /^(\d{1,16})\.(\d{1,20})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"))
  if (match === null) return Option.none()
  const [, at, id] = match
  if (at === undefined || id === undefined) return Option.none()
  return Option.some({ deadLetteredAt: new Date(Number(at)), id })
}
