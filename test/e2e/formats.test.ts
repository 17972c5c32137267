/**
 * End to end, through the real service process, with both plugins against a real PostgreSQL and
 * kinesalite: EXCLUDE_COLUMNS keeps the named columns (values, identity, key) out of every record
 * and warns about a pattern that matches nothing; RECORD_FORMAT=debezium publishes Debezium's
 * change event values, the same for both plugins, from which the tables are rebuilt;
 * KINESIS_STREAM_ROUTES sends each table to its stream, in per-key order, with metrics by stream,
 * and a missing routed stream is fatal, named; backfilled rows get the same format and exclusions.
 */
import * as Lsn from "../../src/domain/Lsn.ts"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, type ServiceProcess } from "../../support/ServiceProcess.ts"
import { processTracker } from "./E2eFixture.ts"
import { serviceEnv } from "./workload.ts"

let pg: PgCluster
let kinesis: Kinesalite
const processes = processTracker()
const utf8 = new TextDecoder()

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres({ conf: { TimeZone: "'UTC'" } }), startKinesalite({ shardLimit: 100 })])
})

afterAll(async () => {
  await processes.killAll()
  await Promise.all([pg?.stop(), kinesis?.stop()])
})

interface Read {
  readonly partitionKey: string
  readonly text: string
  readonly json: Record<string, unknown>
}

/** The stream's records once there are `count` of them. */
const readStream = async (stream: string, count: number, service: ServiceProcess, timeoutMs = 60_000): Promise<ReadonlyArray<Read>> =>
  eventually(`${count} records on ${stream}`, async () => {
    const records = await kinesis.readAll(stream)
    if (records.length < count) return undefined
    return records.map((record) => {
      const text = utf8.decode(record.data)
      return { partitionKey: record.partitionKey, text, json: JSON.parse(text) as Record<string, unknown> }
    }).sort((a, b) => compare(position(a), position(b)))
  }, timeoutMs, 200, () => service.hasExited() ? `the service exited:\n${service.logTail()}` : undefined)

/** A record's place in commit order, whatever the format. */
const position = (record: Read): readonly [bigint, number] => {
  const { json } = record
  if (typeof json.commit_lsn === "string") return [Lsn.parse(json.commit_lsn)!, json.commit_idx as number]
  const transaction = json.transaction as { id: string; total_order: number } | null
  if (transaction === null) return [BigInt((json.source as { lsn: number }).lsn), 0]
  return [BigInt(transaction.id.split(":")[1]!), transaction.total_order - 1]
}

const compare = (a: readonly [bigint, number], b: readonly [bigint, number]): number =>
  a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1]

const plugins = ["wal2json", "pgoutput"] as const

describe("EXCLUDE_COLUMNS (service process, both plugins)", () => {
  it("removes the named columns from values, identities and keys, and warns about a pattern that matches nothing", async () => {
    await pg.psql(`
      CREATE TABLE users (id int PRIMARY KEY, email text, password_hash text, ssn text);
      CREATE TABLE people (pid int PRIMARY KEY, ssn text, name text);
      ALTER TABLE people REPLICA IDENTITY FULL;
      CREATE TABLE vault (secret_id text PRIMARY KEY, note text);`)
    const exclude = "public.users.password_hash, *.ssn, public.vault.secret_id, public.nosuch.*"
    const services = await Promise.all(plugins.map(async (plugin) => {
      const stream = `exclude-${plugin}`
      await kinesis.createStream(stream, 2)
      const service = processes.start(serviceEnv(pg, kinesis, {
        stream,
        slot: `exclude_${plugin}`,
        extra: { REPLICATION_PLUGIN: plugin, EXCLUDE_COLUMNS: exclude }
      }))
      await service.waitForLog("streaming", { timeoutMs: 30_000 })
      return { plugin, stream, service }
    }))
    await pg.psql(`
      INSERT INTO users VALUES (1, 'a@example.com', 'hunter2-hash', '111-11-1111'), (2, 'b@example.com', 'pw2-hash', '222-22-2222');
      UPDATE users SET password_hash = 'changed-hash', email = 'a2@example.com' WHERE id = 1;
      DELETE FROM users WHERE id = 2;
      INSERT INTO people VALUES (7, '777-77-7777', 'Ann');
      UPDATE people SET name = 'Anne' WHERE pid = 7;
      DELETE FROM people WHERE pid = 7;
      INSERT INTO vault VALUES ('vault-key-1', 'n1');
      UPDATE vault SET note = 'n2' WHERE secret_id = 'vault-key-1';
      DELETE FROM vault WHERE secret_id = 'vault-key-1';`)
    const secrets = ["hunter2-hash", "pw2-hash", "changed-hash", "111-11-1111", "222-22-2222", "777-77-7777", "vault-key-1"]
    const streams = new Map<string, ReadonlyArray<Read>>()
    for (const { plugin, stream, service } of services) {
      const records = await readStream(stream, 10, service)
      streams.set(plugin, records)
      expect(records).toHaveLength(10)
      for (const record of records) {
        for (const secret of secrets) {
          expect(record.text, `${plugin}: ${record.text}`).not.toContain(secret)
          expect(record.partitionKey).not.toContain(secret)
        }
        expect(record.text).not.toMatch(/"name":"(password_hash|ssn|secret_id)"/)
      }
      // what is not excluded is still there
      const users = records.filter((r) => r.json.table === "users")
      expect(users.map((r) => r.json.action)).toEqual(["I", "I", "U", "D"])
      expect(users[2]!.json.columns).toEqual([
        { name: "id", type: "integer", value: 1 },
        { name: "email", type: "text", value: "a2@example.com" }
      ])
      expect(users[3]!.json.identity).toEqual([{ name: "id", type: "integer", value: 2 }])
      const people = records.filter((r) => r.json.table === "people")
      expect(people[1]!.json.identity).toEqual([
        { name: "pid", type: "integer", value: 7 },
        { name: "name", type: "text", value: "Ann" }
      ])
      // a row whose key is excluded keeps one key, hashed
      const vault = records.filter((r) => r.json.table === "vault")
      expect(vault).toHaveLength(3)
      expect(new Set(vault.map((r) => r.partitionKey)).size).toBe(1)
      expect(vault[0]!.partitionKey).toMatch(/^public\.vault:\["sha256:[0-9a-f]{64}"\]$/)
      expect(vault[0]!.json.pk).toEqual([])
      const warnings = service.logs().filter((l) => l.message === "exclude_columns_unmatched")
      expect(warnings.map((l) => l.pattern)).toEqual(["public.nosuch.*"])
    }
    // both plugins publish the same bodies
    const strip = (records: ReadonlyArray<Read>) =>
      records.map(({ json }) => [json.action, json.table, json.columns, json.identity, json.pk])
    expect(strip(streams.get("pgoutput")!)).toEqual(strip(streams.get("wal2json")!))
    await Promise.all(services.map(({ service }) => service.stop()))
  }, 120_000)

  it("names a bad pattern at start and exits 2", async () => {
    const service = processes.start(serviceEnv(pg, kinesis, {
      stream: "never-used",
      slot: "exclude_bad",
      extra: { EXCLUDE_COLUMNS: "a.b.c.d,ok.col,x..y", RECORD_FORMAT: "avro" }
    }))
    expect(await service.exited).toBe(2)
    const output = service.logTail(20)
    expect(output).toContain("EXCLUDE_COLUMNS")
    expect(output).toContain(`"a.b.c.d"`)
    expect(output).toContain(`"x..y"`)
    expect(output).toContain("RECORD_FORMAT")
  }, 30_000)
})

interface DebeziumValue {
  readonly before: Record<string, unknown> | null
  readonly after: Record<string, unknown> | null
  readonly op: string
  readonly ts_ms: number
  readonly source: { readonly table: string; readonly db: string; readonly name: string }
  readonly transaction: { readonly id: string; readonly total_order: number } | null
}

describe("RECORD_FORMAT=debezium (service process, both plugins)", () => {
  it("publishes Debezium's change event values, the same for both plugins; the tables rebuild from them", async () => {
    await pg.psql(`
      CREATE TABLE accounts (id int PRIMARY KEY, owner text, balance numeric(12,2), opened date, secret text);
      CREATE TABLE events (id bigserial PRIMARY KEY, account int, at timestamptz, payload jsonb, tags text[]);`)
    const services = await Promise.all(plugins.map(async (plugin) => {
      const stream = `debezium-${plugin}`
      await kinesis.createStream(stream, 3)
      const service = processes.start(serviceEnv(pg, kinesis, {
        stream,
        slot: `debezium_${plugin}`,
        extra: { REPLICATION_PLUGIN: plugin, RECORD_FORMAT: "debezium", EXCLUDE_COLUMNS: "accounts.secret" }
      }))
      await service.waitForLog("streaming", { timeoutMs: 30_000 })
      return { plugin, stream, service }
    }))
    await pg.psql(`
      INSERT INTO accounts SELECT i, 'owner ' || i, i * 10.5, date '2024-01-01' + i, 's3cr3t-' || i FROM generate_series(1, 20) i;
      BEGIN;
      UPDATE accounts SET balance = balance + 1 WHERE id % 3 = 0;
      INSERT INTO events (account, at, payload, tags) SELECT i, timestamptz '2024-05-01 10:00:00+02' + i * interval '1 minute',
        json_build_object('n', i), ARRAY['a', 'b ' || i] FROM generate_series(1, 10) i;
      COMMIT;
      DELETE FROM accounts WHERE id > 15;
      UPDATE events SET payload = '{"done": true}' WHERE id <= 3;
      UPDATE accounts SET id = id + 100 WHERE id <= 2;
      SELECT pg_logical_emit_message(true, 'audit', 'checkpoint');`)
    // the key-changing update of two rows: a delete and a create each
    const count = 20 + 6 + 10 + 5 + 3 + 4 + 1
    const streams = new Map<string, ReadonlyArray<Read>>()
    for (const { plugin, stream, service } of services) {
      const records = await readStream(stream, count, service)
      expect(records).toHaveLength(count)
      streams.set(plugin, records)
      for (const record of records) {
        expect(record.text).not.toContain("s3cr3t")
        expect(record.text).not.toContain("commit_lsn")
        const value = record.json as unknown as DebeziumValue
        expect(["c", "u", "d", "m"]).toContain(value.op)
        expect(value.source).toMatchObject({ db: pg.env.PGDATABASE, name: `debezium_${plugin}` })
      }
      // rebuild each table from the stream by the README's rule: skip a record not above its key's position
      const applied = new Map<string, readonly [bigint, number]>()
      const tables = new Map<string, Map<string, Record<string, unknown>>>()
      for (const record of records) {
        const value = record.json as unknown as DebeziumValue
        if (value.op === "m") continue
        const place = position(record)
        const last = applied.get(record.partitionKey)
        if (last !== undefined && compare(place, last) <= 0) continue
        applied.set(record.partitionKey, place)
        const rows = tables.get(value.source.table) ?? new Map<string, Record<string, unknown>>()
        tables.set(value.source.table, rows)
        if (value.op === "d") rows.delete(String(value.before!.id))
        else rows.set(String(value.after!.id), value.after!)
      }
      const accounts = JSON.parse(await pg.psql(
        `SELECT json_agg(json_build_object('id', id, 'owner', owner, 'balance', balance::text, 'opened', opened - date '1970-01-01') ORDER BY id) FROM accounts`
      )) as Array<Record<string, unknown>>
      expect([...tables.get("accounts")!.values()].sort((a, b) => (a.id as number) - (b.id as number))).toEqual(accounts)
      const events = JSON.parse(await pg.psql(
        `SELECT json_agg(json_build_object('id', id, 'account', account,
           'at', to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'), 'payload', payload::text, 'tags', tags) ORDER BY id) FROM events`
      )) as Array<Record<string, unknown>>
      expect([...tables.get("events")!.values()].sort((a, b) => (a.id as number) - (b.id as number))).toEqual(events)
    }
    // the same events whichever plugin, but for the time each was rendered
    const comparable = (records: ReadonlyArray<Read>) =>
      records.map(({ json }) => JSON.stringify({ ...json, ts_ms: 0, source: { ...(json.source as object), name: "" } }))
    expect(comparable(streams.get("pgoutput")!)).toEqual(comparable(streams.get("wal2json")!))
    await Promise.all(services.map(({ service }) => service.stop()))
  }, 120_000)
})

describe("KINESIS_STREAM_ROUTES (service process)", () => {
  it("sends each table to its stream, keeps per-key order per stream, labels metrics by stream", async () => {
    await pg.psql(`
      CREATE TABLE orders (id int PRIMARY KEY, v int);
      CREATE TABLE app_users (id int PRIMARY KEY, v int);
      CREATE TABLE app_sessions (id int PRIMARY KEY, v int);
      CREATE TABLE misc (id int PRIMARY KEY, v int);`)
    for (const stream of ["routes-default", "orders-cdc", "app-cdc"]) await kinesis.createStream(stream, 2)
    const service = processes.start(serviceEnv(pg, kinesis, {
      stream: "routes-default",
      slot: "routes_slot",
      extra: { KINESIS_STREAM_ROUTES: "public.orders=orders-cdc, public.app_*=app-cdc", BATCH_MAX_RECORDS: "50" }
    }))
    const streaming = await service.waitForLog("streaming", { timeoutMs: 30_000 })
    expect(streaming.streams).toBe("routes-default,orders-cdc,app-cdc")
    await pg.psql(`
      INSERT INTO orders SELECT i, 0 FROM generate_series(1, 40) i;
      INSERT INTO app_users SELECT i, 0 FROM generate_series(1, 30) i;
      INSERT INTO app_sessions SELECT i, 0 FROM generate_series(1, 20) i;
      INSERT INTO misc SELECT i, 0 FROM generate_series(1, 10) i;
      UPDATE orders SET v = v + 1; UPDATE app_users SET v = v + 1; UPDATE orders SET v = v + 1;
      UPDATE misc SET v = v + 1; UPDATE app_sessions SET v = v + 1;
      SELECT pg_logical_emit_message(true, 'audit', 'to the default stream');`)
    const orders = await readStream("orders-cdc", 120, service)
    const app = await readStream("app-cdc", 100, service)
    const rest = await readStream("routes-default", 21, service)
    expect(orders).toHaveLength(120)
    expect(app).toHaveLength(100)
    expect(rest).toHaveLength(21)
    expect(new Set(orders.map((r) => r.json.table))).toEqual(new Set(["orders"]))
    expect(new Set(app.map((r) => r.json.table))).toEqual(new Set(["app_users", "app_sessions"]))
    expect(new Set(rest.map((r) => r.json.table ?? r.json.action))).toEqual(new Set(["misc", "M"]))
    // per-key order on each stream: positions rise along each key's records, shard by shard as stored
    for (const stream of ["orders-cdc", "app-cdc", "routes-default"]) {
      const stored = await kinesis.readAll(stream)
      const last = new Map<string, readonly [bigint, number]>()
      for (const record of stored) {
        const json = JSON.parse(utf8.decode(record.data)) as Record<string, unknown>
        const place = position({ partitionKey: record.partitionKey, text: "", json })
        const previous = last.get(record.partitionKey)
        if (previous !== undefined) expect(compare(place, previous), `${stream} ${record.partitionKey}`).toBeGreaterThan(0)
        last.set(record.partitionKey, place)
      }
    }
    // the final state of every row is the database's
    expect(orders.filter((r) => r.json.action === "U").map((r) => (r.json.columns as Array<{ value: number }>)[1]!.value).sort())
      .toEqual([...Array.from({ length: 40 }, () => 1), ...Array.from({ length: 40 }, () => 2)])
    await service.waitUntil("published metrics by stream", async () =>
      (await service.metric("cdc_changes_published_total", { stream: "app-cdc" })) === 100 &&
      (await service.metric("cdc_changes_published_total", { stream: "orders-cdc" })) === 120 &&
      (await service.metric("cdc_changes_published_total", { stream: "routes-default" })) === 21)
    expect(await service.stop()).toBe(0)
  }, 120_000)

  it("stops at start, naming a routed stream that does not exist", async () => {
    await kinesis.createStream("routes-only-default", 1)
    const service = processes.start(serviceEnv(pg, kinesis, {
      stream: "routes-only-default",
      slot: "routes_missing",
      extra: { KINESIS_STREAM_ROUTES: "public.*=no-such-stream" }
    }))
    const code = await service.exited
    expect(code).not.toBe(0)
    const fatal = service.logs().filter((l) => l.message === "fatal_error")
    expect(fatal).toHaveLength(1)
    expect(JSON.stringify(fatal[0])).toContain("no-such-stream")
    expect(JSON.stringify(fatal[0])).toContain("ResourceNotFoundException")
  }, 60_000)
})

describe("formats of backfilled rows (service process)", () => {
  it("renders rows read by INITIAL_BACKFILL as Debezium reads (op r), without the excluded columns", async () => {
    await pg.psql(`
      CREATE TABLE patients (id int PRIMARY KEY, name text, ssn text);
      INSERT INTO patients SELECT i, 'p' || i, 'ssn-' || i FROM generate_series(1, 50) i;`)
    await kinesis.createStream("backfill-debezium", 2)
    const service = processes.start(serviceEnv(pg, kinesis, {
      stream: "backfill-debezium",
      slot: "backfill_debezium",
      extra: {
        RECORD_FORMAT: "debezium", EXCLUDE_COLUMNS: "*.ssn", INITIAL_BACKFILL: "true", WAL2JSON_ADD_TABLES: "public.patients"
      }
    }))
    await service.waitForLog("streaming", { timeoutMs: 30_000 })
    await pg.psql(`UPDATE patients SET name = 'changed' WHERE id = 7`)
    await service.waitUntil("the backfill is done", async () =>
      (await pg.psql(`SELECT coalesce(string_agg(state, ','), '') FROM cdc_logical_replication.backfills WHERE table_name = 'patients'`)) === "done",
      { timeoutMs: 120_000, intervalMs: 200 })
    // the update's record, then everything before it is in (a row whose key changed while its chunk
    // was read is left to the stream: 49 or 50 reads)
    const records = await eventually("the update on the stream", async () => {
      const all = await readStream("backfill-debezium", 50, service)
      return all.some((r) => r.json.op === "u") ? all : undefined
    }, 60_000, 200)
    const reads = records.filter((r) => r.json.op === "r")
    expect(reads.length).toBeGreaterThanOrEqual(49)
    expect(reads.length).toBeLessThanOrEqual(50)
    for (const record of records) expect(record.text).not.toContain("ssn")
    for (const read of reads) expect(read.json.source).toMatchObject({ snapshot: "true", table: "patients" })
    expect(reads.every((r) => (r.json.transaction as { total_order: number } | null)?.total_order !== undefined)).toBe(true)
    // the rebuilt table is the database's, update included, whatever the order the rows and change came in
    const rows = new Map<number, Record<string, unknown>>()
    const applied = new Map<string, readonly [bigint, number]>()
    for (const record of records) {
      const place = position(record)
      const last = applied.get(record.partitionKey)
      if (last !== undefined && compare(place, last) <= 0) continue
      applied.set(record.partitionKey, place)
      const after = record.json.after as Record<string, unknown>
      rows.set(after.id as number, after)
    }
    expect(rows.get(7)).toEqual({ id: 7, name: "changed" })
    expect(rows.size).toBe(50)
    await service.stop()
  }, 200_000)
})
