/** BodyBuffers: buffers given back are taken again when they fit; only so many, only so large. */
import { describe, expect, it } from "@effect/vitest"
import * as BodyBuffers from "../../src/kinesis/BodyBuffers.ts"

describe("BodyBuffers", () => {
  it("gives a buffer of at least the size asked, and a buffer given back to the next body that fits in it", () => {
    const buffers = BodyBuffers.make(2)
    const first = buffers.take(400_000)
    expect(first.length).toBeGreaterThanOrEqual(400_000)
    const second = buffers.take(400_000)
    expect(second).not.toBe(first)
    buffers.give(first)
    expect(buffers.take(first.length + 1)).not.toBe(first)
    expect(buffers.take(first.length)).toBe(first)
    expect(buffers.take(10)).not.toBe(first)
  })

  it("keeps at most `keep` buffers, the larger ones, and none over maxKeptBytes", () => {
    const buffers = BodyBuffers.make(2)
    const [a, b, c] = [buffers.take(100_000), buffers.take(200_000), buffers.take(300_000)]
    const huge = buffers.take(BodyBuffers.maxKeptBytes + 1)
    expect(huge.length).toBe(BodyBuffers.maxKeptBytes + 1)
    for (const buffer of [a, b, c, huge]) buffers.give(buffer)
    const kept = [buffers.take(1), buffers.take(1)]
    expect(new Set(kept)).toEqual(new Set([b, c]))
    const fresh = buffers.take(1)
    expect([a, b, c, huge]).not.toContain(fresh)
  })
})
