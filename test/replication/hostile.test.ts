/**
 * What any database role can write, against a real PostgreSQL 15, through the replication reader
 * and both decoders: changes and logical messages far over the per-record limit (and over the
 * protocol parser's 16 MiB) are dropped as they arrive and handed on as oversized events naming
 * them; bytes that are not valid UTF-8 are passed on as sent. After each, a normal change arrives
 * and the slot moves past. Then the start-up checks: server encodings (LATIN1, SQL_ASCII) streamed
 * faithfully or refused per plugin, and STATUS_INTERVAL_MS against wal_sender_timeout.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Logger, References } from "effect"
import type { ChangeEvent } from "../../src/domain/ChangeEvent.ts"
import * as Lsn from "../../src/domain/Lsn.ts"
import type { Decoder } from "../../src/replication/Decoder.ts"
import * as PgOutputDecoder from "../../src/replication/PgOutputDecoder.ts"
import * as KeyCatalog from "../../src/replication/KeyCatalog.ts"
import * as ReplicationReader from "../../src/replication/ReplicationReader.ts"
import type { ReplicationSession } from "../../src/replication/ReplicationSession.ts"
import * as Wal2JsonDecoder from "../../src/replication/Wal2JsonDecoder.ts"
import { type PgCluster, startPostgres } from "../../support/PostgresHarness.ts"
import { eventually, pgConfig, psql, replicationConfig } from "./fixtures.ts"

const MiB = 1024 * 1024
/** A table name with a quote, a backslash, a non-ASCII letter and a space (created in schema `odd "schema"`). */
const ODD = `U&"we""ird\\\\ \\00e9"`
/** The table "café", spelled so that no client encoding can change it. */
const CAFE = `U&"caf\\00e9"`
const PUBLICATION = "cdc_hostile"

let pg!: PgCluster

beforeAll(async () => {
  pg = await startPostgres()
  await pg.psql(`
    CREATE TABLE items (id int PRIMARY KEY, name text);
    CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
    CREATE SCHEMA "odd ""schema""";
    CREATE TABLE "odd ""schema""".${ODD} (id int PRIMARY KEY, data text);
    CREATE SCHEMA "App";
    CREATE TYPE "App".role AS ENUM ('a', 'b');
    CREATE TYPE "App"."we""ird" AS ENUM ('x');
    CREATE TYPE "App"."back\\slash" AS ENUM ('y');
    CREATE DOMAIN "App".dom AS int;
    CREATE TABLE typed (r "App".role, id int, w "App"."we""ird", b "App"."back\\slash", ra "App".role[], d "App".dom,
      "col""q" text, PRIMARY KEY (r, id));
    CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES;`)
  for (const [database, encoding, table] of [["latin", "LATIN1", CAFE], ["ascii", "SQL_ASCII", "rows"]] as const) {
    await pg.psql(`CREATE DATABASE ${database} ENCODING '${encoding}' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0`)
    await pg.psql(`CREATE TABLE ${table} (id int PRIMARY KEY, v text); CREATE PUBLICATION ${PUBLICATION} FOR ALL TABLES`, { database })
  }
  for (const [database, timeout] of [["short_timeout", "'900ms'"], ["no_timeout", "0"]] as const) {
    await pg.psql(`CREATE DATABASE ${database}`)
    await pg.psql(`ALTER DATABASE ${database} SET wal_sender_timeout = ${timeout}`)
  }
})
afterAll(async () => {
  await pg?.stop()
})

type Plugin = "wal2json" | "pgoutput"

const decoderFor = (plugin: Plugin): Decoder | ReplicationReader.DecoderFactory =>
  plugin === "wal2json"
    ? Wal2JsonDecoder.make({ addTables: [], filterTables: [] })
    : (query) =>
      Effect.map(KeyCatalog.load(query), (keys) => PgOutputDecoder.make({ publication: PUBLICATION, keys }))

const open = (
  plugin: Plugin,
  slot: string,
  maxMessageBytes: number,
  options: { readonly database?: string; readonly statusIntervalMs?: number } = {}
) =>
  ReplicationReader.open({
    pg: pgConfig(pg, { applicationName: `cdc-${slot}`, ...(options.database === undefined ? {} : { database: options.database }) }),
    decoder: decoderFor(plugin),
    maxMessageBytes,
    replication: replicationConfig({ slot, plugin, publication: PUBLICATION, statusIntervalMs: options.statusIntervalMs ?? 500 })
  })

const slotExists = (slot: string) =>
  Effect.map(psql(pg, `SELECT count(*) FROM pg_replication_slots WHERE slot_name = '${slot}'`), (n) => n === "1")

/** The bytes of a body after `"content":` (up to the closing brace). */
const contentBytes = (body: Uint8Array): Buffer => {
  const buffer = Buffer.from(body)
  const at = buffer.indexOf(`"content":`)
  return buffer.subarray(at + `"content":`.length, buffer.length - 1)
}

/** A logger that keeps every line with its annotations. */
const captureLogs = () => {
  const lines: Array<{ readonly message: string; readonly annotations: Readonly<Record<string, unknown>> }> = []
  const logger = Logger.make(({ fiber, message }) => {
    lines.push({
      message: (Array.isArray(message) ? message : [message]).map(String).join(" "),
      annotations: { ...fiber.getRef(References.CurrentLogAnnotations) }
    })
  })
  return { lines, layer: Logger.layer([logger]) }
}

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

  it.live("an oversized row of a table whose schema and name need escaping is named exactly", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = `hostile_names_${plugin}`
      const session = yield* open(plugin, slot, MiB)
      yield* psql(pg, `INSERT INTO "odd ""schema""".${ODD} VALUES (${id(5)}, repeat('n', 2 * 1024 * 1024))`)
      const events = yield* takeUntil(session, (es) => es.some((e) => e.action === "I"))
      const row = events.find((e) => e.action === "I")!
      expect(row.oversizedBytes).toBeGreaterThan(2 * MiB)
      expect([row.schema, row.table]).toEqual(['odd "schema"', 'we"ird\\ é'])
    })), 60_000)

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

  it.live("types whose names need quoting (wal2json writes them unescaped) are published as JSON strings of the name", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = `hostile_types_${plugin}`
      const session = yield* open(plugin, slot, MiB)
      yield* psql(pg, `BEGIN;
        INSERT INTO typed VALUES ('a', ${id(6)}, 'x', 'y', '{a,b}', 5, 'q');
        UPDATE typed SET r = 'b' WHERE id = ${id(6)};
        DELETE FROM typed WHERE id = ${id(6)};
        COMMIT`)
      yield* psql(pg, `INSERT INTO items VALUES (${id(6)}, 'after')`)
      const events = yield* takeUntil(session, (es) => es.some(insertedItem(id(6))))
      const typed = events.filter((e) => e.table === "typed")
      // the key change is a delete of the old key and an insert of the new one, keys read from the repaired bodies
      expect(typed.map((e) => [e.action, e.pk])).toEqual([
        ["I", `["a",${id(6)}]`],
        ["D", `["a",${id(6)}]`],
        ["I", `["b",${id(6)}]`],
        ["D", `["b",${id(6)}]`]
      ])
      const types = [`"App".role`, "integer", `"App"."we""ird"`, `"App"."back\\slash"`, `"App".role[]`,
        // pgoutput names a domain's base type (README)
        plugin === "wal2json" ? `"App".dom` : "integer", "text"]
      type Body = { readonly columns?: ReadonlyArray<{ name: string; type: string; value: unknown }>; readonly identity?: ReadonlyArray<{ type: string }> }
      const bodies = typed.map((e) => JSON.parse(Buffer.from(e.body).toString("utf8")) as Body)
      expect(bodies[0]!.columns!.map((c) => c.type)).toEqual(types)
      expect(bodies[0]!.columns!.map((c) => c.name)).toEqual(["r", "id", "w", "b", "ra", "d", `col"q`])
      // a domain over int is written as text (wal2json's rule, followed by the pgoutput decoder)
      expect(bodies[0]!.columns!.map((c) => c.value)).toEqual(["a", id(6), "x", "y", "{a,b}", "5", "q"])
      expect(bodies[3]!.identity![0]!.type).toBe(`"App".role`)
      const after = events.find(insertedItem(id(6)))!
      expect(JSON.parse(Buffer.from(after.body).toString("utf8"))).toMatchObject({ action: "I", table: "items" })
      yield* acknowledgePast(session, slot, events, after.lsn - 1n)
    })), 60_000)

  it.live("bytes that are not valid UTF-8 in a logical message are published as sent, escaped only where JSON needs it", () =>
    Effect.scoped(Effect.gen(function*() {
      const slot = `hostile_utf8_${plugin}`
      const session = yield* open(plugin, slot, MiB)
      yield* psql(pg, `SELECT pg_logical_emit_message(true, 'p', '\\xff'::bytea)`)
      // a quote, an invalid byte, a backslash, a newline, a control byte, then ✓ in UTF-8
      yield* psql(pg, `SELECT pg_logical_emit_message(false, 'q', '\\x22ff5c0a01e29c93'::bytea)`)
      yield* psql(pg, `INSERT INTO items VALUES (${id(4)}, 'after')`)
      const events = yield* takeUntil(session, (es) => es.some(insertedItem(id(4))))
      const messages = events.filter((e) => e.action === "M")
      expect(messages).toHaveLength(2)
      expect(contentBytes(messages[0]!.body)).toEqual(Buffer.from([0x22, 0xff, 0x22]))
      expect(contentBytes(messages[1]!.body)).toEqual(
        Buffer.concat([Buffer.from(`"\\"`), Buffer.from([0xff]), Buffer.from(`\\\\\\n\\u0001✓"`)])
      )
      yield* acknowledgePast(session, slot, events, messages[1]!.lsn)
    })), 60_000)
})

/** Runs `sql` in `database` the way psql does with client_encoding=UTF8. */
const psqlShows = (database: string, sql: string) => psql(pg, `SET client_encoding = 'UTF8'; ${sql}`, { database })

describe("server encodings", () => {
  it.live("LATIN1 with pgoutput: names and values arrive as psql shows them with client_encoding=UTF8", () =>
    Effect.scoped(Effect.gen(function*() {
      const session = yield* open("pgoutput", "latin_pgoutput", MiB, { database: "latin" })
      // é, ü and ÿ as LATIN1 bytes, whatever psql's own client encoding is
      yield* psqlShows("latin", `INSERT INTO ${CAFE} VALUES (1, convert_from('\\xe9fcff'::bytea, 'LATIN1'))`)
      const events = yield* takeUntil(session, (es) => es.some((e) => e.action === "I"))
      const insert = events.find((e) => e.action === "I")!
      expect(insert.table).toBe(yield* psqlShows("latin", `SELECT relname FROM pg_class WHERE relname LIKE 'caf%' AND relkind = 'r'`))
      expect(insert.table).toBe("café")
      const body = JSON.parse(Buffer.from(insert.body).toString("utf8")) as { columns: ReadonlyArray<{ name: string; value: unknown }> }
      expect(body.columns.find((c) => c.name === "v")?.value).toBe(yield* psqlShows("latin", `SELECT v FROM ${CAFE} WHERE id = 1`))
      expect(body.columns.find((c) => c.name === "v")?.value).toBe("éüÿ")
    })), 60_000)

  it.live("LATIN1 with wal2json is refused at start, naming the encoding, before any slot is created", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(open("wal2json", "latin_wal2json", MiB, { database: "latin" })))
      expect(Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : undefined).toMatchObject({
        _tag: "Some",
        value: { _tag: "SlotError", reason: "UnsupportedEncoding", message: expect.stringMatching(/server_encoding is LATIN1.*wal2json/) }
      })
      expect(yield* slotExists("latin_wal2json")).toBe(false)
    }), 30_000)

  it.live("SQL_ASCII with wal2json: records carry the stored bytes as they are; with pgoutput it is refused", () =>
    Effect.scoped(Effect.gen(function*() {
      const refused = yield* Effect.exit(Effect.scoped(open("pgoutput", "ascii_pgoutput", MiB, { database: "ascii" })))
      expect(Exit.isFailure(refused) && String(refused.cause)).toContain("SQL_ASCII")
      expect(yield* slotExists("ascii_pgoutput")).toBe(false)

      const session = yield* open("wal2json", "ascii_wal2json", MiB, { database: "ascii" })
      yield* psqlShows("ascii", `INSERT INTO rows VALUES (1, convert_from('\\xe9ff41'::bytea, 'SQL_ASCII'))`)
      yield* psqlShows("ascii", `INSERT INTO rows VALUES (2, 'after')`)
      const events = yield* takeUntil(session, (es) => es.filter((e) => e.action === "I").length === 2)
      const [first, second] = events.filter((e) => e.action === "I")
      expect(Buffer.from(first!.body).includes(Buffer.from([0x22, 0xe9, 0xff, 0x41, 0x22]))).toBe(true)
      expect(first!.pk).toBe("[1]")
      expect(second!.pk).toBe("[2]")
    })), 60_000)
})

describe("STATUS_INTERVAL_MS against wal_sender_timeout", () => {
  it.live("is clamped below half of the server's timeout, with a warning; a disabled timeout (0) clamps nothing", () =>
    Effect.gen(function*() {
      const clamped = captureLogs()
      yield* Effect.scoped(open("wal2json", "clamp_short", MiB, { database: "short_timeout", statusIntervalMs: 1000 })).pipe(
        Effect.provide(clamped.layer)
      )
      const warning = clamped.lines.find((l) => l.message === "status_interval_clamped")
      expect(warning?.annotations).toMatchObject({ configuredMs: 1000, walSenderTimeoutMs: 900, statusIntervalMs: 300 })

      const kept = captureLogs()
      yield* Effect.scoped(open("wal2json", "clamp_none", MiB, { database: "no_timeout", statusIntervalMs: 60_000 })).pipe(
        Effect.provide(kept.layer)
      )
      expect(kept.lines.some((l) => l.message === "replication_started")).toBe(true)
      expect(kept.lines.some((l) => l.message === "status_interval_clamped")).toBe(false)
    }), 30_000)
})
