/**
 * The first SIGTERM/SIGINT reaches the service through the runtime (`NodeRuntime.runMain`
 * interrupts the main fiber, and the service stops gracefully); the runtime ignores any further
 * signal. This layer makes a second signal end the process at once with exit code 130, for an
 * operator who does not want to wait for the drain. The listeners live as long as the layer.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

/** Where signals come from and how the process ends: `process` in production, fakes in tests. */
export interface SignalHost {
  readonly on: (signal: "SIGTERM" | "SIGINT", listener: () => void) => unknown
  readonly off: (signal: "SIGTERM" | "SIGINT", listener: () => void) => unknown
  readonly exit: (code: number) => void
}

/** Exit code for a stop forced by a second signal (128 + SIGINT, as shells report an interrupted job). */
export const FORCED_EXIT_CODE = 130

/** Counts SIGTERM and SIGINT together; the second one exits with {@link FORCED_EXIT_CODE}. */
export const make = (host: SignalHost): Effect.Effect<void, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.sync(() => {
      let received = 0
      const listener = () => {
        received += 1
        if (received > 1) host.exit(FORCED_EXIT_CODE)
      }
      host.on("SIGTERM", listener)
      host.on("SIGINT", listener)
      return listener
    }),
    (listener) =>
      Effect.sync(() => {
        host.off("SIGTERM", listener)
        host.off("SIGINT", listener)
      })
  ).pipe(Effect.asVoid)

/** The listeners on this process. */
export const layer: Layer.Layer<never> = Layer.effectDiscard(make({
  on: (signal, listener) => process.on(signal, listener),
  off: (signal, listener) => process.off(signal, listener),
  exit: (code) => process.exit(code)
}))
