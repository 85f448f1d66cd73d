/**
 * The PostgreSQL backend (`SqlJobQueue`): options validated, the store assembled from its statements (one file per
 * operation group in this folder) and its listener, and the `JobQueue` service on it.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"
import type { InvalidOptionsError } from "../../../Failure.js"
import * as check from "../../../internal/options.js"
import type { JobQueue } from "../../JobQueue.js"
import type { JobStore } from "../../JobStore.js"
import type { Options } from "../../SqlJobQueue.js"
import { makeConfig } from "../config.js"
import * as jobQueue from "../jobQueue.js"
import { tag } from "../tag.js"
import { cancel, cancelled } from "./cancel.js"
import { claim } from "./claim.js"
import { complete, fail, release } from "./complete.js"
import { discardDeadLetters, getDeadLetter, listDeadLetters, replayDeadLetters } from "./deadLetters.js"
import { makeInsert } from "./enqueue.js"
import { heartbeat } from "./heartbeat.js"
import { makeListener } from "./listener.js"
import { pause, resume } from "./pause.js"
import { progress } from "./progress.js"
import { reclaim } from "./reclaim.js"
import { deadLetterCounts, reporterLock } from "./reporter.js"
import { prune } from "./retention.js"
import type { Store } from "./shared.js"
import { stats, status } from "./stats.js"

const COMPONENT = "SqlJobQueue"

const makeStoreWith = (
  pg: PgClient.PgClient,
  channel: string,
  listenerCheckInterval: Duration.Duration
): Effect.Effect<JobStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Row names are ours: a PgClient configured with name transforms must not rename them (or the payload keys).
    const store: Store = { sql: pg.withoutTransforms(), channel }
    const insert = yield* makeInsert(store)
    const listener = yield* makeListener(pg, store, listenerCheckInterval)
    return {
      backend: "postgres",
      insert,
      claim: claim(store),
      heartbeat: heartbeat(store),
      complete: complete(store),
      fail: fail(store),
      release: release(store),
      reclaim: reclaim(store),
      status: status(store),
      cancel: cancel(store),
      cancelled: cancelled(store),
      progress: progress(store),
      stats: stats(store),
      pause: pause(store),
      resume: resume(store),
      deadLetterCounts: deadLetterCounts(store),
      reporterLock: reporterLock(store),
      wakeups: listener.wakeups,
      listening: listener.listening,
      listDeadLetters: listDeadLetters(store),
      getDeadLetter: getDeadLetter(store),
      replayDeadLetters: replayDeadLetters(store),
      discardDeadLetters: discardDeadLetters(store),
      prune: prune(store)
    }
  })

const resolveOptions = (
  options: { readonly channel?: string; readonly listenerCheckInterval?: Duration.DurationInput }
): Either.Either<{ channel: string; listenerCheckInterval: Duration.Duration }, InvalidOptionsError> =>
  Either.gen(function*() {
    const channel = options.channel ?? "bulwark_jobs"
    if (typeof channel !== "string" || !/^[a-z0-9_]{1,63}$/.test(channel)) {
      return yield* Either.left(
        check.invalid({ component: COMPONENT, option: "channel" }, channel, "1 to 63 characters of a-z 0-9 _")
      )
    }
    const listenerCheckInterval = yield* check.duration(
      { component: COMPONENT, option: "listenerCheckInterval" },
      options.listenerCheckInterval ?? Duration.seconds(5),
      { allowZero: false }
    )
    if (Duration.lessThan(listenerCheckInterval, Duration.millis(10))) {
      return yield* Either.left(
        check.invalid(
          { component: COMPONENT, option: "listenerCheckInterval" },
          options.listenerCheckInterval,
          "at least 10 ms"
        )
      )
    }
    return { channel, listenerCheckInterval }
  })

/** @internal */
export const makeStore = (
  options: { readonly channel?: string; readonly listenerCheckInterval?: Duration.DurationInput } = {}
): Effect.Effect<JobStore, InvalidOptionsError, PgClient.PgClient | Scope.Scope> =>
  Effect.gen(function*() {
    const resolved = yield* Either.match(resolveOptions(options), { onLeft: Effect.fail, onRight: Effect.succeed })
    const pg = yield* PgClient.PgClient
    return yield* makeStoreWith(pg, resolved.channel, resolved.listenerCheckInterval)
  })

/** @internal */
export const layer = (options: Options): Layer.Layer<JobQueue, InvalidOptionsError, PgClient.PgClient> =>
  Layer.scoped(
    tag,
    Effect.gen(function*() {
      const config = yield* Either.match(makeConfig(options), { onLeft: Effect.fail, onRight: Effect.succeed })
      const store = yield* makeStore(options)
      return jobQueue.make(config, store)
    })
  )
