/**
 * Backfills through real service processes, PostgreSQL and kinesalite, as a consumer sees them:
 * a table that held rows before the slot is requested with `cli backfill` while sessions insert,
 * update, delete and change keys of its rows; the stream is rebuilt by the README's rule (R records
 * set rows like inserts) in two key orders and must equal the table, with either plugin. Also: the
 * watermark messages never reach the stream, the service's own schema neither, and the metrics and
 * log lines say what happened.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import type { ServiceProcess } from "../../support/ServiceProcess.ts"
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


/** Waits until the slot has confirmed everything written so far. */
const caughtUp = async (slot: string, service: ServiceProcess) => {
  const target = await pg.psql("SELECT pg_current_wal_lsn()")
  await service.waitUntil(`slot ${slot} confirmed past ${target}`, async () =>
    (await pg.psql(`SELECT confirmed_flush_lsn >= '${target}' FROM pg_replication_slots WHERE slot_name = '${slot}'`)) === "t",
    { timeoutMs: 120_000, intervalMs: 200 })
}

/** Concurrent sessions changing the table while it is backfilled: inserts, updates, deletes, key changes. */
const churn = (table: string, seconds: number, session: number) =>
  pg.psql(`DO $$
    DECLARE deadline timestamptz := clock_timestamp() + interval '${seconds} seconds'; n int := 0; k int;
    BEGIN
      WHILE clock_timestamp() < deadline LOOP
        n := n + 1;
        k := 1 + floor(random() * 20000)::int;
        CASE n % 5
          WHEN 0 THEN UPDATE ${table} SET v = v + 1, note = 'u' || n WHERE region = k % 3 AND id = k;
          WHEN 1 THEN DELETE FROM ${table} WHERE region = k % 3 AND id = k;
          WHEN 2 THEN UPDATE ${table} SET id = id + 1000000 * ${session} WHERE region = k % 3 AND id = k AND id < 1000000;
          WHEN 3 THEN INSERT INTO ${table} VALUES (k % 3, 2000000 + n + 100000 * ${session}, 0, 'new') ON CONFLICT DO NOTHING;
          ELSE UPDATE ${table} SET note = repeat('x', 100) WHERE region = k % 3 AND id = k;
        END CASE;
        COMMIT;
        PERFORM pg_sleep(0.001);
      END LOOP;
    END $$`)

for (const plugin of ["wal2json", "pgoutput"] as const) {
  describe(`backfill (${plugin})`, () => {
    it("gives a consumer exactly the table after a backfill under inserts, updates, deletes and key changes", async () => {
      const table = uniqueName(`bf_${plugin}`)
      const slot = uniqueName("slot")
      const stream = uniqueName("stream")
      await kinesis.createStream(stream, 2)
      // a composite key, and rows that existed before the slot
      await pg.psql(`CREATE TABLE ${table} (region int NOT NULL, id int NOT NULL, v int NOT NULL, note text, PRIMARY KEY (region, id))`)
      await pg.psql(`INSERT INTO ${table} SELECT g % 3, g, 0, 'before ' || g FROM generate_series(1, 20000) g; ANALYZE ${table}`)
      const env = serviceEnv(pg, kinesis, { slot, stream, table }, {
        REPLICATION_PLUGIN: plugin,
        PUBLICATION_NAME: `pub_${table}`,
        LOG_LEVEL: "Debug"
      })
      if (plugin === "pgoutput") await pg.psql(`CREATE PUBLICATION pub_${table} FOR TABLE ${table}`)
      const service = processes.start(env)
      await service.waitForLog("streaming", { timeoutMs: 60_000 })

      const churning = Promise.all([churn(table, 8, 1), churn(table, 8, 2)])
      await new Promise((r) => setTimeout(r, 500))
      const requested = await cli(["backfill", `public.${table}`], env)
      expect(requested.stdout).toMatch(/backfill queued/)
      await churning
      await service.waitUntil("the backfill is done", async () =>
        (await pg.psql(`SELECT state FROM cdc_logical_replication.backfills WHERE table_name = '${table}'`)) === "done",
        { timeoutMs: 120_000, intervalMs: 200 })
      await caughtUp(slot, service)

      const records = await streamRecords(kinesis, stream)
      const bodies = records.map((r) => JSON.parse(r.data) as { action: string; prefix?: string; schema?: string })
      const backfilled = bodies.filter((b) => b.action === "R").length
      expect(backfilled).toBeGreaterThan(5_000)
      // watermarks are consumed, the own schema never streamed
      expect(bodies.filter((b) => b.action === "M")).toEqual([])
      expect(bodies.filter((b) => b.schema === "cdc_logical_replication")).toEqual([])

      // every acknowledged row is in the stream (a resumed chunk could add duplicates; none here)
      expect(await service.metric("cdc_backfill_rows_total", { table: `public.${table}` })).toBe(backfilled)
      const expected = await tableRows(pg, table)
      for (const order of [(keys: ReadonlyArray<string>) => [...keys].sort(), (keys: ReadonlyArray<string>) => [...keys].sort().reverse()]) {
        const rebuilt = rowsOf(rebuild(records, order), `public.${table}`)
        if (rebuilt.length !== expected.length && process.env.BF_DEBUG) {
          const got = new Set(rebuilt)
          const want = new Set(expected)
          const missing = expected.filter((r) => !got.has(r))
          const extra = rebuilt.filter((r) => !want.has(r))
          const ids = [...missing, ...extra].map((r) => (JSON.parse(r) as { id: number }).id)
          const related = records.filter((r) => ids.some((id) => r.data.includes(`"value":${id}}`) || r.data.includes(`"value":${id},`)))
          const fs = await import("node:fs")
          fs.writeFileSync("/tmp/bf-diff.json", JSON.stringify({ missing, extra, related, logs: service.logs().filter((l) => String(l.message).startsWith("backfill")) }, null, 1))
        }
        expect(rebuilt.length).toBe(expected.length)
        expect(rebuilt).toEqual(expected)
      }

      expect(await service.metric("cdc_backfill_rows_total", { table: `public.${table}` })).toBe(backfilled)
      expect(await service.metric("cdc_backfill_tables", { state: "done" })).toBeGreaterThanOrEqual(1)
      expect(service.logs().some((l) => l.message === "backfill_started" && l.table === `public.${table}`)).toBe(true)
      expect(service.logs().some((l) => l.message === "backfill_chunk" && l.table === `public.${table}`)).toBe(true)
      expect(service.logs().some((l) => l.message === "backfill_finished" && l.table === `public.${table}`)).toBe(true)
      const status = await cli(["status", "--json"], env)
      const view = (JSON.parse(status.stdout) as { backfills: Array<{ table: string; state: string; rowsDone: number }> }).backfills
        .find((b) => b.table === `public.${table}`)
      expect(view).toMatchObject({ state: "done", rowsDone: backfilled })
      await service.stop()
    }, 300_000)
  })
}
