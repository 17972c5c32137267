/**
 * Hostile statements any role may run, end to end through the service process (real PostgreSQL,
 * kinesalite, both plugins): a 17 MiB logical message and a 9 MiB bytea row (18 MiB of hex), both
 * over the stream's 1 MiB record limit and the protocol parser's 16 MiB, and a logical message whose
 * bytes are not valid UTF-8. The stream never stops: the oversized ones are dropped (logged, counted),
 * the invalid bytes are published as sent, a normal change written after them arrives, and the slot
 * moves past. With OVERSIZED_RECORD_POLICY=fail, the big row stops the service with one fatal line
 * naming its LSN and table, and the slot stays before it. A LATIN1 database with wal2json is refused
 * at start with one fatal line naming the encoding.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import * as Lsn from "../../src/domain/Lsn.ts"
import { type Kinesalite, startKinesalite } from "../../support/KinesaliteHarness.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually } from "../../support/ServiceProcess.ts"
import { processTracker } from "./E2eFixture.ts"
import { confirmedFlush, dropSlot, serviceEnv, slotActive } from "./workload.ts"

let pg: PgCluster
let kinesis: Kinesalite
const processes = processTracker()

beforeAll(async () => {
  ;[pg, kinesis] = await Promise.all([startPostgres(), startKinesalite()])
  await pg.psql(`
    CREATE TABLE notes (id int PRIMARY KEY, body text);
    CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
    CREATE PUBLICATION cdc_publication FOR ALL TABLES;`)
})
afterAll(async () => {
  await processes.killAll()
  await Promise.all([pg?.stop(), kinesis?.stop()])
})

const currentLsn = async (): Promise<Lsn.Lsn> => Lsn.parse(await pg.psql("SELECT pg_current_wal_insert_lsn()"))!

describe.each(["wal2json", "pgoutput"] as const)("hostile statements end to end (%s)", (plugin) => {
  it("oversized changes are dropped and counted, invalid UTF-8 is published as sent, and the stream goes on", async () => {
    const slot = `e2e_hostile_${plugin}`
    const stream = `e2e-hostile-${plugin}`
    const base = plugin === "wal2json" ? 0 : 100
    await kinesis.createStream(stream, 1)
    await pg.psql(`SELECT pg_create_logical_replication_slot('${slot}', '${plugin}')`)
    const service = processes.start(serviceEnv(pg, kinesis, { stream, slot, extra: { REPLICATION_PLUGIN: plugin } }))
    await service.waitForLog("streaming")

    const before = await currentLsn()
    await pg.psql(`SELECT pg_logical_emit_message(false, 'huge', repeat('x', 17 * 1024 * 1024))`)
    await pg.psql(`INSERT INTO blobs VALUES (${base + 1}, decode(repeat('ab', 9 * 1024 * 1024), 'hex'))`)
    await pg.psql(`SELECT pg_logical_emit_message(true, 'bytes', '\\xff01fe'::bytea)`)
    const hostileEnd = await currentLsn()
    await pg.psql(`INSERT INTO notes VALUES (${base + 1}, 'written after')`)

    const after = await eventually("the change written after the hostile ones in the stream", async () => {
      const records = await kinesis.readAll(stream)
      return records.find((r) => Buffer.from(r.data).includes(`"value":"written after"`)) ?? false
    }, 60_000, 200, () => (service.child.exitCode === null ? undefined : `the service exited: ${service.otherOutput()}`))
    expect(after.partitionKey).toBe(`public.notes:[${base + 1}]`)

    const records = await kinesis.readAll(stream)
    // the oversized ones are not in the stream; the invalid bytes are, as the server sent them
    expect(records).toHaveLength(2)
    const message = Buffer.from(records[0]!.data)
    expect(message.includes(Buffer.from([0x22, 0xff, 0x5c, 0x75, 0x30, 0x30, 0x30, 0x31, 0xfe, 0x22]))).toBe(true)
    expect(message.includes(`"prefix":"bytes"`)).toBe(true)

    const dropped = service.logs().filter((l) => l.message === "change_dropped")
    expect(dropped.map((l) => [l.reason, l.schema, l.table])).toEqual([["oversized", "", ""], ["oversized", "public", "blobs"]])
    for (const line of dropped) {
      expect(Number(line.bytes)).toBeGreaterThan(17 * 1024 * 1024)
      const lsn = Lsn.parse(String(line.lsn))!
      expect(lsn > before && lsn < hostileEnd).toBe(true)
    }
    expect(await service.metric("cdc_changes_dropped_total", { reason: "oversized" })).toBe(2)
    await eventually("the slot confirmed past the hostile statements", async () => (await confirmedFlush(pg, slot)) > hostileEnd, 20_000)
    expect(service.logs().some((l) => l.message === "pipeline_restart" || l.message === "fatal_error")).toBe(false)

    service.kill("SIGTERM")
    expect(await service.exited).toBe(0)
    await dropSlot(pg, slot)
  }, 120_000)
})

describe("OVERSIZED_RECORD_POLICY=fail past 16 MiB", () => {
  it("stops with one fatal line naming the LSN and table; the slot stays before the row", async () => {
    const slot = "e2e_hostile_fail"
    const stream = "e2e-hostile-fail"
    await kinesis.createStream(stream, 1)
    await pg.psql(`SELECT pg_create_logical_replication_slot('${slot}', 'wal2json')`)
    const service = processes.start(serviceEnv(pg, kinesis, { stream, slot, extra: { OVERSIZED_RECORD_POLICY: "fail" } }))
    await service.waitForLog("streaming")
    const before = await currentLsn()
    await pg.psql(`INSERT INTO blobs VALUES (1000, decode(repeat('cd', 9 * 1024 * 1024), 'hex'))`)
    const after = await currentLsn()

    expect(await service.exited).toBe(1)
    const fatal = service.logs().filter((l) => l.message === "fatal_error")
    expect(fatal).toHaveLength(1)
    expect(fatal[0]).toMatchObject({ error: "DecodeError", kind: "Oversized" })
    const reason = String(fatal[0]!.reason)
    expect(reason).toContain("public.blobs")
    const lsn = Lsn.parse(/LSN ([0-9A-F]+\/[0-9A-F]+)/.exec(reason)?.[1] ?? "")!
    expect(lsn > before && lsn < after).toBe(true)
    await eventually("the slot released", async () => !(await slotActive(pg, slot)), 10_000)
    expect(await confirmedFlush(pg, slot)).toBeLessThanOrEqual(lsn)
    expect(await kinesis.readAll(stream)).toHaveLength(0)
    await dropSlot(pg, slot)
  }, 60_000)
})

describe("a server encoding the plugin cannot stream", () => {
  it("stops at start with one fatal line naming it, and creates no slot", async () => {
    await pg.psql(`CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`)
    const slot = "e2e_hostile_latin"
    const stream = "e2e-hostile-latin"
    await kinesis.createStream(stream, 1)
    const service = processes.start(serviceEnv(pg, kinesis, { stream, slot, extra: { PGDATABASE: "latin" } }))
    expect(await service.exited).toBe(1)
    const fatal = service.logs().filter((l) => l.message === "fatal_error")
    expect(fatal).toHaveLength(1)
    expect(fatal[0]).toMatchObject({ error: "SlotError", kind: "UnsupportedEncoding" })
    expect(String(fatal[0]!.reason)).toContain("server_encoding is LATIN1")
    expect(String(fatal[0]!.reason)).toContain("REPLICATION_PLUGIN=pgoutput")
    expect(await pg.psql(`SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${slot}'`)).toBe("0")
  }, 60_000)
})

