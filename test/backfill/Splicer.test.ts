/**
 * The splicer on hand-made reads: watermarks are consumed; keys that change between a chunk's
 * watermarks (new and old keys) are left out of it; the rest become R records at the high
 * watermark, positioned after it in its transaction and keyed like live changes; a truncate in the
 * window asks for the chunk again; messages of other slots or chunks are consumed and ignored; the
 * watermark transaction's BEGIN/COMMIT records are not published.
 */
import { describe, expect, it } from "vitest"
import type { ChunkRow } from "../../src/backfill/ChunkReader.ts"
import * as OwnSchema from "../../src/backfill/OwnSchema.ts"
import * as Splicer from "../../src/backfill/Splicer.ts"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"

const encoder = new TextEncoder()
const decoder = new TextDecoder()

const base = (commitLsn: bigint, commitIdx: number, action: ChangeEvent["action"]): ChangeEvent => ({
  lsn: commitLsn - 8n, ackLsn: commitLsn - 8n, xid: 7, commitLsn, commitIdx, action, schema: "", table: "", pk: undefined,
  commitTimeMs: 1, body: new Uint8Array(0)
})

const watermark = (commitLsn: bigint, content: object, prefix = OwnSchema.WATERMARK_PREFIX): ChangeEvent => ({
  ...base(commitLsn, 0, "M"),
  body: encoder.encode(`{"commit_lsn":"0/${commitLsn.toString(16)}","commit_idx":0,"action":"M","xid":7,` +
    `"timestamp":"2026-11-29 06:00:00+00","lsn":"0/1","transactional":true,"prefix":${JSON.stringify(prefix)},` +
    `"content":${JSON.stringify(JSON.stringify(content))}}`)
})

const change = (commitLsn: bigint, action: "I" | "U" | "D" | "T", columns?: string, identity?: string): ChangeEvent => ({
  ...base(commitLsn, 0, action),
  schema: "public",
  table: "t",
  body: encoder.encode(`{"commit_lsn":"0/1","commit_idx":0,"action":"${action}","schema":"public","table":"t"` +
    (columns === undefined ? "" : `,"columns":${columns}`) + (identity === undefined ? "" : `,"identity":${identity}`) + "}")
})

const col = (id: number, v = "x") => `[{"name":"id","type":"integer","value":${id}},{"name":"v","type":"text","value":"${v}"}]`

const row = (id: number): ChunkRow => ({
  cursor: [String(id)],
  pageKey: `[${id}]`,
  pk: `[${id}]`,
  tail: `"schema":"public","table":"t","columns":${col(id)},"pk":[{"name":"id","type":"integer"}]}`
})

const setup = () => {
  const splicer = Splicer.make("s")
  const outcomes: Array<Splicer.Outcome> = []
  splicer.expect({ chunk: "c1", schema: "public", table: "t", pageKeyColumns: ["id"], onHigh: (o) => outcomes.push(o) })
  return { splicer, outcomes }
}

describe("Splicer", () => {
  it("publishes the chunk's unchanged rows at the high watermark, after it in its transaction", () => {
    const { outcomes, splicer } = setup()
    const low = splicer.intercept([watermark(0x100n, { slot: "s", chunk: "c1", mark: "low" })])
    expect(low).toEqual([])
    splicer.rows("c1", [1, 2, 3, 4, 5].map(row))
    const inWindow = [
      change(0x200n, "I", col(9)),
      change(0x210n, "U", col(2, "y")),
      change(0x220n, "D", undefined, `[{"name":"id","type":"integer","value":4}]`),
      change(0x230n, "U", col(30), `[{"name":"id","type":"integer","value":3}]`)
    ]
    expect(splicer.intercept(inWindow)).toEqual(inWindow)
    const high = watermark(0x300n, { slot: "s", chunk: "c1", mark: "high" })
    const out = splicer.intercept([base(0x300n, -1, "B"), high, base(0x300n, -1, "C")])
    expect(out.map((e) => e.action)).toEqual(["B", "R", "R", "C"])
    const records = out.filter((e) => e.action === "R")
    expect(records.map((e) => e.pk)).toEqual(["[1]", "[5]"])
    expect(records.map((e) => [e.commitLsn, e.commitIdx])).toEqual([[0x300n, 1], [0x300n, 2]])
    expect(JSON.parse(decoder.decode(records[0]!.body))).toEqual({
      commit_lsn: "0/300", commit_idx: 1, action: "R", xid: 7, timestamp: "2026-11-29 06:00:00+00", lsn: "0/2F8",
      schema: "public", table: "t", columns: [{ name: "id", type: "integer", value: 1 }, { name: "v", type: "text", value: "x" }],
      pk: [{ name: "id", type: "integer" }]
    })
    expect(outcomes).toEqual([{ _tag: "Published", published: 2, skipped: 3, commitLsn: 0x300n }])
  })

  it("asks for the chunk again when its table is truncated in the window", () => {
    const { outcomes, splicer } = setup()
    splicer.intercept([watermark(0x100n, { slot: "s", chunk: "c1", mark: "low" })])
    splicer.rows("c1", [row(1)])
    const out = splicer.intercept([change(0x200n, "T"), watermark(0x300n, { slot: "s", chunk: "c1", mark: "high" })])
    expect(out.map((e) => e.action)).toEqual(["T"])
    expect(outcomes).toEqual([{ _tag: "Retry", reason: "the table was truncated while the chunk was read", commitLsn: 0x300n }])
  })

  it("consumes watermarks of other slots and chunks, and publishes other messages", () => {
    const { outcomes, splicer } = setup()
    const other = watermark(0x100n, { slot: "s", chunk: "c1", mark: "low" }, "audit")
    const out = splicer.intercept([
      watermark(0x90n, { slot: "other", chunk: "c1", mark: "high" }),
      watermark(0x95n, { slot: "s", chunk: "old", mark: "high" }),
      watermark(0x96n, { nonsense: true }),
      other
    ])
    expect(out).toEqual([other])
    expect(outcomes).toEqual([])
  })

  it("does not publish the transaction records of a watermark's transaction", () => {
    const { splicer } = setup()
    const begin = { ...base(0x100n, 0, "BEGIN"), body: encoder.encode("{}") }
    const commit = { ...base(0x100n, 2, "COMMIT"), body: encoder.encode("{}") }
    expect(splicer.intercept([begin, watermark(0x100n, { slot: "s", chunk: "c1", mark: "low" })])).toEqual([])
    expect(splicer.intercept([commit])).toEqual([])
    const later = { ...base(0x200n, 0, "BEGIN"), body: encoder.encode("{}") }
    expect(splicer.intercept([later])).toEqual([later])
  })
})

describe("Splicer.liveReads", () => {
  const begin = (lsn: bigint) => ({ ...base(lsn, 0, "BEGIN"), body: encoder.encode("{}") })
  const commit = (lsn: bigint) => ({ ...base(lsn, 2, "COMMIT"), body: encoder.encode("{}") })

  it("counts reads with live changes, not watermarks or transaction boundaries and records alone", () => {
    const { splicer } = setup()
    expect(splicer.liveReads()).toBe(0)
    splicer.intercept([begin(0x100n), watermark(0x100n, { slot: "s", chunk: "c1", mark: "low" }), commit(0x100n)])
    splicer.intercept([begin(0x150n), commit(0x150n)])
    // a transaction whose changes were all filtered leaves its boundaries
    splicer.intercept([base(0x160n, -1, "B"), base(0x160n, -1, "C")])
    expect(splicer.liveReads()).toBe(0)
    // inside the window (the slow path) and outside it (the fast path)
    splicer.intercept([change(0x200n, "I", col(9))])
    expect(splicer.liveReads()).toBe(1)
    splicer.rows("c1", [row(1)])
    splicer.intercept([watermark(0x300n, { slot: "s", chunk: "c1", mark: "high" })])
    expect(splicer.liveReads()).toBe(1)
    splicer.intercept([base(0x400n, -1, "B"), begin(0x400n), change(0x400n, "U", col(2)), commit(0x400n), base(0x400n, -1, "C")])
    expect(splicer.liveReads()).toBe(2)
  })

  it("counts a read that holds a watermark and a live change once, and another application's message as live", () => {
    const { splicer } = setup()
    splicer.intercept([watermark(0x100n, { slot: "s", chunk: "c1", mark: "low" }), change(0x200n, "D", undefined, `[{"name":"id","type":"integer","value":4}]`)])
    expect(splicer.liveReads()).toBe(1)
    splicer.intercept([watermark(0x300n, { slot: "s", chunk: "c1", mark: "low" }, "audit")])
    expect(splicer.liveReads()).toBe(2)
  })
})
