/**
 * Every public job-queue module loads on its own, whichever is imported first.
 *
 * The modules import one another without value-import cycles (internals
 * import their public module type-only; type ids, the service tag and errors
 * sit in leaf modules), so no module can read a binding of one still being
 * evaluated. This proves it at run time: the module cache makes the order
 * matter only once per process, so each order runs in a fresh Node process
 * (vitest's own module runner does not reproduce native ESM evaluation
 * order). Each child imports one module first, then the others, checks that
 * no export is `undefined`, and runs a job through `JobWorker` on the memory
 * backend.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Process from "../support/process.js"

const PUBLIC_MODULES = [
  "JobWorker",
  "DeadLetter",
  "SqlJobQueue",
  "JobStore",
  "JobQueue",
  "JobSchedule",
  "SqlJobSchedule",
  "Cli"
] as const

/** The child's program: `first` is imported before anything else of Bulwark's. */
const program = (first: string) => `
const order = ${JSON.stringify([first, ...PUBLIC_MODULES.filter((name) => name !== first)])}
const modules = {}
for (const name of order) modules[name] = await import("@bulwark/resilience/" + name)
const undefinedExports = order.flatMap((name) =>
  Object.entries(modules[name]).filter(([, value]) => value === undefined).map(([key]) => name + "." + key))
const { Effect, Schema, Deferred } = await import("effect")
const { JobQueue, JobWorker } = modules
const Ping = JobQueue.define({ kind: "ping", queue: "default", payload: Schema.Struct({ n: Schema.Number }) })
const ran = await Effect.runPromise(Effect.gen(function*() {
  const done = yield* Deferred.make()
  yield* JobWorker.make({ handlers: [JobWorker.handler(Ping, ({ n }) => Deferred.succeed(done, n))] })
  yield* JobQueue.enqueue(Ping, { n: 7 })
  return yield* Deferred.await(done)
}).pipe(Effect.scoped, Effect.provide(JobQueue.layerMemory({ queues: { default: { pollInterval: "10 millis" } } }))))
console.log(JSON.stringify({ undefinedExports, tag: JobQueue.JobQueue.key, ran }))
`

/** The child's exit code (0 or 1), stdout and stderr; killed when interrupted or after 50 s (then code 1). */
const runFirst = (first: string) =>
  Process.scoped(process.execPath, ["--import", Process.tsxLoader, "--input-type=module", "--eval", program(first)])
    .pipe(
      Effect.flatMap((child) =>
        Effect.promise(() => child.exited).pipe(
          Effect.timeoutTo({
            duration: "50 seconds",
            onTimeout: () => 1,
            onSuccess: ({ code }) => code === 0 ? 0 : 1
          }),
          Effect.map((code) => ({ code, stdout: child.stdout(), stderr: child.stderr() }))
        )
      ),
      Effect.scoped
    )

describe("job-queue module graph", () => {
  it.live("each public module can be the first one a process loads", () =>
    Effect.gen(function*() {
      const results = yield* Effect.forEach(PUBLIC_MODULES, runFirst, { concurrency: "unbounded" })
      for (const [index, first] of PUBLIC_MODULES.entries()) {
        const result = results[index]
        assert.isDefined(result)
        if (result === undefined) continue
        assert.strictEqual(result.code, 0, `loading ${first} first failed:\n${result.stderr}`)
        const line = result.stdout.trim().split("\n").at(-1) ?? ""
        assert.deepStrictEqual(
          JSON.parse(line),
          { undefinedExports: [], tag: "@bulwark/resilience/JobQueue", ran: 7 },
          `loading ${first} first`
        )
      }
    }), 60_000)
})
