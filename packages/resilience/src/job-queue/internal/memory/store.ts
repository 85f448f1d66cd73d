/**
 * The in-memory backend (`JobQueue.layerMemory`, `JobQueue.makeMemoryStore`): one process's store assembled from
 * its operations, and the `JobQueue` service on it.
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Stream from "effect/Stream"
import type { InvalidOptionsError } from "../../../Failure.js"
import type { JobQueue, Options } from "../../JobQueue.js"
import type { JobStore } from "../../JobStore.js"
import { makeConfig } from "../config.js"
import * as jobQueue from "../jobQueue.js"
import { tag } from "../tag.js"
import { cancel, cancelled } from "./cancel.js"
import { claim } from "./claim.js"
import { complete, fail, release } from "./complete.js"
import { discardDeadLetters, getDeadLetter, listDeadLetters, replayDeadLetters } from "./deadLetters.js"
import { insert } from "./enqueue.js"
import { heartbeat } from "./heartbeat.js"
import { pause, resume } from "./pause.js"
import { progress } from "./progress.js"
import { reclaim } from "./reclaim.js"
import { deadLetterCounts, reporterLock } from "./reporter.js"
import { prune } from "./retention.js"
import { makeState } from "./state.js"
import { stats, status } from "./stats.js"

/**
 * One process's job store. Every operation reads the clock, then runs one
 * synchronous read-modify-write on plain maps, so it is atomic on the JS
 * thread; time comes from Effect's `Clock`, so `TestClock` drives leases and
 * backoffs.
 *
 * @internal
 */
export const make: Effect.Effect<JobStore> = Effect.map(makeState, (state): JobStore => ({
  backend: "memory",
  insert: insert(state),
  claim: claim(state),
  heartbeat: heartbeat(state),
  complete: complete(state),
  fail: fail(state),
  release: release(state),
  reclaim: reclaim(state),
  status: status(state),
  cancel: cancel(state),
  cancelled: cancelled(state),
  progress: progress(state),
  stats: stats(state),
  pause: pause(state),
  resume: resume(state),
  deadLetterCounts: deadLetterCounts(state),
  reporterLock,
  wakeups: Stream.fromPubSub(state.wakeups),
  listening: Effect.succeed(true),
  listDeadLetters: listDeadLetters(state),
  getDeadLetter: getDeadLetter(state),
  replayDeadLetters: replayDeadLetters(state),
  discardDeadLetters: discardDeadLetters(state),
  prune: prune(state)
}))

/** @internal */
export const layer = (options: Options): Layer.Layer<JobQueue, InvalidOptionsError> =>
  Layer.effect(
    tag,
    Effect.gen(function*() {
      const config = yield* Either.match(makeConfig(options), { onLeft: Effect.fail, onRight: Effect.succeed })
      const store = yield* make
      return jobQueue.make(config, store)
    })
  )
