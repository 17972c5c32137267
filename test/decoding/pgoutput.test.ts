import { Result } from "effect"
import { describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import type { DecodeError } from "../../src/Errors.ts"
import type { Decoder, WalMessage } from "../../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"

/** Writes pgoutput protocol-1 messages field by field. */
class Message {
  private readonly parts: Array<Buffer> = []
  constructor(tag: string) {
    this.byte(tag.charCodeAt(0))
  }
  byte(value: number): this {
    this.parts.push(Buffer.from([value]))
    return this
  }
  int16(value: number): this {
    const b = Buffer.alloc(2)
    b.writeInt16BE(value)
    this.parts.push(b)
    return this
  }
  int32(value: number): this {
    const b = Buffer.alloc(4)
    b.writeInt32BE(value)
    this.parts.push(b)
    return this
  }
  int64(value: bigint): this {
    const b = Buffer.alloc(8)
    b.writeBigInt64BE(value)
    this.parts.push(b)
    return this
  }
  string(value: string): this {
    this.parts.push(Buffer.from(value + "\0", "utf8"))
    return this
  }
  text(value: string): this {
    const bytes = Buffer.from(value, "utf8")
    return this.byte(0x74).int32(bytes.length).raw(bytes)
  }
  raw(bytes: Uint8Array): this {
    this.parts.push(Buffer.from(bytes))
    return this
  }
  get bytes(): Uint8Array {
    return new Uint8Array(Buffer.concat(this.parts))
  }
}

const commitMs = Date.UTC(2026, 0, 1, 0, 0, 0, 250)
/** The commit time as pgoutput sends it: microseconds since 2000-01-01 UTC. */
const commitMicros = BigInt(commitMs - Date.UTC(2000, 0, 1)) * 1000n

const begin = (xid: number) => new Message("B").int64(0x200n).int64(commitMicros).int32(xid).bytes
const commit = (endLsn: bigint) => new Message("C").byte(0).int64(0x200n).int64(endLsn).int64(commitMicros).bytes
const relation = (columns: ReadonlyArray<readonly [flags: number, name: string, oid: number, typmod: number]>) => {
  const m = new Message("R").int32(16400).string("public").string("users").byte("d".charCodeAt(0)).int16(columns.length)
  for (const [flags, name, oid, typmod] of columns) m.byte(flags).string(name).int32(oid).int32(typmod)
  return m.bytes
}
const twoColumns = relation([[1, "id", 23, -1], [0, "name", 1043, 24]])
const insert = (values: (m: Message) => Message, count: number) => values(new Message("I").int32(16400).byte(0x4e).int16(count)).bytes

const at = (lsn: bigint, data: Uint8Array): WalMessage => ({ lsn, data })
const text = new TextDecoder()

const decodeOk = (decoder: Decoder, messages: ReadonlyArray<WalMessage>): ReadonlyArray<ChangeEvent> => {
  const result = decoder.decode(messages)
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success
}
/** What the decoder said is wrong, without the "cannot decode the change at LSN …: " before it. */
const detailOf = (error: DecodeError): string => error.message.replace(/^cannot decode the change at LSN [0-9A-F]+\/[0-9A-F]+: /, "")

const decodeErr = (decoder: Decoder, messages: ReadonlyArray<WalMessage>): DecodeError => {
  const result = decoder.decode(messages)
  if (Result.isSuccess(result)) throw new Error("expected a DecodeError")
  return result.failure
}

const decoder = () => PgOutputDecoder.make({ publication: "cdc" })

describe("PgOutputDecoder", () => {
  it("asks for protocol 1, the publication (quoted) and logical messages", () => {
    expect(decoder().startOptions).toBe(`("proto_version" '1', "publication_names" 'cdc', "messages" 'true')`)
    expect(PgOutputDecoder.make({ publication: "o'pub" }).startOptions).toContain(`"publication_names" 'o''pub'`)
    expect(decoder().plugin).toBe("pgoutput")
  })

  it("renders an insert as wal2json v2 JSON and acknowledges the commit at its end LSN", () => {
    const events = decodeOk(decoder(), [
      at(0x100n, begin(740)),
      at(0x100n, twoColumns),
      at(0x100n, insert((m) => m.text("7").text("ü \"q\""), 2)),
      at(0x300n, commit(0x300n))
    ])
    expect(events.map((event) => [event.action, event.lsn, event.ackLsn, event.xid, event.commitTimeMs])).toEqual([
      ["B", 0x100n, 0x100n, 740, commitMs],
      ["I", 0x100n, 0x100n, 740, commitMs],
      ["C", 0x300n, 0x300n, 740, commitMs]
    ])
    expect(text.decode(events[1]!.body)).toBe(
      `{"commit_lsn":"0/200","commit_idx":0,"action":"I","xid":740,"timestamp":"2026-01-01 00:00:00.25+00","lsn":"0/100",` +
        `"schema":"public","table":"users",` +
        `"columns":[{"name":"id","type":"integer","value":7},{"name":"name","type":"character varying(20)","value":"ü \\"q\\""}],` +
        `"pk":[{"name":"id","type":"integer"}]}`
    )
    expect(events[1]!.pk).toBe("[7]")
    expect([events[1]!.commitLsn, events[1]!.commitIdx]).toEqual([0x200n, 0]) // Begin's final LSN
    expect(events[0]!.body.length).toBe(0)
  })

  it("leaves an unchanged TOAST value out of the columns, as wal2json does", () => {
    const update = new Message("U").int32(16400).byte(0x4e).int16(2).text("7").byte(0x75).bytes
    const events = decodeOk(decoder(), [at(1n, begin(1)), at(1n, twoColumns), at(2n, update), at(3n, commit(3n))])
    const body = JSON.parse(text.decode(events[1]!.body)) as { columns: Array<{ name: string }> }
    expect(body.columns.map((column) => column.name)).toEqual(["id"])
    expect(events[1]!.pk).toBe("[7]")
  })

  it("replaces a relation when a new Relation message arrives (a column added mid-stream)", () => {
    const d = decoder()
    decodeOk(d, [at(1n, begin(1)), at(1n, twoColumns), at(1n, insert((m) => m.text("1").text("a"), 2)), at(2n, commit(2n))])
    const threeColumns = relation([[1, "id", 23, -1], [0, "name", 1043, 24], [0, "extra", 1700, ((10 << 16) | 2) + 4]])
    const events = decodeOk(d, [
      at(3n, begin(2)),
      at(3n, threeColumns),
      at(3n, insert((m) => m.text("2").text("b").text("1.50"), 3)),
      at(4n, commit(4n))
    ])
    expect(text.decode(events[1]!.body)).toContain(`{"name":"extra","type":"numeric(10,2)","value":1.50}`)
    // the old shape is gone: a two-column tuple no longer matches
    const error = decodeErr(d, [at(5n, begin(3)), at(6n, insert((m) => m.text("3").text("c"), 2))])
    expect([error.lsn, detailOf(error)]).toEqual([6n, "tuple has 2 columns, relation public.users has 3"])
  })

  it("names user-defined types from Type messages", () => {
    const events = decodeOk(decoder(), [
      at(1n, begin(1)),
      at(1n, new Message("Y").int32(16500).string("public").string("mood").bytes),
      at(1n, new Message("Y").int32(16501).string("other").string("_color").bytes),
      at(1n, relation([[1, "id", 23, -1], [0, "feeling", 16500, -1], [0, "colors", 16501, -1]])),
      at(2n, insert((m) => m.text("1").text("happy").byte(0x6e), 3)),
      at(3n, commit(3n))
    ])
    const body = JSON.parse(text.decode(events[1]!.body)) as { columns: Array<{ type: string; value: unknown }> }
    expect(body.columns.map((column) => [column.type, column.value])).toEqual([
      ["integer", 1],
      ["mood", "happy"],
      ["other.color[]", null]
    ])
  })

  it("fails on a truncated message, naming its LSN", () => {
    const whole = insert((m) => m.text("7").text("abc"), 2)
    for (const cut of [1, 5, 8, whole.length - 1]) {
      const error = decodeErr(decoder(), [at(1n, begin(1)), at(1n, twoColumns), at(0x1_0000_0042n, whole.subarray(0, cut))])
      expect(error._tag).toBe("DecodeError")
      expect(error.lsn).toBe(0x1_0000_0042n)
      expect(error.message).toContain("1/42")
    }
    expect(detailOf(decodeErr(decoder(), [at(9n, begin(1).subarray(0, 10))]))).toBe(`truncated pgoutput message "B"`)
    expect(decodeErr(decoder(), [at(10n, new Uint8Array(0))]).lsn).toBe(10n)
  })

  it("fails on an unknown message, an unknown relation, a bad value kind and trailing bytes", () => {
    expect(detailOf(decodeErr(decoder(), [at(1n, begin(1)), at(5n, new Message("Z").int32(1).bytes)])))
      .toBe(`unknown pgoutput message type "Z"`)
    expect(detailOf(decodeErr(decoder(), [at(6n, insert((m) => m.text("1").text("a"), 2))])))
      .toBe("change for relation 16400 before its Relation message")
    expect(decodeErr(decoder(), [at(1n, twoColumns), at(7n, insert((m) => m.text("1").byte(0x78), 2))]).lsn).toBe(7n)
    expect(detailOf(decodeErr(decoder(), [at(8n, new Message("B").int64(1n).int64(1n).int32(1).byte(0).bytes)])))
      .toBe("B message has trailing bytes")
  })
})
