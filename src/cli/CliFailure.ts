/**
 * An operator command that cannot do what was asked (no such slot, database unreachable): one
 * clear line for the operator, exit code 1, no stack trace.
 */
import * as Data from "effect/Data"

export class CliFailure extends Data.TaggedError("CliFailure")<{ readonly message: string }> {}
