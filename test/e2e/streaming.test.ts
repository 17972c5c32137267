/**
 * End to end, through the real service process (`node src/main.ts`): a real PostgreSQL with
 * wal2json streaming into kinesalite. Every change arrives with wal2json's own bytes and per-key
 * order; a SIGKILL mid-backlog loses nothing; oversized rows are dropped (counted, slot moves on) or
 * fatal (slot stays); a missing stream is fatal; logs are JSON lines without the password.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Lsn from "../../src/domain/Lsn.ts"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, type ServiceProcess, startService } from "../../support/ServiceProcess.ts"
import {
  byKey,
  confirmedFlush,
  createSlots,
  dedupeConsumer,
  dropSlot,
  orderViolations,
  serviceEnv,
  slotActive,
  slotChanges,
  sorted,
  streamedChanges
} from "./workload.ts"

let pg: PgCluster
let kinesis: Kinesalite

/** Every service process of this file with its raw output, for the log-format and secret checks. */
const launched: Array<{ readonly service: ServiceProcess; readonly stdout: () => string; readonly stderr: () => string }> = []

const launch = (env: Readonly<Record<string, string>>): ServiceProcess => {
  const service = startService(env)
  let stdout = ""
  let stderr = ""
  service.child.stdout!.on("data", (chunk: string) => {
    stdout += chunk
  })
  service.child.stderr!.on("data", (chunk: string) => {
    stderr += chunk
  })
  launched.push({ service, stdout: () => stdout, stderr: () => stderr })
  return service
}

/** SIGTERM and wait for the exit code; SIGKILL if it does not stop in time. */
const stopGracefully = async (service: ServiceProcess): Promise<number | string> => {
  service.kill("SIGTERM")
  const timer = setTimeout(() => service.kill("SIGKILL"), 20_000)
  const code = await service.exited
  clearTimeout(timer)
  return code
}

const logsNamed = (service: ServiceProcess, message: string) => service.logs().filter((l) => l.message === message)

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres({ conf: { TimeZone: "'UTC'" } }), startKinesalite()])
})

afterAll(async () => {
  for (const { service } of launched) {
    if (service.child.exitCode === null && service.child.signalCode === null) service.kill("SIGKILL")
  }
  await Promise.all([pg?.stop(), kinesis?.stop()])
})

describe("streaming end to end (service process, PostgreSQL + wal2json, kinesalite)", () => {
  it("streams 10,000 mixed changes: every change once, wal2json's bytes, per-key order", async () => {
    const slot = "e2e_mixed"
    const twin = "e2e_mixed_twin"
    const stream = "e2e-mixed"
    await pg.psql(`
      CREATE TABLE accounts (id int PRIMARY KEY, balance bigint NOT NULL, owner text);
      CREATE TABLE orders (region text, id int, amount numeric(12,2), status text, PRIMARY KEY (region, id));
      CREATE TABLE audit (id bigserial PRIMARY KEY, account int, delta bigint, at timestamptz DEFAULT now(), note jsonb);`)
    await kinesis.createStream(stream, 4)
    await createSlots(pg, slot, twin)
    const service = launch(serviceEnv(pg, kinesis, { stream, slot }))
    await service.waitForLog("streaming")

    // ~10,000 changes in a handful of statements: big, multi-statement and many small transactions
    const workload = [
      `INSERT INTO accounts SELECT g, 1000, 'owner ' || g FROM generate_series(1, 2000) g`,
      `INSERT INTO orders SELECT (ARRAY['eu','us','ap'])[1 + g % 3], g, g * 1.25, 'new' FROM generate_series(1, 1500) g`,
      // 300 two-change transactions over 200 hot keys
      `DO $$ BEGIN FOR i IN 1..300 LOOP
         UPDATE accounts SET balance = balance - i WHERE id = 1 + (i * 7) % 200;
         INSERT INTO audit (account, delta, note) VALUES (1 + (i * 7) % 200, -i, jsonb_build_object('i', i, 's', 'é "q" \\ ✓'));
         COMMIT;
       END LOOP; END $$`,
      // one multi-statement transaction; some rows updated twice in it
      `BEGIN;
       UPDATE accounts SET balance = balance + 1 WHERE id % 2 = 0;
       UPDATE accounts SET owner = owner || '!' WHERE id <= 400;
       DELETE FROM orders WHERE id % 5 = 0;
       INSERT INTO audit (account, delta) SELECT g, 1 FROM generate_series(1, 700) g;
       COMMIT;`,
      // 100 transactions of 12 updates
      `DO $$ BEGIN FOR i IN 1..100 LOOP
         UPDATE orders SET status = 'paid', amount = amount + 1 WHERE id BETWEEN (i - 1) * 15 + 1 AND i * 15;
         COMMIT;
       END LOOP; END $$`,
      `DELETE FROM accounts WHERE id > 1500`,
      `UPDATE audit SET delta = -delta WHERE id % 3 = 0`,
      // 55 multi-row transactions of 1..55 rows
      `DO $$ BEGIN FOR i IN 1..55 LOOP
         INSERT INTO audit (account, delta) SELECT i, g FROM generate_series(1, i) g;
         COMMIT;
       END LOOP; END $$`
    ]
    for (const sql of workload) await pg.psql(sql)

    const expected = await slotChanges(pg, twin)
    expect(expected.length).toBeGreaterThanOrEqual(10_000)
    expect(new Set(expected.map((c) => c.action))).toEqual(new Set(["I", "U", "D"]))

    await eventually("every change published", async () =>
      (await service.metric("cdc_changes_published_total")) >= expected.length, 60_000, 250)
    const records = await streamedChanges(kinesis, stream)

    expect(records.length).toBe(expected.length)
    // the multiset of bodies, byte for byte (as text), equals wal2json's own output
    expect(sorted(records.map((r) => r.body))).toEqual(sorted(expected.map((c) => c.body)))
    expect(orderViolations(records)).toEqual([])
    // many keys, spread over the shards
    expect(byKey(records).size).toBeGreaterThan(3_000)
    expect(new Set(records.map((r) => r.shardId)).size).toBe(4)

    // the slot confirms everything published; a graceful stop exits 0
    const lastLsn = expected[expected.length - 1]!.lsn
    await eventually("slot confirmed past the last change", async () => (await confirmedFlush(pg, slot)) > lastLsn, 20_000)
    expect(await stopGracefully(service)).toBe(0)
    expect(logsNamed(service, "shutdown_complete")).toHaveLength(1)
    await dropSlot(pg, slot)
  }, 120_000)

  it("loses nothing when killed (SIGKILL) mid-backlog: restart resumes; the dedupe consumer sees each change once, in order", async () => {
    const slot = "e2e_kill"
    const twin = "e2e_kill_twin"
    const stream = "e2e-kill"
    await pg.psql(`CREATE TABLE items (id int PRIMARY KEY, version int NOT NULL, label text)`)
    await kinesis.createStream(stream, 2)
    await createSlots(pg, slot, twin)
    // a backlog of 24,000 changes in transactions of 1,000: keys changed in several transactions
    await pg.psql(`DO $$ BEGIN FOR b IN 0..9 LOOP
        INSERT INTO items SELECT g, 0, 'item ' || g FROM generate_series(b * 1000 + 1, b * 1000 + 1000) g;
        COMMIT;
      END LOOP; END $$`)
    await pg.psql(`DO $$ BEGIN FOR b IN 0..9 LOOP
        UPDATE items SET version = version + 1 WHERE id % 10 = b;
        COMMIT;
      END LOOP; END $$`)
    await pg.psql(`DO $$ BEGIN FOR b IN 0..3 LOOP
        DELETE FROM items WHERE id % 10 IN (2 * b, 2 * b + 1);
        COMMIT;
      END LOOP; END $$`)
    const expected = await slotChanges(pg, twin)
    expect(expected.length).toBe(28_000)
    const startedAt = await confirmedFlush(pg, slot)

    const slow = { BATCH_MAX_RECORDS: "50", KINESIS_MAX_INFLIGHT: "1" }
    const first = launch(serviceEnv(pg, kinesis, { stream, slot, extra: slow }))
    await eventually("a part of the backlog published and confirmed", async () =>
      (await first.metric("cdc_changes_published_total")) >= 4_000 && (await confirmedFlush(pg, slot)) > startedAt, 60_000, 50)
    first.kill("SIGKILL")
    expect(await first.exited).toBe("SIGKILL")
    const afterKill = await streamedChanges(kinesis, stream)
    // the kill did interrupt it: part of the backlog was still unpublished
    expect(afterKill.length).toBeLessThan(expected.length)
    const confirmedAtKill = await confirmedFlush(pg, slot)
    expect(confirmedAtKill).toBeGreaterThan(startedAt)

    const second = launch(serviceEnv(pg, kinesis, { stream, slot }))
    const lastLsn = expected[expected.length - 1]!.lsn
    await eventually("slot confirmed past the last change", async () => (await confirmedFlush(pg, slot)) > lastLsn, 60_000, 200)
    const records = await streamedChanges(kinesis, stream)
    const expectedBodies = new Set(expected.map((c) => c.body))

    // nothing lost; nothing that is not a change of the workload
    const streamed = new Set(records.map((r) => r.body))
    expect([...expectedBodies].filter((b) => !streamed.has(b))).toEqual([])
    expect([...streamed].filter((b) => !expectedBodies.has(b))).toEqual([])
    // the restart resumed from the confirmed position rather than from the start
    expect(records.length).toBeLessThan(2 * expected.length)

    // the README's consumer: per key, skip lsn not above the highest seen → every change once, in order
    const keyOfBody = new Map(records.map((r) => [r.body, r.partitionKey]))
    const wanted = new Map<string, Array<string>>()
    for (const change of expected) {
      const key = keyOfBody.get(change.body)!
      const list = wanted.get(key)
      if (list === undefined) wanted.set(key, [change.body])
      else list.push(change.body)
    }
    const consumed = dedupeConsumer(records)
    expect(consumed.size).toBe(wanted.size)
    const mismatched = [...wanted].filter(([key, bodies]) => JSON.stringify(consumed.get(key)) !== JSON.stringify(bodies))
    expect(mismatched.map(([key]) => key)).toEqual([])

    expect(await stopGracefully(second)).toBe(0)
    await dropSlot(pg, slot)
  }, 120_000)

  it("drops an oversized change (OVERSIZED_RECORD_POLICY=drop): logged, counted, the slot moves past it", async () => {
    const slot = "e2e_drop"
    const twin = "e2e_drop_twin"
    const stream = "e2e-drop"
    await pg.psql(`CREATE TABLE notes (id int PRIMARY KEY, body text)`)
    await kinesis.createStream(stream, 1)
    await createSlots(pg, slot, twin)
    const service = launch(serviceEnv(pg, kinesis, { stream, slot, extra: { KINESIS_MAX_RECORD_BYTES: "2048" } }))
    await service.waitForLog("streaming")

    await pg.psql(`INSERT INTO notes SELECT g, 'note ' || g FROM generate_series(1, 20) g`)
    // the big row is the last change of the last transaction: only its drop can move the slot past it
    await pg.psql(`BEGIN;
      INSERT INTO notes VALUES (100, 'small before');
      INSERT INTO notes VALUES (101, repeat('x', 10240));
      COMMIT;`)
    const expected = await slotChanges(pg, twin)
    const big = expected.find((c) => c.body.includes(`"value":101`))!
    expect(big).toBeDefined()
    expect(expected).toHaveLength(22)

    const dropped = await service.waitForLog("change_dropped")
    expect(dropped).toMatchObject({
      level: "WARN",
      reason: "oversized",
      schema: "public",
      table: "notes",
      lsn: Lsn.format(big.lsn),
      bytes: big.body.length
    })
    await eventually("slot confirmed past the dropped change", async () => (await confirmedFlush(pg, slot)) > big.lsn, 20_000)
    expect(await service.metric("cdc_changes_dropped_total", { reason: "oversized" })).toBe(1)

    const records = await streamedChanges(kinesis, stream)
    expect(sorted(records.map((r) => r.body))).toEqual(sorted(expected.filter((c) => c !== big).map((c) => c.body)))
    expect(records.some((r) => r.partitionKey === "public.notes:[101]")).toBe(false)
    expect(await stopGracefully(service)).toBe(0)
    await dropSlot(pg, slot)
  }, 60_000)

  it("stops on an oversized change with OVERSIZED_RECORD_POLICY=fail: exit 1, fatal_error DecodeError Oversized, slot before it", async () => {
    const slot = "e2e_fail"
    const stream = "e2e-fail"
    await pg.psql(`CREATE TABLE memos (id int PRIMARY KEY, body text)`)
    await kinesis.createStream(stream, 1)
    await createSlots(pg, slot)
    const service = launch(serviceEnv(pg, kinesis, {
      stream,
      slot,
      extra: { KINESIS_MAX_RECORD_BYTES: "2048", OVERSIZED_RECORD_POLICY: "fail" }
    }))
    await service.waitForLog("streaming")
    await pg.psql(`INSERT INTO memos SELECT g, 'memo ' || g FROM generate_series(1, 10) g`)
    await eventually("the small rows published", async () => (await service.metric("cdc_changes_published_total")) === 10)
    await pg.psql(`INSERT INTO memos VALUES (11, repeat('y', 10240))`)

    const code = await service.exited
    expect(code).toBe(1)
    const fatal = logsNamed(service, "fatal_error")
    expect(fatal).toHaveLength(1)
    expect(fatal[0]).toMatchObject({ error: "DecodeError", kind: "Oversized" })
    expect(String(fatal[0]!.reason)).toContain("public.memos")

    // the slot still holds the big row: confirmed_flush_lsn is before it, and it would be read again
    await eventually("the slot released", async () => !(await slotActive(pg, slot)), 10_000)
    const remaining = await slotChanges(pg, slot, { peek: true })
    const big = remaining.find((c) => c.body.includes(`"value":11}`))
    expect(big).toBeDefined()
    expect(await confirmedFlush(pg, slot)).toBeLessThanOrEqual(big!.lsn)
    expect(String(fatal[0]!.reason)).toContain(Lsn.format(big!.lsn))
    expect((await streamedChanges(kinesis, stream)).map((r) => r.partitionKey).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `public.memos:[${i + 1}]`).sort()
    )
    await dropSlot(pg, slot)
  }, 60_000)

  it("stops with a fatal error when the stream does not exist: exit 1, one fatal_error, never ready", async () => {
    const slot = "e2e_nostream"
    await createSlots(pg, slot)
    const started = Date.now()
    const service = launch(serviceEnv(pg, kinesis, { stream: "no-such-stream", slot }))
    const readiness: Array<number> = []
    let exited = false
    void service.exited.then(() => {
      exited = true
    })
    const poll = (async () => {
      while (!exited) {
        await service.get("/readyz").then((r) => readiness.push(r.status), () => undefined)
        await new Promise((resolve) => setTimeout(resolve, 10))
      }
    })()
    const code = await service.exited
    await poll
    expect(code).toBe(1)
    expect(Date.now() - started).toBeLessThan(15_000)
    const fatal = logsNamed(service, "fatal_error")
    expect(fatal).toHaveLength(1)
    expect(JSON.stringify(fatal[0])).toContain("ResourceNotFoundException")
    expect(readiness.length).toBeGreaterThan(0)
    expect(readiness.filter((s) => s === 200)).toEqual([])
    await dropSlot(pg, slot)
  }, 60_000)

  it("writes only JSON lines on stdout, never the password (every service run above)", () => {
    // checks the processes the tests above ran (run the whole file, not this test alone)
    expect(launched.length, "service processes run by this file").toBeGreaterThanOrEqual(6)
    const password = pg.env.PGPASSWORD!
    for (const { service, stdout, stderr } of launched) {
      const lines = stdout().split("\n").filter((l) => l.length > 0)
      expect(lines.length).toBeGreaterThan(0)
      for (const line of lines) expect(() => JSON.parse(line), line).not.toThrow()
      expect(service.logs().length).toBe(lines.length)
      expect(stdout()).not.toContain(password)
      expect(stderr()).not.toContain(password)
    }
  })
})
