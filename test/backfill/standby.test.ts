/**
 * A backfill needs the primary: against a hot standby (a physical replica made with
 * pg_basebackup), `cli backfill` refuses with the reason and what to do, and writes nothing.
 */
import { execFile as execFileCb, execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { freePort } from "../../support/Ports.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { cli } from "../../support/CliProcess.ts"

const execFile = promisify(execFileCb)
const isRoot = typeof process.getuid === "function" && process.getuid() === 0
const shellQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`

/** Runs a server binary, as the postgres user when we are root (as the harness does). */
const asOwner = async (bin: string, args: ReadonlyArray<string>, env: Record<string, string> = {}): Promise<void> => {
  if (isRoot) {
    const exports = Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join(" ")
    await execFile("su", ["postgres", "-s", "/bin/sh", "-c", `${exports} ${[bin, ...args].map(shellQuote).join(" ")}`])
  } else await execFile(bin, [...args], { env: { ...process.env, ...env } })
}

let pg: PgCluster
let standbyDir: string
let standbyPort: number

beforeAll(async () => {
  pg = await startPostgres()
  await pg.psql("CREATE TABLE orders (id int PRIMARY KEY, note text); INSERT INTO orders VALUES (1, 'a')")
  const root = Fs.mkdtempSync(Path.join(Os.tmpdir(), "cdc-standby-"))
  if (isRoot) execFileSync("chown", ["postgres", root])
  standbyDir = Path.join(root, "data")
  standbyPort = await freePort()
  await asOwner(Path.join(pg.binDir, "pg_basebackup"), ["-h", pg.host, "-p", String(pg.port), "-U", pg.user, "-D", standbyDir, "-R", "-X", "stream"],
    { PGPASSWORD: pg.password })
  await asOwner("sh", ["-c", `echo "port = ${standbyPort}" >> ${shellQuote(Path.join(standbyDir, "postgresql.auto.conf"))}`])
  await asOwner(Path.join(pg.binDir, "pg_ctl"), ["-D", standbyDir, "-l", Path.join(root, "log"), "-w", "-t", "60", "start"])
}, 120_000)

afterAll(async () => {
  if (standbyDir !== undefined) {
    await asOwner(Path.join(pg.binDir, "pg_ctl"), ["-D", standbyDir, "-m", "immediate", "-w", "stop"]).catch(() => undefined)
    Fs.rmSync(Path.dirname(standbyDir), { recursive: true, force: true })
  }
  await pg?.stop()
})

describe("backfill on a read-only replica", () => {
  it("is refused with the reason and what to do; the primary takes it", async () => {
    const standbyEnv = { ...pg.env, PGPORT: String(standbyPort), REPLICATION_SLOT: "s" }
    expect(await pg.psql("SELECT pg_is_in_recovery()", {})).toBe("f")
    const run = await cli(["backfill", "public.orders"], standbyEnv)
    expect(run.code).toBe(1)
    expect(run.stderr).toContain("cannot request a backfill: the server is read-only (a hot standby)")
    expect(run.stderr).toContain("point PGHOST at the primary")
    const onPrimary = await cli(["backfill", "public.orders"], { ...pg.env, REPLICATION_SLOT: "s" })
    expect(onPrimary.stdout).toMatch(/public\.orders: backfill queued/)
  })
})
