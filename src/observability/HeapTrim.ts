/**
 * Gives the C heap's free pages back to the system: glibc's `malloc_trim(0)`, which Node.js offers
 * no way to call, called through koffi (an FFI library shipping prebuilt binaries; an optional
 * dependency). glibc's `free` returns only the top of its heap, so free memory below blocks still in
 * use (after a key stuck for minutes: ~30 MiB under ~1,100 small live blocks) stays resident until
 * `malloc_trim` releases the free pages of every arena. src/observability/MemoryRelease.ts calls
 * {@link make}'s step after its idle collection; koffi is loaded at the first call, never at start
 * nor on the hot path. Where it cannot be had (koffi missing or not loadable, a C library without
 * `malloc_trim` such as musl), the first call logs why at info and every call does nothing.
 */
import * as Effect from "effect/Effect"

/** Calls the allocator's trim once; true when it returned memory to the system. */
export type Trim = () => boolean

/** glibc's `malloc_trim(0)` from the process's own symbols, through koffi; rejects where either is missing. */
export const loadGlibc = async (): Promise<Trim> => {
  const koffi = await import("koffi")
  const mallocTrim = koffi.load(null).func("int malloc_trim(size_t pad)")
  return () => {
    const released: unknown = mallocTrim(0)
    return released === 1
  }
}

const reason = (error: unknown): string => error instanceof Error ? error.message : String(error)

/**
 * The step: the trim loaded by `load` at the first run (once, whatever the outcome), then called.
 * Never fails: a trim that cannot be loaded is logged once at info (`heap_trim_unavailable`) and
 * skipped from then on; a call that throws is logged at info and skipped. Logs each trim at debug.
 */
export const makeWith = (load: () => Promise<Trim>): Effect.Effect<Effect.Effect<void>> =>
  Effect.map(
    Effect.cached(
      Effect.tryPromise({ try: load, catch: reason }).pipe(
        Effect.catch((why) =>
          Effect.as(Effect.logInfo("heap_trim_unavailable").pipe(Effect.annotateLogs({ reason: why })), undefined)
        )
      )
    ),
    (loaded) =>
      Effect.gen(function*() {
        const trim = yield* loaded
        if (trim === undefined) return
        const rssBeforeBytes = process.memoryUsage.rss()
        const started = performance.now()
        const result = yield* Effect.try({ try: trim, catch: reason }).pipe(
          Effect.catch((why) => Effect.as(Effect.logInfo("heap_trim_failed").pipe(Effect.annotateLogs({ reason: why })), undefined))
        )
        if (result === undefined) return
        yield* Effect.logDebug("heap_trimmed").pipe(Effect.annotateLogs({
          released: result,
          rssBeforeBytes,
          rssAfterBytes: process.memoryUsage.rss(),
          durationMs: Math.round((performance.now() - started) * 10) / 10
        }))
      })
  )

/** The step for this process: glibc's `malloc_trim` through koffi. */
export const make: Effect.Effect<Effect.Effect<void>> = makeWith(loadGlibc)
