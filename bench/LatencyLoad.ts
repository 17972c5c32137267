/**
 * A steady offered load of single-row transactions, from pgbench (in the PostgreSQL bin dir) with a
 * custom script and a rate limit (-R): inserts of ~300-600-byte rows into their own table.
 */
import { execFile as execFileCb } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { promisify } from "node:util"
import type { PgCluster } from "../support/PostgresHarness.ts"

const execFile = promisify(execFileCb)

export const table = "public.bench_events"

export const createLoadSchema = (pg: PgCluster): Promise<string> =>
  pg.psql(`
    CREATE TABLE IF NOT EXISTS ${table} (
      id bigserial PRIMARY KEY,
      account integer NOT NULL,
      status text NOT NULL,
      payload text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`)

const script = `\\set n random(1, 1000000000)
INSERT INTO ${table} (account, status, payload) VALUES (:n % 1000, 'new', rpad(md5(:n::text), 10 + :n % 200, md5((:n + 1)::text)));
`

export interface LoadResult {
  readonly transactions: number
  readonly seconds: number
  readonly achievedTps: number
}

/** Runs `rate` single-row transactions per second for `seconds` over `clients` connections. */
export const runLoad = async (
  pg: PgCluster,
  options: { readonly rate: number; readonly seconds: number; readonly clients: number; readonly workDir: string }
): Promise<LoadResult> => {
  const file = Path.join(options.workDir, "bench-load.sql")
  Fs.writeFileSync(file, script)
  const { stdout } = await execFile(Path.join(pg.binDir, "pgbench"), [
    "-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-n", "-f", file,
    "-R", String(options.rate), "-T", String(options.seconds),
    "-c", String(options.clients), "-j", String(Math.min(2, options.clients)),
    pg.database
  ], { env: { ...process.env, PGPASSWORD: pg.password, PGSSLMODE: "disable" }, timeout: (options.seconds + 120) * 1000 })
  const transactions = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1])
  const tps = Number(/tps = ([\d.]+)/.exec(stdout)?.[1])
  if (!Number.isFinite(transactions) || !Number.isFinite(tps)) throw new Error(`could not read pgbench's output:\n${stdout}`)
  return { transactions, seconds: options.seconds, achievedTps: tps }
}
