/**
 * A hand-driven {@link Leadership} for tests: it leads at once; `revoke` takes the lead away as a
 * lost lock would (the work is interrupted), and the lead comes back at once or when `grant` is
 * called. It sets the health state and the `cdc_leader` gauge as the live election does.
 */
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import { LeadershipLost } from "../Errors.ts"
import { Health } from "../observability/Health.ts"
import { Leadership, setLeaderGauge } from "./Leadership.ts"

/** The election's controls. */
export class LeadershipMemory extends Context.Service<LeadershipMemory, {
  readonly leadership: Leadership["Service"]
  /**
   * Interrupts the running work (as the watchdog would). The lead comes back at once, or, with
   * `regain: false`, only when `grant` is called (another instance leads meanwhile).
   */
  readonly revoke: (reason: string, options?: { readonly regain?: boolean }) => Effect.Effect<void>
  /** Gives the lead back after a `revoke` with `regain: false`. */
  readonly grant: Effect.Effect<void>
  /** How many times work has been started. */
  readonly rounds: Effect.Effect<number>
}>()("cdc-logical-replication/LeadershipMemory") {}

interface Lost {
  readonly lost: LeadershipLost
  readonly regain: boolean
}

export const make: Effect.Effect<LeadershipMemory["Service"], never, Health> = Effect.gen(function*() {
  const health = yield* Health
  let leading = false
  let rounds = 0
  let current: Deferred.Deferred<Lost> | undefined
  let granted: Deferred.Deferred<void> | undefined
  const runWhileLeader = <A, E, R>(work: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.gen(function*() {
      while (true) {
        const lostSignal = yield* Deferred.make<Lost>()
        current = lostSignal
        leading = true
        rounds += 1
        yield* setLeaderGauge(true)
        yield* health.setState("connecting")
        const outcome = yield* Effect.raceFirst(
          Effect.map(work, (value) => ({ done: true as const, value })),
          Effect.map(Deferred.await(lostSignal), (lost) => ({ done: false as const, ...lost }))
        ).pipe(Effect.ensuring(Effect.suspend(() => {
          leading = false
          return setLeaderGauge(false)
        })))
        if (outcome.done) return outcome.value
        yield* Effect.logWarning("leadership_lost").pipe(Effect.annotateLogs({ reason: outcome.lost.message }))
        yield* health.setState("standby")
        if (!outcome.regain) {
          const gate = yield* Deferred.make<void>()
          granted = gate
          yield* Deferred.await(gate)
        }
      }
    })
  return LeadershipMemory.of({
    leadership: Leadership.of({ isLeader: Effect.sync(() => leading), runWhileLeader }),
    revoke: (reason, options) =>
      Effect.suspend(() =>
        current === undefined
          ? Effect.void
          : Deferred.succeed(current, { lost: new LeadershipLost({ message: reason }), regain: options?.regain ?? true })
      ).pipe(Effect.asVoid),
    grant: Effect.suspend(() => granted === undefined ? Effect.void : Deferred.succeed(granted, undefined)).pipe(Effect.asVoid),
    rounds: Effect.sync(() => rounds)
  })
})

/** Provides the election's controls and the {@link Leadership} it implements. */
export const layer: Layer.Layer<LeadershipMemory | Leadership, never, Health> = Layer.effectContext(
  Effect.map(make, (memory) =>
    Context.make(LeadershipMemory, memory).pipe(Context.add(Leadership, memory.leadership)))
)
