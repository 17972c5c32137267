/**
 * How the process ends: one clear line that names the cause and what to do, never a stack trace for
 * an expected (typed) error, and an exit code that tells them apart (0 after a graceful stop, 2 for
 * an unusable configuration, 1 for any other fatal error).
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Runtime from "effect/Runtime"
import { InvalidConfig } from "./config/EnvVar.ts"

/** Exit code 2: the configuration is unusable; 1: any other fatal error. */
export const exitCodeFor = (cause: Cause.Cause<unknown>): number => {
  const failure = Cause.findErrorOption(cause)
  return failure._tag === "Some" && failure.value instanceof InvalidConfig ? 2 : 1
}

/** Configuration errors go to stderr as plain text: logging is not set up yet. */
export const reportConfigError = (error: InvalidConfig): Effect.Effect<void> =>
  Effect.sync(() => {
    const lines = error.problems.map((p) => `  ${p.variable}: ${p.reason}`)
    process.stderr.write(`cdc-logical-replication: invalid configuration, the service cannot start:\n${lines.join("\n")}\n`)
  })

/** The error's group (`_tag`), its reason within the group, and its message. */
const describe = (error: unknown): { readonly tag: string; readonly kind: string | undefined; readonly message: string } => {
  if (typeof error === "object" && error !== null && "_tag" in error) {
    const tag = String((error as { readonly _tag: unknown })._tag)
    const own = error instanceof Error ? error.message : ""
    // some errors (the HTTP server's ServeError) carry their reason only in their cause
    const cause = "cause" in error && error.cause instanceof Error ? error.cause.message : ""
    const reason = (error as { readonly reason?: unknown }).reason
    return { tag, kind: typeof reason === "string" ? reason : undefined, message: own !== "" ? own : cause !== "" ? cause : tag }
  }
  return { tag: "Unknown", kind: undefined, message: String(error) }
}

/**
 * Logs a fatal failure as one `fatal_error` line: `error` the group (PgError, SlotError, …), `kind`
 * its reason (Authentication, Missing, …), `reason` the message that says what to do.
 */
export const reportFatal = (cause: Cause.Cause<unknown>): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (Cause.hasInterruptsOnly(cause)) return Effect.void
    const failure = Cause.findErrorOption(cause)
    if (failure._tag === "Some") {
      const { tag, kind, message } = describe(failure.value)
      return Effect.logFatal("fatal_error").pipe(
        Effect.annotateLogs({ error: tag, ...(kind === undefined ? {} : { kind }), reason: message })
      )
    }
    return Effect.logFatal("fatal_defect").pipe(Effect.annotateLogs({ reason: Cause.pretty(cause) }))
  })

/**
 * The runtime's teardown: the main fiber only ends by a signal (interrupted, after the graceful
 * stop: 0) or by a failure (already reported: 2 or 1).
 */
export const teardown: Runtime.Teardown = (exit, onExit) =>
  onExit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : exitCodeFor(exit.cause))
