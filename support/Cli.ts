/**
 * Command-line arguments of the repository's scripts (bench, demo, local Kinesis, the bench's child
 * servers), parsed with effect/cli as the service's own CLI is: `--help` prints the usage and exits 0,
 * bad arguments print the problem with the usage and exit 2.
 */
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as CliError from "effect/cli/CliError"
import * as Command from "effect/cli/Command"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"

export type Parsed<A> =
  | { readonly _tag: "Parsed"; readonly value: A }
  /** Help or version was printed (0), or the arguments were bad (2, printed with the usage). */
  | { readonly _tag: "Exit"; readonly code: number }

/** Parses `args` against `flags`. */
export const parse = async <const Flags extends Command.Command.Config>(
  name: string,
  description: string,
  flags: Flags,
  args: ReadonlyArray<string>
): Promise<Parsed<Command.Command.Config.Infer<Flags>>> => {
  let parsed: { readonly value: Command.Command.Config.Infer<Flags> } | undefined
  const command = Command.make(name, flags, (value) => Effect.sync(() => {
    parsed = { value }
  })).pipe(Command.withDescription(description))
  const exit = await Effect.runPromiseExit(Command.runWith(command, { version: "0.1.0" })(args).pipe(Effect.provide(NodeServices.layer)))
  if (Exit.isSuccess(exit)) return parsed === undefined ? { _tag: "Exit", code: 0 } : { _tag: "Parsed", value: parsed.value }
  const failure = Cause.findErrorOption(exit.cause)
  // --help is a ShowHelp without errors; bad arguments are a ShowHelp with them (printed with the usage)
  if (failure._tag === "Some" && CliError.isCliError(failure.value) && failure.value._tag === "ShowHelp") {
    return { _tag: "Exit", code: failure.value.errors.length === 0 ? 0 : 2 }
  }
  process.stderr.write(`${name}: ${Cause.pretty(exit.cause)}\n`)
  return { _tag: "Exit", code: 2 }
}

/** Parses the process's arguments; resolves with the values, or exits the process (help, bad arguments). */
export const parseArgs = async <const Flags extends Command.Command.Config>(
  name: string,
  description: string,
  flags: Flags,
  args: ReadonlyArray<string> = process.argv.slice(2)
): Promise<Command.Command.Config.Infer<Flags>> => {
  const result = await parse(name, description, flags, args)
  if (result._tag === "Exit") process.exit(result.code)
  return result.value
}
