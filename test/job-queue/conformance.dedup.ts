/**
 * The dedup rule of the job queue (`JobQueue.DedupOptions`, `JobStore.DedupPolicy`), run against every backend
 * (memory and PostgreSQL) by memory.test.ts and postgres.test.ts:
 *
 * - the key is scoped by kind and queue;
 * - the same payload deduplicates, whatever the mode; another payload is a `DedupConflictError` (mode "error", what
 *   a bare `dedupKey` means), replaces a waiting job (mode "replace") or is dropped on purpose (mode "ignore");
 * - a dead job frees its key unless `keepAfterDeath`; a `window` lets an old job's key go;
 * - `enqueueMany` deduplicates in input order and a conflict stores none of the batch;
 * - admission tokens are taken only for jobs actually inserted, also under 50 concurrent enqueues of one key.
 */
import * as DeadLetter from "@bulwark/resilience/DeadLetter"
import * as Failure from "@bulwark/resilience/Failure"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as RateLimiter from "@bulwark/resilience/RateLimiter"
import type * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import { assert, describe } from "@effect/vitest"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import { type Backend, defaultOptions, Email } from "./conformance.js"

/** Same queue and payload Schema as {@link Email}, another kind. */
const Sms = JobQueue.define({
  kind: "sms",
  queue: "default",
  payload: Schema.Struct({ to: Schema.String, n: Schema.Number })
})

/** A kind of the high-priority queue. */
const Urgentish = JobQueue.define({
  kind: "urgentish",
  queue: "high_priority",
  payload: Schema.Struct({ id: Schema.Number })
})

/** Any JSON: payloads whose key order the caller chooses. */
const Blob = JobQueue.define({ kind: "blob", queue: "batch", payload: Schema.Unknown })

const fast = { pollInterval: "20 millis", visibilityTimeout: "2 seconds", reclaimInterval: "50 millis" } as const

const statusOf = (id: string) =>
  JobQueue.status(id).pipe(
    Effect.flatMap(Option.match({
      onNone: () => Effect.die(new Error(`job ${id} not found`)),
      onSome: Effect.succeed
    }))
  )

const storeOf = Effect.map(JobQueue.JobQueue, (queue) => queue.store)

/** Claims the only due job of a queue, as a worker would, checking it is `id`. */
const claim = (queue: string, id: string) =>
  Effect.gen(function*() {
    const store = yield* storeOf
    const [job] = yield* store.claim({ queue, limit: 1, owner: "dedup-test", lease: Duration.seconds(30) })
    assert.strictEqual(job?.lease.id, id, `claimed job ${id} of ${queue}`)
    if (job === undefined) return yield* Effect.die(new Error(`nothing to claim in ${queue}`))
    return job
  })

/** Dead-letters job `id`, the only due job of its queue, with a terminal failure. */
const kill = (queue: string, id: string) =>
  Effect.gen(function*() {
    const store = yield* storeOf
    const job = yield* claim(queue, id)
    const outcome = yield* store.fail({
      lease: job.lease,
      error: { tag: "Boom", message: "boom", cause: null, verdict: "terminal" },
      retryIn: Option.none()
    })
    assert.strictEqual(outcome._tag, "Dead")
  })

const readyIn = (queue: string) =>
  Effect.map(JobQueue.stats, (stats) => {
    const row = stats.find((s) => s.queue === queue)
    return (row?.ready ?? 0) + (row?.scheduled ?? 0)
  })

/** The conflict an enqueue fails with (a defect if it succeeds or fails otherwise). */
const conflictOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.flatMap(Effect.flip(effect), (error) =>
    error instanceof JobQueue.DedupConflictError
      ? Effect.succeed(error)
      : Effect.die(new Error(`expected a DedupConflictError, got ${String(error)}`)))

export const conformanceDedup = <R>(backend: Backend<R>): void => {
  type Body = () => Effect.Effect<void, unknown, JobQueue.JobQueue | Scope.Scope | R>
  const test = (name: string, body: Body, options: SqlJobQueue.Options = defaultOptions) =>
    backend.test(name, () => body().pipe(Effect.scoped, Effect.provide(backend.layer(options))), 30_000)

  describe(`job queue dedup conformance: ${backend.name}`, () => {
    test("a dedup key is scoped by kind and queue", () =>
      Effect.gen(function*() {
        const email = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "shared" })
        const sms = yield* JobQueue.enqueue(Sms, { to: "a", n: 1 }, { dedupKey: "shared" })
        const elsewhere = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "shared", queue: "batch" })
        assert.strictEqual(new Set([email.id, sms.id, elsewhere.id]).size, 3)
        for (const job of [email, sms, elsewhere]) assert.deepInclude(job, { deduplicated: false, replaced: false })
        // Another kind's job under the same key is never a duplicate, nor a conflict.
        const smsAgain = yield* JobQueue.enqueue(Sms, { to: "b", n: 2 }, { dedup: { key: "other-kind" } })
        const emailAgain = yield* JobQueue.enqueue(Email, { to: "c", n: 3 }, { dedup: { key: "other-kind" } })
        assert.notStrictEqual(smsAgain.id, emailAgain.id)
        assert.deepInclude(yield* JobQueue.enqueue(Sms, { to: "a", n: 1 }, { dedupKey: "shared" }), {
          id: sms.id,
          deduplicated: true,
          replaced: false
        })
        assert.strictEqual(yield* readyIn("default"), 4)
      }))

    test("another payload under a held key is a typed conflict and stores nothing; the same payload never is", () =>
      Effect.gen(function*() {
        const first = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "k" })
        const modes: ReadonlyArray<JobQueue.EnqueueOptions> = [
          { dedupKey: "k" },
          { dedup: { key: "k" } },
          { dedup: { key: "k", onConflict: "error" } }
        ]
        for (const options of modes) {
          const conflict = yield* conflictOf(JobQueue.enqueue(Email, { to: "b", n: 2 }, options))
          assert.deepInclude(conflict, {
            queue: "default",
            kind: "email",
            dedupKey: "k",
            existingId: first.id,
            existingStatus: "queued",
            onConflict: "error"
          })
          assert.isUndefined(conflict.index)
          assert.isTrue(Failure.isTerminal(conflict))
          assert.include(conflict.message, first.id)
        }
        assert.deepStrictEqual((yield* statusOf(first.id)).payload, { to: "a", n: 1 })
        // The same payload deduplicates in every mode.
        for (const onConflict of ["error", "replace", "ignore"] as const) {
          assert.deepInclude(
            yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedup: { key: "k", onConflict } }),
            { id: first.id, deduplicated: true, replaced: false }
          )
        }
        // "ignore": the existing job wins, on purpose.
        assert.deepInclude(
          yield* JobQueue.enqueue(Email, { to: "c", n: 3 }, { dedup: { key: "k", onConflict: "ignore" } }),
          { id: first.id, deduplicated: true, replaced: false }
        )
        assert.deepStrictEqual((yield* statusOf(first.id)).payload, { to: "a", n: 1 })
        assert.strictEqual(yield* readyIn("default"), 1)

        // Payloads are compared as JSON values (jsonb equality on PostgreSQL): key order does not matter.
        const blob = yield* JobQueue.enqueue(Blob, { a: 1, b: [1, { c: null }] }, { dedupKey: "blob" })
        assert.deepInclude(yield* JobQueue.enqueue(Blob, { b: [1, { c: null }], a: 1.0 }, { dedupKey: "blob" }), {
          id: blob.id,
          deduplicated: true
        })
        yield* conflictOf(JobQueue.enqueue(Blob, { a: 1, b: [{ c: null }, 1] }, { dedupKey: "blob" }))
        yield* conflictOf(JobQueue.enqueue(Blob, { a: 1 }, { dedupKey: "blob" }))

        // A running job: the same payload deduplicates, another one conflicts.
        yield* claim("batch", blob.id)
        assert.isTrue((yield* JobQueue.enqueue(Blob, { a: 1, b: [1, { c: null }] }, { dedupKey: "blob" })).deduplicated)
        const running = yield* conflictOf(JobQueue.enqueue(Blob, "other", { dedupKey: "blob" }))
        assert.strictEqual(running.existingStatus, "running")
      }))

    test("replace overwrites a waiting job's payload and the options given, and nothing else", () =>
      Effect.gen(function*() {
        const first = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, {
          dedupKey: "r",
          delay: "1 hour",
          priority: 1,
          maxAttempts: 2
        })
        const replaced = yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, {
          dedup: { key: "r", onConflict: "replace" },
          priority: 7
        })
        assert.deepStrictEqual(replaced, { id: first.id, queue: "default", deduplicated: false, replaced: true })
        let info = yield* statusOf(first.id)
        assert.deepInclude(info, { status: "scheduled", priority: 7, maxAttempts: 2 })
        assert.deepStrictEqual(info.payload, { to: "b", n: 2 })
        // The same payload with nothing else given changes nothing.
        assert.deepInclude(
          yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedup: { key: "r", onConflict: "replace" } }),
          { id: first.id, deduplicated: true, replaced: false }
        )
        // The same payload with a new due time (a debounce) and max attempts replaces them.
        assert.deepInclude(
          yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, {
            dedup: { key: "r", onConflict: "replace" },
            delay: 0,
            maxAttempts: 3
          }),
          { id: first.id, deduplicated: false, replaced: true }
        )
        info = yield* statusOf(first.id)
        assert.deepInclude(info, { status: "queued", priority: 7, maxAttempts: 3, attempts: 0 })
        assert.deepStrictEqual(info.dedupKey, Option.some("r"))
        assert.strictEqual(yield* readyIn("default"), 1)

        // Once attempted it can no longer be replaced: running, retrying, succeeded.
        const store = yield* storeOf
        const job = yield* claim("default", first.id)
        const replace = { dedup: { key: "r", onConflict: "replace" } } as const
        const running = yield* conflictOf(JobQueue.enqueue(Email, { to: "c", n: 3 }, replace))
        assert.deepInclude(running, { existingId: first.id, existingStatus: "running", onConflict: "replace" })
        assert.include(running.message, "cannot be replaced")
        assert.isTrue((yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, replace)).deduplicated)
        yield* store.fail({
          lease: job.lease,
          error: { tag: "Flaky", message: "flaky", cause: null, verdict: "transient" },
          retryIn: Option.some(Duration.hours(1))
        })
        const retrying = yield* conflictOf(JobQueue.enqueue(Email, { to: "c", n: 3 }, replace))
        assert.strictEqual(retrying.existingStatus, "retrying")
        const done = yield* JobQueue.enqueue(Email, { to: "d", n: 4 }, { dedupKey: "done" })
        const finished = yield* claim("default", done.id)
        assert.deepStrictEqual(yield* store.complete([finished.lease]), [done.id])
        const succeeded = yield* conflictOf(
          JobQueue.enqueue(Email, { to: "e", n: 5 }, { dedup: { key: "done", onConflict: "replace" } })
        )
        assert.strictEqual(succeeded.existingStatus, "succeeded")
        assert.deepStrictEqual((yield* statusOf(first.id)).payload, { to: "b", n: 2 })
        assert.deepStrictEqual((yield* statusOf(done.id)).payload, { to: "d", n: 4 })
      }))

    test("a dead job frees its key unless keepAfterDeath; its dead letter still shows the key", () =>
      Effect.gen(function*() {
        const dead = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "d", queue: "batch" })
        yield* kill("batch", dead.id)
        const entry = yield* DeadLetter.show(dead.id)
        assert.deepStrictEqual(Option.map(entry, (e) => e.dedupKey), Option.some(Option.some("d")))
        assert.deepStrictEqual((yield* statusOf(dead.id)).dedupKey, Option.some("d"))
        // Even another payload: the key is free.
        const fresh = yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedupKey: "d", queue: "batch" })
        assert.deepInclude(fresh, { deduplicated: false, replaced: false })
        assert.notStrictEqual(fresh.id, dead.id)
        assert.isTrue(
          (yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedupKey: "d", queue: "batch" })).deduplicated
        )

        const kept = yield* JobQueue.enqueue(Urgentish, { id: 1 }, { dedup: { key: "kept", keepAfterDeath: true } })
        yield* kill("high_priority", kept.id)
        assert.deepInclude(yield* JobQueue.enqueue(Urgentish, { id: 1 }, { dedupKey: "kept" }), {
          id: kept.id,
          deduplicated: true
        })
        const keptConflict = yield* conflictOf(JobQueue.enqueue(Urgentish, { id: 2 }, { dedupKey: "kept" }))
        assert.deepInclude(keptConflict, { existingId: kept.id, existingStatus: "dead" })
        yield* conflictOf(
          JobQueue.enqueue(Urgentish, { id: 2 }, { dedup: { key: "kept", onConflict: "replace" } })
        )
        // Replaying the dead job makes a job without a key; the dead one keeps holding it.
        const replayed = yield* DeadLetter.replay(kept.id)
        assert.deepStrictEqual((yield* statusOf(replayed.job)).dedupKey, Option.none())
        assert.isTrue((yield* JobQueue.enqueue(Urgentish, { id: 1 }, { dedupKey: "kept" })).deduplicated)
      }))

    backend.clocked("a job older than the dedup window gives up its key to a new job", () =>
      Effect.gen(function*() {
        const window = { key: "w", window: "300 millis" } as const
        const old = yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedup: window })
        assert.deepInclude(yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedup: window }), {
          id: old.id,
          deduplicated: true
        })
        yield* conflictOf(JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedup: window }))
        yield* backend.advance("500 millis")
        // Without a window the old job still deduplicates.
        assert.deepInclude(yield* JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "w" }), { id: old.id })
        const fresh = yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedup: window })
        assert.deepInclude(fresh, { deduplicated: false, replaced: false })
        assert.notStrictEqual(fresh.id, old.id)
        // The old job keeps going, without its key: the key is the new job's now.
        const oldInfo = yield* statusOf(old.id)
        assert.strictEqual(oldInfo.status, "queued")
        assert.deepStrictEqual(oldInfo.payload, { to: "a", n: 1 })
        assert.deepInclude(yield* JobQueue.enqueue(Email, { to: "b", n: 2 }, { dedupKey: "w" }), {
          id: fresh.id,
          deduplicated: true
        })
        assert.strictEqual(
          (yield* conflictOf(JobQueue.enqueue(Email, { to: "a", n: 1 }, { dedupKey: "w" }))).existingId,
          fresh.id
        )
      }).pipe(Effect.scoped, Effect.provide(backend.layer(defaultOptions))), 30_000)

    test("enqueueMany deduplicates in input order, and a conflict stores none of the batch", () =>
      Effect.gen(function*() {
        const batch = yield* JobQueue.enqueueMany([
          JobQueue.job(Email, { to: "a", n: 1 }, { dedupKey: "m" }),
          JobQueue.job(Email, { to: "a", n: 1 }, { dedupKey: "m" }),
          JobQueue.job(Email, { to: "plain", n: 0 }),
          JobQueue.job(Email, { to: "b", n: 2 }, { dedup: { key: "m", onConflict: "replace" } }),
          JobQueue.job(Email, { to: "z", n: 9 }, { dedup: { key: "m", onConflict: "ignore" } }),
          JobQueue.job(Sms, { to: "a", n: 1 }, { dedupKey: "m" })
        ])
        const [first, ...rest] = batch
        assert.isDefined(first)
        if (first === undefined) return
        assert.deepStrictEqual(
          batch.map((r) => [r.deduplicated, r.replaced]),
          [[false, false], [true, false], [false, false], [false, true], [true, false], [false, false]]
        )
        assert.deepStrictEqual(rest.map((r) => r.id === first.id), [true, false, true, true, false])
        assert.deepStrictEqual((yield* statusOf(first.id)).payload, { to: "b", n: 2 })
        assert.strictEqual(yield* readyIn("default"), 3)

        // A conflict anywhere: nothing of the batch is stored, replaces included.
        const conflict = yield* conflictOf(JobQueue.enqueueMany([
          JobQueue.job(Email, { to: "new", n: 1 }, { dedupKey: "m-new" }),
          JobQueue.job(Email, { to: "c", n: 3 }, { dedup: { key: "m", onConflict: "replace" } }),
          JobQueue.job(Email, { to: "x", n: 1 }, { dedupKey: "m-second" }),
          JobQueue.job(Email, { to: "y", n: 1 }, { dedupKey: "m-second" })
        ]))
        assert.deepInclude(conflict, { index: 3, dedupKey: "m-second", existingStatus: "queued" })
        assert.include(conflict.message, "item 3")
        assert.deepStrictEqual((yield* statusOf(first.id)).payload, { to: "b", n: 2 })
        assert.strictEqual(yield* readyIn("default"), 3)
        assert.isFalse((yield* JobQueue.enqueue(Email, { to: "other", n: 5 }, { dedupKey: "m-new" })).deduplicated)
        assert.isFalse((yield* JobQueue.enqueue(Email, { to: "y", n: 1 }, { dedupKey: "m-second" })).deduplicated)
      }))

    test("bad dedup options fail with InvalidOptionsError and store nothing", () =>
      Effect.gen(function*() {
        const bad: ReadonlyArray<JobQueue.EnqueueOptions> = [
          { dedupKey: "a", dedup: { key: "a" } },
          { dedup: { key: "" } },
          { dedup: { key: "k".repeat(513) } },
          { dedup: { key: "k", window: 0 } },
          { dedup: { key: "k", window: "-1 seconds" } },
          { dedup: { key: "k", window: Duration.infinity } }
        ]
        for (const options of bad) {
          const error = yield* Effect.flip(JobQueue.enqueue(Email, { to: "a", n: 1 }, options))
          assert.strictEqual(error._tag, "InvalidOptionsError", JSON.stringify(options))
        }
        assert.strictEqual(yield* readyIn("default"), 0)
      }))

    backend.test(
      "admission is taken only for jobs inserted: 50 concurrent enqueues of one key make one job and spend one token",
      () =>
        Effect.gen(function*() {
          const limiter = yield* RateLimiter.make({
            name: "dedup-admission",
            algorithm: RateLimiter.tokenBucket({ limit: 3, window: "1 hour" })
          })
          const options: SqlJobQueue.Options = {
            queues: { default: { ...fast, admission: { limiter } }, batch: fast, high_priority: fast }
          }
          yield* Effect.gen(function*() {
            const racing = yield* Effect.all(
              Array.from({ length: 50 }, () => JobQueue.enqueue(Email, { to: "r", n: 1 }, { dedupKey: "hot" })),
              { concurrency: "unbounded" }
            )
            const [created] = racing.filter((r) => !r.deduplicated)
            assert.strictEqual(racing.filter((r) => !r.deduplicated).length, 1)
            assert.strictEqual(new Set(racing.map((r) => r.id)).size, 1)
            if (created === undefined) return

            // 50 concurrent enqueues of one key with other payloads: each conflicts, none takes a token.
            const conflicting = yield* Effect.all(
              Array.from({ length: 50 }, (_, n) =>
                Effect.either(JobQueue.enqueue(Email, { to: "r", n: n + 2 }, { dedupKey: "hot" }))),
              { concurrency: "unbounded" }
            )
            for (const outcome of conflicting) {
              assert.isTrue(outcome._tag === "Left" && outcome.left._tag === "DedupConflictError")
            }
            // Replaces and ignores take none either.
            const replacing = yield* Effect.all(
              Array.from({ length: 50 }, (_, n) =>
                JobQueue.enqueue(Email, { to: "r", n: 100 + n }, { dedup: { key: "hot", onConflict: "replace" } })),
              { concurrency: "unbounded" }
            )
            assert.isTrue(replacing.every((r) =>
              r.id === created.id && r.replaced
            ))
            // The last replace wins: the job holds one of their payloads.
            const payload = (yield* statusOf(created.id)).payload
            const { n: last } = Schema.decodeUnknownSync(Email.payload)(payload)
            assert.isTrue(last >= 100 && last < 150, String(last))
            yield* JobQueue.enqueue(Email, { to: "i", n: 0 }, { dedup: { key: "hot", onConflict: "ignore" } })

            // A batch of two new jobs and a duplicate costs two tokens: the last two.
            const batch = yield* JobQueue.enqueueMany([
              JobQueue.job(Email, { to: "n", n: 1 }, { dedupKey: "new-1" }),
              JobQueue.job(Email, { to: "n", n: 1 }, { dedupKey: "new-1" }),
              JobQueue.job(Email, { to: "n", n: 2 }, { dedupKey: "new-2" }),
              JobQueue.job(Email, { to: "i", n: 0 }, { dedup: { key: "hot", onConflict: "ignore" } })
            ])
            assert.deepStrictEqual(
              batch.map((r) =>
                r.deduplicated
              ),
              [false, true, false, true]
            )

            // No token left: a duplicate still answers; a new job is refused and nothing of its batch is stored.
            assert.isTrue((yield* JobQueue.enqueue(Email, { to: "n", n: 2 }, { dedupKey: "new-2" })).deduplicated)
            const refused = yield* Effect.flip(JobQueue.enqueue(Email, { to: "n", n: 3 }, { dedupKey: "new-3" }))
            assert.strictEqual(refused._tag, "AdmissionRejectedError")
            const refusedBatch = yield* Effect.flip(JobQueue.enqueueMany([
              JobQueue.job(Email, { to: "n", n: 3 }, { dedup: { key: "hot", onConflict: "replace" } }),
              JobQueue.job(Email, { to: "n", n: 4 }, { dedupKey: "new-4" })
            ]))
            assert.strictEqual(refusedBatch._tag, "AdmissionRejectedError")
            assert.deepStrictEqual((yield* statusOf(created.id)).payload, payload)
            assert.strictEqual(yield* readyIn("default"), 3)
          }).pipe(Effect.provide(backend.layer(options)))
        }).pipe(Effect.scoped, Effect.provide(RateLimiter.layerMemory())),
      60_000
    )
  })
}
