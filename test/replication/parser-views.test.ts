/**
 * The property the replication reader relies on to hand out XLogData payloads as views, not copies:
 * @effect/sql-pg's protocol parser never writes over bytes it has handed out, whatever arrives later.
 */
import { PgProtocol } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"

/** A CopyData frame ('d', int32 length, payload). */
const copyData = (payload: Uint8Array): Uint8Array => {
  const frame = new Uint8Array(5 + payload.length)
  frame[0] = 0x64
  new DataView(frame.buffer).setInt32(1, 4 + payload.length)
  frame.set(payload, 5)
  return frame
}

const payloadOf = (n: number, size: number): Uint8Array => Uint8Array.from({ length: size }, (_, i) => (n * 31 + i) & 0xff)

describe("PgProtocol parser", () => {
  it("CopyData payloads stay intact while later chunks arrive, split anywhere and across buffer refills", () => {
    const parser = PgProtocol.makeParser()
    const kept: Array<{ n: number; data: Uint8Array }> = []
    // 3,000 frames of 1–900 bytes (several MiB, many refills of the parser's 64 KiB buffers)
    const frames = Array.from({ length: 3_000 }, (_, n) => copyData(payloadOf(n, 1 + ((n * 7919) % 900))))
    const stream = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0))
    let offset = 0
    for (const frame of frames) {
      stream.set(frame, offset)
      offset += frame.length
    }
    // chunks of varying sizes, each a fresh socket-like buffer that is then scribbled over
    let position = 0
    let chunkIndex = 0
    while (position < stream.length) {
      const size = [1, 7, 300, 4096, 65536, 100_000][chunkIndex++ % 6]!
      const chunk = stream.slice(position, position + size)
      position += chunk.length
      parser.pushEach(chunk, (message) => {
        if (message._tag !== "CopyData") throw new Error(`unexpected ${message._tag}`)
        kept.push({ n: kept.length, data: message.data })
      })
      chunk.fill(0xee)
    }
    expect(kept).toHaveLength(frames.length)
    for (const { n, data } of kept) expect(data).toEqual(payloadOf(n, 1 + ((n * 7919) % 900)))
  })
})
