/**
 * Chunk sizes against a real service: a backfill on an idle stream reads chunks of up to 5,000
 * rows; one while live changes stream reads at most BACKFILL_CHUNK_ROWS (the first chunk aside,
 * 500 at most either way); both end with every row published.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import type { LogLine, ServiceProcess } from "../../support/ServiceProcess.ts"
import { cli } from "../../support/CliProcess.ts"
import { processTracker, serviceEnv, uniqueName } from "../e2e/E2eFixture.ts"

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

const rows = 20_000

const chunksOf = (service: ServiceProcess, table: string): Array<LogLine> =>
  service.logs().filter((l) => l.message === "backfill_chunk" && l["table"] === `public.${table}`)

const backfill = async (service: ServiceProcess, env: Record<string, string>, table: string) => {
  expect((await cli(["backfill", `public.${table}`], env)).stdout).toMatch(/backfill queued/)
  await service.waitForLog("backfill_finished", { timeoutMs: 120_000, where: (l) => l["table"] === `public.${table}` })
  const chunks = chunksOf(service, table)
  expect(chunks.reduce((sum, c) => sum + Number(c["rows"]), 0)).toBe(rows)
  return chunks.map((c) => Number(c["rows"]))
}

describe("backfill chunk sizes", () => {
  it("grow to 5,000 rows on an idle stream and stay at BACKFILL_CHUNK_ROWS while live changes stream", async () => {
    const idle = uniqueName("bfidle")
    const busy = uniqueName("bfbusy")
    const slot = uniqueName("slot")
    const stream = uniqueName("stream")
    await kinesis.createStream(stream, 2)
    for (const table of [idle, busy]) {
      await pg.psql(`CREATE TABLE ${table} (id int PRIMARY KEY, v int NOT NULL, note text)`)
      await pg.psql(`INSERT INTO ${table} SELECT g, 0, repeat('n', 50) FROM generate_series(1, ${rows}) g; ANALYZE ${table}`)
    }
    const env = serviceEnv(pg, kinesis, { slot, stream, table: idle }, {
      WAL2JSON_ADD_TABLES: `public.${idle},public.${busy}`, LOG_LEVEL: "Debug", BACKFILL_CHUNK_ROWS: "700"
    })
    const service = processes.start(env)
    await service.waitForLog("streaming", { timeoutMs: 60_000 })

    // nothing else is written: past the first chunk, chunks of 5,000 rows
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    const idleChunks = await backfill(service, env, idle)
    expect(idleChunks[0]).toBeLessThanOrEqual(500)
    expect(Math.max(...idleChunks)).toBe(5_000)

    // a change every few milliseconds while the other table is backfilled: chunks of 700 rows at most
    const writing = pg.psql(`DO $$
      DECLARE deadline timestamptz := clock_timestamp() + interval '30 seconds';
      BEGIN
        WHILE clock_timestamp() < deadline
          AND NOT EXISTS (SELECT 1 FROM cdc_logical_replication.backfills WHERE table_name = '${busy}' AND state = 'done') LOOP
          UPDATE ${busy} SET v = v + 1 WHERE id = 1 + floor(random() * ${rows})::int;
          COMMIT;
          PERFORM pg_sleep(0.003);
        END LOOP;
      END $$`)
    await new Promise((resolve) => setTimeout(resolve, 500))
    const busyChunks = await backfill(service, env, busy)
    await writing
    expect(busyChunks[0]).toBeLessThanOrEqual(500)
    expect(Math.max(...busyChunks)).toBeLessThanOrEqual(700)
    expect(busyChunks.length).toBeGreaterThanOrEqual(Math.ceil(rows / 700))
    await service.stop()
  }, 240_000)
})
