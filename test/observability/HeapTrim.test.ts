/**
 * The C heap trim: on this machine's glibc it returns free heap below live blocks to the system
 * (native blocks allocated and freed through koffi, every sixteenth kept, as a stuck key leaves the
 * heap); where it cannot be loaded (a missing symbol, as on musl, or no koffi) it logs once at info
 * and the step does nothing, never failing.
 */
import { Effect } from "effect"
import * as Fs from "node:fs"
import { describe, expect, it } from "vitest"
import * as HeapTrim from "../../src/observability/HeapTrim.ts"
import * as Logging from "../../src/observability/Logging.ts"

const KiB = 1024
const MiB = 1024 * KiB

/** Makes the step, runs `beforeFirst`, then the step `times` times; every log line (debug and up) as parsed JSON. */
const runSteps = async (load: () => Promise<HeapTrim.Trim>, times: number, beforeFirst: () => void = () => {}) => {
  const lines: Array<Record<string, unknown>> = []
  const layer = Logging.layer({ format: "json", level: "Debug", secrets: [], write: (line) => lines.push(JSON.parse(line)) })
  await Effect.runPromise(Effect.gen(function*() {
    const step = yield* HeapTrim.makeWith(load)
    beforeFirst()
    for (let i = 0; i < times; i++) yield* step
  }).pipe(Effect.provide(layer)))
  return lines
}

/** VmRSS of this process, from the kernel. */
const rss = (): number => Number(/^VmRSS:\s+(\d+) kB$/m.exec(Fs.readFileSync("/proc/self/status", "utf8"))![1]) * KiB

describe("HeapTrim", () => {
  it("a trim that cannot be loaded: loaded at the first step, once, one info line naming why, every step succeeds doing nothing", async () => {
    let loads = 0
    let loadsBeforeFirstStep: number | undefined
    const lines = await runSteps(() => {
      loads++
      return Promise.reject(new Error("Cannot find function 'malloc_trim' in shared library"))
    }, 3, () => (loadsBeforeFirstStep = loads))
    expect(loadsBeforeFirstStep).toBe(0)
    expect(loads).toBe(1)
    expect(lines).toEqual([expect.objectContaining({
      level: "INFO",
      message: "heap_trim_unavailable",
      reason: "Cannot find function 'malloc_trim' in shared library"
    })])
  })

  it("a C library without the symbol (musl has no malloc_trim): koffi's own error, logged once", async () => {
    const lines = await runSteps(async () => {
      const koffi = await import("koffi")
      const missing = koffi.load(null).func("int no_such_malloc_trim(size_t pad)")
      return () => missing(0) === 1
    }, 2)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatchObject({ level: "INFO", message: "heap_trim_unavailable" })
    expect(String(lines[0]!.reason)).toContain("no_such_malloc_trim")
  })

  it("a trim that throws when called: logged at info, the step still succeeds", async () => {
    const lines = await runSteps(() =>
      Promise.resolve(() => {
        throw new Error("boom")
      }), 2)
    expect(lines.map((l) => [l.message, l.reason])).toEqual([["heap_trim_failed", "boom"], ["heap_trim_failed", "boom"]])
  })

  it("glibc: free heap below live blocks stays resident after free, and the step gives it back", async () => {
    const koffi = await import("koffi")
    const libc = koffi.load(null)
    const malloc = libc.func("void *malloc(size_t size)")
    const free = libc.func("void free(void *ptr)")
    const memset = libc.func("void *memset(void *s, int c, size_t n)")
    // 64 MiB of 32 KiB blocks (below glibc's mmap threshold: carved from the heap), written so they
    // are resident; every sixteenth stays allocated, so the freed runs between them are not the heap's top
    const size = 32 * KiB
    const blocks: Array<unknown> = []
    for (let i = 0; i < 2048; i++) {
      const block: unknown = malloc(size)
      memset(block, 1, size)
      blocks.push(block)
    }
    const kept = blocks.filter((_, i) => i % 16 === 15)
    const before = rss()
    blocks.forEach((block, i) => {
      if (i % 16 !== 15) free(block)
    })
    const afterFree = rss()
    const lines = await runSteps(HeapTrim.loadGlibc, 1)
    const afterTrim = rss()
    for (const block of kept) free(block)
    // free kept the 60 MiB resident (glibc returns only the heap's top); the trim returned most of it
    expect(before - afterFree).toBeLessThan(8 * MiB)
    expect(afterFree - afterTrim).toBeGreaterThan(40 * MiB)
    expect(lines).toEqual([expect.objectContaining({ level: "DEBUG", message: "heap_trimmed", released: true })])
  })
})
