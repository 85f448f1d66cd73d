/**
 * The `bulwark` CLI, run for real: a child process (tsx) against a scratch
 * database holding real dead letters, made by the real `JobWorker` running
 * handlers that fail terminally and transiently. Checks what it prints, its
 * exit codes, and that replay and discard really changed the tables.
 *
 * Real time (not TestClock) while the dead letters are made: the worker's
 * retries wait on the clock. Needs PostgreSQL on 127.0.0.1:5432.
 */
import { TerminalTypeId, TransientTypeId } from "@bulwark/resilience/Failure"
import * as JobQueue from "@bulwark/resilience/JobQueue"
import * as JobWorker from "@bulwark/resilience/JobWorker"
import * as SqlJobQueue from "@bulwark/resilience/SqlJobQueue"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, layer } from "@effect/vitest"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as ScratchPostgres from "../support/postgres.js"
import { Charge, definitions, SendEmail } from "./cli.jobs.js"
import { array, field, parseJson, root, runCli } from "./crash.process.js"

class PaymentDeclined extends Data.TaggedError("PaymentDeclined")<{ readonly orderId: string }> {
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId
  override get message() {
    return `card declined for order ${this.orderId}`
  }
}

class GatewayTimeout extends Data.TaggedError("GatewayTimeout")<{ readonly orderId: string }> {
  readonly [TransientTypeId]: TransientTypeId = TransientTypeId
  override get message() {
    return `payment gateway timed out for order ${this.orderId}`
  }
}

class MailboxFull extends Data.TaggedError("MailboxFull")<{ readonly to: string }> {
  readonly [TerminalTypeId]: TerminalTypeId = TerminalTypeId
  override get message() {
    return `mailbox of ${this.to} is full`
  }
}

const fast = { pollInterval: "50 millis", retry: { base: "10 millis", cap: "20 millis", maxAttempts: 2 } } as const
const Queue = SqlJobQueue.layer({ queues: { payments: fast, emails: fast }, jobs: definitions })

/**
 * Six dead letters and two succeeded jobs: three declined charges (terminal,
 * one attempt), one charge whose gateway timed out twice (exhausted after two
 * attempts), two bounced emails (terminal).
 */
const makeDeadLetters = Effect.gen(function*() {
  yield* JobQueue.enqueueMany([
    JobQueue.job(Charge, { orderId: "o-1", amount: -1 }),
    JobQueue.job(Charge, { orderId: "o-2", amount: -1 }),
    JobQueue.job(Charge, { orderId: "o-3", amount: -1 }),
    JobQueue.job(Charge, { orderId: "slow-1", amount: 5 }),
    JobQueue.job(Charge, { orderId: "ok-1", amount: 10 }),
    JobQueue.job(SendEmail, { to: "full-1@example.com" }),
    JobQueue.job(SendEmail, { to: "full-2@example.com" }),
    JobQueue.job(SendEmail, { to: "ok@example.com" })
  ])
  yield* Effect.scoped(Effect.gen(function*() {
    const handlers: ReadonlyArray<JobWorker.Handler> = [
      JobWorker.handler(Charge, ({ amount, orderId }) =>
        Effect.gen(function*() {
          if (amount < 0) return yield* new PaymentDeclined({ orderId })
          if (orderId.startsWith("slow")) return yield* new GatewayTimeout({ orderId })
        })),
      JobWorker.handler(SendEmail, ({ to }) =>
        Effect.gen(function*() {
          if (to.startsWith("full")) return yield* new MailboxFull({ to })
        }))
    ]
    yield* JobWorker.make({ handlers })
    yield* settled
  })).pipe(Logger.withMinimumLogLevel(LogLevel.Error))
})

/** Waits until every job succeeded or died (the worker logs each dead-lettered job at WARN: not needed here). */
const settled = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  while (true) {
    const [row] = yield* sql<{ open: number }>`SELECT count(*)::int AS open FROM bulwark_jobs
      WHERE state NOT IN ('succeeded', 'dead')`
    if (row?.open === 0) return
    yield* Effect.sleep("50 millis")
  }
}).pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the jobs never finished") }))

const Env = Layer.provideMerge(Queue, ScratchPostgres.layer())
const TestLayer = Layer.provideMerge(Layer.effectDiscard(makeDeadLetters), Env)

/** Entry ids by last error tag, from the table itself (not from the CLI under test). */
const idsByTag = (tag: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ id: string }>`SELECT job_id::text AS id FROM bulwark_dead_letters
        WHERE errors -> -1 ->> 'tag' = ${tag} ORDER BY job_id`,
      (rows) => rows.map((row) => row.id)
    ))

const entryRow = (id: string) =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    Effect.map(
      sql<{ status: string; replayedJobId: string | null }>`
        SELECT status, replayed_job_id::text AS "replayedJobId" FROM bulwark_dead_letters WHERE job_id = ${id}`,
      (rows) => rows[0]
    ))

const replaysOf = (id: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      sql<{ id: string; state: string; attempt: number; payload: unknown; queue: string }>`
      SELECT id::text AS id, state, attempt, payload, queue FROM bulwark_jobs WHERE replay_of = ${id}`
  )

describe("the bulwark CLI", () => {
  layer(TestLayer, { excludeTestServices: true, timeout: "60 seconds" })((it) => {
    const cli = (...args: ReadonlyArray<string>) =>
      Effect.flatMap(ScratchPostgres.ScratchDatabase, ({ url }) => runCli([...args, "--database-url", url]))

    it.effect(
      "refuses to run without a database, or with bad input, with a clear message and exit code",
      () =>
        Effect.gen(function*() {
          const [noDatabase, unreachable, badLimit, badId, badSince, unknownCommand] = yield* Effect.all([
            runCli(["dlq", "list"]),
            runCli(["queues", "stats", "--database-url", "postgres://postgres@127.0.0.1:1/nothing"]),
            cli("dlq", "list", "--limit", "0"),
            cli("dlq", "show", "not-an-id"),
            cli("dlq", "list", "--since", "last tuesday"),
            cli("dlq", "explode")
          ], { concurrency: 3 })
          assert.strictEqual(noDatabase.code, 2)
          assert.include(noDatabase.stderr, "DATABASE_URL")
          assert.strictEqual(unreachable.code, 1)
          assert.include(unreachable.stderr, "Cannot connect to PostgreSQL at postgres://postgres@127.0.0.1:1/nothing")
          assert.strictEqual(badLimit.code, 2)
          assert.include(badLimit.stderr, "--limit 0")
          assert.strictEqual(badId.code, 2)
          assert.include(badId.stderr, "Not a job id: not-an-id")
          assert.strictEqual(badSince.code, 2)
          assert.include(badSince.stderr, "--since")
          assert.strictEqual(unknownCommand.code, 2)
          assert.include(unknownCommand.stderr, "Invalid subcommand")
          assert.include(unknownCommand.stderr, "$ bulwark dlq discard")
          assert.notInclude(unknownCommand.stderr, "$ bulwark queues stats")
        }),
      120_000
    )

    it.effect("lists dead letters as a table and as JSON, with filters and pagination", () =>
      Effect.gen(function*() {
        const [table, payments, declined, future, firstPage] = yield* Effect.all([
          cli("dlq", "list"),
          cli("dlq", "list", "--queue", "payments", "--since", "1h", "--json"),
          cli("dlq", "list", "--error-tag", "PaymentDeclined", "--json"),
          cli("dlq", "list", "--since", "2999-01-01", "--json"),
          cli("dlq", "list", "--limit", "4", "--json")
        ], { concurrency: 3 })
        assert.strictEqual(table.code, 0, table.stderr)
        assert.match(table.stdout, /^\s*ID\s+QUEUE\s+KIND\s+ERROR\s+ATTEMPTS\s+DIED\s+STATUS\s+MESSAGE/)
        assert.include(table.stdout, "card declined for order o-1")
        assert.include(table.stdout, "GatewayTimeout")
        assert.strictEqual(table.stdout.trim().split("\n").length, 2 + 6)

        assert.strictEqual(array(field(parseJson(payments), "entries")).length, 4)
        const declinedEntries = array(field(parseJson(declined), "entries"))
        assert.deepStrictEqual(declinedEntries.map((entry) => field(entry, "errorTag")), [
          "PaymentDeclined",
          "PaymentDeclined",
          "PaymentDeclined"
        ])
        assert.strictEqual(array(field(parseJson(future), "entries")).length, 0)

        // Two pages of 4 and 2 cover the six entries once each, newest first.
        const first = array(field(parseJson(firstPage), "entries"))
        const cursor = field(parseJson(firstPage), "next")
        assert.strictEqual(first.length, 4)
        assert.isString(cursor)
        const secondPage = yield* cli("dlq", "list", "--limit", "4", "--cursor", String(cursor), "--json")
        const second = array(field(parseJson(secondPage), "entries"))
        assert.strictEqual(second.length, 2)
        assert.isNull(field(parseJson(secondPage), "next"))
        const listed = [...first, ...second]
        const all = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
          sql<{ id: string }>`SELECT job_id::text AS id FROM bulwark_dead_letters
            ORDER BY dead_lettered_at DESC, job_id DESC`)
        assert.deepStrictEqual(
          listed.map((entry) =>
            String(field(entry, "id"))
          ),
          all.map((row) => row.id)
        )
      }), 120_000)

    it.effect("shows one entry's full envelope: payload, every attempt's error, times", () =>
      Effect.gen(function*() {
        const [timedOut] = yield* idsByTag("GatewayTimeout")
        if (timedOut === undefined) return assert.fail("no GatewayTimeout entry")
        const [human, json, missing] = yield* Effect.all([
          cli("dlq", "show", timedOut),
          cli("dlq", "show", timedOut, "--json"),
          cli("dlq", "show", "999999")
        ], { concurrency: 3 })
        assert.strictEqual(human.code, 0, human.stderr)
        assert.include(human.stdout, `Dead-letter entry ${timedOut}`)
        assert.include(human.stdout, "exhausted: 2 of 2 attempts failed")
        assert.include(human.stdout, `"orderId": "slow-1"`)
        assert.match(human.stdout, /#1 .*GatewayTimeout \(transient\)/)
        assert.match(human.stdout, /#2 .*GatewayTimeout \(transient\)/)
        const entry = parseJson(json)
        assert.strictEqual(field(entry, "queue"), "payments")
        assert.strictEqual(field(entry, "kind"), "charge-card")
        assert.strictEqual(field(entry, "reason"), "exhausted")
        assert.deepStrictEqual(field(entry, "payload"), { orderId: "slow-1", amount: 5 })
        const errors = array(field(entry, "errors"))
        assert.deepStrictEqual(errors.map((error) => field(error, "attempt")), [1, 2])
        assert.deepStrictEqual(errors.map((error) => field(error, "message")), [
          "payment gateway timed out for order slow-1",
          "payment gateway timed out for order slow-1"
        ])
        assert.isString(field(entry, "deadLetteredAt"))
        assert.isString(field(errors[0], "failedAt"))
        assert.strictEqual(missing.code, 3)
        assert.include(missing.stderr, "999999")
      }), 120_000)

    it.effect("prints queue depth per state and dead-letter depth", () =>
      Effect.gen(function*() {
        const [table, json] = yield* Effect.all([cli("queues", "stats"), cli("queues", "stats", "--json")], {
          concurrency: 2
        })
        assert.strictEqual(table.code, 0, table.stderr)
        assert.match(table.stdout, /QUEUE\s+READY\s+SCHEDULED\s+RETRYING\s+RUNNING\s+DEAD LETTERS\s+OLDEST READY/)
        assert.match(table.stdout, /TOTAL\s+0\s+0\s+0\s+0\s+6/)
        const queues = array(field(parseJson(json), "queues"))
        const byName = new Map(queues.map((queue) => [field(queue, "queue"), queue]))
        assert.strictEqual(field(byName.get("payments"), "deadLetters"), 4)
        assert.strictEqual(field(byName.get("emails"), "deadLetters"), 2)
        assert.strictEqual(field(byName.get("payments"), "ready"), 0)
        assert.deepStrictEqual(field(parseJson(json), "totals"), {
          ready: 0,
          scheduled: 0,
          retrying: 0,
          running: 0,
          deadLetters: 6
        })
      }), 120_000)

    it.effect("replays one entry as a fresh job, and replaying it again creates nothing", () =>
      Effect.gen(function*() {
        const [declined] = yield* idsByTag("PaymentDeclined")
        if (declined === undefined) return assert.fail("no PaymentDeclined entry")
        const first = yield* cli("dlq", "replay", declined)
        assert.strictEqual(first.code, 0, first.stderr)
        const jobs = yield* replaysOf(declined)
        assert.strictEqual(jobs.length, 1)
        const job = jobs[0]
        assert.deepStrictEqual({ state: job?.state, attempt: job?.attempt, queue: job?.queue }, {
          state: "ready",
          attempt: 0,
          queue: "payments"
        })
        assert.include(first.stdout, `${declined}: replayed as job ${job?.id} in queue payments`)
        assert.deepStrictEqual(yield* entryRow(declined), { status: "replayed", replayedJobId: job?.id ?? null })

        const again = yield* cli("dlq", "replay", declined, "--json")
        assert.strictEqual(again.code, 0, again.stderr)
        assert.deepStrictEqual(field(parseJson(again), "results"), [
          { id: declined, queue: "payments", outcome: "already_replayed", job: job?.id }
        ])
        assert.strictEqual((yield* replaysOf(declined)).length, 1)
      }), 120_000)

    it.effect("replays with an edited payload only when the kind's Schema accepts it", () =>
      Effect.gen(function*() {
        const [, declined] = yield* idsByTag("PaymentDeclined")
        if (declined === undefined) return assert.fail("no second PaymentDeclined entry")
        const jobs = `${root}/test/job-queue/cli.jobs.ts`
        const [unchecked, invalid, notJson] = yield* Effect.all([
          cli("dlq", "replay", declined, "--payload", `{"orderId":"o-2","amount":12}`),
          cli("dlq", "replay", declined, "--payload", `{"orderId":"o-2","amount":"twelve"}`, "--jobs", jobs),
          cli("dlq", "replay", declined, "--payload", `{orderId: o-2}`, "--jobs", jobs)
        ], { concurrency: 3 })
        assert.strictEqual(unchecked.code, 2)
        assert.include(unchecked.stderr, "--jobs")
        assert.strictEqual(invalid.code, 2)
        assert.include(invalid.stderr, "Invalid payload")
        assert.strictEqual(notJson.code, 2)
        assert.include(notJson.stderr, "--payload is not valid JSON")
        assert.deepStrictEqual(yield* entryRow(declined), { status: "pending", replayedJobId: null })
        assert.strictEqual((yield* replaysOf(declined)).length, 0)

        const edited = yield* cli(
          "dlq",
          "replay",
          declined,
          "--payload",
          `{"orderId":"o-2","amount":12}`,
          "--jobs",
          jobs
        )
        assert.strictEqual(edited.code, 0, edited.stderr)
        const [job] = yield* replaysOf(declined)
        assert.deepStrictEqual(job?.payload, { orderId: "o-2", amount: 12 })
      }), 120_000)

    it.effect("replays many ids only when all exist, and --all by filters", () =>
      Effect.gen(function*() {
        const [, , declined] = yield* idsByTag("PaymentDeclined")
        const bounced = yield* idsByTag("MailboxFull")
        if (declined === undefined) return assert.fail("no third PaymentDeclined entry")
        const partial = yield* cli("dlq", "replay", declined, "999999")
        assert.strictEqual(partial.code, 3)
        assert.include(partial.stderr, "999999")
        assert.deepStrictEqual(yield* entryRow(declined), { status: "pending", replayedJobId: null })

        const bulk = yield* cli("dlq", "replay", "--all", "--queue", "emails", "--error-tag", "MailboxFull", "--json")
        assert.strictEqual(bulk.code, 0, bulk.stderr)
        const results = array(field(parseJson(bulk), "results"))
        assert.deepStrictEqual(results.map((result) => field(result, "outcome")), ["replayed", "replayed"])
        // `--all` replays oldest dead-lettered first; `bounced` is in id order, and two jobs may die out of id order
        assert.deepStrictEqual(results.map((result) => String(field(result, "id"))).sort(), [...bounced].sort())
        for (const id of bounced) {
          assert.strictEqual((yield* entryRow(id))?.status, "replayed")
          assert.strictEqual((yield* replaysOf(id)).length, 1)
        }
        const nothingLeft = yield* cli("dlq", "replay", "--all", "--queue", "emails")
        assert.strictEqual(nothingLeft.code, 0, nothingLeft.stderr)
        assert.include(nothingLeft.stdout, "Nothing to replay")
      }), 120_000)

    it.effect(
      "discards only with --yes, keeps the entry for audit, and refuses replayed entries",
      () =>
        Effect.gen(function*() {
          const [, , declined] = yield* idsByTag("PaymentDeclined")
          const [replayed] = yield* idsByTag("MailboxFull")
          const [timedOut] = yield* idsByTag("GatewayTimeout")
          if (declined === undefined || replayed === undefined || timedOut === undefined) {
            return assert.fail("missing entries")
          }
          const [dryRun, conflict] = yield* Effect.all([
            cli("dlq", "discard", declined),
            cli("dlq", "discard", replayed, "--yes")
          ], { concurrency: 2 })
          assert.strictEqual(dryRun.code, 2)
          assert.include(dryRun.stderr, `Would discard 1 entry (${declined})`)
          assert.include(dryRun.stderr, "--yes")
          assert.strictEqual(conflict.code, 2)
          assert.include(conflict.stderr, `Cannot discard replayed entry ${replayed}`)
          assert.deepStrictEqual(yield* entryRow(declined), { status: "pending", replayedJobId: null })
          assert.strictEqual((yield* entryRow(replayed))?.status, "replayed")

          const done = yield* cli("dlq", "discard", declined, "--yes")
          assert.strictEqual(done.code, 0, done.stderr)
          assert.include(done.stdout, `${declined}: discarded`)
          assert.strictEqual((yield* entryRow(declined))?.status, "discarded")
          const [again, replayDiscarded, bulk] = yield* Effect.all([
            cli("dlq", "discard", declined, "--yes", "--json"),
            cli("dlq", "replay", declined),
            cli("dlq", "discard", "--all", "--queue", "payments", "--yes", "--json")
          ], { concurrency: 3 })
          assert.strictEqual(again.code, 0, again.stderr)
          assert.deepStrictEqual(field(parseJson(again), "results"), [
            { id: declined, queue: "payments", outcome: "already_discarded" }
          ])
          assert.strictEqual(replayDiscarded.code, 2)
          assert.include(replayDiscarded.stderr, `Cannot replay discarded entry ${declined}`)
          // The only pending payments entry left is the timed-out charge.
          assert.deepStrictEqual(field(parseJson(bulk), "results"), [
            { id: timedOut, queue: "payments", outcome: "discarded" }
          ])
          assert.strictEqual((yield* entryRow(timedOut))?.status, "discarded")
          const [pending] = yield* Effect.flatMap(
            SqlClient.SqlClient,
            (sql) => sql<{ n: number }>`SELECT count(*)::int AS n FROM bulwark_dead_letters WHERE status = 'pending'`
          )
          assert.strictEqual(pending?.n, 0)
        }),
      120_000
    )

    it.effect("still finds settled entries once no queue has work left", () =>
      Effect.gen(function*() {
        // Every replayed job now succeeds: no queue has jobs or pending dead letters any more.
        yield* Effect.scoped(Effect.gen(function*() {
          yield* JobWorker.make({
            handlers: [JobWorker.handler(Charge, () => Effect.void), JobWorker.handler(SendEmail, () => Effect.void)]
          })
          yield* settled
        }))
        const [declined] = yield* idsByTag("PaymentDeclined")
        if (declined === undefined) return assert.fail("no PaymentDeclined entry")
        const [stats, list, show, again] = yield* Effect.all([
          cli("queues", "stats", "--json"),
          cli("dlq", "list", "--status", "all", "--json"),
          cli("dlq", "show", declined, "--json"),
          cli("dlq", "replay", declined, "--json")
        ], { concurrency: 3 })
        assert.deepStrictEqual(field(parseJson(stats), "queues"), [])
        assert.strictEqual(array(field(parseJson(list), "entries")).length, 6)
        assert.strictEqual(field(parseJson(show), "status"), "replayed")
        assert.strictEqual(again.code, 0, again.stderr)
        assert.strictEqual(field(array(field(parseJson(again), "results"))[0], "outcome"), "already_replayed")
      }), 120_000)

    it.effect(
      "pauses and resumes a queue for every worker, idempotently, and shows it in stats",
      () =>
        Effect.gen(function*() {
          const { store } = yield* JobQueue.JobQueue
          const { id } = yield* JobQueue.enqueue(Charge, { orderId: "held-1", amount: 5 })
          const paused = yield* cli("queues", "pause", "payments")
          assert.strictEqual(paused.code, 0, paused.stderr)
          assert.include(paused.stdout, "Paused queue payments: no worker claims its jobs")
          assert.notInclude(paused.stdout, "check its name")
          // Claimed by nobody, in any process: this one is not the CLI's.
          assert.deepStrictEqual(
            yield* store.claim({ queue: "payments", limit: 10, owner: "test", lease: Duration.seconds(5) }),
            []
          )
          const [again, table, json] = yield* Effect.all([
            cli("queues", "pause", "payments", "--json"),
            cli("queues", "stats"),
            cli("queues", "stats", "--json")
          ], { concurrency: 3 })
          assert.deepStrictEqual(parseJson(again), { queue: "payments", paused: true, changed: false, known: true })
          assert.match(table.stdout, /OLDEST READY\s+PAUSED\n/)
          assert.match(table.stdout, /\npayments\s+1\s+0\s+0\s+0\s+\d+\s+\S+\s+yes\n/)
          assert.deepStrictEqual(
            array(field(parseJson(json), "queues")).map((queue) => [field(queue, "queue"), field(queue, "paused")])
              .filter(([, paused]) => paused !== false),
            [["payments", true]],
            "only payments is paused"
          )

          const resumed = yield* cli("queues", "resume", "payments", "--json")
          assert.deepStrictEqual(parseJson(resumed), { queue: "payments", paused: false, changed: true, known: true })
          // A name the database has never seen is accepted (the CLI knows no configuration), with a warning.
          const [notPaused, typo, bad, missing] = yield* Effect.all([
            cli("queues", "resume", "payments"),
            cli("queues", "pause", "paymnets"),
            cli("queues", "pause", "bad queue"),
            cli("queues", "pause")
          ], { concurrency: 4 })
          assert.strictEqual(notPaused.code, 0, notPaused.stderr)
          assert.include(notPaused.stdout, "Queue payments was not paused.")
          const [claimed] = yield* store.claim({
            queue: "payments",
            limit: 1,
            owner: "test",
            lease: Duration.seconds(5)
          })
          if (claimed === undefined) return assert.fail("the resumed queue's job was not claimed")
          assert.strictEqual(claimed.lease.id, id)
          yield* store.complete([claimed.lease])

          assert.strictEqual(typo.code, 0, typo.stderr)
          assert.include(typo.stdout, "Note: queue paymnets has no jobs or dead letters: check its name.")
          assert.strictEqual((yield* cli("queues", "resume", "paymnets")).code, 0)
          assert.strictEqual(bad.code, 2)
          assert.include(bad.stderr, `Not a queue name: "bad queue"`)
          assert.strictEqual(missing.code, 2)
        }),
      120_000
    )
  })
})
