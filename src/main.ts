/**
 * The service's entry point: reads the configuration and runs the service until a signal or a
 * fatal error. The first SIGTERM/SIGINT shuts down gracefully (exit 0); a second exits at once.
 * Exit codes: 0 after a graceful stop, 2 for an unusable configuration, 1 for any other fatal error.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as ServiceConfig from "./config/ServiceConfig.ts"
import { exitCodeFor, reportConfigError } from "./FatalReport.ts"
import * as Service from "./Service.ts"

const shutdown = Deferred.makeUnsafe<void>()
let signals = 0
const onSignal = (): void => {
  signals += 1
  if (signals > 1) process.exit(130)
  Deferred.doneUnsafe(shutdown, Effect.void)
}
process.on("SIGTERM", onSignal)
process.on("SIGINT", onSignal)

const main = ServiceConfig.load.pipe(
  Effect.tapError(reportConfigError),
  Effect.flatMap((config) => Service.run(config, shutdown))
)

Effect.runFork(main).addObserver((exit) => {
  process.exit(Exit.isSuccess(exit) ? 0 : exitCodeFor(exit.cause))
})
