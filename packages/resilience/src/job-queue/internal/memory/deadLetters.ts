/**
 * The in-memory dead-letter queue: listing with filters and keyset pagination, reading one entry, replays (a fresh
 * job per entry, once) and discards.
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as DeadLetter from "../../DeadLetter.js"
import type { JobId } from "../../JobQueue.js"
import { encodeCursor } from "../cursor.js"
import { create, date, idOf, type MemoryEntry, numericId, optionalDate, type State, withNow } from "./state.js"

/** `true` when the filter is absent or the value passes it. */
const holdsFor = <A>(filter: Option.Option<A>, predicate: (a: A) => boolean): boolean =>
  Option.isNone(filter) || predicate(filter.value)

const entryOf = (entry: MemoryEntry): DeadLetter.Entry => ({
  id: idOf(entry.job.id),
  queue: entry.job.queue,
  kind: entry.job.kind,
  payload: entry.job.payload,
  priority: entry.job.priority,
  dedupKey: Option.fromNullable(entry.job.dedupKey),
  attempts: entry.job.attempt,
  maxAttempts: entry.job.maxAttempts,
  errors: [...entry.job.errors],
  reason: entry.reason,
  enqueuedAt: date(entry.job.enqueuedAt),
  deadLetteredAt: date(entry.deadLetteredAt),
  status: entry.status,
  replayedAs: Option.map(Option.fromNullable(entry.replayedAs), idOf),
  replayedAt: optionalDate(entry.replayedAt),
  discardedAt: optionalDate(entry.discardedAt),
  replayOf: Option.map(Option.fromNullable(entry.job.replayOf), idOf)
})

const entryFor = (state: State, id: JobId): MemoryEntry | undefined => {
  const numeric = numericId(id)
  return numeric === undefined ? undefined : state.deadLetters.get(numeric)
}

/** @internal */
export const listDeadLetters = (state: State) => (query: DeadLetter.Query): Effect.Effect<DeadLetter.Page> =>
  Effect.sync((): DeadLetter.Page => {
    const sign = query.order === "newest" ? -1 : 1
    const compare = (a: { at: number; id: number }, b: { at: number; id: number }) =>
      sign * (a.at - b.at || a.id - b.id)
    const after = Option.map(query.after, (position) => ({
      at: position.deadLetteredAt.getTime(),
      id: Number(position.id)
    }))
    const matching = [...state.deadLetters.values()].filter((entry) => {
      const lastTag = entry.job.errors.at(-1)?.tag
      return (query.status === "all" || entry.status === query.status) &&
        holdsFor(query.queue, (queue) => entry.job.queue === queue) &&
        holdsFor(query.kind, (kind) => entry.job.kind === kind) &&
        holdsFor(query.errorTag, (tag) => lastTag === tag) &&
        holdsFor(query.since, (since) => entry.deadLetteredAt >= since.getTime()) &&
        holdsFor(query.until, (until) => entry.deadLetteredAt < until.getTime()) &&
        holdsFor(after, (position) => compare({ at: entry.deadLetteredAt, id: entry.job.id }, position) > 0)
    }).sort((a, b) => compare({ at: a.deadLetteredAt, id: a.job.id }, { at: b.deadLetteredAt, id: b.job.id }))
    const page = matching.slice(0, query.limit)
    const last = page.at(-1)
    return {
      entries: page.map(entryOf),
      next: matching.length > query.limit && last !== undefined
        ? Option.some(encodeCursor({ deadLetteredAt: date(last.deadLetteredAt), id: idOf(last.job.id) }))
        : Option.none()
    }
  })

/** @internal */
export const getDeadLetter = (state: State) => (id: JobId): Effect.Effect<Option.Option<DeadLetter.Entry>> =>
  Effect.sync(() => Option.map(Option.fromNullable(entryFor(state, id)), entryOf))

const distinct = <A extends { readonly id: JobId }>(items: ReadonlyArray<A>): ReadonlyArray<A> => {
  const seen = new Set<JobId>()
  return items.filter((item) => (seen.has(item.id) ? false : (seen.add(item.id), true)))
}

/** @internal */
export const replayDeadLetters = (state: State) =>
(
  requests: ReadonlyArray<DeadLetter.ReplayRequest>
): Effect.Effect<ReadonlyArray<DeadLetter.ReplayResult>> =>
  withNow(state, (now) =>
    distinct(requests).map((request): DeadLetter.ReplayResult => {
      const entry = entryFor(state, request.id)
      if (entry === undefined) return { _tag: "NotFound", id: request.id }
      if (entry.status === "discarded") return { _tag: "Discarded", id: request.id }
      if (entry.status === "replayed" && entry.replayedAs !== null) {
        return { _tag: "Replayed", id: request.id, queue: entry.job.queue, job: idOf(entry.replayedAs), created: false }
      }
      const job = create(state, {
        queue: entry.job.queue,
        kind: entry.job.kind,
        payload: Option.getOrElse(request.payload, () => entry.job.payload),
        priority: entry.job.priority,
        maxAttempts: entry.job.maxAttempts,
        dedupKey: null,
        enqueuedAt: now,
        replayOf: entry.job.id,
        runAt: now
      }, now)
      entry.status = "replayed"
      entry.replayedAs = job.id
      entry.replayedAt = now
      return { _tag: "Replayed", id: request.id, queue: entry.job.queue, job: idOf(job.id), created: true }
    }))

/** @internal */
export const discardDeadLetters = (state: State) =>
(
  ids: ReadonlyArray<JobId>
): Effect.Effect<ReadonlyArray<DeadLetter.DiscardResult>> =>
  withNow(state, (now) =>
    distinct(ids.map((id) => ({ id }))).map(({ id }): DeadLetter.DiscardResult => {
      const entry = entryFor(state, id)
      if (entry === undefined) return { id, queue: Option.none(), outcome: "not_found" }
      const queue = Option.some(entry.job.queue)
      switch (entry.status) {
        case "discarded":
          return { id, queue, outcome: "already_discarded" }
        case "replayed":
          return { id, queue, outcome: "replayed" }
        case "pending":
          entry.status = "discarded"
          entry.discardedAt = now
          return { id, queue, outcome: "discarded" }
      }
    }))
