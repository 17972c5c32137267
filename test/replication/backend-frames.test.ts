/**
 * The frame reader of the replication connection: the property the replication reader relies on to
 * hand out XLogData payloads as views, not copies (bytes handed out are never written over, whatever
 * arrives later; only a message split across reads is copied), and the dropping of changes over the
 * limit as they arrive, split anywhere.
 */
import { describe, expect, it } from "@effect/vitest"
import * as fc from "fast-check"
import * as BackendFrames from "../../src/replication/BackendFrames.ts"

/** A backend message: type, int32 length, body. */
const message = (type: number, body: Uint8Array): Uint8Array => {
  const frame = new Uint8Array(5 + body.length)
  frame[0] = type
  new DataView(frame.buffer).setInt32(1, 4 + body.length)
  frame.set(body, 5)
  return frame
}
const copyData = (payload: Uint8Array): Uint8Array => message(0x64, payload)

/** An XLogData CopyData body: 'w', WAL start = `lsn`, WAL end, send time, then `data`. */
const xlogData = (lsn: number, data: Uint8Array): Uint8Array => {
  const payload = new Uint8Array(25 + data.length)
  const view = new DataView(payload.buffer)
  payload[0] = 0x77
  view.setBigUint64(1, BigInt(lsn))
  view.setBigUint64(9, BigInt(lsn + 1))
  payload.set(data, 25)
  return payload
}

const payloadOf = (n: number, size: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (n * 31 + i) & 0xff)

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

type Seen =
  | { readonly kind: "message"; readonly type: number; readonly body: Uint8Array }
  | { readonly kind: "oversized"; readonly head: Uint8Array; readonly bytes: number }

/** Pushes `stream` in chunks of the given sizes (cycled), each a fresh buffer, as a socket's reads are. */
const run = (
  reader: BackendFrames.FrameReader,
  stream: Uint8Array,
  sizes: ReadonlyArray<number>,
  /** Every read pushed, in order. */
  chunks: Array<Uint8Array> = []
): Array<Seen> => {
  const seen: Array<Seen> = []
  const sink: BackendFrames.FrameSink = {
    onMessage: (type, bytes, start, end) => {
      // the header is in front of the body
      expect(bytes[start - 5]).toBe(type)
      expect(new DataView(bytes.buffer, bytes.byteOffset).getInt32(start - 4)).toBe(4 + end - start)
      seen.push({ kind: "message", type, body: bytes.subarray(start, end) })
    },
    onOversized: (head, bytes) => seen.push({ kind: "oversized", head, bytes })
  }
  let position = 0
  let index = 0
  while (position < stream.length) {
    const chunk = stream.slice(position, position + sizes[index++ % sizes.length]!)
    position += chunk.length
    chunks.push(chunk)
    reader.push(chunk, sink)
  }
  return seen
}

describe("BackendFrames", () => {
  it("hands out bodies that stay intact while later chunks arrive, split anywhere and across buffer refills", () => {
    // 3,000 frames of 1–900 bytes (several MiB, many refills of the 64 KiB buffers)
    const bodies = Array.from({ length: 3_000 }, (_, n) => payloadOf(n, 1 + ((n * 7919) % 900)))
    const seen = run(BackendFrames.make(), concat(bodies.map(copyData)), [1, 7, 300, 4096, 65536, 100_000])
    expect(seen).toHaveLength(bodies.length)
    seen.forEach((s, n) => expect(s).toEqual({ kind: "message", type: 0x64, body: bodies[n] }))
  })

  it("copies only the messages split across reads: the others are views of the read they came in", () => {
    const bodies = Array.from({ length: 2_000 }, (_, n) => payloadOf(n, 1 + ((n * 7919) % 900)))
    const frames = bodies.map(copyData)
    const chunks: Array<Uint8Array> = []
    const seen = run(BackendFrames.make(), concat(frames), [65536, 3000, 100_000, 9], chunks)
    expect(seen).toHaveLength(bodies.length)
    // where each frame starts and ends in the stream, and which read holds it whole, if one does
    const reads = new Set(chunks.map((c) => c.buffer))
    let frameStart = 0
    let split = 0
    const readStarts: Array<number> = []
    chunks.reduce((at, c) => (readStarts.push(at), at + c.length), 0)
    seen.forEach((s, n) => {
      const frameEnd = frameStart + frames[n]!.length
      let read = readStarts.length - 1
      while (readStarts[read]! > frameStart) read--
      const whole = frameEnd <= readStarts[read]! + chunks[read]!.length
      if (s.kind !== "message") throw new Error("no message dropped here")
      expect(s.body).toEqual(bodies[n])
      if (whole) expect(s.body.buffer).toBe(chunks[read]!.buffer)
      else {
        split++
        expect(reads.has(s.body.buffer)).toBe(false)
      }
      frameStart = frameEnd
    })
    expect(split).toBeGreaterThan(10)
  })

  it("drops changes over the limit as they arrive and reports their head and size; keeps the rest", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ size: fc.integer({ min: 0, max: 9_000 }), first: fc.constantFrom(0x7b, 0x49, 0x55, 0x44, 0x4d, 0x42, 0x52) }), {
          minLength: 1,
          maxLength: 40
        }),
        fc.array(fc.integer({ min: 1, max: 20_000 }), { minLength: 1, maxLength: 5 }),
        (messages, sizes) => {
          const limit = 4_000
          const datas = messages.map(({ first, size }, n) => {
            const data = payloadOf(n, size + 1)
            data[0] = first
            return data
          })
          // a non-CopyData message between the others is never dropped
          const stream = concat(datas.flatMap((data, n) => [copyData(xlogData(n, data)), message(0x4e, payloadOf(n, 3))]))
          const reader = BackendFrames.make()
          reader.discardAbove = limit
          const seen = run(reader, stream, sizes)
          expect(seen).toHaveLength(2 * datas.length)
          datas.forEach((data, n) => {
            const s = seen[2 * n]!
            if (data.length > limit && BackendFrames.isDiscardable(data[0])) {
              expect(s.kind).toBe("oversized")
              if (s.kind !== "oversized") return
              expect(s.bytes).toBe(data.length)
              expect(s.head).toEqual(xlogData(n, data).subarray(0, BackendFrames.HEAD_BYTES))
            } else {
              expect(s).toEqual({ kind: "message", type: 0x64, body: xlogData(n, data) })
            }
            expect(seen[2 * n + 1]).toEqual({ kind: "message", type: 0x4e, body: payloadOf(n, 3) })
          })
        }
      ),
      { numRuns: 200 }
    )
  })

  it("never allocates for a dropped message: 64 MiB pass in 64 KiB reads with a 1 MiB limit", () => {
    const reader = BackendFrames.make()
    reader.discardAbove = 1024 * 1024
    const size = 64 * 1024 * 1024
    const head = copyData(xlogData(7, Uint8Array.from(Buffer.from(`{"action":"I","xid":1,"schema":"s","table":"t"`))))
    // the CopyData header announces the whole size; the bytes follow in reads
    new DataView(head.buffer).setInt32(1, 4 + 25 + size)
    const seen: Array<Seen> = []
    const buffers = new Set<ArrayBufferLike>()
    const sink: BackendFrames.FrameSink = {
      onMessage: (type, bytes, start, end) => {
        buffers.add(bytes.buffer)
        seen.push({ kind: "message", type, body: bytes.subarray(start, end) })
      },
      onOversized: (h, bytes) => seen.push({ kind: "oversized", head: h, bytes })
    }
    reader.push(head, sink)
    const read = new Uint8Array(64 * 1024).fill(0x41)
    let remaining = size - (head.length - 5 - 25)
    while (remaining > 0) {
      const chunk = remaining >= read.length ? read : read.subarray(0, remaining)
      remaining -= chunk.length
      reader.push(chunk, sink)
    }
    reader.push(copyData(xlogData(8, Uint8Array.of(0x7b, 0x7d))), sink)
    expect(seen.map((s) => s.kind)).toEqual(["oversized", "message"])
    expect(seen[0]).toMatchObject({ bytes: size })
    // the message after it sits in a small buffer (a read or two): nothing grew towards the dropped message's size
    for (const buffer of buffers) expect(buffer.byteLength).toBeLessThanOrEqual(2 * 64 * 1024)
  })
})
