/**
 * `npm run demo -- --seconds N` as a user runs it: with no configuration (embedded PostgreSQL,
 * pgoutput) and with PGHOST set (that database, wal2json). It must exit 0 and report that every
 * change it wrote (more than none) arrived in the stream, that the table it pre-filled was backfilled
 * whole, and leave the user's database as it was.
 */
import { execFile } from "node:child_process"
import * as Path from "node:path"
import { describe, expect, it } from "vitest"
import { repoRoot } from "../../support/Paths.ts"
import { startPostgres } from "../../support/PostgresHarness.ts"

const demo = (
  args: ReadonlyArray<string>,
  pgEnv: Readonly<Record<string, string>> = {}
): Promise<{ code: number | null; stdout: string; stderr: string }> =>
  new Promise((resolve) => {
    // only the PG* variables given: without them the demo must bring its own PostgreSQL
    const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith("PG")))
    execFile("npm", ["run", "--silent", "demo", "--", ...args], {
      cwd: repoRoot,
      env: { ...env, ...pgEnv, PATH: `${Path.join(repoRoot, "node_modules", ".bin")}:${process.env.PATH ?? ""}` },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 110_000
    }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
  })

const expectEveryChangeArrived = (result: { code: number | null; stdout: string; stderr: string }): void => {
  const { code, stdout, stderr } = result
  expect(code, `demo failed:\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`).toBe(0)
  const written = Number(/written: (\d+) changes/.exec(stdout)?.[1])
  const arrived = Number(/arrived: (\d+) of them read back from the stream \((\d+) missing/.exec(stdout)?.[1])
  const missing = Number(/\((\d+) missing/.exec(stdout)?.[1])
  expect(written).toBeGreaterThan(0)
  expect(arrived).toBe(written)
  expect(missing).toBe(0)
  expect(stdout).toContain(`RESULT: OK — every change written (${written}) arrived in the stream, and every row there before it (5000) was backfilled`)
  expect(stdout).toContain("backfilled: 5000 of the 5000 rows that were in the database before the slot")
  // a plain line per second when stdout is not a terminal
  expect(stdout).toMatch(/\[demo +\d+s\] written \d+ arrived \d+/)
}

describe("npm run demo", () => {
  it("with no configuration: embedded PostgreSQL and pgoutput, every change written arrives", async () => {
    const result = await demo(["--seconds", "5"])
    expectEveryChangeArrived(result)
    expect(result.stdout).toMatch(/embedded PostgreSQL/)
  }, 120_000)

  it("with PGHOST: that database and wal2json, and it leaves no slot or schema behind", async () => {
    const pg = await startPostgres()
    try {
      const result = await demo(["--seconds", "3"], pg.env)
      expectEveryChangeArrived(result)
      expect(result.stdout).toContain("slot cdc_demo_wal2json, wal2json")
      expect(await pg.psql("SELECT count(*) FROM pg_replication_slots")).toBe("0")
      expect(await pg.psql("SELECT count(*) FROM pg_namespace WHERE nspname IN ('cdc_demo', 'cdc_logical_replication')")).toBe("0")
    } finally {
      await pg.stop()
    }
  }, 120_000)
})
