/**
 * The service's health as the probes see it: a lifecycle state that the pipeline and the leader
 * election set, the last error, and heartbeats that long-running loops tick so that a wedged fiber
 * shows up on /healthz.
 *
 * Readiness: ready while streaming (leader) or standing by (a healthy standby); not ready while
 * starting, connecting, or after a fatal error. Liveness: alive unless a heartbeat is older than
 * `staleAfter` × its interval, or the service hit a fatal error.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import type * as Scope from "effect/Scope"

export type HealthState = "starting" | "standby" | "connecting" | "streaming" | "fatal"

/** The last error seen by any part of the service. */
export interface HealthError {
  readonly tag: string
  readonly message: string
  readonly atMs: number
}

export interface HeartbeatStatus {
  readonly name: string
  readonly intervalMs: number
  readonly lastTickMs: number
  readonly ageMs: number
  readonly stale: boolean
}

export interface HealthSnapshot {
  readonly state: HealthState
  readonly sinceMs: number
  readonly lastError: HealthError | undefined
  readonly heartbeats: ReadonlyArray<HeartbeatStatus>
  /** /readyz: streaming, or a healthy standby. */
  readonly ready: boolean
  /** /healthz: no stale heartbeat and no fatal error. */
  readonly live: boolean
}

/** A registered loop's heartbeat; tick once per iteration (cheap: one clock read, one store). */
export interface Heartbeat {
  readonly tick: Effect.Effect<void>
}

/** How many intervals a heartbeat may miss before the process counts as wedged. */
export const DEFAULT_STALE_AFTER = 3

export class Health extends Context.Service<Health, {
  readonly setState: (state: HealthState) => Effect.Effect<void>
  /** Records an error; `fatal` also moves the state to "fatal" for good. */
  readonly recordError: (error: { readonly tag: string; readonly message: string }, options?: { readonly fatal?: boolean }) => Effect.Effect<void>
  /** Registers a heartbeat for a loop that runs every `intervalMs`; unregistered when the scope closes. */
  readonly heartbeat: (name: string, intervalMs: number) => Effect.Effect<Heartbeat, never, Scope.Scope>
  readonly snapshot: Effect.Effect<HealthSnapshot>
}>()("cdc-logical-replication/Health") {}

interface HeartbeatEntry {
  readonly name: string
  readonly intervalMs: number
  lastTickMs: number
}

export interface HealthOptions {
  /** How many intervals a heartbeat may miss (default {@link DEFAULT_STALE_AFTER}). */
  readonly staleAfter?: number
}

export const make = (options: HealthOptions = {}): Effect.Effect<Health["Service"]> =>
  Effect.gen(function*() {
    const staleAfter = options.staleAfter ?? DEFAULT_STALE_AFTER
    const startedMs = yield* Clock.currentTimeMillis
    let state: HealthState = "starting"
    let sinceMs = startedMs
    let lastError: HealthError | undefined
    const heartbeats = new Set<HeartbeatEntry>()

    const setState = Effect.fn("Health.setState")(function*(next: HealthState) {
      const now = yield* Clock.currentTimeMillis
      // fatal is terminal: a late "standby" from a finalizer must not make the probes green again
      if (state === "fatal" || state === next) return
      state = next
      sinceMs = now
    })

    const recordError = Effect.fn("Health.recordError")(function*(
      error: { readonly tag: string; readonly message: string },
      errorOptions: { readonly fatal?: boolean } = {}
    ) {
      const now = yield* Clock.currentTimeMillis
      lastError = { tag: error.tag, message: error.message, atMs: now }
      if (errorOptions.fatal === true && state !== "fatal") {
        state = "fatal"
        sinceMs = now
      }
    })

    const heartbeat = Effect.fn("Health.heartbeat")(function*(name: string, intervalMs: number) {
      const entry = yield* Effect.acquireRelease(
        Effect.map(Clock.currentTimeMillis, (now): HeartbeatEntry => {
          const created: HeartbeatEntry = { name, intervalMs, lastTickMs: now }
          heartbeats.add(created)
          return created
        }),
        (created) => Effect.sync(() => heartbeats.delete(created))
      )
      return {
        tick: Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Effect.sync(() => {
            entry.lastTickMs = now
          }))
      } satisfies Heartbeat
    })

    const snapshot: Effect.Effect<HealthSnapshot> = Effect.map(Clock.currentTimeMillis, (now) => {
      const beats = Array.from(heartbeats, (h): HeartbeatStatus => {
        const ageMs = Math.max(0, now - h.lastTickMs)
        return { name: h.name, intervalMs: h.intervalMs, lastTickMs: h.lastTickMs, ageMs, stale: ageMs > staleAfter * h.intervalMs }
      })
      const live = state !== "fatal" && beats.every((b) => !b.stale)
      return {
        state,
        sinceMs,
        lastError,
        heartbeats: beats,
        ready: live && (state === "streaming" || state === "standby"),
        live
      }
    })

    return Health.of({ setState, recordError, heartbeat, snapshot })
  })

/** The service's health, fresh for each build of the layer. */
export const layer = (options: HealthOptions = {}): Layer.Layer<Health> => Layer.effect(Health, make(options))
