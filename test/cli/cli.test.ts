import { type ChildProcess, spawn } from "node:child_process"
import * as Path from "node:path"
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as LockKey from "../../src/leader/LockKey.ts"
import { cli } from "../../support/CliProcess.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"

let pg: PgCluster
let env: Record<string, string>
const SLOT = "cli_slot"

beforeAll(async () => {
  pg = await startPostgres()
  env = { ...pg.env, REPLICATION_SLOT: SLOT }
  await pg.psql("CREATE TABLE orders (id int PRIMARY KEY, note text); CREATE TABLE journal (line text)")
  await pg.psql(`SELECT pg_create_logical_replication_slot('${SLOT}', 'wal2json')`)
  await pg.psql("INSERT INTO orders SELECT g, 'note ' || g FROM generate_series(1, 3) g")
  await pg.psql("INSERT INTO orders VALUES (4, 'four')")
})
afterAll(async () => {
  await pg?.stop()
})

const slotRow = () =>
  pg.psql(`SELECT restart_lsn || ' ' || confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${SLOT}'`)

describe("cli status", () => {
  it("prints the slot's plugin, LSNs, retained WAL and unconfirmed gap, and no consumer or leader", async () => {
    const [restart, confirmed] = (await slotRow()).split(" ")
    const run = await cli(["status"], env)
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    expect(run.stdout).toContain(`Replication slot "${SLOT}"`)
    expect(run.stdout).toMatch(/plugin:\s+wal2json \(logical\)/)
    expect(run.stdout).toMatch(/active:\s+no/)
    expect(run.stdout).toContain(`restart LSN:         ${restart}`)
    expect(run.stdout).toContain(`confirmed flush LSN: ${confirmed}`)
    expect(run.stdout).toMatch(/WAL retained:\s+\d+(\.\d+)? (bytes|kB|MB) \([\d,]+ bytes\)/)
    expect(run.stdout).toMatch(/not yet confirmed:\s+\d+(\.\d+)? (bytes|kB|MB) \([\d,]+ bytes\)/)
    expect(run.stdout).toMatch(/Consumer\n  none/)
    expect(run.stdout).toMatch(/Leader \(advisory lock -?\d+\)\n  none/)
    // the table whose rows cannot be followed by key, as the service warns at start
    expect(run.stdout).toMatch(/Tables without a row key[^\n]*\n  public\.journal: no primary key or replica identity index/)
    expect(run.stdout).not.toContain("public.orders:")
    const json = JSON.parse((await cli(["status", "--json"], env)).stdout) as { tablesWithoutRowKey: unknown }
    expect(json.tablesWithoutRowKey).toEqual([
      { table: "public.journal", reason: "no primary key or replica identity index: changes use PARTITION_KEY_FALLBACK" }
    ])
  })

  it("shows who consumes the slot and who holds the leader lock; --json gives the same as data", async () => {
    const key = LockKey.derive(pg.database, SLOT)
    const children: Array<ChildProcess> = []
    try {
      // a walsender on the slot, and a session holding the leader lock
      children.push(spawn(Path.join(pg.binDir, "pg_recvlogical"), ["-d", pg.database, "--slot", SLOT, "--start", "-f", "/dev/null"], {
        env: { ...process.env, ...pg.env, PGAPPNAME: "cli-test-consumer" },
        stdio: "ignore"
      }))
      children.push(spawn("psql", ["-X", "-q", "-c", `SELECT pg_advisory_lock(${key}); SELECT pg_sleep(60)`], {
        env: { ...process.env, ...pg.env, PGAPPNAME: "cli-test-leader" },
        stdio: "ignore"
      }))
      const deadline = Date.now() + 15_000
      while (
        (await pg.psql(
          `SELECT (SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${SLOT}' AND active) + ` +
            `(SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted)`
        )) !== "2"
      ) {
        if (Date.now() > deadline) throw new Error("consumer and lock holder did not appear")
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      const consumerPid = await pg.psql(`SELECT active_pid FROM pg_replication_slots WHERE slot_name = '${SLOT}'`)
      const leaderPid = await pg.psql("SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted")

      const run = await cli(["status"], env)
      expect(run.code).toBe(0)
      expect(run.stdout).toMatch(new RegExp(`active:\\s+yes \\(pid ${consumerPid}\\)`))
      expect(run.stdout).toMatch(new RegExp(`Consumer\\n  pid ${consumerPid}, user postgres, application cli-test-consumer, client 127\\.0\\.0\\.1, state (streaming|catchup)`))
      expect(run.stdout).toMatch(new RegExp(`Leader \\(advisory lock ${key}\\)\\n  pid ${leaderPid}, user postgres, application cli-test-leader, client 127\\.0\\.0\\.1`))

      const json = await cli(["status", "--json"], env)
      expect(json.code).toBe(0)
      const data = JSON.parse(json.stdout)
      expect(data.slot).toMatchObject({ slot: SLOT, plugin: "wal2json", active: true, activePid: Number(consumerPid) })
      expect(typeof data.slot.retainedBytes).toBe("number")
      expect(data.consumer).toMatchObject({ pid: Number(consumerPid), applicationName: "cli-test-consumer" })
      expect(data.leader).toMatchObject({ lockKey: String(key), holder: { pid: Number(leaderPid), applicationName: "cli-test-leader" } })
    } finally {
      for (const child of children) child.kill("SIGTERM")
    }
    // wait for the walsender to let go before the peek tests
    const deadline = Date.now() + 15_000
    while ((await pg.psql(`SELECT active FROM pg_replication_slots WHERE slot_name = '${SLOT}'`)) !== "f") {
      if (Date.now() > deadline) throw new Error("slot still active")
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  })

  it("uses LEADER_LOCK_KEY when set", async () => {
    const run = await cli(["status"], { ...env, LEADER_LOCK_KEY: "-42" })
    expect(run.code).toBe(0)
    expect(run.stdout).toContain("Leader (advisory lock -42)")
  })
})

describe("cli peek", () => {
  it("shows the next N messages without consuming them", async () => {
    const before = await slotRow()
    const first = await cli(["peek", "3"], env)
    expect(first.stderr).toBe("")
    expect(first.code).toBe(0)
    const lines = first.stdout.trimEnd().split("\n")
    expect(lines[0]).toBe(`Next 3 message(s) of slot "${SLOT}" (wal2json; peeked, not consumed)`)
    const changes = lines.slice(1).map((line) => {
      const match = /^([0-9A-F]+\/[0-9A-F]+)  xid (\d+)  (\{.*\})$/.exec(line)
      expect(match, line).not.toBeNull()
      return JSON.parse(match![3]!)
    })
    expect(changes.map((c) => c.action)).toEqual(["B", "I", "I"])
    expect(changes[1]).toMatchObject({ table: "orders", columns: expect.arrayContaining([{ name: "id", type: "integer", value: 1 }]) })
    expect(changes[1].pk).toBeDefined()

    // not consumed: the slot did not move, and peeking again shows the same
    expect(await slotRow()).toBe(before)
    const again = await cli(["peek", "3"], env)
    expect(again.stdout).toBe(first.stdout)

    const json = await cli(["peek", "6", "--json"], env)
    const data = JSON.parse(json.stdout)
    expect(data.changes.map((c: { readonly data: string }) => JSON.parse(c.data).action)).toEqual(["B", "I", "I", "I", "C", "B"])
    expect(await slotRow()).toBe(before)
  })

  it("decodes a pgoutput slot into the JSON a wal2json slot shows, counting changes the same way", async () => {
    await pg.psql("CREATE PUBLICATION cli_pub FOR TABLE orders")
    // a wal2json twin from the same point: a peek of each must print the same changes
    await pg.psql("SELECT pg_create_logical_replication_slot('cli_pgoutput', 'pgoutput')")
    await pg.psql("SELECT pg_create_logical_replication_slot('cli_twin', 'wal2json')")
    await pg.psql("BEGIN; INSERT INTO orders VALUES (10, 'ten'); UPDATE orders SET note = 'TEN' WHERE id = 10; DELETE FROM orders WHERE id = 10; COMMIT")
    await pg.psql("INSERT INTO orders VALUES (11, 'eleven')")
    const pgoutputEnv = { ...env, REPLICATION_SLOT: "cli_pgoutput", PUBLICATION_NAME: "cli_pub" }

    const run = await cli(["peek", "3"], pgoutputEnv)
    expect(run.stderr).toBe("")
    expect(run.code).toBe(0)
    const lines = run.stdout.trimEnd().split("\n")
    expect(lines[0]).toBe(`Next 3 message(s) of slot "cli_pgoutput" (pgoutput; peeked, not consumed)`)
    const changes = lines.slice(1).map((line) => {
      const match = /^([0-9A-F]+\/[0-9A-F]+)  xid (\d+)  (\{.*\})$/.exec(line)
      expect(match, line).not.toBeNull()
      return { xid: Number(match![2]), change: JSON.parse(match![3]!) }
    })
    // the Relation message before the insert is the decoder's input, not a change
    expect(changes.map((c) => c.change.action)).toEqual(["B", "I", "U"])
    expect(changes[1]!.change).toEqual({
      action: "I", xid: changes[0]!.xid, timestamp: changes[0]!.change.timestamp, lsn: expect.stringMatching(/^[0-9A-F]+\/[0-9A-F]+$/),
      schema: "public", table: "orders",
      columns: [{ name: "id", type: "integer", value: 10 }, { name: "note", type: "text", value: "ten" }],
      pk: [{ name: "id", type: "integer" }]
    })
    expect(changes[2]!.change).toMatchObject({
      schema: "public", table: "orders", columns: [{ name: "id", type: "integer", value: 10 }, { name: "note", type: "text", value: "TEN" }]
    })

    // the same lines as the wal2json twin, whatever N (two transactions: 5 + 3 changes)
    const body = (stdout: string) => stdout.trimEnd().split("\n").slice(1)
    for (const count of [3, 6, 8, 20]) {
      const decoded = await cli(["peek", String(count)], pgoutputEnv)
      const twin = await cli(["peek", String(count)], { ...env, REPLICATION_SLOT: "cli_twin" })
      expect(decoded.code).toBe(0)
      expect(body(decoded.stdout)).toHaveLength(Math.min(count, 8))
      expect(body(decoded.stdout), `peek ${count}`).toEqual(body(twin.stdout))
    }

    const json = await cli(["peek", "8", "--json"], pgoutputEnv)
    const data = JSON.parse(json.stdout)
    expect(data).toMatchObject({ slot: "cli_pgoutput", plugin: "pgoutput" })
    expect(data.changes.map((c: { readonly data: string }) => JSON.parse(c.data).action)).toEqual(["B", "I", "U", "D", "C", "B", "I", "C"])
  })
})

describe("cli failures", () => {
  it("a missing slot: exit 1 and a clear message", async () => {
    for (const command of [["status"], ["peek", "2"]]) {
      const run = await cli(command, { ...env, REPLICATION_SLOT: "no_such_slot" })
      expect(run.code).toBe(1)
      expect(run.stdout).toBe("")
      expect(run.stderr).toBe(
        `cdc-logical-replication: replication slot "no_such_slot" does not exist in database "postgres" ` +
          `(check REPLICATION_SLOT and PGDATABASE; the service creates it when REPLICATION_SLOT_CREATE=true)\n`
      )
    }
  })

  it("bad configuration: non-zero exit, every bad variable named, no stack trace, no password", async () => {
    const run = await cli(["status"], { PGPASSWORD: "s3cret-value", PGPORT: "abc", REPLICATION_SLOT: "Bad-Slot" })
    expect(run.code).toBe(2)
    expect(run.stdout).toBe("")
    expect(run.stderr).toContain("invalid configuration")
    for (const variable of ["PGHOST", "PGUSER", "PGDATABASE", "PGPORT", "REPLICATION_SLOT"]) expect(run.stderr).toContain(`${variable}:`)
    expect(run.stderr).not.toMatch(/\n\s+at /)
    expect(run.stderr).not.toContain("s3cret-value")
  })

  it("a wrong password: exit 1, says it cannot connect, never prints the password", async () => {
    const run = await cli(["status"], { ...env, PGPASSWORD: "wrong-s3cret" })
    expect(run.code).toBe(1)
    expect(run.stderr).toMatch(/^cdc-logical-replication: cannot connect to PostgreSQL at 127\.0\.0\.1:\d+ as postgres: .*password/)
    expect(run.stderr).not.toContain("wrong-s3cret")
    expect(run.stderr).not.toMatch(/\n\s+at /)
  })

  it("bad arguments: exit 1", async () => {
    expect((await cli(["peek", "lots"], env)).code).toBe(1)
    expect((await cli(["peek", "0"], env)).code).toBe(1)
    expect((await cli(["frobnicate"], env)).code).toBe(1)
  })
})
