/**
 * A wake-up signal between fibers. A waiter reads `version()` when it checks its condition and then
 * waits with `waitSince(version)`, which returns at once if a `notify` happened in between: no
 * wake-up is lost even if the fiber yields between the check and the wait. `waitAny` waits on
 * several signals at once in one suspension (no fiber per signal, nothing to interrupt).
 */
import * as Effect from "effect/Effect"

export interface Signal {
  /** Wakes every current waiter (synchronous, safe to call from anywhere). */
  readonly notify: () => void
  /** Increases on every notify. */
  readonly version: () => number
  /** Suspends until the version differs from `version`. */
  readonly waitSince: (version: number) => Effect.Effect<void>
  /**
   * Calls `wake` once, at the next notify, unless the version already differs from `version` (then
   * returns undefined without calling it). Returns the way to cancel the call.
   */
  readonly onNotify: (version: number, wake: () => void) => (() => void) | undefined
}

export const make = (): Signal => {
  let version = 0
  let waiters = new Set<() => void>()
  const onNotify = (seen: number, wake: () => void): (() => void) | undefined => {
    if (version !== seen) return undefined
    const set = waiters
    set.add(wake)
    return () => {
      set.delete(wake)
    }
  }
  const signal: Signal = {
    notify: () => {
      version++
      if (waiters.size === 0) return
      const woken = waiters
      waiters = new Set()
      for (const wake of woken) wake()
    },
    version: () => version,
    waitSince: (seen) => waitAny([[signal, seen]]),
    onNotify
  }
  return signal
}

/** Suspends until any of the signals moved past the version given with it. */
export const waitAny = (waits: ReadonlyArray<readonly [Signal, number]>): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    const cancels: Array<() => void> = []
    let woken = false
    const wake = () => {
      if (woken) return
      woken = true
      for (const cancel of cancels) cancel()
      resume(Effect.void)
    }
    for (const [signal, seen] of waits) {
      const cancel = signal.onNotify(seen, wake)
      if (cancel === undefined) {
        wake()
        return
      }
      cancels.push(cancel)
    }
    return Effect.sync(() => {
      for (const cancel of cancels) cancel()
    })
  })
