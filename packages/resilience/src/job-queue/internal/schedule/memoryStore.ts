/**
 * The in-memory schedule store (`JobSchedule.makeMemoryStore`, `layerMemoryStore`): one record per schedule name in
 * a map, and a lock per name so that the schedulers of one process advance a schedule one at a time.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { Advance, ScheduleInfo, ScheduleRecord, ScheduleState, ScheduleStore } from "../../JobSchedule.js"
import { storeTag } from "./tag.js"

/** @internal */
export const make: Effect.Effect<ScheduleStore> = Effect.sync((): ScheduleStore => {
  const records = new Map<string, ScheduleInfo>()
  const locks = new Map<string, Effect.Semaphore>()
  const lockOf = (name: string): Effect.Semaphore => {
    let lock = locks.get(name)
    if (lock === undefined) {
      lock = Effect.unsafeMakeSemaphore(1)
      locks.set(name, lock)
    }
    return lock
  }
  const advance = <A extends Advance, E, R>(
    record: ScheduleRecord,
    step: (state: ScheduleState) => Effect.Effect<A, E, R>
  ): Effect.Effect<A, E, R> =>
    Effect.suspend(() => {
      const known = records.get(record.name)
      const state: ScheduleState = {
        knownSince: known?.knownSince ?? record.startedAt,
        lastTick: known?.lastTick ?? Option.none()
      }
      return Effect.tap(step(state), (advanced) =>
        Effect.sync(() => {
          const seen = known === undefined || known.updatedAt < record.now ? record.now : known.updatedAt
          records.set(record.name, {
            name: record.name,
            cron: record.cron,
            timeZone: record.timeZone,
            knownSince: state.knownSince,
            lastTick: advanced.lastTick,
            nextRun: advanced.nextRun,
            updatedAt: seen
          })
        }))
    }).pipe(
      // A step enqueues, then its record is written: interrupted in between, it would leave a tick enqueued but not
      // recorded as such.
      Effect.uninterruptible,
      lockOf(record.name).withPermits(1)
    )
  return {
    backend: "memory",
    advance,
    list: Effect.sync(() => [...records.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)))
  }
})

/** @internal */
export const layer: Layer.Layer<ScheduleStore> = Layer.effect(storeTag, make)
