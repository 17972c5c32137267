/**
 * The consumer's contract, end to end (service process, real PostgreSQL, kinesalite behind a proxy
 * that fails records): concurrent sessions change tables of every kind of identity (primary key,
 * replica-identity index, FULL, a deferrable key, a composite key, none), change keys (a shift and
 * swaps of a deferrable key within one transaction too), and race a deferred-key insert against a delete; the service is SIGKILLed twice and PutRecords partially
 * fails throughout. Every table rebuilt from the stream by the README's rule, replaying the keys in
 * three orders, equals the database, for both plugins.
 */
import { afterAll, describe, expect, it } from "vitest"
import * as Lsn from "../../src/domain/Lsn.ts"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, type ServiceProcess, serviceEnvFor, startService } from "../../support/ServiceProcess.ts"
import { byKey, canonical, lsnValue, rebuild, type RecordBody, rowsOf, type StreamRecord } from "./Consumer.ts"
import * as PartialFailureProxy from "./PartialFailureProxy.ts"

const TABLES = ["t_pk", "t_index", "t_full", "t_deferred", "t_composite", "t_log"] as const

const schema = `
  CREATE TABLE t_pk (id int PRIMARY KEY, v int NOT NULL, note text);
  CREATE TABLE t_index (id int PRIMARY KEY, code int NOT NULL, v int NOT NULL);
  CREATE UNIQUE INDEX t_index_code ON t_index (code);
  ALTER TABLE t_index REPLICA IDENTITY USING INDEX t_index_code;
  CREATE TABLE t_full (id int PRIMARY KEY, v int NOT NULL, note text);
  ALTER TABLE t_full REPLICA IDENTITY FULL;
  CREATE TABLE t_deferred (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, v int NOT NULL);
  ALTER TABLE t_deferred REPLICA IDENTITY FULL;
  CREATE TABLE t_composite (a int, b int, v int NOT NULL, PRIMARY KEY (a, b));
  -- no row key: inserts only (PostgreSQL cannot identify its old rows), each under its own key
  CREATE TABLE t_log (session float8, n int, at_key int);
  -- one session's work: transactions of 1..4 random changes over 30 keys per table, key changes
  -- included; a change that fails (duplicate key, deadlock) rolls back its transaction only
  CREATE PROCEDURE work(seed float8, n int) LANGUAGE plpgsql AS $$
  DECLARE r float8; k int; k2 int; t int;
  BEGIN
    PERFORM setseed(seed);
    FOR i IN 1..n LOOP
      BEGIN
        SET CONSTRAINTS ALL IMMEDIATE;
        INSERT INTO t_log SELECT seed, i, g FROM generate_series(1, (random() * 2)::int) g;
        FOR j IN 1..(1 + floor(random() * 4))::int LOOP
          r := random(); k := 1 + floor(random() * 30)::int; k2 := 1 + floor(random() * 30)::int; t := floor(random() * 5)::int;
          IF t = 0 THEN
            IF r < 0.35 THEN INSERT INTO t_pk VALUES (k, i, 'n' || i) ON CONFLICT (id) DO NOTHING;
            ELSIF r < 0.65 THEN UPDATE t_pk SET v = v + 1, note = note || '.' WHERE id = k;
            ELSIF r < 0.85 THEN UPDATE t_pk SET id = k2 WHERE id = k;
            ELSE DELETE FROM t_pk WHERE id = k; END IF;
          ELSIF t = 1 THEN
            IF r < 0.35 THEN INSERT INTO t_index VALUES (k + 1000 * (i % 7), k, i) ON CONFLICT DO NOTHING;
            ELSIF r < 0.55 THEN UPDATE t_index SET v = v + 1 WHERE code = k;
            ELSIF r < 0.7 THEN UPDATE t_index SET id = id + 100000 WHERE code = k;
            ELSIF r < 0.85 THEN UPDATE t_index SET code = k2 WHERE code = k;
            ELSE DELETE FROM t_index WHERE code = k; END IF;
          ELSIF t = 2 THEN
            IF r < 0.35 THEN INSERT INTO t_full VALUES (k, i, 'f' || i) ON CONFLICT (id) DO NOTHING;
            ELSIF r < 0.65 THEN UPDATE t_full SET v = v + 1 WHERE id = k;
            ELSIF r < 0.85 THEN UPDATE t_full SET id = k2, note = note || '>' WHERE id = k;
            ELSE DELETE FROM t_full WHERE id = k; END IF;
          ELSIF t = 3 THEN
            IF r < 0.35 THEN INSERT INTO t_deferred VALUES (k, i) ON CONFLICT (id) DO NOTHING;
            ELSIF r < 0.65 THEN UPDATE t_deferred SET v = v + 1 WHERE id = k;
            ELSIF r < 0.85 THEN UPDATE t_deferred SET id = k2 WHERE id = k;
            ELSE DELETE FROM t_deferred WHERE id = k; END IF;
          ELSE
            IF r < 0.35 THEN INSERT INTO t_composite VALUES (k % 5, k, i) ON CONFLICT DO NOTHING;
            ELSIF r < 0.65 THEN UPDATE t_composite SET v = v + 1 WHERE b = k;
            ELSIF r < 0.85 THEN UPDATE t_composite SET a = a + 1 WHERE b = k;
            ELSE DELETE FROM t_composite WHERE b = k; END IF;
          END IF;
        END LOOP;
      EXCEPTION WHEN OTHERS THEN NULL;
      END;
      COMMIT;
      PERFORM pg_sleep(0.02);
    END LOOP;
  END $$;`

/**
 * The deferred-key race: an insert of an existing key, deferred, waits while another session
 * deletes the old row and commits; the insert commits after. Its change was written first (lower
 * `lsn`) but commits last: only commit positions order the two.
 */
const deferredRace = async (pg: PgCluster, id: number): Promise<void> => {
  await pg.psql(`INSERT INTO t_deferred VALUES (${id}, 0)`)
  // the insert takes an advisory lock once written, then waits for the old row to be deleted
  const inserting = pg.psql(`BEGIN; INSERT INTO t_deferred VALUES (${id}, ${id}); SELECT pg_advisory_lock(${id});
    DO $$ BEGIN WHILE EXISTS (SELECT 1 FROM t_deferred WHERE id = ${id} AND v = 0) LOOP PERFORM pg_sleep(0.02); END LOOP; END $$;
    COMMIT;`)
  await pg.psql(`DO $$ BEGIN
      WHILE NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = ${id} AND granted) LOOP PERFORM pg_sleep(0.02); END LOOP;
    END $$; DELETE FROM t_deferred WHERE id = ${id}`)
  await inserting
}

/** A seeded shuffle. */
const shuffled = <A>(items: ReadonlyArray<A>, seed: number): Array<A> => {
  const out = [...items]
  let s = seed
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648
    const j = s % (i + 1)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

const processes: Array<ServiceProcess> = []
const clusters: Array<PgCluster> = []
const kinesaliteServers: Array<Kinesalite> = []
const proxies: Array<PartialFailureProxy.PartialFailureProxy> = []

afterAll(async () => {
  for (const service of processes) if (!service.hasExited()) service.kill("SIGKILL")
  await Promise.all(processes.map((service) => service.exited))
  await Promise.all(proxies.map((proxy) => proxy.stop()))
  await Promise.all([...clusters.map((pg) => pg.stop()), ...kinesaliteServers.map((k) => k.stop())])
})

describe.each([
  { plugin: "wal2json", transactionRecords: true },
  { plugin: "pgoutput", transactionRecords: false }
] as const)("rebuilding tables from the stream ($plugin)", ({ plugin, transactionRecords }) => {
  it("equals the database in any key order, through partial failures and SIGKILLs", async () => {
    const [pg, kinesis] = await Promise.all([startPostgres(), startKinesalite()])
    clusters.push(pg)
    kinesaliteServers.push(kinesis)
    const proxy = await PartialFailureProxy.start({ host: "127.0.0.1", port: kinesis.port }, { requestShare: 0.4, recordShare: 0.3 })
    proxies.push(proxy)
    await pg.psql(schema)
    const stream = `contract-${plugin}`
    await kinesis.createStream(stream, 3)
    const env = {
      ...serviceEnvFor(pg, { endpoint: proxy.endpoint, region: kinesis.region }, { slot: `contract_${plugin}`, stream }),
      REPLICATION_PLUGIN: plugin,
      PUBLICATION_NAME: "cdc_contract",
      PUBLISH_TRANSACTION_RECORDS: String(transactionRecords),
      BATCH_MAX_RECORDS: "25",
      KINESIS_MAX_INFLIGHT: "4",
      KINESIS_RETRY_BASE_MS: "20",
      KINESIS_RETRY_MAX_MS: "200",
      PG_RECONNECT_BASE_MS: "200",
      PG_RECONNECT_MAX_MS: "1000"
    }
    const launch = () => {
      const service = startService(env)
      processes.push(service)
      return service
    }
    let service = launch()
    await service.waitForLog("streaming", { timeoutMs: 30_000 })
    // the table whose rows cannot be followed by key is named at start
    const warning = service.logs().find((line) => line.message === "tables_without_row_key")
    expect(warning?.["tables"]).toEqual(["public.t_log: no primary key or replica identity index: changes use PARTITION_KEY_FALLBACK"])

    // four concurrent sessions (psql each), and deferred-key races beside them; the service killed twice meanwhile
    let workDone = false
    const work = Promise.all([
      ...[0.11, 0.22, 0.33, 0.44].map((seed) => pg.psql(`CALL work(${seed}, 250)`)),
      (async () => {
        for (let id = 101; id <= 105; id++) await deferredRace(pg, id)
        // rows sharing a key within one transaction: a shift of ids and swaps (deferred checks)
        await pg.psql(`INSERT INTO t_deferred SELECT g, g FROM generate_series(301, 306) g`)
        await pg.psql(`UPDATE t_deferred SET id = id + 1 WHERE id BETWEEN 301 AND 306`)
        await pg.psql(`UPDATE t_deferred SET id = 609 - id, v = v + 1000 WHERE id IN (302, 307)`)
        await pg.psql(`BEGIN; UPDATE t_deferred SET id = 0 - id WHERE id = 303; UPDATE t_deferred SET id = 303 WHERE id = 304;
          UPDATE t_deferred SET id = 304 WHERE id = -303; UPDATE t_deferred SET v = -1 WHERE id = 303; COMMIT;`)
      })()
    ]).then(() => {
      workDone = true
    })
    for (const [n, after] of [150, 500].entries()) {
      await service.waitUntil(`${after} records published`, async () => (await service.metric("cdc_changes_published_total")) >= after, {
        timeoutMs: 60_000
      })
      if (n === 0) expect(workDone, "killed while the sessions still write").toBe(false)
      service.kill("SIGKILL")
      await service.exited
      service = launch()
    }
    await work
    const end = await pg.psql("SELECT pg_current_wal_lsn()")
    await eventually("the slot confirmed everything written", async () =>
      lsnValue(await pg.psql(`SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = 'contract_${plugin}'`)) >=
        lsnValue(end), 90_000, 250, () => (service.hasExited() ? `the service exited: ${service.logTail(20)}` : undefined))
    expect(proxy.failed(), "records failed by the proxy").toBeGreaterThan(20)

    const records: Array<StreamRecord> = (await kinesis.readAll(stream)).map((record) => ({
      partitionKey: record.partitionKey,
      data: new TextDecoder().decode(record.data)
    }))
    const grouped = byKey(records)

    // per key, positions rise, but for records sent again (after a kill or a failed record)
    const problems: Array<string> = []
    for (const [key, bodies] of grouped) {
      const seen = new Set<string>()
      let highest: { lsn: bigint; idx: number } | undefined
      for (const body of bodies) {
        const position = `${body.commit_lsn}:${body.commit_idx}`
        const lsn = lsnValue(body.commit_lsn)
        const above = highest === undefined || lsn > highest.lsn || (lsn === highest.lsn && body.commit_idx > highest.idx)
        if (above) highest = { lsn, idx: body.commit_idx }
        else if (!seen.has(position)) problems.push(`${key}: ${position} after ${Lsn.format(highest!.lsn)}:${highest!.idx}`)
        seen.add(position)
      }
    }
    expect(problems).toEqual([])

    // the database, and the tables rebuilt in three key orders
    const database = new Map<string, Array<string>>()
    for (const table of TABLES) {
      const rows = JSON.parse(await pg.psql(`SELECT coalesce(json_agg(row_to_json(t)), '[]') FROM ${table} t`)) as Array<Record<string, unknown>>
      database.set(table, rows.map(canonical).sort())
    }
    expect(database.get("t_pk")!.length, "the workload left rows").toBeGreaterThan(5)
    const orders = [
      (keys: ReadonlyArray<string>) => [...keys].sort(),
      (keys: ReadonlyArray<string>) => [...keys].sort().reverse(),
      (keys: ReadonlyArray<string>) => shuffled(keys, 7)
    ]
    const differences = (from: ReadonlyArray<StreamRecord>): Array<string> => {
      const found: Array<string> = []
      for (const [n, order] of orders.entries()) {
        const tables = rebuild(from, order)
        for (const table of TABLES) {
          const got = rowsOf(tables, `public.${table}`)
          const want = database.get(table)!
          const extra = got.filter((row) => !want.includes(row))
          const missing = want.filter((row) => !got.includes(row))
          if (extra.length > 0 || missing.length > 0) {
            found.push(`${table}, key order ${n}: extra ${extra.join(" ")}; missing ${missing.join(" ")}`)
          }
        }
      }
      return found
    }
    const found = differences(records)
    if (found.length > 0) {
      // tell a wrong stream from a late one: read it again a little later
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      const later = (await kinesis.readAll(stream)).map((record) => ({
        partitionKey: record.partitionKey,
        data: new TextDecoder().decode(record.data)
      }))
      const late = later.length > records.length && differences(later).length === 0
      expect(found, late
        ? `the stream became complete only after the slot had confirmed its end (${later.length - records.length} records later)`
        : "the stream rebuilt differs from the database").toEqual([])
    }

    // the workload did what it claims: key changes (split), a replica-identity index, the race
    const distinct = new Map<string, RecordBody & { readonly key: string }>()
    for (const [key, bodies] of grouped) {
      for (const body of bodies) distinct.set(`${body.commit_lsn}:${body.commit_idx}`, { ...body, key })
    }
    const all = [...distinct.values()]
    const split = all.filter((body) =>
      body.action === "I" && all.some((other) =>
        other.commit_lsn === body.commit_lsn && other.commit_idx === body.commit_idx - 1 && other.action === "D" &&
        (other as { lsn?: string }).lsn === (body as { lsn?: string }).lsn))
    expect(split.length, "key-changing updates split into a delete and an insert").toBeGreaterThan(10)
    expect(all.some((body) => body.table === "t_index" && body.key.startsWith("public.t_index:[") && body.action === "D"))
      .toBe(true)
    // the race: the insert was written before the delete but commits after it
    const race = all.filter((body) => body.key === "public.t_deferred:[101]")
    const raceInsert = race.find((body) => body.action === "I" && (body.columns ?? []).some((c) => c.name === "v" && c.value === 101))!
    const raceDelete = race.filter((body) => body.action === "D").at(-1)!
    const lsnOf = (body: RecordBody) => lsnValue((body as { lsn?: string }).lsn!)
    expect(lsnOf(raceInsert) < lsnOf(raceDelete), "the insert was written first").toBe(true)
    expect(lsnValue(raceInsert.commit_lsn) > lsnValue(raceDelete.commit_lsn), "and committed last").toBe(true)

    if (transactionRecords) {
      // each transaction's COMMIT counts the changes the stream holds for it
      const changes = new Map<string, number>()
      const commits = new Map<string, number>()
      for (const body of all) {
        if (body.action === "C") commits.set(body.commit_lsn, (body as { changes?: number }).changes!)
        else if (body.action !== "B") changes.set(body.commit_lsn, (changes.get(body.commit_lsn) ?? 0) + 1)
      }
      expect(commits.size).toBeGreaterThan(100)
      expect([...commits].filter(([lsn, count]) => changes.get(lsn) !== count)).toEqual([])
      expect([...changes.keys()].filter((lsn) => !commits.has(lsn))).toEqual([])
    }
    service.kill("SIGTERM")
    expect(await service.exited).toBe(0)
  }, 240_000)
})
