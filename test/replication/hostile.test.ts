/**
 * What any database role can write, against a real PostgreSQL 15, through the replication reader
 * and both decoders: changes and logical messages far over the per-record limit (and over the
 * protocol parser's 16 MiB) are dropped as they arrive and handed on as oversized events naming
 * them; bytes that are not valid UTF-8 are passed on as sent. After each, a normal change arrives
 * and the slot moves past.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import type { Decoder } from "../../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"
import * as Publication from "../../src/replication/Publication.ts"
import * as ReplicationReader from "../../src/replication/ReplicationReader.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, pgConfig, psql, replicationConfig } from "./fixtures.ts"

const MiB = 1024 * 1024
const PUBLICATION = "cdc_hostile"

let pg!: PgCluster

beforeAll(async () => {
  pg = await startPostgres()
  await pg.psql(`
    CREATE TABLE items (id int PRIMARY KEY, name text);
    CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
    CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES;`)
})
afterAll(async () => {
  await pg?.stop()
})

type Plugin = "wal2json" | "pgoutput"

const decoderFor = (plugin: Plugin): Decoder | ReplicationReader.DecoderFactory =>
  plugin === "wal2json"
    ? Wal2JsonDecoder.make({ addTables: [], filterTables: [] })
    : (query) =>
      Effect.map(Publication.primaryKeys(query), (keys) =>
        PgOutputDecoder.make({ publication: PUBLICATION, primaryKey: Publication.primaryKeyOf(keys) }))

const open = (plugin: Plugin, slot: string, maxMessageBytes: number) =>
  ReplicationReader.open({
    pg: pgConfig(pg, { applicationName: `cdc-${slot}` }),
    decoder: decoderFor(plugin),
    maxMessageBytes,
    replication: replicationConfig({ slot, plugin, publication: PUBLICATION })
  })

/** Takes until `enough` holds for everything read so far. */
const takeUntil = (session: ReplicationSession, enough: (events: ReadonlyArray<ChangeEvent>) => boolean) =>
  Effect.gen(function*() {
    const events: Array<ChangeEvent> = []
    while (!enough(events)) events.push(...(yield* session.take))
    return events
  }).pipe(Effect.timeoutOrElse({ duration: 60_000, orElse: () => Effect.fail(new Error("timed out waiting for changes")) }))

const confirmedFlush = (slot: string) =>
  Effect.map(psql(pg, `SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '${slot}'`), (l) => Lsn.parse(l)!)

const insertedItem = (id: number) => (e: ChangeEvent) => e.action === "I" && e.table === "items" && e.pk === `[${id}]`

/** Acknowledges everything taken and waits until the slot is confirmed past `lsn`. */
const acknowledgePast = (session: ReplicationSession, slot: string, events: ReadonlyArray<ChangeEvent>, lsn: Lsn.Lsn) =>
  Effect.gen(function*() {
    yield* session.acknowledge(events[events.length - 1]!.ackLsn)
    yield* session.sendStatusNow
    yield* eventually("slot confirmed past the hostile changes", Effect.map(confirmedFlush(slot), (c) => (c > lsn ? c : undefined)))
  })

describe.each(["wal2json", "pgoutput"] as const)("hostile input through the reader (%s)", (plugin) => {
  /** Keys of this plugin's rows (both share the tables). */
  const id = (n: number) => (plugin === "wal2json" ? n : 100 + n)

  it.live("changes and logical messages over the limit (17 MiB message, 9 MiB bytea = 18 MiB of hex) are handed on as oversized, not held", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = `hostile_big_${plugin}`
      const session = yield* open(plugin, slot, MiB)
      yield* psql(pg, `SELECT pg_logical_emit_message(false, 'huge', repeat('x', 17 * 1024 * 1024))`)
      yield* psql(pg, `BEGIN;
        INSERT INTO items VALUES (${id(1)}, 'before');
        SELECT pg_logical_emit_message(true, 'huge-tx', repeat('y', 17 * 1024 * 1024));
        INSERT INTO blobs VALUES (${id(1)}, decode(repeat('ab', 9 * 1024 * 1024), 'hex'));
        UPDATE blobs SET data = decode(repeat('cd', 9 * 1024 * 1024), 'hex') WHERE id = ${id(1)};
        COMMIT`)
      yield* psql(pg, `INSERT INTO items VALUES (${id(2)}, 'after')`)

      const events = yield* takeUntil(session, (es) => es.some(insertedItem(id(2))))
      const oversized = events.filter((e) => e.oversizedBytes !== undefined)
      expect(oversized.map((e) => [e.action, e.schema, e.table])).toEqual([
        ["M", "", ""],
        ["M", "", ""],
        ["I", "public", "blobs"],
        ["U", "public", "blobs"]
      ])
      for (const event of oversized) {
        expect(event.body.length).toBe(0)
        expect(event.oversizedBytes).toBeGreaterThan(17 * MiB)
      }
      // the transactional ones carry their transaction, like every change
      const tx = events.find((e) => e.action === "I" && e.pk === `[${id(1)}]`)!
      expect(oversized.slice(1).map((e) => e.xid)).toEqual([tx.xid, tx.xid, tx.xid])
      expect(oversized[0]!.xid).toBeUndefined()
      // the LSNs are the messages' own: in WAL order, between the small changes around them
      expect(oversized[2]!.lsn).toBeGreaterThan(tx.lsn)
      const after = events.find(insertedItem(id(2)))!
      expect(after.lsn).toBeGreaterThan(oversized[3]!.lsn)
      expect(JSON.parse(Buffer.from(after.body).toString("utf8"))).toMatchObject({ action: "I", table: "items" })
      yield* acknowledgePast(session, slot, events, oversized[3]!.lsn)
    })), 180_000)

  it.live("a message under the limit but over the old buffers (2 MiB with a 4 MiB limit) arrives whole", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = `hostile_large_${plugin}`
      const session = yield* open(plugin, slot, 4 * MiB)
      yield* psql(pg, `INSERT INTO items VALUES (${id(3)}, repeat('z', 2 * 1024 * 1024))`)
      const events = yield* takeUntil(session, (es) => es.some(insertedItem(id(3))))
      const row = events.find(insertedItem(id(3)))!
      expect(row.oversizedBytes).toBeUndefined()
      const body = JSON.parse(Buffer.from(row.body).toString("utf8")) as { columns: ReadonlyArray<{ name: string; value: unknown }> }
      expect(body.columns.find((c) => c.name === "name")?.value).toBe("z".repeat(2 * MiB))
    })), 60_000)
})
