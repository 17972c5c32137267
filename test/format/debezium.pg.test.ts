/**
 * RECORD_FORMAT=debezium on real server output: both plugins' changes, decoded and formatted, give
 * the same Debezium events byte for byte, and the values are what PostgreSQL itself computes for
 * them (days, microseconds, base64, …).
 */
import { Effect, Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as ColumnFilter from "../../src/format/ColumnFilter.ts"
import * as Formats from "../../src/format/Formats.ts"
import * as RecordFormat from "../../src/format/RecordFormat.ts"
import type { Decoder, WalMessage } from "../../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { readChanges } from "../decoding/slotChanges.ts"

const encoder = new TextEncoder()
const text = new TextDecoder()

const formatted = (
  decoder: Decoder,
  messages: ReadonlyArray<WalMessage>,
  domains?: ReadonlyMap<string, string>
): ReadonlyArray<string> => {
  const format = RecordFormat.make({
    recordFormat: "debezium",
    exclude: ColumnFilter.make([]),
    source: { name: "slot", db: "postgres" },
    domains
  }, () => 1)!
  const result = RecordFormat.wrapDecoder(decoder, format).decode(messages)
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success.filter((e: ChangeEvent) => e.action !== "B" && e.action !== "C").map((e) => text.decode(e.body))
}

describe("RECORD_FORMAT=debezium on both plugins", () => {
  let pg: PgCluster
  let wal2json: ReadonlyArray<string>
  let pgoutput: ReadonlyArray<string>
  /** The same, with PUBLISH_TRANSACTION_RECORDS. */
  let wal2jsonTx: ReadonlyArray<string>
  let pgoutputTx: ReadonlyArray<string>
  let expected: Record<string, unknown>

  beforeAll(async () => {
    pg = await startPostgres({ conf: { TimeZone: "'UTC'" } })
    await pg.psql(`
      CREATE TABLE t (id bigint PRIMARY KEY, small smallint, price numeric(30,10), ratio float8, ok boolean, name text,
                      note varchar(10), doc jsonb, raw json, uid uuid, data bytea, day date, at timestamp, at3 timestamp(3),
                      zoned timestamptz, clock time, zclock timetz, span interval, nums int[], words text[], days date[]);
      CREATE TABLE full_rows (id int PRIMARY KEY, v text);
      CREATE DOMAIN ts AS timestamptz;
      CREATE DOMAIN posint AS int CHECK (VALUE > 0);
      CREATE TABLE dom (id posint PRIMARY KEY, at ts, ats ts[]);
      CREATE SCHEMA "we.ird";
      CREATE SCHEMA weird;
      CREATE TYPE weird.date AS ENUM ('not a time');
      CREATE TABLE "we.ird"."ta""ble" ("we""ird col" text PRIMARY KEY, "ü ñ" weird.date, "a.b" int[],
        inf timestamp, ninf date, bc timestamp, far timestamptz, nan numeric, finf float8, words text[], empty int[],
        doc jsonb, nothing bytea, span interval, midnight time);
      ALTER TABLE full_rows REPLICA IDENTITY FULL;
      CREATE PUBLICATION cdc FOR ALL TABLES;`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('w', 'wal2json')`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('p', 'pgoutput')`)
    const row = `9007199254740993, -7, 12345678901234567890.0123456700, 1.5e-7, true, 'héllo "q" ✓', 'n', '{"k": [1, 2.50]}',
      '{"raw" :  true}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\\x00ff10', '1969-07-20', '2024-01-02 03:04:05.123456',
      '2024-01-02 03:04:05.123', '2024-01-02 03:04:05.5+05:30', '23:59:59.999999', '03:04:05.25+05:30', '3 days 04:05:06.5',
      '{1,NULL,3}', '{"a b",c}', '{2024-01-02}'`
    for (const sql of [
      `INSERT INTO t VALUES (${row})`,
      `INSERT INTO full_rows VALUES (1, 'a'); UPDATE full_rows SET v = 'b'; DELETE FROM full_rows`,
      `BEGIN; UPDATE t SET name = 'x'; INSERT INTO full_rows VALUES (2, 'c'); UPDATE t SET ok = false; COMMIT`,
      `UPDATE full_rows SET id = 3 WHERE id = 2`,
      `TRUNCATE full_rows`,
      `SELECT pg_logical_emit_message(true, 'audit', 'transactional ✓')`,
      `INSERT INTO "we.ird"."ta""ble" VALUES (E'q"uo\\te\\\\ \\x01' || chr(1) || ' 😀', 'not a time', '{{1,2},{3,4}}', 'infinity',
        '-infinity', '0044-03-15 12:00:00 BC', '20000-01-01 00:00:00+00', 'NaN', 'Infinity', E'{"a\\\\\\"b",NULL,"NULL",""}', '{}',
        '{"u": "\\u00e9\\u0001x"}'::text::jsonb, '', '-1 years -2 mons +3 days -04:05:06', '24:00:00')`,
      `DELETE FROM t`,
      `INSERT INTO dom VALUES (5, '2024-01-02 03:04:05.5+05:30', '{"2024-01-02 03:04:05+00"}')`
    ]) await pg.psql(sql)
    const values = await pg.psql(`SELECT json_build_object(
      'price', (${"12345678901234567890.0123456700"}::numeric(30,10))::text,
      'data', encode('\\x00ff10'::bytea, 'base64'),
      'day', '1969-07-20'::date - date '1970-01-01',
      'at', (extract(epoch from timestamp '2024-01-02 03:04:05.123456') * 1000000)::bigint,
      'at3', (extract(epoch from timestamp '2024-01-02 03:04:05.123') * 1000)::bigint,
      'zoned', to_char(timestamptz '2024-01-02 03:04:05.5+05:30' AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.FF1"Z"'),
      'clock', (extract(epoch from time '23:59:59.999999') * 1000000)::bigint,
      'span', (extract(epoch from interval '3 days 04:05:06.5') * 1000000)::bigint,
      'days', json_build_array('2024-01-02'::date - date '1970-01-01'),
      'bc', (extract(epoch from timestamp '0044-03-15 12:00:00 BC') * 1000000)::bigint)`)
    expected = JSON.parse(values) as Record<string, unknown>

    // the tables' row keys, as the service reads them (psql's NULL is "": the catalog's columns are never "")
    const keys = await Effect.runPromise(KeyCatalog.load((sql) =>
      Effect.promise(() => pg.psql(sql)).pipe(
        Effect.map((out) => out.split("\n").map((line) => line.split("|").map((cell) => (cell === "" ? null : cell))))
      )
    ))
    const w = Wal2JsonDecoder.make({ addTables: [], filterTables: [], keys })
    const wRows = await readChanges(pg, "w", w.startOptions)
    const wMessages = wRows.map((row) => ({ lsn: row.lsn, data: encoder.encode(row.data) }))
    // the domains' base types, as the service reads them for wal2json
    const domains = await Effect.runPromise(Formats.domainBaseTypes((sql) =>
      Effect.promise(() => pg.psql(sql)).pipe(Effect.map((out) => out.split("\n").map((line) => line.split("|"))))
    ))
    expect(domains.get("ts")).toBe("timestamp with time zone")
    wal2json = formatted(w, wMessages, domains)
    wal2jsonTx = formatted(Wal2JsonDecoder.make({ addTables: [], filterTables: [], keys, transactionRecords: true }), wMessages, domains)
    const p = PgOutputDecoder.make({ publication: "cdc", keys })
    const pRows = await readChanges(pg, "p", p.startOptions, { binary: true })
    const pMessages = pRows.map((row) => ({ lsn: row.lsn, data: Buffer.from(row.data, "hex") }))
    pgoutput = formatted(p, pMessages)
    pgoutputTx = formatted(PgOutputDecoder.make({ publication: "cdc", keys, transactionRecords: true }), pMessages)
  })
  afterAll(async () => {
    await pg?.stop()
  })

  it("gives the same events, byte for byte, whichever plugin", () => {
    expect(wal2json.length).toBe(14)
    expect(pgoutput).toEqual(wal2json)
  })

  it("writes each value as Debezium's JSON converter does, as PostgreSQL computes it", () => {
    const insert = JSON.parse(wal2json[0]!) as { after: Record<string, unknown>; op: string }
    expect(insert.op).toBe("c")
    expect(wal2json[0]).toContain(`"id":9007199254740993,`) // exact, beyond 2^53
    expect(insert.after).toMatchObject({
      small: -7, ratio: 1.5e-7, ok: true, name: `héllo "q" ✓`, note: "n", doc: `{"k": [1, 2.50]}`, raw: `{"raw" :  true}`,
      uid: "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", zclock: "21:34:05.25Z", nums: [1, null, 3], words: ["a b", "c"]
    })
    for (const column of ["price", "data", "day", "at", "at3", "zoned", "clock", "span", "days"]) {
      expect(insert.after[column], column).toEqual(expected[column])
    }
  })

  it("follows Debezium's operations, before images and transaction blocks", () => {
    const events = wal2json.map((body) => JSON.parse(body) as {
      op: string; before: Record<string, unknown> | null; after: Record<string, unknown> | null
      source: { table: string; txId: number; lsn: number; sequence: string }
      transaction: { id: string; total_order: number; data_collection_order: number } | null
      message?: { prefix: string; content: string }
    })
    expect(events.map((e) => `${e.op}:${e.source.table}`)).toEqual([
      "c:t", "c:full_rows", "u:full_rows", "d:full_rows", "u:t", "c:full_rows", "u:t", "d:full_rows", "c:full_rows",
      "t:full_rows", "m:", `c:ta"ble`, "d:t", "c:dom"
    ])
    // a domain column is converted like its base type, with either plugin
    expect(events[13]!.after).toEqual({ id: 5, at: "2024-01-01T21:34:05.5Z", ats: ["2024-01-02 03:04:05+00"] })
    // REPLICA IDENTITY FULL: the old row; DEFAULT: none
    expect(events[2]!.before).toEqual({ id: 1, v: "a" })
    expect(events[4]!.before).toBeNull()
    expect(events[3]).toMatchObject({ before: { id: 1, v: "b" }, after: null })
    // one transaction of three records on two tables
    expect(events.slice(4, 7).map((e) => e.transaction)).toEqual([
      { id: expect.stringMatching(/^\d+:\d+$/), total_order: 1, data_collection_order: 1 },
      { id: events[4]!.transaction!.id, total_order: 2, data_collection_order: 1 },
      { id: events[4]!.transaction!.id, total_order: 3, data_collection_order: 2 }
    ])
    const [xid, commitLsn] = events[4]!.transaction!.id.split(":")
    expect(Number(xid)).toBe(events[4]!.source.txId)
    expect(BigInt(commitLsn!)).toBeGreaterThan(BigInt(events[6]!.source.lsn))
    // a key-changing update: a delete under the old key, then a create, as Debezium publishes it
    expect(events[7]).toMatchObject({ op: "d", before: { id: 2, v: "c" }, after: null, transaction: { total_order: 1 } })
    expect(events[8]).toMatchObject({ op: "c", before: null, after: { id: 3, v: "c" }, transaction: { total_order: 2 } })
    expect(events[7]!.transaction!.id).toBe(events[8]!.transaction!.id)
    expect(events[10]).toMatchObject({ op: "m", message: { prefix: "audit", content: Buffer.from("transactional ✓").toString("base64") } })
  })

  it("never fails on what a role can write: odd names, look-alike types, infinities, BC, far years, escapes", () => {
    const row = JSON.parse(wal2json[11]!) as { after: Record<string, unknown>; source: { schema: string; table: string } }
    expect(row.source).toMatchObject({ schema: "we.ird", table: `ta"ble` })
    expect(row.after).toEqual({
      [`we"ird col`]: "q\"uo\te\\ \u0001\u0001 😀",
      "ü ñ": "not a time", // an enum named like a built-in type is its text
      "a.b": [[1, 2], [3, 4]],
      inf: "infinity",
      ninf: "-infinity",
      bc: expect.any(Number),
      far: "20000-01-01 00:00:00+00", // beyond ISO-8601's four-digit years: the server's text
      nan: null,
      finf: null,
      words: [`a"b`, null, "NULL", ""],
      empty: [],
      doc: `{"u": "é\\u0001x"}`,
      nothing: "",
      span: expect.any(Number),
      midnight: 86_400_000_000
    })
    // 44 BC (astronomical year -43), March 15, noon: PostgreSQL's own epoch
    expect(row.after.bc).toBe(Number(expected.bc))
    expect(row.after.span).toBe(((-14 * 365.25 / 12 + 3) * 86_400 - (4 * 3600 + 5 * 60 + 6)) * 1_000_000)
  })

  it("renders transaction records (PUBLISH_TRANSACTION_RECORDS) as Debezium's transaction metadata events", () => {
    expect(pgoutputTx).toEqual(wal2jsonTx)
    const events = wal2jsonTx.map((body) => JSON.parse(body) as Record<string, unknown>)
    const statuses = events.filter((e) => "status" in e)
    // one BEGIN and one END around each transaction's records
    expect(statuses.length).toBeGreaterThan(0)
    expect(statuses.map((e) => e.status)).toEqual(statuses.map((_, i) => (i % 2 === 0 ? "BEGIN" : "END")))
    const begin = events.findIndex((e) => e.status === "BEGIN" && events[events.indexOf(e) + 1]?.op === "u")
    const end = events.findIndex((e, i) => i > begin && e.status === "END")
    const changes = events.slice(begin + 1, end) as Array<{ transaction: { id: string } }>
    expect(changes.map((e) => (e as unknown as { op: string }).op)).toEqual(["u", "c", "u"])
    expect(events[begin]).toEqual({
      status: "BEGIN", id: changes[0]!.transaction.id, ts_ms: expect.any(Number), event_count: null, data_collections: null
    })
    expect(events[end]).toEqual({
      status: "END", id: changes[0]!.transaction.id, ts_ms: (events[begin] as { ts_ms: number }).ts_ms, event_count: 3,
      data_collections: [{ data_collection: "public.t", event_count: 2 }, { data_collection: "public.full_rows", event_count: 1 }]
    })
    // a change's total_order counts the BEGIN record as the wal2json format's commit_idx does
    expect((changes[0] as unknown as { transaction: { total_order: number } }).transaction.total_order).toBe(2)
  })
})

