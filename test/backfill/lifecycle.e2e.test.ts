/**
 * Backfills through failures and changes of plan, with real service processes: the leader
 * SIGKILLed mid-backfill while the table is written (the standby resumes from the last acknowledged
 * chunk and the rebuilt table equals the database); a request made while another runs is queued;
 * --cancel stops a running one; a table dropped or truncated during its backfill ends with a clear
 * outcome; INITIAL_BACKFILL backfills the streamed tables when the service creates its slot.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, type ServiceProcess } from "../../support/ServiceProcess.ts"
import { rebuild, rowsOf } from "../contract/Consumer.ts"
import { processTracker, serviceEnv, uniqueName } from "../e2e/E2eFixture.ts"
import { cli } from "../../support/CliProcess.ts"
import { streamRecords, tableRows } from "./Readback.ts"

let pg: PgCluster
let kinesis: Kinesalite
const processes = processTracker()

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres(), startKinesalite()])
}, 120_000)
afterAll(async () => {
  await processes.killAll()
  await kinesis?.stop()
  await pg?.stop()
})

const stateOf = (table: string) =>
  pg.psql(`SELECT coalesce(string_agg(state, ',' ORDER BY id), '') FROM cdc_logical_replication.backfills WHERE table_name = '${table}'`)

const caughtUp = async (slot: string, service: ServiceProcess) => {
  const target = await pg.psql("SELECT pg_current_wal_lsn()")
  await service.waitUntil(`slot ${slot} confirmed past ${target}`, async () =>
    (await pg.psql(`SELECT confirmed_flush_lsn >= '${target}' FROM pg_replication_slots WHERE slot_name = '${slot}'`)) === "t",
    { timeoutMs: 120_000, intervalMs: 200 })
}

const setup = async (rows: number, overrides: Record<string, string> = {}) => {
  const table = uniqueName("bf")
  const slot = uniqueName("slot")
  const stream = uniqueName("stream")
  await kinesis.createStream(stream, 2)
  await pg.psql(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, note text)`)
  await pg.psql(`INSERT INTO ${table} SELECT g, 0, repeat('n', 50) FROM generate_series(1, ${rows}) g; ANALYZE ${table}`)
  const env = serviceEnv(pg, kinesis, { slot, stream, table }, overrides)
  return { table, slot, stream, env }
}

describe("backfill lifecycle (real processes)", () => {
  it("SIGKILL of the leader mid-backfill: the standby resumes from the last acknowledged chunk; the rebuilt table equals the database", async () => {
    const { env, slot, stream, table } = await setup(100_000, {
      LEADER_ELECTION: "true", LEADER_POLL_INTERVAL_MS: "300", LEADER_WATCHDOG_INTERVAL_MS: "300"
    })
    const first = processes.start(env)
    await first.waitForLog("streaming", { timeoutMs: 60_000 })
    const second = processes.start(env)
    await second.waitForLog("leader_campaign", { timeoutMs: 60_000 })
    const writing = pg.psql(`DO $$
      DECLARE deadline timestamptz := clock_timestamp() + interval '12 seconds'; n int := 0; k int;
      BEGIN
        WHILE clock_timestamp() < deadline LOOP
          n := n + 1;
          k := 1 + floor(random() * 100000)::int;
          CASE n % 4
            WHEN 0 THEN UPDATE ${table} SET v = v + 1 WHERE id = k;
            WHEN 1 THEN DELETE FROM ${table} WHERE id = k;
            WHEN 2 THEN UPDATE ${table} SET id = id + 1000000 WHERE id = k;
            ELSE INSERT INTO ${table} VALUES (2000000 + n, 1, 'new') ON CONFLICT DO NOTHING;
          END CASE;
          COMMIT;
          PERFORM pg_sleep(0.002);
        END LOOP;
      END $$`)
    expect((await cli(["backfill", `public.${table}`], env)).stdout).toMatch(/backfill queued/)
    const doneBefore = await eventually("the leader acknowledged a few chunks", async () => {
      const done = Number(await pg.psql(`SELECT rows_done FROM cdc_logical_replication.backfills WHERE table_name = '${table}'`))
      return done >= 20_000 ? done : undefined
    }, 120_000, 50)
    first.kill("SIGKILL")
    expect(await first.exited).toBe("SIGKILL")
    expect(doneBefore).toBeLessThan(95_000)
    const resumed = await second.waitForLog("backfill_resumed", { timeoutMs: 60_000 })
    expect(Number(resumed.rowsDone)).toBeGreaterThanOrEqual(doneBefore)
    await writing
    await second.waitUntil("the backfill is done", async () => (await stateOf(table)) === "done", { timeoutMs: 240_000, intervalMs: 300 })
    await caughtUp(slot, second)
    const records = await streamRecords(kinesis, stream)
    const expected = await tableRows(pg, table)
    for (const order of [(k: ReadonlyArray<string>) => [...k].sort(), (k: ReadonlyArray<string>) => [...k].sort().reverse()]) {
      expect(rowsOf(rebuild(records, order), `public.${table}`)).toEqual(expected)
    }
    await second.stop()
  }, 400_000)

  it("queues a request made while another runs, cancels a running one, and ends a dropped or truncated table's backfill clearly", async () => {
    const a = await setup(300_000)
    const others = ["b", "c", "d"].map(() => uniqueName("bf"))
    // big enough to be caught running (cancel, drop, truncate), except d, which runs to the end
    for (const [i, name] of others.entries()) {
      await pg.psql(`CREATE TABLE ${name} (id int PRIMARY KEY, note text);
        INSERT INTO ${name} SELECT g, 'x' FROM generate_series(1, ${i === 2 ? 20_000 : 200_000}) g`)
    }
    const [b, c, d] = others as [string, string, string]
    const env = { ...a.env, WAL2JSON_ADD_TABLES: [a.table, ...others].map((t) => `public.${t}`).join(",") }
    const service = processes.start(env)
    await service.waitForLog("streaming", { timeoutMs: 60_000 })
    await cli(["backfill", `public.${a.table}`, `public.${b}`, `public.${c}`, `public.${d}`], env)
    await eventually("a runs while b, c and d wait", async () =>
      (await stateOf(a.table)) === "running" && (await stateOf(b)) === "queued" && (await stateOf(c)) === "queued", 60_000, 20)
    // cancel a while it runs: b starts
    const cancelled = await cli(["backfill", "--cancel", `public.${a.table}`], env)
    expect(cancelled.stdout).toContain("backfill cancelled")
    await service.waitForLog("backfill_cancelled", { timeoutMs: 60_000 })
    expect(await stateOf(a.table)).toBe("cancelled")
    // b is dropped mid-backfill
    await eventually("b runs", async () => (await stateOf(b)) === "running", 60_000, 20)
    await pg.psql(`DROP TABLE ${b}`)
    await service.waitUntil("b failed", async () => (await stateOf(b)) === "failed", { timeoutMs: 60_000 })
    expect(await pg.psql(`SELECT error FROM cdc_logical_replication.backfills WHERE table_name = '${b}'`))
      .toMatch(new RegExp(`table public\\.${b} does not exist \\(dropped during its backfill\\)|reading public\\.${b}`))
    expect(service.logs().some((l) => l.message === "backfill_failed" && l.table === `public.${b}`)).toBe(true)
    // c is truncated mid-backfill: it ends done, and the stream holds the truncate after c's backfilled rows
    await eventually("c runs", async () => (await stateOf(c)) === "running", 60_000, 20)
    await pg.psql(`TRUNCATE ${c}`)
    await service.waitUntil("c done", async () => (await stateOf(c)) === "done", { timeoutMs: 60_000 })
    await service.waitUntil("d done", async () => (await stateOf(d)) === "done", { timeoutMs: 120_000 })
    await caughtUp(a.slot, service)
    const records = await streamRecords(kinesis, a.stream)
    const bodies = records.map((r) => JSON.parse(r.data) as { action: string; table?: string; commit_lsn: string })
    const lastR = bodies.filter((x) => x.action === "R" && x.table === c).map((x) => BigInt(`0x${x.commit_lsn.replace("/", "")}`))
    const truncate = bodies.find((x) => x.action === "T" && x.table === c)
    expect(truncate).toBeDefined()
    // no backfilled row of c after its truncate: a consumer that applies T ends with c empty, as the table is
    expect(lastR.every((lsn) => lsn < BigInt(`0x${truncate!.commit_lsn.replace("/", "")}`))).toBe(true)
    expect(await service.metric("cdc_backfill_tables", { state: "failed" })).toBe(1)
    expect(await service.metric("cdc_backfill_tables", { state: "cancelled" })).toBe(1)
    await service.stop()
  }, 400_000)

  it("a table altered during its backfill: a new column is read from the next chunk on; a dropped key ends it as failed", async () => {
    const a = await setup(150_000)
    const b = uniqueName("bf")
    await pg.psql(`CREATE TABLE ${b} (id int PRIMARY KEY, note text); INSERT INTO ${b} SELECT g, 'x' FROM generate_series(1, 200000) g`)
    const env = { ...a.env, WAL2JSON_ADD_TABLES: `public.${a.table},public.${b}` }
    const service = processes.start(env)
    await service.waitForLog("streaming", { timeoutMs: 60_000 })
    await cli(["backfill", `public.${a.table}`, `public.${b}`], env)
    await eventually("a runs", async () => (await stateOf(a.table)) === "running", 60_000, 20)
    await pg.psql(`ALTER TABLE ${a.table} ADD COLUMN extra int NOT NULL DEFAULT 7`)
    await service.waitUntil("a done", async () => (await stateOf(a.table)) === "done", { timeoutMs: 120_000 })
    await eventually("b runs", async () => (await stateOf(b)) === "running", 60_000, 20)
    await pg.psql(`ALTER TABLE ${b} DROP CONSTRAINT ${b}_pkey`)
    await service.waitUntil("b failed", async () => (await stateOf(b)) === "failed", { timeoutMs: 60_000 })
    expect(await pg.psql(`SELECT error FROM cdc_logical_replication.backfills WHERE table_name = '${b}'`))
      .toMatch(/has no primary key and no unique index over NOT NULL columns.*\(altered during its backfill\)/)
    await caughtUp(a.slot, service)
    type Body = { action: string; table: string; commit_lsn: string; commit_idx: number; columns: Array<{ name: string; value: unknown }> }
    const position = (r: Body) => (BigInt(`0x${r.commit_lsn.split("/")[0]}`) << 32n) + BigInt(`0x${r.commit_lsn.split("/")[1]}`)
    // in commit order (the stream is read shard by shard)
    const rows = (await streamRecords(kinesis, a.stream)).map((r) => JSON.parse(r.data) as Body)
      .filter((r) => r.action === "R" && r.table === a.table)
      .sort((x, y) => (position(x) < position(y) ? -1 : position(x) > position(y) ? 1 : x.commit_idx - y.commit_idx))
    const withExtra = rows.filter((r) => r.columns.some((c) => c.name === "extra" && c.value === 7))
    expect(withExtra.length).toBeGreaterThan(0)
    expect(withExtra.length).toBeLessThan(150_000)
    // once a chunk carries the column, every later one does
    const firstWith = rows.findIndex((r) => r.columns.some((c) => c.name === "extra"))
    expect(rows.slice(firstWith).every((r) => r.columns.some((c) => c.name === "extra"))).toBe(true)
    await service.stop()
  }, 300_000)

  it("publishes wide rows near the record limit whole, and one over it by OVERSIZED_RECORD_POLICY (drop)", async () => {
    const { env, slot, stream, table } = await setup(0)
    // random text does not compress: each value is as wide in the record as in the table
    await pg.psql(`INSERT INTO ${table} SELECT g, 0, (SELECT string_agg(md5(s::text || random()::text), '') FROM generate_series(1, 22000) s WHERE g > 0)
      FROM generate_series(1, 40) g`)
    await pg.psql(`INSERT INTO ${table} SELECT 41, 0, (SELECT string_agg(md5(s::text || random()::text), '') FROM generate_series(1, 40000) s)`)
    const service = processes.start(env)
    await service.waitForLog("streaming", { timeoutMs: 60_000 })
    await cli(["backfill", `public.${table}`], env)
    await service.waitUntil("the backfill is done", async () => (await stateOf(table)) === "done", { timeoutMs: 120_000 })
    await caughtUp(slot, service)
    const bodies = (await streamRecords(kinesis, stream)).map((r) => JSON.parse(r.data) as { action: string; columns: Array<{ name: string; value: unknown }> })
    const rows = bodies.filter((b) => b.action === "R")
    expect(rows.length).toBe(40)
    expect(rows.every((b) => (b.columns.find((c) => c.name === "note")!.value as string).length === 704_000)).toBe(true)
    const dropped = service.logs().filter((l) => l.message === "change_dropped")
    expect(dropped.map((l) => [l.reason, l.table])).toEqual([["oversized", table]])
    await service.stop()
  }, 200_000)

  it("INITIAL_BACKFILL=true backfills every streamed table when the service creates its slot", async () => {
    const { env, slot, stream, table } = await setup(3_000, { INITIAL_BACKFILL: "true" })
    const service = processes.start(env)
    await service.waitForLog("initial_backfill_requested", { timeoutMs: 60_000 })
    await service.waitUntil("the backfill is done", async () => (await stateOf(table)) === "done", { timeoutMs: 60_000 })
    await caughtUp(slot, service)
    const records = await streamRecords(kinesis, stream)
    expect(rowsOf(rebuild(records, (k) => k), `public.${table}`)).toEqual(await tableRows(pg, table))
    await service.stop()
    // a restart on the existing slot does not backfill again
    const again = processes.start(env)
    await again.waitForLog("streaming", { timeoutMs: 60_000 })
    await new Promise((r) => setTimeout(r, 2_000))
    expect(again.logs().some((l) => l.message === "initial_backfill_requested")).toBe(false)
    expect(await stateOf(table)).toBe("done")
    await again.stop()
  }, 200_000)
})
