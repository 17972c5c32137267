import { describe, expect, it } from "@effect/vitest"
import * as PartitionKey from "../../src/pipeline/PartitionKey.ts"
import { change, kinesisConfig } from "./fixtures.ts"

const keyOf = (overrides: Parameters<typeof kinesisConfig>[0]) => PartitionKey.make(kinesisConfig(overrides))

describe("PartitionKey", () => {
  it("primary_key: schema.table and the pk values", () => {
    expect(keyOf({})(change(42))).toBe("public.orders:[42]")
  })

  it("primary_key: one key function keeps each change's own table, whatever came before", () => {
    const key = keyOf({})
    const tables = [["public", "orders"], ["public", "items"], ["public", "items"], ["a.b", "c"], ["a", "b.c"], ["public", "orders"]]
    expect(tables.map(([schema, table], i) => key({ ...change(i), schema: schema!, table: table! }))).toEqual([
      "public.orders:[0]",
      "public.items:[1]",
      "public.items:[2]",
      "a.b.c:[3]",
      "a.b.c:[4]",
      "public.orders:[5]"
    ])
  })

  it("primary_key falls back per PARTITION_KEY_FALLBACK for tables without a primary key", () => {
    const event = change(undefined)
    expect(keyOf({ partitionKeyFallback: "lsn" })({ ...event, commitLsn: 0x16b374d848n, commitIdx: 3 })).toBe("16/B374D848:3")
    expect(keyOf({ partitionKeyFallback: "table" })(event)).toBe("public.orders")
    expect(keyOf({ partitionKeyFallback: "static", partitionKeyStatic: "fixed" })(event)).toBe("fixed")
  })

  it("the lsn key is the record's position: rows of one COPY (one LSN) get distinct keys", () => {
    const event = change(undefined)
    const keys = [0, 1, 2].map((commitIdx) => keyOf({ partitionKeyMode: "lsn" })({ ...event, commitLsn: 0x100n, commitIdx }))
    expect(keys).toEqual(["0/100:0", "0/100:1", "0/100:2"])
  })

  it("a transaction's BEGIN and COMMIT records share the key txn:<commit_lsn> (the static key in static mode)", () => {
    const begin = { ...change(undefined, { action: "BEGIN" }), schema: "", table: "", commitLsn: 0x16b374d848n, commitIdx: 0 }
    const commit = { ...begin, action: "COMMIT" as const, commitIdx: 9 }
    for (const mode of ["primary_key", "table", "lsn"] as const) {
      expect([keyOf({ partitionKeyMode: mode })(begin), keyOf({ partitionKeyMode: mode })(commit)])
        .toEqual(["txn:16/B374D848", "txn:16/B374D848"])
    }
    expect(keyOf({ partitionKeyMode: "static", partitionKeyStatic: "all" })(commit)).toBe("all")
  })

  it("table, lsn and static modes", () => {
    const event = change(7)
    expect(keyOf({ partitionKeyMode: "table" })(event)).toBe("public.orders")
    expect(keyOf({ partitionKeyMode: "lsn" })({ ...event, commitLsn: 0x16b374d848n, commitIdx: 0 })).toBe("16/B374D848:0")
    expect(keyOf({ partitionKeyMode: "static", partitionKeyStatic: "all" })(event)).toBe("all")
  })

  it("hashes keys over 256 characters deterministically, keeping a readable prefix", () => {
    const long = "x".repeat(300)
    const key = keyOf({})(change(long))
    expect(key.length).toBeLessThanOrEqual(256)
    expect(key.startsWith("public.orders:[\"xxx")).toBe(true)
    expect(keyOf({})(change(long))).toBe(key)
    expect(keyOf({})(change(long + "y"))).not.toBe(key)
  })

  it("does not split a surrogate pair in the prefix and keeps ≤256 characters", () => {
    const key = PartitionKey.bounded("a" + "😀".repeat(200))
    expect([...key].length).toBeLessThanOrEqual(256)
    expect(key).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/)
    expect(PartitionKey.bounded("")).toBe("-")
    expect(PartitionKey.bounded("k".repeat(256))).toBe("k".repeat(256))
  })
})
