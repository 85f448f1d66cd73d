/**
 * The `bulwark` command tree and its runner: the root command with its `dlq`
 * and `queues` groups, the usage printed under a malformed command line, and
 * `run`, which maps every error to one stderr line and an exit code. The
 * commands themselves: `dlq.ts` (`list`, `show`), `dlqReplay.ts`,
 * `dlqDiscard.ts`, `jobs.ts` (`show`, `cancel`), `queues.ts`; what they
 * share: `common.ts`.
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as Span from "@effect/cli/HelpDoc/Span"
import * as Usage from "@effect/cli/Usage"
import * as ValidationError from "@effect/cli/ValidationError"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { Options as CliOptions } from "../Cli.js"
import { list, show } from "./dlq.js"
import { discard } from "./dlqDiscard.js"
import { replay } from "./dlqReplay.js"
import { type CliError, ExitCode, exitCodeOf, UsageError } from "./errors.js"
import * as jobs from "./jobs.js"
import * as output from "./output.js"
import { pause, resume, stats } from "./queues.js"
import * as schedules from "./schedules.js"
import { version } from "./version.js"

// -----------------------------------------------------------------------------
// The tree
// -----------------------------------------------------------------------------

const pickSubcommand = (parent: string, children: ReadonlyArray<string>) =>
  Effect.fail(
    new UsageError({
      message: `Missing subcommand: ${["bulwark", parent, children.join("|")].filter((part) => part !== "").join(" ")}`,
      showUsage: true
    })
  )

/** @internal */
export const command = (options: CliOptions = {}) =>
  Command.make("bulwark", {}, () => pickSubcommand("", ["dlq", "jobs", "queues", "schedules"])).pipe(
    Command.withDescription("Operate Bulwark's Postgres job queue: dead letters, jobs, queue depth, pausing queues"),
    Command.withSubcommands([
      Command.make("dlq", {}, () => pickSubcommand("dlq", ["list", "show", "replay", "discard"])).pipe(
        Command.withDescription("The dead-letter queue"),
        Command.withSubcommands([list, show, replay(options), discard])
      ),
      Command.make("jobs", {}, () => pickSubcommand("jobs", ["show", "cancel"])).pipe(
        Command.withDescription("One job: its state, progress and result; cancelling it"),
        Command.withSubcommands([jobs.show, jobs.cancel])
      ),
      Command.make("queues", {}, () => pickSubcommand("queues", ["stats", "pause", "resume"])).pipe(
        Command.withDescription("Queue depth; pausing and resuming a queue"),
        Command.withSubcommands([stats, pause, resume])
      ),
      Command.make("schedules", {}, () => pickSubcommand("schedules", ["list"])).pipe(
        Command.withDescription("Recurring jobs"),
        Command.withSubcommands([schedules.list])
      )
    ])
  )

// -----------------------------------------------------------------------------
// Usage, printed under a malformed command line
// -----------------------------------------------------------------------------

interface Leaf {
  readonly name: string
  readonly usage: Usage.Usage
}

/** The name is typed as the command's own, so the two cannot drift apart. */
const leaf = <Name extends string, R, E, A>(name: Name, self: Command.Command<Name, R, E, A>): Leaf => ({
  name,
  usage: Command.getUsage(self)
})

/** The tree of {@link command}, for usage: a leaf's usage does not depend on the CLI's options. */
const groups: ReadonlyArray<{ readonly name: string; readonly leaves: ReadonlyArray<Leaf> }> = [
  {
    name: "dlq",
    leaves: [leaf("list", list), leaf("show", show), leaf("replay", replay({})), leaf("discard", discard)]
  },
  { name: "jobs", leaves: [leaf("show", jobs.show), leaf("cancel", jobs.cancel)] },
  { name: "queues", leaves: [leaf("stats", stats), leaf("pause", pause), leaf("resume", resume)] },
  { name: "schedules", leaves: [leaf("list", schedules.list)] }
]

/**
 * The usage of the command the arguments name, or of every command under the
 * group they name, or of all of them: `bulwark dlq list --frob` shows
 * `bulwark dlq list …`, `bulwark dlq explode` the four `dlq` commands.
 */
const usage = (args: ReadonlyArray<string>): HelpDoc.HelpDoc => {
  const [first, second] = args
  const group = groups.find((candidate) => candidate.name === first)
  const named = group?.leaves.find((candidate) => candidate.name === second)
  const shown = group === undefined
    ? groups.flatMap(({ leaves, name }) => leaves.map((leaf) => [name, leaf] as const))
    : group.leaves.filter((leaf) => named === undefined || leaf === named).map((leaf) => [group.name, leaf] as const)
  const path = ["bulwark", ...(group === undefined ? [] : [group.name]), ...(named === undefined ? [] : [named.name])]
  return HelpDoc.blocks([
    HelpDoc.h1("USAGE"),
    ...shown.flatMap(([name, leaf]) =>
      Usage.enumerate(leaf.usage, CliConfig.defaultConfig).map((span) =>
        HelpDoc.p(Span.concat(Span.text(`$ bulwark ${name} `), span))
      )
    ),
    HelpDoc.p(`Run '${path.join(" ")} --help' for ${named === undefined ? "the commands and options" : "the options"}.`)
  ])
}

const printUsage = (argv: ReadonlyArray<string>) => Console.error(HelpDoc.toAnsiText(usage(argv.slice(2))))

/**
 * Runs the CLI on `argv` (as `process.argv`: node, script, arguments…) and
 * answers the exit code. Errors are printed to stderr as one line; @effect/cli
 * prints its own for a malformed command line, and the usage follows it. Help,
 * errors and output are plain text on a stream that is not a terminal, or when
 * `NO_COLOR` is set.
 *
 * @internal
 */
export const run = (options: CliOptions = {}) => {
  const tree = command(options)
  return (argv: ReadonlyArray<string>) =>
    Effect.flatMap(version, (version) => Command.run(tree, { name: "bulwark", version })(argv)).pipe(
      Effect.as<ExitCode>(ExitCode.ok),
      Effect.catchIf(ValidationError.isValidationError, () => Effect.as(printUsage(argv), ExitCode.usage)),
      Effect.catchAll((error: CliError) =>
        Effect.as(
          error._tag === "UsageError" && error.showUsage === true
            ? Effect.zipRight(Console.error(`bulwark: ${error.message}\n`), printUsage(argv))
            : Console.error(`bulwark: ${error.message}`),
          exitCodeOf(error)
        )
      ),
      output.withPlainOutput
    )
}
