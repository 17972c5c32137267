/**
 * The chunk reader against a real server: key discovery (primary key, composite, unique index over
 * NOT NULL columns, refusal otherwise), keyset pagination over composite keys that visits every row
 * once, and rows rendered exactly as wal2json renders the insert of the same row (columns, types,
 * values, `pk`), keyed as the decoder keys it.
 */
import * as Effect from "effect/Effect"
import * as Result from "effect/Result"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as ChunkReader from "../../src/backfill/ChunkReader.ts"
import * as Query from "../../src/backfill/Query.ts"
import * as TableShape from "../../src/backfill/TableShape.ts"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import * as PgSession from "../../src/postgres/PgSession.ts"
import { type PgCluster, pgConfigOf, startPostgres } from "../../support/PostgresHarness.ts"
import { readChanges } from "../decoding/slotChanges.ts"

let pg: PgCluster

const withQuery = <A, E>(f: (query: Query.Query) => Effect.Effect<A, E>): Promise<A> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const connection = yield* PgSession.connect(pgConfigOf(pg)).pipe(Effect.orDie)
    return yield* f(Query.ofConnection(connection))
  })) as Effect.Effect<A, never>)

const shapeOf = (table: string, schema = "public") =>
  withQuery((query) => Effect.result(TableShape.read(query, schema, table)))

beforeAll(async () => {
  pg = await startPostgres()
  await pg.psql(`
    CREATE TABLE items (id int PRIMARY KEY, name text, price numeric(30,10), tags text[], doc jsonb, note varchar(20),
                        at timestamptz, ok boolean, raw bytea, f float8, big bigint);
    CREATE TABLE prices (code numeric(20,4), region text, amount bigint, PRIMARY KEY (region, code));
    CREATE TABLE coded (code text NOT NULL, region int NOT NULL, v text, UNIQUE (region, code));
    CREATE TABLE loose (a int UNIQUE, b text);
    CREATE TABLE nothing (a int, b text);
    CREATE TABLE parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
    CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (1000);`)
  await pg.psql(`SELECT pg_create_logical_replication_slot('w', 'wal2json')`)
  await pg.psql(`INSERT INTO items VALUES
    (1, 'héllo "wörld" ✓ 😀 tab\tend', 12345678901234567890.0123456789, '{a,"b c",NULL}', '{"k": [1, 2.50, null]}', 'short',
     '2026-11-21 04:41:02.123456+00', true, '\\x00ff', 1.5e300, 9007199254740993),
    (2, NULL, 'NaN', NULL, NULL, NULL, NULL, false, NULL, 'Infinity', -1)`)
  await pg.psql(`INSERT INTO prices SELECT (g / 7.0)::numeric(20,4), 'r' || (g % 3), g FROM generate_series(1, 200) g`)
  await pg.psql(`INSERT INTO coded SELECT 'c' || g, g % 4, 'v' || g FROM generate_series(1, 50) g`)
}, 120_000)
afterAll(async () => {
  await pg?.stop()
})

describe("TableShape", () => {
  it("pages by the primary key in index order and keys by it in table order", async () => {
    const shape = await shapeOf("prices")
    if (Result.isFailure(shape)) throw new Error(shape.failure.message)
    const names = (indexes: ReadonlyArray<number>) => indexes.map((i) => shape.success.columns[i]!.name)
    expect(names(shape.success.pageKey)).toEqual(["region", "code"])
    expect(names(shape.success.streamKey)).toEqual(["code", "region"])
  })

  it("pages by a unique index over NOT NULL columns when there is no primary key", async () => {
    const shape = await shapeOf("coded")
    if (Result.isFailure(shape)) throw new Error(shape.failure.message)
    expect(shape.success.pageKey.map((i) => shape.success.columns[i]!.name)).toEqual(["region", "code"])
    expect(shape.success.streamKey).toEqual([]) // live changes of such a table have no row key either
  })

  it("refuses a table without one, a partitioned table (not its partitions), and a missing table", async () => {
    for (const table of ["loose", "nothing"]) {
      const shape = await shapeOf(table)
      expect(Result.isFailure(shape) && shape.failure._tag).toBe("NoUsableKey")
    }
    const parted = await shapeOf("parted")
    expect(Result.isFailure(parted) && parted.failure.message)
      .toBe("table public.parted is partitioned: its changes stream under its partitions' names, so backfill each partition instead")
    const partition = await shapeOf("parted_1")
    expect(Result.isSuccess(partition)).toBe(true)
    const missing = await shapeOf("absent")
    expect(Result.isFailure(missing) && missing.failure.message).toBe("table public.absent does not exist")
  })
})

describe("ChunkReader", () => {
  it("renders each row as wal2json renders its insert, keyed as the decoder keys it", async () => {
    const rows = await readChanges(pg, "w", Wal2JsonDecoder.startOptions({ addTables: [], filterTables: [] }))
    const catalog = await withQuery((query) =>
      KeyCatalog.load((sql) => query(sql)).pipe(Effect.orDie))
    const decoded = Wal2JsonDecoder.make({ addTables: [], filterTables: [], keys: catalog })
      .decode(rows.map((row) => ({ lsn: row.lsn, data: new TextEncoder().encode(row.data) })))
    if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
    const inserts = decoded.success.filter((e: ChangeEvent) => e.action === "I")
    const text = new TextDecoder()
    const byTable = (table: string) => inserts.filter((e) => e.table === table)
    for (const table of ["items", "prices"]) {
      const shape = await shapeOf(table)
      if (Result.isFailure(shape)) throw new Error(shape.failure.message)
      const chunk = await withQuery((query) => ChunkReader.read(query, shape.success, undefined, 1000))
      const live = new Map(byTable(table).map((e) => {
        const body = text.decode(e.body)
        return [e.pk, body.slice(body.indexOf(`"schema":`))] as const
      }))
      expect(chunk.rows.length).toBe(live.size)
      for (const row of chunk.rows) {
        expect(live.has(row.pk)).toBe(true)
        expect(row.tail).toBe(live.get(row.pk))
      }
    }
  })

  it("visits every row once, in key order, across chunks of a composite key", async () => {
    const shape = await shapeOf("prices")
    if (Result.isFailure(shape)) throw new Error(shape.failure.message)
    const seen: Array<string> = []
    let cursor: ReadonlyArray<string | null> | undefined
    for (let chunks = 0; chunks < 100; chunks++) {
      const chunk = await withQuery((query) => ChunkReader.read(query, shape.success, cursor, 7))
      seen.push(...chunk.rows.map((row) => row.pageKey))
      if (chunk.rows.length < 7) break
      cursor = chunk.rows[chunk.rows.length - 1]!.cursor
    }
    const expected = (await pg.psql(`SELECT json_build_array(region, code)::text FROM prices ORDER BY region, code`))
      .split("\n").map((r) => r.replaceAll(" ", ""))
    expect(seen).toEqual(expected)
    expect(new Set(seen).size).toBe(200)
  })
})
