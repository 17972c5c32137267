import * as fc from "fast-check"
import { describe, expect, it } from "vitest"
import * as Lsn from "../../src/domain/Lsn.ts"
import * as PgWire from "../../src/replication/PgWire.ts"

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex")
const fromHex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text.replace(/\s+/g, ""), "hex"))

describe("PgWire frontend encoders", () => {
  it("encodes a simple Query with its length and trailing NUL", () => {
    // 'Q', int32 length = 4 + "SELECT 1".length + 1 = 13, text, NUL
    expect(hex(PgWire.encodeQuery("SELECT 1"))).toBe("51" + "0000000d" + hex(Buffer.from("SELECT 1")) + "00")
  })

  it("encodes multi-byte UTF-8 text by bytes, not characters", () => {
    const encoded = PgWire.encodeQuery("é")
    expect(hex(encoded)).toBe("51" + "00000007" + "c3a9" + "00")
  })

  it("encodes CopyData and CopyDone", () => {
    expect(hex(PgWire.encodeCopyData(Uint8Array.of(1, 2, 3)))).toBe("64" + "00000007" + "010203")
    expect(hex(PgWire.encodeCopyDone())).toBe("6300000004")
  })
})

describe("PgWire replication frames", () => {
  it("lays out an XLogData header as the reader reads it: WAL start at 1, WAL end at 9, the message after 25 bytes", () => {
    const frame = fromHex(
      "77" + "0000000116b374d8" + "0000000116b37500" + "0002b1e7c5a1b2c3" + hex(Buffer.from("{\"action\":\"B\"}"))
    )
    expect(frame[0]).toBe(PgWire.XLOG_DATA)
    expect(PgWire.readUint64(frame, 1)).toBe(Lsn.parse("1/16B374D8"))
    expect(PgWire.readUint64(frame, 9)).toBe(Lsn.parse("1/16B37500"))
    expect(Buffer.from(frame.subarray(PgWire.XLOG_DATA_HEADER_BYTES)).toString()).toBe("{\"action\":\"B\"}")
  })

  it("lays out a primary keepalive as the reader reads it: WAL end at 1, reply-requested at 17", () => {
    const frame = fromHex("6b" + "ffffffff00000010" + "0000000000000001" + "01")
    expect(frame[0]).toBe(PgWire.PRIMARY_KEEPALIVE)
    expect(frame.length).toBe(PgWire.KEEPALIVE_BYTES)
    expect(PgWire.readUint64(frame, 1)).toBe(0xffffffff00000010n)
    expect(frame[17]).toBe(1)
  })

  it("encodes a standby status update inside CopyData, byte for byte", () => {
    const encoded = PgWire.encodeStatusUpdate({
      write: Lsn.parse("1/2")!,
      flush: Lsn.parse("3/4")!,
      apply: Lsn.parse("A/B")!,
      clock: 0x0102030405060708n,
      replyRequested: true
    })
    expect(hex(encoded)).toBe(
      "64" + "00000026" + "72" +
        "0000000100000002" + "0000000300000004" + "0000000a0000000b" + "0102030405060708" + "01"
    )
    expect(encoded.length).toBe(39)
    expect(PgWire.decodeStatusUpdate(encoded.subarray(5))).toEqual({
      write: 0x100000002n,
      flush: 0x300000004n,
      apply: 0xa0000000bn,
      clock: 0x0102030405060708n,
      replyRequested: true
    })
  })

  it("round-trips 64-bit values at the edges", () => {
    for (const value of [0n, 1n, 0xffffffffn, 0x100000000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 0xffffffffffffffffn]) {
      const encoded = PgWire.encodeStatusUpdate({ write: value, flush: value, apply: value, clock: value, replyRequested: false })
      expect(PgWire.readUint64(encoded, 6)).toBe(value)
      expect(PgWire.readUint64(encoded, 30)).toBe(value)
      expect(encoded[38]).toBe(0)
    }
  })

  it("reads every 64-bit value as written", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (value) => {
        const bytes = new Uint8Array(11)
        new DataView(bytes.buffer).setBigUint64(3, value)
        expect(PgWire.readUint64(bytes, 3)).toBe(value)
        expect(PgWire.uint64Of(PgWire.readUint32(bytes, 3), PgWire.readUint32(bytes, 7))).toBe(value)
      }),
      { numRuns: 2000 }
    )
  })

  it("converts between Unix milliseconds and PostgreSQL-epoch microseconds", () => {
    expect(PgWire.postgresMicros(Date.UTC(2000, 0, 1))).toBe(0n)
    expect(PgWire.postgresMicros(Date.UTC(2000, 0, 1, 0, 0, 1))).toBe(1_000_000n)
    const now = Date.UTC(2026, 4, 17, 12, 30, 45, 123)
    expect(PgWire.unixMillis(PgWire.postgresMicros(now))).toBe(now)
  })
})

describe("LSN text", () => {
  it("parses and formats the X/Y form", () => {
    expect(Lsn.parse("16/B374D848")).toBe(0x16b374d848n)
    expect(Lsn.parse("0/0")).toBe(0n)
    expect(Lsn.parse("FFFFFFFF/FFFFFFFF")).toBe(0xffffffffffffffffn)
    expect(Lsn.format(0x16b374d848n)).toBe("16/B374D848")
    expect(Lsn.format(0n)).toBe("0/0")
    expect(Lsn.parse("16-B3")).toBeUndefined()
    expect(Lsn.parse("123456789/0")).toBeUndefined()
  })
})
