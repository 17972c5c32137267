import { Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import type { DecodeError } from "../../src/Errors.ts"
import type { WalMessage } from "../../src/replication/Decoder.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { readChanges } from "./slotChanges.ts"

const decoder = () => Wal2JsonDecoder.make({ addTables: [], filterTables: [] })
const encoder = new TextEncoder()
const text = new TextDecoder()

const decodeOk = (messages: ReadonlyArray<WalMessage>): ReadonlyArray<ChangeEvent> => {
  const result = decoder().decode(messages)
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success
}

const decodeErr = (messages: ReadonlyArray<WalMessage>): DecodeError => {
  const result = decoder().decode(messages)
  if (Result.isSuccess(result)) throw new Error("expected a DecodeError")
  return result.failure
}

const bigNumeric = "12345678901234567890.0123456789"
const bigText = "ü".repeat(20_000) // stored out of line (STORAGE EXTERNAL): a TOAST value

describe("Wal2JsonDecoder.startOptions", () => {
  it("asks for format-version 2 with every field the decoder reads, never the service's own schema", () => {
    expect(decoder().startOptions).toBe(
      `("format-version" '2', "include-lsn" '1', "include-pk" '1', "include-timestamp" '1', "include-transaction" '1', "include-xids" '1', "filter-tables" 'cdc_logical_replication.*')`
    )
    expect(decoder().plugin).toBe("wal2json")
  })

  it("adds table filters with their quotes escaped", () => {
    const options = Wal2JsonDecoder.make({ addTables: ["public.a", "s.*"], filterTables: ["o'brien.x"] }).startOptions
    expect(options).toMatch(/, "add-tables" 'public\.a,s\.\*', "filter-tables" 'o''brien\.x,cdc_logical_replication\.\*'\)$/)
  })
})

describe("Wal2JsonDecoder on real wal2json output", () => {
  let pg: PgCluster
  let messages: ReadonlyArray<WalMessage>
  let events: ReadonlyArray<ChangeEvent>
  let bodies: ReadonlyArray<Record<string, unknown>>
  let bodiesOfServer: ReadonlyArray<Record<string, unknown>>

  beforeAll(async () => {
    pg = await startPostgres()
    await pg.psql(`
      CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(30,10), tags text[], doc jsonb, raw json,
                          note varchar(20), at timestamptz, big text);
      ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE TABLE logs (line text);
      CREATE TABLE prices (code numeric(20,4), region text, amount bigint, PRIMARY KEY (region, code));`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('w', 'wal2json')`)
    // one transaction per statement
    for (const sql of [`
      INSERT INTO items VALUES (1, 'héllo "wörld" ✓ 😀 tab\tend', ${bigNumeric}, '{a,"b c",NULL}', '{"k": [1, 2.50, null]}',
                                '{"raw" :  true}', 'short', '2026-11-21 04:41:02.123456+00', '${bigText}')`,
      `UPDATE items SET name = NULL WHERE id = 1`,
      `INSERT INTO logs VALUES ('no key here')`,
      `INSERT INTO prices VALUES (1.5, 'eu', 9007199254740993)`,
      `DELETE FROM prices`,
      `DELETE FROM items WHERE id = 1`,
      `TRUNCATE logs`,
      `SELECT pg_logical_emit_message(true, 'audit', 'hello ''msg''')`
    ]) await pg.psql(sql)
    const rows = await readChanges(pg, "w", Wal2JsonDecoder.startOptions({ addTables: [], filterTables: [] }))
    messages = rows.map((row) => ({ lsn: row.lsn, data: encoder.encode(row.data) }))
    events = decodeOk(messages)
    bodies = events.map((event) => (event.body.length === 0 ? {} : JSON.parse(text.decode(event.body)) as Record<string, unknown>))
    bodiesOfServer = messages.map((message) => JSON.parse(text.decode(message.data)) as Record<string, unknown>)
  })
  afterAll(async () => {
    await pg?.stop()
  })

  const published = () => events.filter((event) => event.action !== "B" && event.action !== "C")

  it("decodes every message, in order, with transaction boundaries", () => {
    expect(events.map((event) => event.action)).toEqual([
      "B", "I", "C",
      "B", "U", "C",
      "B", "I", "C",
      "B", "I", "C",
      "B", "D", "C",
      "B", "D", "C",
      "B", "T", "C",
      "B", "M", "C"
    ])
    expect(events.map((event) => event.lsn)).toEqual(messages.map((message) => message.lsn))
  })

  it("keeps every published body byte-exact behind its position, spliced in after the opening {", () => {
    const bodyOf = new Map(messages.map((message) => [message.lsn, message.data]))
    for (const event of published()) {
      const server = Buffer.from(bodyOf.get(event.lsn)!)
      const prefix = `{"commit_lsn":"${Lsn.format(event.commitLsn)}","commit_idx":${event.commitIdx},`
      expect(Buffer.from(event.body).equals(Buffer.concat([Buffer.from(prefix), server.subarray(1)]))).toBe(true)
    }
    // the bodies of one read share one new buffer, not the read's payloads
    expect(new Set(published().map((event) => event.body.buffer)).size).toBe(1)
    const insert = text.decode(published()[0]!.body)
    expect(insert).toContain(`"value":${bigNumeric}`)
    expect(insert).toContain(`"héllo \\"wörld\\" ✓ 😀 tab\\tend"`)
  })

  it("positions every record at its transaction's commit LSN (the C message's lsn), indexed from 0", () => {
    let commitLsn: string | undefined
    for (let i = events.length - 1; i >= 0; i--) {
      const event = events[i]!
      if (event.action === "C") commitLsn = bodiesOfServer[i]!["lsn"] as string
      else if (event.action !== "B") {
        expect(Lsn.format(event.commitLsn)).toBe(commitLsn)
        expect(event.commitIdx).toBe(0) // one change per transaction here
        expect([bodies[i]!["commit_lsn"], bodies[i]!["commit_idx"]]).toEqual([commitLsn, 0])
      }
    }
  })

  it("reads schema, table, xid and the primary key", () => {
    const [insert, update, noKey, priceInsert, priceDelete, itemDelete, truncate, message] = published()
    expect([insert!.schema, insert!.table, insert!.pk]).toEqual(["public", "items", "[1]"])
    expect(update!.pk).toBe("[1]")
    expect(itemDelete!.pk).toBe("[1]")
    expect([noKey!.table, noKey!.pk]).toEqual(["logs", undefined])
    // wal2json lists key columns in table order; decimals and bigints beyond 2^53 keep their exact text
    expect(priceInsert!.pk).toBe(`[1.5000,"eu"]`)
    expect(priceDelete!.pk).toBe(`[1.5000,"eu"]`)
    expect([truncate!.action, truncate!.table, truncate!.pk]).toEqual(["T", "logs", undefined])
    expect([message!.action, message!.schema, message!.table, message!.pk]).toEqual(["M", "", "", undefined])
    for (const event of events) {
      expect(event.xid).toBeTypeOf("number")
    }
    const xids = events.filter((event) => event.action === "B").map((event) => event.xid)
    expect(new Set(xids).size).toBe(8)
  })

  it("renders NULLs, arrays and json values as wal2json does, and the update omits the unchanged TOAST column", () => {
    const insertColumns = bodies[1]!.columns as Array<{ name: string; value: unknown }>
    expect(insertColumns.map((column) => column.name)).toEqual(["id", "name", "price", "tags", "doc", "raw", "note", "at", "big"])
    expect(insertColumns.find((column) => column.name === "tags")!.value).toBe(`{a,"b c",NULL}`)
    expect(insertColumns.find((column) => column.name === "doc")!.value).toBe(`{"k": [1, 2.50, null]}`)
    expect(insertColumns.find((column) => column.name === "raw")!.value).toBe(`{"raw" :  true}`)
    expect(insertColumns.find((column) => column.name === "big")!.value).toBe(bigText)
    const updateColumns = bodies[4]!.columns as Array<{ name: string; value: unknown }>
    expect(updateColumns.map((column) => column.name)).not.toContain("big")
    expect(updateColumns.find((column) => column.name === "name")!.value).toBeNull()
  })

  it("acknowledges a commit at its end LSN and every other message at its own", () => {
    for (const [index, event] of events.entries()) {
      if (event.action === "C") {
        expect(event.ackLsn).toBe(Lsn.parse(JSON.parse(text.decode(messages[index]!.data)).nextlsn as string))
        expect(event.ackLsn).toBeGreaterThan(events[index - 1]!.lsn)
      } else {
        expect(event.ackLsn).toBe(event.lsn)
      }
    }
  })

  it("gives every event of a transaction the commit time", () => {
    const begin = JSON.parse(text.decode(messages[0]!.data)) as { timestamp: string }
    const expected = Date.parse(begin.timestamp.replace(" ", "T").replace(/\+00$/, "Z"))
    expect(events[0]!.commitTimeMs).toBe(expected)
    expect(events[1]!.commitTimeMs).toBe(expected)
    expect(events[2]!.commitTimeMs).toBe(expected)
    expect(Math.abs(expected - Date.now())).toBeLessThan(10 * 60_000)
  })

  it("reads the commit time in the server's time zone", async () => {
    // the same transaction read twice (peek), once per session time zone
    await pg.psql(`INSERT INTO logs VALUES ('tz')`)
    const options = Wal2JsonDecoder.startOptions({ addTables: [], filterTables: [] })
    const utcRows = await readChanges(pg, "w", options, { timeZone: "UTC", peek: true })
    const nepalRows = await readChanges(pg, "w", options, { timeZone: "Asia/Kathmandu", peek: true })
    expect(nepalRows[1]!.data).toMatch(/\+05:45"/)
    const utc = decodeOk(utcRows.map((row) => ({ lsn: row.lsn, data: encoder.encode(row.data) })))
    const nepal = decodeOk(nepalRows.map((row) => ({ lsn: row.lsn, data: encoder.encode(row.data) })))
    expect(nepal.map((event) => event.commitTimeMs)).toEqual(utc.map((event) => event.commitTimeMs))
    expect(utc[1]!.commitTimeMs).toBeTypeOf("number")
  })
})

describe("Wal2JsonDecoder on bad input", () => {
  const ok = { lsn: 0x10n, data: encoder.encode(`{"action":"T","xid":5,"schema":"public","table":"t"}`) }

  it("repairs a type name wal2json wrote unescaped; a change still not JSON becomes an unreadable event to drop", () => {
    const repaired = decodeOk([
      { lsn: 0x20n, data: encoder.encode(`{"action":"I","xid":7,"schema":"public","table":"t","columns":[{"name":"r","type":"App".role,"value":"a"}],"pk":[{"name":"r","type":"App".role}]}`) }
    ])
    expect(repaired.map((e) => [e.action, e.pk, e.unreadableBytes])).toEqual([["I", `["a"]`, undefined]])
    expect(JSON.parse(text.decode(repaired[0]!.body)).columns[0].type).toBe(`"App".role`)
    const data = encoder.encode(`{"action":"I","xid":7,"schema":"public","table":"t","columns":[{"name":"r","type":"x"y"z,"value":1}]}`)
    const events = decodeOk([{ lsn: 0x21n, data }, ok])
    expect(events.map((e) => [e.action, e.table, e.xid, e.body.length, e.unreadableBytes])).toEqual([
      ["I", "t", 7, 0, data.byteLength],
      ["T", "t", 5, expect.any(Number), undefined]
    ])
  })

  it("names the first message that is not JSON and has no action", () => {
    const error = decodeErr([ok, { lsn: 0x1_0000_0020n, data: encoder.encode(`{"act`) }, { lsn: 0x30n, data: encoder.encode("x") }])
    expect(error._tag).toBe("DecodeError")
    expect(error.lsn).toBe(0x1_0000_0020n)
    expect(error.message).toContain("1/20")
  })

  it("rejects invalid UTF-8, non-objects, unknown actions and rows without a table", () => {
    expect(decodeErr([{ lsn: 1n, data: new Uint8Array([0x7b, 0xff, 0x7d]) }]).lsn).toBe(1n)
    expect(decodeErr([{ lsn: 2n, data: encoder.encode(`[1,2]`) }]).message).toMatch(/not a JSON object/)
    expect(decodeErr([ok, { lsn: 3n, data: encoder.encode(`{"action":"X","xid":1}`) }]).message).toMatch(/unknown wal2json action "X"/)
    expect(decodeErr([{ lsn: 4n, data: encoder.encode(`{"action":"I","schema":"public","columns":[]}`) }]).lsn).toBe(4n)
  })

  it("decodes a good read completely", () => {
    expect(decodeOk([ok]).map((event) => [event.action, event.table, event.xid])).toEqual([["T", "t", 5]])
  })
})
