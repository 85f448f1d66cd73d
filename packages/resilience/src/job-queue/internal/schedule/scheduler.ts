/**
 * The schedulers of `JobSchedule.start` / `layer`: one fiber per schedule in the caller's scope. Each advances its
 * schedule through the store up to its start (the backfill), then sleeps on the Effect `Clock` until the next tick
 * and advances it again. A step enqueues the ticks after the stored last tick, up to the scheduler's now, and moves
 * the last tick forward, all in the store's `advance` (one transaction on PostgreSQL).
 */
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../../Failure.js"
import * as check from "../../../internal/options.js"
import type { EnqueueError, JobQueue } from "../../JobQueue.js"
import type { Advance, JobSchedule, ScheduleInfo, ScheduleState, ScheduleStore } from "../../JobSchedule.js"
import type { JobStoreError } from "../errors.js"
import { tag as queueTag } from "../tag.js"
import { nextAfter, resolveAll, type Resolved, ticksIn } from "./schedule.js"
import { storeTag } from "./tag.js"

/** Most ticks one step enqueues (one `enqueueMany`); a longer backfill takes several steps. */
const MAX_TICKS_PER_STEP = 1000

/** The delay before the `n`-th retry of a failed step: 1 s doubling, at most 1 minute. */
const retryDelay = (failures: number): Duration.Duration =>
  Duration.millis(Math.min(1000 * 2 ** Math.min(failures - 1, 16), 60_000))

interface Stepped extends Advance {
  /** The step stopped at {@link MAX_TICKS_PER_STEP}: more ticks are due. */
  readonly full: boolean
}

/**
 * One step: the ticks in `(max(last tick, floor − 1 ms), upTo]` enqueued, where the floor is the later of the
 * schedule's first sighting and `startedAt − backfill`.
 */
const step = (
  schedule: Resolved,
  queue: JobQueue,
  startedAt: number,
  upTo: number
) =>
(state: ScheduleState): Effect.Effect<Stepped, EnqueueError> =>
  Effect.gen(function*() {
    const floor = Math.max(state.knownSince.getTime(), startedAt - Duration.toMillis(schedule.backfill))
    const after = Option.match(state.lastTick, {
      onNone: () => floor - 1,
      onSome: (last) => Math.max(last.getTime(), floor - 1)
    })
    const ticks = ticksIn(schedule, after, upTo, MAX_TICKS_PER_STEP)
    const newest = ticks.at(-1)
    if (newest === undefined) {
      return { lastTick: state.lastTick, nextRun: dateOf(nextAfter(schedule, upTo)), full: false }
    }
    const requests = yield* Effect.sync(() =>
      ticks.map((at) => schedule.request({ schedule: schedule.name, at: new Date(at), backfilled: at < startedAt }))
    )
    yield* queue.enqueueMany(requests)
    const backfilled = ticks.filter((at) => at < startedAt).length
    if (backfilled > 0) yield* Effect.logInfo(`Enqueued ${backfilled} tick(s) missed while no scheduler ran`)
    yield* Effect.logDebug(`Enqueued ${ticks.length} tick(s), the newest ${new Date(newest).toISOString()}`)
    const full = ticks.length === MAX_TICKS_PER_STEP
    return {
      lastTick: Option.some(new Date(newest)),
      nextRun: dateOf(nextAfter(schedule, full ? newest : upTo)),
      full
    }
  })

const dateOf = (millis: Option.Option<number>): Option.Option<Date> => Option.map(millis, (at) => new Date(at))

/**
 * One schedule's loop. `started` is completed after the first step (the catch-up, or its first thousand ticks),
 * whatever its outcome.
 */
const loop = (
  schedule: Resolved,
  queue: JobQueue,
  store: ScheduleStore,
  startedAt: number,
  started: Deferred.Deferred<void>
): Effect.Effect<void> =>
  Effect.gen(function*() {
    let upTo = startedAt
    let failures = 0
    while (true) {
      const record = {
        name: schedule.name,
        cron: schedule.expression,
        timeZone: schedule.timeZone,
        startedAt: new Date(startedAt),
        now: new Date(upTo)
      }
      // A failed step (a typed failure or a defect, such as a `payload` that throws) is tried again; its ticks stay
      // due. The fiber's own interruption is no failure here: Effect does not hand it to `exit`'s caller.
      const outcome: Exit.Exit<Stepped, EnqueueError | JobStoreError> = yield* Effect.exit(
        store.advance(record, step(schedule, queue, startedAt, upTo))
      )
      yield* Deferred.succeed(started, undefined)
      if (Exit.isFailure(outcome)) {
        failures += 1
        const delay = retryDelay(failures)
        yield* Effect.logWarning(
          `Schedule ${schedule.name} could not enqueue its ticks; trying again in ${Duration.format(delay)}`,
          outcome.cause
        )
        yield* Effect.sleep(delay)
        upTo = yield* Clock.currentTimeMillis
        continue
      }
      failures = 0
      // More ticks are due up to `upTo` than one step takes: the next step goes on at once.
      if (outcome.value.full) continue
      const next = nextAfter(schedule, upTo)
      if (Option.isNone(next)) {
        return yield* Effect.logWarning(`Schedule ${schedule.name} has no tick to come; its scheduler stops`)
      }
      const now = yield* Clock.currentTimeMillis
      if (next.value > now) yield* Effect.sleep(Duration.millis(next.value - now))
      // Past the tick on the clock (a timer that fired a millisecond early is caught by the next round, which
      // finds the tick still ahead and sleeps the rest).
      upTo = Math.max(upTo, yield* Clock.currentTimeMillis)
    }
  }).pipe(Effect.annotateLogs({ schedule: schedule.name }))

/** @internal */
export const start = (
  schedules: ReadonlyArray<JobSchedule.Any>
): Effect.Effect<void, InvalidOptionsError, JobQueue | ScheduleStore | Scope.Scope> =>
  Effect.gen(function*() {
    const queue = yield* queueTag
    const store = yield* storeTag
    const startedAt = yield* Clock.currentTimeMillis
    const resolved = yield* Either.match(resolveAll(schedules, queue.config, startedAt), {
      onLeft: Effect.fail,
      onRight: Effect.succeed
    })
    if (store.backend !== queue.store.backend) {
      return yield* Effect.fail(
        check.invalid(
          { component: "JobSchedule", option: "ScheduleStore" },
          store.backend,
          `a schedule store on the job queue's backend (${queue.store.backend}), so that a tick and its job are one write`
        )
      )
    }
    const started = yield* Effect.forEach(resolved, (schedule) =>
      Effect.gen(function*() {
        const first = yield* Deferred.make<void>()
        yield* Effect.forkScoped(loop(schedule, queue, store, startedAt, first))
        return first
      }))
    yield* Effect.forEach(started, Deferred.await, { discard: true })
  })

/** @internal */
export const layer = (
  schedules: ReadonlyArray<JobSchedule.Any>
): Layer.Layer<never, InvalidOptionsError, JobQueue | ScheduleStore> => Layer.scopedDiscard(start(schedules))

/** @internal */
export const list: Effect.Effect<ReadonlyArray<ScheduleInfo>, JobStoreError, ScheduleStore> = Effect.flatMap(
  storeTag,
  (store) => store.list
)
