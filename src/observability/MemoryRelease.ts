/**
 * Gives memory back once the service turns idle after heavy work. An idle process allocates almost
 * nothing, so V8 starts no collection and what a burst (a backlog, a key stuck for minutes) left
 * behind stays resident while it idles. Every few seconds the step {@link make} builds reads the
 * resident set and whether anything is happening (changes published since the last reading, changes
 * queued or tracked by the frontier); when nothing has happened for {@link Settings.idleMs} and the
 * resident set is at least {@link Settings.growthBytes} above its baseline (the lowest reading, reset
 * by each release to where it left RSS), it asks V8 for one full, memory-reducing collection, run
 * asynchronously, then has the C allocator give its free pages back (HeapTrim.ts: glibc's
 * `malloc_trim`): once per busy → idle transition, never again while idle, nothing on the hot path.
 * The collection returns V8's pages and the buffers the garbage held; the trim, the free heap glibc
 * keeps below blocks still in use (README, Performance). It needs `--expose-gc` (src/NodeFlags.ts);
 * without it the step does nothing.
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as Ref from "effect/Ref"
import * as HeapTrim from "./HeapTrim.ts"
import * as Metrics from "./Metrics.ts"

export interface Settings {
  /** How long nothing must happen before a release. */
  readonly idleMs: number
  /** How far the resident set must have grown since the last release (or start) to release. */
  readonly growthBytes: number
}

const MiB = 1024 * 1024

/**
 * 30 s without a published change or a held one; 16 MiB of growth (a burst that grew less leaves
 * nothing worth a full collection).
 */
export const defaultSettings: Settings = { idleMs: 30_000, growthBytes: 16 * MiB }

/** What one look at the process says. */
export interface Reading {
  readonly rssBytes: number
  /** cdc_changes_published_total: a change since the last reading means busy. */
  readonly published: number
  /** Changes queued or tracked by the frontier (cdc_queue_depth + cdc_frontier_pending): above 0 means busy. */
  readonly held: number
}

export interface State {
  /** The lowest RSS read, reset by each release to where it left RSS. */
  readonly baselineRssBytes: number | undefined
  readonly lastPublished: number | undefined
  /** When the current idle period began; undefined while busy. */
  readonly idleSinceMs: number | undefined
  /** Whether this idle period has had its release. */
  readonly released: boolean
}

export const initialState: State = { baselineRssBytes: undefined, lastPublished: undefined, idleSinceMs: undefined, released: false }

/** The next state, and whether to release now (the caller sets the baseline after the release: {@link afterRelease}). */
export const decide = (settings: Settings, state: State, reading: Reading, nowMs: number): { readonly state: State; readonly release: boolean } => {
  const busy = reading.held > 0 || (state.lastPublished !== undefined && reading.published !== state.lastPublished)
  const baselineRssBytes = state.baselineRssBytes === undefined ? reading.rssBytes : Math.min(state.baselineRssBytes, reading.rssBytes)
  if (busy) {
    return { state: { baselineRssBytes, lastPublished: reading.published, idleSinceMs: undefined, released: false }, release: false }
  }
  const idleSinceMs = state.idleSinceMs ?? nowMs
  const release = !state.released && nowMs - idleSinceMs >= settings.idleMs &&
    state.baselineRssBytes !== undefined && reading.rssBytes - state.baselineRssBytes >= settings.growthBytes
  return {
    state: { baselineRssBytes, lastPublished: reading.published, idleSinceMs, released: state.released || release },
    release
  }
}

/** The state once a release has left the resident set at `rssBytes`. */
export const afterRelease = (state: State, rssBytes: number): State => ({ ...state, baselineRssBytes: rssBytes })

/**
 * Changes published, summed over every stream's series (the counter is labelled by `stream` when
 * there are several).
 */
const publishedTotal: Effect.Effect<number> = Effect.map(Metric.snapshot, (snapshots) => {
  let total = 0
  for (const snapshot of snapshots) {
    if (snapshot.type === "Counter" && snapshot.id === Metrics.changesPublished.id) total += Number(snapshot.state.count)
  }
  return total
})

/** The process's reading: its RSS and the pipeline's gauges and published counter. */
export const readProcess: Effect.Effect<Reading> = Effect.gen(function*() {
  const published = yield* publishedTotal
  const depth = yield* Metric.value(Metrics.queueDepth)
  const pending = yield* Metric.value(Metrics.frontierPending)
  return { rssBytes: process.memoryUsage.rss(), published, held: depth.value + pending.value }
})

/**
 * One full, memory-reducing collection (V8's `last-resort` flavour: it also returns the pages V8
 * keeps pooled), run by V8 as a task rather than inside this call, then `trim` (the C heap's free
 * pages, HeapTrim.ts); the RSS afterwards. Undefined when the process was started without
 * `--expose-gc`.
 */
export const collectProcess = (trim: Effect.Effect<void>): Effect.Effect<number> | undefined =>
  globalThis.gc === undefined ? undefined : Effect.promise(() => globalThis.gc!({ type: "major", execution: "async", flavor: "last-resort" })).pipe(
    Effect.andThen(trim),
    Effect.andThen(Effect.sync(() => process.memoryUsage.rss()))
  )

/**
 * The step to run every few seconds: reads, decides, and releases when due, logging it at debug
 * (RSS before and after). Nothing at all without a collector (`collect` undefined).
 */
export const makeWith = (
  settings: Settings,
  read: Effect.Effect<Reading>,
  collect: Effect.Effect<number> | undefined
): Effect.Effect<Effect.Effect<void>> =>
  Effect.map(Ref.make(initialState), (ref) =>
    collect === undefined ? Effect.void : Effect.gen(function*() {
      const reading = yield* read
      const now = yield* Clock.currentTimeMillis
      const { release, state } = decide(settings, yield* Ref.get(ref), reading, now)
      yield* Ref.set(ref, state)
      if (!release) return
      const rssAfter = yield* collect
      yield* Ref.set(ref, afterRelease(state, rssAfter))
      yield* Effect.logDebug("memory_released").pipe(Effect.annotateLogs({
        rssBeforeBytes: reading.rssBytes,
        rssAfterBytes: rssAfter,
        idleMs: now - (state.idleSinceMs ?? now)
      }))
    }))

/** The step for this process, with the {@link defaultSettings}; koffi is loaded by the first release, not here. */
export const make: Effect.Effect<Effect.Effect<void>> = Effect.flatMap(
  HeapTrim.make,
  (trim) => makeWith(defaultSettings, readProcess, collectProcess(trim))
)
