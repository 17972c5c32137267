/**
 * The demo's ledger: which written changes arrived, found by identity in wal2json-shaped bodies;
 * duplicates, records read before the writer recorded them, other tables.
 */
import { describe, expect, it } from "vitest"
import { deleteKey, identify, insertOrUpdateKey, Ledger } from "../../scripts/demo/Ledger.ts"

const record = (value: object): Uint8Array => Buffer.from(JSON.stringify(value))
const insert = (changeId: number, writtenAtMs: number, table = "orders", schema = "cdc_demo") => record({
  action: "I", schema, table, timestamp: "2026-11-21 04:41:02.123456+00",
  columns: [{ name: "id", type: "bigint", value: 7 }, { name: "change_id", type: "bigint", value: changeId }, { name: "written_at_ms", type: "bigint", value: writtenAtMs }],
  pk: [{ name: "id", type: "bigint" }]
})
const remove = (id: number, table = "orders") => record({
  action: "D", schema: "cdc_demo", table, identity: [{ name: "id", type: "bigint", value: id }]
})

describe("identify", () => {
  it("keys inserts and updates by change_id, deletes by table and id, and ignores everything else", () => {
    expect(identify(JSON.parse(Buffer.from(insert(5, 1000)).toString()), "cdc_demo")).toEqual({ key: "c:5", writtenAtMs: 1000 })
    expect(identify(JSON.parse(Buffer.from(remove(9)).toString()), "cdc_demo")).toEqual({ key: "d:orders:9", writtenAtMs: undefined })
    expect(identify(JSON.parse(Buffer.from(insert(5, 1000, "orders", "public")).toString()), "cdc_demo")).toBeUndefined()
    expect(identify({ action: "M", prefix: "x", content: "y" }, "cdc_demo")).toBeUndefined()
  })
})

describe("Ledger", () => {
  it("counts arrivals by identity, with latency from the row's client timestamp", () => {
    const ledger = new Ledger("cdc_demo")
    ledger.wrote(insertOrUpdateKey(1), "I", 1_000)
    ledger.wrote(deleteKey("orders", 7), "D", 1_050)
    ledger.wrote(insertOrUpdateKey(2), "U", 1_100)
    ledger.readBack(insert(1, 1_000), 1_040)
    ledger.readBack(remove(7), 1_150)
    ledger.readBack(insert(1, 1_000), 1_300) // again: at-least-once
    ledger.readBack(insert(99, 1_000, "orders", "public"), 1_300)
    const s = ledger.snapshot()
    expect(s.written).toBe(3)
    expect(s.writtenByAction).toEqual({ I: 1, U: 1, D: 1 })
    expect(s.arrived).toBe(2)
    expect(s.missing).toBe(1)
    expect(s.duplicates).toBe(1)
    expect(s.otherRecords).toBe(1)
    expect(s.recordsRead).toBe(4)
    expect(s.latencyMs?.max).toBe(100)
    expect(s.latencyMs?.p50).toBe(40)
    expect(ledger.complete()).toBe(false)
  })

  it("matches a record read before the writer recorded its commit", () => {
    const ledger = new Ledger("cdc_demo")
    ledger.readBack(insert(3, 2_000), 2_030)
    expect(ledger.snapshot().arrived).toBe(0)
    ledger.wrote(insertOrUpdateKey(3), "I", 2_000)
    const s = ledger.snapshot()
    expect(s.arrived).toBe(1)
    expect(s.missing).toBe(0)
    expect(s.latencyMs?.p50).toBe(30)
    expect(ledger.complete()).toBe(true)
  })
})
