import { Effect } from "effect"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"

describe("KeyCatalog", () => {
  let pg: PgCluster
  let keys: KeyCatalog.KeyCatalog

  beforeAll(async () => {
    pg = await startPostgres()
    await pg.psql(`
      CREATE SCHEMA "we.ird";
      CREATE TABLE plain_pk (b int, a int, v text, PRIMARY KEY (a, b));
      CREATE TABLE by_index (id int PRIMARY KEY, code text NOT NULL);
      CREATE UNIQUE INDEX by_index_code ON by_index (code);
      ALTER TABLE by_index REPLICA IDENTITY USING INDEX by_index_code;
      CREATE TABLE deferrable_default (id int PRIMARY KEY DEFERRABLE);
      CREATE TABLE deferrable_full (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED);
      ALTER TABLE deferrable_full REPLICA IDENTITY FULL;
      CREATE TABLE nothing_pk (id int PRIMARY KEY);
      ALTER TABLE nothing_pk REPLICA IDENTITY NOTHING;
      CREATE TABLE full_no_pk (v text);
      ALTER TABLE full_no_pk REPLICA IDENTITY FULL;
      CREATE TABLE "we.ird"."no key" (v text);
      CREATE TABLE parted (id int PRIMARY KEY) PARTITION BY RANGE (id);
      CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);`)
    keys = await Effect.runPromise(KeyCatalog.load((sql) =>
      Effect.promise(() => pg.psql(sql)).pipe(
        Effect.map((out) => out.split("\n").map((line) => line.split("|").map((cell) => (cell === "" ? null : cell))))
      )
    ))
  })
  afterAll(async () => {
    await pg?.stop()
  })

  it("keys each table by its identity index, else its primary key (immediate or deferrable), in table order", () => {
    const key = (schema: string, table: string) => KeyCatalog.lookup(keys, schema, table)
    expect(key("public", "plain_pk")).toMatchObject({ identity: "d", columns: ["b", "a"], immediatePrimaryKey: ["b", "a"] })
    expect(key("public", "by_index")).toMatchObject({ identity: "i", columns: ["code"], immediatePrimaryKey: ["id"] })
    expect(key("public", "deferrable_default")).toMatchObject({ identity: "d", columns: ["id"], immediatePrimaryKey: [], deferrablePrimaryKey: true })
    expect(key("public", "deferrable_full")).toMatchObject({ identity: "f", columns: ["id"], immediatePrimaryKey: [] })
    expect(key("public", "nothing_pk")).toMatchObject({ identity: "n", columns: ["id"] })
    expect(key("public", "full_no_pk")).toMatchObject({ identity: "f", columns: [] })
    expect(key("we.ird", "no key")).toMatchObject({ identity: "d", columns: [] })
    expect(key("public", "parted_1")).toMatchObject({ columns: ["id"] })
  })

  it("names the tables whose rows cannot be followed by key, and only those a filter streams", () => {
    expect(KeyCatalog.unidentified(keys).map((entry) => entry.table)).toEqual([
      "public.deferrable_default", "public.full_no_pk", "public.nothing_pk", "we.ird.no key"
    ])
    expect(KeyCatalog.unidentified(keys).find((entry) => entry.table === "public.deferrable_default")!.reason)
      .toContain("deferrable primary key")
    const covered = Wal2JsonDecoder.covers({ addTables: ["public.*", "we\\.ird.no key"], filterTables: ["*.nothing_pk"] })
    expect(KeyCatalog.unidentified(keys, covered).map((entry) => entry.table)).toEqual([
      "public.deferrable_default", "public.full_no_pk", "we.ird.no key"
    ])
  })
})
