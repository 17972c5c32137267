/**
 * Backfill (issue 13): a table of 1,000,000 rows (100,000 quick) that predates the slot, backfilled
 * while pgbench offers 2,000 single-row transactions/s; live commit → ack p99 (the endpoint leaves
 * the backfilled `R` records out) during the backfill against the same load without one, and the
 * backfill's rows/s against `COPY (SELECT * FROM …) TO STDOUT` of the same table (the ceiling).
 */
import { execFile as execFileCb } from "node:child_process"
import * as Path from "node:path"
import { promisify } from "node:util"
import type { Scenario } from "../Bench.ts"
import { createLoadSchema, runLoad } from "../LatencyLoad.ts"
import * as Backlog from "../Backlog.ts"

const execFile = promisify(execFileCb)
const slot = "bench_backfill"
const table = "public.bench_backfill"
const liveRate = 2_000

export const scenario: Scenario = {
  name: "backfill",
  backlogSlots: () => [],
  run: async (bench) => {
    const { pg, settings } = bench
    const rows = settings.quick ? 100_000 : 1_000_000
    const seconds = settings.quick ? 10 : 30
    await createLoadSchema(pg)
    await pg.psql(`CREATE TABLE ${table} (id bigint PRIMARY KEY, account int NOT NULL, status text NOT NULL, payload text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now())`)
    await pg.psql(`INSERT INTO ${table} (id, account, status, payload)
      SELECT g, g % 1000, 'old', rpad(md5(g::text), 10 + g % 200, md5((g + 1)::text)) FROM generate_series(1, ${rows}) g`)
    await pg.psql(`VACUUM ANALYZE ${table}`)
    bench.log(`backfill: ${rows.toLocaleString("en-US")} rows; COPY (SELECT …) TO STDOUT of them first (the ceiling)`)
    const copyStarted = performance.now()
    await execFile(Path.join(pg.binDir, "psql"), ["-X", "-q", "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-d", pg.database,
      "-c", `COPY (SELECT * FROM ${table}) TO STDOUT`, "-o", "/dev/null"],
      { env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" }, maxBuffer: 1024 * 1024 })
    const copySeconds = (performance.now() - copyStarted) / 1000

    await Backlog.createSlot(pg, slot)
    const endpoint = await bench.startEndpoint({ latencyMs: 0 })
    const service = bench.startService({ slot, plugin: "wal2json", endpointUrl: endpoint.url })
    await pg.psql("INSERT INTO public.bench_events (account, status, payload) VALUES (0, 'warm-up', 'x')")
    await service.waitUntil("the service to publish a first change", async () => (await endpoint.stats()).records > 0,
      { timeoutMs: 60_000 })

    // the live load alone
    await endpoint.reset()
    bench.log(`backfill: ${liveRate} transactions/s for ${seconds} s without a backfill`)
    const alone = await runLoad(pg, { rate: liveRate, seconds, clients: 8, workDir: bench.workDir })
    await service.waitUntil("the load's changes to be acknowledged", async () => (await endpoint.stats()).records >= alone.transactions,
      { timeoutMs: 120_000 })
    const without = (await endpoint.stats()).latencyMs

    // the same load during a backfill
    await endpoint.reset()
    const requested = Date.now()
    const { stdout } = await execFile(process.execPath, [Path.join(import.meta.dirname, "..", "..", "src", "cli", "main.ts"), "backfill", table], {
      env: { ...process.env, ...pg.env, REPLICATION_SLOT: slot }
    })
    if (!/backfill queued/.test(stdout)) throw new Error(`the backfill was not queued: ${stdout}`)
    const started = await service.waitForLog("backfill_started", { timeoutMs: 60_000 })
    bench.log(`backfill: ${liveRate} transactions/s for ${seconds} s during the backfill`)
    const during = await runLoad(pg, { rate: liveRate, seconds, clients: 8, workDir: bench.workDir })
    const duringStats = await endpoint.stats()
    const finished = await service.waitForLog("backfill_finished", { timeoutMs: 1_800_000 })
    const backfillSeconds = (Date.parse(finished.timestamp) - Date.parse(started.timestamp)) / 1000
    await service.waitUntil("every backfilled row and live change to be acknowledged", async () => {
      const stats = await endpoint.stats()
      return stats.backfilledRecords >= rows && stats.records - stats.backfilledRecords >= during.transactions
    }, { timeoutMs: 600_000 })
    const finishedWithin = (Date.parse(finished.timestamp) - requested) / 1000
    await service.stop()
    await endpoint.stop()
    if (without === undefined || duringStats.latencyMs === undefined) throw new Error("the endpoint found no commit timestamps")
    return {
      backfill: [{
        rows,
        seconds: backfillSeconds,
        rowsPerSecond: rows / backfillSeconds,
        copySeconds,
        copyRowsPerSecond: rows / copySeconds,
        liveRate,
        loadSeconds: seconds,
        /** Whether the backfill still ran when the load ended (else the "during" figure covers less than the backfill). */
        backfillOutlastedLoad: finishedWithin > seconds,
        liveWithoutMs: without,
        liveDuringMs: duringStats.latencyMs
      }]
    }
  }
}
