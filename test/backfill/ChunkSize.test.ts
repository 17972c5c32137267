/**
 * The backfill's chunk sizes: small while live changes stream (BACKFILL_CHUNK_ROWS), larger when the
 * stream is idle, about the byte budget for wide rows, never zero; fast-check over any inputs.
 */
import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as ChunkSize from "../../src/backfill/ChunkSize.ts"

const limits: ChunkSize.Limits = { maxRows: 1_000, maxBytes: 8 * 1024 * 1024 }

describe("ChunkSize", () => {
  it("reads BACKFILL_CHUNK_ROWS rows while live changes stream, up to IDLE_ROWS when idle", () => {
    expect(ChunkSize.next(limits, true, 1_000, 300_000)).toBe(1_000)
    expect(ChunkSize.next(limits, false, 1_000, 300_000)).toBe(ChunkSize.IDLE_ROWS)
    // a setting above IDLE_ROWS holds when idle too
    expect(ChunkSize.next({ ...limits, maxRows: 20_000 }, false, 1_000, 300_000)).toBe(20_000)
    expect(ChunkSize.next({ ...limits, maxRows: 20_000 }, true, 1_000, 300_000)).toBe(20_000)
  })

  it("fits wide rows to the byte budget", () => {
    // 100 KB rows: 83 of them fit 8 MiB
    expect(ChunkSize.next(limits, false, 10, 1_000_000)).toBe(83)
    expect(ChunkSize.next(limits, true, 10, 1_000_000)).toBe(83)
    // one row over the budget is still read, alone
    expect(ChunkSize.next(limits, true, 1, 100 * 1024 * 1024)).toBe(1)
    expect(ChunkSize.first(limits, 100 * 1024 * 1024)).toBe(1)
  })

  it("starts small and after an empty chunk starts again", () => {
    expect(ChunkSize.first(limits, 300)).toBe(ChunkSize.FIRST_ROWS)
    expect(ChunkSize.first({ ...limits, maxRows: 100 }, 300)).toBe(100)
    expect(ChunkSize.next(limits, false, 0, 0)).toBe(ChunkSize.FIRST_ROWS)
    expect(ChunkSize.next({ ...limits, maxRows: 10 }, true, 0, 0)).toBe(10)
  })

  it("takes a quarter of the queue's bytes at most, and 8 MiB", () => {
    expect(ChunkSize.maxBytesFor(64 * 1024 * 1024)).toBe(ChunkSize.MAX_BYTES)
    expect(ChunkSize.maxBytesFor(16 * 1024 * 1024)).toBe(4 * 1024 * 1024)
  })

  it("calls the stream idle once no live change came for IDLE_MS", () => {
    expect(ChunkSize.liveRecently(undefined, 10_000)).toBe(false)
    expect(ChunkSize.liveRecently(10_000, 10_000 + ChunkSize.IDLE_MS - 1)).toBe(true)
    expect(ChunkSize.liveRecently(10_000, 10_000 + ChunkSize.IDLE_MS)).toBe(false)
  })

  it("always reads at least one row, never more than the cap nor (past one row) the byte budget", () => {
    fc.assert(fc.property(
      fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 64 * 1024 * 1024 }), fc.boolean(),
      fc.integer({ min: 0, max: 100_000 }), fc.integer({ min: 0, max: 2 ** 40 }),
      (maxRows, maxBytes, live, rows, bytes) => {
        const l = { maxRows, maxBytes }
        const n = ChunkSize.next(l, live, rows, bytes)
        expect(Number.isInteger(n)).toBe(true)
        expect(n).toBeGreaterThanOrEqual(1)
        expect(n).toBeLessThanOrEqual(ChunkSize.rowCap(l, live))
        if (live) expect(n).toBeLessThanOrEqual(maxRows)
        if (rows > 0 && n > 1) expect(n * Math.max(1, bytes / rows)).toBeLessThanOrEqual(maxBytes)
      }
    ))
  })
})
