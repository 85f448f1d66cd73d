/**
 * The wake-up listener on PostgreSQL: one LISTEN per store while workers subscribe, proven alive with pings through
 * the database and re-created with backoff when a ping is lost.
 */
import type * as PgClient from "@effect/sql-pg/PgClient"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import * as PubSub from "effect/PubSub"
import * as RcRef from "effect/RcRef"
import * as Ref from "effect/Ref"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import type { JobStore } from "../../JobStore.js"
import type { Store } from "./shared.js"

/** What the store exposes of its listener. @internal */
export type Listener = Pick<JobStore, "wakeups" | "listening">

// Queue names cannot contain "!", so no wake-up is ever mistaken for a ping.
const PING = "!ping:"

/**
 * One LISTEN per store, started when the first worker subscribes and
 * stopped with the last. `PgClient.listen` neither reports a dead connection
 * nor reconnects, so a session proves itself with pings through the database
 * (`pg_notify` on the same channel, a payload only this store recognises): a
 * ping that does not come back within the check interval ends the session,
 * and a new one starts with backoff. Closing the session's stream releases
 * @effect/sql-pg's shared listen client, so the next session connects afresh.
 *
 * @internal
 */
export const makeListener = (
  pg: PgClient.PgClient,
  { channel, sql }: Store,
  checkInterval: Duration.Duration
): Effect.Effect<Listener, never, Scope.Scope> =>
  Effect.gen(function*() {
    // Every session's consumer runs in the store's scope: closing the store interrupts whatever still runs.
    const scope = yield* Effect.scope
    const hub = yield* PubSub.sliding<string>(4096)
    const connected = yield* Ref.make(false)
    const instance = Math.random().toString(36).slice(2, 12)
    const pingTimeout = Duration.max(checkInterval, Duration.seconds(2))

    const session = Effect.gen(function*() {
      const received = yield* Ref.make(0)
      const consumer = yield* pg.listen(channel).pipe(
        Stream.runForEach((payload) =>
          payload.startsWith(PING)
            ? payload === `${PING}${instance}` ? Ref.update(received, (n) => n + 1) : Effect.void
            : PubSub.publish(hub, payload)
        ),
        Effect.forkIn(scope)
      )
      const stop = Effect.gen(function*() {
        yield* Ref.set(connected, false)
        yield* Fiber.interruptFork(consumer)
        // The dead connection's UNLISTEN may fail; never wait long for it.
        yield* Fiber.await(consumer).pipe(Effect.interruptible, Effect.timeoutOption(Duration.seconds(5)))
      })
      // A ping sent before LISTEN is in place is lost, so pings are re-sent every 100 ms until one comes back.
      const ping = Effect.gen(function*() {
        const before = yield* Ref.get(received)
        const once = sql`SELECT pg_notify(${channel}, ${`${PING}${instance}`})`.pipe(
          Effect.zipRight(
            Ref.get(received).pipe(
              Effect.repeat({ until: (n) => n > before, schedule: Schedule.spaced(Duration.millis(10)) }),
              Effect.timeoutOption(Duration.millis(100))
            )
          )
        )
        const back = yield* once.pipe(Effect.repeat({ until: Option.isSome }), Effect.timeoutOption(pingTimeout))
        if (Option.isNone(back)) return yield* Effect.fail("ping lost" as const)
        yield* Ref.set(connected, true)
      })
      return yield* Effect.repeat(ping, Schedule.spaced(checkInterval)).pipe(
        Effect.raceFirst(Fiber.join(consumer).pipe(Effect.zipRight(Effect.fail("listener ended" as const)))),
        Effect.ensuring(stop)
      )
    })

    const supervise = session.pipe(
      Effect.tapError((reason) =>
        Effect.logWarning(`Job wake-up listener on "${channel}" is down (${String(reason)}); reconnecting`)
      ),
      Effect.retry(
        Schedule.exponential(Duration.millis(100)).pipe(Schedule.union(Schedule.spaced(Duration.seconds(5))))
      ),
      Effect.annotateLogs("module", "SqlJobQueue"),
      Effect.ignore
    )

    const running = yield* RcRef.make({ acquire: Effect.forkScoped(supervise) })

    const wakeups: Stream.Stream<string> = Stream.unwrapScoped(
      Effect.gen(function*() {
        const subscription = yield* PubSub.subscribe(hub)
        yield* RcRef.get(running)
        return Stream.fromQueue(subscription)
      })
    )
    return { wakeups, listening: Ref.get(connected) }
  })
