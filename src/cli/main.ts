#!/usr/bin/env node
/**
 * The operator CLI's entry point (`npm run cli -- status`, `npm run cli -- peek 5`). Expected
 * failures print one line on stderr and exit 1 (2 for bad configuration), never a stack trace.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as NodeServices from "@effect/platform-node/NodeServices"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Command from "effect/cli/Command"
import * as CliError from "effect/cli/CliError"
import { InvalidConfig } from "../config/EnvVar.ts"
import { CliFailure } from "./CliFailure.ts"
import { root } from "./Commands.ts"

const NAME = "cdc-logical-replication"

const report = (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.sync(() => {
    if (Cause.hasInterruptsOnly(cause)) return
    const failure = Cause.findErrorOption(cause)
    if (failure._tag === "None") {
      process.stderr.write(`${NAME}: unexpected error\n${Cause.pretty(cause)}\n`)
      return
    }
    const error = failure.value
    if (error instanceof InvalidConfig) {
      process.stderr.write(`${NAME}: invalid configuration:\n${error.problems.map((p) => `  ${p.variable}: ${p.reason}`).join("\n")}\n`)
    } else if (error instanceof CliFailure) {
      process.stderr.write(`${NAME}: ${error.message}\n`)
    }
    // CliError (bad arguments) has already been printed with the help text by Command.run
  })

const exitCode = (exit: Exit.Exit<unknown, unknown>): number => {
  if (Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause)) return 0
  const failure = Cause.findErrorOption(exit.cause)
  if (failure._tag === "Some" && failure.value instanceof InvalidConfig) return 2
  // --help (and a bare command) is a ShowHelp with no errors; bad arguments carry their errors
  if (failure._tag === "Some" && CliError.isCliError(failure.value) && failure.value._tag === "ShowHelp") {
    return failure.value.errors.length === 0 ? 0 : 1
  }
  return 1
}

const program = Command.run(root, { version: "0.1.0" }).pipe(
  Effect.tapCause(report),
  Effect.provide(NodeServices.layer)
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => onExit(exitCode(exit))
})
