/**
 * `cli backfill` and the backfills in `cli status`, run as an operator would against a real server:
 * requests are stored in the service's own schema (created on first use), a table is not queued
 * twice, tables without a usable key or that do not exist are refused, --cancel cancels, and the
 * service's own schema never reaches a wal2json slot.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { cli } from "../../support/CliProcess.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"

let pg: PgCluster
let env: Record<string, string>
const SLOT = "backfill_cli_slot"

beforeAll(async () => {
  pg = await startPostgres()
  env = { ...pg.env, REPLICATION_SLOT: SLOT }
  await pg.psql(`SELECT pg_create_logical_replication_slot('${SLOT}', 'wal2json')`)
  await pg.psql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
  await pg.psql("INSERT INTO orders SELECT g, 'n' || g FROM generate_series(1, 1000) g; ANALYZE orders")
  await pg.psql("CREATE TABLE by_code (code text NOT NULL, region int NOT NULL, v text, UNIQUE (region, code))")
  await pg.psql("CREATE TABLE keyless (a int, b text)")
  await pg.psql("CREATE TABLE nullable_unique (a int UNIQUE, b text)")
}, 120_000)
afterAll(async () => {
  await pg?.stop()
})

describe("cli backfill", () => {
  it("queues tables with a key, refuses the others with the reason, and creates its table on first use", async () => {
    expect(await pg.psql("SELECT to_regclass('cdc_logical_replication.backfills') IS NULL")).toBe("t")
    const run = await cli(["backfill", "public.orders", "by_code", "keyless", "nullable_unique", "public.missing"], env)
    expect(run.stdout).toMatch(/^public\.orders: backfill queued \(request \d+, ~1,000 rows\)$/m)
    expect(run.stdout).toMatch(/^public\.by_code: backfill queued/m)
    expect(run.stdout).toMatch(/^public\.keyless: refused: table public\.keyless has no primary key and no unique index over NOT NULL columns/m)
    expect(run.stdout).toMatch(/^public\.nullable_unique: refused: .*no unique index over NOT NULL columns/m)
    expect(run.stdout).toMatch(/^public\.missing: refused: table public\.missing does not exist$/m)
    expect(run.stderr).toContain("some tables were refused")
    expect(run.code).toBe(1)
    expect(await pg.psql(`SELECT table_schema || '.' || table_name || ' ' || state FROM cdc_logical_replication.backfills WHERE slot = '${SLOT}' ORDER BY id`))
      .toBe("public.orders queued\npublic.by_code queued")
  })

  it("does not queue a table twice", async () => {
    const run = await cli(["backfill", "public.orders"], env)
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/^public\.orders: already queued \(request \d+\)$/m)
    expect(await pg.psql(`SELECT count(*) FROM cdc_logical_replication.backfills WHERE table_name = 'orders'`)).toBe("1")
  })

  it("shows each backfill in status, text and JSON", async () => {
    const text = await cli(["status"], env)
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/Backfills\n  public\.orders  queued  0 rows of ~1,000  - rows\/s  ETA -\n  public\.by_code  queued/)
    const json = await cli(["status", "--json"], env)
    const parsed = JSON.parse(json.stdout) as { backfills: Array<Record<string, unknown>> }
    expect(parsed.backfills.map((b) => [b.table, b.state, b.rowsDone, b.estimatedRows])).toEqual([
      ["public.orders", "queued", 0, 1000],
      ["public.by_code", "queued", 0, null] // never analyzed: reltuples is -1
    ])
  })

  it("shows rows per second and the time left of a running backfill", async () => {
    await pg.psql(`UPDATE cdc_logical_replication.backfills SET state = 'running', rows_done = 250,
      started_at = now() - interval '10 seconds' WHERE table_name = 'orders'`)
    const json = await cli(["status", "--json"], env)
    const orders = (JSON.parse(json.stdout) as { backfills: Array<Record<string, unknown>> }).backfills[0]!
    expect(orders.state).toBe("running")
    // 250 rows in 10 s plus the CLI's start: 15 to 25 rows/s, and 750 rows left at that rate
    expect(orders.rowsPerSecond).toBeGreaterThanOrEqual(15)
    expect(orders.rowsPerSecond).toBeLessThanOrEqual(25)
    expect(orders.etaSeconds).toBeGreaterThanOrEqual(Math.floor(750 / (orders.rowsPerSecond as number)) - 2)
    expect(orders.etaSeconds).toBeLessThanOrEqual(Math.ceil(750 / (orders.rowsPerSecond as number)) + 2)
  })

  it("cancels with --cancel, and says when there is nothing to cancel", async () => {
    const run = await cli(["backfill", "--cancel", "public.orders", "public.keyless"], env)
    expect(run.code).toBe(0)
    expect(run.stdout).toBe("public.orders: backfill cancelled\npublic.keyless: no queued or running backfill to cancel\n")
    expect(await pg.psql(`SELECT state FROM cdc_logical_replication.backfills WHERE table_name = 'orders'`)).toBe("cancelled")
    const again = await cli(["backfill", "public.orders"], env)
    expect(again.stdout).toMatch(/^public\.orders: backfill queued/m)
  })

  it("never lets the service's own schema reach a wal2json slot", async () => {
    const run = await cli(["peek", "50"], env)
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(`"table":"orders"`)
    expect(run.stdout).not.toContain("cdc_logical_replication")
    expect(run.stdout).not.toContain("backfills")
  })

  it("fails with the server's reason when the database takes no writes", async () => {
    await pg.psql("CREATE DATABASE ro")
    await pg.psql("CREATE TABLE t (id int PRIMARY KEY)", { database: "ro" })
    await pg.psql("ALTER DATABASE ro SET default_transaction_read_only = on")
    // not a standby (pg_is_in_recovery is false): the request reaches the server, which refuses the write
    const run = await cli(["backfill", "public.t"], { ...env, PGDATABASE: "ro" })
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/query failed: .*read-only transaction/)
  })
})
