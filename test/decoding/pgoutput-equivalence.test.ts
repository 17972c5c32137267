import { Effect, Result } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import type { Decoder, WalMessage } from "../../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { readChanges } from "./slotChanges.ts"

const encoder = new TextEncoder()
const text = new TextDecoder()

const decodeAll = (decoder: Decoder, messages: ReadonlyArray<WalMessage>): ReadonlyArray<ChangeEvent> => {
  const result = decoder.decode(messages)
  if (Result.isFailure(result)) throw new Error(result.failure.message)
  return result.success
}

const isPublished = (event: ChangeEvent) => event.action !== "B" && event.action !== "C"
/** A text key with what JSON escapes, non-ASCII and a long tail. */
const oddKey = `q"u\\o\u0001\n\t ü😀 ${"x".repeat(300)}`
const oddKeySql = `'q"u\\o' || chr(1) || chr(10) || chr(9) || ' ü😀 ' || repeat('x', 300)`
const json = (event: ChangeEvent): unknown => JSON.parse(text.decode(event.body))
const fields = (event: ChangeEvent) => ({
  action: event.action, schema: event.schema, table: event.table, pk: event.pk, lsn: event.lsn, ackLsn: event.ackLsn,
  xid: event.xid, commitTimeMs: event.commitTimeMs, commitLsn: event.commitLsn, commitIdx: event.commitIdx
})

/** Keys of wal2json-shaped objects in the order they appear, recursively (JSON equality ignores order). */
const keyOrder = (value: unknown): unknown =>
  Array.isArray(value)
    ? value.map(keyOrder)
    : value !== null && typeof value === "object"
    ? Object.entries(value).map(([key, inner]) => [key, keyOrder(inner)])
    : null


describe("pgoutput and wal2json give the same changes", () => {
  let pg: PgCluster
  let wal2json: ReadonlyArray<ChangeEvent>
  let pgoutput: ReadonlyArray<ChangeEvent>
  let wMessages: ReadonlyArray<WalMessage>
  let pMessages: ReadonlyArray<WalMessage>
  let wal2jsonWithTransactions: ReadonlyArray<ChangeEvent>
  let pgoutputWithTransactions: ReadonlyArray<ChangeEvent>

  beforeAll(async () => {
    pg = await startPostgres({ conf: { TimeZone: "'UTC'" } })
    await pg.psql(`
      CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE SCHEMA other;
      CREATE TYPE other.color AS ENUM ('red');
      CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(30,10), qty bigint, ratio float8, small real,
                          ok boolean, tags text[], nums int[], doc jsonb, raw json, data bytea, note varchar(20), code char(3),
                          at timestamptz, local timestamp(3), day date, span interval, feeling mood, big text,
                          bits bit(3), vbits varbit(5), stamps timestamp(3)[], names varchar(5)[], short_span interval minute to second(3),
                          clock timetz(2), amounts numeric(5,2)[], cash money, uid uuid, letter "char", moods mood[], color other.color,
                          addr inet, pos point, word tsvector);
      ALTER TABLE items ALTER COLUMN big SET STORAGE EXTERNAL;
      CREATE TABLE logs (line text, n int);
      CREATE TABLE full_rows (id int PRIMARY KEY, v text);
      ALTER TABLE full_rows REPLICA IDENTITY FULL;
      CREATE TABLE composite (region text, code int, v text, PRIMARY KEY (region, code));
      CREATE TABLE by_index (id int PRIMARY KEY, code text NOT NULL, v text);
      CREATE UNIQUE INDEX by_index_code ON by_index (code);
      ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code;
      CREATE TABLE deferred_full (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v text);
      ALTER TABLE deferred_full REPLICA IDENTITY FULL;
      CREATE TABLE deferred_default (id int PRIMARY KEY DEFERRABLE, v text);
      CREATE SCHEMA "App";
      CREATE TYPE "App".role AS ENUM ('a', 'b');
      CREATE TYPE "App"."we""ird" AS ENUM ('x');
      CREATE TABLE typed (r "App".role, id int, w "App"."we""ird", ra "App".role[], PRIMARY KEY (r, id));
      CREATE TABLE "odd keys" (k text, n numeric, v text, PRIMARY KEY (k, n));
      CREATE PUBLICATION cdc FOR ALL TABLES;`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('w', 'wal2json')`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('p', 'pgoutput')`)
    const workload = [
      `INSERT INTO items VALUES (1, 'héllo "wörld" ✓ 😀 \\ tab\tnl' || chr(10) || chr(1), 12345678901234567890.0123456789, 9223372036854775807,
         'NaN', 1.5e-7, true, '{a,"b c",NULL}', '{1,2,3}', '{"k": [1, 2.50, null]}', '{"raw" :  true}', '\\x00ff10', 'short', 'ab',
         '2026-11-21 04:41:02.123456+05:30', '2020-01-02 03:04:05.6789', '2020-02-29', '1 day 02:03:04', 'happy', repeat('ü', 20000),
         B'101', B'11', '{"2020-01-01 00:00:00.5"}', '{"a b",c}', '1 min 2.5 sec', '12:00:00.123+02', '{1.5,-2}', 12.5,
         'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'z', '{sad,happy}', 'red', '10.0.0.1/8', '(1,2)', 'a fat cat')`,
      `INSERT INTO items (id) VALUES (2)`,
      `UPDATE items SET name = 'changed', price = price + 1, ratio = '-Infinity' WHERE id = 1`,
      `UPDATE items SET id = 20 WHERE id = 2`,
      `DELETE FROM items WHERE id = 20`,
      `INSERT INTO logs VALUES ('no key', 1), (NULL, NULL)`,
      `INSERT INTO full_rows VALUES (1, 'a'); UPDATE full_rows SET v = 'b'; DELETE FROM full_rows`,
      `INSERT INTO composite VALUES ('eu', 1, 'x'); UPDATE composite SET v = 'y'; UPDATE composite SET code = 2; DELETE FROM composite`,
      `ALTER TABLE items ADD COLUMN extra int DEFAULT 7`,
      `INSERT INTO items (id, name, extra) VALUES (3, 'after alter', 8); UPDATE items SET extra = 9 WHERE id = 1`,
      `TRUNCATE logs, composite`,
      `SELECT pg_logical_emit_message(true, 'audit', 'transactional ✓')`,
      `SELECT pg_logical_emit_message(false, 'ping', 'right away')`,
      `DELETE FROM items`,
      // keyed by the replica-identity index, not the primary key: a code change is a key change, an id change is not
      `INSERT INTO by_index VALUES (1, 'a', 'x'); UPDATE by_index SET v = 'y'; UPDATE by_index SET code = 'b';
       UPDATE by_index SET id = 2; DELETE FROM by_index`,
      // a deferrable primary key (not in wal2json's "pk"): keyed from the catalog; swapped within one transaction
      `INSERT INTO deferred_full VALUES (1, 'one'), (2, 'two'); UPDATE deferred_full SET v = 'uno' WHERE id = 1`,
      `UPDATE deferred_full SET id = 3 - id; DELETE FROM deferred_full WHERE id = 1`,
      `INSERT INTO deferred_full VALUES (5, 'five'), (6, 'six'), (7, 'seven')`,
      `UPDATE deferred_full SET id = id + 1 WHERE id >= 5`,
      `INSERT INTO deferred_default VALUES (7, 'inserts only: no old key is logged for updates and deletes')`,
      // types whose names need quoting: wal2json writes them unescaped (invalid JSON), repaired by the decoder
      `INSERT INTO typed VALUES ('a', 1, 'x', '{a,b}'); UPDATE typed SET r = 'b'; DELETE FROM typed`,
      // a key of text any role can write (quotes, backslash, control characters, non-ASCII) and a numeric's text
      `INSERT INTO "odd keys" VALUES (${oddKeySql}, 1.50, 'a'); UPDATE "odd keys" SET n = -0.0; UPDATE "odd keys" SET v = 'b';
       DELETE FROM "odd keys"`
    ]
    for (const sql of workload) await pg.psql(sql)

    // the tables' row keys, as the service reads them (psql's NULL is "": the catalog's columns are never "")
    const keys = await Effect.runPromise(KeyCatalog.load((sql) =>
      Effect.promise(() => pg.psql(sql)).pipe(
        Effect.map((out) => out.split("\n").map((line) => line.split("|").map((cell) => (cell === "" ? null : cell))))
      )
    ))
    expect(KeyCatalog.lookup(keys, "public", "full_rows")?.columns).toEqual(["id"])
    expect(KeyCatalog.lookup(keys, "public", "by_index")?.columns).toEqual(["code"])
    expect(KeyCatalog.lookup(keys, "public", "deferred_full")).toMatchObject({ columns: ["id"], immediatePrimaryKey: [] })
    const w = Wal2JsonDecoder.make({ addTables: [], filterTables: [], keys })
    const wRows = await readChanges(pg, "w", w.startOptions)
    wMessages = wRows.map((row) => ({ lsn: row.lsn, data: encoder.encode(row.data) }))
    wal2json = decodeAll(w, wMessages)
    const p = PgOutputDecoder.make({ publication: "cdc", keys })
    const pRows = await readChanges(pg, "p", p.startOptions, { binary: true })
    pMessages = pRows.map((row) => ({ lsn: row.lsn, data: Buffer.from(row.data, "hex") }))
    pgoutput = decodeAll(p, pMessages)
    wal2jsonWithTransactions = decodeAll(Wal2JsonDecoder.make({ addTables: [], filterTables: [], keys, transactionRecords: true }), wMessages)
    pgoutputWithTransactions = decodeAll(PgOutputDecoder.make({ publication: "cdc", keys, transactionRecords: true }), pMessages)
  })
  afterAll(async () => {
    await pg?.stop()
  })

  it("publishes the same changes with the same JSON, key order included", () => {
    const fromWal2json = wal2json.filter(isPublished)
    const fromPgoutput = pgoutput.filter(isPublished)
    // every row change (the 6 key changes split in two), 2 truncated tables, 2 messages
    expect(fromWal2json.length).toBe(22 + 2 + 6 + 7 + 7 + 1 + 4 + 5)
    expect(fromPgoutput.map((event) => event.action)).toEqual(fromWal2json.map((event) => event.action))
    for (let i = 0; i < fromWal2json.length; i++) {
      expect(json(fromPgoutput[i]!), `change ${i}`).toEqual(json(fromWal2json[i]!))
      expect(keyOrder(json(fromPgoutput[i]!)), `change ${i}`).toEqual(keyOrder(json(fromWal2json[i]!)))
      expect(fields(fromPgoutput[i]!), `change ${i}`).toEqual(fields(fromWal2json[i]!))
    }
  })

  it("positions the records alike: commit LSN and index, rising along the stream", () => {
    const positions = (events: ReadonlyArray<ChangeEvent>) =>
      events.filter(isPublished).map((event) => [event.commitLsn, event.commitIdx] as const)
    expect(positions(pgoutput)).toEqual(positions(wal2json))
    const all = positions(wal2json)
    for (let i = 1; i < all.length; i++) {
      const [lsn, idx] = all[i]!
      const [prevLsn, prevIdx] = all[i - 1]!
      expect(lsn > prevLsn || (lsn === prevLsn && idx === prevIdx + 1), `record ${i}`).toBe(true)
    }
    // the composite-key transaction: five records (the key change split) at one commit LSN, indexed 0..4
    const composite = wal2json.filter((event) => isPublished(event) && event.table === "composite" && event.action !== "T")
    expect(composite.map((event) => event.commitIdx)).toEqual([0, 1, 2, 3, 4])
    expect(new Set(composite.map((event) => event.commitLsn)).size).toBe(1)
  })

  it("keys every change of a row alike, and splits a key change into a delete and an insert", () => {
    const rows = (events: ReadonlyArray<ChangeEvent>, table: string) =>
      events.filter((event) => isPublished(event) && event.table === table).map((event) => `${event.action}${event.pk}@${event.commitIdx}`)
    for (const events of [wal2json, pgoutput]) {
      // the index's column is the key: an id change is an update, a code change a delete and an insert
      expect(rows(events, "by_index")).toEqual([`I["a"]@0`, `U["a"]@1`, `D["a"]@2`, `I["b"]@3`, `U["b"]@4`, `D["b"]@5`])
      expect(rows(events, "deferred_full"), events === wal2json ? "wal2json" : "pgoutput").toEqual([
        "I[1]@0", "I[2]@1", "U[1]@2",
        // the swap (PostgreSQL updates row 2 first): it leaves key 2 and takes key 1 while row 1 still
        // has it, then row 1 takes key 2, its departure from key 1 (now row 2's) left out; then the
        // row now keyed 1 is deleted; then a shift of ids 5..7 by one
        "D[2]@0", "I[1]@1", "I[2]@2", "D[1]@3",
        "I[5]@0", "I[6]@1", "I[7]@2", "D[5]@0", "I[6]@1", "I[7]@2", "I[8]@3"
      ])
      expect(rows(events, "deferred_default")).toEqual(["I[7]@0"])
      const odd = JSON.stringify(oddKey)
      expect(rows(events, "odd keys")).toEqual([
        `I[${odd},1.50]@0`, `D[${odd},1.50]@1`, `I[${odd},0.0]@2`, `U[${odd},0.0]@3`, `D[${odd},0.0]@4`
      ])
      // the old key of a changed composite key gets its delete
      expect(rows(events, "composite")).toEqual([
        `I["eu",1]@0`, `U["eu",1]@1`, `D["eu",1]@2`, `I["eu",2]@3`, `D["eu",2]@4`, "Tundefined@1"
      ])
    }
    // the insert of a key change carries every column the update did; the delete the update's identity
    const split = wal2json.filter((event) => event.table === "by_index" && event.commitIdx === 3)[0]!
    expect(json(split)).toMatchObject({
      action: "I", columns: [{ name: "id", value: 1 }, { name: "code", value: "b" }, { name: "v", value: "y" }],
      pk: [{ name: "id", type: "integer" }]
    })
    expect(json(split)).not.toHaveProperty("identity")
    const removal = wal2json.filter((event) => event.table === "by_index" && event.commitIdx === 2)[0]!
    expect(json(removal)).toMatchObject({ action: "D", identity: [{ name: "code", type: "text", value: "a" }] })
    expect(json(removal)).not.toHaveProperty("columns")
  })

  it("with PUBLISH_TRANSACTION_RECORDS, wraps each transaction's records in BEGIN and COMMIT alike", () => {
    const records = (events: ReadonlyArray<ChangeEvent>) => events.filter(isPublished)
    const w = records(wal2jsonWithTransactions)
    const p = records(pgoutputWithTransactions)
    expect(p.map((event) => event.action)).toEqual(w.map((event) => event.action))
    for (let i = 0; i < w.length; i++) {
      expect(json(p[i]!), `record ${i}`).toEqual(json(w[i]!))
      // PostgreSQL 15's pgoutput sends Begin with the first change: a BEGIN's own LSN may differ
      const comparable = (event: ChangeEvent) => event.action === "BEGIN" ? { ...fields(event), lsn: 0n, ackLsn: 0n } : fields(event)
      expect(comparable(p[i]!), `record ${i}`).toEqual(comparable(w[i]!))
    }
    // one BEGIN and one COMMIT per transaction with records (20), none for ALTER TABLE's (wal2json sends its B and C)
    expect(w.filter((event) => event.action === "BEGIN")).toHaveLength(20)
    expect(w.filter((event) => event.action === "COMMIT")).toHaveLength(20)
    // the changes keep their order; every transaction's records are indexed 0..n+1, COMMIT counting the n changes
    expect(w.filter((event) => event.action !== "BEGIN" && event.action !== "COMMIT").map((event) => event.body.length > 0))
      .toHaveLength(records(wal2json).length)
    let open: { lsn: bigint; next: number } | undefined
    for (const event of w) {
      if (event.xid === undefined && event.action === "M") continue // the non-transactional message
      const body = json(event) as { action: string; commit_idx: number; changes?: number; xid: number; timestamp: string }
      if (event.action === "BEGIN") {
        expect(open).toBeUndefined()
        expect([body.action, body.commit_idx, body.xid]).toEqual(["B", 0, event.xid])
        open = { lsn: event.commitLsn, next: 1 }
      } else {
        expect(event.commitLsn).toBe(open!.lsn)
        expect(event.commitIdx).toBe(open!.next++)
        if (event.action === "COMMIT") {
          expect(body).toEqual({ commit_lsn: body["commit_lsn" as "action"], commit_idx: event.commitIdx, action: "C", xid: event.xid, timestamp: body.timestamp, changes: event.commitIdx - 1 })
          open = undefined
        }
      }
    }
    expect(open).toBeUndefined()
  })

  it("covers the cases it claims to", () => {
    const bodies = wal2json.filter(isPublished).map((event) => text.decode(event.body))
    expect(bodies[0]).toContain(`"value":12345678901234567890.0123456789`)
    expect(pgoutput.filter(isPublished).map((event) => text.decode(event.body))[0]).toContain(`"value":12345678901234567890.0123456789`)
    const tableActions = wal2json.filter(isPublished).map((event) => `${event.action}:${event.table}:${event.pk ?? "-"}`)
    expect(tableActions).toContain("U:items:[1]")
    expect(tableActions).toContain("D:full_rows:[1]")
    expect(tableActions).toContain(`I:composite:["eu",2]`)
    expect(tableActions).toContain("I:logs:-")
    expect(tableActions.filter((action) => action.startsWith("T:"))).toEqual(["T:logs:-", "T:composite:-"])
    // the update that left the TOAST column alone does not carry it; the insert after ALTER shows the new column
    const updateOne = json(wal2json.filter(isPublished)[2]!) as { columns: Array<{ name: string }> }
    expect(updateOne.columns.map((column) => column.name)).not.toContain("big")
    const afterAlter = wal2json.filter(isPublished).find((event) => event.pk === "[3]" && event.action === "I")!
    expect(text.decode(afterAlter.body)).toContain(`{"name":"extra","type":"integer","value":8}`)
    const typed = wal2json.filter((event) => event.table === "typed")
    expect(typed.map((event) => `${event.action}:${event.pk}`)).toEqual([`I:["a",1]`, `D:["a",1]`, `I:["b",1]`, `D:["b",1]`])
    expect(text.decode(typed[0]!.body)).toContain(`{"name":"w","type":"\\"App\\".\\"we\\"\\"ird\\"","value":"x"}`)
  })

  it("acknowledges every transaction with changes at the same commit end LSN, with the same xid and time", () => {
    const commits = (events: ReadonlyArray<ChangeEvent>) => {
      const changed = new Set(events.filter((event) => isPublished(event) && event.xid !== undefined).map((event) => event.xid))
      // PostgreSQL 15's pgoutput writes BEGIN when the first change is sent, so a B's own LSN may be later than wal2json's
      return events.filter((event) => (event.action === "C" || event.action === "B") && changed.has(event.xid))
        .map((event) => event.action === "C" ? fields(event) : { action: event.action, xid: event.xid, commitTimeMs: event.commitTimeMs })
    }
    const fromWal2json = commits(wal2json)
    expect(fromWal2json.length).toBe(2 * 20) // every workload transaction but ALTER TABLE and the non-transactional message
    expect(commits(pgoutput)).toEqual(fromWal2json)
    for (const commit of pgoutput.filter((event) => event.action === "C")) {
      expect(commit.ackLsn).toBe(commit.lsn) // the commit's XLogData starts at the transaction's end LSN
    }
    expect(pgoutput.filter((event) => event.action === "B").every((event) => typeof event.commitTimeMs === "number")).toBe(true)
  })
})

describe("where pgoutput cannot match wal2json", () => {
  let pg: PgCluster
  beforeAll(async () => {
    pg = await startPostgres({ conf: { TimeZone: "'UTC'" } })
    await pg.psql(`CREATE DOMAIN positive AS int CHECK (VALUE > 0); CREATE TABLE scores (id int PRIMARY KEY, score positive);
                   CREATE PUBLICATION cdc FOR ALL TABLES`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('w', 'wal2json')`)
    await pg.psql(`SELECT pg_create_logical_replication_slot('p', 'pgoutput')`)
    await pg.psql(`INSERT INTO scores VALUES (1, 5)`)
  })
  afterAll(async () => {
    await pg?.stop()
  })

  it("names a domain column by its base type (pgoutput sends the base type's name), with the same value", async () => {
    const w = Wal2JsonDecoder.make({ addTables: [], filterTables: [] })
    const p = PgOutputDecoder.make({ publication: "cdc" })
    const wRows = await readChanges(pg, "w", w.startOptions)
    const pRows = await readChanges(pg, "p", p.startOptions, { binary: true })
    const [fromWal2json] = decodeAll(w, wRows.map((row) => ({ lsn: row.lsn, data: encoder.encode(row.data) }))).filter(isPublished)
    const [fromPgoutput] = decodeAll(p, pRows.map((row) => ({ lsn: row.lsn, data: Buffer.from(row.data, "hex") }))).filter(isPublished)
    const score = (event: ChangeEvent | undefined) =>
      (json(event!) as { columns: Array<{ name: string; type: string; value: unknown }> }).columns[1]
    expect(score(fromWal2json)).toEqual({ name: "score", type: "positive", value: "5" })
    expect(score(fromPgoutput)).toEqual({ name: "score", type: "integer", value: "5" })
    expect(fields(fromPgoutput!)).toEqual(fields(fromWal2json!))
  })
})
