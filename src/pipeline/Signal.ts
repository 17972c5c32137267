/**
 * A wake-up signal between fibers. A waiter reads `version()` when it checks its condition and then
 * waits with `waitSince(version)`, which returns at once if a `notify` happened in between: no
 * wake-up is lost even if the fiber yields between the check and the wait.
 */
import * as Effect from "effect/Effect"

export interface Signal {
  /** Wakes every current waiter (synchronous, safe to call from anywhere). */
  readonly notify: () => void
  /** Increases on every notify. */
  readonly version: () => number
  /** Suspends until the version differs from `version`. */
  readonly waitSince: (version: number) => Effect.Effect<void>
}

export const make = (): Signal => {
  let version = 0
  let waiters = new Set<(effect: Effect.Effect<void>) => void>()
  return {
    notify: () => {
      version++
      if (waiters.size === 0) return
      const woken = waiters
      waiters = new Set()
      for (const resume of woken) resume(Effect.void)
    },
    version: () => version,
    waitSince: (seen) =>
      Effect.callback<void>((resume) => {
        if (version !== seen) {
          resume(Effect.void)
          return
        }
        const set = waiters
        set.add(resume)
        return Effect.sync(() => {
          set.delete(resume)
        })
      })
  }
}
